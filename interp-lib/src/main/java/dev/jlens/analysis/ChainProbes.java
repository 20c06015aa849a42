package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.data.ArithCot;
import dev.jlens.data.Split;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.Backtracking;
import dev.jlens.probe.LinearProbe;
import dev.jlens.probe.Metrics;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.ProbeMethod;
import dev.jlens.viz.Plots;
import org.apache.commons.math3.stat.correlation.PearsonsCorrelation;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.SplittableRandom;
import java.util.function.Predicate;

/**
 * Probes over a chain of thought: what the residual stream at the end of each step of a model's own {@code ArithCot}
 * trace says about the answer it will give. The model writes a greedy trace for every problem; the trace is split
 * into steps ({@link Resampling.Trace}, the same split resampling uses); after {@code k} kept steps the activation of
 * the prefix's last token (step {@code k - 1}'s last token; for {@code k = 0} the {@code <think>} token) is read at
 * every layer. Per layer and {@code k}, on a train split of the problems (each problem's rows on one side only):
 * <ul>
 * <li>a <b>digit probe</b>, a 10-class logistic probe for one digit of the model's own final answer (place 0 = units);
 *     answers that cannot be parsed are left out;</li>
 * <li>a <b>correctness probe</b>, a binary logistic probe for "the final answer will be correct", scored by AUROC on
 *     the held-out problems (insensitive to the share of wrong answers);</li>
 * <li>the same two probes fitted on shuffled train labels, a control that must sit near chance.</li>
 * </ul>
 * Against resampling: on some held-out problems (as many wrong as correct ones where there are enough)
 * {@link Resampling#sweep} gives P(correct | first k) from sampled continuations; per layer and {@code k} the table
 * gives the Pearson correlation of the probe's P(correct) with it, both means (calibration by {@code k}) and the
 * AUROC with which the resampled P(correct) itself foretells the greedy answer's correctness.
 *
 * <pre>{@code
 * List<ArithCot.Problem> ps = ChainProbes.mulProblems(Split.TEST, 400);      // 2x2-digit multiplications
 * ChainProbes.Result r = ChainProbes.run(thinker, ps, ChainProbes.Options.defaults());
 * r.toTable(); r.plot(); r.digitPlot(); r.resamplingPlot(3);
 * }</pre>
 */
public final class ChainProbes {
    private ChainProbes() {}

    /**
     * Settings.
     *
     * @param layers            layers whose {@code blocks.L.hook_resid_post} is read
     * @param digitPlace        which digit of the answer the digit probe reads (0 = units, 1 = tens, ...)
     * @param testFraction      fraction of the problems held out (split within correct and wrong answers)
     * @param l2                the logistic probes' L2 strength (on standardised features)
     * @param iterations        most conjugate-gradient iterations per probe
     * @param maxNewTokens      longest greedy trace
     * @param resampleProblems  held-out problems resampled (0: no resampling comparison)
     * @param samples           continuations per prefix when resampling
     * @param temperature       sampling temperature of the continuations
     * @param seed              split, shuffled-label control and resampling seed
     */
    public record Options(List<Integer> layers, int digitPlace, double testFraction, double l2, int iterations,
            int maxNewTokens,
            int resampleProblems, int samples, double temperature, long seed) {
        /** Validates the settings. */
        public Options {
            Objects.requireNonNull(layers, "layers: e.g. List.of(0, 1, 2, 3)");
            if (layers.isEmpty()) throw new IllegalArgumentException("give at least one layer, e.g. List.of(0, 1, 2, 3)");
            layers = List.copyOf(layers);
            if (digitPlace < 0 || digitPlace > 17) {
                throw new IllegalArgumentException("digitPlace must be 0..17 (0 = units), got " + digitPlace);
            }
            if (!(testFraction > 0 && testFraction < 1)) {
                throw new IllegalArgumentException("testFraction must lie in (0, 1), got " + testFraction);
            }
            if (!(l2 >= 0)) throw new IllegalArgumentException("l2 must be >= 0, got " + l2);
            if (iterations < 1) throw new IllegalArgumentException("iterations must be >= 1, got " + iterations);
            if (maxNewTokens < 1) throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
            if (resampleProblems < 0 || samples < 1) {
                throw new IllegalArgumentException("resampleProblems must be >= 0 and samples >= 1, got "
                        + resampleProblems + " and " + samples);
            }
            if (!(temperature > 0)) throw new IllegalArgumentException("temperature must be > 0, got " + temperature);
        }

        /**
         * Layers 0..3, units digit, 30% held out, L2 1e-2, 100 iterations, 120 new tokens, 24 held-out problems
         * resampled with 8 continuations per prefix at temperature 1, seed 0.
         */
        public static Options defaults() {
            return new Options(List.of(0, 1, 2, 3), 0, 0.3, 1e-2, 100, 120, 24, 8, 1.0, 0);
        }

        public Options withLayers(Integer... l) {
            return new Options(List.of(l), digitPlace, testFraction, l2, iterations, maxNewTokens, resampleProblems, samples,
                    temperature, seed);
        }

        public Options withDigitPlace(int place) {
            return new Options(layers, place, testFraction, l2, iterations, maxNewTokens, resampleProblems, samples, temperature, seed);
        }

        /** {@code problems} held-out problems resampled with {@code n} continuations per prefix (0 problems: none). */
        public Options withResampling(int problems, int n) {
            return new Options(layers, digitPlace, testFraction, l2, iterations, maxNewTokens, problems, n, temperature, seed);
        }

        /** Probes with L2 strength {@code strength} and at most {@code maxIterations} iterations. */
        public Options withProbe(double strength, int maxIterations) {
            return new Options(layers, digitPlace, testFraction, strength, maxIterations, maxNewTokens, resampleProblems,
                    samples, temperature, seed);
        }

        public Options withSeed(long s) {
            return new Options(layers, digitPlace, testFraction, l2, iterations, maxNewTokens, resampleProblems, samples,
                    temperature, s);
        }
    }

