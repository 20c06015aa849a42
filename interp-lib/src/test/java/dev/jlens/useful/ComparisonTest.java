package dev.jlens.useful;

import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every method on planted data: separable rows give test AUROC near 1, label-shuffled rows an interval covering
 * 0.5; nothing is fitted on test rows or read from test labels.
 */
class ComparisonTest {

    /** Rows of {@code d} Gaussian columns; class 1 shifted by {@code shift} along column 0 (and column 1 half as far). */
    static UsefulTask planted(String name, double shift, boolean shuffleLabels, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int d = 12;
        int[] sizes = {300, 150, 300};
        int[][] y = new int[3][];
        float[][][] x = new float[3][][];
        for (int p = 0; p < 3; p++) {
            y[p] = new int[sizes[p]];
            x[p] = new float[sizes[p]][d];
            for (int i = 0; i < sizes[p]; i++) {
                y[p][i] = i % 3 == 0 ? 1 : 0;
                for (int j = 0; j < d; j++) x[p][i][j] = (float) r.nextGaussian();
                x[p][i][0] += (float) (y[p][i] * shift);
                x[p][i][1] += (float) (y[p][i] * shift / 2);
            }
            if (shuffleLabels) {
                int[] perm = Runs.permutation(sizes[p], seed + p);
                int[] s = new int[sizes[p]];
                for (int i = 0; i < s.length; i++) s[i] = y[p][perm[i]];
                y[p] = s;
            }
        }
        Map<String, UsefulTask.View> views = new LinkedHashMap<>();
        views.put("x", new UsefulTask.View(x[0], x[1], x[2]));
        return new UsefulTask(name, y[0], y[1], y[2], views, Map.of());
    }

    static List<Comparison.Entry> everyMethod() {
        return List.of(
                Comparison.interpretability("sparse probe", "x", Baselines.sparseProbe(1, 1e-3),
                        Baselines.sparseProbe(4, 1e-3)),
                Comparison.baseline("logistic", "x", Baselines.logistic(1e-3), Baselines.logistic(1)),
                Comparison.baseline("knn", "x", Baselines.knn(15)),
                Comparison.baseline("pca+logistic", "x", Baselines.pcaLogistic(4, 1e-2)),
                Comparison.baseline("gbt", "x", Baselines.gbt(60, 3, 0.1)),
                Comparison.baseline("column 0", "x", Baselines.orientedColumn(0)),
                Comparison.baseline("anomaly", "x", Baselines.gaussianAnomaly(0.1)));
    }

    @Test
    void separablePlantedDataGivesAurocNearOneForEveryMethod() {
        Comparison c = Comparison.run(planted("separable", 8, false, 1), everyMethod(), Bootstrap.defaults());
        assertEquals(7, c.rows().size());
        for (Comparison.Row r : c.rows()) {
            assertTrue(r.test().estimate() > 0.97, r.toString());
            assertTrue(r.test().low() > 0.9, r.toString());
        }
        Table t = c.toTable();
        assertEquals(7, t.rowCount());
        assertEquals(300, t.intColumn("n_test").get(0));
        assertEquals(100, t.intColumn("test_positives").get(0));
        assertTrue(List.of("logistic(l2=0.001)", "logistic(l2=1.0)").contains(c.row("separable", "logistic").chosen()),
                "the kept setting is one of the candidates: " + c.row("separable", "logistic").chosen());
        Table wl = c.winLoss();
        assertEquals(1, wl.rowCount());
        assertEquals("tie", wl.stringColumn("outcome").get(0), "all near 1: intervals overlap");
        var chart = c.chart("separable");
        assertEquals(List.of("interval", "interpretability", "baseline"), List.copyOf(chart.getSeriesMap().keySet()));
        assertEquals(7, chart.getSeriesMap().get("interval").getXData().size());
    }

    @Test
    void shuffledLabelsGiveIntervalsCoveringChance() {
        Comparison c = Comparison.run(planted("shuffled", 8, true, 2), everyMethod(), Bootstrap.defaults());
        for (Comparison.Row r : c.rows()) {
            assertTrue(r.test().low() < 0.5 && r.test().high() > 0.5, r.toString());
        }
    }

    @Test
    void testLabelsAreNeverRead() {
        UsefulTask task = planted("weak", 1.0, false, 3);
        Comparison a = Comparison.run(task, everyMethod(), Bootstrap.defaults());
        int[] permuted = task.test().clone();
        int[] perm = Runs.permutation(permuted.length, 9);
        for (int i = 0; i < permuted.length; i++) permuted[i] = task.test()[perm[i]];
        int[] flipped = Arrays.stream(task.test()).map(v -> 1 - v).toArray();
        for (int[] labels : List.of(permuted, flipped)) {
            Comparison b = Comparison.run(task.withTestLabels(labels), everyMethod(), Bootstrap.defaults());
            for (int i = 0; i < a.rows().size(); i++) {
                Comparison.Row ra = a.rows().get(i), rb = b.rows().get(i);
                assertEquals(ra.chosen(), rb.chosen(), ra.method());
                assertArrayEquals(ra.testScores(), rb.testScores(), ra.method() + ": same scores whatever the labels");
                assertNotEquals(ra.test().estimate(), rb.test().estimate(), ra.method() + ": the metric does read them");
            }
        }
    }

