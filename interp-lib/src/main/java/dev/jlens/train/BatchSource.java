package dev.jlens.train;

import dev.jlens.model.Batch;

/**
 * Training data: the batch for a step, as a pure function of {@code (seed, step)}. Purity is what makes runs
 * reproducible and lets a resumed run see exactly the batches an uninterrupted one would have seen; a source must
 * not keep state between calls (derive any randomness from {@code seed} and {@code step}, e.g. with
 * {@code new SplittableRandom(seed * 1_000_003L + step)}).
 */
@FunctionalInterface
public interface BatchSource {

    /** The batch of {@code batchSize} sequences for the 0-based {@code step}. */
    Batch batch(long seed, int step, int batchSize);
}
