package dev.jlens.probe;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * How to fit a {@link LinearProbe}: logistic regression with an L2 penalty, difference of class means, or linear
 * discriminant analysis with a shrunk covariance. Each is deterministic (no random initialisation).
 *
 * <pre>{@code
 * ProbeMethod.logistic().fit(data);          // L2 1e-3 on standardised features
 * ProbeMethod.logistic(1e-2).fit(data);
 * ProbeMethod.diffMeans().fit(data);         // w = mean(class 1) - mean(class 0)
 * ProbeMethod.lda().fit(data);               // Ledoit-Wolf shrinkage; ProbeMethod.lda(0.1) for a fixed one
 * }</pre>
 *
 * <p>Numerics are plain Java {@code double} arithmetic with Apache Commons Math 3 where a library routine fits:
 * its non-linear conjugate-gradient optimiser (Polak-Ribière) for logistic regression, its Cholesky decomposition
 * for LDA's solve. Probing data is small (at most tens of thousands of rows of a few thousand floats), so double
 * precision in Java is fast enough and keeps fits reproducible bit for bit, with no native memory to manage.
 */
public sealed interface ProbeMethod permits ProbeMethod.Logistic, ProbeMethod.DiffMeans, ProbeMethod.Lda {

    /** Fits a probe to every row of {@code data}. */
    LinearProbe fit(ProbeData data);

    /** The method's name as saved with a probe ({@code logistic}, {@code diff_means}, {@code lda}). */
    String name();

    /** Logistic regression, L2 {@code 1e-3}, at most 500 conjugate-gradient iterations. */
    static Logistic logistic() {
        return new Logistic(1e-3, 500);
    }

    /** Logistic regression with L2 strength {@code l2} (on standardised features, see {@link Logistic}). */
    static Logistic logistic(double l2) {
        return new Logistic(l2, 500);
    }

    /** Difference of class means (nearest class mean for several classes). */
    static DiffMeans diffMeans() {
        return new DiffMeans();
    }

    /** LDA with Ledoit-Wolf shrinkage chosen from the data. */
    static Lda lda() {
        return new Lda(OptionalDouble.empty());
    }

    /** LDA with a fixed shrinkage in {@code [0, 1]}. */
    static Lda lda(double shrinkage) {
        return new Lda(OptionalDouble.of(shrinkage));
    }

    /**
     * Logistic regression (sigmoid for two classes, softmax for more) minimising mean cross-entropy plus
     * {@code l2 / 2 * |w|^2}. Features are standardised (per-column mean and standard deviation of the training rows)
     * before fitting, as a scikit-learn pipeline with a scaler would, so {@code l2} means the same at every layer;
     * the returned weights are mapped back to raw activation units. The bias is not penalised.
     *
     * @param l2            L2 strength (0 allowed; separable data then only stops at {@code maxIterations})
     * @param maxIterations most conjugate-gradient iterations
     */
    record Logistic(double l2, int maxIterations) implements ProbeMethod {
        /** Validates the settings. */
        public Logistic {
            if (!(l2 >= 0) || Double.isInfinite(l2)) throw new IllegalArgumentException("l2 must be >= 0, got " + l2);
            if (maxIterations < 1) throw new IllegalArgumentException("maxIterations must be >= 1, got " + maxIterations);
        }

        @Override
        public LinearProbe fit(ProbeData data) {
            LogisticFit.Result r = LogisticFit.fit(data, l2, maxIterations);
            Map<String, String> info = new LinkedHashMap<>();
            info.put("l2", Double.toString(l2));
            info.put("iterations", Integer.toString(r.iterations()));
            return new LinearProbe(name(), data.nClasses(), r.weights(), r.bias(), info);
        }

        @Override
        public String name() {
            return "logistic";
        }
    }

    /**
     * Difference of means: {@code w = mean(class 1) - mean(class 0)}, bias at the midpoint of the two means. For more
     * classes, nearest class mean: class {@code c} scores {@code x·(mu_c - mu) - |mu_c|^2 / 2} ({@code mu} the mean
     * of the class means), so {@code direction(c)} points from the average class towards class {@code c}.
     */
    record DiffMeans() implements ProbeMethod {
        @Override
        public LinearProbe fit(ProbeData data) {
            double[][] mu = LdaFit.classMeans(data);
            int d = data.dim(), k = data.nClasses();
            if (k == 2) {
                float[] w = new float[d];
                double b = 0;
                for (int j = 0; j < d; j++) {
                    w[j] = (float) (mu[1][j] - mu[0][j]);
                    b -= (mu[1][j] - mu[0][j]) * (mu[1][j] + mu[0][j]) / 2;
                }
                return new LinearProbe(name(), 2, new float[][] {w}, new float[] {(float) b}, Map.of());
            }
            double[] centre = new double[d];
            for (double[] m : mu) for (int j = 0; j < d; j++) centre[j] += m[j] / k;
            float[][] w = new float[k][d];
            float[] b = new float[k];
            for (int c = 0; c < k; c++) {
                double sq = 0;
                for (int j = 0; j < d; j++) {
                    w[c][j] = (float) (mu[c][j] - centre[j]);
                    sq += mu[c][j] * mu[c][j] - centre[j] * centre[j];
                }
                b[c] = (float) (-sq / 2);
            }
            return new LinearProbe(name(), k, w, b, Map.of());
        }

        @Override
        public String name() {
            return "diff_means";
        }
    }

    /**
     * Linear discriminant analysis: class means and the pooled within-class covariance {@code S}, shrunk towards
     * a multiple of the identity, {@code (1 - a) S + a tr(S)/d I}, with {@code a} from the Ledoit-Wolf formula (as
     * scikit-learn's {@code shrinkage="auto"}, without its feature scaling) or given. Class priors are the class
     * frequencies. {@code direction()} is {@code Sigma^-1 (mu_1 - mu_0)}: the mean difference with the
     * within-class noise directions discounted.
     *
     * @param shrinkage fixed shrinkage in {@code [0, 1]}, or empty for Ledoit-Wolf
     */
    record Lda(OptionalDouble shrinkage) implements ProbeMethod {
        /** Validates the shrinkage. */
        public Lda {
            if (shrinkage == null) shrinkage = OptionalDouble.empty();
            if (shrinkage.isPresent() && !(shrinkage.getAsDouble() >= 0 && shrinkage.getAsDouble() <= 1)) {
                throw new IllegalArgumentException("shrinkage must be in [0, 1] (or empty for Ledoit-Wolf), got "
                        + shrinkage.getAsDouble());
            }
        }

        @Override
        public LinearProbe fit(ProbeData data) {
            return LdaFit.fit(data, shrinkage, name());
        }

        @Override
        public String name() {
            return "lda";
        }
    }
}
