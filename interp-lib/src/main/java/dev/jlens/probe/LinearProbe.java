package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A fitted linear probe. Binary probes hold one weight vector {@code w} and bias {@code b}: the score of a row is
 * {@code w·x + b}, positive means class 1. Multiclass probes hold one row of weights and one bias per class and
 * predict the class of highest score. Weights are in the activations' own units (no standardisation is left to
 * apply), so {@link #rawDirection()} can be added to the residual stream as it is.
 *
 * <pre>{@code
 * LinearProbe p = ProbeMethod.logistic().fit(data);
 * p.accuracy(test); p.predict(rows); p.direction();   // unit vector [d]
 * p.save(Path.of("number-l2.probe.json")); LinearProbe.load(Path.of("number-l2.probe.json"));
 * }</pre>
 *
 * @param method   how it was fitted ({@code logistic}, {@code diff_means}, {@code lda})
 * @param nClasses number of classes
 * @param weights  {@code [1, d]} for a binary probe, {@code [nClasses, d]} otherwise
 * @param bias     one bias per weight row
 * @param info     free-form metadata saved with the probe (hook name, layer, regularisation, ...)
 */
public record LinearProbe(String method, int nClasses, float[][] weights, float[] bias, Map<String, String> info) {

    /** Checks the shapes. */
    public LinearProbe {
        if (nClasses < 2) throw new IllegalArgumentException("nClasses must be >= 2, got " + nClasses);
        int rows = nClasses == 2 ? 1 : nClasses;
        if (weights == null || weights.length != rows || bias == null || bias.length != rows) {
            throw new IllegalArgumentException("a probe with " + nClasses + " classes needs " + rows
                    + " weight row(s) and bias(es), got " + (weights == null ? 0 : weights.length) + " and "
                    + (bias == null ? 0 : bias.length));
        }
        for (float[] w : weights) {
            if (w == null || w.length != weights[0].length || w.length == 0) {
                throw new IllegalArgumentException("every weight row needs the same non-zero width");
            }
        }
        info = Map.copyOf(info == null ? Map.of() : info);
    }

    /** True for a two-class probe (one direction). */
    public boolean binary() {
        return nClasses == 2;
    }

    /** Width of the activations it reads. */
    public int dim() {
        return weights[0].length;
    }

    /** The binary probe's direction {@code w / |w|} (unit length). */
    public float[] direction() {
        return unit(rawDirection());
    }

    /** The binary probe's weight vector {@code w} as fitted (a copy). */
    public float[] rawDirection() {
        requireBinary("rawDirection()", "rawDirection(cls)");
        return weights[0].clone();
    }

    /** The unit direction that raises class {@code cls}'s score ({@code -w} for class 0 of a binary probe). */
    public float[] direction(int cls) {
        return unit(rawDirection(cls));
    }

    /** The weights of class {@code cls} ({@code w} for class 1 of a binary probe, {@code -w} for class 0). */
    public float[] rawDirection(int cls) {
        checkClass(cls);
        if (!binary()) return weights[cls].clone();
        float[] w = weights[0].clone();
        if (cls == 0) for (int i = 0; i < w.length; i++) w[i] = -w[i];
        return w;
    }

    /** {@link #direction()} as an NDArray {@code [d]} on {@code manager}. */
    public NDArray direction(NDManager manager) {
        return manager.create(direction(), new Shape(dim()));
    }

    /** The binary probe's bias {@code b}. */
    public float binaryBias() {
        requireBinary("binaryBias()", "bias()[cls]");
        return bias[0];
    }

    /** The binary score {@code w·x + b} of one row. */
    public double score(float[] row) {
        requireBinary("score(row)", "classScores(rows)");
        checkWidth(row);
        return dot(weights[0], row) + bias[0];
    }

    /** Binary scores of rows (for {@link Metrics#auroc} and {@link Metrics#recallAtFpr}). */
    public double[] scores(float[][] rows) {
        double[] s = new double[rows.length];
        for (int i = 0; i < rows.length; i++) s[i] = score(rows[i]);
        return s;
    }

    /** Binary scores of activations {@code [n, d]}. */
    public double[] scores(NDArray rows) {
        return scores(ProbeData.rows(rows));
    }

    /** One score per class and row {@code [n, nClasses]} (for a binary probe: {@code -s/2, s/2}). */
    public double[][] classScores(float[][] rows) {
        double[][] out = new double[rows.length][nClasses];
        for (int i = 0; i < rows.length; i++) {
            checkWidth(rows[i]);
            if (binary()) {
                double s = dot(weights[0], rows[i]) + bias[0];
                out[i][0] = -s / 2;
                out[i][1] = s / 2;
            } else {
                for (int c = 0; c < nClasses; c++) out[i][c] = dot(weights[c], rows[i]) + bias[c];
            }
        }
        return out;
    }

    /** The predicted class of each row. */
    public int[] predict(float[][] rows) {
        double[][] s = classScores(rows);
        int[] out = new int[rows.length];
        for (int i = 0; i < rows.length; i++) out[i] = argmax(s[i]);
        return out;
    }

    /** The predicted class of each row of activations {@code [n, d]}. */
    public int[] predict(NDArray rows) {
        return predict(ProbeData.rows(rows));
    }

    /**
     * Class probabilities {@code [n, nClasses]}: the softmax of the class scores (for a binary probe
     * {@code sigmoid(w·x + b)} for class 1). Calibrated for logistic regression; for difference of means and LDA it is
     * a monotone squashing of the score (LDA's is the posterior under its shared-covariance Gaussian model).
     */
    public double[][] predictProba(float[][] rows) {
        double[][] s = classScores(rows);
        for (double[] r : s) {
            double m = Arrays.stream(r).max().orElse(0), sum = 0;
            for (int c = 0; c < r.length; c++) sum += r[c] = Math.exp(r[c] - m);
            for (int c = 0; c < r.length; c++) r[c] /= sum;
        }
        return s;
    }

    /** Fraction of {@code data}'s rows whose class it predicts. */
    public double accuracy(ProbeData data) {
        checkWidth(data.x()[0]);
        if (data.nClasses() > nClasses) {
            throw new IllegalArgumentException("data has " + data.nClasses() + " classes, the probe " + nClasses);
        }
        return Metrics.accuracy(predict(data.x()), data.labels());
    }

    /** The same probe with one more metadata entry. */
    public LinearProbe withInfo(String key, String value) {
        Map<String, String> m = new LinkedHashMap<>(info);
        m.put(key, value);
        return new LinearProbe(method, nClasses, weights, bias, m);
    }

    /** Writes the probe as one JSON file (see {@link ProbeFiles}). */
    public void save(Path file) {
        ProbeFiles.save(this, file);
    }

    /** Reads a probe written by {@link #save}; a bad file throws naming the path and the problem. */
    public static LinearProbe load(Path file) {
        return ProbeFiles.load(file);
    }

    private void requireBinary(String what, String instead) {
        if (!binary()) {
            throw new IllegalArgumentException(what + " needs a binary probe; this one has " + nClasses
                    + " classes: use " + instead);
        }
    }

    private void checkClass(int cls) {
        if (cls < 0 || cls >= nClasses) {
            throw new IllegalArgumentException("class " + cls + " is out of range: valid classes are 0.."
                    + (nClasses - 1));
        }
    }

    private void checkWidth(float[] row) {
        if (row.length != dim()) {
            throw new IllegalArgumentException("a row has " + row.length + " values; this probe reads " + dim()
                    + " (d_model of the hook it was fitted on)");
        }
    }

    static double dot(float[] w, float[] x) {
        double s = 0;
        for (int i = 0; i < w.length; i++) s += (double) w[i] * x[i];
        return s;
    }

    static float[] unit(float[] v) {
        double n = 0;
        for (float f : v) n += (double) f * f;
        n = Math.sqrt(n);
        float[] out = new float[v.length];
        if (n == 0) return out;
        for (int i = 0; i < v.length; i++) out[i] = (float) (v[i] / n);
        return out;
    }

    private static int argmax(double[] s) {
        int best = 0;
        for (int c = 1; c < s.length; c++) if (s[c] > s[best]) best = c;
        return best;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LinearProbe p && method.equals(p.method) && nClasses == p.nClasses
                && Arrays.deepEquals(weights, p.weights) && Arrays.equals(bias, p.bias) && info.equals(p.info);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * method.hashCode() + Arrays.deepHashCode(weights)) + Arrays.hashCode(bias);
    }

    @Override
    public String toString() {
        return "LinearProbe(" + method + ", " + nClasses + " classes, d=" + dim() + (info.isEmpty() ? "" : ", " + info)
                + ")";
    }
}
