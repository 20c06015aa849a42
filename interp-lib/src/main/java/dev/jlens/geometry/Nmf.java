package dev.jlens.geometry;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Non-negative matrix factorisation {@code X ~ H W} of a non-negative matrix {@code X [n][d]} into codes
 * {@code H [n][k] >= 0} and a basis {@code W [k][d] >= 0}, by Lee and Seung's multiplicative updates for the squared
 * Frobenius error ({@code H <- H * (X W^T) / (H W W^T)}, {@code W <- W * (H^T X) / (H^T H W)}), from a seeded uniform
 * start scaled to the data (as scikit-learn's {@code init="random"}).
 *
 * <p>The basis rows are rescaled to unit norm at the end (the codes take the scale), so codes of different components
 * are comparable. {@link #encode} codes new rows with the basis fixed by non-negative least squares (coordinate descent,
 * as HALS updates one code at a time: {@code h_j <- max(0, h_j + (x.w_j - sum_l h_l (W W^T)_lj) / |w_j|^2)}), which,
 * unlike multiplicative updates, sets codes to exactly zero, so "a code fires" means {@code h > 0}.
 *
 * <p>To factor activations that take both signs, {@link #positivePart} is {@code max(0, x - mean)}.
 *
 * @param basis         unit rows {@code [k][d]}
 * @param relativeError {@code |X - H W|_F / |X|_F} on the fitted rows
 * @param iterations    multiplicative-update iterations run
 */
public record Nmf(double[][] basis, double relativeError, int iterations) {
    private static final double EPS = 1e-12;

    /** Fits rank {@code k} with 200 multiplicative-update iterations. */
    public static Nmf fit(double[][] x, int k, long seed) {
        return fit(x, k, seed, 200);
    }

    /** Fits rank {@code k} ({@code 1 <= k <= d}) of non-negative {@code x [n][d]} with {@code iterations} updates. */
    public static Nmf fit(double[][] x, int k, long seed, int iterations) {
        int n = x.length;
        if (n < 1) throw new IllegalArgumentException("NMF needs at least one row");
        int d = x[0].length;
        if (k < 1 || k > d) throw new IllegalArgumentException("k must be 1.." + d + ", got " + k);
        if (iterations < 1) throw new IllegalArgumentException("iterations must be >= 1, got " + iterations);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            if (x[i].length != d) throw new IllegalArgumentException("row " + i + " has " + x[i].length + " values, row 0 " + d);
            for (int j = 0; j < d; j++) {
                if (!(x[i][j] >= 0)) {
                    throw new IllegalArgumentException("NMF needs non-negative input; x[" + i + "][" + j + "] = " + x[i][j]
                            + " (factor Nmf.positivePart(points) for activations of both signs)");
                }
                sum += x[i][j];
            }
        }
        double scale = Math.sqrt(sum / ((double) n * d) / k);
        SplittableRandom rng = new SplittableRandom(seed);
        double[][] w = new double[k][d], h = new double[n][k];
        for (double[] row : w) for (int j = 0; j < d; j++) row[j] = scale * rng.nextDouble();
        for (double[] row : h) for (int c = 0; c < k; c++) row[c] = scale * rng.nextDouble();
        for (int it = 0; it < iterations; it++) {
            // H <- H * (X W^T) / (H (W W^T))
            double[][] wwt = gram(w);
            double[] xw = new double[k], hww = new double[k];
            for (int i = 0; i < n; i++) {
                double[] xi = x[i], hi = h[i];
                for (int c = 0; c < k; c++) {
                    double s = 0;
                    double[] wc = w[c];
                    for (int j = 0; j < d; j++) s += xi[j] * wc[j];
                    xw[c] = s;
                }
                for (int c = 0; c < k; c++) {
                    double s = 0;
                    for (int l = 0; l < k; l++) s += hi[l] * wwt[l][c];
                    hww[c] = s;
                }
                for (int c = 0; c < k; c++) hi[c] *= xw[c] / (hww[c] + EPS);
            }
            // W <- W * (H^T X) / ((H^T H) W)
            double[][] htx = new double[k][d], hth = new double[k][k];
            for (int i = 0; i < n; i++) {
                double[] xi = x[i], hi = h[i];
                for (int c = 0; c < k; c++) {
                    double hc = hi[c];
                    if (hc == 0) continue;
                    double[] row = htx[c];
                    for (int j = 0; j < d; j++) row[j] += hc * xi[j];
                    for (int l = 0; l < k; l++) hth[c][l] += hc * hi[l];
                }
            }
            for (int c = 0; c < k; c++) {
                for (int j = 0; j < d; j++) {
                    double s = 0;
                    for (int l = 0; l < k; l++) s += hth[c][l] * w[l][j];
                    w[c][j] *= htx[c][j] / (s + EPS);
                }
            }
        }
        // unit basis rows; the codes take the scale
        for (int c = 0; c < k; c++) {
            double norm = 0;
            for (double v : w[c]) norm += v * v;
            norm = Math.sqrt(norm);
            if (norm > 0) {
                for (int j = 0; j < d; j++) w[c][j] /= norm;
                for (double[] hi : h) hi[c] *= norm;
            }
        }
        double err = 0, tot = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                double r = 0;
                for (int c = 0; c < k; c++) r += h[i][c] * w[c][j];
                err += (x[i][j] - r) * (x[i][j] - r);
                tot += x[i][j] * x[i][j];
            }
        }
        return new Nmf(w, tot > 0 ? Math.sqrt(err / tot) : 0, iterations);
    }

    /** Codes {@code [n][k] >= 0} of rows {@code x [n][d]} with the basis fixed, 100 coordinate-descent sweeps. */
    public double[][] encode(double[][] x) {
        return encode(x, 100);
    }

    /** Codes of rows {@code x} by non-negative least squares with the basis fixed, {@code sweeps} sweeps per row. */
    public double[][] encode(double[][] x, int sweeps) {
        int k = basis.length, d = basis[0].length;
        double[][] wwt = gram(basis);
        double[][] out = new double[x.length][k];
        double[] xw = new double[k];
        for (int i = 0; i < x.length; i++) {
            if (x[i].length != d) throw new IllegalArgumentException("row " + i + " has " + x[i].length + " values, the basis " + d);
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int j = 0; j < d; j++) s += x[i][j] * basis[c][j];
                xw[c] = s;
            }
            double[] h = out[i];
            for (int sweep = 0; sweep < sweeps; sweep++) {
                double moved = 0;
                for (int c = 0; c < k; c++) {
                    if (wwt[c][c] <= 0) continue;
                    double s = 0;
                    for (int l = 0; l < k; l++) s += h[l] * wwt[l][c];
                    double v = Math.max(0, h[c] + (xw[c] - s) / wwt[c][c]);
                    moved = Math.max(moved, Math.abs(v - h[c]));
                    h[c] = v;
                }
                if (moved < 1e-10) break;
            }
        }
        return out;
    }

    /** {@code max(0, x - mean)} of each row, with the column means of {@code points}: the positive part of the centred rows. */
    public static double[][] positivePart(double[][] points, double[] mean) {
        double[][] out = new double[points.length][];
        for (int i = 0; i < points.length; i++) {
            out[i] = new double[mean.length];
            for (int j = 0; j < mean.length; j++) out[i][j] = Math.max(0, points[i][j] - mean[j]);
        }
        return out;
    }

    /** The column means of {@code points}. */
    public static double[] columnMeans(double[][] points) {
        double[] m = new double[points[0].length];
        for (double[] p : points) for (int j = 0; j < m.length; j++) m[j] += p[j] / points.length;
        return m;
    }

    /** The rank. */
    public int k() {
        return basis.length;
    }

    private static double[][] gram(double[][] w) {
        int k = w.length;
        double[][] g = new double[k][k];
        for (int a = 0; a < k; a++) {
            for (int b = a; b < k; b++) {
                double s = 0;
                for (int j = 0; j < w[a].length; j++) s += w[a][j] * w[b][j];
                g[a][b] = s;
                g[b][a] = s;
            }
        }
        return g;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "Nmf(rank %d of %d dims, relative error %.4f after %d iterations)", basis.length,
                basis[0].length, relativeError, iterations);
    }
}
