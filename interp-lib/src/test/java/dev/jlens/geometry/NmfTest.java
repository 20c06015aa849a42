package dev.jlens.geometry;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A planted non-negative rank-3 matrix with sparse codes and its reconstruction. */
class NmfTest {

    static double[][] planted(double[][] h, double[][] w) {
        double[][] x = new double[h.length][w[0].length];
        for (int i = 0; i < h.length; i++) {
            for (int c = 0; c < w.length; c++) for (int j = 0; j < w[0].length; j++) x[i][j] += h[i][c] * w[c][j];
        }
        return x;
    }

    @Test
    void reconstructsAPlantedNonNegativeLowRankMatrix() {
        SplittableRandom r = new SplittableRandom(7);
        int n = 300, d = 12, k = 3;
        double[][] w = new double[k][d], h = new double[n][k];
        // parts-based basis: each row mostly on its own block of columns
        for (int c = 0; c < k; c++) for (int j = 0; j < d; j++) w[c][j] = j / 4 == c ? 1 + r.nextDouble() : 0.1 * r.nextDouble();
        for (double[] row : h) for (int c = 0; c < k; c++) row[c] = r.nextDouble() < 0.5 ? 0 : r.nextDouble();
        double[][] x = planted(h, w);
        Nmf nmf = Nmf.fit(x, k, 0, 1000);
        Nmf rank1 = Nmf.fit(x, 1, 0, 1000);
        System.out.println(nmf + "; " + rank1);
        assertTrue(nmf.relativeError() < 0.02, nmf.toString());
        assertTrue(rank1.relativeError() > 10 * nmf.relativeError(), "one component cannot hold three: " + rank1);
        for (double[] b : nmf.basis()) {
            double norm = 0;
            for (double v : b) {
                assertTrue(v >= 0);
                norm += v * v;
            }
            assertEquals(1, Math.sqrt(norm), 1e-9);
        }
        // each planted basis row is found (cosine), up to order
        for (double[] planted : w) {
            double best = 0;
            for (double[] b : nmf.basis()) best = Math.max(best, cos(planted, b));
            assertTrue(best > 0.99, "planted basis row recovered: cosine " + best);
        }
        // codes of the rows, with the basis fixed, reconstruct them and are exactly zero where the planted code is
        double[][] codes = nmf.encode(x);
        double err = 0, tot = 0;
        int zeros = 0, plantedZeros = 0;
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < k; c++) {
                assertTrue(codes[i][c] >= 0);
                if (codes[i][c] == 0) zeros++;
                if (h[i][c] == 0) plantedZeros++;
            }
            for (int j = 0; j < d; j++) {
                double rec = 0;
                for (int c = 0; c < k; c++) rec += codes[i][c] * nmf.basis()[c][j];
                err += (rec - x[i][j]) * (rec - x[i][j]);
                tot += x[i][j] * x[i][j];
            }
        }
        System.out.printf("encode: relative error %.4f, zero codes %d (planted %d)%n", Math.sqrt(err / tot), zeros, plantedZeros);
        assertTrue(Math.sqrt(err / tot) <= nmf.relativeError() + 1e-6, "codes solve the least squares at least as well as the fit");
        assertTrue(zeros > 0, "coordinate descent gives exact zeros");
        // optimality (KKT) of each row's non-negative least squares: zero gradient where a code is positive,
        // non-negative gradient where it is zero
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < k; c++) {
                double grad = 0;
                for (int j = 0; j < d; j++) {
                    double rec = 0;
                    for (int l = 0; l < k; l++) rec += codes[i][l] * nmf.basis()[l][j];
                    grad += (rec - x[i][j]) * nmf.basis()[c][j];
                }
                if (codes[i][c] > 0) assertEquals(0, grad, 1e-6, "row " + i + " code " + c);
                else assertTrue(grad > -1e-6, "row " + i + " code " + c + " gradient " + grad);
            }
        }
        // with the planted basis the codes are the planted ones
        double[][] unit = new double[k][];
        double[] norms = new double[k];
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (double v : w[c]) s += v * v;
            norms[c] = Math.sqrt(s);
            unit[c] = new double[d];
            for (int j = 0; j < d; j++) unit[c][j] = w[c][j] / norms[c];
        }
        double[][] exact = new Nmf(unit, 0, 0).encode(x, 500);
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < k; c++) {
                assertEquals(h[i][c] * norms[c], exact[i][c], 1e-6, "row " + i + " code " + c);
            }
        }
    }

    @Test
    void positivePartAndBadInput() {
        double[][] p = {{1, -2}, {3, 4}};
        double[] mean = Nmf.columnMeans(p);
        assertEquals(2, mean[0], 1e-12);
        assertEquals(1, mean[1], 1e-12);
        double[][] pos = Nmf.positivePart(p, mean);
        assertEquals(0, pos[0][0]);
        assertEquals(0, pos[0][1]);
        assertEquals(1, pos[1][0]);
        assertEquals(3, pos[1][1]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nmf.fit(p, 1, 0));
        assertTrue(e.getMessage().contains("positivePart"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Nmf.fit(pos, 3, 0));
    }

    static double cos(double[] a, double[] b) {
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < a.length; j++) {
            ab += a[j] * b[j];
            aa += a[j] * a[j];
            bb += b[j] * b[j];
        }
        return ab / Math.sqrt(aa * bb);
    }
}
