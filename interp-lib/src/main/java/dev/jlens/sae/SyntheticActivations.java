package dev.jlens.sae;

import dev.jlens.util.SplitMix;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.store.ActivationSource;
import dev.jlens.util.Tensors;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Activations with a known sparse dictionary, for checking that a training recipe recovers it: {@code nFeatures}
 * random unit directions in {@code dIn} dimensions, each firing independently on a token with its own probability
 * (log-uniform between {@code minFrequency} and {@code maxFrequency}) and a magnitude {@code 1 + |N(0, 0.5)|}; a token
 * is the sum of its firing features. Batches are a pure function of {@code (seed, step, batchSize)}.
 *
 * <pre>{@code
 * SyntheticActivations data = new SyntheticActivations(512, 64, 0);
 * SaeTrainer.train(sae, data, cfg);
 * data.meanMaxCosine(sae);   // 1.0 = every true feature has a decoder row pointing its way
 * }</pre>
 */
public final class SyntheticActivations implements ActivationSource {
    private static final double MAGNITUDE_SD = 0.5;
    private static final long SCALE_SALT = 0x5CA1EL;

    private final int nFeatures, dIn;
    private final long seed;
    private final double minFrequency, maxFrequency;
    private final float[][] features;   // [nFeatures][dIn], unit norm
    private final double[] frequencies;
    private volatile double scale = Double.NaN;

    /** {@code nFeatures} directions in {@code dIn} dimensions, firing with frequencies in [0.002, 0.05]. */
    public SyntheticActivations(int nFeatures, int dIn, long seed) {
        this(nFeatures, dIn, 0.002, 0.05, seed);
    }

    /** As {@link #SyntheticActivations(int, int, long)} with the frequency range given. */
    public SyntheticActivations(int nFeatures, int dIn, double minFrequency, double maxFrequency, long seed) {
        if (nFeatures <= 0 || dIn <= 0) {
            throw new IllegalArgumentException("nFeatures and dIn must be positive, got " + nFeatures + ", " + dIn);
        }
        if (!(minFrequency > 0 && minFrequency <= maxFrequency && maxFrequency <= 1)) {
            throw new IllegalArgumentException("frequencies must satisfy 0 < minFrequency <= maxFrequency <= 1, got "
                    + minFrequency + ", " + maxFrequency);
        }
        this.nFeatures = nFeatures;
        this.dIn = dIn;
        this.seed = seed;
        this.minFrequency = minFrequency;
        this.maxFrequency = maxFrequency;
        SplittableRandom rng = new SplittableRandom(seed);
        features = new float[nFeatures][dIn];
        frequencies = new double[nFeatures];
        double logMin = Math.log(minFrequency), logMax = Math.log(maxFrequency);
        for (int i = 0; i < nFeatures; i++) {
            double ss = 0;
            double[] g = new double[dIn];
            for (int j = 0; j < dIn; j++) {
                g[j] = SplitMix.gaussian(rng);
                ss += g[j] * g[j];
            }
            double inv = 1 / Math.sqrt(ss);
            for (int j = 0; j < dIn; j++) features[i][j] = (float) (g[j] * inv);
            frequencies[i] = Math.exp(logMin + (logMax - logMin) * rng.nextDouble());
        }
    }

    @Override
    public int width() {
        return dIn;
    }

    /** Number of true features. */
    public int nFeatures() {
        return nFeatures;
    }

    /** The true feature directions {@code [nFeatures][dIn]} (unit norm; a copy). */
    public float[][] features() {
        float[][] out = new float[nFeatures][];
        for (int i = 0; i < nFeatures; i++) out[i] = features[i].clone();
        return out;
    }

    /** The true feature directions as an array {@code [nFeatures, dIn]} on {@code manager}. */
    public NDArray features(NDManager manager) {
        float[] flat = new float[nFeatures * dIn];
        for (int i = 0; i < nFeatures; i++) System.arraycopy(features[i], 0, flat, i * dIn, dIn);
        return Tensors.owned(manager.create(flat, new Shape(nFeatures, dIn)));
    }

    /** Each feature's firing probability per token. */
    public double[] frequencies() {
        return frequencies.clone();
    }

    /** Expected number of features firing on a token. */
    public double expectedL0() {
        double s = 0;
        for (double f : frequencies) s += f;
        return s;
    }

    @Override
    public NDArray batch(long step, int batchSize, NDManager manager) {
        if (batchSize <= 0) throw new IllegalArgumentException("batchSize must be positive, got " + batchSize);
        return Tensors.owned(manager.create(rows(step, batchSize, seed), new Shape(batchSize, dIn)));
    }

    private float[] rows(long step, int batchSize, long streamSeed) {
        SplittableRandom rng = new SplittableRandom(SplitMix.mix(streamSeed, step));
        float[] out = new float[batchSize * dIn];
        for (int b = 0; b < batchSize; b++) {
            int base = b * dIn;
            for (int i = 0; i < nFeatures; i++) {
                if (rng.nextDouble() >= frequencies[i]) continue;
                float m = (float) (1 + Math.abs(MAGNITUDE_SD * SplitMix.gaussian(rng)));
                float[] f = features[i];
                for (int j = 0; j < dIn; j++) out[base + j] += m * f[j];
            }
        }
        return out;
    }

    /** Estimated from 16 batches of 1024 tokens drawn apart from the training stream. */
    @Override
    public double normalizationScale() {
        if (Double.isNaN(scale)) {
            double ss = 0;
            int n = 0;
            for (int s = 0; s < 16; s++) {
                float[] r = rows(s, 1024, seed ^ SCALE_SALT);
                for (float v : r) ss += (double) v * v;
                n += 1024;
            }
            scale = Math.sqrt(n / ss);
        }
        return scale;
    }

    /**
     * Mean over true features of the largest cosine similarity with any decoder row of {@code sae}: how well the
     * dictionary recovered the features (1 = all of them exactly). For a crosscoder, rows are compared as a whole.
     */
    public double meanMaxCosine(SparseCoder sae) {
        if (sae.cfg().dIn() != dIn) {
            throw new IllegalArgumentException("the dictionary reads " + sae.cfg().dIn() + "-wide activations, these are "
                    + dIn + "-wide");
        }
        try (NDManager m = NDManager.newBaseManager(); NDScope scope = new NDScope()) {
            NDArray dec = sae.weights().get(SaeWeights.W_DEC);
            NDArray decUnit = dec.div(dec.norm(new int[]{1}, true).maximum(1e-12f));
            NDArray cos = features(m).matMul(decUnit.transpose());   // [nFeatures, dSae]
            return cos.max(new int[]{1}).mean().getFloat();
        }
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "SyntheticActivations[%d features in %d dims, frequency %.3g..%.3g, "
                + "expected L0 %.2f, seed %d]", nFeatures, dIn, minFrequency, maxFrequency, expectedL0(), seed);
    }
}
