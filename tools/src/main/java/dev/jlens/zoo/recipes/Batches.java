package dev.jlens.zoo.recipes;

import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.data.TaskBatch;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.jlens.model.Batch;
import dev.jlens.model.Losses;
import dev.jlens.train.BatchSource;
import dev.jlens.train.LossFn;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongFunction;

/** Turning task examples into training batches. */
final class Batches {
    private Batches() {}

    /** Training batches of a synthetic task: batch {@code step} of the task under the run's seed. */
    static BatchSource train(Task<?> task) {
        return (seed, step, n) -> of(task.withSeed(seed).batch(Split.TRAIN, step, n));
    }

    /** Evaluation batches of a synthetic task: batch {@code k} of its test split (the same for every seed). */
    static BatchSource test(Task<?> task) {
        return (seed, k, n) -> of(task.batch(Split.TEST, k, n));
    }

    /** A task batch as a training batch (same ids, mask and target weights). */
    static Batch of(TaskBatch<?> tb) {
        return tb.batch();
    }

    /** Candidates a length-bucketed batch may draw per sequence it needs. */
    static final int DRAWS_PER_ROW = 32;

    /**
     * A batch of examples of similar length, so that little of it is padding. {@code candidate.apply(j)} is the
     * step's {@code j}-th candidate example (a pure function of the step and {@code j}); the first candidate's
     * length class (by {@code bounds}, the inclusive upper lengths of all classes but the last) picks the batch's
     * class, and later candidates of the same class fill it. A class is so drawn with its probability and its
     * examples with their probabilities within it, so over many steps the data has the candidates' distribution.
     * If too few candidates fall in the class, the batch is filled with the next candidates of any class.
     */
    static Batch bucketed(LongFunction<? extends Example<?>> candidate, int n, int[] bounds) {
        List<Example<?>> picked = new ArrayList<>(n);
        List<Example<?>> others = new ArrayList<>();
        Example<?> first = candidate.apply(0);
        int cls = lengthClass(first.length(), bounds);
        picked.add(first);
        for (long j = 1; picked.size() < n && j < (long) n * DRAWS_PER_ROW; j++) {
            Example<?> ex = candidate.apply(j);
            if (lengthClass(ex.length(), bounds) == cls) picked.add(ex); else if (others.size() < n) others.add(ex);
        }
        for (int i = 0; picked.size() < n; i++) picked.add(others.get(i));
        return pack(picked);
    }

    /**
     * The sum of the weighted next-token losses divided by a constant, {@code targetsPerSequence} times the batch
     * size, instead of by the batch's own target count. With length-bucketed batches the per-batch mean would give
     * every token of a batch of short examples several times the weight of a token in a batch of long ones (and
     * skew whatever decision the short examples share); a fixed divisor weighs every token alike. Choose
     * {@code targetsPerSequence} near the data's mean so the loss reads like a per-token mean.
     */
    static LossFn fixedNormalizer(double targetsPerSequence) {
        return (logits, tb) -> {
            int b = tb.size(), targets = tb.length() - 1;
            double divisor = targetsPerSequence * b;
            NDArray perToken = Losses.nextTokenLoss(logits, tb);   // [batch, pos - 1], 0 on padding
            // the divisor goes into the weights in Java: no op with a Java number (see LossFn.nextToken)
            float[] flat = new float[b * targets];
            for (int r = 0; r < b; r++) {
                for (int p = 0; p < targets; p++) flat[r * targets + p] = (float) (tb.targetWeights()[r][p] / divisor);
            }
            NDArray w = logits.getManager().create(flat, new Shape(b, targets));
            return perToken.mul(w).sum();
        };
    }

    static int lengthClass(int length, int[] bounds) {
        for (int c = 0; c < bounds.length; c++) if (length <= bounds[c]) return c;
        return bounds.length;
    }

    /**
     * Examples right-padded to the longest of them (not to the task's maximum: short arithmetic problems then
     * cost less), weighted by their loss masks.
     */
    static Batch pack(List<? extends Example<?>> examples) {
        int n = examples.size();
        int len = Math.max(2, examples.stream().mapToInt(Example::length).max().orElse(2));
        long[][] ids = new long[n][len];
        boolean[][] mask = new boolean[n][len];
        float[][] weights = new float[n][len - 1];
        for (int b = 0; b < n; b++) {
            Example<?> ex = examples.get(b);
            Arrays.fill(ids[b], Task.PAD_ID);
            System.arraycopy(ex.ids(), 0, ids[b], 0, ex.length());
            Arrays.fill(mask[b], 0, ex.length(), true);
            boolean[] loss = ex.lossMask();
            for (int j = 0; j + 1 < ex.length(); j++) weights[b][j] = loss[j + 1] ? 1f : 0f;
        }
        return Batch.of(ids, mask, weights);
    }
}
