package dev.jlens.data;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Repeated random tokens, the classic induction-head task: {@code [<bos>, x1..xL, x1..xL]}, length {@code 2L + 1}.
 *
 * <p>The {@code xi} are drawn independently and uniformly from {@code alphabet} tokens named {@code t0},
 * {@code t1}, ... (ids 3, 4, ...), repeats allowed, as in TransformerLens's repeated-tokens test. Every position
 * after BOS is a target: the first half is unpredictable (loss {@code log(alphabet)}), the second half is
 * predictable by copying. A sequence's split is a hash of its first half.
 *
 * @param alphabet number of distinct random tokens (2..100000)
 * @param halfLength {@code L}, the length of the repeated block (1..4096)
 * @param seed seed of every example
 */
public record Induction(int alphabet, int halfLength, long seed) implements Task<Induction.Meta> {

    /** Which part of the sequence a position is in. */
    public enum Half { BOS, FIRST, SECOND }

    /**
     * Metadata: the random block, each position's half, and for second-half positions the position an induction
     * head attends to ({@code i - L + 1}: the token that followed this token's first occurrence), else -1.
     */
    public record Meta(int halfLength, List<String> block, List<Half> halves, List<Integer> inductionSource) {
        /** Copies the lists. */
        public Meta {
            block = List.copyOf(block);
            halves = List.copyOf(halves);
            inductionSource = List.copyOf(inductionSource);
        }
    }

    private static final int MAX_ATTEMPTS = 10_000;

    /** Validates the sizes. */
    public Induction {
        if (alphabet < 2 || alphabet > 100_000) {
            throw new IllegalArgumentException("alphabet must be 2..100000 random tokens, got " + alphabet);
        }
        if (halfLength < 1 || halfLength > 4096) {
            throw new IllegalArgumentException("halfLength must be 1..4096, got " + halfLength);
        }
    }

    /** 128 random tokens repeated after a block of 32: sequences of 65 tokens. */
    public static Induction defaults() {
        return new Induction(128, 32, 0);
    }

    /** The same task with another seed. */
    @Override
    public Induction withSeed(long newSeed) {
        return new Induction(alphabet, halfLength, newSeed);
    }

    @Override
    public String name() {
        return "induction";
    }

    @Override
    public List<String> vocab() {
        List<String> out = new ArrayList<>(SPECIALS);
        for (int i = 0; i < alphabet; i++) {
            out.add("t" + i);
        }
        return out;
    }

    @Override
    public int vocabSize() {
        return SPECIALS.size() + alphabet;
    }

    @Override
    public long tokenId(String token) {
        int special = SPECIALS.indexOf(token);
        if (special >= 0) {
            return special;
        }
        if (token.length() > 1 && token.charAt(0) == 't' && token.chars().skip(1).allMatch(Character::isDigit)
                && (token.length() == 2 || token.charAt(1) != '0') && token.length() < 8) {
            int k = Integer.parseInt(token.substring(1));
            if (k < alphabet) {
                return SPECIALS.size() + k;
            }
        }
        throw new IllegalArgumentException("'" + token + "' is not in the induction vocabulary: "
                + SPECIALS + " and t0..t" + (alphabet - 1));
    }

    @Override
    public int maxLength() {
        return 2 * halfLength + 1;
    }

