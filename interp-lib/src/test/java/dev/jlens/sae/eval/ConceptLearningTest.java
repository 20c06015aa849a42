package dev.jlens.sae.eval;

import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.util.SplitMix;
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
 * Planted cases for the decompositions' concept scoring, and the sweep end to end on tinylang-4l (dictionaries of 64
 * and 256 latents, 200 steps; decompositions of 16 components on 2000 rows).
 */
class ConceptLearningTest {

    /** Orthonormal directions in {@code d} dimensions (Gram-Schmidt of Gaussian vectors). */
    static double[][] orthonormal(int k, int d, SplittableRandom r) {
        double[][] v = new double[k][d];
        for (int a = 0; a < k; a++) {
            for (int j = 0; j < d; j++) v[a][j] = SplitMix.gaussian(r);
            for (int b = 0; b < a; b++) {
                double dot = 0;
                for (int j = 0; j < d; j++) dot += v[a][j] * v[b][j];
                for (int j = 0; j < d; j++) v[a][j] -= dot * v[b][j];
            }
            double n = 0;
            for (double x : v[a]) n += x * x;
            for (int j = 0; j < d; j++) v[a][j] /= Math.sqrt(n);
        }
        return v;
    }

    /**
     * Rows {@code [2n][d]}: each feature (a direction of {@code dirs}) on in 10% of rows with magnitude 1..2, plus noise
     * 0.01; the concepts ({@code f=0}, ...) are over the second half.
     */
    static float[][] sparseFeatures(double[][] dirs, int n, Map<String, boolean[]> concepts, SplittableRandom r) {
        int k = dirs.length, d = dirs[0].length;
        float[][] rows = new float[2 * n][d];
        for (int f = 0; f < k; f++) concepts.put("f=" + f, new boolean[n]);
        for (int i = 0; i < 2 * n; i++) {
            for (int f = 0; f < k; f++) {
                if (r.nextDouble() >= 0.1) continue;
                double mag = 1 + r.nextDouble();
                for (int j = 0; j < d; j++) rows[i][j] += (float) (mag * dirs[f][j]);
                if (i >= n) concepts.get("f=" + f)[i - n] = true;
            }
            for (int j = 0; j < d; j++) rows[i][j] += (float) (0.01 * SplitMix.gaussian(r));
        }
        return rows;
    }

    static List<ConceptLearning.Scores> decompose(float[][] rows, int n, Map<String, boolean[]> concepts, int k,
                                                  ConceptLearning.Method... methods) {
        ConceptLearning.Options o = ConceptLearning.Options.defaults().withComponents(k, n).withMethods(List.of(methods));
        List<ConceptLearning.Scores> s = ConceptLearning.decompositions(java.util.Arrays.copyOfRange(rows, 0, n),
                java.util.Arrays.copyOfRange(rows, n, 2 * n), concepts, o);
        for (ConceptLearning.Scores sc : s) {
            System.out.printf("%s: %d latents, mean F1 %.3f, AUROC %.3f%n", sc.method(), sc.latents(), sc.meanF1(), sc.meanAuroc());
        }
        return s;
    }

    @Test
    void icaRecoversPlantedSparseFeaturesAlongAnyDirections() {
        // six sparse non-negative features along random orthonormal directions in 8 dims: independent, non-Gaussian
        SplittableRandom r = new SplittableRandom(11);
        int n = 3000, k = 6;
        Map<String, boolean[]> concepts = new LinkedHashMap<>();
        float[][] rows = sparseFeatures(orthonormal(k, 8, r), n, concepts, r);
        List<ConceptLearning.Scores> s = decompose(rows, n, concepts, k, ConceptLearning.Method.ICA,
                ConceptLearning.Method.PCA);
        assertEquals(List.of("ica", "pca"), s.stream().map(ConceptLearning.Scores::method).toList());
        assertEquals(2 * k, s.get(0).latents());
        for (int f = 0; f < k; f++) {
            assertTrue(s.get(0).f1()[f] > 0.95, "ica f=" + f + " " + s.get(0).f1()[f]);
            assertTrue(s.get(0).auroc()[f] > 0.99, "ica f=" + f + " " + s.get(0).auroc()[f]);
        }
        assertEquals(k, s.get(0).learned(0.95));
        // both signs of a direction are latents, so the best AUROC is never below one half
        for (double a : s.get(1).auroc()) assertTrue(a >= 0.5, "pca " + a);
    }

    @Test
    void nmfRecoversPlantedPartsOnDisjointNonNegativeDirections() {
        // six features, each on its own two of 12 coordinates with positive weights: the positive part of the centred
        // rows is a non-negative combination of them
        SplittableRandom r = new SplittableRandom(12);
        int n = 3000, k = 6, d = 12;
        double[][] dirs = new double[k][d];
        for (int f = 0; f < k; f++) {
            dirs[f][2 * f] = 0.5 + r.nextDouble();
            dirs[f][2 * f + 1] = 0.5 + r.nextDouble();
        }
        Map<String, boolean[]> concepts = new LinkedHashMap<>();
        float[][] rows = sparseFeatures(dirs, n, concepts, r);
        List<ConceptLearning.Scores> s = decompose(rows, n, concepts, k, ConceptLearning.Method.NMF);
        assertEquals(k, s.get(0).latents());
        for (int f = 0; f < k; f++) assertTrue(s.get(0).f1()[f] > 0.95, "nmf f=" + f + " " + s.get(0).f1()[f]);
    }

