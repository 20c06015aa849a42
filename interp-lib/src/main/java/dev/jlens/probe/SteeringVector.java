package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.EigenDecomposition;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A direction in a hook point's activation space to add during a forward pass, and where it came from.
 *
 * <pre>{@code
 * var v = SteeringVector.contrastive(model, "blocks.2.hook_resid_post", plural, singular);   // CAA, last token
 * var w = SteeringVector.pcaOfDifferences(model, hook, plural, singular, Positions.last());
 * var p = SteeringVector.fromProbe(probe, hook);            // the probe's unit direction
 * var s = SteeringVector.fromSaeLatent(sae, 123, hook);     // a decoder row
 * Steering.of(v.normalizedToResidual(model, batches)).strength(4);
 * }</pre>
 *
 * @param hook   the hook point it was read at (the default place to steer)
 * @param vector the direction {@code [d]} (a copy is kept)
 * @param source how it was made, for tables and {@code toString}
 */
public record SteeringVector(String hook, float[] vector, String source) {

    /** Checks and copies. */
    public SteeringVector {
        if (hook == null || hook.isBlank()) throw new IllegalArgumentException("a steering vector needs a hook name");
        if (vector == null || vector.length == 0) throw new IllegalArgumentException("the vector must not be empty");
        for (float f : vector) {
            if (!Float.isFinite(f)) throw new IllegalArgumentException("the steering vector has a non-finite entry");
        }
        vector = vector.clone();
        source = source == null ? "" : source;
    }

    /** A given vector at {@code hook}. */
    public static SteeringVector of(String hook, float[] vector) {
        return new SteeringVector(hook, vector, "given");
    }

    /**
     * Contrastive activation addition (CAA): the mean over pairs of {@code act(positive) - act(negative)} at the last
     * token. Texts are tokenized with BOS.
     */
    public static SteeringVector contrastive(HookedTransformer model, String hook, List<String> positive,
            List<String> negative) {
        return contrastiveTokens(model, hook, tokens(model, positive), tokens(model, negative), Positions.last());
    }

    /** CAA from token ids, averaging each prompt's activations over {@code at} before taking differences. */
    public static SteeringVector contrastiveTokens(HookedTransformer model, String hook, List<long[]> positive,
            List<long[]> negative, Positions at) {
        double[][] diffs = differences(model, hook, positive, negative, at);
        double[] mean = new double[diffs[0].length];
        for (double[] dRow : diffs) for (int j = 0; j < mean.length; j++) mean[j] += dRow[j] / diffs.length;
        return new SteeringVector(hook, LdaFit.toFloats(mean), "contrastive mean of " + diffs.length + " pairs at " + at);
    }

    /**
     * CAA from token ids with each pair's own positions: pair {@code i} is read at {@code at.get(i)} in both of its
     * sequences (as when the place that matters, such as the end of a wrong step, moves from pair to pair).
     */
    public static SteeringVector contrastiveTokens(HookedTransformer model, String hook, List<long[]> positive,
            List<long[]> negative, List<Positions> at) {
        if (at == null || at.size() != positive.size()) {
            throw new IllegalArgumentException("give one Positions per pair: " + positive.size() + " pairs, "
                    + (at == null ? 0 : at.size()) + " positions");
        }
        double[][] diffs = differences(model, hook, positive, negative, at::get);
        double[] mean = new double[diffs[0].length];
        for (double[] dRow : diffs) for (int j = 0; j < mean.length; j++) mean[j] += dRow[j] / diffs.length;
        return new SteeringVector(hook, LdaFit.toFloats(mean), "contrastive mean of " + diffs.length
                + " pairs at per-pair positions");
    }

    /**
     * The first principal component of the paired differences, sign aligned with their mean. The differences are
     * taken with both signs ({@code +-(pos - neg)}, as Representation Engineering flips pairs), a set with mean zero,
     * so this is the top eigenvector of {@code D^T D}; it is found from the small pairs-by-pairs Gram matrix
     * {@code D D^T} (Commons Math's symmetric eigendecomposition), whatever the width. Unit length.
     */
    public static SteeringVector pcaOfDifferences(HookedTransformer model, String hook, List<long[]> positive,
            List<long[]> negative, Positions at) {
        double[][] diffs = differences(model, hook, positive, negative, at);
        int n = diffs.length;
        float[] pc = firstPrincipalComponent(diffs);
        return new SteeringVector(hook, pc, "first PC of " + n
                + " paired differences at " + at);
    }