    @Override
    public Example<Meta> example(Split split, long index) {
        Rng rng = Rng.of(seed, split.ordinal(), index);
        long[] block = new long[halfLength];
        for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            for (int i = 0; i < halfLength; i++) {
                block[i] = SPECIALS.size() + rng.nextInt(alphabet);
            }
            if (Split.of(name(), block) == split) {
                return build(block);
            }
        }
        throw new IllegalStateException("no " + split + " sequence found in " + MAX_ATTEMPTS + " draws for " + this
                + ": alphabet^halfLength is too small to hold a test split; use more tokens or a longer block");
    }

    private Example<Meta> build(long[] block) {
        int len = maxLength();
        long[] ids = new long[len];
        List<String> tokens = new ArrayList<>(len);
        boolean[] loss = new boolean[len];
        List<Half> halves = new ArrayList<>(len);
        List<Integer> source = new ArrayList<>(len);
        ids[0] = BOS_ID;
        tokens.add(SPECIALS.get(1));
        halves.add(Half.BOS);
        source.add(-1);
        for (int i = 1; i < len; i++) {
            ids[i] = block[(i - 1) % halfLength];
            tokens.add("t" + (ids[i] - SPECIALS.size()));
            loss[i] = true;
            boolean second = i > halfLength;
            halves.add(second ? Half.SECOND : Half.FIRST);
            source.add(second ? i - halfLength + 1 : -1);
        }
        Map<String, List<?>> labels = new LinkedHashMap<>();
        labels.put("half", halves);
        labels.put("inductionSource", source);
        return new Example<>(ids, tokens, loss, labels,
                new Meta(halfLength, tokens.subList(1, halfLength + 1), halves, source));
    }

    /**
     * Induction score per head of one attention pattern {@code [head, q, k]}: the mean attention from each of the
     * last {@code halfLength} query positions {@code q} to key {@code q - halfLength + 1}, the token after the
     * current token's earlier occurrence (TransformerLens's induction stripe, restricted to the repeated half).
     * A perfect induction head scores 1. Works with or without a leading BOS (the pattern needs at least
     * {@code 2 * halfLength} positions).
     */
    public static double[] inductionScore(float[][][] patternHQK, int halfLength) {
        return inductionScore(new float[][][][] {patternHQK}, halfLength);
    }

    /** {@link #inductionScore(float[][][], int)} averaged over a batch of patterns {@code [batch, head, q, k]}. */
    public static double[] inductionScore(float[][][][] patternBHQK, int halfLength) {
        if (patternBHQK.length == 0 || patternBHQK[0].length == 0) {
            throw new IllegalArgumentException("pattern must be [batch, head, q, k] with at least one batch row"
                    + " and one head");
        }
        int heads = patternBHQK[0].length;
        int t = patternBHQK[0][0].length;
        if (halfLength < 1 || t < 2 * halfLength) {
            throw new IllegalArgumentException("a pattern over " + t + " positions cannot hold two blocks of "
                    + halfLength + "; need halfLength >= 1 and q >= 2 * halfLength");
        }
        double[] score = new double[heads];
        for (float[][][] hqk : patternBHQK) {
            if (hqk.length != heads) {
                throw new IllegalArgumentException("batch rows disagree on the number of heads: " + hqk.length
                        + " vs " + heads);
            }
            for (int h = 0; h < heads; h++) {
                float[][] qk = hqk[h];
                if (qk.length != t) {
                    throw new IllegalArgumentException("head " + h + " has " + qk.length + " query positions, expected "
                            + t);
                }
                double sum = 0;
                for (int q = t - halfLength; q < t; q++) {
                    if (qk[q].length != t) {
                        throw new IllegalArgumentException("pattern row q=" + q + " of head " + h + " has "
                                + qk[q].length + " keys, expected " + t + " (a square [q, k] pattern)");
                    }
                    sum += qk[q][q - halfLength + 1];
                }
                score[h] += sum / halfLength;
            }
        }
        for (int h = 0; h < heads; h++) {
            score[h] /= patternBHQK.length;
        }
        return score;
    }

    /**
     * {@link #inductionScore(float[][][][], int)} of an attention pattern straight from a cache,
     * {@code Induction.inductionScore(cache.get("pattern", 1), L)}: {@code [batch, head, q, k]} (averaged over the
     * batch) or {@code [head, q, k]}, any floating dtype. Only the induction stripe leaves the engine, so long
     * sequences and big batches cost little.
     */
    public static double[] inductionScore(NDArray pattern, int halfLength) {
        java.util.Objects.requireNonNull(pattern, "pattern");
        long[] s = pattern.getShape().getShape();
        if (s.length != 3 && s.length != 4) {
            throw new IllegalArgumentException("an attention pattern is [batch, head, q, k] or [head, q, k]; got "
                    + pattern.getShape());
        }
        int batch = s.length == 4 ? (int) s[0] : 1;
        int heads = (int) s[s.length - 3];
        int t = (int) s[s.length - 2];
        if (s[s.length - 1] != t) {
            throw new IllegalArgumentException("pattern " + pattern.getShape() + " is not square in its last two axes "
                    + "[q, k]");
        }
        if (batch == 0 || heads == 0) {
            throw new IllegalArgumentException("pattern must have at least one batch row and one head, got "
                    + pattern.getShape());
        }
        if (halfLength < 1 || t < 2 * halfLength) {
            throw new IllegalArgumentException("a pattern over " + t + " positions cannot hold two blocks of "
                    + halfLength + "; need halfLength >= 1 and q >= 2 * halfLength");
        }
        // flat [q, k] offsets of the stripe: query q attends to key q - halfLength + 1, for the last halfLength q
        long[] stripe = new long[batch * heads * halfLength];
        for (int r = 0; r < batch * heads; r++) {
            for (int i = 0; i < halfLength; i++) {
                int q = t - halfLength + i;
                stripe[r * halfLength + i] = (long) q * t + (q - halfLength + 1);
            }
        }
        float[] picked;
        try (NDScope scope = new NDScope()) {
            NDArray flat = pattern.reshape(batch * heads, (long) t * t);
            NDArray idx = dev.jlens.util.Tensors.owned(pattern.getManager().create(stripe,
                    new Shape(batch * heads, halfLength))).toDevice(pattern.getDevice(), false);
            NDArray g = flat.gather(idx, 1);
            picked = (g.getDataType() == DataType.FLOAT32 ? g : g.toType(DataType.FLOAT32, false)).toFloatArray();
        }
        // the same sums in the same order as the float[][][][] version, so the two agree exactly
        double[] score = new double[heads];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                double sum = 0;
                for (int i = 0; i < halfLength; i++) {
                    sum += picked[(b * heads + h) * halfLength + i];
                }
                score[h] += sum / halfLength;
            }
        }
        for (int h = 0; h < heads; h++) {
            score[h] /= batch;
        }
        return score;
    }

    @Override
    public String toString() {
        return "Induction(alphabet " + alphabet + ", halfLength " + halfLength + ", seed " + seed + ", length "
                + maxLength() + ")";
    }
}