    // ------------------------------------------------------------------------------------------ problems

    /** The first {@code n} problems of {@code task}'s {@code split} that {@code keep} accepts (distinct problems). */
    public static List<ArithCot.Problem> problems(ArithCot task, Split split, int n, Predicate<ArithCot.Problem> keep) {
        Objects.requireNonNull(task, "task");
        if (n < 1) throw new IllegalArgumentException("n must be >= 1, got " + n);
        java.util.LinkedHashSet<ArithCot.Problem> out = new java.util.LinkedHashSet<>();
        for (long i = 0; out.size() < n; i++) {
            if (i > 1000L * n + 100_000) {
                throw new IllegalArgumentException("found only " + out.size() + " of " + n + " problems of " + task
                        + " in the " + split + " split that the filter accepts; ask for fewer");
            }
            ArithCot.Problem p = task.example(split, i).meta().problem();
            if (keep.test(p)) out.add(p);
        }
        return List.copyOf(out);
    }

    /**
     * {@code n} multiplications of two 2-digit numbers from {@code split}: every trace has the same six steps (four
     * digit products, the sum of partial products, the answer), and thinker gets about a quarter of them wrong.
     */
    public static List<ArithCot.Problem> mulProblems(Split split, int n) {
        return problems(ArithCot.defaults().withOps(ArithCot.Op.MUL), split, n,
                p -> p.a() >= 10 && p.a() <= 99 && p.b() >= 10 && p.b() <= 99);
    }

    // ------------------------------------------------------------------------------------------ traces

    /**
     * A model's greedy trace of a problem: its tokens (prompt, trace, answer, {@code <eos>}), the steps as resampling
     * splits them, the grade and the answer it gave (empty when malformed).
     */
    public record ModelTrace(ArithCot.Problem problem, Resampling.Trace trace, ArithCot.Grade grade,
            OptionalLong answer) {
        /** 1 if the answer is correct, else 0 (a malformed answer is not correct). */
        public int correct() {
            return grade == ArithCot.Grade.CORRECT ? 1 : 0;
        }

        /** Number of steps (the answer after {@code </think>} is the last). */
        public int steps() {
            return trace.stepCount();
        }

        /** The position read after {@code k} kept steps: the prefix's last token. */
        public int position(int k) {
            return trace.prefixEnd(k) - 1;
        }
    }

