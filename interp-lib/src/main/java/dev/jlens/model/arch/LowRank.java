package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;

/**
 * A low-rank change of one linear layer, applied as an extra path beside the weight: the layer's output gains
 * {@code (x a^T) b^T}, which is the output of {@code W + b a} in torch's {@code [out, in]} layout (for a GPT-2 Conv1D
 * weight, stored {@code [in, out]}, the change of the stored weight is {@code (b a)^T}). Any scaling is folded into
 * {@code b}. A LoRA adapter's update is {@code a = A}, {@code b = (alpha / r) B}.
 *
 * @param a {@code [k, in]}
 * @param b {@code [out, k]}
 */
public record LowRank(NDArray a, NDArray b) {
    public LowRank {
        if (a.getShape().dimension() != 2 || b.getShape().dimension() != 2
                || a.getShape().get(0) != b.getShape().get(1)) {
            throw new IllegalArgumentException("a low-rank change needs a [k, in] and b [out, k], got a "
                    + a.getShape() + " and b " + b.getShape());
        }
    }

    /** The extra output for input {@code x} {@code [..., in]}: {@code (x a^T) b^T}, {@code [..., out]}. */
    public NDArray apply(NDArray x) {
        return Ops.linear(Ops.linear(x, a, null), b, null);
    }

    /** The change of the weight in torch's {@code [out, in]} layout, {@code b a}. */
    public NDArray delta() {
        return b.matMul(a);
    }
}
