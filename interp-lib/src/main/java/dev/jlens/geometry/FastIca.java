package dev.jlens.geometry;

import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.RealMatrix;
import org.apache.commons.math3.linear.SingularValueDecomposition;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Independent components of a point cloud {@code [n][d]} by FastICA (Hyvärinen 1999), the symmetric (parallel)
 * algorithm with the log-cosh contrast, as scikit-learn's {@code FastICA(algorithm="parallel", fun="logcosh")}:
 * whiten onto the top {@code k} principal components ({@link Pca}), then iterate
 * {@code W <- E[g(W z) z^T] - diag(E[g'(W z)]) W} with {@code g = tanh}, each step followed by the symmetric
 * decorrelation {@code W <- (W W^T)^(-1/2) W} (from Commons Math's SVD: {@code U V^T} of {@code W = U S V^T}), until
 * every row turns by less than {@code tolerance} ({@code max |1 - |<w_new, w_old>||}).
 *
 * <p>The sources come out with unit variance and zero mean, in no particular order and sign (ICA's ambiguity); each
 * one's sign is fixed so that its skewness on the fitted points is non-negative, so a fit is reproducible.
 *
 * @param mean       the cloud's mean {@code [d]}
 * @param unmixing   rows {@code [k][d]}: source {@code c} of a point {@code x} is {@code unmixing[c] . (x - mean)}
 * @param mixing     rows {@code [k][d]}: the direction in input space of each source ({@code x - mean} is, on the
 *                   whitened subspace, {@code sum_c s_c mixing[c]})
 * @param iterations iterations run
 * @param converged  whether the tolerance was reached within the iteration limit
 */
public record FastIca(double[] mean, double[][] unmixing, double[][] mixing, int iterations, boolean converged) {

    /** Fits {@code k} components with at most 200 iterations and tolerance {@code 1e-4}. */
    public static FastIca fit(double[][] points, int k, long seed) {
        return fit(points, k, seed, 200, 1e-4);
    }

    /**
     * Fits {@code k} components ({@code 1 <= k <= d}, and no more than the cloud's rank) of {@code points [n][d]};
     * the unmixing matrix starts Gaussian from {@code seed}.
     */
    public static FastIca fit(double[][] points, int k, long seed, int maxIterations, double tolerance) {
        if (maxIterations < 1) throw new IllegalArgumentException("maxIterations must be >= 1, got " + maxIterations);
        if (!(tolerance > 0)) throw new IllegalArgumentException("tolerance must be > 0, got " + tolerance);
        int n = points.length;
        if (n < 2) throw new IllegalArgumentException("ICA needs at least 2 points, got " + n);
        Pca pca = Pca.fit(points, k);
        int d = pca.mean().length;
        for (int c = 0; c < k; c++) {
            if (!(pca.variances()[c] > 1e-12 * Math.max(pca.variances()[0], Double.MIN_NORMAL))) {
                throw new IllegalArgumentException("the points span fewer than k = " + k + " dimensions (principal"
                        + " component " + c + " has variance " + pca.variances()[c] + "); ask for at most " + c);
            }
        }
        // whitened points z = diag(1 / sqrt(var)) E (x - mean): [n][k], identity covariance
        double[][] z = pca.project(points);
        double[] invSd = new double[k];
        for (int c = 0; c < k; c++) invSd[c] = 1 / Math.sqrt(pca.variances()[c]);
        for (double[] row : z) for (int c = 0; c < k; c++) row[c] *= invSd[c];

        SplittableRandom rng = new SplittableRandom(seed);
        double[][] w = new double[k][k];
        for (double[] row : w) for (int j = 0; j < k; j++) row[j] = dev.jlens.util.SplitMix.gaussian(rng);
        w = decorrelate(w);
        int it = 0;
        boolean converged = false;
        double[] g = new double[k], meanDeriv = new double[k];
        while (it < maxIterations && !converged) {
            it++;
            double[][] next = new double[k][k];
            java.util.Arrays.fill(meanDeriv, 0);
            for (double[] zi : z) {
                for (int c = 0; c < k; c++) {
                    double s = 0;
                    double[] wc = w[c];
                    for (int j = 0; j < k; j++) s += wc[j] * zi[j];
                    g[c] = Math.tanh(s);
                    meanDeriv[c] += 1 - g[c] * g[c];
                }
                for (int c = 0; c < k; c++) {
                    double gc = g[c];
                    double[] nc = next[c];
                    for (int j = 0; j < k; j++) nc[j] += gc * zi[j];
                }
            }
            for (int c = 0; c < k; c++) {
                for (int j = 0; j < k; j++) next[c][j] = next[c][j] / n - meanDeriv[c] / n * w[c][j];
            }
            next = decorrelate(next);
            double change = 0;
            for (int c = 0; c < k; c++) {
                double dot = 0;
                for (int j = 0; j < k; j++) dot += next[c][j] * w[c][j];
                change = Math.max(change, Math.abs(1 - Math.abs(dot)));
            }
            w = next;
            converged = change < tolerance;
        }
        // back to input space: unmixing = W diag(1/sqrt var) E, mixing = W diag(sqrt var) E (W is orthogonal)
        double[][] e = pca.components();
        double[][] unmixing = new double[k][d], mixing = new double[k][d];
        for (int c = 0; c < k; c++) {
            for (int a = 0; a < k; a++) {
                double un = w[c][a] * invSd[a], mx = w[c][a] / invSd[a];
                for (int j = 0; j < d; j++) {
                    unmixing[c][j] += un * e[a][j];
                    mixing[c][j] += mx * e[a][j];
                }
            }
        }
        // sign: non-negative skewness of each source on the fitted points
        double[] skew = new double[k];
        for (double[] zi : z) {
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int j = 0; j < k; j++) s += w[c][j] * zi[j];
                skew[c] += s * s * s;
            }
        }
        for (int c = 0; c < k; c++) {
            if (skew[c] < 0) {
                for (int j = 0; j < d; j++) {
                    unmixing[c][j] = -unmixing[c][j];
                    mixing[c][j] = -mixing[c][j];
                }
            }
        }
        return new FastIca(pca.mean(), unmixing, mixing, it, converged);
    }

    /** As {@link #fit(double[][], int, long)} for single-precision points. */
    public static FastIca fit(float[][] points, int k, long seed) {
        return fit(Pca.toDouble(points), k, seed);
    }

    /** The sources of {@code points [n][d]}: {@code [n][k]}. */
    public double[][] sources(double[][] points) {
        int k = unmixing.length, d = mean.length;
        double[][] out = new double[points.length][k];
        double[] c = new double[d];
        for (int i = 0; i < points.length; i++) {
            if (points[i].length != d) {
                throw new IllegalArgumentException("point " + i + " has " + points[i].length + " coordinates, the fit " + d);
            }
            for (int j = 0; j < d; j++) c[j] = points[i][j] - mean[j];
            for (int s = 0; s < k; s++) {
                double v = 0;
                for (int j = 0; j < d; j++) v += unmixing[s][j] * c[j];
                out[i][s] = v;
            }
        }
        return out;
    }

    /** The number of components. */
    public int k() {
        return unmixing.length;
    }

    /** {@code (W W^T)^(-1/2) W}, the nearest matrix with orthonormal rows: {@code U V^T} of {@code W = U S V^T}. */
    private static double[][] decorrelate(double[][] w) {
        SingularValueDecomposition svd = new SingularValueDecomposition(new Array2DRowRealMatrix(w, false));
        RealMatrix uvt = svd.getU().multiply(svd.getVT());
        return uvt.getData();
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "FastIca(%d components of %d dims, %d iterations, %s)", unmixing.length,
                mean.length, iterations, converged ? "converged" : "not converged");
    }
}
