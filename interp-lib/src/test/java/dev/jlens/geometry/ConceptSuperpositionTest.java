package dev.jlens.geometry;

import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.ProbeTask;
import dev.jlens.sae.eval.TinyLangConcepts;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Planted features with a known answer (more sparse directions than dimensions; fewer orthogonal ones), then
 * tinylang-4l's concepts after layer 1.
 */
class ConceptSuperpositionTest {

    /** {@code rows} of {@code x = Σ s_i m_i f_i + noise}, s_i on with probability p, magnitude uniform in [1, 2]. */
    record Planted(float[][] x, boolean[][] on) {
        static Planted of(double[][] f, double[] scale, int rows, double p, double noise, SplittableRandom r) {
            int n = f.length, d = f[0].length;
            float[][] x = new float[rows][d];
            boolean[][] on = new boolean[n][rows];
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < d; j++) x[i][j] = (float) (noise * gauss(r));
                for (int c = 0; c < n; c++) {
                    if (r.nextDouble() >= p) continue;
                    on[c][i] = true;
                    double s = scale[c] * (1 + r.nextDouble());
                    for (int j = 0; j < d; j++) x[i][j] += (float) (s * f[c][j]);
                }
            }
            return new Planted(x, on);
        }
    }

    static double gauss(SplittableRandom r) {
        return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
    }

    static double[] unit(double[] v) {
        double n = 0;
        for (double a : v) n += a * a;
        n = Math.sqrt(n);
        for (int j = 0; j < v.length; j++) v[j] /= n;
        return v;
    }

    static double cos(double[] a, float[] b) {
        double s = 0, na = 0, nb = 0;
        for (int j = 0; j < a.length; j++) {
            s += a[j] * b[j];
            na += a[j] * a[j];
            nb += b[j] * b[j];
        }
        return s / Math.sqrt(na * nb);
    }

    static Map<String, boolean[]> labels(boolean[][] on) {
        Map<String, boolean[]> m = new LinkedHashMap<>();
        for (int c = 0; c < on.length; c++) m.put("f" + c, on[c]);
        return m;
    }

    @Test
    void moreSparseDirectionsThanDimensionsAreAllRepresentedWithThePlantedInterference() {
        int d = 32, n = 80;
        SplittableRandom r = new SplittableRandom(1);
        double[][] f = new double[n][d];
        for (double[] v : f) {
            for (int j = 0; j < d; j++) v[j] = gauss(r);
            unit(v);
        }
        double[] scale = new double[n];
        java.util.Arrays.fill(scale, 1);
        Planted train = Planted.of(f, scale, 20000, 0.03, 0.05, r), test = Planted.of(f, scale, 3000, 0.03, 0.05, r);
        var res = ConceptSuperposition.measure(train.x(), test.x(), labels(train.on()), labels(test.on()),
                ConceptSuperposition.Options.defaults().withRanks(List.of(4, 8, 16)));
        System.out.println(res.summary());
        System.out.println(res.summaryTable().printAll());
        System.out.println(res.rankTable().printAll());
        assertEquals(n, res.represented().size(), "every planted feature is readable: " + res.toTable().print(100));
        assertTrue(res.conceptsPerDimension() > 2.4);
        double plantedMeanMax = 0;
        for (int c = 0; c < n; c++) {
            ConceptSuperposition.Concept k = res.concept("f" + c);
            assertTrue(cos(f[c], k.direction()) > 0.97, "write direction of f" + c + ": " + cos(f[c], k.direction()));
            double planted = 0;
            for (int o = 0; o < n; o++) if (o != c) planted = Math.max(planted, Math.abs(cos(f[c], toF(f[o]))));
            plantedMeanMax += planted / n;
            assertEquals(planted, k.maxAbsCos(), 0.08, "f" + c + "'s largest interference");
        }
        assertEquals(plantedMeanMax, res.meanMaxAbsCos(), 0.02);
        // random planted features interfere as random directions do, and no set beats Welch
        assertEquals(res.randomMeanMaxAbsCos(), res.meanMaxAbsCos(), 0.06);
        assertTrue(res.meanMaxAbsCos() > res.welchBound());
        assertEquals(Math.sqrt((80.0 - 32) / (32 * 79)), res.welchBound(), 1e-12);
        // spread over all 32 dimensions: a few principal components lose most features
        assertEquals(d, res.dimsForAll());
        assertTrue(res.keptFraction()[0] < 0.3, "r = 4 keeps " + res.keptFraction()[0]);
        assertEquals(2, res.interferenceChart().getSeriesMap().size());
        assertEquals(3, res.rankChart().getSeriesMap().size());
        assertEquals(n, res.toTable().rowCount());
    }

    @Test
    void fewerOrthogonalDirectionsNeedExactlyTheirCountOfPrincipalComponents() {
        int d = 32, n = 8;
        SplittableRandom r = new SplittableRandom(2);
        // n orthonormal directions: Gram-Schmidt on Gaussian vectors
        double[][] f = new double[n][d];
        for (int c = 0; c < n; c++) {
            for (int j = 0; j < d; j++) f[c][j] = gauss(r);
            for (int o = 0; o < c; o++) {
                double s = 0;
                for (int j = 0; j < d; j++) s += f[c][j] * f[o][j];
                for (int j = 0; j < d; j++) f[c][j] -= s * f[o][j];
            }
            unit(f[c]);
        }
        double[] scale = new double[n];
        for (int c = 0; c < n; c++) scale[c] = 1 + 0.25 * c;   // distinct variances: principal axes are the features
        Planted train = Planted.of(f, scale, 4000, 0.2, 0.1, r), test = Planted.of(f, scale, 2000, 0.2, 0.1, r);
        var res = ConceptSuperposition.measure(train.x(), test.x(), labels(train.on()), labels(test.on()),
                ConceptSuperposition.Options.defaults().withRanks(List.of(4, 8, 16)));
        System.out.println(res.summary());
        System.out.println(res.toTable().printAll());
        assertEquals(n, res.represented().size());
        assertEquals(n, res.dimsForAll(), "r = N keeps every concept");
        for (ConceptSuperposition.Concept k : res.concepts()) {
            assertTrue(k.dimsNeeded().getAsInt() <= n, k.name());
            assertTrue(k.maxAbsCos() < 0.1, k.name() + " interferes " + k.maxAbsCos());
        }
        assertTrue(res.keptFraction()[0] <= 0.5 + 1e-9, "r = 4 keeps " + res.keptFraction()[0]);
        assertEquals(0, res.welchBound());
        // at r = d the projection is a rotation: AUROC equal to the full one
        for (ConceptSuperposition.Concept k : res.concepts()) assertEquals(k.auroc(), k.aurocAtRank()[3], 1e-12);
    }

    @Test
    void badInputNamesTheProblem() {
        float[][] x = {{1, 0}, {0, 1}, {1, 1}};
        Map<String, boolean[]> all = Map.of("c", new boolean[] {true, true, true});
        var e = assertThrows(IllegalArgumentException.class, () -> ConceptSuperposition.measure(x, x, all, all,
                ConceptSuperposition.Options.defaults()));
        assertTrue(e.getMessage().contains("positive and negative"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ConceptSuperposition.Options.defaults().withThreshold(0.4, 0.01));
    }

    @Test
    void tinyLangHasMoreReadableConceptsThanDimensions() {
        long t0 = System.nanoTime();
        List<ProbeTask> tasks;
        List<Example<TinyLang.Meta>> examples = TinyLang.defaults().examples(Split.TRAIN, 0, 224);
        try (HookedTransformer model = Zoo.load("tinylang-4l")) {
            ProbeData rows = TinyLangConcepts.harvest(model, "blocks.1.hook_resid_post", examples, 32);
            tasks = TinyLangConcepts.all(rows, examples, 8);
        }
        long t1 = System.nanoTime();
        var res = ConceptSuperposition.measure(tasks, ConceptSuperposition.Options.defaults());
        long t2 = System.nanoTime();
        System.out.println(res.summary());
        System.out.println(res.summaryTable().printAll());
        System.out.println(res.rankTable().printAll());
        System.out.println(res.toTable().sortAscendingOn("AUROC").first(25).printAll());
        System.out.printf("%d concepts; harvest %.1f s, measure %.1f s%n", tasks.size(), (t1 - t0) / 1e9, (t2 - t1) / 1e9);
        assertEquals(128, res.d());
        assertTrue(tasks.size() > 128, "more concepts than d_model: " + tasks.size());
        // word identity is readable from the residual stream at its own token
        assertTrue(res.concept("word=dog").auroc() > 0.99, res.concept("word=dog").toString());
        assertTrue(res.concept("class=verb").auroc() > 0.99);
        assertTrue(res.concept("prev=the").auroc() > 0.9, "layer 1 knows the previous token");
        assertTrue(res.represented().size() > 100, res.summary());
        for (ConceptSuperposition.Concept c : res.concepts()) {
            assertTrue(c.auroc() >= 0 && c.auroc() <= 1);
            assertEquals(c.auroc(), c.aurocAtRank()[res.ranks().length - 1], 1e-12, "r = d is a rotation");
        }
        // on average over the represented concepts, more components never read worse
        double[] mean = new double[res.ranks().length];
        for (ConceptSuperposition.Concept c : res.represented()) {
            for (int i = 0; i < mean.length; i++) mean[i] += c.aurocAtRank()[i] / res.represented().size();
        }
        for (int i = 1; i < mean.length; i++) assertTrue(mean[i] >= mean[i - 1] - 1e-3, java.util.Arrays.toString(mean));
        assertTrue(res.keptFraction()[0] < 0.5, "8 principal components lose most concepts");
        double[] ex = res.explained();
        for (int i = 1; i < ex.length; i++) assertTrue(ex[i] >= ex[i - 1]);
        assertEquals(1.0, ex[ex.length - 1], 1e-9);
        assertTrue(res.meanMaxAbsCos() >= res.welchBound() - 1e-9 || res.represented().size() <= 128);
    }

    static float[] toF(double[] v) {
        float[] f = new float[v.length];
        for (int j = 0; j < v.length; j++) f[j] = (float) v[j];
        return f;
    }
}
