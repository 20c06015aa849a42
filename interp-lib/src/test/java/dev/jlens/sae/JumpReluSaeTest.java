package dev.jlens.sae;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JumpReluSaeTest {
    private static final int B = 16, F = 8;
    private static final double EPS = 0.1;

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    /** H_eps: the Heaviside step smoothed over the kernel's width, whose theta-derivative is the estimator's. */
    private static double smoothStep(double u) {
        return Math.max(0, Math.min(1, u / EPS + 0.5));
    }

    @Test
    void straightThroughGradientsMatchThePaperAndFiniteDifferences() {
        float[] pre = TestSaes.uniform(B * F, -0.2, 0.8, 1);
        float[] theta = TestSaes.uniform(F, 0.1, 0.5, 2);
        float[] r = TestSaes.uniform(B * F, -1, 1, 3);
        float[] q = TestSaes.uniform(B * F, -1, 1, 4);
        float[] gTheta, gPre, acts, step;
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray preA = m.create(pre, new Shape(B, F)).duplicate();
            NDArray thetaA = m.create(theta).duplicate();
            NDArray rA = m.create(r, new Shape(B, F)).duplicate(), qA = m.create(q, new Shape(B, F)).duplicate();
            preA.setRequiresGradient(true);
            thetaA.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray[] out = JumpReluSae.jumpRelu(preA, thetaA, EPS);
                acts = out[0].toFloatArray();
                step = out[1].toFloatArray();
                gc.backward(out[0].mul(rA).sum().add(out[1].mul(qA).sum()));
            }
            gTheta = thetaA.getGradient().toFloatArray();
            gPre = preA.getGradient().toFloatArray();
        }
        int inKernel = 0;
        for (int j = 0; j < F; j++) {
            double want = 0;
            for (int b = 0; b < B; b++) {
                int i = b * F + j;
                double u = (pre[i] - theta[j]) / EPS;
                double k = Math.abs(u) < 0.5 ? 1 : 0;
                inKernel += (int) k;
                boolean above = pre[i] > theta[j];
                assertEquals(above ? pre[i] : 0f, acts[i], 0f, "JumpReLU value");
                assertEquals(above ? 1f : 0f, step[i], 0f, "step value");
                assertEquals(above ? r[i] : 0f, gPre[i], 1e-6, "d/dpre = H(pre - theta) * upstream");
                want += r[i] * -(theta[j] / EPS) * k + q[i] * -(1 / EPS) * k;
            }
            assertEquals(want, gTheta[j], 1e-4 * Math.max(1, Math.abs(want)), "d/dtheta of latent " + j);
        }
        assertTrue(inKernel > 10, "the test data must put pre-activations inside the kernel; got " + inKernel);

        // The step's estimator is the exact derivative of sum q * H_eps(pre - theta): central differences agree.
        double h = 1e-7;   // far below the spacing of the kernel's edges in this data
        for (int j = 0; j < F; j++) {
            double plus = 0, minus = 0, ste = 0;
            for (int b = 0; b < B; b++) {
                int i = b * F + j;
                plus += q[i] * smoothStep(pre[i] - (theta[j] + h));
                minus += q[i] * smoothStep(pre[i] - (theta[j] - h));
                double u = (pre[i] - theta[j]) / EPS;
                ste += q[i] * -(1 / EPS) * (Math.abs(u) < 0.5 ? 1 : 0);
            }
            assertEquals((plus - minus) / (2 * h), ste, 1e-3 * Math.max(1, Math.abs(ste)), "finite difference, latent " + j);
        }
    }

    @Test
    void theL0PenaltyLowersL0AndThresholdsStayNonNegative() {
        SyntheticActivations data = new SyntheticActivations(64, 16, 3);
        SaeTrainConfig cfg = SaeTrainConfig.builder().steps(300).batchSize(128).lr(1e-2).logEvery(50).build();   // log-threshold steps are relative: give them room
        try (SaeTrainer t = SaeTrainer.of(data, cfg).progress(ProgressSink.none())) {
            t.add("free", SaeConfig.of(16, 128, new SaeConfig.JumpRelu(0.0, 0.05, 0.05)));
            t.add("sparse", SaeConfig.of(16, 128, new SaeConfig.JumpRelu(0.05, 0.05, 0.05)));
            SaeTrainer.Result r = t.train();
            double free = r.last("free").l0(), sparse = r.last("sparse").l0();
            assertTrue(sparse < 0.7 * free, "L0 with the penalty " + sparse + ", without " + free);
            float[] th = TestSaes.get(t.dictionary("sparse"), SaeWeights.THRESHOLD);
            double mean = 0;
            for (float v : th) {
                assertTrue(v >= 0, "threshold " + v);
                mean += v / th.length;
            }
            assertTrue(mean > 0.05, "the penalty raises the thresholds from their 0.05 start; mean " + mean);
            SaeMetrics.Result m = SaeMetrics.of(t.dictionary("sparse"), data,
                    SaeMetrics.Options.batches(2).batchSize(256).fromBatch(1000));
            assertEquals(sparse, m.l0(), 0.35 * sparse, "inference rule = training rule: " + m);
        }
    }
}
