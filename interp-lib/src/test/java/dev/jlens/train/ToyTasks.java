package dev.jlens.train;

import dev.jlens.model.Batch;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Small synthetic tasks for trainer tests; every batch is a pure function of (seed, step). */
final class ToyTasks {
    private ToyTasks() {}

    /**
     * Copy: {@code x_1 .. x_k SEP x_1 .. x_k} with {@code x_i} uniform over the {@code vocab - 1} symbols below SEP
     * ({@code SEP = vocab - 1}). The loss weights select the k copied tokens only: they are fully determined by the
     * prefix, so a model that learned to copy drives their loss to 0, while a model that only learned the symbol
     * frequencies stays at {@code log(vocab - 1)}.
     */
    static BatchSource copy(int k, int vocab) {
        return (seed, step, n) -> {
            SplittableRandom r = new SplittableRandom(seed * 1_000_003L + step);
            int len = 2 * k + 1;
            long[][] ids = new long[n][len];
            float[][] w = new float[n][len - 1];
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < k; i++) {
                    ids[b][i] = r.nextInt(vocab - 1);
                    ids[b][k + 1 + i] = ids[b][i];
                }
                ids[b][k] = vocab - 1;
                // position p predicts token p + 1: the copied tokens are targets k+1 .. 2k, predicted from k .. 2k-1
                Arrays.fill(w[b], k, 2 * k, 1f);
            }
            return Batch.of(ids).withTargetWeights(w);
        };
    }

    /** The same sequences with every target weighted 1 (the unpredictable prefix included). */
    static BatchSource copyUnmasked(int k, int vocab) {
        BatchSource masked = copy(k, vocab);
        return (seed, step, n) -> masked.batch(seed, step, n).withTargetWeights(null);
    }
}
