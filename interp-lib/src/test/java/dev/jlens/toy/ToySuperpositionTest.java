package dev.jlens.toy;

import dev.jlens.toy.ToySuperposition.Config;
import dev.jlens.toy.ToySuperposition.Correlation;
import dev.jlens.toy.ToySuperposition.Training;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The paper's known limits on small models (dense: only the m most important features, orthogonal; sparse: more
 * features than dimensions; two features in one dimension: an antipodal pair), determinism, and the batched
 * training checked against per-instance arithmetic.
 */
class ToySuperpositionTest {
    /** Enough to converge on these sizes (the paper's 10,000 steps at 1e-3 give the same solutions, slower). */
    static final Training FAST = Training.defaults().withSteps(2000).withLr(1e-2).withEvalBatchSize(4096);

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    static ToyResult train(Training t, Config... cs) {
        return ToySuperposition.train(t, Arrays.asList(cs), ProgressSink.none());
    }

    @Test
    void denseFeaturesGiveTheMostImportantMDimensionsOrthogonally() {
        ToyResult r = train(FAST, ToySuperposition.repeat(Config.of(5, 2, 0, 0.8), 3));
        for (ToyModel t : r.models()) {
            double[] norms = t.norms();
            assertEquals(1, norms[0], 0.05, t + " " + Arrays.toString(norms));
            assertEquals(1, norms[1], 0.05, t + " " + Arrays.toString(norms));
            for (int i = 2; i < 5; i++) assertTrue(norms[i] < 0.1, t + " " + Arrays.toString(norms));
            assertTrue(Math.abs(t.cosine(0, 1)) < 0.05, "cos " + t.cosine(0, 1));
            assertEquals(2, t.represented());
            assertEquals(1, t.dimensionsPerFeature(), 0.05);
        }
    }

    @Test
    void sparseFeaturesAreRepresentedInSuperposition() {
        ToyModel best = train(FAST, ToySuperposition.repeat(Config.of(5, 2, 0.95, 0.9), 3)).best();
        assertTrue(best.represented() > 2, best + " " + Arrays.toString(best.norms()));
        double[] norms = best.norms(), inter = best.interference();
        for (int i = 0; i < 5; i++) {
            if (norms[i] > ToyModel.REPRESENTED_NORM) assertTrue(inter[i] > 0.1, "interference " + Arrays.toString(inter));
        }
        assertTrue(best.dimensionsPerFeature() < 0.5, best.toString());
    }

    @Test
    void twoSparseFeaturesInOneDimensionFormAnAntipodalPairAndDenseOnesDoNot() {
        ToyModel sparse = train(FAST, ToySuperposition.repeat(Config.of(2, 1, 0.95, 1), 3)).best();
        double[] n = sparse.norms();
        assertEquals(1, n[0], 0.05, Arrays.toString(n));
        assertEquals(1, n[1], 0.05, Arrays.toString(n));
        assertTrue(sparse.cosine(0, 1) < -0.99, "cos " + sparse.cosine(0, 1));
        double[][] w = sparse.w();
        assertEquals(-w[0][0], w[0][1], 0.05, "W_1 = -W_0: " + Arrays.toString(w[0]));
        assertEquals(PhaseDiagram.Phase.SUPERPOSITION, PhaseDiagram.classify(w));

        ToyModel dense = train(FAST, ToySuperposition.repeat(Config.of(2, 1, 0, 1), 3)).best();
        assertEquals(1, dense.represented(), Arrays.toString(dense.norms()));
        assertEquals(1, Arrays.stream(dense.norms()).max().orElseThrow(), 0.1);
    }

    @Test
    void theSameSeedGivesTheSameModelsAndAnotherSeedOthers() {
        Training t = FAST.withSteps(300);
        Config[] cs = {Config.of(5, 2, 0.9, 0.9), Config.of(5, 2, 0.5, 0.8)};
        ToyResult a = train(t, cs), b = train(t, cs), c = train(t.withSeed(1), cs);
        for (int k = 0; k < 2; k++) {
            for (int d = 0; d < 2; d++) assertArrayEquals(a.model(k).w()[d], b.model(k).w()[d]);
            assertArrayEquals(a.model(k).b(), b.model(k).b());
            assertEquals(a.model(k).loss(), b.model(k).loss());
            assertArrayEquals(a.model(k).lossCurve(), b.model(k).lossCurve());
            assertFalse(Arrays.equals(a.model(k).w()[0], c.model(k).w()[0]));
        }
    }

    @Test
    void eachInstancesReportedLossIsItsOwnLossRecomputed() {
        Config[] cs = {Config.of(5, 2, 0.9, 0.7), Config.of(5, 2, 0, 0.95), Config.of(5, 2, 0.6, 1).withImportance(3, 0, 1, 2, 0.5)};
        ToyResult r = train(FAST.withSteps(200), cs);
        for (ToyModel t : r.models()) {
            double[][] w = t.w(), x = t.evaluationBatch();
            double[] b = t.b(), imp = t.config().importance();
            assertEquals(4096, x.length);
            double total = 0;
            for (double[] row : x) {
                for (int i = 0; i < 5; i++) {
                    // x'_i = ReLU(sum_d W[d][i] sum_j W[d][j] x_j + b_i), written out apart from ToyModel.reconstruct
                    double pre = b[i];
                    for (int d = 0; d < 2; d++) {
                        double h = 0;
                        for (int j = 0; j < 5; j++) h += w[d][j] * row[j];
                        pre += w[d][i] * h;
                    }
                    double e = row[i] - Math.max(0, pre);
                    total += imp[i] * e * e;
                }
            }
            double expected = total / x.length;
            assertEquals(expected, t.loss(), 1e-5 * Math.max(1, expected), t.toString());
            double[] rec = t.reconstruct(x[0]);
            assertEquals(5, rec.length);
        }
        // the three settings give three different losses: a mix-up of instances would show
        assertTrue(r.model(0).loss() != r.model(1).loss() && r.model(1).loss() != r.model(2).loss());
    }

