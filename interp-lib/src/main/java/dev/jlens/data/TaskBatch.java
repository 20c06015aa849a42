package dev.jlens.data;

import dev.jlens.model.Batch;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A fixed-length, right-padded batch of examples: the {@link Batch} (whose target weights mark each example's
 * loss positions) and the examples it was made from, with their labels.
 *
 * <p>{@code batch().targetWeights()[b][j]} (1 or 0) weights the prediction of token {@code j + 1} made at position
 * {@code j}: the layout of {@link dev.jlens.model.Losses#nextTokenLoss}, so the training loss is
 * {@code sum(nextTokenLoss(logits, batch) * targetWeights) / targetCount()}. Padding always has weight 0.
 *
 * @param <M> the task's metadata type
 */
public record TaskBatch<M>(Batch batch, List<Example<M>> examples) {

    /** Checks that the examples match the batch's rows. */
    public TaskBatch {
        Objects.requireNonNull(batch, "batch");
        examples = List.copyOf(examples);
        if (examples.size() != batch.size()) {
            throw new IllegalArgumentException("a batch of " + batch.size() + " rows got " + examples.size()
                    + " examples");
        }
    }

    /** The weight of each next-token prediction {@code [batch][length - 1]} (the batch's target weights). */
    public float[][] targetWeights() {
        return batch.targetWeights();
    }

    /** Builds the batch from examples, right-padding each to {@code length} with {@code padId}. */
    static <M> TaskBatch<M> of(List<Example<M>> examples, int length, long padId) {
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("a batch needs at least one example");
        }
        if (length < 2) {
            throw new IllegalArgumentException("batch length must be at least 2 (one prediction), got " + length);
        }
        int n = examples.size();
        long[][] ids = new long[n][length];
        boolean[][] mask = new boolean[n][length];
        float[][] weights = new float[n][length - 1];
        for (int b = 0; b < n; b++) {
            Example<M> ex = examples.get(b);
            if (ex.length() > length) {
                throw new IllegalArgumentException("example " + b + " has " + ex.length()
                        + " tokens, more than the batch length " + length);
            }
            Arrays.fill(ids[b], padId);
            System.arraycopy(ex.ids(), 0, ids[b], 0, ex.length());
            Arrays.fill(mask[b], 0, ex.length(), true);
            boolean[] loss = ex.lossMask();
            for (int j = 0; j + 1 < ex.length(); j++) {
                weights[b][j] = loss[j + 1] ? 1f : 0f;
            }
        }
        return new TaskBatch<>(Batch.of(ids, mask, weights), examples);
    }

    /** Number of weighted predictions in the batch. */
    public int targetCount() {
        return batch.targetCount();
    }

    /** Number of sequences. */
    public int size() {
        return batch.size();
    }

    @Override
    public String toString() {
        return "TaskBatch(" + batch.size() + " x " + batch.length() + ", " + targetCount() + " targets)";
    }
}
