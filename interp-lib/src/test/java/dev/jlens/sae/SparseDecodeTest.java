package dev.jlens.sae;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jlens.testing.Models;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sparse decoder and the sparse training step against the dense TopK SAE. */
class SparseDecodeTest {

    private static SparseCoder sae(int dIn, int dSae, int k, long seed) {
        return sae(dIn, dSae, k, 0, seed);
    }

    private static SparseCoder sae(int dIn, int dSae, int k, int auxK, long seed) {
        SparseCoder s = SparseCoder.create(SaeConfig.of(dIn, dSae, new SaeConfig.TopK(k, auxK, 1.0 / 32)), seed);
        // non-zero biases so that both are exercised
        try (NDManager m = NDManager.newBaseManager()) {
            s.weights().get(SaeWeights.B_DEC).addi(m.randomNormal(new Shape(dIn)).mul(0.1f));
            s.weights().get(SaeWeights.B_ENC).addi(m.randomNormal(new Shape(dSae)).mul(0.1f));
        }
        return s;
    }

    private static SparseCoder copy(SparseCoder s) {
        Map<String, NDArray> t = new LinkedHashMap<>();
        s.weights().params().forEach((k, v) -> t.put(k, v.duplicate()));
        return SparseCoder.wrap(s.cfg(), new SaeWeights(s.cfg(), t));
    }

    @Test
    void decodeEqualsTheDenseDecode() {
        try (SparseCoder s = sae(24, 96, 5, 1); NDManager m = NDManager.newBaseManager(); NDScope scope = new NDScope()) {
            NDArray x = m.randomNormal(new Shape(3, 7, 24));
            NDArray dense = s.decode(s.encode(x));
            SparseDecode.Active a = SparseDecode.topK(s, x);
            assertEquals(new Shape(3, 7, 5), a.values().getShape());
            NDArray sparse = SparseDecode.decode(s.weights(), a);
            assertEquals(dense.getShape(), sparse.getShape());
            assertTrue(Models.maxAbsDiff(dense, sparse) < 1e-5, "max diff " + Models.maxAbsDiff(dense, sparse));
            // the decoded latents really are the dense encoding's non-zeros
            assertEquals(dense.sub(s.weights().get(SaeWeights.B_DEC)).abs().sum().getFloat() > 0, true);
        }
    }

