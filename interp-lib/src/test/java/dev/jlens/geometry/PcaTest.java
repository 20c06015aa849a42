package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/** PCA against a cloud with known axes, and the plane helpers built on it. */
class PcaTest {

    @Test
    void findsTheAxesOfAStretchedCloudInOrder() {
        SplittableRandom r = new SplittableRandom(0);
        int d = 6;
        // an orthonormal frame: axis k is e_k turned by 40 degrees in the (k, k+1) plane for even k
        double[][] axes = new double[d][d];
        double c = Math.cos(0.7), s = Math.sin(0.7);
        for (int k = 0; k < d; k += 2) {
            axes[k][k] = c;
            axes[k][k + 1] = s;
            axes[k + 1][k] = -s;
            axes[k + 1][k + 1] = c;
        }
        double[] sd = {5, 3, 2, 1, 0.5, 0.1};
        double[][] pts = new double[5000][d];
        for (double[] p : pts) {
            for (int k = 0; k < d; k++) {
                double z = sd[k] * ReducibilityTest.gauss(r);
                for (int j = 0; j < d; j++) p[j] += z * axes[k][j];
            }
            p[0] += 10;
        }
        Pca pca = Pca.fit(pts, 3);
        for (int k = 0; k < 3; k++) {
            double dot = 0;
            for (int j = 0; j < d; j++) dot += pca.components()[k][j] * axes[k][j];
            assertEquals(1, Math.abs(dot), 1e-2, "component " + k);
            assertEquals(sd[k] * sd[k], pca.variances()[k], 0.06 * sd[k] * sd[k]);
        }
        assertEquals(10, pca.mean()[0], 0.2);
        double total = 0;
        for (double x : sd) total += x * x;
        assertEquals(total, pca.totalVariance(), 0.05 * total);
        double[][] xy = pca.project(pts);
        double m = 0;
        for (double[] p : xy) m += p[0] / xy.length;
        assertEquals(0, m, 1e-9);
        assertTrue(pca.explainedRatio()[0] > pca.explainedRatio()[1]);
    }

    @Test
    void rotatingInAPlaneTurnsOnlyThePlanesComponent() {
        double[] center = {1, 1, 1};
        PlaneRotation rot = PlaneRotation.of(center, new double[] {1, 0, 0}, new double[] {0, 1, 0});
        assertArrayEquals(new double[] {1, 3, 5}, rot.apply(new double[] {3, 1, 5}, Math.PI / 2), 1e-12);
        assertArrayEquals(new double[] {-1, 1, 5}, rot.apply(new double[] {3, 1, 5}, Math.PI), 1e-12);
        double[] x = {0.3, -2, 4};
        assertArrayEquals(x, rot.apply(rot.apply(x, 0.4), -0.4), 1e-12);
    }

    @Test
    void cyclicOrderReadsAnglesAroundTheCentre() {
        double[][] week = new double[7][];
        for (int i = 0; i < 7; i++) week[i] = new double[] {5 + 2 * Math.cos(-i * 2 * Math.PI / 7), 2 * Math.sin(-i * 2 * Math.PI / 7)};
        CyclicOrder o = CyclicOrder.of(week);
        assertTrue(o.inCyclicOrder(), o.toString());
        assertEquals(-1, o.orientation());
        assertEquals(0, o.spacingError(), 1e-9);
        assertEquals(-2 * Math.PI / 7, o.step(), 1e-12);
        // the same points visited by twos (Monday, Wednesday, ...): a star, not a cycle
        double[][] star = new double[7][];
        for (int i = 0; i < 7; i++) star[i] = week[(2 * i) % 7];
        assertTrue(!CyclicOrder.of(star).inCyclicOrder(), CyclicOrder.of(star).toString());
        // one pair swapped: out of order
        double[][] swapped = week.clone();
        swapped[2] = week[3];
        swapped[3] = week[2];
        assertTrue(!CyclicOrder.of(swapped).inCyclicOrder());
    }
}