    @Test
    void testRowsFitNothing() {
        // half the test rows replaced by far-off rows: the other half's scores do not move (statistics from train)
        UsefulTask task = planted("weak", 1.0, false, 4);
        float[][] test = task.view("x").test();
        float[][] changed = new float[test.length][];
        for (int i = 0; i < test.length; i++) {
            changed[i] = test[i].clone();
            if (i % 2 == 1) for (int j = 0; j < changed[i].length; j++) changed[i][j] = changed[i][j] * 50 + 100;
        }
        Comparison a = Comparison.run(task, everyMethod(), Bootstrap.defaults());
        Comparison b = Comparison.run(task.withTestRows("x", changed), everyMethod(), Bootstrap.defaults());
        for (int m = 0; m < a.rows().size(); m++) {
            double[] sa = a.rows().get(m).testScores(), sb = b.rows().get(m).testScores();
            for (int i = 0; i < sa.length; i += 2) assertEquals(sa[i], sb[i], a.rows().get(m).method() + " row " + i);
            boolean moved = false;
            for (int i = 1; i < sa.length; i += 2) moved |= sa[i] != sb[i];
            assertTrue(moved, a.rows().get(m).method() + " scores the changed rows");
        }
    }

    @Test
    void winLossCountsAnIntervalAboveTheBestBaselineAsAWin() {
        // the "interpretability" method reads the signal column, the baselines only noise columns
        UsefulTask task = planted("planted", 3, false, 5);
        float[][][] parts = {task.view("x").train(), task.view("x").validation(), task.view("x").test()};
        float[][][] noise = new float[3][][];
        for (int p = 0; p < 3; p++) {
            noise[p] = new float[parts[p].length][];
            for (int i = 0; i < parts[p].length; i++) noise[p][i] = Arrays.copyOfRange(parts[p][i], 2, 12);
        }
        Map<String, UsefulTask.View> views = new LinkedHashMap<>(task.views());
        views.put("noise", new UsefulTask.View(noise[0], noise[1], noise[2]));
        UsefulTask t = new UsefulTask("planted", task.train(), task.validation(), task.test(), views, Map.of());
        Comparison c = Comparison.run(t, List.of(
                Comparison.interpretability("signal probe", "x", Baselines.logistic(1e-3)),
                Comparison.interpretability("noise probe", "noise", Baselines.logistic(1e-3)),
                Comparison.baseline("noise gbt", "noise", Baselines.gbt(50, 2, 0.1)),
                Comparison.baseline("noise logistic", "noise", Baselines.logistic(1e-3))), Bootstrap.defaults());
        Table wl = c.winLoss();
        assertEquals(List.of("win", "tie"), wl.stringColumn("outcome").asList());
        Table s = c.winLossSummary();
        assertEquals(1, s.intColumn("wins").get(0));
        assertEquals(1, s.intColumn("ties").get(1));
    }

    @Test
    void badInputNamesTheProblem() {
        UsefulTask task = planted("p", 3, false, 6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> task.view("resid"));
        assertTrue(e.getMessage().contains("[x]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Comparison.run(task, List.of(), Bootstrap.defaults()));
        assertTrue(e.getMessage().contains("entry"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Baselines.knn(0));
        assertTrue(e.getMessage().contains("k must be"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Baselines.logistic(1e-3).fit(new float[][] {{1}, {2}}, new int[] {0, 2}));
        assertTrue(e.getMessage().contains("0 or 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> task.withTestLabels(new int[300]));
        assertTrue(e.getMessage().contains("both classes"), e.getMessage());
        Comparison c = Comparison.run(task, List.of(Comparison.baseline("l", "x", Baselines.logistic(1))),
                Bootstrap.defaults());
        e = assertThrows(IllegalArgumentException.class, () -> c.row("p", "gbt"));
        assertTrue(e.getMessage().contains("[l]"), e.getMessage());
        assertFalse(c.toString().isEmpty());
    }

    @Test
    void gbtAndKnnAreDeterministic() {
        UsefulTask task = planted("p", 1, false, 7);
        UsefulTask.View v = task.view("x");
        for (Method m : List.of(Baselines.gbt(30, 3, 0.3), Baselines.knn(7), Baselines.pcaLogistic(3, 1e-2))) {
            List<double[]> runs = new ArrayList<>();
            for (int k = 0; k < 2; k++) {
                try (Method.Fitted f = m.fit(v.train(), task.train())) {
                    runs.add(f.score(v.test()));
                }
            }
            assertArrayEquals(runs.get(0), runs.get(1), m.name());
        }
    }
}
