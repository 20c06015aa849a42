package dev.jlens.probe;

import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.ArrayRealVector;
import org.apache.commons.math3.linear.CholeskyDecomposition;
import org.apache.commons.math3.linear.DecompositionSolver;
import org.apache.commons.math3.linear.NonPositiveDefiniteMatrixException;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalDouble;

/** Shrinkage LDA (see {@link ProbeMethod.Lda}): pooled covariance, Ledoit-Wolf shrinkage, a Cholesky solve. */
final class LdaFit {
    private LdaFit() {}

    static LinearProbe fit(ProbeData data, OptionalDouble fixedShrinkage, String name) {
        int n = data.size(), d = data.dim(), k = data.nClasses();
        double[][] mu = classMeans(data);
        // Pooled within-class scatter S = sum (x - mu_y)(x - mu_y)^T / n (upper triangle, mirrored), plus the sum of
        // |x - mu_y|^4 that Ledoit-Wolf's variance term needs.
        double[][] s = new double[d][d];
        double fourth = 0;
        double[] z = new double[d];
        for (int i = 0; i < n; i++) {
            float[] x = data.x()[i];
            double[] m = mu[data.labels()[i]];
            double sq = 0;
            for (int j = 0; j < d; j++) {
                z[j] = x[j] - m[j];
                sq += z[j] * z[j];
            }
            fourth += sq * sq;
            for (int a = 0; a < d; a++) {
                double za = z[a];
                if (za == 0) continue;
                double[] row = s[a];
                for (int b = a; b < d; b++) row[b] += za * z[b];
            }
        }
        double trace = 0, frob = 0;
        for (int a = 0; a < d; a++) {
            for (int b = a; b < d; b++) {
                s[a][b] /= n;
                s[b][a] = s[a][b];
                frob += (a == b ? 1 : 2) * s[a][b] * s[a][b];
            }
            trace += s[a][a];
        }
        double target = trace / d;
        double alpha = fixedShrinkage.isPresent() ? fixedShrinkage.getAsDouble() : ledoitWolf(frob, trace, fourth, n, d);
        double[][] sigma = new double[d][d];
        for (int a = 0; a < d; a++) {
            for (int b = 0; b < d; b++) sigma[a][b] = (1 - alpha) * s[a][b];
            sigma[a][a] += alpha * target;
        }
        DecompositionSolver solver;
        try {
            solver = new CholeskyDecomposition(new Array2DRowRealMatrix(sigma, false), 1e-12, 1e-12).getSolver();
        } catch (NonPositiveDefiniteMatrixException e) {
            throw new IllegalArgumentException("LDA: the within-class covariance is singular (shrinkage " + alpha
                    + "; constant or duplicated features?): use ProbeMethod.lda() for Ledoit-Wolf shrinkage or a "
                    + "larger fixed one, e.g. ProbeMethod.lda(0.1)", e);
        }
        int[] counts = data.classCounts();
        Map<String, String> info = new LinkedHashMap<>();
        info.put("shrinkage", Double.toString(alpha));
        if (k == 2) {
            double[] diff = new double[d];
            for (int j = 0; j < d; j++) diff[j] = mu[1][j] - mu[0][j];
            double[] w = solver.solve(new ArrayRealVector(diff, false)).toArray();
            double b = Math.log((double) counts[1] / counts[0]);
            for (int j = 0; j < d; j++) b -= w[j] * (mu[0][j] + mu[1][j]) / 2;
            return new LinearProbe(name, 2, new float[][] {toFloats(w)}, new float[] {(float) b}, info);
        }
        float[][] w = new float[k][];
        float[] bias = new float[k];
        for (int c = 0; c < k; c++) {
            double[] wc = solver.solve(new ArrayRealVector(mu[c], true)).toArray();
            double b = Math.log((double) counts[c] / n);
            for (int j = 0; j < d; j++) b -= wc[j] * mu[c][j] / 2;
            w[c] = toFloats(wc);
            bias[c] = (float) b;
        }
        return new LinearProbe(name, k, w, bias, info);
    }

    /**
     * Ledoit-Wolf's shrinkage for centred rows, as scikit-learn's {@code ledoit_wolf_shrinkage}: {@code frob} is
     * {@code |S|_F^2}, {@code fourth} the sum over rows of {@code |z|^4}.
     */
    static double ledoitWolf(double frob, double trace, double fourth, int n, int d) {
        double mu = trace / d;
        double beta = (fourth / n - frob) / ((double) d * n);
        double delta = (frob - 2 * mu * trace + d * mu * mu) / d;
        beta = Math.min(beta, delta);
        return beta <= 0 || delta <= 0 ? 0 : beta / delta;
    }

    /** Mean row of each class {@code [nClasses][d]}. */
    static double[][] classMeans(ProbeData data) {
        int d = data.dim();
        double[][] mu = new double[data.nClasses()][d];
        int[] count = data.classCounts();
        for (int i = 0; i < data.size(); i++) {
            double[] m = mu[data.labels()[i]];
            float[] x = data.x()[i];
            for (int j = 0; j < d; j++) m[j] += x[j];
        }
        for (int c = 0; c < mu.length; c++) for (int j = 0; j < d; j++) mu[c][j] /= count[c];
        return mu;
    }

    static float[] toFloats(double[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) out[i] = (float) v[i];
        return out;
    }
}