    @Test
    void kMeansAssignmentsRecoverPlantedClusters() {
        SplittableRandom r = new SplittableRandom(4);
        int n = 1000, d = 6, k = 4;
        double[][] centres = orthonormal(k, d, r);
        float[][] rows = new float[2 * n][d];
        Map<String, boolean[]> concepts = new LinkedHashMap<>();
        for (int c = 0; c < k; c++) concepts.put("cluster=" + c, new boolean[n]);
        for (int i = 0; i < 2 * n; i++) {
            int c = r.nextInt(k);
            for (int j = 0; j < d; j++) rows[i][j] = (float) (3 * centres[c][j] + 0.1 * SplitMix.gaussian(r));
            if (i >= n) concepts.get("cluster=" + c)[i - n] = true;
        }
        ConceptLearning.Options o = ConceptLearning.Options.defaults().withComponents(k, n)
                .withMethods(List.of(ConceptLearning.Method.KMEANS_ASSIGNMENT, ConceptLearning.Method.KMEANS));
        List<ConceptLearning.Scores> s = ConceptLearning.decompositions(java.util.Arrays.copyOfRange(rows, 0, n),
                java.util.Arrays.copyOfRange(rows, n, 2 * n), concepts, o);
        for (int c = 0; c < k; c++) {
            assertEquals(1.0, s.get(0).f1()[c], 1e-12, "cluster " + c);
            assertEquals(1.0, s.get(1).auroc()[c], 1e-12, "a centroid direction ranks its cluster first");
        }
    }

    @Test
    void sweepAndDecompositionsOnTinyLang() {
        long t0 = System.nanoTime();
        TinyLang lang = TinyLang.defaults();
        ConceptLearning.Options o = ConceptLearning.Options.defaults().withComponents(16, 2000);
        ConceptLearning.Result r;
        try (HookedTransformer model = Zoo.load("tinylang-4l")) {
            r = ConceptLearning.run(model, "blocks.1.hook_resid_post", lang.examples(Split.TRAIN, 0, 96),
                    lang.examples(Split.TEST, 0, 48), List.of(64, 256), new SaeConfig.TopK(8),
                    SaeTrainConfig.builder().steps(200).batchSize(512).lr(4e-3).seed(0).build(), o);
        }
        System.out.println(r.toTable().print(12));
        System.out.println(r.bucketTable().printAll());
        System.out.println(r.methodTable().printAll());
        System.out.println(r);
        System.out.printf("%.1f s%n", (System.nanoTime() - t0) / 1e9);
        int nConcepts = r.concepts().size();
        assertTrue(r.concepts().stream().anyMatch(c -> c.column().equals("word")), "words are concepts");
        assertTrue(r.concepts().stream().anyMatch(c -> c.name().equals("pos=NOUN")), "labels are concepts");
        assertTrue(r.concepts().stream().allMatch(c -> c.tokens() >= o.minTokens()));
        // words are drawn from Zipf distributions: their frequencies span more than a decade
        double maxF = r.concepts().stream().filter(c -> c.column().equals("word")).mapToDouble(ConceptLearning.Concept::frequency).max().orElseThrow();
        double minF = r.concepts().stream().filter(c -> c.column().equals("word")).mapToDouble(ConceptLearning.Concept::frequency).min().orElseThrow();
        assertTrue(maxF > 10 * minF, minF + " .. " + maxF);
        assertEquals(nConcepts, r.toTable().rowCount());
        assertEquals(4 + 2, r.toTable().columnCount());
        assertEquals(2, r.chart().getSeriesMap().size());
        assertEquals(2 + ConceptLearning.Method.values().length, r.methodTable().rowCount());
        int bucketed = 0;
        for (int v : r.bucketTable().intColumn("concepts")) bucketed += v;
        assertEquals(nConcepts, bucketed, "every concept in one frequency bucket");
        assertEquals(64, r.dictionary(64).latents());
        assertEquals("sae-64", r.dictionary(64).method());
        assertEquals(32, r.scores("pca").latents());
        assertEquals(16, r.scores("kmeans-assignment").latents());
        assertEquals(32, r.scores("pca").alive(), "a projection or its negative is positive somewhere");
        for (ConceptLearning.Scores s : java.util.stream.Stream.concat(r.dictionaries().stream(),
                r.decompositions().stream()).toList()) {
            assertEquals(nConcepts, s.f1().length);
            assertTrue(s.alive() >= 1 && s.alive() <= s.latents(), s.method() + " alive " + s.alive());
            for (double v : s.f1()) assertTrue(v >= 0 && v <= 1, s.method() + " " + v);
            for (double v : s.auroc()) assertTrue(v >= 0 && v <= 1, s.method() + " " + v);
        }
        for (String m : List.of("pca", "ica")) {
            for (double v : r.scores(m).auroc()) assertTrue(v >= 0.5, m + ": both signs are latents");
        }
        // a concept counted learned has its F1 at the threshold
        for (String c : r.learned(256)) {
            int i = r.concepts().stream().map(ConceptLearning.Concept::name).toList().indexOf(c);
            assertTrue(r.dictionary(256).f1()[i] >= o.threshold());
        }
        assertThrows(IllegalArgumentException.class, () -> r.dictionary(100));
        assertThrows(IllegalArgumentException.class, () -> r.scores("svd"));
    }

    @Test
    void badOptionsNameTheProblem() {
        assertThrows(IllegalArgumentException.class, () -> ConceptLearning.Options.defaults().withThreshold(0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ConceptLearning.decompositions(
                new float[10][4], new float[10][4], Map.of("c", new boolean[10]),
                ConceptLearning.Options.defaults().withComponents(8, 10).withMethods(List.of(ConceptLearning.Method.PCA))));
        assertTrue(e.getMessage().contains("at most 4"), e.getMessage());
    }
}