    /** Greedy traces of {@code problems} (in the COT format, no trigger word), in batches of 128. */
    public static List<ModelTrace> traces(HookedTransformer model, List<ArithCot.Problem> problems, int maxNewTokens) {
        Objects.requireNonNull(model, "model");
        ArithCot task = ArithCot.defaults().withBacktrackRate(0);
        List<String> vocab = task.vocab();
        Generation.Config cfg = Generation.Config.greedy(maxNewTokens).withStopTokens(task.tokenId("<eos>"));
        List<ModelTrace> out = new ArrayList<>(problems.size());
        for (int from = 0; from < problems.size(); from += 128) {
            List<ArithCot.Problem> part = problems.subList(from, Math.min(problems.size(), from + 128));
            long[][] prompts = part.stream().map(p -> Backtracking.prompt(task, p)).toArray(long[][]::new);
            try (Generation.Result r = model.generate(prompts, cfg)) {
                long[][] seqs = r.sequences();
                for (int i = 0; i < part.size(); i++) {
                    StringBuilder text = new StringBuilder();
                    for (long id : seqs[i]) text.append(text.length() == 0 ? "" : " ").append(vocab.get((int) id));
                    String generated = r.texts().get(i);
                    Resampling.Trace t = Resampling.Trace.of(model, text.toString());
                    if (!Arrays.equals(t.tokens(), seqs[i])) {
                        throw new IllegalStateException("the trace of " + part.get(i) + " does not tokenize back to "
                                + "the generated ids: " + text);
                    }
                    out.add(new ModelTrace(part.get(i), t, ArithCot.grade(part.get(i), generated),
                            ArithCot.parseAnswer(generated)));
                }
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------ running

    /** One (layer, k): held-out scores of the probes, their controls, and the comparison with resampling. */
    public record Row(int layer, int k, int nTrain, int nTest, double digitAccuracy, double digitShuffled,
            double digitMajority, double correctAuroc, double correctAurocShuffled, int nResampled,
            double corrWithResampled, double meanProbeP, double meanResampledP, double resampledAuroc) {}

    /** Greedy traces of {@code problems}, then {@link #probe} on them. */
    public static Result run(HookedTransformer model, List<ArithCot.Problem> problems, Options o) {
        return probe(model, traces(model, problems, o.maxNewTokens()), o);
    }

    /** Probes on traces already generated ({@link #traces}). */
    public static Result probe(HookedTransformer model, List<ModelTrace> traces, Options o) {
        Objects.requireNonNull(o, "options");
        if (traces.size() < 4) throw new IllegalArgumentException("give at least 4 traces, got " + traces.size());
        for (int l : o.layers()) {
            if (l < 0 || l >= model.cfg().nLayers()) {
                throw new IllegalArgumentException("layer " + l + " is out of range: the model has layers 0.."
                        + (model.cfg().nLayers() - 1));
            }
        }
        int maxK = maxK(traces);
        boolean[] test = split(traces, o);
        float[][][][] acts = activations(model, traces, o.layers(), maxK);   // [layer][trace][k] -> row or null

        // resampling on held-out problems, as many wrong as correct where possible
        int[] resampled = resampleSet(traces, test, o);
        double[][] pRes = new double[resampled.length][];
        Resampling.Options ro = Resampling.Options.of(o.samples(), o.maxNewTokens(), o.temperature())
                .withSeed(o.seed());
        for (int j = 0; j < resampled.length; j++) {
            ModelTrace t = traces.get(resampled[j]);
            pRes[j] = Resampling.sweep(model, t.trace(), ro, Long.toString(t.problem().answer())).pCorrect();
        }

        List<Row> rows = new ArrayList<>();
        double[][][] pProbe = new double[o.layers().size()][resampled.length][maxK + 1];
        for (double[][] a : pProbe) for (double[] b : a) Arrays.fill(b, Double.NaN);
        for (int li = 0; li < o.layers().size(); li++) {
            for (int k = 0; k <= maxK; k++) {
                rows.add(row(traces, test, acts[li], o.layers().get(li), k, o, resampled, pRes, pProbe[li]));
            }
        }
        return new Result(rows, traces, test, resampled, pRes, pProbe, o);
    }

    /** Rows per (layer, k) below which a k is left out (a rare longer trace, e.g. one that backtracked). */
    static final int MIN_TRACES = 20;

    /** The largest k that at least {@link #MIN_TRACES} traces reach. */
    private static int maxK(List<ModelTrace> traces) {
        int[] steps = traces.stream().mapToInt(ModelTrace::steps).sorted().toArray();
        return steps[Math.max(0, steps.length - Math.min(MIN_TRACES, steps.length))];
    }

    /** Held-out problems: a seeded shuffle within correct and within wrong answers, so both sides have each. */
    private static boolean[] split(List<ModelTrace> traces, Options o) {
        boolean[] test = new boolean[traces.size()];
        for (int c = 0; c <= 1; c++) {
            List<Integer> idx = new ArrayList<>();
            for (int i = 0; i < traces.size(); i++) if (traces.get(i).correct() == c) idx.add(i);
            java.util.Collections.shuffle(idx, new java.util.Random(o.seed() * 31 + c));
            int nTest = (int) Math.round(idx.size() * o.testFraction());
            for (int j = 0; j < nTest; j++) test[idx.get(j)] = true;
        }
        return test;
    }

    private static int[] resampleSet(List<ModelTrace> traces, boolean[] test, Options o) {
        List<Integer> wrong = new ArrayList<>(), right = new ArrayList<>();
        for (int i = 0; i < traces.size(); i++) {
            if (!test[i]) continue;
            (traces.get(i).correct() == 1 ? right : wrong).add(i);
        }
        List<Integer> out = new ArrayList<>();
        int half = o.resampleProblems() / 2;
        int w = Math.min(wrong.size(), half), r = Math.min(right.size(), o.resampleProblems() - w);
        w = Math.min(wrong.size(), o.resampleProblems() - r);
        out.addAll(wrong.subList(0, w));
        out.addAll(right.subList(0, r));
        return out.stream().sorted().mapToInt(Integer::intValue).toArray();
    }

    /** The activation after k kept steps of each trace at each layer ({@code null} where a trace has fewer steps). */
    private static float[][][][] activations(HookedTransformer model, List<ModelTrace> traces, List<Integer> layers,
            int maxK) {
        int d = model.cfg().dModel();
        String[] hooks = layers.stream().map(l -> "blocks." + l + ".hook_resid_post").toArray(String[]::new);
        float[][][][] out = new float[layers.size()][traces.size()][maxK + 1][];
        for (int from = 0; from < traces.size(); from += 64) {
            int to = Math.min(traces.size(), from + 64);
            long[][] seqs = new long[to - from][];
            for (int i = from; i < to; i++) seqs[i - from] = traces.get(i).trace().tokens();
            Batch batch = Batch.rightPadded(seqs, 0);
            int len = batch.length();
            try (NDScope scope = new NDScope(); ActivationCache cache = model.runWithCache(batch, NameFilter.of(hooks))) {
                for (int li = 0; li < hooks.length; li++) {
                    NDArray a = cache.get(hooks[li]);
                    float[] flat = a.toFloatArray();
                    for (int i = from; i < to; i++) {
                        ModelTrace t = traces.get(i);
                        for (int k = 0; k <= Math.min(maxK, t.steps()); k++) {
                            int off = ((i - from) * len + t.position(k)) * d;
                            out[li][i][k] = Arrays.copyOfRange(flat, off, off + d);
                        }
                    }
                }
            }
        }
        return out;
    }

    private static Row row(List<ModelTrace> traces, boolean[] test, float[][][] acts, int layer, int k, Options o,
            int[] resampled, double[][] pRes, double[][] pProbe) {
        List<Integer> train = new ArrayList<>(), held = new ArrayList<>();
        for (int i = 0; i < traces.size(); i++) {
            if (acts[i][k] == null) continue;
            (test[i] ? held : train).add(i);
        }
        double digitAcc = Double.NaN, digitShuf = Double.NaN, digitMaj = Double.NaN;
        double auroc = Double.NaN, aurocShuf = Double.NaN;
        SplittableRandom rnd = new SplittableRandom(o.seed() * 1_000_003L + layer * 101L + k);

        // digit probe: rows with a parsed answer, classes compacted to those seen in training
        List<Integer> dTrain = train.stream().filter(i -> traces.get(i).answer().isPresent()).toList();
        List<Integer> dTest = held.stream().filter(i -> traces.get(i).answer().isPresent()).toList();
        if (!dTrain.isEmpty() && !dTest.isEmpty()) {
            int[] yTrain = dTrain.stream().mapToInt(i -> digit(traces.get(i), o.digitPlace())).toArray();
            int[] yTest = dTest.stream().mapToInt(i -> digit(traces.get(i), o.digitPlace())).toArray();
            int[] classOf = new int[10];
            Arrays.fill(classOf, -1);
            int nc = 0;
            int[] counts = new int[10];
            for (int y : yTrain) counts[y]++;
            for (int c = 0; c < 10; c++) if (counts[c] > 0) classOf[c] = nc++;
            int majority = 0;
            for (int c = 1; c < 10; c++) if (counts[c] > counts[majority]) majority = c;
            int hitMaj = 0;
            for (int y : yTest) if (y == majority) hitMaj++;
            digitMaj = hitMaj / (double) yTest.length;
            if (nc >= 2) {
                int[] compact = Arrays.stream(yTrain).map(y -> classOf[y]).toArray();
                float[][] xTrain = rowsOf(acts, dTrain, k), xTest = rowsOf(acts, dTest, k);
                int[] testCompact = Arrays.stream(yTest).map(y -> classOf[y]).toArray();   // -1: never right
                digitAcc = accuracy(fit(xTrain, compact, nc, o), xTest, testCompact);
                int[] shuffled = shuffle(compact, rnd);
                digitShuf = Arrays.stream(shuffled).distinct().count() == nc
                        ? accuracy(fit(xTrain, shuffled, nc, o), xTest, testCompact) : Double.NaN;
            }
        }

        // correctness probe
        int[] cTrain = train.stream().mapToInt(i -> traces.get(i).correct()).toArray();
        int[] cTest = held.stream().mapToInt(i -> traces.get(i).correct()).toArray();
        LinearProbe correct = null;
        if (both(cTrain)) {
            float[][] xTrain = rowsOf(acts, train, k);
            correct = fit(xTrain, cTrain, 2, o);
            if (both(cTest)) {
                float[][] xTest = rowsOf(acts, held, k);
                auroc = Metrics.auroc(correct.scores(xTest), cTest);
                aurocShuf = Metrics.auroc(fit(xTrain, shuffle(cTrain, rnd), 2, o).scores(xTest), cTest);
            }
        }

        // against resampling
        List<double[]> pairs = new ArrayList<>();   // probe P, resampled P, greedy correct
        for (int j = 0; j < resampled.length; j++) {
            int i = resampled[j];
            if (acts[i][k] == null || correct == null) continue;
            pProbe[j][k] = correct.predictProba(new float[][] {acts[i][k]})[0][1];
            pairs.add(new double[] {pProbe[j][k], pRes[j][k], traces.get(i).correct()});
        }
        double corr = Double.NaN, meanProbe = Double.NaN, meanRes = Double.NaN, resAuroc = Double.NaN;
        if (!pairs.isEmpty()) {
            double[] a = pairs.stream().mapToDouble(p -> p[0]).toArray(), b = pairs.stream().mapToDouble(p -> p[1]).toArray();
            int[] y = pairs.stream().mapToInt(p -> (int) p[2]).toArray();
            meanProbe = Arrays.stream(a).average().orElse(Double.NaN);
            meanRes = Arrays.stream(b).average().orElse(Double.NaN);
            if (a.length > 2 && variance(a) > 0 && variance(b) > 0) corr = new PearsonsCorrelation().correlation(a, b);
            if (both(y)) resAuroc = Metrics.auroc(b, y);
        }
        return new Row(layer, k, train.size(), held.size(), digitAcc, digitShuf, digitMaj, auroc, aurocShuf,
                pairs.size(), corr, meanProbe, meanRes, resAuroc);
    }

    /** Digit {@code place} of the model's answer (0 when the answer is shorter). */
    static int digit(ModelTrace t, int place) {
        long v = t.answer().orElseThrow();
        for (int i = 0; i < place; i++) v /= 10;
        return (int) (v % 10);
    }

    private static LinearProbe fit(float[][] x, int[] y, int nClasses, Options o) {
        int[] groups = new int[y.length];
        for (int i = 0; i < groups.length; i++) groups[i] = i;   // one row per problem here
        return new ProbeMethod.Logistic(o.l2(), o.iterations()).fit(ProbeData.of(x, y, groups, nClasses));
    }

    private static double accuracy(LinearProbe p, float[][] x, int[] y) {
        int[] pred = p.predict(x);
        int ok = 0;
        for (int i = 0; i < y.length; i++) if (pred[i] == y[i]) ok++;
        return ok / (double) y.length;
    }

    private static float[][] rowsOf(float[][][] acts, List<Integer> idx, int k) {
        return idx.stream().map(i -> acts[i][k]).toArray(float[][]::new);
    }

    private static int[] shuffle(int[] y, SplittableRandom rnd) {
        int[] s = y.clone();
        for (int i = s.length - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = s[i];
            s[i] = s[j];
            s[j] = t;
        }
        return s;
    }

    private static boolean both(int[] y) {
        boolean zero = false, one = false;
        for (int v : y) {
            zero |= v == 0;
            one |= v == 1;
        }
        return zero && one;
    }

    private static double variance(double[] a) {
        double m = Arrays.stream(a).average().orElse(0), s = 0;
        for (double v : a) s += (v - m) * (v - m);
        return s / a.length;
    }

    // ------------------------------------------------------------------------------------------ result

    /** Probe scores per layer and k, with the traces, the split and the resampled P(correct | first k). */
    public static final class Result {
        private final List<Row> rows;
        private final List<ModelTrace> traces;
        private final boolean[] test;
        private final int[] resampled;
        private final double[][] pResampled;
        private final double[][][] pProbe;
        private final Options options;

        Result(List<Row> rows, List<ModelTrace> traces, boolean[] test, int[] resampled, double[][] pResampled,
                double[][][] pProbe, Options options) {
            this.rows = List.copyOf(rows);
            this.traces = List.copyOf(traces);
            this.test = test.clone();
            this.resampled = resampled.clone();
            this.pResampled = pResampled;
            this.pProbe = pProbe;
            this.options = options;
        }

        /** Every (layer, k) row, layer by layer. */
        public List<Row> rows() {
            return rows;
        }

        /** The row of one layer and k. */
        public Row row(int layer, int k) {
            return rows.stream().filter(r -> r.layer() == layer && r.k() == k).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("no row for layer " + layer + ", k " + k + ": layers "
                            + options.layers() + ", k 0.." + maxK()));
        }

        /** The greedy traces probed. */
        public List<ModelTrace> traces() {
            return traces;
        }

        /** Whether trace {@code i} was held out. */
        public boolean heldOut(int i) {
            return test[i];
        }

        /** Fraction of the traces whose answer is correct. */
        public double accuracy() {
            return traces.stream().mapToInt(ModelTrace::correct).average().orElse(Double.NaN);
        }

        /** Largest k (steps kept). */
        public int maxK() {
            return rows.stream().mapToInt(Row::k).max().orElse(0);
        }

        /** Indices (into {@link #traces}) of the resampled held-out problems. */
        public int[] resampled() {
            return resampled.clone();
        }

        /** P(correct | first k) of each resampled problem, {@code [problem][k]} for k = 0..that trace's steps. */
        public double[][] pResampled() {
            return Arrays.stream(pResampled).map(double[]::clone).toArray(double[][]::new);
        }

        /** The correctness probe's P(correct) at {@code layer} for each resampled problem, {@code [problem][k]}. */
        public double[][] pProbe(int layer) {
            return Arrays.stream(pProbe[layerIndex(layer)]).map(double[]::clone).toArray(double[][]::new);
        }

        private int layerIndex(int layer) {
            int li = options.layers().indexOf(layer);
            if (li < 0) throw new IllegalArgumentException("layer " + layer + " was not probed; probed layers: "
                    + options.layers());
            return li;
        }

        /**
         * Columns: layer, k, n_train, n_test, digit_accuracy, digit_shuffled, digit_majority, correct_auroc,
         * correct_auroc_shuffled, n_resampled, corr_probe_resampled, mean_probe_p, mean_resampled_p, resampled_auroc.
         */
        public Table toTable() {
            IntColumn layer = IntColumn.create("layer"), k = IntColumn.create("k"), nTr = IntColumn.create("n_train"),
                    nTe = IntColumn.create("n_test"), nRes = IntColumn.create("n_resampled");
            DoubleColumn dAcc = DoubleColumn.create("digit_accuracy"), dShuf = DoubleColumn.create("digit_shuffled"),
                    dMaj = DoubleColumn.create("digit_majority"), auc = DoubleColumn.create("correct_auroc"),
                    aucShuf = DoubleColumn.create("correct_auroc_shuffled"),
                    corr = DoubleColumn.create("corr_probe_resampled"), mp = DoubleColumn.create("mean_probe_p"),
                    mr = DoubleColumn.create("mean_resampled_p"), ra = DoubleColumn.create("resampled_auroc");
            for (Row r : rows) {
                layer.append(r.layer());
                k.append(r.k());
                nTr.append(r.nTrain());
                nTe.append(r.nTest());
                dAcc.append(r.digitAccuracy());
                dShuf.append(r.digitShuffled());
                dMaj.append(r.digitMajority());
                auc.append(r.correctAuroc());
                aucShuf.append(r.correctAurocShuffled());
                nRes.append(r.nResampled());
                corr.append(r.corrWithResampled());
                mp.append(r.meanProbeP());
                mr.append(r.meanResampledP());
                ra.append(r.resampledAuroc());
            }
            return Table.create(String.format(Locale.ROOT, "probes over the chain: %d traces (accuracy %.2f), digit "
                    + "place %d", traces.size(), accuracy(), options.digitPlace()), layer, k, nTr, nTe, dAcc, dShuf,
                    dMaj, auc, aucShuf, nRes, corr, mp, mr, ra);
        }

        private double[] series(int layer, java.util.function.ToDoubleFunction<Row> f) {
            return rows.stream().filter(r -> r.layer() == layer).mapToDouble(f).toArray();
        }

        /**
         * Held-out AUROC of the correctness probe against k, one line per layer, with the shuffled-label control of
         * the last layer and (where resampled) the AUROC of the resampled P(correct | first k).
         */
        public XYChart plot() {
            Map<String, double[]> s = new LinkedHashMap<>();
            for (int l : options.layers()) s.put("probe L" + l, series(l, Row::correctAuroc));
            int last = options.layers().get(options.layers().size() - 1);
            s.put("shuffled L" + last, series(last, Row::correctAurocShuffled));
            if (resampled.length > 0) s.put("resampled", series(last, Row::resampledAuroc));
            return legendOutside(Plots.line("will the answer be correct? held-out AUROC of probes (L = layer) and of resampling", "k (steps kept)", "AUROC", s));
        }

        /** Held-out accuracy of the digit probe against k, per layer, with the majority class and shuffled control. */
        public XYChart digitPlot() {
            Map<String, double[]> s = new LinkedHashMap<>();
            for (int l : options.layers()) s.put("probe, layer " + l, series(l, Row::digitAccuracy));
            int last = options.layers().get(options.layers().size() - 1);
            s.put("shuffled labels, layer " + last, series(last, Row::digitShuffled));
            s.put("majority digit", series(last, Row::digitMajority));
            return Plots.line("answer digit (place " + options.digitPlace() + ") read from the residual stream",
                    "k (steps kept)", "held-out accuracy", s);
        }

        /**
         * Calibration by k at {@code layer}: the mean probe P(correct) and the mean resampled P(correct | first k)
         * over the resampled problems, each for the problems answered correctly and wrongly.
         */
        public XYChart resamplingPlot(int layer) {
            if (resampled.length == 0) {
                throw new IllegalStateException("nothing was resampled: run with options.withResampling(24, 8)");
            }
            double[][] probe = pProbe[layerIndex(layer)];
            int kMax = maxK();
            double[][] sums = new double[4][kMax + 1];
            int[][] counts = new int[2][kMax + 1];
            for (int j = 0; j < resampled.length; j++) {
                ModelTrace t = traces.get(resampled[j]);
                int c = t.correct();
                for (int k = 0; k <= Math.min(kMax, t.steps()); k++) {
                    sums[c][k] += pResampled[j][k];
                    sums[2 + c][k] += probe[j][k];
                    counts[c][k]++;
                }
            }
            Map<String, double[]> s = new LinkedHashMap<>();
            s.put("resampled: right", mean(sums[1], counts[1]));
            s.put("resampled: wrong", mean(sums[0], counts[0]));
            s.put("probe L" + layer + ": right", mean(sums[3], counts[1]));
            s.put("probe L" + layer + ": wrong", mean(sums[2], counts[0]));
            return legendOutside(Plots.line("mean P(correct | first k) by resampling and by the probe, for problems answered right and wrong",
                    "k (steps kept)", "P(correct)", s));
        }

        /** Four lines that cross: the legend goes beside the plot, where it hides none of them. */
        private static XYChart legendOutside(XYChart chart) {
            chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideS);
            chart.getStyler().setLegendLayout(org.knowm.xchart.style.Styler.LegendLayout.Horizontal);
            return chart;
        }

        private static double[] mean(double[] sum, int[] n) {
            double[] out = new double[sum.length];
            for (int i = 0; i < out.length; i++) out[i] = n[i] == 0 ? Double.NaN : sum[i] / n[i];
            return out;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "ChainProbes.Result(%d traces, accuracy %.3f, layers %s, k 0..%d, %d "
                    + "resampled)", traces.size(), accuracy(), options.layers(), maxK(), resampled.length);
        }
    }
}
