package dev.jlens.probe;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Probes against planted ground truth: a linear label they must find, an XOR label they must not. */
class LinearProbeTest {
    static final int D = 32;
    static final float[] U = Planted.unit(D, 7);
    static final double GAP = 2.0;                       // Bayes accuracy Phi(1) = 0.841
    static final List<ProbeMethod> METHODS = List.of(ProbeMethod.logistic(), ProbeMethod.diffMeans(), ProbeMethod.lda());

    @Test
    void everyMethodRecoversAPlantedLinearLabelAtTheBayesRate() {
        ProbeData train = Planted.linear(U, 4000, GAP, 1);
        ProbeData test = Planted.linear(U, 8000, GAP, 2);
        double bayes = Planted.phi(GAP / 2);
        for (ProbeMethod m : METHODS) {
            LinearProbe p = m.fit(train);
            double cos = Planted.cosine(p.direction(), U);
            double acc = p.accuracy(test);
            System.out.printf("planted linear %s: cosine %.4f, test accuracy %.4f (Bayes %.4f)%n", m.name(), cos, acc, bayes);
            assertTrue(cos > 0.9, m.name() + " direction cosine " + cos);
            assertTrue(acc > bayes - 0.02 && acc < bayes + 0.015, m.name() + " accuracy " + acc + " vs Bayes " + bayes);
            assertEquals(1.0, norm(p.direction()), 1e-5);
        }
    }

    @Test
    void everyMethodStaysAtChanceOnAPlantedXor() {
        ProbeData xor = Planted.xor(D, 4000, 3);
        for (ProbeMethod m : METHODS) {
            CvResult r = CrossValidation.run(xor, m, 5, 0);
            System.out.printf("planted XOR %s: %s%n", m.name(), r);
            assertTrue(r.mean() <= 0.6, m.name() + " on XOR: " + r);
        }
    }

    @Test
    void multiclassProbesFindEachClassDirection() {
        int n = 3000, k = 3;
        float[][] dirs = {Planted.unit(D, 11), Planted.unit(D, 12), Planted.unit(D, 13)};
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        float[][] x = new float[n][D];
        int[] y = new int[n], g = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = r.nextInt(k);
            g[i] = i / 10;
            for (int j = 0; j < D; j++) x[i][j] = (float) (3 * dirs[y[i]][j] + dev.jlens.util.SplitMix.gaussian(r));
        }
        ProbeData data = ProbeData.of(x, y, g);
        for (ProbeMethod m : METHODS) {
            CvResult cv = CrossValidation.run(data, m, 5, 0);
            LinearProbe p = m.fit(data);
            System.out.printf("3 classes %s: %s%n", m.name(), cv);
            assertTrue(cv.mean() > 0.85, m.name() + " " + cv);
            assertTrue(cv.auroc().isEmpty());
            // class c's direction is closer to its planted mean than to the other two
            for (int c = 0; c < k; c++) {
                double own = Planted.cosine(p.direction(c), dirs[c]);
                for (int o = 0; o < k; o++) if (o != c) assertTrue(own > Planted.cosine(p.direction(c), dirs[o]));
            }
        }
    }

    @Test
    void saveAndLoadRoundTripExactly(@TempDir Path dir) {
        ProbeData data = Planted.linear(U, 500, GAP, 4);
        for (ProbeMethod m : METHODS) {
            LinearProbe p = m.fit(data).withInfo("hook", "blocks.1.hook_resid_post");
            Path f = dir.resolve(m.name() + ".probe.json");
            p.save(f);
            LinearProbe q = LinearProbe.load(f);
            assertEquals(p, q);
            assertArrayEquals(p.scores(data.x()), q.scores(data.x()));
            assertEquals("blocks.1.hook_resid_post", q.info().get("hook"));
        }
        LinearProbe multi = new LinearProbe("diff_means", 3, new float[][] {{1, 2}, {3, 4}, {5, 6e-30f}},
                new float[] {0.1f, -0.2f, Float.MIN_VALUE}, Map.of());
        multi.save(dir.resolve("m.json"));
        assertEquals(multi, LinearProbe.load(dir.resolve("m.json")));
    }

    @Test
    void aBadProbeFileNamesThePathAndTheProblem(@TempDir Path dir) throws Exception {
        Path missing = dir.resolve("nope.json");
        assertMessage(missing, "does not exist", () -> LinearProbe.load(missing));
        Path notJson = Files.writeString(dir.resolve("bad.json"), "{\"format\": ");
        assertMessage(notJson, "not valid JSON", () -> LinearProbe.load(notJson));
        Path other = Files.writeString(dir.resolve("other.json"), "{\"format\": \"saelens\"}");
        assertMessage(other, "expected 'jlens-probe'", () -> LinearProbe.load(other));
        Path shape = Files.writeString(dir.resolve("shape.json"), "{\"format\": \"jlens-probe\", \"version\": 1, "
                + "\"method\": \"logistic\", \"n_classes\": 2, \"d\": 3, \"weights\": [[1, 2]], \"bias\": [0]}");
        assertMessage(shape, "'weights[0]' must be an array of 3 numbers", () -> LinearProbe.load(shape));
    }

    @Test
    void badInputIsRejectedWithTheProblemNamed() {
        float[][] x = {{1, 2}, {3, 4}, {5, 6}};
        assertMessage(null, "mismatched lengths", () -> ProbeData.of(x, new int[] {0, 1}, new int[] {0, 1, 2}));
        assertMessage(null, "label 3 at row 2 is out of range: valid labels are 0..1",
                () -> ProbeData.of(x, new int[] {0, 1, 3}, new int[] {0, 1, 2}, 2));
        assertMessage(null, "single-class dataset", () -> ProbeData.of(x, new int[] {1, 1, 1}, new int[] {0, 1, 2}, 2));
        assertMessage(null, "single-class dataset", () -> ProbeData.of(x, new int[] {0, 0, 0}, new int[] {0, 1, 2}));
        assertMessage(null, "row 1 of x has 1 values", () -> ProbeData.of(new float[][] {{1, 2}, {3}}, new int[] {0, 1},
                new int[] {0, 1}));
        ProbeData data = ProbeData.of(x, new int[] {0, 1, 0}, new int[] {0, 1, 2});
        assertMessage(null, "no token types", () -> ControlTask.of(data, 0));
        LinearProbe p = ProbeMethod.diffMeans().fit(data);
        assertMessage(null, "this probe reads 2", () -> p.score(new float[] {1, 2, 3}));
        assertMessage(null, "shrinkage must be in [0, 1]", () -> ProbeMethod.lda(1.5));
    }

    static void assertMessage(Path path, String part, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' lacks '" + part + "'");
        if (path != null) assertTrue(e.getMessage().contains(path.toString()), e.getMessage() + " lacks the path");
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float f : v) s += f * f;
        return Math.sqrt(s);
    }
}
