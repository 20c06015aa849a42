package dev.jlens.probe;

import org.apache.commons.math3.exception.TooManyEvaluationsException;
import org.apache.commons.math3.exception.TooManyIterationsException;
import org.apache.commons.math3.optim.InitialGuess;
import org.apache.commons.math3.optim.MaxEval;
import org.apache.commons.math3.optim.MaxIter;
import org.apache.commons.math3.optim.PointValuePair;
import org.apache.commons.math3.optim.SimpleValueChecker;
import org.apache.commons.math3.optim.nonlinear.scalar.GoalType;
import org.apache.commons.math3.optim.nonlinear.scalar.ObjectiveFunction;
import org.apache.commons.math3.optim.nonlinear.scalar.ObjectiveFunctionGradient;
import org.apache.commons.math3.optim.nonlinear.scalar.gradient.NonLinearConjugateGradientOptimizer;

import java.util.Arrays;

/**
 * L2-penalised logistic regression (see {@link ProbeMethod.Logistic}) minimised with Commons Math's non-linear
 * conjugate gradient. Works on standardised features without materialising them: a weight {@code v} on standardised
 * column {@code j} is {@code v / sd_j} on the raw column, so each evaluation is one pass over the raw rows.
 */
final class LogisticFit {
    private LogisticFit() {}

    /** Raw-unit weights ({@code [1, d]} binary, {@code [k, d]} otherwise), biases, and iterations used. */
    record Result(float[][] weights, float[] bias, int iterations) {}

    static Result fit(ProbeData data, double l2, int maxIterations) {
        return fit(data, l2, maxIterations, true);
    }

    /**
     * As {@link #fit(ProbeData, double, int)}; with {@code standardize} false the columns are only centred, so the
     * L2 penalty is on raw-unit weights and the fitted direction does not depend on the basis (a rotation of the
     * rows rotates the weights), which comparing directions needs.
     */
    static Result fit(ProbeData data, double l2, int maxIterations, boolean standardize) {
        int n = data.size(), d = data.dim(), k = data.nClasses();
        int rows = k == 2 ? 1 : k;
        double[] mean = new double[d], sd = new double[d];
        for (float[] x : data.x()) for (int j = 0; j < d; j++) mean[j] += x[j];
        for (int j = 0; j < d; j++) mean[j] /= n;
        for (float[] x : data.x()) for (int j = 0; j < d; j++) sd[j] += (x[j] - mean[j]) * (x[j] - mean[j]);
        for (int j = 0; j < d; j++) {
            sd[j] = standardize ? Math.sqrt(sd[j] / n) : 1;
            if (!(sd[j] > 1e-12)) sd[j] = 1;   // a constant column: weight it in raw units
        }
        Objective obj = new Objective(data, mean, sd, l2, rows);
        NonLinearConjugateGradientOptimizer opt = new NonLinearConjugateGradientOptimizer(
                NonLinearConjugateGradientOptimizer.Formula.POLAK_RIBIERE, new SimpleValueChecker(1e-10, 1e-12));
        double[] start = new double[rows * (d + 1)];
        double[] best;
        int iterations;
        try {
            PointValuePair p = opt.optimize(new MaxEval(Integer.MAX_VALUE), new MaxIter(maxIterations),
                    new ObjectiveFunction(obj::value), new ObjectiveFunctionGradient(obj::gradient),
                    GoalType.MINIMIZE, new InitialGuess(start));
            best = p.getPoint();
            iterations = opt.getIterations();
        } catch (TooManyIterationsException | TooManyEvaluationsException e) {
            best = obj.bestPoint();   // the lowest objective seen: still a usable, if unconverged, probe
            iterations = maxIterations;
        }
        float[][] w = new float[rows][d];
        float[] b = new float[rows];
        for (int c = 0; c < rows; c++) {
            double bias = best[c * (d + 1) + d];
            for (int j = 0; j < d; j++) {
                double raw = best[c * (d + 1) + j] / sd[j];
                w[c][j] = (float) raw;
                bias -= raw * mean[j];
            }
            b[c] = (float) bias;
        }
        return new Result(w, b, iterations);
    }

