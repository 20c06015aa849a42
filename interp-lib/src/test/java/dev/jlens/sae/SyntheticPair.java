package dev.jlens.sae;

import dev.jlens.util.SplitMix;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.store.ActivationSource;
import dev.jlens.util.Tensors;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Model-diffing ground truth: activations of a "base" and a "fine-tuned" model at one hook, concatenated source-major
 * ({@code [base | finetuned]}, {@code 2 * dModel} wide). Features are of three kinds: shared (fire on the same token in
 * both halves; most with the same direction in both, the first {@code nRotated} with a fine-tuned direction rotated
 * by {@code rotation} radians from the base one, as a fine-tune drifts a feature), base-only (base half only) and
 * fine-tuned-only (fine-tuned half only). Each fires independently with its own probability (log-uniform in
 * {@code [minFrequency, maxFrequency]}) and magnitude {@code 1 + |N(0, 0.5)|}, the same in both halves. Batches are
 * a pure function of {@code (seed, step, batchSize)}. Features are numbered shared first, then base-only, then
 * fine-tuned-only.
 */
final class SyntheticPair implements ActivationSource {
    enum Kind { SHARED, BASE_ONLY, FINETUNED_ONLY }

    private static final double MAGNITUDE_SD = 0.5;
    private static final long SCALE_SALT = 0x5CA1EL;

    final int dModel, nShared, nBase, nFt, nRotated;
    final double rotation;
    private final long seed;
    private final float[][] base, ft;   // [nFeatures][dModel] unit directions; null where the feature is absent
    private final double[] frequencies;
    private double scale = Double.NaN;

    SyntheticPair(int dModel, int nShared, int nBase, int nFt, int nRotated, double rotation, double minFrequency,
                  double maxFrequency, long seed) {
        if (nRotated > nShared) throw new IllegalArgumentException("nRotated " + nRotated + " > nShared " + nShared);
        this.dModel = dModel;
        this.nShared = nShared;
        this.nBase = nBase;
        this.nFt = nFt;
        this.nRotated = nRotated;
        this.rotation = rotation;
        this.seed = seed;
        int n = nShared + nBase + nFt;
        SplittableRandom rng = new SplittableRandom(seed);
        base = new float[n][];
        ft = new float[n][];
        frequencies = new double[n];
        double logMin = Math.log(minFrequency), logMax = Math.log(maxFrequency);
        for (int i = 0; i < n; i++) {
            double[] u = unit(rng);
            Kind k = kind(i);
            if (k != Kind.FINETUNED_ONLY) base[i] = toFloat(u);
            if (k == Kind.FINETUNED_ONLY) ft[i] = toFloat(u);
            if (k == Kind.SHARED) {
                if (i < nRotated) {
                    // cos(rotation) u + sin(rotation) w, w a random unit vector orthogonal to u
                    double[] w = unit(rng);
                    double dot = 0;
                    for (int j = 0; j < dModel; j++) dot += w[j] * u[j];
                    double ss = 0;
                    for (int j = 0; j < dModel; j++) {
                        w[j] -= dot * u[j];
                        ss += w[j] * w[j];
                    }
                    double c = Math.cos(rotation), s = Math.sin(rotation) / Math.sqrt(ss);
                    double[] v = new double[dModel];
                    for (int j = 0; j < dModel; j++) v[j] = c * u[j] + s * w[j];
                    ft[i] = toFloat(v);
                } else {
                    ft[i] = toFloat(u);
                }
            }
            frequencies[i] = Math.exp(logMin + (logMax - logMin) * rng.nextDouble());
        }
    }

    int nFeatures() {
        return frequencies.length;
    }

    Kind kind(int feature) {
        return feature < nShared ? Kind.SHARED : feature < nShared + nBase ? Kind.BASE_ONLY : Kind.FINETUNED_ONLY;
    }

    double frequency(int i) {
        return frequencies[i];
    }

    /** Feature {@code i}'s direction in the base half, or null where it has none. */
    float[] baseDirection(int i) {
        return base[i] == null ? null : base[i].clone();
    }

    /** Feature {@code i}'s direction in the fine-tuned half, or null where it has none. */
    float[] finetunedDirection(int i) {
        return ft[i] == null ? null : ft[i].clone();
    }

    @Override
    public int width() {
        return 2 * dModel;
    }

    @Override
    public int nSources() {
        return 2;
    }

    @Override
    public NDArray batch(long step, int batchSize, NDManager manager) {
        return Tensors.owned(manager.create(rows(step, batchSize, seed), new Shape(batchSize, 2 * dModel)));
    }

    private float[] rows(long step, int batchSize, long streamSeed) {
        SplittableRandom rng = new SplittableRandom(SplitMix.mix(streamSeed, step));
        int w = 2 * dModel;
        float[] out = new float[batchSize * w];
        for (int b = 0; b < batchSize; b++) {
            for (int i = 0; i < frequencies.length; i++) {
                if (rng.nextDouble() >= frequencies[i]) continue;
                float m = (float) (1 + Math.abs(MAGNITUDE_SD * SplitMix.gaussian(rng)));
                if (base[i] != null) for (int j = 0; j < dModel; j++) out[b * w + j] += m * base[i][j];
                if (ft[i] != null) for (int j = 0; j < dModel; j++) out[b * w + dModel + j] += m * ft[i][j];
            }
        }
        return out;
    }

    /** Estimated from 16 batches of 1024 rows drawn apart from the training stream. */
    @Override
    public synchronized double normalizationScale() {
        if (Double.isNaN(scale)) {
            double ss = 0;
            for (int s = 0; s < 16; s++) for (float v : rows(s, 1024, seed ^ SCALE_SALT)) ss += (double) v * v;
            scale = Math.sqrt(16 * 1024 / ss);
        }
        return scale;
    }

    private double[] unit(SplittableRandom rng) {
        double[] g = new double[dModel];
        double ss = 0;
        for (int j = 0; j < dModel; j++) {
            g[j] = SplitMix.gaussian(rng);
            ss += g[j] * g[j];
        }
        double inv = 1 / Math.sqrt(ss);
        for (int j = 0; j < dModel; j++) g[j] *= inv;
        return g;
    }

    private static float[] toFloat(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
        return f;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "SyntheticPair[2 x %d dims: %d shared (%d rotated by %.0f deg), %d base-only, "
                + "%d finetuned-only, seed %d]", dModel, nShared, nRotated, Math.toDegrees(rotation), nBase, nFt, seed);
    }
}
