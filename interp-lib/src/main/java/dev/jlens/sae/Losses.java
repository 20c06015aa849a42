package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Activation;
import dev.jlens.util.Tensors;

/** Loss terms shared by the architectures. Every scalar is engine-owned (safe under autograd). */
final class Losses {
    private Losses() {}

    /** Raw activations in normalised units. */
    static NDArray scaled(NDArray x, SaeConfig cfg) {
        double s = cfg.inputScale();
        return s == 1.0 ? x : x.mul(Tensors.scalar((float) s));
    }

    /** {@code e^2} summed over the last axis, mean over the rest: a scalar. */
    static NDArray sumSquares(NDArray e) {
        return e.square().sum(new int[]{-1}).mean();
    }

    /** A per-step coefficient as an engine-owned scalar on the step's manager. */
    static NDArray constant(SparseCoder.Context ctx, double v) {
        return Tensors.scalar(ctx.manager(), (float) v);
    }

    /**
     * AuxK (Gao et al. 2024): the {@code auxK} largest pre-activations among dead latents reconstruct the (detached)
     * residual error {@code x - recon}; normalised by the error's variance. {@code null} when nothing is dead or
     * AuxK is off.
     */
    static NDArray auxK(NDArray pre, NDArray x, NDArray recon, SaeWeights w, NDArray deadMask, int auxK) {
        if (deadMask == null || auxK <= 0) return null;
        long nDead = deadMask.sum().getLong();
        if (nDead == 0) return null;
        int k = (int) Math.min(auxK, nDead);
        NDList tk = pre.add(deadOffset(deadMask)).topK(k, -1, true, false);
        NDArray auxActs = pre.zerosLike().scatter(tk.get(1), Activation.relu(tk.get(0)), -1);
        NDArray e = x.sub(recon).stopGradient();
        NDArray eHat = auxActs.matMul(w.get(SaeWeights.W_DEC));
        NDArray centred = e.sub(e.mean(new int[]{0}, true));
        NDArray denom = centred.square().sum(new int[]{-1}).mean().maximum(Tensors.scalar(1e-8f));
        return sumSquares(eHat.sub(e)).div(denom);
    }

    /**
     * {@code [dSae]}: 0 at the latents {@code deadMask} marks dead, -inf elsewhere (log 1 = 0, log 0 = -inf). Added to
     * pre-activations, AuxK's top k falls on dead latents only, with their values and gradients unchanged.
     */
    static NDArray deadOffset(NDArray deadMask) {
        return deadMask.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).log();
    }

    /**
     * {@code loss + coefficient * AuxK} when AuxK applies this step (recorded in {@code parts} as {@code auxk}), else
     * {@code loss}: the TopK family's shared tail of {@code trainForward}.
     */
    static NDArray withAuxK(NDArray loss, java.util.Map<String, NDArray> parts, NDArray pre, NDArray x, NDArray recon,
                            SaeWeights w, SparseCoder.Context ctx, int auxK, double coefficient) {
        NDArray aux = auxK(pre, x, recon, w, ctx.deadMask(), auxK);
        if (aux == null) return loss;
        parts.put("auxk", aux);
        return loss.add(aux.mul(constant(ctx, coefficient)));
    }
}
