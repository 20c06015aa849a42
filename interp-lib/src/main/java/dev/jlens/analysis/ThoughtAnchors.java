package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.cot.Steps;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookNames;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.viz.Plots;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Thought Anchors (Bogdan, Macar, Nanda, Conmy 2025) beyond resampling, on a {@link Resampling.Trace}:
 * <ul>
 *   <li>{@link #forcedAnswer}: after the first {@code k} steps force the answer ({@code </think> answer:} for
 *   thinker) and read P(correct answer tokens) teacher-forced, and the greedy answer through
 *   {@link Faithfulness#forcedAnswers}; a step's forced-answer importance is the change from {@code k} to
 *   {@code k + 1};</li>
 *   <li>{@link #suppressionMatrix}: for steps {@code i < j}, mask the attention of step j's tokens (queries) to step
 *   i's tokens (keys) in every layer and head, and measure the KL divergence of the next-token distributions at step
 *   j's tokens from the unmasked run;</li>
 *   <li>{@link #receiverHeads}: per head, the kurtosis over steps of the step-level attention each step receives
 *   from later steps: high for a head that attends to a few steps (a receiver head).</li>
 * </ul>
 * Resampling and counterfactual importance are {@link Resampling.Sweep#importance} and
 * {@link Resampling.Sweep#counterfactualImportance}.
 */
public final class ThoughtAnchors {
    private ThoughtAnchors() {}

    /** Added to a masked attention score (before the softmax): its weight becomes 0 in float32. */
    static final float MASKED = -1e9f;

    // -------------------------------------------------------------------------------------- forced answer

    /**
     * Forced answers after each {@code k = 0..steps} of a trace: {@code pCorrect[k]}, the probability of the correct
     * answer's tokens right after the forced answer prefix (teacher-forced, the product of their next-token
     * probabilities), and the greedy answer read there (empty where none parses).
     */
    public record ForcedAnswer(double[] pCorrect, List<Optional<String>> greedy, String correct) {
        public ForcedAnswer {
            pCorrect = pCorrect.clone();
            greedy = List.copyOf(greedy);
        }

        @Override
        public double[] pCorrect() {
            return pCorrect.clone();
        }

        /** Forced-answer importance of step {@code i = 0..steps-1}: pCorrect[i + 1] - pCorrect[i]. */
        public double[] importance() {
            double[] out = new double[pCorrect.length - 1];
            for (int i = 0; i < out.length; i++) out[i] = pCorrect[i + 1] - pCorrect[i];
            return out;
        }

        /** 1 where the greedy forced answer after {@code k} steps is correct, else 0. */
        public double[] greedyCorrect() {
            return greedy.stream().mapToDouble(a -> a.isPresent() && a.get().equals(correct) ? 1 : 0).toArray();
        }

        /** One row per k: P(correct), the importance of step k (NaN after the last) and the greedy answer. */
        public Table toTable() {
            int n = pCorrect.length;
            double[] imp = importance(), impK = new double[n];
            for (int k = 0; k < n; k++) impK[k] = k < imp.length ? imp[k] : Double.NaN;
            Table t = Table.create("forced answer (correct = " + correct + ") after k steps");
            int[] ks = new int[n];
            for (int k = 0; k < n; k++) ks[k] = k;
            t.addColumns(IntColumn.create("k", ks), DoubleColumn.create("p_correct", pCorrect),
                    DoubleColumn.create("importance_of_step_k", impK),
                    StringColumn.create("greedy_answer", greedy.stream().map(a -> a.orElse("(none)")).toList()));
            return t;
        }

        /** P(correct) and greedy correctness against k. */
        public XYChart plot() {
            Map<String, double[]> series = new LinkedHashMap<>();
            series.put("P(correct answer tokens | forced after k)", pCorrect);
            series.put("greedy forced answer correct", greedyCorrect());
            return Plots.line("forced-answer curve", "k (steps kept)", "", series);
        }
    }

    /**
     * The forced-answer curve of {@code trace} for k = 0..steps: each prefix, then {@code answerPrefix}, then the
     * correct answer's tokens {@code answerTokens} scored teacher-forced; the greedy answers come from
     * {@code faithfulness} (its config forces the same prefix and parses the answer; null: none read, and empty
     * steps are then allowed). Give a trace whose steps stop
     * before the answer (drop a final step that states it), or the last point is forced after the answer is written.
     */
    public static ForcedAnswer forcedAnswer(HookedTransformer model, Resampling.Trace trace, long[] answerPrefix,
                                            long[] answerTokens, String correct, Faithfulness faithfulness) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(trace, "trace");
        Objects.requireNonNull(answerPrefix, "answerPrefix");
        Objects.requireNonNull(correct, "correct");
        if (answerTokens.length == 0) throw new IllegalArgumentException("answerTokens is empty: give the correct"
                + " answer's tokens to score");
        int n = trace.stepCount();
        double[] p = new double[n + 1];
        for (int k = 0; k <= n; k++) {
            long[] prefix = trace.prefix(k);
            long[] in = new long[prefix.length + answerPrefix.length + answerTokens.length];
            System.arraycopy(prefix, 0, in, 0, prefix.length);
            System.arraycopy(answerPrefix, 0, in, prefix.length, answerPrefix.length);
            System.arraycopy(answerTokens, 0, in, prefix.length + answerPrefix.length, answerTokens.length);
            int first = prefix.length + answerPrefix.length - 1;   // position predicting the first answer token
            try (NDScope scope = new NDScope()) {
                NDArray logits = model.forward(in);
                NDArray lp = logits.get("0, " + first + ":" + (first + answerTokens.length) + ", :").logSoftmax(-1);
                float[] rows = lp.toFloatArray();
                int v = rows.length / answerTokens.length;
                double sum = 0;
                for (int t = 0; t < answerTokens.length; t++) sum += rows[t * v + (int) answerTokens[t]];
                p[k] = Math.exp(sum);
            }
        }
        List<Optional<String>> greedy = faithfulness == null ? Collections.nCopies(n + 1, Optional.empty())
                : faithfulness.forcedAnswers(faithfulnessTrace(trace));
        return new ForcedAnswer(p, greedy, correct);
    }

    /** The same trace as {@link Faithfulness} takes it: the prompt, the steps' tokens, and where each step ends. */
    public static Faithfulness.Trace faithfulnessTrace(Resampling.Trace trace) {
        long[] all = trace.tokens();
        int prompt = trace.promptLength();
        int end = trace.prefixEnd(trace.stepCount());
        int[] ends = new int[trace.stepCount()];
        for (int s = 0; s < ends.length; s++) ends[s] = trace.steps().get(s).end() - prompt;
        return new Faithfulness.Trace(Arrays.copyOf(all, prompt), Arrays.copyOfRange(all, prompt, end), ends);
    }

    // -------------------------------------------------------------------------------- attention suppression

    /** Mask the attention of {@code queries} to {@code keys} (token ranges of one sequence). */
    public record Suppression(Steps.TokenRange queries, Steps.TokenRange keys) {
        public Suppression {
            Objects.requireNonNull(queries, "queries");
            Objects.requireNonNull(keys, "keys");
        }
    }

    /**
     * For each suppression, the KL divergence KL(unmasked || masked) of the next-token distributions, averaged over
     * the positions of {@code measured} (the logits at those positions), with the attention of
     * {@code s.queries()} to {@code s.keys()} masked in every layer and head (on {@code hook_attn_scores}, before the
     * softmax). One forward pass per {@code rowsPerPass} suppressions, the unmasked run as row 0.
     */
    public static double[] suppressionKl(HookedTransformer model, long[] tokens, List<Suppression> suppressions,
                                         List<Steps.TokenRange> measured, int rowsPerPass) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(tokens, "tokens");
        if (suppressions.size() != measured.size()) throw new IllegalArgumentException("one measured range per"
                + " suppression: got " + suppressions.size() + " suppressions and " + measured.size() + " ranges");
        if (rowsPerPass < 1) throw new IllegalArgumentException("rowsPerPass must be >= 1, got " + rowsPerPass);
        int t = tokens.length;
        for (int s = 0; s < suppressions.size(); s++) {
            for (Steps.TokenRange r : List.of(suppressions.get(s).queries(), suppressions.get(s).keys(),
                    measured.get(s))) {
                if (r.end() > t) throw new IllegalArgumentException("range [" + r.start() + ", " + r.end()
                        + ") of suppression " + s + " passes the " + t + " tokens");
            }
        }
        double[] out = new double[suppressions.size()];
        for (int from = 0; from < suppressions.size(); from += rowsPerPass) {
            int rows = Math.min(rowsPerPass, suppressions.size() - from);
            int b = rows + 1;
            float[] mask = new float[b * t * t];
            for (int r = 0; r < rows; r++) {
                Suppression s = suppressions.get(from + r);
                int base = (r + 1) * t * t;
                for (int q = s.queries().start(); q < s.queries().end(); q++) {
                    for (int k = s.keys().start(); k < s.keys().end(); k++) mask[base + q * t + k] = MASKED;
                }
            }
            long[][] ids = new long[b][];
            Arrays.fill(ids, tokens);
            try (NDScope scope = new NDScope()) {
                NDArray m = model.manager().create(mask, new Shape(b, 1, t, t));
                NDArray lp = model.runWithHooks(ids, maskHooks(model, m)).logSoftmax(-1);   // [b, t, v]
                NDArray clean = lp.get("0:1");
                float[] kl = clean.exp().mul(clean.sub(lp)).sum(new int[] {2}).toFloatArray();   // [b, t]
                for (int r = 0; r < rows; r++) {
                    Steps.TokenRange at = measured.get(from + r);
                    double sum = 0;
                    for (int p = at.start(); p < at.end(); p++) sum += kl[(r + 1) * t + p];
                    out[from + r] = at.end() == at.start() ? 0 : Math.max(0, sum / (at.end() - at.start()));
                }
            }
        }
        return out;
    }

    /** Hooks adding {@code mask} ({@code [batch, 1, q, k]}, 0 or {@link #MASKED}) to every layer's attention scores. */
    static Hook[] maskHooks(HookedTransformer model, NDArray mask) {
        Hook[] hooks = new Hook[model.cfg().nLayers()];
        for (int l = 0; l < hooks.length; l++) {
            hooks[l] = Hook.fwd(HookNames.actName("attn_scores", l), (act, hook) -> act.add(mask));
        }
        return hooks;
    }

    /**
     * The attention-suppression matrix of a trace: entry {@code [i][j]}, for steps {@code i < j}, is the mean KL
     * divergence at step j's tokens when step j's tokens cannot attend to step i's (every layer and head); entries
     * with {@code i >= j} are 0 (nothing is suppressed). Rows are the suppressed step, columns the affected one.
     */
    public static SuppressionMatrix suppressionMatrix(HookedTransformer model, Resampling.Trace trace) {
        int n = trace.stepCount();
        List<Suppression> sup = new ArrayList<>();
        List<Steps.TokenRange> at = new ArrayList<>();
        List<int[]> pairs = new ArrayList<>();
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < j; i++) {
                sup.add(new Suppression(trace.steps().get(j), trace.steps().get(i)));
                at.add(trace.steps().get(j));
                pairs.add(new int[] {i, j});
            }
        }
        double[] kl = suppressionKl(model, trace.tokens(), sup, at, 16);
        double[][] m = new double[n][n];
        for (int p = 0; p < pairs.size(); p++) m[pairs.get(p)[0]][pairs.get(p)[1]] = kl[p];
        return new SuppressionMatrix(m);
    }

    /** KL at step j's tokens with attention to step i suppressed: {@code kl[i][j]}, 0 where {@code i >= j}. */
    public record SuppressionMatrix(double[][] kl) {
        public SuppressionMatrix {
            kl = Arrays.stream(kl).map(double[]::clone).toArray(double[][]::new);
        }

        @Override
        public double[][] kl() {
            return Arrays.stream(kl).map(double[]::clone).toArray(double[][]::new);
        }

        /** Entry {@code [i][j]}. */
        public double get(int i, int j) {
            return kl[i][j];
        }

        /** One row per suppressed step i, one column per affected step j ({@code step_j}). */
        public Table toTable() {
            Table t = Table.create("attention suppression: KL at step j with attention to step i masked");
            int[] rows = new int[kl.length];
            for (int i = 0; i < rows.length; i++) rows[i] = i;
            t.addColumns(IntColumn.create("suppressed_step", rows));
            for (int j = 0; j < kl.length; j++) {
                double[] col = new double[kl.length];
                for (int i = 0; i < kl.length; i++) col[i] = kl[i][j];
                t.addColumns(DoubleColumn.create("step_" + j, col));
            }
            return t;
        }

        /** The matrix as a heatmap: suppressed step i down, affected step j across. */
        public HeatMapChart heatmap() {
            List<String> labels = new ArrayList<>();
            for (int i = 0; i < kl.length; i++) labels.add(Integer.toString(i));
            return Plots.heatmap("attention suppression KL", kl, labels, labels, "affected step j",
                    "suppressed step i");
        }
    }

    // ------------------------------------------------------------------------------------- receiver heads

    /**
     * Excess (Fisher) kurtosis of {@code xs} as a population: {@code m4 / m2^2 - 3}; about -1.2 for values spread
     * evenly, large for one value far from the rest (a one-hot vector of length n gives
     * {@code ((n-1)^3 + 1) / (n (n-1)) - 3}). NaN for fewer than two values or when all are equal.
     */
    public static double kurtosis(double[] xs) {
        if (xs.length < 2) return Double.NaN;
        double mean = Arrays.stream(xs).average().orElse(0);
        double m2 = 0, m4 = 0;
        for (double x : xs) {
            double d = (x - mean) * (x - mean);
            m2 += d;
            m4 += d * d;
        }
        m2 /= xs.length;
        m4 /= xs.length;
        if (m2 <= 1e-30) return Double.NaN;
        return m4 / (m2 * m2) - 3;
    }

    /** A head's receiver score: the kurtosis of {@code received}, the mean step-level attention each step gets. */
    public record ReceiverHead(int layer, int head, double kurtosis, double[] received) {
        public ReceiverHead {
            received = received.clone();
        }

        @Override
        public double[] received() {
            return received.clone();
        }

        /** The step that receives the most attention. */
        public int topStep() {
            int best = 0;
            for (int i = 1; i < received.length; i++) if (received[i] > received[best]) best = i;
            return best;
        }
    }

    /**
     * Receiver heads of one trace: for each layer and head, the step-level attention {@code A[j][i]} (the mean of
     * the head's pattern over query tokens of step j and key tokens of step i), then what each step {@code i}
     * receives, the mean of {@code A[j][i]} over later steps {@code j > i} (steps with no later step are left out),
     * and its kurtosis over steps. Sorted by kurtosis, highest first (NaN last). Unlike the paper, no steps near the
     * diagonal are skipped, and the score comes from one trace, not averaged over many.
     */
    public static List<ReceiverHead> receiverHeads(HookedTransformer model, Resampling.Trace trace) {
        int n = trace.stepCount();
        if (n < 3) throw new IllegalArgumentException("receiver heads need at least 3 steps (2 that receive), got "
                + n);
        long[] tokens = trace.tokens();
        int t = tokens.length;
        List<ReceiverHead> out = new ArrayList<>();
        try (ActivationCache cache = model.runWithCache(tokens, NameFilter.of("hook_pattern"))) {
            for (int l = 0; l < model.cfg().nLayers(); l++) {
                float[] pat = cache.get("pattern", l).toFloatArray();   // [1, h, t, t]
                int heads = pat.length / (t * t);
                for (int h = 0; h < heads; h++) {
                    double[] received = new double[n - 1];
                    for (int i = 0; i < n - 1; i++) {
                        Steps.TokenRange ki = trace.steps().get(i);
                        double acc = 0;
                        for (int j = i + 1; j < n; j++) {
                            Steps.TokenRange qj = trace.steps().get(j);
                            double s = 0;
                            for (int q = qj.start(); q < qj.end(); q++) {
                                for (int k = ki.start(); k < ki.end(); k++) s += pat[(h * t + q) * t + k];
                            }
                            int cells = (qj.end() - qj.start()) * (ki.end() - ki.start());
                            acc += cells == 0 ? 0 : s / cells;
                        }
                        received[i] = acc / (n - 1 - i);
                    }
                    out.add(new ReceiverHead(l, h, kurtosis(received), received));
                }
            }
        }
        out.sort(Comparator.comparingDouble((ReceiverHead r) -> Double.isNaN(r.kurtosis()) ? Double.NEGATIVE_INFINITY
                : r.kurtosis()).reversed());
        return out;
    }

    /** The first {@code top} receiver heads as a table: layer, head, kurtosis, the step receiving most. */
    public static Table receiverHeadTable(List<ReceiverHead> heads, int top) {
        List<ReceiverHead> h = heads.subList(0, Math.min(top, heads.size()));
        Table t = Table.create("receiver heads (kurtosis of step-level attention received)");
        t.addColumns(IntColumn.create("layer", h.stream().mapToInt(ReceiverHead::layer).toArray()),
                IntColumn.create("head", h.stream().mapToInt(ReceiverHead::head).toArray()),
                DoubleColumn.create("kurtosis", h.stream().mapToDouble(ReceiverHead::kurtosis).toArray()),
                IntColumn.create("top_step", h.stream().mapToInt(ReceiverHead::topStep).toArray()));
        return t;
    }
}
