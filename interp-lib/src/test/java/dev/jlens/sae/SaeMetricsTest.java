package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.Table;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SaeMetricsTest {
    private static final int D = 4, N = 200;

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    private static SparseCoder identity(double inputScale) {
        SaeConfig cfg = SaeConfig.of(D, D, new SaeConfig.Relu(0)).withInputScale(inputScale);
        return TestSaes.of(cfg, TestSaes.identity(D), new float[D], TestSaes.identity(D), new float[D], null);
    }

    @Test
    void perfectReconstructionHasZeroFvuAndUnitCosine() {
        float[] xs = TestSaes.uniform(N * D, 0.5, 1.5, 1);   // positive: ReLU passes them through
        for (double scale : new double[]{1.0, 2.5}) {
            try (NDManager m = NDManager.newBaseManager(); SparseCoder sae = identity(scale)) {
                SaeMetrics.Result r = SaeMetrics.of(sae, m.create(xs, new Shape(N, D)));
                assertEquals(0.0, r.fvu(), 1e-6, r.toString());
                assertEquals(0.0, r.mse(), 1e-9);
                assertEquals(1.0, r.cosine(), 1e-6);
                assertEquals(D, r.l0(), 1e-9);
                assertEquals(0.0, r.deadFraction());
                assertEquals(1.0, r.denseFraction());
                assertEquals(N, r.tokens());
                for (float d : r.density()) assertEquals(1f, d);
            }
        }
    }

    @Test
    void decoderBiasAtTheMeanExplainsNoVariance() {
        float[] xs = TestSaes.uniform(N * D, -1, 2, 2);
        float[] mean = new float[D];
        for (int i = 0; i < N; i++) for (int j = 0; j < D; j++) mean[j] += xs[i * D + j] / N;
        double sse = 0;
        for (int i = 0; i < N; i++) for (int j = 0; j < D; j++) sse += Math.pow(xs[i * D + j] - mean[j], 2);
        SaeConfig cfg = SaeConfig.of(D, 3, new SaeConfig.Relu(0));
        try (NDManager m = NDManager.newBaseManager();
             SparseCoder sae = TestSaes.of(cfg, new float[D * 3], new float[3], TestSaes.uniform(3 * D, -1, 1, 3), mean, null)) {
            SaeMetrics.Result r = SaeMetrics.of(sae, m.create(xs, new Shape(N, D)));
            assertEquals(1.0, r.fvu(), 1e-4, r.toString());
            assertEquals(sse / (N * D), r.mse(), 1e-5);
            assertEquals(0.0, r.l0());
            assertEquals(1.0, r.deadFraction());
            assertEquals(0.0, r.denseFraction());
        }
    }

    @Test
    void aSourceGivesTheSameNumbersAsItsBatchesConcatenated() {
        SyntheticActivations data = new SyntheticActivations(32, D * 2, 5);
        try (NDManager m = NDManager.newBaseManager();
             SparseCoder sae = SparseCoder.create(SaeConfig.of(D * 2, 16, new SaeConfig.TopK(3)), 1)) {
            SaeMetrics.Result a = SaeMetrics.of(sae, data, SaeMetrics.Options.batches(3).batchSize(50));
            NDArray all = data.batch(0, 50, m).concat(data.batch(1, 50, m)).concat(data.batch(2, 50, m));
            SaeMetrics.Result b = SaeMetrics.of(sae, all);
            assertEquals(b.fvu(), a.fvu(), 1e-5);
            assertEquals(b.l0(), a.l0(), 1e-9);
            assertEquals(b.cosine(), a.cosine(), 1e-6);
            assertTrue(a.l0() <= 3);
            assertEquals(150, a.tokens());

            Table t = SaeMetrics.toTable(new LinkedHashMap<>(Map.of("a", a)));
            assertEquals(1, t.rowCount());
            assertEquals(a.fvu(), t.doubleColumn("fvu").get(0), 5e-4 * a.fvu(), "shown to 4 significant digits");
            CategoryChart h = a.densityHistogram();
            int counted = h.getSeriesMap().get("latents").getYData().stream().mapToInt(Number::intValue).sum();
            assertEquals(16, counted, "every latent falls in one bar");
            assertTrue(a.toString().contains("FVU"), a.toString());
        }
    }

    @Test
    void optionsNameTheBatchesOfASource() {
        SaeMetrics.Options o = SaeMetrics.Options.batches(8);
        assertEquals(new SaeMetrics.Options(8, SaeMetrics.Options.DEFAULT_BATCH_SIZE, 0), o);
        assertEquals(new SaeMetrics.Options(8, 256, 1000), o.batchSize(256).fromBatch(1000));
        assertEquals(2048, o.batchSize(256).tokens());
        assertThrows(IllegalArgumentException.class, () -> SaeMetrics.Options.batches(0));
        assertThrows(IllegalArgumentException.class, () -> o.batchSize(-1));
        SyntheticActivations data = new SyntheticActivations(32, D * 2, 5);
        try (NDManager m = NDManager.newBaseManager();
             SparseCoder sae = SparseCoder.create(SaeConfig.of(D * 2, 16, new SaeConfig.TopK(3)), 1)) {
            SaeMetrics.Result later = SaeMetrics.of(sae, data, SaeMetrics.Options.batches(1).batchSize(40).fromBatch(7));
            assertEquals(SaeMetrics.of(sae, data.batch(7, 40, m)).fvu(), later.fvu(), 1e-6, "batch 7 of the source");
        }
    }

    @Test
    void rejectsActivationsOfTheWrongWidth() {
        try (NDManager m = NDManager.newBaseManager(); SparseCoder sae = identity(1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SaeMetrics.of(sae, m.zeros(new Shape(3, D + 1))));
            assertTrue(e.getMessage().contains("width " + D), e.getMessage());
        }
    }
}
