package dev.jlens.train;

import dev.jlens.model.Batch;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.jlens.model.Losses;

/**
 * The training objective: a scalar loss (differentiable, on the logits' device) from the model's logits
 * {@code [batch, pos, d_vocab]} for one batch. The default, {@link #nextToken()}, is the weighted mean next-token
 * cross-entropy. A loss that also needs activations can record them with a forward hook attached to the model
 * for the duration of training.
 */
@FunctionalInterface
public interface LossFn {

    /** The scalar loss of {@code logits} on {@code batch}. */
    NDArray loss(NDArray logits, Batch batch);

    /**
     * Weighted mean next-token cross-entropy: {@code sum(w * ce) / sum(w)} over the non-padding targets, with
     * {@code w} the batch's {@link Batch#targetWeights()}. A batch whose weights are all zero is an error.
     */
    static LossFn nextToken() {
        return (logits, tb) -> {
            double total = tb.targetWeight();
            if (!(total > 0)) {
                throw new IllegalArgumentException("the batch's loss weights are zero on every non-padding target, so its "
                        + "loss is undefined; give at least one target a positive weight");
            }
            int b = tb.size(), targets = tb.length() - 1;
            NDArray perToken = Losses.nextTokenLoss(logits, tb);   // [batch, pos - 1], 0 on padding
            // Weights normalised in Java (w / sum w), so the loss is one weighted sum. No op with a Java number: DJL
            // turns the number into a tensor that borrows a direct buffer and frees it before the backward pass needs it.
            float[] flat = new float[b * targets];
            for (int r = 0; r < b; r++) {
                for (int p = 0; p < targets; p++) flat[r * targets + p] = (float) (tb.targetWeights()[r][p] / total);
            }
            NDArray w = logits.getManager().create(flat, new Shape(b, targets));
            return perToken.mul(w).sum();
        };
    }
}
