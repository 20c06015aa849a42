package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReluSaeTest {
    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    /** mse + coef * scale * mean_b sum_i f_bi * w_i, computed in Java; w_i = sum over sources of ||W_dec[i, source]||. */
    private static void checkLoss(int nSources) {
        int d = 6, f = 10, b = 7;
        double coef = 0.3;
        float sparsityScale = 0.5f;
        SaeConfig cfg = SaeConfig.of(d, f, new SaeConfig.Relu(coef)).withSources(nSources);
        float[] xs = TestSaes.uniform(b * d, -1, 1, 1);
        float[] wEnc = TestSaes.uniform(d * f, -1, 1, 2), bEnc = TestSaes.uniform(f, -0.1, 0.1, 3);
        float[] wDec = TestSaes.uniform(f * d, -2, 2, 4), bDec = TestSaes.uniform(d, -0.1, 0.1, 5);
        try (NDManager m = NDManager.newBaseManager(); NDScope scope = new NDScope();
             SparseCoder sae = TestSaes.of(cfg, wEnc, bEnc, wDec, bDec, null)) {
            SparseCoder.Output out = sae.trainForward(m.create(xs, new Shape(b, d)),
                    new SparseCoder.Context(0, sparsityScale, null, m));
            int dm = d / nSources;
            double[] weight = new double[f];
            for (int i = 0; i < f; i++) {
                for (int s = 0; s < nSources; s++) {
                    double ss = 0;
                    for (int j = 0; j < dm; j++) ss += Math.pow(wDec[i * d + s * dm + j], 2);
                    weight[i] += Math.sqrt(ss);
                }
            }
            double mse = 0, l1 = 0;
            for (int r = 0; r < b; r++) {
                double[] acts = new double[f];
                for (int i = 0; i < f; i++) {
                    double pre = bEnc[i];
                    for (int j = 0; j < d; j++) pre += (xs[r * d + j] - bDec[j]) * wEnc[j * f + i];
                    acts[i] = Math.max(0, pre);
                    l1 += acts[i] * weight[i] / b;
                }
                for (int j = 0; j < d; j++) {
                    double rec = bDec[j];
                    for (int i = 0; i < f; i++) rec += acts[i] * wDec[i * d + j];
                    mse += Math.pow(xs[r * d + j] - rec, 2) / b;
                }
            }
            assertEquals(l1, out.parts().get("l1").getFloat(), 1e-4 * l1);
            double want = mse + coef * sparsityScale * l1;
            assertEquals(want, out.loss().getFloat(), 1e-4 * want, nSources + " sources");
        }
    }

    @Test
    void l1IsWeightedByTheDecoderNorm() {
        checkLoss(1);
    }

    @Test
    void aCrosscodersL1WeightIsTheSumOfItsPerSourceNorms() {
        checkLoss(2);
    }

    /** Anthropic's April 2024 init for L1 dictionaries: rows of norm 0.1, encoder = decoder transpose; TopK keeps unit rows. */
    @Test
    void decoderRowsStartAtNormOneTenthWithTheEncoderTheirTranspose() {
        for (int nSources : new int[]{1, 2}) {
            try (NDScope scope = new NDScope();
                 SparseCoder relu = SparseCoder.create(SaeConfig.of(8, 20, new SaeConfig.Relu(0.1)).withSources(nSources), 3);
                 SparseCoder topK = SparseCoder.create(SaeConfig.of(8, 20, new SaeConfig.TopK(2)).withSources(nSources), 3)) {
                for (float n : relu.weights().decoderNorms().toFloatArray()) assertEquals(0.1f, n, 1e-6f);
                for (float n : topK.weights().decoderNorms().toFloatArray()) assertEquals(1f, n, 1e-5f);
                NDArray wDec = relu.weights().get(SaeWeights.W_DEC);
                assertTrue(wDec.transpose().contentEquals(relu.weights().get(SaeWeights.W_ENC)));
                assertTrue(wDec.div(0.1f).sub(topK.weights().get(SaeWeights.W_DEC)).abs().max().getFloat() < 1e-6f,
                        "same directions as the unit-norm init");
            }
        }
    }

    /** The TopK test's data; only because the decoder rows start small (0.1) does an L1 dictionary recover it. */
    @Test
    void recoversTheSyntheticFeatures() {
        SyntheticActivations data = GroundTruth.data();
        try (SparseCoder sae = SparseCoder.create(SaeConfig.of(64, 1024, new SaeConfig.Relu(0.15)), 7)) {
            GroundTruth.check("ReLU", data, sae, GroundTruth.config().build());
        }
    }
}