    /** Unit top eigenvector of {@code D^T D} (rows of {@code diffs} are {@code D}), sign aligned with their mean. */
    static float[] firstPrincipalComponent(double[][] diffs) {
        int n = diffs.length, d = diffs[0].length;
        double[][] gram = new double[n][n];
        for (int a = 0; a < n; a++) {
            for (int b = a; b < n; b++) {
                double s = 0;
                for (int j = 0; j < d; j++) s += diffs[a][j] * diffs[b][j];
                gram[a][b] = gram[b][a] = s;
            }
        }
        EigenDecomposition eig = new EigenDecomposition(new Array2DRowRealMatrix(gram, false));
        double[] ev = eig.getRealEigenvalues();
        int top = 0;
        for (int i = 1; i < ev.length; i++) if (ev[i] > ev[top]) top = i;
        double[] coef = eig.getEigenvector(top).toArray();
        double[] pc = new double[d], mean = new double[d];
        for (int a = 0; a < n; a++) {
            for (int j = 0; j < d; j++) {
                pc[j] += coef[a] * diffs[a][j];
                mean[j] += diffs[a][j];
            }
        }
        double dot = 0;
        for (int j = 0; j < d; j++) dot += pc[j] * mean[j];
        if (dot < 0) for (int j = 0; j < d; j++) pc[j] = -pc[j];
        return LinearProbe.unit(LdaFit.toFloats(pc));
    }

    /** The probe's unit direction (towards class 1 of a binary probe). */
    public static SteeringVector fromProbe(LinearProbe probe, String hook) {
        return new SteeringVector(hook, probe.direction(), probe.method() + " probe direction");
    }

    /** The probe's unit direction towards class {@code cls}. */
    public static SteeringVector fromProbe(LinearProbe probe, int cls, String hook) {
        return new SteeringVector(hook, probe.direction(cls), probe.method() + " probe direction of class " + cls);
    }

    /** The probe's direction at the hook recorded in its {@code info} (as {@link LayerSweep#fit} writes it). */
    public static SteeringVector fromProbe(LinearProbe probe) {
        String hook = probe.info().get("hook");
        if (hook == null) {
            throw new IllegalArgumentException("the probe records no hook (info has " + probe.info().keySet()
                    + "): use fromProbe(probe, hookName) or probe.withInfo(\"hook\", name)");
        }
        return fromProbe(probe, hook);
    }

    /**
     * Row {@code latent} of a sparse coder's decoder {@code W_dec [dSae, dIn]}: the direction the latent writes
     * (in the coder's normalised units, which differ from raw ones only by a scalar; use {@link #unit()} or
     * {@link #normalizedToResidual} to set the size).
     */
    public static SteeringVector fromSaeLatent(SparseCoder sae, int latent, String hook) {
        NDArray wDec = sae.weights().get(SaeWeights.W_DEC);
        long dSae = wDec.getShape().get(0);
        if (latent < 0 || latent >= dSae) {
            throw new IllegalArgumentException("latent " + latent + " is out of range: the coder has latents 0.."
                    + (dSae - 1));
        }
        float[] row;
        try (NDArray r = wDec.get(latent)) {
            row = r.toFloatArray();
        }
        return new SteeringVector(hook, row, "SAE latent " + latent);
    }

    /** Width of the vector. */
    public int dim() {
        return vector.length;
    }

    /** Euclidean length. */
    public double norm() {
        double s = 0;
        for (float f : vector) s += (double) f * f;
        return Math.sqrt(s);
    }

    /** The cosine similarity with another vector of the same width. */
    public double cosine(SteeringVector other) {
        if (other.vector.length != vector.length) {
            throw new IllegalArgumentException("vectors of width " + vector.length + " and " + other.vector.length
                    + " cannot be compared");
        }
        double dot = 0, a = 0, b = 0;
        for (int k = 0; k < vector.length; k++) {
            dot += (double) vector[k] * other.vector[k];
            a += (double) vector[k] * vector[k];
            b += (double) other.vector[k] * other.vector[k];
        }
        return dot / Math.sqrt(a * b);
    }

    /** The same direction with length 1. */
    public SteeringVector unit() {
        return new SteeringVector(hook, LinearProbe.unit(vector), source + ", unit");
    }

    /** The same direction with length {@code length}. */
    public SteeringVector normalizedTo(double length) {
        float[] u = LinearProbe.unit(vector);
        for (int i = 0; i < u.length; i++) u[i] = (float) (u[i] * length);
        return new SteeringVector(hook, u, source + String.format(", length %.4g", length));
    }

