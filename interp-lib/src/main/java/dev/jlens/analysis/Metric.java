package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.util.Tensors;

import java.util.Arrays;
import java.util.Objects;
import java.util.function.Function;

/**
 * What a patching or attribution experiment measures: a function of the logits, one value per row.
 *
 * <p>The logits are {@code [rows, pos, vocab]}. Patching stacks many patched copies of the {@code n} prompts into
 * one batch, so {@code rows} is a multiple of {@code n} and row {@code r} is prompt {@code r % n}; a metric with
 * per-prompt answers (a token pair per prompt) indexes them that way. The value of a run is the mean over its
 * prompts. A metric must be differentiable (NDArray operations only) to be used by attribution. Built-ins read
 * the last position:
 * <pre>{@code
 * Metric.logitDiff(runs, run)             // logit[runs] - logit[run], the same pair for every prompt
 * Metric.logitDiff(singular, plural)      // long[] per prompt
 * Metric.meanLogitDiff(expertWords, noviceWords)   // mean logit of one word set minus another's
 * Metric.probability(answer)              // softmax probability of the answer
 * Metric.logProb(answer)
 * Metric.loss(tokens)                     // mean next-token cross-entropy over each prompt
 * Metric.kl(referenceLogits)              // KL(reference || run) of the next-token distribution
 * Metric.of("max logit", l -> l.get(":, -1, :").max(new int[] {-1}))   // [rows, pos, vocab] -> [rows]
 * Metric.ofLastPosition("max logit", l -> l.max(new int[] {-1}))           // [rows, vocab] -> [rows]
 * }</pre>
 */
public interface Metric {

    /** Values per row {@code [rows]} (float32) of logits {@code [rows, pos, vocab]} for {@code prompts} prompts. */
    NDArray perRow(NDArray logits, int prompts);

    /** A short name for tables and plots. */
    String name();

    /** Token ids this metric reads (checked against the vocabulary before a run); empty if none. */
    default long[] tokens() {
        return new long[0];
    }

    /**
     * Whether the metric reads the logits of the last position only (the built-ins but {@link #loss}). Patching then
     * runs only the positions a patch can change, the earlier ones coming from the base run's keys and values.
     */
    default boolean lastPositionOnly() {
        return false;
    }

    /** {@code logit[a] - logit[b]} at the last position, the same pair for every prompt. */
    static Metric logitDiff(long a, long b) {
        return logitDiff(new long[] {a}, new long[] {b});
    }

    /**
     * {@code logit[a[i]] - logit[b[i]]} at the last position of prompt {@code i} (arrays of length 1 apply to every
     * prompt).
     */
    static Metric logitDiff(long[] a, long[] b) {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        if (a.length != b.length || a.length == 0) {
            throw new IllegalArgumentException("logitDiff needs as many 'a' tokens as 'b' tokens (one per prompt, or "
                    + "one for all), got " + a.length + " and " + b.length);
        }
        long[] both = concat(a, b);
        return new Named("logit diff", both, true, (logits, n) -> {
            NDArray last = lastPosition(logits);
            return gather(last, a, n).sub(gather(last, b, n));
        });
    }

    /**
     * The mean logit of the words {@code a} minus the mean logit of the words {@code b} at the last position, the
     * same sets for every prompt (e.g. one register's words against another's).
     */
    static Metric meanLogitDiff(long[] a, long[] b) {
        requireTokens(a, "meanLogitDiff (a)");
        requireTokens(b, "meanLogitDiff (b)");
        long[] both = concat(a, b);
        return new Named("mean logit diff", both, true, (logits, n) -> {
            NDArray last = lastPosition(logits);
            return meanOf(last, a).sub(meanOf(last, b));
        });
    }

    private static NDArray meanOf(NDArray last, long[] words) {
        long rows = last.getShape().get(0);
        long[] idx = new long[(int) rows * words.length];
        for (int r = 0; r < rows; r++) System.arraycopy(words, 0, idx, r * words.length, words.length);
        NDArray ids = Tensors.owned(last.getManager().create(idx, new Shape(rows, words.length)));
        return last.gather(ids, 1).mean(new int[] {1});
    }

    /** Probability of {@code answer[i]} (one per prompt, or one for all) at the last position. */
    static Metric probability(long... answer) {
        requireTokens(answer, "probability");
        return new Named("probability", answer, true, (logits, n) -> gather(lastPosition(logits).softmax(-1), answer, n));
    }

    /** Log-probability of {@code answer[i]} at the last position. */
    static Metric logProb(long... answer) {
        requireTokens(answer, "logProb");
        return new Named("log prob", answer, true, (logits, n) -> gather(lastPosition(logits).logSoftmax(-1), answer, n));
    }

