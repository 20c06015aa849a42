package dev.jlens.sae;

import dev.jlens.train.ProgressSink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shared ground-truth recipe: known features, a dictionary trained on them, mean max cosine >= 0.9. */
final class GroundTruth {
    private GroundTruth() {}

    /** Features firing with probability 0.001..0.03 (about 4.4 per token). */
    static SyntheticActivations data() {
        return new SyntheticActivations(512, 64, 0.001, 0.03, 1);
    }

    static SaeTrainConfig.Builder config() {
        return SaeTrainConfig.builder().steps(1200).batchSize(512).lr(5e-3).warmupSteps(50).deadAfterTokens(100_000)
                .logEvery(100);
    }

    static double check(String label, SyntheticActivations data, SparseCoder sae, SaeTrainConfig cfg) {
        long t0 = System.nanoTime();
        SaeTrainer.Result r;
        try (SaeTrainer t = SaeTrainer.of(data, cfg).add("sae", sae).progress(ProgressSink.none())) {
            r = t.train();
        }
        double mmc = data.meanMaxCosine(sae);
        System.out.printf("%s ground truth: mean max cosine %.4f after %d steps in %.1f s; last step %s%n", label, mmc,
                cfg.steps(), (System.nanoTime() - t0) / 1e9, r.last("sae"));
        assertEquals(data.normalizationScale(), sae.cfg().inputScale(), 0.0);
        assertTrue(mmc >= 0.9, label + " mean max cosine " + mmc);
        return mmc;
    }
}
