package dev.jlens.sae;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TopKSaeTest {
    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    @Test
    void keepsAtMostKLatentsPerTokenAndTheyAreTheLargest() {
        SyntheticActivations data = new SyntheticActivations(64, 16, 1);
        int k = 3;
        try (NDManager m = NDManager.newBaseManager(); NDScope scope = new NDScope();
             SparseCoder sae = SparseCoder.create(SaeConfig.of(16, 48, new SaeConfig.TopK(k)), 2)) {
            NDArray raw = data.batch(0, 40, m);
            float[] acts = sae.encode(raw).toFloatArray();
            float[] pre = sae.weights().preActs(raw, true).toFloatArray();
            for (int r = 0; r < 40; r++) {
                int nz = 0;
                float minKept = Float.MAX_VALUE, maxDropped = -Float.MAX_VALUE;
                for (int j = 0; j < 48; j++) {
                    int i = r * 48 + j;
                    if (acts[i] != 0) {
                        nz++;
                        assertEquals(pre[i], acts[i], 0f);
                        minKept = Math.min(minKept, pre[i]);
                    } else {
                        maxDropped = Math.max(maxDropped, pre[i]);
                    }
                }
                assertTrue(nz <= k, "row " + r + " has " + nz + " latents");
                if (nz == k) assertTrue(minKept >= maxDropped);
            }
            float[] train = sae.trainForward(raw, new SparseCoder.Context(0, 1f, null, m)).acts().toFloatArray();
            assertEquals(acts.length, train.length);
            for (int i = 0; i < acts.length; i++) assertEquals(acts[i], train[i], 0f, "training rule = inference rule");
        }
    }

    @Test
    void decoderRowsStayUnitNormAndTheirGradientIsProjectedOntoTheSphere() {
        SyntheticActivations data = new SyntheticActivations(64, 16, 1);
        try (NDManager m = NDManager.newBaseManager();
             SparseCoder sae = SparseCoder.create(SaeConfig.of(16, 48, new SaeConfig.TopK(3)), 2)) {
            NDArray wDec = sae.weights().get(SaeWeights.W_DEC);
            wDec.setRequiresGradient(true);
            SparseCoder.Context ctx = new SparseCoder.Context(0, 1f, null, m);
            try (NDScope scope = new NDScope()) {
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(sae.trainForward(data.batch(0, 32, m), ctx).loss());
                }
                sae.beforeStep(ctx);
                float[] g = wDec.getGradient().toFloatArray(), w = wDec.toFloatArray();
                double gNorm = 0;
                for (int i = 0; i < 48; i++) {
                    double dot = 0;
                    for (int d = 0; d < 16; d++) {
                        dot += g[i * 16 + d] * w[i * 16 + d];
                        gNorm += g[i * 16 + d] * g[i * 16 + d];
                    }
                    assertEquals(0, dot, 1e-6, "row " + i);
                }
                assertTrue(gNorm > 0, "the test needs a gradient");
                wDec.subi(wDec.getGradient().mul(5f));   // a large step leaves the sphere ...
                sae.afterStep(ctx, null);                 // ... and renormalising brings the rows back
            }
            wDec.setRequiresGradient(false);
            for (float n : sae.weights().decoderNorms().toFloatArray()) assertEquals(1f, n, 1e-5f);
        }
    }

    @Test
    void recoversTheSyntheticFeatures() {
        SyntheticActivations data = GroundTruth.data();
        try (SparseCoder sae = SparseCoder.create(SaeConfig.of(64, 1024, new SaeConfig.TopK(6)), 7)) {
            GroundTruth.check("TopK", data, sae, GroundTruth.config().build());
        }
    }
}
