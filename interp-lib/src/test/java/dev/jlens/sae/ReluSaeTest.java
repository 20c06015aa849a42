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

    /**
     * 128 features in 64 dimensions. At the TopK test's 512 features in 64 dimensions an L1 penalty does not single
     * out the true code (with 8x superposition, dense combinations of the many directions have a smaller L1 norm than
     * the true sparse code): ReLU SAEs reach a mean max cosine of only about 0.5 there, whatever the coefficient.
     */
    @Test
    void recoversTheSyntheticFeatures() {
        SyntheticActivations data = new SyntheticActivations(128, 64, 0.001, 0.03, 1);
        try (SparseCoder sae = SparseCoder.create(SaeConfig.of(64, 256, new SaeConfig.Relu(0.3)), 7)) {
            GroundTruth.check("ReLU", data, sae, GroundTruth.config().steps(1000).sparsityWarmupSteps(200).build());
        }
    }
}
