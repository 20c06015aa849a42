package dev.jlens.toy;

import java.util.Objects;

/**
 * How a weight matrix {@code W [m dims][n features]} arranges its features (column {@code W_i} is feature i's
 * direction), as Toy Models of Superposition measures it. Plain arithmetic on {@code double[][]}, so a
 * hand-built matrix can be checked as easily as a trained one.
 *
 * <pre>{@code
 * double[][] w = {{1, -1}};                       // two features, antipodal, in one dimension
 * FeatureGeometry.dimensionality(w);              // [0.5, 0.5]
 * FeatureGeometry.dimensionsPerFeature(w);        // m / |W|_F^2 = 0.5
 * }</pre>
 */
public final class FeatureGeometry {
    /** Below this norm a column counts as the zero vector (its direction is undefined). */
    public static final double ZERO_NORM = 1e-12;

    private FeatureGeometry() {}

    /** Each feature's norm {@code |W_i|}. */
    public static double[] norms(double[][] w) {
        int m = check(w), n = w[0].length;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int d = 0; d < m; d++) s += w[d][i] * w[d][i];
            out[i] = Math.sqrt(s);
        }
        return out;
    }

    /** The Gram matrix {@code W^T W [n][n]}: entry (i, j) is {@code W_i . W_j}. */
    public static double[][] gram(double[][] w) {
        int m = check(w), n = w[0].length;
        double[][] g = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                double s = 0;
                for (int d = 0; d < m; d++) s += w[d][i] * w[d][j];
                g[i][j] = s;
                g[j][i] = s;
            }
        }
        return g;
    }

    /**
     * Each feature's superposition (interference) {@code sum over j != i of (Ŵ_i . W_j)^2}: how much of the other
     * features lies along feature i's direction. 0 when the feature is orthogonal to all others, and 0 for a zero
     * column.
     */
    public static double[] interference(double[][] w) {
        double[][] g = gram(w);
        int n = g.length;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double sq = g[i][i];
            if (Math.sqrt(sq) < ZERO_NORM) continue;
            double s = 0;
            for (int j = 0; j < n; j++) if (j != i) s += g[i][j] * g[i][j];
            out[i] = s / sq;   // (W_i . W_j)^2 / |W_i|^2 = (Ŵ_i . W_j)^2
        }
        return out;
    }

    /**
     * Each feature's dimensionality {@code D_i = |W_i|^2 / sum over j of (Ŵ_i . W_j)^2} (the paper's definition;
     * equal to {@code |W_i|^4 / sum over j of (W_i . W_j)^2}): the fraction of a dimension the feature gets. 1 for
     * a feature with a dimension of its own, 1/2 for each of an antipodal pair, 2/5 for each corner of a pentagon,
     * 0 for a zero column.
     */
    public static double[] dimensionality(double[][] w) {
        double[][] g = gram(w);
        int n = g.length;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double sq = g[i][i];
            if (Math.sqrt(sq) < ZERO_NORM) continue;
            double s = 0;
            for (int j = 0; j < n; j++) s += g[i][j] * g[i][j];
            out[i] = sq * sq / s;
        }
        return out;
    }

    /**
     * The model's dimensions per feature {@code m / |W|_F^2}: 1 when m unit features fill m dimensions, 1/2 when
     * every dimension holds an antipodal pair, 2/5 for pentagons. Infinite for the zero matrix.
     */
    public static double dimensionsPerFeature(double[][] w) {
        int m = check(w);
        double f = 0;
        for (double[] row : w) for (double v : row) f += v * v;
        return m / f;
    }

    /** The cosine of the angle between features i and j (0 when either column is zero). */
    public static double cosine(double[][] w, int i, int j) {
        int m = check(w), n = w[0].length;
        if (i < 0 || i >= n || j < 0 || j >= n) {
            throw new IllegalArgumentException("features must be in [0, " + n + "), got " + i + " and " + j);
        }
        double dot = 0, ni = 0, nj = 0;
        for (int d = 0; d < m; d++) {
            dot += w[d][i] * w[d][j];
            ni += w[d][i] * w[d][i];
            nj += w[d][j] * w[d][j];
        }
        double den = Math.sqrt(ni) * Math.sqrt(nj);
        return den < ZERO_NORM ? 0 : dot / den;
    }

    /** Rows of {@code W}; fails on an empty or ragged matrix. */
    static int check(double[][] w) {
        Objects.requireNonNull(w, "w");
        if (w.length == 0 || w[0].length == 0) {
            throw new IllegalArgumentException("W must be a non-empty [dims][features] matrix");
        }
        for (int d = 1; d < w.length; d++) {
            if (w[d].length != w[0].length) {
                throw new IllegalArgumentException("W is ragged: row 0 has " + w[0].length + " features, row " + d
                        + " has " + w[d].length);
            }
        }
        return w.length;
    }
}
