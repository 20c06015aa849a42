package dev.jlens.toy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.GradientCollector;
import dev.jlens.train.AdamW;
import dev.jlens.train.ProgressSink;
import dev.jlens.util.SplitMix;
import dev.jlens.util.Tensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The toy model of Toy Models of Superposition (Elhage et al. 2022): {@code n} features squeezed into {@code m}
 * dimensions and read back, {@code x' = ReLU(W^T W x + b)} with {@code W [m, n]} and {@code b [n]}, trained on
 * synthetic sparse features with the loss {@code sum_i I_i (x_i - x'_i)^2} averaged over the batch. Each feature is
 * zero with probability {@code S} (the sparsity), otherwise uniform in [0, 1]; feature i's importance is
 * {@code I_i} (often {@code D^i} for an importance decay D).
 *
 * <p>Many instances train at once, each with its own sparsity, importance and data (tensors {@code [K, m, n]},
 * batched matmuls), so a whole sweep is one run; every instance's initialisation and data depend only on the seed
 * and its index, never on the other instances. Adam (the project's {@link AdamW} without weight decay), lr 1e-3,
 * batch 1024, 10,000 steps by default, as the paper.
 *
 * <pre>{@code
 * ToyResult r = ToySuperposition.train(ToySuperposition.sparsitySweep(20, 5, 0.9, 0, 0.7, 0.9, 0.97, 0.99, 0.997));
 * r.toTable();              // one row per instance: loss, features represented, dimensions per feature
 * r.normsPlot();            // |W_i| per instance and feature
 * r.dimensionalityPlot();   // m / |W|_F^2 and each D_i against 1 / (1 - S)
 * r.model(3).gramHeatmap(); // W^T W of one instance
 *
 * ToySuperposition.train(ToySuperposition.phaseGrid(new double[] {0, 0.5, 0.8, 0.9, 0.95, 0.98},
 *         new double[] {0.25, 0.5, 1, 2, 4}, 2)).phaseDiagram().heatmap();
 * }</pre>
 */
public final class ToySuperposition {
    private static final long INIT_SALT = 0x1A17L, DATA_SALT = 0xDA7AL, EVAL_SALT = 0xE7A1L;
    /** Most values one training batch (all instances) may hold: 2^28 floats, 1 GiB. */
    static final long MAX_BATCH_ELEMENTS = 1L << 28;
    /** Most values one evaluation pass holds; the instances are evaluated in groups below it. */
    private static final long EVAL_CHUNK_ELEMENTS = 1L << 24;

    private ToySuperposition() {}

    /** How the features of a pair (0 and 1, 2 and 3, ...) occur together. */
    public enum Correlation {
        /** Every feature is zero with probability S, independently. */
        INDEPENDENT,
        /** Features come in pairs that are both on or both off (a pair is on with probability 1 - S; each value uniform). */
        CORRELATED,
        /**
         * Features come in pairs of which at most one is on: a pair is on with probability 2 (1 - S), then one of
         * its two features, chosen evenly; each feature is still on with probability 1 - S (needs S >= 1/2).
         */
        ANTICORRELATED
    }

    /**
     * One instance's setting: {@code features} (n) in {@code dims} (m), the {@code sparsity} S (probability that a
     * feature is zero), each feature's {@code importance} and how features co-occur.
     */
    public record Config(int features, int dims, double sparsity, double[] importance, Correlation correlation) {
        public Config {
            if (features < 1 || dims < 1) {
                throw new IllegalArgumentException("features and dims must be >= 1, got " + features + " features in "
                        + dims + " dims");
            }
            if (!(sparsity >= 0 && sparsity < 1)) {
                throw new IllegalArgumentException("sparsity is the probability that a feature is zero and must be in "
                        + "[0, 1), got " + sparsity);
            }
            Objects.requireNonNull(importance, "importance");
            Objects.requireNonNull(correlation, "correlation (valid: " + Arrays.toString(Correlation.values()) + ")");
            if (importance.length != features) {
                throw new IllegalArgumentException("importance needs one value per feature (" + features + "), got "
                        + importance.length);
            }
            for (double v : importance) {
                if (!(v >= 0) || Double.isInfinite(v)) {
                    throw new IllegalArgumentException("importances must be finite and >= 0, got "
                            + Arrays.toString(importance));
                }
            }
            importance = importance.clone();
            if (correlation != Correlation.INDEPENDENT && features % 2 != 0) {
                throw new IllegalArgumentException(correlation + " features come in pairs (0-1, 2-3, ...): features "
                        + "must be even, got " + features);
            }
            if (correlation == Correlation.ANTICORRELATED && sparsity < 0.5) {
                throw new IllegalArgumentException("ANTICORRELATED pairs need sparsity >= 0.5 (a pair is on with "
                        + "probability 2 (1 - S), so that each feature keeps density 1 - S), got " + sparsity);
            }
        }

        /** {@code features} in {@code dims}, each zero with probability {@code sparsity}, importance {@code decay^i}. */
        public static Config of(int features, int dims, double sparsity, double importanceDecay) {
            return new Config(features, dims, sparsity, decay(features, importanceDecay), Correlation.INDEPENDENT);
        }

        /** Dense features of equal importance. */
        public static Config of(int features, int dims) {
            return of(features, dims, 0, 1);
        }

        /** This setting with another sparsity. */
        public Config withSparsity(double s) {
            return new Config(features, dims, s, importance, correlation);
        }

        /** This setting with importance {@code decay^i} for feature i. */
        public Config withImportanceDecay(double decay) {
            return new Config(features, dims, sparsity, decay(features, decay), correlation);
        }

        /** This setting with the importances given, one per feature. */
        public Config withImportance(double... values) {
            return new Config(features, dims, sparsity, values, correlation);
        }

        /** This setting with features that co-occur in pairs as {@code c} says. */
        public Config withCorrelation(Correlation c) {
            return new Config(features, dims, sparsity, importance, c);
        }

        /** The importances (a copy). */
        @Override
        public double[] importance() {
            return importance.clone();
        }

        /** The probability that a feature is non-zero, {@code 1 - S}. */
        public double density() {
            return 1 - sparsity;
        }

        /** {@code I_1 / I_0}: the second feature's importance relative to the first (the decay, for {@code D^i}). */
        public double relativeImportance() {
            return features < 2 || importance[0] == 0 ? Double.NaN : importance[1] / importance[0];
        }

        double importanceAt(int i) {
            return importance[i];
        }

        private static double[] decay(int n, double d) {
            if (!(d > 0) || Double.isInfinite(d)) {
                throw new IllegalArgumentException("importance decay must be finite and > 0, got " + d);
            }
            double[] out = new double[Math.max(n, 0)];
            for (int i = 0; i < out.length; i++) out[i] = Math.pow(d, i);
            return out;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Config c && c.features == features && c.dims == dims
                    && Double.compare(c.sparsity, sparsity) == 0 && Arrays.equals(c.importance, importance)
                    && c.correlation == correlation;
        }

        @Override
        public int hashCode() {
            return Objects.hash(features, dims, sparsity, Arrays.hashCode(importance), correlation);
        }

        @Override
        public String toString() {
            StringBuilder imp = new StringBuilder();
            for (int i = 0; i < Math.min(importance.length, 4); i++) {
                if (i > 0) imp.append(", ");
                imp.append(String.format(Locale.ROOT, "%.3g", importance[i]));
            }
            if (importance.length > 4) imp.append(", ...");
            return String.format(Locale.ROOT, "Config[%d features in %d dims, S=%s, importance (%s)%s]", features, dims,
                    fmt(sparsity), imp, correlation == Correlation.INDEPENDENT ? "" : ", " + correlation.name()
                            .toLowerCase(Locale.ROOT));
        }
    }

    /**
     * How instances train: {@code steps} Adam updates at learning rate {@code lr} on batches of {@code batchSize},
     * seeded by {@code seed}; the reported loss is measured after training on {@code evalBatchSize} fresh samples,
     * and the loss curve keeps every {@code logEvery}-th step.
     */
    public record Training(int steps, int batchSize, double lr, long seed, int evalBatchSize, int logEvery) {
        public Training {
            if (steps < 1 || batchSize < 1 || evalBatchSize < 1 || logEvery < 1) {
                throw new IllegalArgumentException("steps, batchSize, evalBatchSize and logEvery must be >= 1, got "
                        + steps + ", " + batchSize + ", " + evalBatchSize + ", " + logEvery);
            }
            if (!(lr > 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("lr must be finite and > 0, got " + lr);
        }

        /** The paper's settings: 10,000 steps of batch 1024 at lr 1e-3, seed 0. */
        public static Training defaults() {
            return new Training(10_000, 1024, 1e-3, 0, 8192, 50);
        }

        /** These settings with another number of steps. */
        public Training withSteps(int s) {
            return new Training(s, batchSize, lr, seed, evalBatchSize, Math.min(logEvery, s));
        }

        /** These settings with another batch size. */
        public Training withBatchSize(int b) {
            return new Training(steps, b, lr, seed, evalBatchSize, logEvery);
        }

        /** These settings with another learning rate. */
        public Training withLr(double l) {
            return new Training(steps, batchSize, l, seed, evalBatchSize, logEvery);
        }

        /** These settings with another seed. */
        public Training withSeed(long s) {
            return new Training(steps, batchSize, lr, s, evalBatchSize, logEvery);
        }

        /** These settings with another evaluation batch size. */
        public Training withEvalBatchSize(int e) {
            return new Training(steps, batchSize, lr, seed, e, logEvery);
        }
    }

    // ------------------------------------------------------------------ grids of settings

    /** One instance per sparsity: {@code features} in {@code dims} with importance {@code decay^i}. */
    public static Config[] sparsitySweep(int features, int dims, double importanceDecay, double... sparsities) {
        if (sparsities.length == 0) throw new IllegalArgumentException("sparsitySweep needs at least one sparsity");
        Config[] out = new Config[sparsities.length];
        for (int i = 0; i < out.length; i++) out[i] = Config.of(features, dims, sparsities[i], importanceDecay);
        return out;
    }

    /**
     * The phase-diagram grid of the paper: two features in one dimension, feature 0 of importance 1 and feature 1
     * of each relative importance, at each sparsity; {@code repeats} instances per cell (differently initialised;
     * {@link ToyResult#phaseDiagram()} keeps the lowest-loss one).
     */
    public static Config[] phaseGrid(double[] sparsities, double[] relativeImportances, int repeats) {
        if (sparsities.length == 0 || relativeImportances.length == 0 || repeats < 1) {
            throw new IllegalArgumentException("phaseGrid needs at least one sparsity, one relative importance and "
                    + "repeats >= 1");
        }
        List<Config> out = new ArrayList<>();
        for (double r : relativeImportances) {
            for (double s : sparsities) {
                for (int k = 0; k < repeats; k++) out.add(new Config(2, 1, s, new double[] {1, r}, Correlation.INDEPENDENT));
            }
        }
        return out.toArray(Config[]::new);
    }

    /**
     * The correlated-features experiment: {@code 2 * pairs} features of equal importance in {@code dims}, at
     * sparsity {@code sparsity}, with independent, correlated and anticorrelated pairs, {@code repeats} instances
     * each. {@link ToyResult#correlationFindings()} summarises it.
     */
    public static Config[] correlationStudy(int pairs, int dims, double sparsity, int repeats) {
        if (pairs < 1 || repeats < 1) throw new IllegalArgumentException("pairs and repeats must be >= 1");
        List<Config> out = new ArrayList<>();
        for (Correlation c : Correlation.values()) {
            for (int k = 0; k < repeats; k++) out.add(Config.of(2 * pairs, dims, sparsity, 1).withCorrelation(c));
        }
        return out.toArray(Config[]::new);
    }

    /** {@code k} instances of the same setting (differently initialised, on different data). */
    public static Config[] repeat(Config c, int k) {
        if (k < 1) throw new IllegalArgumentException("repeat needs k >= 1, got " + k);
        Config[] out = new Config[k];
        Arrays.fill(out, Objects.requireNonNull(c, "config"));
        return out;
    }

    // ------------------------------------------------------------------ training

    /** Trains one instance per setting with {@link Training#defaults()}, showing a progress bar. */
    public static ToyResult train(Config... instances) {
        return train(Training.defaults(), instances);
    }

    /** Trains one instance per setting, showing a progress bar. */
    public static ToyResult train(Training training, Config... instances) {
        return train(training, Arrays.asList(instances), ProgressSink.bar());
    }

    /**
     * Trains one instance per setting, all at once; the settings must share {@code features} and {@code dims}.
     * Instance k's initialisation and data depend only on {@code training.seed()} and k.
     */
    public static ToyResult train(Training training, List<Config> instances, ProgressSink progress) {
        Objects.requireNonNull(training, "training");
        Objects.requireNonNull(progress, "progress");
        if (instances == null || instances.isEmpty()) throw new IllegalArgumentException("train needs at least one Config");
        Config first = Objects.requireNonNull(instances.get(0), "instance 0");
        int kk = instances.size(), n = first.features(), m = first.dims();
        for (int k = 1; k < kk; k++) {
            Config c = Objects.requireNonNull(instances.get(k), "instance " + k);
            if (c.features() != n || c.dims() != m) {
                throw new IllegalArgumentException("instances train as one batch and must share features and dims: "
                        + "instance 0 has " + n + " features in " + m + " dims, instance " + k + " has "
                        + c.features() + " in " + c.dims());
            }
        }
        int batch = training.batchSize(), steps = training.steps(), logEvery = training.logEvery();
        long elements = (long) kk * Math.max(batch, 1) * n;
        if (elements > MAX_BATCH_ELEMENTS) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "%d instances x batch %d x %d features = %d "
                    + "values per step, more than %d; train fewer instances at once or use a smaller batch", kk, batch,
                    n, elements, MAX_BATCH_ELEMENTS));
        }
        long[] dataSeeds = new long[kk];
        float[] w0 = new float[kk * m * n];
        float[] imp = new float[kk * n];
        double std = Math.sqrt(2.0 / (n + m));   // Xavier normal, as the paper's code
        for (int k = 0; k < kk; k++) {
            dataSeeds[k] = SplitMix.mix(training.seed() ^ DATA_SALT, k);
            SplittableRandom r = new SplittableRandom(SplitMix.mix(training.seed() ^ INIT_SALT, k));
            for (int j = 0; j < m * n; j++) w0[k * m * n + j] = (float) (std * SplitMix.gaussian(r));
            for (int i = 0; i < n; i++) imp[k * n + i] = (float) instances.get(k).importanceAt(i);
        }
        int logs = (steps + logEvery - 1) / logEvery;
        double[][] curves = new double[kk][logs];
        float[] data = new float[kk * batch * n];
        FloatBuffer buffer = ByteBuffer.allocateDirect(data.length * Float.BYTES).order(ByteOrder.nativeOrder())
                .asFloatBuffer();
        Shape xShape = new Shape(kk, batch, n);
        double[] evalLoss;
        float[] wOut, bOut;
        try (NDManager manager = NDManager.newBaseManager(); NDScope outer = new NDScope()) {
            NDArray w = Tensors.owned(manager.create(w0, new Shape(kk, m, n)));   // [K, m, n]
            NDArray b = manager.zeros(new Shape(kk, 1, n));                         // [K, 1, n]
            NDArray importance = Tensors.owned(manager.create(imp, new Shape(kk, 1, n)));
            w.setRequiresGradient(true);
            b.setRequiresGradient(true);
            progress.start(steps, String.format(Locale.ROOT, "toy superposition: %d instance%s, %d features in %d dims",
                    kk, kk == 1 ? "" : "s", n, m));
            try (AdamW adam = new AdamW(Map.of("W", w, "b", b), Set.of(), 0.9, 0.999, 1e-8, 0)) {
                for (int step = 0; step < steps; step++) {
                    for (int k = 0; k < kk; k++) {
                        sample(instances.get(k), SplitMix.mix(dataSeeds[k], step), data, k * batch * n, batch);
                    }
                    try (NDScope scope = new NDScope()) {
                        NDArray x = toArray(manager, buffer, data, xShape);
                        NDArray lossK;
                        try (GradientCollector gc = Tensors.gradientCollector()) {
                            lossK = loss(w, b, importance, x);
                            gc.backward(lossK.sum());
                        }
                        boolean logged = step % logEvery == 0;
                        if (logged || step == steps - 1) {
                            float[] l = lossK.toFloatArray();
                            if (logged) for (int k = 0; k < kk; k++) curves[k][step / logEvery] = l[k];
                            progress.update(step + 1, String.format(Locale.ROOT, "loss %.4g", mean(l)));
                        }
                    }
                    adam.step(training.lr(), 1.0);
                }
            } finally {
                progress.close();
            }
            evalLoss = evaluate(instances, dataSeeds, training.evalBatchSize(), manager, w, b, importance,
                    EVAL_CHUNK_ELEMENTS);
            wOut = w.toFloatArray();
            bOut = b.toFloatArray();
        }
        List<ToyModel> models = new ArrayList<>(kk);
        for (int k = 0; k < kk; k++) {
            double[][] wk = new double[m][n];
            double[] bk = new double[n];
            for (int d = 0; d < m; d++) for (int i = 0; i < n; i++) wk[d][i] = wOut[(k * m + d) * n + i];
            for (int i = 0; i < n; i++) bk[i] = bOut[k * n + i];
            models.add(new ToyModel(k, instances.get(k), wk, bk, evalLoss[k], curves[k], logEvery,
                    evalSeed(dataSeeds[k]), training.evalBatchSize()));
        }
        return new ToyResult(models, training);
    }

    /** Per-instance losses {@code [K]}: the batch mean of {@code sum_i I_i (x_i - ReLU(W^T W x + b)_i)^2}. */
    private static NDArray loss(NDArray w, NDArray b, NDArray importance, NDArray x) {
        NDArray h = x.matMul(w.transpose(0, 2, 1));               // [K, B, m]
        NDArray out = Activation.relu(h.matMul(w).add(b));        // [K, B, n]
        NDArray err = out.sub(x);
        return err.mul(err).mul(importance).sum(new int[] {2}).mean(new int[] {1});   // [K]
    }

    /**
     * Each instance's loss on its evaluation batch, {@code w [K, m, n]}, {@code b} and {@code importance}
     * {@code [K, 1, n]}; instances are evaluated in groups of at most {@code chunkElements} values (at least one
     * instance a group), so that a large grid's evaluation batch never has to fit in memory at once.
     */
    static double[] evaluate(List<Config> instances, long[] dataSeeds, int evalBatch, NDManager manager, NDArray w,
                             NDArray b, NDArray importance, long chunkElements) {
        int kk = instances.size(), n = instances.get(0).features();
        int group = (int) Math.max(1, Math.min(kk, chunkElements / ((long) evalBatch * n)));
        double[] out = new double[kk];
        for (int from = 0; from < kk; from += group) {
            int to = Math.min(kk, from + group);
            float[] data = new float[(to - from) * evalBatch * n];
            for (int k = from; k < to; k++) {
                sample(instances.get(k), evalSeed(dataSeeds[k]), data, (k - from) * evalBatch * n, evalBatch);
            }
            try (NDScope scope = new NDScope()) {
                NDIndex slice = new NDIndex("{}:{}", from, to);
                NDArray x = Tensors.owned(manager.create(data, new Shape(to - from, evalBatch, n)));
                float[] l = loss(w.get(slice), b.get(slice), importance.get(slice), x).toFloatArray();
                for (int k = from; k < to; k++) out[k] = l[k - from];
            }
        }
        return out;
    }

    private static long evalSeed(long dataSeed) {
        return SplitMix.mix(dataSeed ^ EVAL_SALT, 0);
    }

    /** An engine-owned copy of {@code data} through one reused direct buffer (no fresh buffer per step). */
    private static NDArray toArray(NDManager manager, FloatBuffer buffer, float[] data, Shape shape) {
        buffer.clear();
        buffer.put(data);
        buffer.flip();
        return Tensors.owned(manager.create(buffer, shape));
    }

    // ------------------------------------------------------------------ data

    /**
     * {@code batch} samples of {@code config}'s data from the stream {@code streamSeed}, as {@code [batch][n]}: a
     * pure function of its arguments.
     */
    public static double[][] sample(Config config, int batch, long streamSeed) {
        int n = config.features();
        float[] flat = new float[batch * n];
        sample(config, streamSeed, flat, 0, batch);
        double[][] out = new double[batch][n];
        for (int r = 0; r < batch; r++) for (int i = 0; i < n; i++) out[r][i] = flat[r * n + i];
        return out;
    }

    /** Writes {@code batch} rows of n features into {@code out} from {@code offset} (overwriting zeros too). */
    static void sample(Config c, long streamSeed, float[] out, int offset, int batch) {
        SplittableRandom r = new SplittableRandom(streamSeed);
        int n = c.features();
        double s = c.sparsity(), density = 1 - s;
        switch (c.correlation()) {
            case INDEPENDENT -> {
                for (int j = 0; j < batch * n; j++) {
                    double u = r.nextDouble();
                    // one draw for both: below S the feature is off; above, (u - S) / (1 - S) is uniform in [0, 1)
                    out[offset + j] = u < s ? 0f : (float) ((u - s) / density);
                }
            }
            case CORRELATED -> {
                for (int j = 0; j < batch * n; j += 2) {
                    boolean on = r.nextDouble() < density;
                    out[offset + j] = on ? (float) r.nextDouble() : 0f;
                    out[offset + j + 1] = on ? (float) r.nextDouble() : 0f;
                }
            }
            case ANTICORRELATED -> {
                double pairOn = 2 * density;
                for (int j = 0; j < batch * n; j += 2) {
                    out[offset + j] = 0f;
                    out[offset + j + 1] = 0f;
                    if (r.nextDouble() < pairOn) out[offset + j + (r.nextBoolean() ? 1 : 0)] = (float) r.nextDouble();
                }
            }
        }
    }

    private static double mean(float[] v) {
        double s = 0;
        for (float x : v) s += x;
        return s / v.length;
    }

    static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4g", v).replaceAll("(\\.\\d*?)0+($|e)", "$1$2").replace(".e", "e")
                .replaceAll("\\.$", "");
    }
}