    /**
     * The same direction with the typical residual length at its hook ({@link #typicalNorm}), so that strength 1
     * adds a vector as long as an average activation there.
     */
    public SteeringVector normalizedToResidual(HookedTransformer model, List<Batch> batches) {
        return normalizedTo(typicalNorm(model, hook, batches));
    }

    /** The same vector, to be applied at another hook point of the same width. */
    public SteeringVector atHook(String otherHook) {
        return new SteeringVector(otherHook, vector, source + " (read at " + hook + ")");
    }

    /**
     * Mean Euclidean length of the activations at {@code hook} over the batches' non-padding positions after the
     * first (position 0, BOS, often has an outsized norm).
     */
    public static double typicalNorm(HookedTransformer model, String hook, List<Batch> batches) {
        model.hook(hook);
        double sum = 0;
        long count = 0;
        for (Batch batch : batches) {
            try (NDScope scope = new NDScope(); ActivationCache cache = model.runWithCache(batch, NameFilter.of(hook))) {
                NDArray a = cache.get(hook);
                float[] norms = a.norm(new int[] {-1}).toFloatArray();
                int len = batch.length();
                for (int b = 0; b < batch.size(); b++) {
                    for (int p = 1; p < len; p++) {
                        if (!batch.mask()[b][p]) continue;
                        sum += norms[b * len + p];
                        count++;
                    }
                }
            }
        }
        if (count == 0) throw new IllegalArgumentException("no positions after the first in the batches");
        return sum / count;
    }

    /** Per pair, the mean activation over {@code at} of the positive prompt minus that of the negative one. */
    static double[][] differences(HookedTransformer model, String hook, List<long[]> positive, List<long[]> negative,
            Positions at) {
        return differences(model, hook, positive, negative, i -> at);
    }

    /** Per pair, as above, pair {@code i} read at {@code at.apply(i)}. */
    static double[][] differences(HookedTransformer model, String hook, List<long[]> positive, List<long[]> negative,
            java.util.function.IntFunction<Positions> at) {
        model.hook(hook);   // an unknown name throws with the nearest ones
        if (positive.size() != negative.size()) {
            throw new IllegalArgumentException("mismatched lengths: " + positive.size() + " positive and "
                    + negative.size() + " negative prompts; contrastive vectors need pairs");
        }
        if (positive.isEmpty()) throw new IllegalArgumentException("give at least one pair of prompts");
        double[][] out = new double[positive.size()][];
        for (int i = 0; i < out.length; i++) {
            double[] p = meanAt(model, hook, positive.get(i), at.apply(i), "positive prompt " + i);
            double[] q = meanAt(model, hook, negative.get(i), at.apply(i), "negative prompt " + i);
            for (int j = 0; j < p.length; j++) p[j] -= q[j];
            out[i] = p;
        }
        return out;
    }

    private static double[] meanAt(HookedTransformer model, String hook, long[] tokens, Positions at, String what) {
        try (NDScope scope = new NDScope();
             ActivationCache cache = model.runWithCache(tokens, NameFilter.of(hook))) {
            NDArray a = cache.get(hook);
            if (a.getShape().dimension() != 3) {
                throw new IllegalArgumentException("hook '" + hook + "' has shape " + a.getShape()
                        + "; steering vectors live in [batch, pos, d] activations (resid_pre/post, attn_out, mlp_out)");
            }
            int len = tokens.length, d = (int) a.getShape().get(2);
            float[] flat = a.toFloatArray();
            double[] mean = new double[d];
            int count = 0;
            for (int p = 0; p < len; p++) {
                if (!at.contains(p, len)) continue;
                for (int j = 0; j < d; j++) mean[j] += flat[p * d + j];
                count++;
            }
            if (count == 0) {
                throw new IllegalArgumentException(what + " has " + len + " tokens and none is at " + at);
            }
            for (int j = 0; j < d; j++) mean[j] /= count;
            return mean;
        }
    }

    private static List<long[]> tokens(HookedTransformer model, List<String> texts) {
        List<long[]> out = new ArrayList<>();
        for (String t : texts) out.add(model.toTokens(t));
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SteeringVector v && hook.equals(v.hook) && Arrays.equals(vector, v.vector);
    }

    @Override
    public int hashCode() {
        return 31 * hook.hashCode() + Arrays.hashCode(vector);
    }

    @Override
    public String toString() {
        return String.format("SteeringVector(%s, d=%d, |v|=%.4g, %s)", hook, vector.length, norm(), source);
    }
}
