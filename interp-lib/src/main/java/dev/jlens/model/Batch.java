package dev.jlens.model;

import ai.djl.ndarray.NDArray;

import java.util.Arrays;

/**
 * Token ids of a batch {@code [batch, pos]}, with an attention mask (false on padding) and the weight of each
 * next-token target {@code [batch, pos - 1]}: {@code targetWeights[b][p]} weighs the prediction of token {@code p + 1}
 * from position {@code p}. The one batch type of the library: tokenizers produce it, the model runs it, trainers
 * and losses read its weights. Weights default to 1 on every target; a target counts only where both its position
 * and the next are real tokens, whatever its weight. Sequences of different lengths are left-padded by
 * {@link #leftPadded}, as generation needs.
 */
public record Batch(long[][] ids, boolean[][] mask, float[][] targetWeights) {

    public Batch {
        if (ids == null || ids.length == 0) throw new IllegalArgumentException("a batch needs at least one sequence");
        if (mask == null) throw new IllegalArgumentException("mask must not be null; use Batch.of(ids) for no padding");
        int len = ids[0].length;
        if (len == 0) throw new IllegalArgumentException("sequences must not be empty");
        if (mask.length != ids.length) {
            throw new IllegalArgumentException("attention mask has " + mask.length + " rows for " + ids.length + " sequences");
        }
        for (int b = 0; b < ids.length; b++) {
            if (ids[b].length != len) {
                throw new IllegalArgumentException("sequence " + b + " has " + ids[b].length + " tokens but sequence 0 has "
                        + len + "; pad them (Batch.leftPadded) or pass an attention mask");
            }
            if (mask[b].length != len) {
                throw new IllegalArgumentException("attention mask row " + b + " has length " + mask[b].length
                        + " but the tokens have " + len);
            }
        }
        targetWeights = targetWeights == null ? ones(ids.length, len - 1) : targetWeights;
        checkWeights(targetWeights, ids.length, len - 1);
    }

    /** Sequences with an explicit attention mask and unit target weights. */
    public Batch(long[][] ids, boolean[][] mask) {
        this(ids, mask, null);
    }

    private static float[][] ones(int rows, int targets) {
        float[][] w = new float[rows][Math.max(0, targets)];
        for (float[] row : w) Arrays.fill(row, 1f);
        return w;
    }

    private static void checkWeights(float[][] w, int rows, int targets) {
        if (w.length != rows) {
            throw new IllegalArgumentException("targetWeights has " + w.length + " rows for " + rows
                    + " sequences; it must be [batch][pos - 1] = [" + rows + "][" + targets + "]");
        }
        for (int b = 0; b < w.length; b++) {
            if (w[b] == null || w[b].length != targets) {
                throw new IllegalArgumentException("targetWeights row " + b + " has "
                        + (w[b] == null ? "no" : String.valueOf(w[b].length))
                        + " entries; it must have pos - 1 = " + targets + " (one per next-token target)");
            }
            for (int p = 0; p < targets; p++) {
                float x = w[b][p];
                if (!(x >= 0) || Float.isInfinite(x)) {
                    throw new IllegalArgumentException("targetWeights[" + b + "][" + p + "] = " + x
                            + "; weights must be finite and >= 0");
                }
            }
        }
    }

    /** Equal-length sequences, no padding. */
    public static Batch of(long[]... ids) {
        boolean[][] mask = new boolean[ids.length][];
        for (int b = 0; b < ids.length; b++) {
            mask[b] = new boolean[ids[b].length];
            Arrays.fill(mask[b], true);
        }
        return new Batch(ids, mask);
    }

    /** Sequences with an explicit attention mask. */
    public static Batch of(long[][] ids, boolean[][] mask) {
        return new Batch(ids, mask);
    }

    /** Sequences with an explicit attention mask and target weights {@code [batch][pos - 1]}. */
    public static Batch of(long[][] ids, boolean[][] mask, float[][] targetWeights) {
        return new Batch(ids, mask, targetWeights);
    }

    /** Sequences of any lengths, left-padded with {@code padId} to the longest. */
    public static Batch leftPadded(long[][] seqs, long padId) {
        return padded(seqs, padId, true);
    }

