package dev.jlens.useful;

import dev.jlens.probe.Metrics;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Percentile bootstrap intervals of AUROC: seeded, around the estimate, of the width sampling theory gives. */
class BootstrapTest {

    @Test
    void perfectScoresGiveADegenerateInterval() {
        double[] s = {0.1, 0.2, 0.3, 0.8, 0.9};
        int[] y = {0, 0, 0, 1, 1};
        Bootstrap.Interval i = Bootstrap.defaults().auroc(s, y);
        assertEquals(1.0, i.estimate());
        assertEquals(1.0, i.low());
        assertEquals(1.0, i.high());
        assertEquals(5, i.n());
        assertEquals(2, i.positives());
    }

    @Test
    void intervalIsSeededAndHasTheWidthOfHanleyMcNeil() {
        SplittableRandom r = new SplittableRandom(3);
        int n = 400;
        double[] s = new double[n];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 2;
            s[i] = r.nextGaussian() + y[i];   // true AUROC = Phi(1 / sqrt 2) = 0.760
        }
        Bootstrap b = Bootstrap.defaults();
        Bootstrap.Interval a = b.auroc(s, y), again = b.auroc(s, y);
        assertEquals(a, again);
        assertEquals(Metrics.auroc(s, y), a.estimate());
        assertTrue(a.low() < a.estimate() && a.estimate() < a.high(), a.toString());
        // Hanley & McNeil's standard error of AUROC with 200 + 200 rows
        double auc = a.estimate(), q1 = auc / (2 - auc), q2 = 2 * auc * auc / (1 + auc);
        double se = Math.sqrt((auc * (1 - auc) + 199 * (q1 - auc * auc) + 199 * (q2 - auc * auc)) / (200.0 * 200));
        double width = a.high() - a.low();
        assertEquals(2 * 1.96 * se, width, 0.25 * width, a.toString() + " se " + se);
        Bootstrap.Interval other = new Bootstrap(1000, 0.95, 1).auroc(s, y);
        assertTrue(other.low() != a.low() || other.high() != a.high(), "another seed resamples otherwise");
        Bootstrap.Interval narrow = new Bootstrap(1000, 0.5, 0).auroc(s, y);
        assertTrue(narrow.high() - narrow.low() < width / 2, "a 50% interval is narrower than a 95% one");
    }

    @Test
    void replicateAurocEqualsTheRankedOneWithTies() {
        SplittableRandom r = new SplittableRandom(5);
        for (int rep = 0; rep < 50; rep++) {
            double[] p = new double[1 + r.nextInt(30)], q = new double[1 + r.nextInt(30)];
            for (int i = 0; i < p.length; i++) p[i] = r.nextInt(6);   // few values: many ties
            for (int i = 0; i < q.length; i++) q[i] = r.nextInt(6) - 1;
            assertEquals(Metrics.auroc(p.clone(), q.clone()), Bootstrap.sortedAuroc(p, q), 1e-12);
        }
    }

    @Test
    void badSettingsAndLabelsThrow() {
        assertThrows(IllegalArgumentException.class, () -> new Bootstrap(10, 0.95, 0));
        assertThrows(IllegalArgumentException.class, () -> new Bootstrap(1000, 1.5, 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Bootstrap.defaults().auroc(new double[] {1, 2}, new int[] {1, 1}));
        assertTrue(e.getMessage().contains("both classes"), e.getMessage());
    }
}