    /** Mean cross-entropy plus the L2 term, with its gradient; the last point's pair is cached. */
    private static final class Objective {
        private final ProbeData data;
        private final double[] mean, sd;
        private final double l2;
        private final int rows, d;
        private double[] lastPoint, lastGradient, bestPoint;
        private double lastValue, bestValue = Double.POSITIVE_INFINITY;

        Objective(ProbeData data, double[] mean, double[] sd, double l2, int rows) {
            this.data = data;
            this.mean = mean;
            this.sd = sd;
            this.l2 = l2;
            this.rows = rows;
            this.d = data.dim();
        }

        double value(double[] p) {
            evaluate(p);
            return lastValue;
        }

        double[] gradient(double[] p) {
            evaluate(p);
            return lastGradient.clone();
        }

        double[] bestPoint() {
            return bestPoint == null ? new double[rows * (d + 1)] : bestPoint;
        }

        private void evaluate(double[] p) {
            if (lastPoint != null && Arrays.equals(p, lastPoint)) return;
            int n = data.size();
            // raw-unit weights u = v / sd and offsets c = b - u . mean: score = u . x + c
            double[][] u = new double[rows][d];
            double[] off = new double[rows];
            for (int c = 0; c < rows; c++) {
                off[c] = p[c * (d + 1) + d];
                for (int j = 0; j < d; j++) {
                    u[c][j] = p[c * (d + 1) + j] / sd[j];
                    off[c] -= u[c][j] * mean[j];
                }
            }
            double loss = 0;
            double[][] gx = new double[rows][d];   // sum_i r_ic x_ij
            double[] gr = new double[rows];        // sum_i r_ic
            double[] s = new double[rows];
            for (int i = 0; i < n; i++) {
                float[] x = data.x()[i];
                int y = data.labels()[i];
                for (int c = 0; c < rows; c++) {
                    double[] uc = u[c];
                    double acc = off[c];
                    for (int j = 0; j < d; j++) acc += uc[j] * x[j];
                    s[c] = acc;
                }
                if (rows == 1) {
                    // binary: loss = log(1 + e^s) - y s, residual sigmoid(s) - y
                    double z = s[0];
                    loss += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - (y == 1 ? z : 0);
                    s[0] = 1 / (1 + Math.exp(-z)) - y;
                } else {
                    double m = Double.NEGATIVE_INFINITY, sum = 0;
                    for (double v : s) m = Math.max(m, v);
                    for (int c = 0; c < rows; c++) sum += s[c] = Math.exp(s[c] - m);
                    loss -= Math.log(s[y] / sum);
                    for (int c = 0; c < rows; c++) s[c] = s[c] / sum - (c == y ? 1 : 0);
                }
                for (int c = 0; c < rows; c++) {
                    double r = s[c];
                    if (r == 0) continue;
                    double[] g = gx[c];
                    for (int j = 0; j < d; j++) g[j] += r * x[j];
                    gr[c] += r;
                }
            }
            double[] grad = new double[p.length];
            double penalty = 0;
            for (int c = 0; c < rows; c++) {
                for (int j = 0; j < d; j++) {
                    double v = p[c * (d + 1) + j];
                    grad[c * (d + 1) + j] = (gx[c][j] - mean[j] * gr[c]) / sd[j] / n + l2 * v;
                    penalty += v * v;
                }
                grad[c * (d + 1) + d] = gr[c] / n;
            }
            lastPoint = p.clone();
            lastValue = loss / n + l2 / 2 * penalty;
            lastGradient = grad;
            if (lastValue < bestValue) {
                bestValue = lastValue;
                bestPoint = lastPoint;
            }
        }
    }
}
