package dev.jlens.geometry;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Planted independent non-Gaussian sources, linearly mixed into more dimensions, recovered up to sign and order. */
class FastIcaTest {

    /** Three sources (uniform, Laplace, sparse exponential bursts) mixed into 6 dimensions plus an offset. */
    static double[][][] planted(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[][] s = new double[n][3];
        for (int i = 0; i < n; i++) {
            s[i][0] = r.nextDouble() * 2 - 1;
            double u = r.nextDouble() - 0.5;
            s[i][1] = -Math.signum(u) * Math.log(1 - 2 * Math.abs(u));
            s[i][2] = r.nextDouble() < 0.1 ? -Math.log(1 - r.nextDouble()) : 0;
        }
        double[][] a = new double[3][6];
        for (double[] row : a) for (int j = 0; j < 6; j++) row[j] = r.nextDouble() * 2 - 1;
        double[][] x = new double[n][6];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 6; j++) {
                x[i][j] = 3.0 + j;
                for (int c = 0; c < 3; c++) x[i][j] += s[i][c] * a[c][j];
            }
        }
        return new double[][][] {s, x};
    }

    static double corr(double[][] a, int ca, double[][] b, int cb) {
        int n = a.length;
        double ma = 0, mb = 0;
        for (int i = 0; i < n; i++) {
            ma += a[i][ca] / n;
            mb += b[i][cb] / n;
        }
        double sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < n; i++) {
            double u = a[i][ca] - ma, v = b[i][cb] - mb;
            sab += u * v;
            saa += u * u;
            sbb += v * v;
        }
        return sab / Math.sqrt(saa * sbb);
    }

    @Test
    void recoversPlantedSourcesUpToSignAndPermutation() {
        double[][][] p = planted(4000, 3);
        double[][] truth = p[0], x = p[1];
        FastIca ica = FastIca.fit(x, 3, 0);
        System.out.println(ica);
        assertTrue(ica.converged(), ica.toString());
        double[][] s = ica.sources(x);
        boolean[] used = new boolean[3];
        for (int c = 0; c < 3; c++) {
            int best = -1;
            double bestCorr = 0;
            for (int t = 0; t < 3; t++) {
                double v = Math.abs(corr(s, c, truth, t));
                if (v > bestCorr) {
                    bestCorr = v;
                    best = t;
                }
            }
            System.out.printf("component %d -> source %d, |corr| %.4f%n", c, best, bestCorr);
            assertTrue(bestCorr > 0.98, "component " + c + " matches a source: " + bestCorr);
            assertTrue(!used[best], "each source once");
            used[best] = true;
        }
        // unit variance, zero mean sources; the sparse positive source comes out with positive skew
        for (int c = 0; c < 3; c++) {
            double m = 0, v = 0;
            for (double[] row : s) m += row[c] / s.length;
            for (double[] row : s) v += (row[c] - m) * (row[c] - m) / (s.length - 1);
            assertEquals(0, m, 1e-9);
            assertEquals(1, v, 1e-2);
        }
        int sparse = -1;
        for (int c = 0; c < 3; c++) if (Math.abs(corr(s, c, truth, 2)) > 0.98) sparse = c;
        assertTrue(corr(s, sparse, truth, 2) > 0, "skewness fixes the sign");
        // the mixing rows reconstruct the centred points from the sources (the data are rank 3)
        double err = 0, tot = 0;
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < 6; j++) {
                double r = ica.mean()[j];
                for (int c = 0; c < 3; c++) r += s[i][c] * ica.mixing()[c][j];
                err += (r - x[i][j]) * (r - x[i][j]);
                tot += (x[i][j] - ica.mean()[j]) * (x[i][j] - ica.mean()[j]);
            }
        }
        assertTrue(err / tot < 1e-9, "rank-3 data are reconstructed: " + err / tot);
    }

    @Test
    void gaussianSourcesAreNotSeparatedButTheFitStillWhitens() {
        // a control: with Gaussian sources ICA has nothing to find, and the sources correlate with no planted one
        SplittableRandom r = new SplittableRandom(1);
        double[][] x = new double[2000][4];
        for (double[] row : x) for (int j = 0; j < 4; j++) row[j] = dev.jlens.util.SplitMix.gaussian(r);
        FastIca ica = FastIca.fit(x, 4, 0, 50, 1e-4);
        double[][] s = ica.sources(x);
        for (int a = 0; a < 4; a++) {
            for (int b = a + 1; b < 4; b++) assertEquals(0, corr(s, a, s, b), 1e-6, "whitened sources are uncorrelated");
        }
    }

    @Test
    void tooManyComponentsNamesTheRank() {
        double[][] x = new double[100][3];
        for (int i = 0; i < 100; i++) x[i] = new double[] {i, 2 * i, Math.sin(i)};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FastIca.fit(x, 3, 0));
        assertTrue(e.getMessage().contains("at most 2"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> FastIca.fit(x, 4, 0));
    }
}
