package dev.jlens.useful;

import dev.jlens.geometry.Pca;
import dev.jlens.probe.LinearProbe;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.ProbeMethod;
import dev.jlens.sae.eval.SparseProbing;
import ml.dmlc.xgboost4j.java.Booster;
import ml.dmlc.xgboost4j.java.DMatrix;
import ml.dmlc.xgboost4j.java.XGBoost;
import ml.dmlc.xgboost4j.java.XGBoostError;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.CholeskyDecomposition;
import org.apache.commons.math3.linear.DecompositionSolver;
import org.apache.commons.math3.linear.RealMatrix;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The methods of a fair fight, all behind {@link Method}: logistic regression (the project's
 * {@link ProbeMethod#logistic(double)}, standardised on the training rows), k-nearest neighbours, PCA then logistic
 * regression, gradient-boosted trees (XGBoost through {@code xgboost4j}, the library Kantamneni et al. 2025 used;
 * one thread and a fixed seed, so fits are reproducible), a k-sparse probe (the top-k columns by class-mean
 * difference, then logistic regression: SAEBench's sparse probe, for dictionary latents), a Gaussian anomaly score
 * fitted on class-0 rows only, and a single column taken as the score. Every statistic (means, deviations, components,
 * chosen columns, trees) comes from the rows given to {@code fit}.
 */
public final class Baselines {
    private Baselines() {}

    /** Logistic regression with L2 strength {@code l2} on standardised columns. */
    public static Method logistic(double l2) {
        ProbeMethod.Logistic m = ProbeMethod.logistic(l2);
        return named(fmt("logistic(l2=%s)", l2), (x, y) -> {
            LinearProbe p = m.fit(data(x, y));
            return rows -> p.scores(rows);
        });
    }

    /**
     * k nearest neighbours by Euclidean distance on columns standardised with the training rows' means and
     * deviations; the score is the fraction of class-1 neighbours, less a tie-breaking {@code 1e-6} times the mean
     * distance to them.
     */
    public static Method knn(int k) {
        if (k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
        return named(fmt("knn(k=%d)", k), (x, y) -> {
            requireRows(x, y);
            Standardizer s = Standardizer.fit(x);
            float[][] train = s.apply(x);
            int kk = Math.min(k, train.length);
            return rows -> {
                float[][] q = s.apply(rows);
                double[] out = new double[q.length];
                double[] dist = new double[train.length];
                Integer[] order = new Integer[train.length];
                for (int i = 0; i < q.length; i++) {
                    for (int t = 0; t < train.length; t++) {
                        double acc = 0;
                        for (int j = 0; j < q[i].length; j++) {
                            double dd = q[i][j] - train[t][j];
                            acc += dd * dd;
                        }
                        dist[t] = acc;
                        order[t] = t;
                    }
                    Arrays.sort(order, (a, b) -> a.equals(b) ? 0
                            : dist[a] != dist[b] ? Double.compare(dist[a], dist[b]) : Integer.compare(a, b));
                    int pos = 0;
                    double near = 0;
                    for (int r = 0; r < kk; r++) {
                        pos += y[order[r]];
                        if (y[order[r]] == 1) near += Math.sqrt(dist[order[r]]);
                    }
                    out[i] = (double) pos / kk - 1e-6 * (pos == 0 ? 1e6 : near / pos);
                }
                return out;
            };
        });
    }

    /** The top {@code components} principal components of the training rows, then logistic regression. */
    public static Method pcaLogistic(int components, double l2) {
        if (components < 1) throw new IllegalArgumentException("components must be >= 1, got " + components);
        ProbeMethod.Logistic m = ProbeMethod.logistic(l2);
        return named(fmt("pca+logistic(k=%d, l2=%s)", components, l2), (x, y) -> {
            requireRows(x, y);
            Pca pca = Pca.fit(x, Math.min(components, x[0].length));
            LinearProbe p = m.fit(data(toFloat(pca.project(Pca.toDouble(x))), y));
            return rows -> p.scores(toFloat(pca.project(Pca.toDouble(rows))));
        });
    }

    /**
     * Gradient-boosted trees ({@code binary:logistic}): {@code rounds} trees of depth at most {@code depth}, learning
     * rate {@code eta}; histogram tree method (XGBoost's default), one thread, seed 0, so a fit is the same on every
     * run.
     */
    public static Method gbt(int rounds, int depth, double eta) {
        if (rounds < 1 || depth < 1 || !(eta > 0 && eta <= 1)) {
            throw new IllegalArgumentException("gbt needs rounds >= 1, depth >= 1 and eta in (0, 1]; got " + rounds
                    + ", " + depth + ", " + eta);
        }
        return named(fmt("gbt(rounds=%d, depth=%d, eta=%s)", rounds, depth, eta), (x, y) -> {
            requireRows(x, y);
            Map<String, Object> params = new HashMap<>();
            params.put("objective", "binary:logistic");
            params.put("max_depth", depth);
            params.put("eta", eta);
            params.put("nthread", 1);
            params.put("seed", 0);
            params.put("tree_method", "hist");
            params.put("verbosity", 0);
            float[] labels = new float[y.length];
            for (int i = 0; i < y.length; i++) labels[i] = y[i];
            try {
                DMatrix train = matrix(x);
                Booster booster;
                try {
                    train.setLabel(labels);
                    booster = XGBoost.train(train, params, rounds, new HashMap<>(), null, null);
                } finally {
                    train.dispose();
                }
                return new Method.Fitted() {
                    @Override
                    public double[] score(float[][] rows) {
                        try {
                            DMatrix q = matrix(rows);
                            try {
                                float[][] p = booster.predict(q, true);   // margins: no ties from saturation
                                double[] out = new double[rows.length];
                                for (int i = 0; i < out.length; i++) out[i] = p[i][0];
                                return out;
                            } finally {
                                q.dispose();
                            }
                        } catch (XGBoostError e) {
                            throw new IllegalStateException("XGBoost prediction failed: " + e.getMessage(), e);
                        }
                    }

                    @Override
                    public void close() {
                        booster.dispose();
                    }
                };
            } catch (XGBoostError e) {
                throw new IllegalStateException("XGBoost training failed: " + e.getMessage(), e);
            }
        });
    }

    /**
     * A k-sparse probe: the {@code k} columns with the largest {@code |mean(class 1) - mean(class 0)|} on the training
     * rows ({@link SparseProbing#topByMeanDifference}), then logistic regression on them.
     */
    public static Method sparseProbe(int k, double l2) {
        if (k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
        ProbeMethod.Logistic m = ProbeMethod.logistic(l2);
        return named(fmt("sparse-probe(k=%d, l2=%s)", k, l2), (x, y) -> {
            requireRows(x, y);
            int[] cols = SparseProbing.topByMeanDifference(x, y, k);
            LinearProbe p = m.fit(data(columns(x, cols), y));
            return rows -> p.scores(columns(rows, cols));
        });
    }

    /**
     * An anomaly score fitted on the class-0 rows only (the class-1 rows and the labels of the rest are ignored, so a
     * training set of class 0 alone is enough): the squared Mahalanobis distance from their mean under their
     * covariance of standardised columns, shrunk towards the identity by {@code shrinkage} in {@code [0, 1]}. A column
     * constant on class 0 counts with unit scale, so any change in it is far.
     */
    public static Method gaussianAnomaly(double shrinkage) {
        if (!(shrinkage >= 0 && shrinkage <= 1)) {
            throw new IllegalArgumentException("shrinkage must be in [0, 1], got " + shrinkage);
        }
        return named(fmt("gaussian-anomaly(shrinkage=%s)", shrinkage), (x, y) -> {
            requireRows(x, y);
            int n0 = 0;
            for (int v : y) if (v == 0) n0++;
            if (n0 < 2) throw new IllegalArgumentException("the anomaly score needs at least 2 class-0 rows, got " + n0);
            float[][] normal = new float[n0][];
            for (int i = 0, a = 0; i < y.length; i++) if (y[i] == 0) normal[a++] = x[i];
            Standardizer s = Standardizer.fit(normal);
            float[][] z = s.apply(normal);
            int d = z[0].length;
            double[][] cov = new double[d][d];
            for (float[] r : z) {
                for (int a = 0; a < d; a++) {
                    if (r[a] == 0) continue;
                    for (int b = a; b < d; b++) cov[a][b] += (double) r[a] * r[b];
                }
            }
            for (int a = 0; a < d; a++) {
                for (int b = a; b < d; b++) {
                    double v = (1 - shrinkage) * cov[a][b] / n0 + (a == b ? shrinkage + 1e-6 : 0);
                    cov[a][b] = v;
                    cov[b][a] = v;
                }
            }
            RealMatrix c = new Array2DRowRealMatrix(cov, false);
            DecompositionSolver solver = new CholeskyDecomposition(c, 1e-12, 1e-14).getSolver();
            return rows -> {
                float[][] q = s.apply(rows);
                double[] out = new double[q.length];
                for (int i = 0; i < q.length; i++) {
                    double[] v = new double[d];
                    for (int j = 0; j < d; j++) v[j] = q[i][j];
                    double[] w = solver.solve(new org.apache.commons.math3.linear.ArrayRealVector(v, false))
                            .toArray();
                    double m2 = 0;
                    for (int j = 0; j < d; j++) m2 += v[j] * w[j];
                    out[i] = m2;
                }
                return out;
            };
        });
    }

    /** Column {@code j} as the score, as it is (nothing is fitted): for scores that need no training, e.g. a KL. */
    public static Method column(int j) {
        if (j < 0) throw new IllegalArgumentException("column must be >= 0, got " + j);
        return named(fmt("column(%d)", j), (x, y) -> rows -> {
            double[] out = new double[rows.length];
            for (int i = 0; i < rows.length; i++) {
                if (j >= rows[i].length) {
                    throw new IllegalArgumentException("column " + j + " is out of range: rows have "
                            + rows[i].length + " columns (0.." + (rows[i].length - 1) + ")");
                }
                out[i] = rows[i][j];
            }
            return out;
        });
    }

    /**
     * Column {@code j} as the score with its sign fitted: negated when it ranks the training rows below chance
     * (training AUROC under 0.5), e.g. a model's confidence as a predictor of its errors.
     */
    public static Method orientedColumn(int j) {
        Method raw = column(j);
        return named(fmt("oriented-column(%d)", j), (x, y) -> {
            requireRows(x, y);
            double auc = dev.jlens.probe.Metrics.auroc(raw.fit(x, y).score(x), y);
            double sign = auc < 0.5 ? -1 : 1;
            Method.Fitted f = raw.fit(x, y);
            return rows -> {
                double[] s = f.score(rows);
                for (int i = 0; i < s.length; i++) s[i] *= sign;
                return s;
            };
        });
    }

    // ------------------------------------------------------------------------------------------- helpers

    /** A method from a name and a fitting function. */
    public static Method named(String name, java.util.function.BiFunction<float[][], int[], Method.Fitted> fit) {
        return new Method() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Method.Fitted fit(float[][] x, int[] y) {
                return fit.apply(x, y);
            }

            @Override
            public String toString() {
                return name;
            }
        };
    }

    static ProbeData data(float[][] x, int[] y) {
        requireRows(x, y);
        return ProbeData.of(x, y, new int[y.length], 2);
    }

    static void requireRows(float[][] x, int[] y) {
        if (x == null || y == null || x.length == 0) throw new IllegalArgumentException("no training rows");
        if (x.length != y.length) {
            throw new IllegalArgumentException("mismatched lengths: " + x.length + " rows, " + y.length + " labels");
        }
        for (int i = 0; i < y.length; i++) {
            if (y[i] != 0 && y[i] != 1) {
                throw new IllegalArgumentException("labels must be 0 or 1; label " + y[i] + " at row " + i);
            }
        }
    }

    static float[][] columns(float[][] rows, int[] cols) {
        float[][] out = new float[rows.length][cols.length];
        for (int i = 0; i < rows.length; i++) for (int c = 0; c < cols.length; c++) out[i][c] = rows[i][cols[c]];
        return out;
    }

    static float[][] toFloat(double[][] rows) {
        float[][] out = new float[rows.length][];
        for (int i = 0; i < rows.length; i++) {
            out[i] = new float[rows[i].length];
            for (int j = 0; j < rows[i].length; j++) out[i][j] = (float) rows[i][j];
        }
        return out;
    }

    private static DMatrix matrix(float[][] rows) throws XGBoostError {
        int n = rows.length, d = rows[0].length;
        float[] flat = new float[n * d];
        for (int i = 0; i < n; i++) System.arraycopy(rows[i], 0, flat, i * d, d);
        return new DMatrix(flat, n, d, Float.NaN);
    }

    private static String fmt(String f, Object... args) {
        return String.format(Locale.ROOT, f, args);
    }

    /** Per-column mean and standard deviation of the rows it was fitted on (a constant column keeps scale 1). */
    record Standardizer(double[] mean, double[] sd) {
        static Standardizer fit(float[][] x) {
            int n = x.length, d = x[0].length;
            double[] mean = new double[d], sd = new double[d];
            for (float[] r : x) for (int j = 0; j < d; j++) mean[j] += r[j];
            for (int j = 0; j < d; j++) mean[j] /= n;
            for (float[] r : x) for (int j = 0; j < d; j++) sd[j] += (r[j] - mean[j]) * (r[j] - mean[j]);
            for (int j = 0; j < d; j++) {
                sd[j] = Math.sqrt(sd[j] / n);
                if (!(sd[j] > 1e-12)) sd[j] = 1;
            }
            return new Standardizer(mean, sd);
        }

        float[][] apply(float[][] x) {
            float[][] out = new float[x.length][mean.length];
            for (int i = 0; i < x.length; i++) {
                if (x[i].length != mean.length) {
                    throw new IllegalArgumentException("row " + i + " has " + x[i].length + " columns; the fit had "
                            + mean.length);
                }
                for (int j = 0; j < mean.length; j++) out[i][j] = (float) ((x[i][j] - mean[j]) / sd[j]);
            }
            return out;
        }
    }
}
