package dev.jlens.probe;

import java.util.SplittableRandom;

import dev.jlens.util.SplitMix;

/** Synthetic probing data with known ground truth: Gaussian rows around a planted direction. */
final class Planted {
    private Planted() {}

    /** A random unit vector of width {@code d}. */
    static float[] unit(int d, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] u = new float[d];
        double n = 0;
        for (int j = 0; j < d; j++) {
            u[j] = (float) SplitMix.gaussian(r);
            n += u[j] * u[j];
        }
        for (int j = 0; j < d; j++) u[j] /= (float) Math.sqrt(n);
        return u;
    }

    /**
     * Two classes, equally likely: {@code x = (y ? +1 : -1) * gap / 2 * u + noise}, noise N(0, 1) along {@code u}
     * and N(0, nuisance^2) on the first few other coordinates (anisotropic, orthogonal to {@code u} only roughly).
     * The Bayes rate along {@code u} is {@code Phi(gap / 2)}; groups are runs of 8 rows.
     */
    static ProbeData linear(float[] u, int n, double gap, long seed) {
        int d = u.length;
        SplittableRandom r = new SplittableRandom(seed);
        float[][] x = new float[n][d];
        int[] y = new int[n], g = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = r.nextInt(2);
            g[i] = i / 8;
            double along = (y[i] == 1 ? 1 : -1) * gap / 2 + SplitMix.gaussian(r);
            // noise orthogonal to u: a Gaussian vector with u's component removed
            double[] z = new double[d];
            double proj = 0;
            for (int j = 0; j < d; j++) {
                z[j] = SplitMix.gaussian(r) * (j < 4 ? 3 : 1);
                proj += z[j] * u[j];
            }
            for (int j = 0; j < d; j++) x[i][j] = (float) (z[j] - proj * u[j] + along * u[j] + (j == 0 ? 5 : 0));
        }
        return ProbeData.of(x, y, g);
    }

    /** XOR of the signs along two orthogonal directions: no linear probe beats chance. */
    static ProbeData xor(int d, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[][] x = new float[n][d];
        int[] y = new int[n], g = new int[n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) x[i][j] = (float) SplitMix.gaussian(r);
            y[i] = (x[i][0] > 0) ^ (x[i][1] > 0) ? 1 : 0;
            g[i] = i / 8;
        }
        return ProbeData.of(x, y, g);
    }

    /** Phi, the standard normal distribution function. */
    static double phi(double z) {
        return new org.apache.commons.math3.distribution.NormalDistribution().cumulativeProbability(z);
    }

    static double cosine(float[] a, float[] b) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return ab / Math.sqrt(aa * bb);
    }
}
