package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategorySeries;
import tech.tablesaw.api.Table;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Crosscoder analysis on hand-built decoders whose relative norms and cosines are known. */
class CrosscoderTest {
    static final int DM = 4;

    /**
     * Latents: 0 base-only (ft block zero), 1 finetuned-only, 2 shared and identical (r 0.5, cos 1), 3 r = 0.8
     * (other), 4 shared and opposite (r 0.5, cos -1), 5 r = 0.05 (base-only, not exactly zero), 6 dead (both zero).
     */
    static SparseCoder crosscoder(NDManager m) {
        float[][] base = {{1, 0, 0, 0}, {0, 0, 0, 0}, {0, 1, 0, 0}, {1, 0, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 19}, {0, 0, 0, 0}};
        float[][] ft = {{0, 0, 0, 0}, {0, 3, 0, 0}, {0, 1, 0, 0}, {0, 4, 0, 0}, {0, 0, -2, 0}, {1, 0, 0, 0}, {0, 0, 0, 0}};
        int dSae = base.length;
        float[] w = new float[dSae * 2 * DM];
        for (int i = 0; i < dSae; i++) {
            System.arraycopy(base[i], 0, w, i * 2 * DM, DM);
            System.arraycopy(ft[i], 0, w, i * 2 * DM + DM, DM);
        }
        SaeConfig cfg = SaeConfig.of(2 * DM, dSae, new SaeConfig.TopK(2)).withSources(2);
        Map<String, NDArray> t = new LinkedHashMap<>();
        NDArray wDec = m.create(w, new Shape(dSae, 2 * DM));
        t.put(SaeWeights.W_DEC, wDec);
        t.put(SaeWeights.W_ENC, wDec.transpose().duplicate());
        t.put(SaeWeights.B_ENC, m.zeros(new Shape(dSae)));
        t.put(SaeWeights.B_DEC, m.zeros(new Shape(2 * DM)));
        return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
    }

    @Test
    void relativeNormsCosinesAndCategories() {
        try (NDManager m = NDManager.newBaseManager(); SparseCoder sc = crosscoder(m)) {
            Crosscoder cc = Crosscoder.of(sc);
            double[] r = cc.relativeNorms();
            assertEquals(0.0, r[0], 1e-7);
            assertEquals(1.0, r[1], 1e-7);
            assertEquals(0.5, r[2], 1e-7);
            assertEquals(0.8, r[3], 1e-7);
            assertEquals(0.5, r[4], 1e-7);
            assertEquals(0.05, r[5], 1e-7);
            assertTrue(Double.isNaN(r[6]));
            double[] cos = cc.cosineSimilarities();
            assertEquals(1.0, cos[2], 1e-6);
            assertEquals(-1.0, cos[4], 1e-6);
            assertEquals(0.0, cos[3], 1e-6);
            assertTrue(Double.isNaN(cos[0]), "base-only has no fine-tuned direction");
            assertArrayEquals(new int[] {0, 5}, cc.latents(Crosscoder.Category.BASE_ONLY));
            assertArrayEquals(new int[] {1}, cc.latents(Crosscoder.Category.FINETUNED_ONLY));
            assertArrayEquals(new int[] {2, 4}, cc.latents(Crosscoder.Category.SHARED));
            assertArrayEquals(new int[] {3, 6}, cc.latents(Crosscoder.Category.OTHER));
            assertArrayEquals(new double[] {1, -1}, cc.sharedCosines(), 1e-6);
            assertEquals(3.0, cc.finetunedNorms()[1], 1e-6);
            assertEquals(19.0, cc.baseNorms()[5], 1e-6);
            assertTrue(cc.toString().contains("2 base-only, 2 shared, 1 finetuned-only, 2 other"), cc.toString());
        }
    }

    @Test
    void deadLatentsGetTheirOwnCategoryAndLeaveTheHistogram() {
        try (NDManager m = NDManager.newBaseManager(); SparseCoder sc = crosscoder(m)) {
            Crosscoder all = Crosscoder.of(sc);
            assertEquals(Crosscoder.Category.SHARED, all.category(2));   // r 0.5: counted as shared without densities
            float[] density = {0.1f, 0.2f, 0f, 0.3f, 0.01f, 0.02f, 0f};
            Crosscoder live = all.withDensity(density);
            assertEquals(Crosscoder.Category.DEAD, live.category(2));
            assertEquals(Crosscoder.Category.DEAD, live.category(6));
            assertEquals(Crosscoder.Category.BASE_ONLY, live.category(0));
            assertEquals(2, live.counts().get(Crosscoder.Category.DEAD));
            assertEquals(all.counts().get(Crosscoder.Category.SHARED) - 1, live.counts().get(Crosscoder.Category.SHARED));
            long bars = live.relativeNormHistogram(10).getSeriesMap().values().stream()
                    .mapToLong(sr -> sr.getYData().stream().mapToLong(Number::longValue).sum()).sum();
            assertEquals(5, bars, "7 latents, 2 dead (one of them with no decoder at all)");
            assertTrue(live.toString().contains("2 dead"), live.toString());
            assertThrows(IllegalArgumentException.class, () -> all.withDensity(new float[3]));
        }
    }