    /** Sequences of any lengths, right-padded with {@code padId} to the longest. */
    public static Batch rightPadded(long[][] seqs, long padId) {
        return padded(seqs, padId, false);
    }

    private static Batch padded(long[][] seqs, long padId, boolean left) {
        int len = Arrays.stream(seqs).mapToInt(s -> s.length).max().orElse(0);
        long[][] ids = new long[seqs.length][len];
        boolean[][] mask = new boolean[seqs.length][len];
        for (int b = 0; b < seqs.length; b++) {
            int off = left ? len - seqs[b].length : 0;
            Arrays.fill(ids[b], padId);
            System.arraycopy(seqs[b], 0, ids[b], off, seqs[b].length);
            Arrays.fill(mask[b], off, off + seqs[b].length, true);
        }
        return new Batch(ids, mask);
    }

    /** Token ids held in an NDArray {@code [batch, pos]} or {@code [pos]}. */
    public static long[][] toLongs(NDArray tokens) {
        long[] flat = tokens.toType(ai.djl.ndarray.types.DataType.INT64, false).toLongArray();
        int dims = tokens.getShape().dimension();
        if (dims == 1) return new long[][] {flat};
        if (dims != 2) {
            throw new IllegalArgumentException("tokens must be [batch, pos] or [pos], got " + tokens.getShape());
        }
        int b = (int) tokens.getShape().get(0), p = (int) tokens.getShape().get(1);
        long[][] out = new long[b][];
        for (int i = 0; i < b; i++) out[i] = Arrays.copyOfRange(flat, i * p, (i + 1) * p);
        return out;
    }

    /** This batch with other target weights {@code [batch][pos - 1]}. */
    public Batch withTargetWeights(float[][] weights) {
        return new Batch(ids, mask, weights);
    }

    /** Number of sequences. */
    public int size() {
        return ids.length;
    }

    /** Tokens per sequence (padding included). */
    public int length() {
        return ids[0].length;
    }

    /** Real (non-padding) tokens in each sequence. */
    public int[] lengths() {
        int[] out = new int[ids.length];
        for (int b = 0; b < ids.length; b++) {
            for (boolean m : mask[b]) out[b] += m ? 1 : 0;
        }
        return out;
    }

    /** Tokens in the batch, padding included (what tokens/s counts). */
    public long tokenCount() {
        return (long) size() * length();
    }

    /** All ids, row-major. */
    public long[] flatIds() {
        long[] flat = new long[size() * length()];
        for (int b = 0; b < size(); b++) System.arraycopy(ids[b], 0, flat, b * length(), length());
        return flat;
    }

    /** True if any position is padding. */
    public boolean padded() {
        for (boolean[] row : mask) for (boolean m : row) if (!m) return true;
        return false;
    }

    /** Total weight of the targets that count: weights times the padding mask (input and target both real). */
    public double targetWeight() {
        double total = 0;
        for (int b = 0; b < targetWeights.length; b++) {
            for (int p = 0; p < targetWeights[b].length; p++) {
                if (mask[b][p] && mask[b][p + 1]) total += targetWeights[b][p];
            }
        }
        return total;
    }

    /** Number of targets with a non-zero weight (padding included if weighted; see {@link #targetWeight()}). */
    public int targetCount() {
        int n = 0;
        for (float[] row : targetWeights) {
            for (float w : row) n += w != 0f ? 1 : 0;
        }
        return n;
    }

    /** Throws unless the sequences have at least one next-token target (2 tokens), as training needs. */
    public Batch requireTargets() {
        if (length() < 2) {
            throw new IllegalArgumentException("a training batch needs sequences of at least 2 tokens (one target), got "
                    + length());
        }
        return this;
    }

    /** Compares contents, not array identity. */
    @Override
    public boolean equals(Object o) {
        return o instanceof Batch other && Arrays.deepEquals(ids, other.ids) && Arrays.deepEquals(mask, other.mask)
                && Arrays.deepEquals(targetWeights, other.targetWeights);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.deepHashCode(ids) + Arrays.deepHashCode(mask)) + Arrays.deepHashCode(targetWeights);
    }

    @Override
    public String toString() {
        return "Batch(" + size() + " x " + length() + (padded() ? ", padded" : "") + ")";
    }
}
