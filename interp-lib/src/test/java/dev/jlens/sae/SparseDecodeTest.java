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
            Map<String, Double> diffs = new LinkedHashMap<>();
            for (String n : new String[] {SaeWeights.W_ENC, SaeWeights.B_ENC, SaeWeights.W_DEC, SaeWeights.B_DEC}) {
                try (NDArray gd = dense.weights().get(n).getGradient(); NDArray gs = sparse.weights().get(n).getGradient()) {
                    double scale = gd.abs().max().getFloat();
                    assertTrue(scale > 0, n + " got no gradient");
                    diffs.put(n, Models.maxAbsDiff(gd, gs) / scale);
                }
            }
            for (var e : diffs.entrySet()) assertTrue(e.getValue() < 1e-4, "relative gradient diffs " + diffs);
            return new float[] {denseLoss, step.loss(), step.mse()};
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