    @Test
    void thresholdsMoveTheCategories() {
        try (NDManager m = NDManager.newBaseManager(); SparseCoder sc = crosscoder(m)) {
            Crosscoder wide = Crosscoder.of(sc, "gpt2", "gpt2-chat", new Crosscoder.Thresholds(0.01, 0.2, 0.85, 0.95));
            assertEquals(Crosscoder.Category.SHARED, wide.category(3));       // r 0.8 is shared now
            assertEquals(Crosscoder.Category.OTHER, wide.category(5));        // r 0.05 is no longer base-only
            assertThrows(IllegalArgumentException.class, () -> new Crosscoder.Thresholds(0.5, 0.3, 0.7, 0.9));
        }
    }

    @Test
    void tablesAndCharts() {
        try (NDManager m = NDManager.newBaseManager(); SparseCoder sc = crosscoder(m)) {
            Crosscoder cc = Crosscoder.of(sc, "base", "chat", Crosscoder.Thresholds.defaults());
            Table t = cc.table();
            assertEquals(7, t.rowCount());
            assertEquals("finetuned-only", t.stringColumn("category").get(1));
            assertEquals(0.8, t.doubleColumn("relative_norm").get(3), 1e-7);
            assertEquals(3.0, t.doubleColumn("norm_chat").get(1), 1e-6);
            Table s = cc.summary();
            assertEquals(2, s.intColumn("latents").get(0));   // base-only
            assertEquals(0.0, s.doubleColumn("mean_cosine").get(1), 1e-6);   // shared: (1 + -1) / 2

            CategoryChart h = cc.relativeNormHistogram(20);
            long total = 0;
            for (CategorySeries series : h.getSeriesMap().values()) {
                for (Number y : series.getYData()) total += y.longValue();
            }
            assertEquals(6, total, "every latent with a decoder, once");
            // the r = 1 latent sits in the last bin, coloured fine-tuned-only
            CategorySeries ft = h.getSeriesMap().get("finetuned-only");
            assertEquals(1, ft.getYData().stream().toList().get(19).intValue());
            CategoryChart c = cc.sharedCosineHistogram();
            long shared = 0;
            for (Number y : c.getSeriesMap().get("shared").getYData()) shared += y.longValue();
            assertEquals(2, shared);
            assertEquals(640, BitmapEncoder.getBufferedImage(h).getWidth());   // it renders
        }
    }

    @Test
    void needsTwoSources() {
        try (SparseCoder sae = SparseCoder.create(SaeConfig.of(8, 16, new SaeConfig.TopK(2)), 0)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Crosscoder.of(sae));
            assertTrue(e.getMessage().contains("2 sources"), e.getMessage());
        }
    }

    @Test
    void mostFinetunedRanksByRelativeNormSkippingDeadAndEmptyLatents() {
        try (NDManager m = NDManager.newBaseManager(); SparseCoder sc = crosscoder(m)) {
            Crosscoder cc = Crosscoder.of(sc);
            // r: 1 -> 1.0, 3 -> 0.8, 2 and 4 -> 0.5, 5 -> 0.05, 0 -> 0; 6 has no decoder (NaN)
            assertArrayEquals(new int[] {1, 3}, cc.mostFinetuned(2));
            assertEquals(6, cc.mostFinetuned(10).length, "the latent without a decoder is left out");
            assertEquals(0, cc.mostFinetuned(10)[5]);
            float[] density = {0.1f, 0f, 0.2f, 0.3f, 0.01f, 0.02f, 0f};
            assertArrayEquals(new int[] {3, 2}, cc.withDensity(density).mostFinetuned(2), "dead latent 1 is skipped");
            assertThrows(IllegalArgumentException.class, () -> cc.mostFinetuned(0));
            assertArrayEquals(new float[] {1, 0, 0, 0}, cc.decoder(3, 0), 0f);
            assertArrayEquals(new float[] {0, 4, 0, 0}, cc.decoder(3, 1), 0f);
            assertArrayEquals(new float[] {0, 0, -2, 0}, cc.decoder(4, 1), 0f);
            assertThrows(IllegalArgumentException.class, () -> cc.decoder(3, 2));
            assertThrows(IndexOutOfBoundsException.class, () -> cc.decoder(7, 0));
        }
    }
}