    @Test
    void evaluationInGroupsOfInstancesEqualsOnePass() {
        List<Config> cs = List.of(Config.of(3, 2, 0.5, 0.9), Config.of(3, 2, 0.8, 1), Config.of(3, 2, 0, 0.7));
        long[] seeds = {11, 12, 13};
        try (NDManager m = NDManager.newBaseManager(); NDScope scope = new NDScope()) {
            NDArray w = m.randomNormal(new Shape(3, 2, 3));
            NDArray b = m.randomNormal(new Shape(3, 1, 3)).mul(0.1f);
            NDArray imp = m.create(new float[] {1, 0.9f, 0.81f, 1, 1, 1, 1, 0.7f, 0.49f}, new Shape(3, 1, 3));
            double[] whole = ToySuperposition.evaluate(cs, seeds, 100, m, w, b, imp, Long.MAX_VALUE);
            double[] single = ToySuperposition.evaluate(cs, seeds, 100, m, w, b, imp, 1);    // one instance a group
            double[] pairs = ToySuperposition.evaluate(cs, seeds, 100, m, w, b, imp, 600);   // groups of 2, then 1
            assertArrayEquals(whole, single, 1e-6);
            assertArrayEquals(whole, pairs, 1e-6);
            assertTrue(whole[0] != whole[1] && whole[1] != whole[2], Arrays.toString(whole));
        }
    }

    @Test
    void anInstanceTrainsTheSameWhateverTrainsBesideIt() {
        Training t = FAST.withSteps(300);
        Config a = Config.of(5, 2, 0.9, 0.9);
        ToyModel withB = train(t, a, Config.of(5, 2, 0, 0.5)).model(0);
        ToyModel withC = train(t, a, Config.of(5, 2, 0.99, 1), Config.of(5, 2, 0.3, 0.7)).model(0);
        for (int d = 0; d < 2; d++) assertArrayEquals(withB.w()[d], withC.w()[d], 1e-5);
        assertEquals(withB.loss(), withC.loss(), 1e-6);
    }

    @Test
    void sampledDataHasTheSparsityAndPairingAsked() {
        int rows = 20_000;
        for (Correlation c : Correlation.values()) {
            double[][] x = ToySuperposition.sample(Config.of(4, 2, 0.8, 1).withCorrelation(c), rows, 7);
            int[] on = new int[4];
            int both = 0;
            for (double[] row : x) {
                for (int i = 0; i < 4; i++) {
                    assertTrue(row[i] >= 0 && row[i] < 1, c + ": value " + row[i]);
                    if (row[i] != 0) on[i]++;
                }
                boolean a = row[0] != 0, b = row[1] != 0;
                if (a && b) both++;
                if (c == Correlation.CORRELATED) assertEquals(a, b, "correlated pair half on");
            }
            for (int i = 0; i < 4; i++) assertEquals(0.2, on[i] / (double) rows, 0.01, c + " density of feature " + i);
            if (c == Correlation.ANTICORRELATED) assertEquals(0, both);
            if (c == Correlation.INDEPENDENT) assertEquals(0.04, both / (double) rows, 0.005);
        }
        double[][] dense = ToySuperposition.sample(Config.of(3, 1), 1000, 1);
        double mean = Arrays.stream(dense).flatMapToDouble(Arrays::stream).average().orElseThrow();
        assertEquals(0.5, mean, 0.03);
    }

    @Test
    void badSettingsNameTheProblem() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ToySuperposition.train(FAST, Config.of(5, 2), Config.of(4, 2)));
        assertTrue(e.getMessage().contains("share features and dims"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Config.of(5, 2, 1, 0.9));
        assertTrue(e.getMessage().contains("[0, 1)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Config.of(5, 2, 0.9, 1).withCorrelation(Correlation.CORRELATED));
        assertTrue(e.getMessage().contains("even"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Config.of(4, 2, 0.2, 1).withCorrelation(Correlation.ANTICORRELATED));
        assertTrue(e.getMessage().contains("sparsity >= 0.5"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Config.of(3, 1).withImportance(1, 2));
        assertTrue(e.getMessage().contains("one value per feature"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ToySuperposition.train(FAST, List.of(), ProgressSink.none()));
        e = assertThrows(IllegalArgumentException.class,
                () -> ToySuperposition.train(FAST.withBatchSize(1 << 20), ToySuperposition.repeat(Config.of(20, 5), 20)));
        assertTrue(e.getMessage().contains("fewer instances"), e.getMessage());
    }
}
