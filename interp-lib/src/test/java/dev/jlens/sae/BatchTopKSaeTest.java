package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BatchTopKSaeTest {
    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    @Test
    void trainingKeepsExactlyKTimesBActivationsOverTheBatch() {
        SyntheticActivations data = new SyntheticActivations(64, 16, 1);
        int k = 4, b = 32;
        try (NDManager m = NDManager.newBaseManager(); NDScope scope = new NDScope();
             SparseCoder sae = SparseCoder.create(SaeConfig.of(16, 64, new SaeConfig.BatchTopK(k)), 2)) {
            NDArray x = data.batch(0, b, m).mul((float) data.normalizationScale());
            SparseCoder.Output out = sae.trainForward(x, new SparseCoder.Context(0, 1f, null, m));
            float[] acts = out.acts().toFloatArray();
            int nonzero = 0, minRow = Integer.MAX_VALUE, maxRow = 0;
            for (int r = 0; r < b; r++) {
                int row = 0;
                for (int j = 0; j < 64; j++) if (acts[r * 64 + j] != 0) row++;
                nonzero += row;
                minRow = Math.min(minRow, row);
                maxRow = Math.max(maxRow, row);
            }
            assertEquals(k * b, nonzero);
            assertTrue(maxRow > minRow, "per-token counts vary under BatchTopK: " + minRow + ".." + maxRow);
            // every kept activation is at least every dropped positive pre-activation
            float[] pre = sae.weights().preActs(x, true).toFloatArray();
            float minKept = Float.MAX_VALUE, maxDropped = 0;
            for (int i = 0; i < acts.length; i++) {
                if (acts[i] != 0) minKept = Math.min(minKept, acts[i]); else maxDropped = Math.max(maxDropped, pre[i]);
            }
            assertTrue(minKept >= maxDropped, minKept + " < " + maxDropped);
            assertEquals(minKept, out.parts().get("min_kept").getFloat(), 0f);
        }
    }

    @Test
    void theExportedThresholdGivesAboutKLatentsAtInference() {
        SyntheticActivations data = new SyntheticActivations(128, 32, 2);
        int k = 6;
        SaeTrainConfig cfg = SaeTrainConfig.builder().steps(250).batchSize(256).lr(3e-3).logEvery(50).build();
        try (SparseCoder sae = SparseCoder.create(SaeConfig.of(32, 256, new SaeConfig.BatchTopK(k)), 4)) {
            try (SaeTrainer t = SaeTrainer.of(data, cfg).add("btk", sae).progress(ProgressSink.none())) {
                SaeTrainer.Result r = t.train();
                assertEquals(k, r.last("btk").l0(), 1e-9, "training L0 is exactly k");
            }
            float estimate = ((BatchTopKSae) sae).thresholdEstimate();
            assertTrue(estimate > 0);
            for (float v : TestSaes.get(sae, SaeWeights.THRESHOLD)) assertEquals(estimate, v, 0f);
            SaeMetrics.Result m = SaeMetrics.of(sae, data,
                    SaeMetrics.Options.batches(4).batchSize(256).fromBatch(10_000));   // held-out batches
            assertEquals(k, m.l0(), 0.3 * k, "inference L0 with the threshold: " + m);
            assertTrue(m.fvu() < 0.5, m.toString());
        }
    }
}