    @Test
    void decodeWithoutBias() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray w = m.create(new float[] {1, 0, 0, 1, 2, 3}, new Shape(3, 2));
            NDArray vals = m.create(new float[] {2, 1, 0.5f, 4}, new Shape(2, 2));
            NDArray idx = m.create(new long[] {0, 2, 1, 2}, new Shape(2, 2));
            float[] r = SparseDecode.decode(vals, idx, w, null).toFloatArray();
            // row 0: 2*[1,0] + 1*[2,3] = [4,3]; row 1: 0.5*[0,1] + 4*[2,3] = [8, 12.5]
            assertEquals(4f, r[0], 1e-6);
            assertEquals(3f, r[1], 1e-6);
            assertEquals(8f, r[2], 1e-6);
            assertEquals(12.5f, r[3], 1e-6);
            assertThrows(IllegalArgumentException.class, () -> SparseDecode.decode(vals, idx.reshape(4), w, null));
        }
    }

    @Test
    void sparseBackwardGivesTheDenseStepsLossAndGradients() {
        try (SparseCoder dense = sae(16, 64, 4, 7); SparseCoder sparse = copy(dense)) {
            float[] loss = compareSteps(dense, sparse, 37, null);
            assertEquals(loss[1], loss[2], 1e-6 * Math.abs(loss[1]), "without AuxK the loss is the MSE term");
        }
    }

    @Test
    void sparseStepWithDeadLatentsGivesAuxKsLossAndGradients() {
        boolean[] dead = new boolean[64];
        for (int j = 0; j < 64; j++) dead[j] = j % 3 != 0;            // 42 dead, among them latents that fire now
        boolean[] fewDead = new boolean[64];
        fewDead[5] = fewDead[17] = fewDead[60] = true;               // fewer dead than auxK: all three are used
        for (boolean[] mask : new boolean[][] {dead, fewDead}) {
            try (SparseCoder dense = sae(16, 64, 4, 12, 7); SparseCoder sparse = copy(dense)) {
                float[] loss = compareSteps(dense, sparse, 37, mask);
                assertTrue(loss[0] > loss[2] * 1.001, "AuxK must add to the loss: " + java.util.Arrays.toString(loss));
            }
        }
    }

    /**
     * One general step (trainForward, backward) on {@code dense} and one sparse step on {@code sparse} (equal
     * weights) with the same dead latents; asserts equal losses and gradients; returns {dense loss, sparse loss,
     * sparse MSE term}.
     */
    private static float[] compareSteps(SparseCoder dense, SparseCoder sparse, int batch, boolean[] dead) {
        int dIn = (int) dense.cfg().dIn();
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = m.randomNormal(new Shape(batch, dIn));
            NDArray mask = dead == null ? null : m.create(dead);
            float denseLoss;
            SparseDecode.TopKStep step;
            for (NDArray p : dense.weights().params().values()) p.setRequiresGradient(true);
            for (NDArray p : sparse.weights().params().values()) p.setRequiresGradient(true);
            try (NDScope scope = new NDScope(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                SparseCoder.Output o = dense.trainForward(x, new SparseCoder.Context(0, 1f, mask, m));
                gc.backward(o.loss());
                denseLoss = o.loss().getFloat();
            }
            try (NDScope scope = new NDScope(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                step = SparseDecode.trainTopK(sparse, x, gc, 10, mask);   // uneven last chunk on purpose
            }
            assertEquals(denseLoss, step.loss(), 1e-4 * Math.abs(denseLoss));
            assertSameGradients(dense, sparse);
            return new float[] {denseLoss, step.loss(), step.mse()};
        }
    }

    private static SparseCoder batchSae(SaeConfig.Kind kind, long seed) {
        SparseCoder s = SparseCoder.create(SaeConfig.of(16, 64, kind), seed);
        try (NDManager m = NDManager.newBaseManager()) {
            s.weights().get(SaeWeights.B_DEC).addi(m.randomNormal(new Shape(16)).mul(0.1f));
            s.weights().get(SaeWeights.B_ENC).addi(m.randomNormal(new Shape(64)).mul(0.1f));
        }
        return s;
    }

    // AuxK coefficient 1: its term is large enough for the loss comparison to check it
    private static final SaeConfig.Kind BATCH_TOPK = new SaeConfig.BatchTopK(4, 12, 1.0, 0.99);
    private static final SaeConfig.Kind MATRYOSHKA = new SaeConfig.Matryoshka(4, java.util.List.of(16, 16, 32), 12,
            1.0, 0.99);

    @Test
    void batchTopKSparseStepGivesTheDenseStepsLossGradientsAndMinKept() {
        for (boolean[] dead : deadMasks()) {
            try (SparseCoder dense = batchSae(BATCH_TOPK, 7); SparseCoder sparse = copy(dense)) {
                compareBatchSteps(dense, sparse, dead);
            }
        }
    }

    @Test
    void matryoshkaSparseStepGivesTheDenseStepsLossGradientsAndMinKept() {
        for (boolean[] dead : deadMasks()) {
            try (SparseCoder dense = batchSae(MATRYOSHKA, 8); SparseCoder sparse = copy(dense)) {
                float[] r = compareBatchSteps(dense, sparse, dead);
                if (dead == null) assertTrue(Math.abs(r[0] - r[1]) > 1e-3 * r[0], "the prefix mean is not the full MSE");
            }
        }
    }

    @Test
    void batchTopKSparseStepWhenFewerThanKTimesBScoresArePositive() {
        // k 40 of 64 latents: k*B exceeds the positive scores, so every positive one is kept (threshold 0)
        try (SparseCoder dense = batchSae(new SaeConfig.BatchTopK(40, 12, 1.0, 0.99), 9); SparseCoder sparse = copy(dense)) {
            compareBatchSteps(dense, sparse, null);
        }
    }

    /** No dead latents; 42 dead (some of them firing now); three dead, fewer than auxK. */
    private static boolean[][] deadMasks() {
        boolean[] dead = new boolean[64];
        for (int j = 0; j < 64; j++) dead[j] = j % 3 != 0;
        boolean[] fewDead = new boolean[64];
        fewDead[5] = fewDead[17] = fewDead[60] = true;
        return new boolean[][] {null, dead, fewDead};
    }

    /**
     * A general step and a {@link SparseDecode#trainBatchTopK} step (chunks of 10 tokens over 37: an uneven last
     * one) on equal weights, on a batch where some tokens are scaled up (far more than k latents each) and some down
     * (none): equal losses, MSE terms, min_kept and gradients, and the firing counts of the dense activations.
     * Returns {dense loss, dense MSE term}.
     */
    private static float[] compareBatchSteps(SparseCoder dense, SparseCoder sparse, boolean[] dead) {
        int batch = 37, k = 4;   // initial candidates per token: 4k = 16, so the tokens above k*5 force a retry
        Engine.getInstance().setRandomSeed(3);   // a fixed batch: the assertions on its tokens below hold for it
        try (NDManager m = NDManager.newBaseManager()) {
            float[] scale = new float[batch];
            for (int b = 0; b < batch; b++) scale[b] = b % 9 == 2 ? 5f : b % 9 == 6 ? 0.01f : 1f;
            NDArray x = m.randomNormal(new Shape(batch, 16)).mul(m.create(scale).reshape(batch, 1));
            NDArray mask = dead == null ? null : m.create(dead);
            float denseLoss, denseMse, denseMinKept, denseAux = 0;
            float[] denseFired;
            int[] perToken = new int[batch];
            SparseDecode.BatchTopKStep step;
            for (NDArray p : dense.weights().params().values()) p.setRequiresGradient(true);
            for (NDArray p : sparse.weights().params().values()) p.setRequiresGradient(true);
            try (NDScope scope = new NDScope(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                SparseCoder.Output o = dense.trainForward(x, new SparseCoder.Context(0, 1f, mask, m));
                gc.backward(o.loss());
                denseLoss = o.loss().getFloat();
                denseMse = o.parts().get("mse").getFloat();
                denseMinKept = o.parts().get("min_kept").getFloat();
                if (o.parts().containsKey("auxk")) denseAux = o.parts().get("auxk").getFloat();
                float[] acts = o.acts().toFloatArray();
                denseFired = new float[64];
                for (int i = 0; i < acts.length; i++) {
                    if (acts[i] > 0) {
                        perToken[i / 64]++;
                        denseFired[i % 64]++;
                    }
                }
            }
            int most = java.util.Arrays.stream(perToken).max().getAsInt();
            int fewest = java.util.Arrays.stream(perToken).min().getAsInt();
            int kind = dense.cfg().kind() instanceof SaeConfig.BatchTopK b ? b.k() : k;
            if (kind == k) {
                assertTrue(most >= 5 * k, "a token with far more than k latents: " + java.util.Arrays.toString(perToken));
                assertEquals(0, fewest, "a token with none: " + java.util.Arrays.toString(perToken));
            } else {
                assertTrue(java.util.Arrays.stream(perToken).sum() < kind * batch, "fewer positives than k*B");
            }
            try (NDScope scope = new NDScope(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                step = SparseDecode.trainBatchTopK(sparse, x, gc, 10, mask);
            }
            assertEquals(denseLoss, step.loss(), 1e-4 * Math.abs(denseLoss), "loss");
            assertEquals(denseMse, step.mse(), 1e-4 * Math.abs(denseMse), "mse");
            assertEquals(denseMinKept, step.minKept(), 1e-5 * Math.abs(denseMinKept), "min_kept");
            assertTrue(denseMinKept > 0 && Float.isFinite(denseMinKept));
            org.junit.jupiter.api.Assertions.assertArrayEquals(denseFired, step.fired(), "firing counts");
            if (dead != null) assertTrue(denseAux > 3e-3 * denseLoss, "AuxK takes part: " + denseAux + " of " + denseLoss);
            assertSameGradients(dense, sparse);
            return new float[] {denseLoss, denseMse};
        }
    }

    private static void assertSameGradients(SparseCoder dense, SparseCoder sparse) {
        Map<String, Double> diffs = new LinkedHashMap<>();
        for (String n : new String[] {SaeWeights.W_ENC, SaeWeights.B_ENC, SaeWeights.W_DEC, SaeWeights.B_DEC}) {
            try (NDArray gd = dense.weights().get(n).getGradient(); NDArray gs = sparse.weights().get(n).getGradient()) {
                double scale = gd.abs().max().getFloat();
                assertTrue(scale > 0, n + " got no gradient");
                diffs.put(n, Models.maxAbsDiff(gd, gs) / scale);
            }
        }
        for (var e : diffs.entrySet()) assertTrue(e.getValue() < 1e-4, "relative gradient diffs " + diffs);
    }

    @Test
    void theTrainerTakesTheSparseStepsOnlyWhereTheyPay() {
        assertTrue(SparseDecode.sparsePays(4096, 8192, 32), "the bench's size: d_sae 256 k, 33M dense latents");
        assertTrue(SparseDecode.sparsePays(2048, 4096, 16));
        assertFalse(SparseDecode.sparsePays(4096, 1024, 16), "d_sae 64 k: the dense route was faster");
        assertFalse(SparseDecode.sparsePays(256, 8192, 8), "2M dense latents: the dense route");
        assertFalse(SparseDecode.sparsePays(256, 256, 8), "a notebook's dictionary");
    }

    @Test
    void sparseStepsTrainTheSameAsTheGeneralRoute() {
        int perK = SparseDecode.sparseMinLatentsPerK;
        long elements = SparseDecode.sparseMinDenseElements;
        // these small dictionaries would take the general route: force the sparse one where the trainer may take it
        SparseDecode.sparseMinLatentsPerK = 0;
        SparseDecode.sparseMinDenseElements = 0;
        try {
            trainBothRoutes();
        } finally {
            SparseDecode.sparseMinLatentsPerK = perK;
            SparseDecode.sparseMinDenseElements = elements;
        }
    }

    private static void trainBothRoutes() {
        SyntheticActivations data = new SyntheticActivations(128, 32, 5);
        // dead after 4 steps' tokens: AuxK takes part for most of the run
        SaeTrainConfig cfg = SaeTrainConfig.builder().steps(30).batchSize(96).lr(3e-3).deadAfterTokens(4 * 96)
                .logEvery(100).build();
        for (SaeConfig.Kind kind : new SaeConfig.Kind[] {new SaeConfig.TopK(4), new SaeConfig.BatchTopK(4),
                new SaeConfig.Matryoshka(4, java.util.List.of(32, 64, 160))}) {
            boolean thresholded = !(kind instanceof SaeConfig.TopK);
            float[][] weights = new float[2][];
            double[] l0 = new double[2], loss = new double[2], threshold = new double[2];
            for (int run = 0; run < 2; run++) {
                try (SparseCoder sae = SparseCoder.create(SaeConfig.of(32, 256, kind), 11);
                     SaeTrainer t = SaeTrainer.of(data, cfg).fastSteps(run == 1).add("sae", sae)
                             .progress(dev.jlens.train.ProgressSink.none())) {
                    SaeTrainer.Result r = t.train();
                    weights[run] = sae.weights().get(SaeWeights.W_DEC).toFloatArray();
                    l0[run] = r.last("sae").l0();
                    loss[run] = r.last("sae").loss();
                    if (thresholded) threshold[run] = sae.weights().get(SaeWeights.THRESHOLD).max().getFloat();
                    double first = r.history().get("sae").get(0).loss();
                    assertTrue(first > loss[run] * 1.2, kind.architecture() + " trains: " + first + " -> " + loss[run]);
                }
            }
            double maxDiff = 0;
            for (int j = 0; j < weights[0].length; j++) maxDiff = Math.max(maxDiff, Math.abs(weights[0][j] - weights[1][j]));
            String a = kind.architecture();
            assertTrue(maxDiff < 1e-3, a + ": decoder weights after 30 steps differ by " + maxDiff);
            assertEquals(l0[0], l0[1], 1e-9, a + ": L0 from the dense activations and from the sparse step's counts");
            assertEquals(loss[0], loss[1], 1e-4 * loss[0], a);
            if (thresholded) {
                assertTrue(threshold[0] > 0, a + ": the threshold estimate is updated");
                assertEquals(threshold[0], threshold[1], 1e-4 * threshold[0], a + ": threshold estimate");
            }
        }
    }

    @Test
    void onlyTopKDictionaries() {
        try (SparseCoder relu = SparseCoder.create(SaeConfig.of(8, 16, new SaeConfig.Relu(1e-3)), 0);
             NDManager m = NDManager.newBaseManager()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SparseDecode.topK(relu, m.zeros(new Shape(2, 8))));
            assertTrue(e.getMessage().contains("standard"), e.getMessage());
        }
    }
}
