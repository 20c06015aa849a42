package dev.jlens.diff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.Backtracking;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * An SAE on a thinking model's residual stream over its {@code ArithCot} traces, and the latents tied to backtracking:
 * which single latents fire where the trace backtracks, by precision, recall and F1 against contexts read off the
 * tokens ({@link Backtracking#find}, so planted traces and a model's own generations are marked alike).
 *
 * <pre>{@code
 * BacktrackLatents.Options o = BacktrackLatents.Options.defaults();            // blocks.2.hook_resid_post, TopK 256 x 8
 * SparseCoder sae = BacktrackLatents.train(thinker, o);                         // thinker's activations, half the traces backtrack
 * BacktrackLatents.Result r = BacktrackLatents.of(thinker, sae, BacktrackLatents.sequences(o.task(), Split.TEST, 300));
 * r.toTable(); r.plot(); r.best(BacktrackLatents.Context.BEFORE_WAIT);
 * }</pre>
 */
public final class BacktrackLatents {
    private BacktrackLatents() {}

    /** Where a trace backtracks. */
    public enum Context {
        /** The {@code wait} token. */
        WAIT,
        /** The last token of the step before {@code wait}: where the next token is {@code wait}. */
        BEFORE_WAIT,
        /**
         * The error state: from the first token where the step before {@code wait} differs from the step after it (the
         * wrong digit) up to, not including, {@code wait}; only where that step is false.
         */
        ERROR,
        /** The step after {@code wait} (the correction). */
        CORRECTION
    }

    /**
     * How to train the dictionary.
     *
     * @param hook          the hook point, e.g. {@code blocks.2.hook_resid_post}
     * @param dSae          latents
     * @param k             TopK's k
     * @param steps         training steps
     * @param batchSize     activations per step
     * @param lr            learning rate
     * @param trainExamples training traces (the task's train split)
     * @param task          the traces: {@code ArithCot} with its backtracking and trigger rates
     * @param seed          training seed
     */
    public record Options(String hook, int dSae, int k, int steps, int batchSize, double lr, int trainExamples,
            ArithCot task, long seed) {
        /** Validates the settings. */
        public Options {
            Objects.requireNonNull(hook, "hook: e.g. blocks.2.hook_resid_post");
            Objects.requireNonNull(task, "task: e.g. ArithCot.defaults().withBacktrackRate(0.5)");
            if (dSae < 1 || k < 1 || k > dSae) {
                throw new IllegalArgumentException("need 1 <= k <= dSae, got k " + k + " and dSae " + dSae);
            }
            if (steps < 1 || batchSize < 1 || trainExamples < 1 || !(lr > 0)) {
                throw new IllegalArgumentException("steps, batchSize, trainExamples and lr must be positive, got "
                        + steps + ", " + batchSize + ", " + trainExamples + ", " + lr);
            }
            if (task.format() != ArithCot.Format.COT) {
                throw new IllegalArgumentException("backtracking needs chain-of-thought traces: the task's format is "
                        + task.format() + "; use task.withFormat(ArithCot.Format.COT)");
            }
        }

        /**
         * {@code blocks.2.hook_resid_post}, 256 latents, TopK 8, 600 steps of 512 at lr 4e-3, 1500 train traces of
         * {@code ArithCot.defaults()} with half the traces backtracking and the trigger word on 30%, seed 0.
         */
        public static Options defaults() {
            return new Options("blocks.2.hook_resid_post", 256, 8, 600, 512, 4e-3, 1500,
                    ArithCot.defaults().withBacktrackRate(0.5).withTriggerRate(0.3), 0);
        }

        public Options withHook(String h) {
            return new Options(h, dSae, k, steps, batchSize, lr, trainExamples, task, seed);
        }

        /** A dictionary of {@code latents} latents with TopK {@code topK}. */
        public Options withSize(int latents, int topK) {
            return new Options(hook, latents, topK, steps, batchSize, lr, trainExamples, task, seed);
        }

        /** {@code n} steps on {@code examples} train traces. */
        public Options withTraining(int n, int examples) {
            return new Options(hook, dSae, k, n, batchSize, lr, examples, task, seed);
        }

        public Options withTask(ArithCot t) {
            return new Options(hook, dSae, k, steps, batchSize, lr, trainExamples, t, seed);
        }

        /** The training settings: warmup 5% of the steps, the last 20% decaying. */
        public SaeTrainConfig trainConfig() {
            return SaeTrainConfig.builder().steps(steps).batchSize(batchSize).lr(lr)
                    .warmupSteps(Math.max(1, steps / 20)).decayFraction(0.2).logEvery(Math.max(1, steps / 5))
                    .seed(seed).build();
        }
    }

    /** The first {@code n} examples of {@code task}'s split. */
    public static List<Example<ArithCot.Meta>> examples(ArithCot task, Split split, int n) {
        List<Example<ArithCot.Meta>> out = new ArrayList<>(n);
        for (long i = 0; i < n; i++) out.add(task.example(split, i));
        return out;
    }

    /** The token ids of the first {@code n} examples of {@code task}'s split. */
    public static List<long[]> sequences(ArithCot task, Split split, int n) {
        return examples(task, split, n).stream().map(Example::ids).toList();
    }

    /** A TopK SAE trained on {@code model}'s activations at {@code o.hook()} over every token of the train traces. */
    public static SparseCoder train(HookedTransformer model, Options o) {
        float[][] rows = rows(model, o.hook(), sequences(o.task(), Split.TRAIN, o.trainExamples()));
        SparseCoder sae = SparseCoder.create(SaeConfig.of(model.cfg().dModel(), o.dSae(), new SaeConfig.TopK(o.k()))
                .withHook(o.hook()), o.seed());
        SaeTrainer.train(sae, RowSource.of(rows, o.seed()).withHookPoint(o.hook()), o.trainConfig());
        return sae;
    }

    /** The activations at {@code hook} of every token of {@code sequences}, in order, 64 sequences a pass. */
    public static float[][] rows(HookedTransformer model, String hook, List<long[]> sequences) {
        Objects.requireNonNull(model, "model");
        model.hook(hook);   // an unknown hook throws here, naming the nearest ones
        int d = model.cfg().dModel();
        List<float[]> out = new ArrayList<>();
        for (int from = 0; from < sequences.size(); from += 64) {
            long[][] part = sequences.subList(from, Math.min(sequences.size(), from + 64)).toArray(long[][]::new);
            Batch batch = Batch.rightPadded(part, 0);
            int len = batch.length();
            try (NDScope scope = new NDScope(); ActivationCache c = model.runWithCache(batch, NameFilter.of(hook))) {
                NDArray a = c.get(hook);
                if (a.getShape().dimension() != 3 || a.getShape().get(2) != d) {
                    throw new IllegalArgumentException(hook + " has shape " + a.getShape() + "; read a [batch, pos, "
                            + "d_model] hook such as blocks.2.hook_resid_post");
                }
                float[] flat = a.toFloatArray();
                for (int r = 0; r < part.length; r++) {
                    for (int p = 0; p < part[r].length; p++) {
                        int off = (r * len + p) * d;
                        out.add(Arrays.copyOfRange(flat, off, off + d));
                    }
                }
            }
        }
        return out.toArray(float[][]::new);
    }

    /** Per context, which positions of a sequence of {@code ArithCot} token ids it marks. */
    public static Map<Context, boolean[]> contexts(long[] ids) {
        ArithCot task = ArithCot.defaults();
        List<String> vocab = task.vocab();
        Map<Context, boolean[]> out = new EnumMap<>(Context.class);
        for (Context c : Context.values()) out.put(c, new boolean[ids.length]);
        for (Backtracking.Wait w : Backtracking.find(task, ids)) {
            int at = w.position();
            out.get(Context.WAIT)[at] = true;
            if (at > 0) out.get(Context.BEFORE_WAIT)[at - 1] = true;
            int next = at + 1, end = next;
            while (end < ids.length && !boundary(vocab.get((int) ids[end]))) end++;
            for (int p = next; p < end; p++) out.get(Context.CORRECTION)[p] = true;
            if (w.stepStart() >= 0 && w.stepTrue().equals(java.util.Optional.of(false))) {
                int first = at - 1;   // no aligned correction: the step's last token
                for (int i = 0; w.stepStart() + i < at; i++) {
                    if (next + i >= end || ids[w.stepStart() + i] != ids[next + i]) {
                        first = w.stepStart() + i;
                        break;
                    }
                }
                for (int p = first; p < at; p++) out.get(Context.ERROR)[p] = true;
            }
        }
        return out;
    }

    private static boolean boundary(String t) {
        return t.equals(ArithCot.SEPARATOR) || t.equals(ArithCot.WAIT) || t.equals(ArithCot.END_THINK)
                || t.equals(ArithCot.ANSWER) || t.equals("<eos>");
    }

    /** One latent scored against one context. */
    public record LatentScore(Context context, int rank, int latent, double density, double precision, double recall,
            double f1) {}

    /** Encodes {@code sequences} with {@code sae} at its hook and scores every latent against every context. */
    public static Result of(HookedTransformer model, SparseCoder sae, List<long[]> sequences) {
        Objects.requireNonNull(sae, "sae");
        if (sequences.isEmpty()) throw new IllegalArgumentException("give at least one sequence");
        Batch batch = Batch.rightPadded(sequences.toArray(long[][]::new), 0);
        LatentCodes codes = LatentCodes.of(sae, batch, sae.cfg().hookName(), model);
        List<Map<Context, boolean[]>> marks = sequences.stream().map(BacktrackLatents::contexts).toList();
        return new Result(codes, marks, List.copyOf(sequences));
    }

    /** Latent codes of the traces, the contexts, and each context's best latents. */
    public static final class Result {
        private final LatentCodes codes;
        private final List<Map<Context, boolean[]>> marks;
        private final List<long[]> sequences;

        Result(LatentCodes codes, List<Map<Context, boolean[]>> marks, List<long[]> sequences) {
            this.codes = codes;
            this.marks = marks;
            this.sequences = sequences;
        }

        /**
         * Which tokens {@code latent} fires on: per token, how often it fires there, the share of its firings and
         * the fraction of that token's occurrences where it fires; most frequent first.
         */
        public Table firingTokens(int latent) {
            if (latent < 0 || latent >= codes.dSae()) {
                throw new IllegalArgumentException("latent " + latent + " is out of range: 0.." + (codes.dSae() - 1));
            }
            List<String> vocab = ArithCot.defaults().vocab();
            Map<String, int[]> counts = new LinkedHashMap<>();   // token -> {fired, occurrences}
            int total = 0;
            for (int i = 0; i < codes.tokens().size(); i++) {
                LatentCodes.Token t = codes.tokens().get(i);
                String tok = vocab.get((int) sequences.get(t.prompt())[t.position()]);
                int[] c = counts.computeIfAbsent(tok, x -> new int[2]);
                c[1]++;
                if (codes.get(i, latent) > 0) {
                    c[0]++;
                    total++;
                }
            }
            List<Map.Entry<String, int[]>> sorted = new ArrayList<>(counts.entrySet());
            sorted.removeIf(e -> e.getValue()[0] == 0);
            sorted.sort((a, b) -> Integer.compare(b.getValue()[0], a.getValue()[0]));
            StringColumn token = StringColumn.create("token");
            IntColumn fired = IntColumn.create("fired");
            DoubleColumn share = DoubleColumn.create("share_of_firings"), rate = DoubleColumn.create("rate_on_token");
            for (Map.Entry<String, int[]> e : sorted) {
                token.append(e.getKey());
                fired.append(e.getValue()[0]);
                share.append(e.getValue()[0] / (double) total);
                rate.append(e.getValue()[0] / (double) e.getValue()[1]);
            }
            return Table.create("where latent " + latent + " fires (" + total + " tokens)", token, fired, share, rate);
        }

        /** The latent codes of every token. */
        public LatentCodes codes() {
            return codes;
        }

        /** The context as {@link LatentCodes} asks for it. */
        public LatentCodes.Context context(Context c) {
            return (prompt, pos) -> {
                boolean[] m = marks.get(prompt).get(c);
                return pos < m.length && m[pos];
            };
        }

        /** Tokens a context marks. */
        public long marked(Context c) {
            return marks.stream().mapToLong(m -> {
                long n = 0;
                for (boolean b : m.get(c)) if (b) n++;
                return n;
            }).sum();
        }

        /** The {@code n} latents with the highest F1 for {@code c}, best first. */
        public List<LatentScore> best(Context c, int n) {
            LatentCodes.Context ctx = context(c);
            if (marked(c) == 0) return List.of();
            float[] density = codes.density();
            int[] top = codes.bestByF1(ctx, n);
            List<LatentScore> out = new ArrayList<>();
            for (int i = 0; i < top.length; i++) {
                int[] one = {top[i]};
                out.add(new LatentScore(c, i + 1, top[i], density[top[i]], codes.precision(one, ctx),
                        codes.recall(one, ctx), codes.f1(one, ctx)));
            }
            return out;
        }

        /** The best latent for {@code c}. */
        public LatentScore best(Context c) {
            List<LatentScore> b = best(c, 1);
            if (b.isEmpty()) throw new IllegalStateException("no token of the traces is in context " + c
                    + ": give traces that backtrack (ArithCot.withBacktrackRate)");
            return b.get(0);
        }

        /** The 5 best latents of every context: context, marked tokens, base rate, rank, latent, density, precision, recall, f1. */
        public Table toTable() {
            return toTable(5);
        }

        /** The {@code n} best latents of every context. */
        public Table toTable(int n) {
            StringColumn ctx = StringColumn.create("context");
            IntColumn rank = IntColumn.create("rank"), latent = IntColumn.create("latent");
            DoubleColumn marked = DoubleColumn.create("marked_tokens"), base = DoubleColumn.create("base_rate"),
                    dens = DoubleColumn.create("density"), prec = DoubleColumn.create("precision"),
                    rec = DoubleColumn.create("recall"), f1 = DoubleColumn.create("f1");
            for (Context c : Context.values()) {
                double rate = codes.baseRate(context(c));
                for (LatentScore s : best(c, n)) {
                    ctx.append(c.name());
                    marked.append(marked(c));
                    base.append(rate);
                    rank.append(s.rank());
                    latent.append(s.latent());
                    dens.append(s.density());
                    prec.append(s.precision());
                    rec.append(s.recall());
                    f1.append(s.f1());
                }
            }
            return Table.create(String.format(Locale.ROOT, "latents tied to backtracking (%d tokens, %d latents)",
                    codes.tokens().size(), codes.dSae()), ctx, marked, base, rank, latent, dens, prec, rec, f1);
        }

        /** Precision, recall and F1 of each context's best latent, with the context's base rate. */
        public CategoryChart plot() {
            List<String> names = new ArrayList<>();
            Map<String, double[]> s = new LinkedHashMap<>();
            List<Context> present = Arrays.stream(Context.values()).filter(c -> marked(c) > 0).toList();
            double[] p = new double[present.size()], r = new double[present.size()], f = new double[present.size()],
                    b = new double[present.size()];
            for (int i = 0; i < present.size(); i++) {
                LatentScore best = best(present.get(i));
                names.add(present.get(i).name() + " (latent " + best.latent() + ")");
                p[i] = best.precision();
                r[i] = best.recall();
                f[i] = best.f1();
                b[i] = codes.baseRate(context(present.get(i)));
            }
            s.put("precision", p);
            s.put("recall", r);
            s.put("F1", f);
            s.put("base rate", b);
            return Plots.bar("the best single latent per backtracking context", names, s);
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("BacktrackLatents.Result(" + codes);
            for (Context c : Context.values()) {
                if (marked(c) == 0) continue;
                LatentScore b = best(c);
                sb.append(String.format(Locale.ROOT, ", %s: latent %d P %.2f R %.2f", c, b.latent(), b.precision(),
                        b.recall()));
            }
            return sb.append(')').toString();
        }
    }
}