    /**
     * Mean next-token cross-entropy of each prompt over its own tokens ({@code tokens[i]} is prompt {@code i}, the
     * run's input): targets are positions 1..pos-1.
     */
    static Metric loss(long[][] tokens) {
        Objects.requireNonNull(tokens, "tokens");
        if (tokens.length == 0) throw new IllegalArgumentException("loss needs the prompts' tokens, got none");
        long[] flat = Arrays.stream(tokens).flatMapToLong(Arrays::stream).toArray();
        int len = tokens[0].length;
        for (long[] t : tokens) {
            if (t.length != len) {
                throw new IllegalArgumentException("loss needs equal-length prompts, got lengths " + len + " and "
                        + t.length);
            }
        }
        if (len < 2) throw new IllegalArgumentException("loss needs prompts of at least 2 tokens, got " + len);
        return new Named("loss", flat, false, (logits, n) -> {
            if (n != tokens.length) {
                throw new IllegalArgumentException("loss metric was made for " + tokens.length + " prompts, the run "
                        + "has " + n);
            }
            long rows = logits.getShape().get(0);
            NDManager m = logits.getManager();
            long[] targets = new long[(int) rows * (len - 1)];
            for (int r = 0; r < rows; r++) {
                System.arraycopy(tokens[r % n], 1, targets, r * (len - 1), len - 1);
            }
            NDArray t = Tensors.owned(m.create(targets, new Shape(rows, len - 1, 1)));
            NDArray logp = logits.get(new NDIndex(":, :-1, :")).logSoftmax(-1);
            return logp.gather(t, 2).squeeze(2).mean(new int[] {1}).neg();
        });
    }

    /**
     * {@code KL(reference || run)} of the next-token distribution at the last position, in nats, against
     * {@code reference} logits {@code [prompts, pos, vocab]} or {@code [prompts, vocab]} (usually the clean run's).
     */
    static Metric kl(NDArray reference) {
        Objects.requireNonNull(reference, "reference");
        NDArray ref = reference.getShape().dimension() == 3 ? lastPosition(reference) : reference;
        NDArray refLogp = ref.toType(DataType.FLOAT32, false).logSoftmax(-1);
        return new Named("KL", new long[0], true, (logits, n) -> {
            if (refLogp.getShape().get(0) != n) {
                throw new IllegalArgumentException("KL reference has " + refLogp.getShape().get(0) + " prompts, the "
                        + "run has " + n);
            }
            NDArray logp = lastPosition(logits).logSoftmax(-1);
            long rows = logits.getShape().get(0);
            NDArray r = refLogp.tile(new long[] {rows / n, 1});
            return r.exp().mul(r.sub(logp)).sum(new int[] {-1});
        });
    }

    /** Any function of the logits {@code [rows, pos, vocab] -> [rows]}. */
    static Metric of(String name, Function<NDArray, NDArray> fn) {
        Objects.requireNonNull(fn, "fn");
        return new Named(name == null ? "metric" : name, new long[0], false, (logits, n) -> fn.apply(logits));
    }

    /**
     * Any function of the last position's logits {@code [rows, vocab] -> [rows]}; patching can then skip the
     * positions before the first one a patch changes.
     */
    static Metric ofLastPosition(String name, Function<NDArray, NDArray> fn) {
        Objects.requireNonNull(fn, "fn");
        return new Named(name == null ? "metric" : name, new long[0], true,
                (logits, n) -> fn.apply(lastPosition(logits)));
    }

    /** The logits at the last position {@code [rows, vocab]}. */
    static NDArray lastPosition(NDArray logits) {
        return logits.get(new NDIndex(":, -1, :"));
    }

    private static NDArray gather(NDArray last, long[] tokens, int prompts) {
        long rows = last.getShape().get(0);
        if (tokens.length != 1 && tokens.length != prompts) {
            throw new IllegalArgumentException("the metric has " + tokens.length + " answer tokens but the run has "
                    + prompts + " prompts: give one token per prompt, or one for all");
        }
        long[] idx = new long[(int) rows];
        for (int r = 0; r < rows; r++) idx[r] = tokens.length == 1 ? tokens[0] : tokens[r % prompts];
        NDArray ids = Tensors.owned(last.getManager().create(idx, new Shape(rows, 1)));
        return last.gather(ids, 1).squeeze(1);
    }

    private static void requireTokens(long[] t, String what) {
        if (t == null || t.length == 0) throw new IllegalArgumentException(what + " needs at least one answer token");
    }

    private static long[] concat(long[] a, long[] b) {
        long[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** A metric from a name, its tokens and a function. */
    record Named(String name, long[] tokens, boolean lastPositionOnly, Fn fn) implements Metric {
        /** The function of a named metric. */
        @FunctionalInterface
        interface Fn {
            NDArray apply(NDArray logits, int prompts);
        }

        @Override
        public NDArray perRow(NDArray logits, int prompts) {
            NDArray v = fn.apply(logits, prompts);
            return v.getDataType() == DataType.FLOAT32 ? v : v.toType(DataType.FLOAT32, false);
        }

        @Override
        public long[] tokens() {
            return tokens.clone();
        }

        @Override
        public String toString() {
            return "Metric(" + name + ")";
        }
    }
}
