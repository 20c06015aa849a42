package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.cot.Answer;
import dev.jlens.cot.Answers;
import dev.jlens.cot.Step;
import dev.jlens.cot.Steps;
import dev.jlens.model.Batch;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;
import dev.jlens.model.arch.KvCache;
import dev.jlens.util.SplitMix;
import dev.jlens.viz.Plots;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * Resampling a chain of thought (Thought Anchors' resampling): keep the first {@code k} steps of a trace, draw
 * {@code N} continuations from there, and read the answer of each, giving P(correct | first k steps); over
 * {@code k = 0..steps} the difference between consecutive k is each step's resampling importance, and, counting
 * only the continuations that rewrote the step differently, its counterfactual importance
 * ({@link Sweep#counterfactualImportance}). Forced-answer importance, attention suppression and receiver heads are in
 * {@link ThoughtAnchors}.
 *
 * <p><b>Seeds.</b> Continuation {@code i} from step {@code k} samples with its own generator, seeded with
 * {@link #seedOf(long, int, int) seedOf(seed, k, i)}: its draws depend on nothing else (not on the batch, the other
 * rows or when they stop), so {@link #continuation} reproduces any one alone, and so does
 * {@code model.generate(trace.prefix(k), generationConfig(model, options, k, i))}.
 *
 * <p><b>Prefix sharing.</b> The prefix is run once with batch 1; its keys and values are repeated
 * ({@link KvCache#repeat}) to each pass's rows, and the logits at its last token give every row's first token.
 * {@code Options.sharePrefix(false)} recomputes the prefix for every row instead (the baseline of
 * {@code ./lab bench cot}); both run the same sampling loop. Rows per pass bound memory: a pass holds
 * {@code rows x (prefix + maxNewTokens)} keys and values per layer.
 */
public final class Resampling {
    private Resampling() {}

    // ------------------------------------------------------------------------------------------- inputs

    /**
     * A tokenized trace: {@code tokens} (prompt, then the chain of thought) and its steps as token ranges of
     * {@code tokens}, in order and not overlapping. The prefix after {@code k} steps ends where step {@code k - 1}
     * ends; with {@code k = 0} it is everything before the first step (the prompt and, for a thinking model, its
     * {@code <think>}).
     */
    public record Trace(long[] tokens, List<Steps.TokenRange> steps) {
        /** Validates the ranges against the tokens. */
        public Trace {
            Objects.requireNonNull(tokens, "tokens");
            Objects.requireNonNull(steps, "steps");
            if (tokens.length == 0) {
                throw new IllegalArgumentException("the trace has no tokens: give the prompt and the chain of thought");
            }
            if (steps.isEmpty()) {
                throw new IllegalArgumentException("the trace has no steps: split it with Steps.split and give their"
                        + " token ranges (Trace.of does both)");
            }
            int at = 0;
            for (int s = 0; s < steps.size(); s++) {
                Steps.TokenRange r = Objects.requireNonNull(steps.get(s), "step " + s);
                if (r.start() < at || r.end() > tokens.length) {
                    throw new IllegalArgumentException("step " + s + " covers tokens [" + r.start() + ", " + r.end()
                            + "); steps must be in order, not overlap, and lie within the " + tokens.length
                            + " tokens (" + (s == 0 ? "from 0" : "from " + at + ", where step " + (s - 1) + " ends")
                            + ")");
                }
                at = r.end();
            }
            if (steps.get(0).start() == 0) {
                throw new IllegalArgumentException("step 0 starts at token 0: the trace needs a prompt before its"
                        + " first step to sample from");
            }
            tokens = tokens.clone();
            steps = List.copyOf(steps);
        }

        /**
         * The trace of {@code text} (prompt and chain of thought): split by {@link Steps#split}, tokenized by the
         * model's tokenizer (with BOS when the model prepends one and the text does not already start with it).
         */
        public static Trace of(HookedTransformer model, String text) {
            Tokenizer tok = model.requireTokenizer();
            boolean bos = tok.bosTokenId().isPresent()
                    && !text.startsWith(tok.decodeToken(tok.bosTokenId().getAsLong()));
            return of(tok, text, bos);
        }

        /** The trace of {@code text} as {@code tokenizer} tokenizes it, with BOS if asked. */
        public static Trace of(Tokenizer tokenizer, String text, boolean prependBos) {
            Objects.requireNonNull(text, "text");
            List<Step> steps = Steps.split(text);
            if (steps.isEmpty()) {
                throw new IllegalArgumentException("no steps in the trace '" + abbreviate(text) + "'");
            }
            long[] ids = tokenizer.toTokens(text, prependBos);
            return new Trace(ids, Steps.tokenRanges(steps, text, tokenizer.toStrTokens(ids)));
        }

        /** A prompt and a chain of thought, with the steps as token ranges of {@code chain}. */
        public static Trace of(long[] prompt, long[] chain, List<Steps.TokenRange> chainSteps) {
            Objects.requireNonNull(prompt, "prompt");
            Objects.requireNonNull(chain, "chain");
            if (prompt.length == 0) {
                throw new IllegalArgumentException("the prompt is empty: give at least one token (e.g. BOS) to"
                        + " sample from");
            }
            long[] all = Arrays.copyOf(prompt, prompt.length + chain.length);
            System.arraycopy(chain, 0, all, prompt.length, chain.length);
            List<Steps.TokenRange> shifted = new ArrayList<>(chainSteps.size());
            for (Steps.TokenRange r : chainSteps) {
                shifted.add(new Steps.TokenRange(r.start() + prompt.length, r.end() + prompt.length));
            }
            return new Trace(all, shifted);
        }

        /** Number of steps. */
        public int stepCount() {
            return steps.size();
        }

        /** Tokens before the first step. */
        public int promptLength() {
            return steps.get(0).start();
        }

        /** Where the prefix that keeps the first {@code k} steps ends (exclusive). */
        public int prefixEnd(int k) {
            checkK(k);
            return k == 0 ? steps.get(0).start() : steps.get(k - 1).end();
        }

        /** The tokens that keep the first {@code k} steps (k = 0..stepCount()). */
        public long[] prefix(int k) {
            return Arrays.copyOf(tokens, prefixEnd(k));
        }

        @Override
        public long[] tokens() {
            return tokens.clone();
        }

        private void checkK(int k) {
            if (k < 0 || k > steps.size()) {
                throw new IllegalArgumentException("k = " + k + " is out of range: the trace has " + steps.size()
                        + " steps, so k (steps kept) must be in 0.." + steps.size());
            }
        }

        @Override
        public String toString() {
            return "Trace(" + tokens.length + " tokens, " + steps.size() + " steps, prompt " + promptLength() + ")";
        }
    }

    /**
     * How to resample: {@code samples} continuations per prefix, drawn with {@code sampling} (up to its
     * {@code maxNewTokens}, fewer where the model's context ends; its temperature, top-k, top-p and stop tokens; its
     * seed is the base from which each continuation's own seed is derived, {@link #seedOf}); {@code rowsPerPass}
     * continuations per forward pass; {@code sharePrefix} runs the prefix once.
     */
    public record Options(int samples, Generation.Config sampling, int rowsPerPass, boolean sharePrefix) {
        /** Validates the settings (the sampling settings were checked by {@link Generation.Config}). */
        public Options {
            if (samples < 1) {
                throw new IllegalArgumentException("samples must be >= 1 (continuations per prefix), got " + samples);
            }
            java.util.Objects.requireNonNull(sampling, "sampling");
            if (sampling.maxNewTokens() < 1) {
                throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + sampling.maxNewTokens());
            }
            if (rowsPerPass < 1) {
                throw new IllegalArgumentException("rowsPerPass must be >= 1, got " + rowsPerPass);
            }
        }

        /** {@code samples} continuations of up to {@code maxNewTokens} at {@code temperature}, seed 0, 32 rows a pass. */
        public static Options of(int samples, int maxNewTokens, double temperature) {
            return new Options(samples, Generation.Config.sample(maxNewTokens, temperature, 0), 32, true);
        }

        public int maxNewTokens() {
            return sampling.maxNewTokens();
        }

        public long seed() {
            return sampling.seed();
        }

        public Options withSamples(int n) {
            return new Options(n, sampling, rowsPerPass, sharePrefix);
        }

        /** The same options with other sampling settings (e.g. {@code o.with(o.sampling().withTopK(50))}). */
        public Options with(Generation.Config s) {
            return new Options(samples, s, rowsPerPass, sharePrefix);
        }

        public Options withTemperature(double t) {
            return with(sampling.withTemperature(t));
        }

        public Options withTopK(int k) {
            return with(sampling.withTopK(k));
        }

        public Options withTopP(double p) {
            return with(sampling.withTopP(p));
        }

        public Options withSeed(long s) {
            return with(sampling.withSeed(s));
        }

        /** Stop a continuation after any of these tokens (besides the tokenizer's EOS; the stop token is kept). */
        public Options withStopTokens(Long... ids) {
            return with(sampling.withStopTokens(ids));
        }

        public Options withRowsPerPass(int rows) {
            return new Options(samples, sampling, rows, sharePrefix);
        }

        /** Run the prefix once and share its keys and values (true, the default), or rerun it for every row. */
        public Options sharePrefix(boolean share) {
            return new Options(samples, sampling, rowsPerPass, share);
        }
    }

    /**
     * One continuation: its index among the N, its seed, the new tokens (up to and including a stop token), their
     * text, the text of the chain of thought it completes (the kept steps after the prompt, then the new tokens:
     * where the answer is read) and whether it ended with a stop token.
     */
    public record Continuation(int index, long seed, long[] tokens, String text, String traceText, boolean stopped) {
        @Override
        public long[] tokens() {
            return tokens.clone();
        }

        @Override
        public String toString() {
            return "Continuation(" + index + ", " + tokens.length + " tokens" + (stopped ? "" : ", not stopped") + ": "
                    + abbreviate(text) + ")";
        }
    }

    // ------------------------------------------------------------------------------------------- running

    /** The seed of continuation {@code i} from step {@code k}: a SplitMix64 mix of the three. */
    public static long seedOf(long seed, int k, int i) {
        return SplitMix.mix(SplitMix.mix(seed, k), i);
    }

    /**
     * The generation settings that draw continuation {@code i} from step {@code k} alone:
     * {@code model.generate(trace.prefix(k), generationConfig(model, o, k, i))} gives its tokens (up to the model's
     * context, which {@code generate} does not cap).
     */
    public static Generation.Config generationConfig(HookedTransformer model, Options o, int k, int i) {
        return o.sampling().withSeed(seedOf(o.seed(), k, i)).withStopTokens(stopTokens(model, o).toArray(Long[]::new));
    }

    /** Draws {@code o.samples()} continuations of the trace after its first {@code k} steps. */
    public static Result resample(HookedTransformer model, Trace trace, int k, Options o) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(trace, "trace");
        Objects.requireNonNull(o, "options");
        long[] prefix = trace.prefix(k);
        long[] seeds = new long[o.samples()];
        for (int i = 0; i < seeds.length; i++) {
            seeds[i] = seedOf(o.seed(), k, i);
        }
        long[][] tokens = sample(model, prefix, seeds, o);
        List<Continuation> out = new ArrayList<>(seeds.length);
        for (int i = 0; i < seeds.length; i++) {
            out.add(continuation(model, trace, k, i, seeds[i], tokens[i], o));
        }
        return new Result(trace, k, out);
    }

    /** Continuation {@code i} from step {@code k} drawn alone (batch 1): the same tokens {@link #resample} gives it. */
    public static Continuation continuation(HookedTransformer model, Trace trace, int k, int i, Options o) {
        if (i < 0 || i >= o.samples()) {
            throw new IllegalArgumentException("continuation " + i + " is out of range: valid indices are 0.."
                    + (o.samples() - 1) + " (samples = " + o.samples() + ")");
        }
        long seed = seedOf(o.seed(), k, i);
        long[][] tokens = sample(model, trace.prefix(k), new long[] {seed}, o.withRowsPerPass(1));
        return continuation(model, trace, k, i, seed, tokens[0], o);
    }

    private static Continuation continuation(HookedTransformer model, Trace trace, int k, int i, long seed,
                                             long[] tokens, Options o) {
        Set<Long> stops = stopTokens(model, o);
        boolean stopped = tokens.length > 0 && stops.contains(tokens[tokens.length - 1]);
        Optional<Tokenizer> tok = model.tokenizer();
        String text = tok.map(t -> t.decode(tokens)).orElse(Arrays.toString(tokens));
        int from = trace.promptLength(), to = trace.prefixEnd(k);
        long[] chain = Arrays.copyOf(Arrays.copyOfRange(trace.tokens, from, to), to - from + tokens.length);
        System.arraycopy(tokens, 0, chain, to - from, tokens.length);
        String traceText = tok.map(t -> t.decode(chain)).orElse(Arrays.toString(chain));
        return new Continuation(i, seed, tokens, text, traceText, stopped);
    }

    private static Set<Long> stopTokens(HookedTransformer model, Options o) {
        Set<Long> stops = new LinkedHashSet<>(o.sampling().stopTokens());
        model.tokenizer().ifPresent(t -> {
            for (long id : t.eosTokenIds()) {
                stops.add(id);
            }
        });
        return stops;
    }

    /**
     * Continues {@code prefix} once per seed: row {@code r} samples with {@code new SplittableRandom(seeds[r])} and
     * {@link Generation#sample}, until a stop token, {@code o.maxNewTokens()} or the model's context. With
     * {@code o.sharePrefix()} the prefix runs once (batch 1) and each pass repeats its keys and values; without, each
     * pass runs it for every row.
     */
    static long[][] sample(HookedTransformer model, long[] prefix, long[] seeds, Options o) {
        if (prefix.length == 0) {
            throw new IllegalArgumentException("the prefix is empty: resampling needs at least one token to continue");
        }
        int room = model.cfg().nCtx() - prefix.length;
        if (room < 1) {
            throw new IllegalArgumentException("the prefix has " + prefix.length + " tokens, which fills the model's"
                    + " context of " + model.cfg().nCtx() + ": no room to sample");
        }
        int maxNew = Math.min(o.maxNewTokens(), room);
        Generation.Config s = o.sampling();
        Generation.Config cfg = new Generation.Config(maxNew, s.temperature(), s.topK(), s.topP(), s.seed(),
                stopTokens(model, o), true, false, null);
        long[][] out = new long[seeds.length][];
        KvCache shared = null;
        float[] first = null;
        try {
            if (o.sharePrefix()) {
                shared = model.newKvCache();
                try (NDScope scope = new NDScope()) {
                    NDArray logits = model.forward(Batch.of(new long[][] {prefix}), shared);
                    first = logits.get(":, -1, :").toFloatArray();
                }
            }
            for (int from = 0; from < seeds.length; from += o.rowsPerPass()) {
                int rows = Math.min(o.rowsPerPass(), seeds.length - from);
                long[][] pass = pass(model, prefix, Arrays.copyOfRange(seeds, from, from + rows), cfg, shared, first);
                System.arraycopy(pass, 0, out, from, rows);
            }
        } finally {
            if (shared != null) {
                shared.close();
            }
        }
        return out;
    }

    /** One pass of {@code seeds.length} rows: the shared prefix repeated, or the prefix run for every row. */
    private static long[][] pass(HookedTransformer model, long[] prefix, long[] seeds, Generation.Config cfg,
                                 KvCache shared, float[] sharedFirst) {
        int b = seeds.length;
        SplittableRandom[] rnd = new SplittableRandom[b];
        for (int r = 0; r < b; r++) {
            rnd[r] = new SplittableRandom(seeds[r]);
        }
        long[][] out = new long[b][cfg.maxNewTokens()];
        int[] produced = new int[b];
        boolean[] done = new boolean[b];
        try (KvCache cache = shared != null ? shared.repeat(b, 0) : model.newKvCache()) {
            float[][] last = new float[b][];
            if (shared != null) {
                Arrays.fill(last, sharedFirst);
            } else {
                long[][] rowsIds = new long[b][];
                Arrays.fill(rowsIds, prefix);
                last = lastLogits(model, Batch.of(rowsIds), cache, b);
            }
            boolean[][] stepMask = new boolean[b][1];
            for (boolean[] m : stepMask) {
                m[0] = true;
            }
            for (int t = 0; t < cfg.maxNewTokens(); t++) {
                if (Thread.currentThread().isInterrupted()) {
                    throw new Generation.GenerationInterruptedException(t);
                }
                long[][] next = new long[b][1];
                boolean all = true;
                for (int r = 0; r < b; r++) {
                    if (done[r]) {
                        next[r][0] = out[r][produced[r] - 1]; // fed but unused: keeps the batch rectangular
                        continue;
                    }
                    long id = Generation.sample(last[r], cfg, rnd[r]);
                    next[r][0] = id;
                    out[r][produced[r]++] = id;
                    if (cfg.stopTokens().contains(id)) {
                        done[r] = true;
                    }
                    all &= done[r];
                }
                if (all || t == cfg.maxNewTokens() - 1) {
                    break; // the last token is sampled, never fed
                }
                last = lastLogits(model, Batch.of(next, stepMask), cache, b);
            }
        }
        long[][] tokens = new long[b][];
        for (int r = 0; r < b; r++) {
            tokens[r] = Arrays.copyOf(out[r], produced[r]);
        }
        return tokens;
    }

    private static float[][] lastLogits(HookedTransformer model, Batch batch, KvCache cache, int b) {
        try (NDScope scope = new NDScope()) {
            NDArray logits = model.forward(batch, cache);
            float[] flat = logits.get(":, -1, :").toFloatArray();
            int v = flat.length / b;
            float[][] rows = new float[b][];
            for (int r = 0; r < b; r++) {
                rows[r] = Arrays.copyOfRange(flat, r * v, (r + 1) * v);
            }
            return rows;
        }
    }

    // ------------------------------------------------------------------------------------------- results

    /** The continuations drawn after the first {@code k} steps of a trace, and what they answer. */
    public static final class Result {
        private final Trace trace;
        private final int k;
        private final List<Continuation> continuations;

        Result(Trace trace, int k, List<Continuation> continuations) {
            this.trace = trace;
            this.k = k;
            this.continuations = List.copyOf(continuations);
        }

        /** Steps kept. */
        public int k() {
            return k;
        }

        /** The trace resampled. */
        public Trace trace() {
            return trace;
        }

        /** The prefix every continuation continues. */
        public long[] prefix() {
            return trace.prefix(k);
        }

        /** The continuations, in index order. */
        public List<Continuation> continuations() {
            return continuations;
        }

        /** New tokens of each continuation. */
        public long[][] tokens() {
            return continuations.stream().map(Continuation::tokens).toArray(long[][]::new);
        }

        /** Text of each continuation. */
        public List<String> texts() {
            return continuations.stream().map(Continuation::text).toList();
        }

        /** The answer of each continuation's completed trace ({@link Answers#extract}), empty where it gives none. */
        public List<Optional<Answer>> answers() {
            return answers(Answers::extract);
        }

        /** The answer of each continuation's completed trace as {@code reader} reads it. */
        public List<Optional<Answer>> answers(Function<String, Optional<Answer>> reader) {
            return continuations.stream().map(c -> reader.apply(c.traceText())).toList();
        }

        /**
         * Fraction of continuations whose answer is {@code correct} (compared as normalised numbers when both are
         * numbers, else as trimmed text); a continuation without an answer counts as wrong.
         */
        public double pCorrect(String correct) {
            Objects.requireNonNull(correct, "correct");
            String want = normalise(correct);
            long hits = answers().stream().filter(a -> a.isPresent() && a.get().value().equals(want)).count();
            return (double) hits / continuations.size();
        }

        /** Fraction of continuations with no answer. */
        public double noAnswerRate() {
            return answers().stream().filter(Optional::isEmpty).count() / (double) continuations.size();
        }

        /** How often each answer occurs, most common first ({@code "(none)"} for no answer). */
        public Map<String, Integer> answerCounts() {
            Map<String, Integer> counts = new LinkedHashMap<>();
            for (Optional<Answer> a : answers()) {
                counts.merge(a.map(Answer::value).orElse(NO_ANSWER), 1, Integer::sum);
            }
            List<Map.Entry<String, Integer>> sorted = new ArrayList<>(counts.entrySet());
            sorted.sort(Map.Entry.<String, Integer>comparingByValue().reversed());
            Map<String, Integer> out = new LinkedHashMap<>();
            sorted.forEach(e -> out.put(e.getKey(), e.getValue()));
            return out;
        }

        /** Determinism of the answer: the fraction of continuations giving the most common answer (or none). */
        public double answerAgreement() {
            return Collections.max(answerCounts().values()) / (double) continuations.size();
        }

        /** Determinism of the trace: the fraction of continuations whose tokens equal the most common ones. */
        public double traceAgreement() {
            Map<String, Integer> counts = new LinkedHashMap<>();
            for (Continuation c : continuations) {
                counts.merge(Arrays.toString(c.tokens), 1, Integer::sum);
            }
            return Collections.max(counts.values()) / (double) continuations.size();
        }

        /** One row per continuation: index, seed, new tokens, stopped, answer, text. */
        public Table toTable() {
            List<Optional<Answer>> answers = answers();
            Table t = Table.create("resampling after " + k + " of " + trace.stepCount() + " steps");
            t.addColumns(IntColumn.create("continuation", continuations.stream().mapToInt(Continuation::index)
                            .toArray()),
                    StringColumn.create("seed", continuations.stream().map(c -> Long.toString(c.seed())).toList()),
                    IntColumn.create("new_tokens", continuations.stream().mapToInt(c -> c.tokens.length).toArray()),
                    BooleanColumn.create("stopped", continuations.stream().map(Continuation::stopped).toList()),
                    StringColumn.create("answer", answers.stream().map(a -> a.map(Answer::value).orElse(NO_ANSWER))
                            .toList()),
                    StringColumn.create("text", texts()));
            return t;
        }

        @Override
        public String toString() {
            return "Resampling.Result(k = " + k + " of " + trace.stepCount() + ", " + continuations.size()
                    + " continuations, answers " + answerCounts() + ")";
        }
    }

    private static final String NO_ANSWER = "(none)";

    private static String normalise(String answer) {
        String s = answer.strip();
        return Answers.normalizeNumber(s).orElse(s);
    }

    // --------------------------------------------------------------------------------------------- sweep

    /** Resamples after every {@code k = 0..steps} and scores each against {@code correct}. */
    public static Sweep sweep(HookedTransformer model, Trace trace, Options o, String correct) {
        Objects.requireNonNull(correct, "correct");
        List<Result> results = new ArrayList<>(trace.stepCount() + 1);
        for (int k = 0; k <= trace.stepCount(); k++) {
            results.add(resample(model, trace, k, o));
        }
        return new Sweep(results, correct);
    }

    /** Resampling after every number of kept steps: P(correct | first k), importance per step, determinism. */
    public static final class Sweep {
        private final List<Result> results;
        private final String correct;

        Sweep(List<Result> results, String correct) {
            this.results = List.copyOf(results);
            this.correct = correct;
        }

        /** The result for each {@code k = 0..steps}. */
        public List<Result> results() {
            return results;
        }

        /** The answer scored as correct. */
        public String correct() {
            return correct;
        }

        /** P(correct | first k steps) for {@code k = 0..steps}. */
        public double[] pCorrect() {
            return results.stream().mapToDouble(r -> r.pCorrect(correct)).toArray();
        }

        /**
         * Resampling importance of each step {@code i = 0..steps-1}: P(correct | first i + 1 steps) minus
         * P(correct | first i), what keeping step i rather than resampling it adds to the accuracy.
         */
        public double[] importance() {
            double[] p = pCorrect();
            double[] out = new double[p.length - 1];
            for (int i = 0; i < out.length; i++) {
                out[i] = p[i + 1] - p[i];
            }
            return out;
        }

        /**
         * Whether each continuation from {@code k = i} replaced step {@code i} with something else: its first tokens
         * differ from the trace's tokens from the end of the prefix to the end of step {@code i} (a separator between
         * the steps, then step {@code i}), or it is shorter. Token inequality stands in for
         * Thought Anchors' semantic dissimilarity (cosine similarity of sentence embeddings below a threshold): a
         * resample that writes the same step in other tokens counts as different here. Rows {@code i = 0..steps-1}.
         */
        public boolean[][] differentStep() {
            Trace trace = results.get(0).trace();
            long[] all = trace.tokens;
            boolean[][] out = new boolean[trace.stepCount()][];
            for (int i = 0; i < out.length; i++) {
                // from where the prefix ends: any tokens between step i - 1 and step i (a separator) come first
                long[] step = Arrays.copyOfRange(all, trace.prefixEnd(i), trace.steps().get(i).end());
                List<Continuation> cs = results.get(i).continuations();
                out[i] = new boolean[cs.size()];
                for (int c = 0; c < cs.size(); c++) {
                    long[] t = cs.get(c).tokens;
                    out[i][c] = t.length < step.length || !Arrays.equals(Arrays.copyOf(t, step.length), step);
                }
            }
            return out;
        }

        /**
         * P(correct | first i steps, then a resampled step i that differs from the original), for
         * {@code i = 0..steps-1}; NaN where no continuation from {@code i} differs ({@link #differentStep}).
         */
        public double[] pCorrectDifferent() {
            boolean[][] diff = differentStep();
            String want = normalise(correct);
            double[] out = new double[diff.length];
            for (int i = 0; i < diff.length; i++) {
                List<Optional<Answer>> answers = results.get(i).answers();
                int n = 0, hits = 0;
                for (int c = 0; c < diff[i].length; c++) {
                    if (!diff[i][c]) continue;
                    n++;
                    if (answers.get(c).isPresent() && answers.get(c).get().value().equals(want)) hits++;
                }
                out[i] = n == 0 ? Double.NaN : hits / (double) n;
            }
            return out;
        }

        /**
         * Counterfactual importance of each step {@code i = 0..steps-1} (Thought Anchors): P(correct | first i + 1
         * steps) minus P(correct | first i steps and a different step i), so resamples that rewrite step i as it was
         * do not dilute the effect; NaN where every resample repeated the step. "Different" is token inequality
         * ({@link #differentStep}), an approximation of the paper's semantic dissimilarity; and the importance is a
         * difference of accuracies, where the paper takes a KL divergence between answer distributions.
         */
        public double[] counterfactualImportance() {
            double[] p = pCorrect(), pd = pCorrectDifferent();
            double[] out = new double[pd.length];
            for (int i = 0; i < out.length; i++) out[i] = p[i + 1] - pd[i];
            return out;
        }

        /** Fraction of continuations from each {@code i = 0..steps-1} whose step i differs from the original. */
        public double[] differentFraction() {
            boolean[][] diff = differentStep();
            double[] out = new double[diff.length];
            for (int i = 0; i < diff.length; i++) {
                int n = 0;
                for (boolean d : diff[i]) if (d) n++;
                out[i] = n / (double) diff[i].length;
            }
            return out;
        }

        /** Fraction of identical answers among the continuations from each k. */
        public double[] answerAgreement() {
            return results.stream().mapToDouble(Result::answerAgreement).toArray();
        }

        /** Fraction of identical continuations (token for token) from each k. */
        public double[] traceAgreement() {
            return results.stream().mapToDouble(Result::traceAgreement).toArray();
        }

        /**
         * One row per k: the kept steps, the prefix length, P(correct), the importance of step k (the next one;
         * NaN after the last), answers missing, answer and trace agreement, and step k's token range.
         */
        public Table toTable() {
            Trace trace = results.get(0).trace();
            int n = results.size();
            double[] p = pCorrect(), imp = importance();
            double[] impK = new double[n];
            List<String> stepTokens = new ArrayList<>(n);
            for (int k = 0; k < n; k++) {
                impK[k] = k < imp.length ? imp[k] : Double.NaN;
                stepTokens.add(k < trace.stepCount() ? "[" + trace.steps().get(k).start() + ", "
                        + trace.steps().get(k).end() + ")" : "");
            }
            Table t = Table.create("P(correct = " + correct + " | first k steps)");
            t.addColumns(IntColumn.create("k", results.stream().mapToInt(Result::k).toArray()),
                    IntColumn.create("prefix_tokens", results.stream().mapToInt(r -> r.trace().prefixEnd(r.k()))
                            .toArray()),
                    DoubleColumn.create("p_correct", p),
                    DoubleColumn.create("importance_of_step_k", impK),
                    DoubleColumn.create("counterfactual_importance_of_step_k", pad(counterfactualImportance(), n)),
                    DoubleColumn.create("different_step_k", pad(differentFraction(), n)),
                    DoubleColumn.create("no_answer", results.stream().mapToDouble(Result::noAnswerRate).toArray()),
                    DoubleColumn.create("answer_agreement", answerAgreement()),
                    DoubleColumn.create("trace_agreement", traceAgreement()),
                    StringColumn.create("step_k_tokens", stepTokens));
            return t;
        }

        /** P(correct | first k) and answer agreement against k, and each step's importance against its index. */
        public XYChart plot() {
            Map<String, double[]> series = new LinkedHashMap<>();
            series.put("P(correct | first k steps)", pCorrect());
            series.put("answer agreement", answerAgreement());
            if (results.size() > 1) {
                series.put("importance of step k", importance());
            }
            return Plots.line("resampling (" + results.get(0).continuations().size() + " continuations per k)",
                    "k (steps kept)", "", series);
        }

        @Override
        public String toString() {
            return "Resampling.Sweep(k = 0.." + (results.size() - 1) + ", P(correct) " + Arrays.toString(
                    Arrays.stream(pCorrect()).map(x -> Math.round(x * 1000) / 1000.0).toArray()) + ")";
        }
    }

    private static double[] pad(double[] xs, int n) {
        double[] out = new double[n];
        Arrays.fill(out, Double.NaN);
        System.arraycopy(xs, 0, out, 0, Math.min(n, xs.length));
        return out;
    }

    private static String abbreviate(String s) {
        String one = s.replace("\n", "\\n");
        return one.length() <= 80 ? one : one.substring(0, 77) + "...";
    }
}
