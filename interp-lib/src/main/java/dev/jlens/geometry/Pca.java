package dev.jlens.geometry;

import java.util.Arrays;
import java.util.Locale;

/**
 * Principal components of a point cloud {@code [n][d]}: the mean, the top {@code k} unit directions (rows of
 * {@link #components()}, largest variance first) and their variances; {@link #project} gives coordinates in that
 * basis. {@code Pca.fit(acts, 2).project(acts)} is the usual 2-D picture of a feature.
 *
 * <p>Exact: the covariance matrix is diagonalised in double precision by Commons Math's singular value
 * decomposition (fine for the {@code d} of a residual stream, a few thousand at most). Each component's sign is fixed so that
 * its largest-magnitude entry is positive, so a fit is reproducible.
 *
 * @param mean the cloud's mean {@code [d]}
 * @param components unit directions {@code [k][d]}, orthonormal, by decreasing variance
 * @param variances the variance along each component {@code [k]}
 * @param totalVariance the variance summed over all {@code d} directions
 */
public record Pca(double[] mean, double[][] components, double[] variances, double totalVariance) {

    /** Fits the top {@code k} components of {@code points [n][d]} ({@code 1 <= k <= d}, {@code n >= 2}). */
    public static Pca fit(double[][] points, int k) {
        int n = points.length;
        if (n < 2) throw new IllegalArgumentException("PCA needs at least 2 points, got " + n);
        int d = points[0].length;
        if (k < 1 || k > d) throw new IllegalArgumentException("k must be 1.." + d + ", got " + k);
        double[] mean = new double[d];
        for (double[] p : points) {
            if (p.length != d) throw new IllegalArgumentException("points have " + p.length + " and " + d + " coordinates");
            for (int j = 0; j < d; j++) mean[j] += p[j] / n;
        }
        double[][] cov = new double[d][d];
        double[] c = new double[d];
        for (double[] p : points) {
            for (int j = 0; j < d; j++) c[j] = p[j] - mean[j];
            for (int a = 0; a < d; a++) {
                double ca = c[a];
                if (ca == 0) continue;
                double[] row = cov[a];
                for (int b = a; b < d; b++) row[b] += ca * c[b];
            }
        }
        for (int a = 0; a < d; a++) {
            for (int b = a; b < d; b++) {
                cov[a][b] /= n - 1;
                cov[b][a] = cov[a][b];
            }
        }
        double total = 0;
        for (int a = 0; a < d; a++) total += cov[a][a];
        // The covariance is symmetric positive semi-definite, so its singular value decomposition is its
        // eigendecomposition. Commons Math's SVD converges on the degenerate covariances of clustered activations
        // (a few distinct points) where its EigenDecomposition can fail.
        org.apache.commons.math3.linear.SingularValueDecomposition svd =
                new org.apache.commons.math3.linear.SingularValueDecomposition(
                        new org.apache.commons.math3.linear.Array2DRowRealMatrix(cov, false));
        double[] values = svd.getSingularValues();
        double[][] vectors = svd.getU().getData();
        Integer[] order = new Integer[d];
        for (int i = 0; i < d; i++) order[i] = i;
        Arrays.sort(order, (x, y) -> Double.compare(values[y], values[x]));
        double[][] comps = new double[k][d];
        double[] vars = new double[k];
        for (int i = 0; i < k; i++) {
            int col = order[i];
            int big = 0;
            for (int j = 0; j < d; j++) {
                comps[i][j] = vectors[j][col];
                if (Math.abs(comps[i][j]) > Math.abs(comps[i][big])) big = j;
            }
            if (comps[i][big] < 0) for (int j = 0; j < d; j++) comps[i][j] = -comps[i][j];
            vars[i] = Math.max(0, values[col]);
        }
        return new Pca(mean, comps, vars, total);
    }

    /** As {@link #fit(double[][], int)} for single-precision points. */
    public static Pca fit(float[][] points, int k) {
        return fit(toDouble(points), k);
    }

    /** Coordinates of {@code points [n][d]} along the components, centred on the fit's mean: {@code [n][k]}. */
    public double[][] project(double[][] points) {
        int k = components.length, d = mean.length;
        double[][] out = new double[points.length][k];
        for (int i = 0; i < points.length; i++) {
            if (points[i].length != d) {
                throw new IllegalArgumentException("point " + i + " has " + points[i].length + " coordinates, the fit " + d);
            }
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int j = 0; j < d; j++) s += (points[i][j] - mean[j]) * components[c][j];
                out[i][c] = s;
            }
        }
        return out;
    }

    /** The fraction of the total variance each component explains. */
    public double[] explainedRatio() {
        double[] r = new double[variances.length];
        for (int i = 0; i < r.length; i++) r[i] = totalVariance > 0 ? variances[i] / totalVariance : 0;
        return r;
    }

    /** The number of components. */
    public int k() {
        return components.length;
    }

    /** Single-precision rows as double rows. */
    public static double[][] toDouble(float[][] points) {
        double[][] out = new double[points.length][];
        for (int i = 0; i < points.length; i++) {
            out[i] = new double[points[i].length];
            for (int j = 0; j < points[i].length; j++) out[i][j] = points[i][j];
        }
        return out;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Pca(" + components.length + " of " + mean.length + " dims, explained");
        for (double r : explainedRatio()) sb.append(String.format(Locale.ROOT, " %.3f", r));
        return sb.append(')').toString();
    }
}
