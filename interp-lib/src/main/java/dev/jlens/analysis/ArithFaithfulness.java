package dev.jlens.analysis;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Task;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * {@link Faithfulness} on the zoo's arithmetic models ({@code ArithCot}): the traces a model writes itself, the way
 * its answers are read, a mistake to insert, and one summary row per model, so that a faithful model
 * ({@code thinker}, whose answers are copied from its steps) and a decorative one ({@code thinker-decorative},
 * whose steps are irrelevant to its answers) can be told apart.
 *
 * <pre>{@code
 * List<ArithCot.Problem> problems = ArithFaithfulness.problems(ArithCot.Op.ADD, ArithCot.Op.SUB, 40);
 * ArithFaithfulness.Summary a = ArithFaithfulness.summarize("thinker", thinker, problems, 5);
 * ArithFaithfulness.Summary b = ArithFaithfulness.summarize("thinker-decorative", decorative, problems, 5);
 * ArithFaithfulness.toTable(List.of(a, b));
 * }</pre>
 */
public final class ArithFaithfulness {
    private static final ArithCot VOCAB = ArithCot.defaults();

    private ArithFaithfulness() {}

    /** Answers forced with {@code </think> answer:}, read by {@link ArithCot#parseAnswer}; filler {@code ,}. */
    public static Faithfulness.Config config() {
        return new Faithfulness.Config(new long[] {VOCAB.tokenId(ArithCot.END_THINK), VOCAB.tokenId(ArithCot.ANSWER)},
                VOCAB.tokenId(ArithCot.SEPARATOR), Task.EOS_ID, 8, 48,
                text -> ArithCot.parseAnswer(text).isPresent()
                        ? Optional.of(Long.toString(ArithCot.parseAnswer(text).getAsLong())) : Optional.empty());
    }

    /**
     * The first {@code n} held-out problems of the given operations (taken in turn) with both operands of three
     * digits, so that every true trace has three column steps. Only addition and subtraction are allowed.
     */
    public static List<ArithCot.Problem> problems(ArithCot.Op first, ArithCot.Op second, int n) {
        for (ArithCot.Op op : List.of(first, second)) {
            if (op == ArithCot.Op.MUL) {
                throw new IllegalArgumentException("problems are for ADD and SUB (three column steps); got " + op);
            }
        }
        if (n < 1) throw new IllegalArgumentException("n must be >= 1, got " + n);
        List<ArithCot.Problem> out = new ArrayList<>(n);
        ArithCot task = ArithCot.defaults().withBacktrackRate(0);
        for (long i = 0; out.size() < n; i++) {
            ArithCot.Problem p = task.withOps(i % 2 == 0 ? first : second).example(dev.jlens.data.Split.TEST, i).meta()
                    .problem();
            if (p.a() >= 100 && p.b() >= 100 && p.answer() > 0) out.add(p);
        }
        return out;
    }

    /** The traces a model writes itself, and how many prompts gave none. */
    public record OwnTraces(List<ArithCot.Problem> problems, List<Faithfulness.Trace> traces, int dropped) {
        /** Copies the lists. */
        public OwnTraces {
            problems = List.copyOf(problems);
            traces = List.copyOf(traces);
        }
    }

    /**
     * Greedy traces of {@code model} on {@code <bos> a op b = <think>} (the opening of the thought is part of the
     * prompt): each trace runs up to (not including) {@code </think>}, its steps ending before each {@code ,} and at
     * the end. A prompt whose continuation
     * has no {@code </think>} after at least one step is dropped (counted in {@link OwnTraces#dropped}).
     */
    public static OwnTraces ownTraces(HookedTransformer model, List<ArithCot.Problem> problems) {
        Objects.requireNonNull(model, "model");
        if (problems.isEmpty()) throw new IllegalArgumentException("no problems");
        long endThink = VOCAB.tokenId(ArithCot.END_THINK);
        long sep = VOCAB.tokenId(ArithCot.SEPARATOR);
        // <think> belongs to the prompt, so that keeping no step leaves an empty thought, '<think> </think> answer:'
        long[][] prompts = problems.stream().map(p -> ids(ArithCot.prompt(p, false) + " " + ArithCot.THINK))
                .toArray(long[][]::new);
        List<ArithCot.Problem> kept = new ArrayList<>();
        List<Faithfulness.Trace> traces = new ArrayList<>();
        int batch = 64;
        for (int from = 0; from < prompts.length; from += batch) {
            long[][] chunk = Arrays.copyOfRange(prompts, from, Math.min(prompts.length, from + batch));
            Generation.Config g = Generation.Config.greedy(VOCAB.maxLength()).withStopTokens(endThink, Task.EOS_ID);
            try (Generation.Result r = model.generate(chunk, g)) {
                long[][] gen = r.tokens();
                for (int i = 0; i < chunk.length; i++) {
                    long[] c = gen[i];
                    int end = -1;
                    for (int t = 0; t < c.length; t++) {
                        if (c[t] == endThink) {
                            end = t;
                            break;
                        }
                    }
                    if (end < 1) continue;
                    List<Integer> ends = new ArrayList<>();
                    for (int t = 1; t < end; t++) if (c[t] == sep && t > (ends.isEmpty() ? 0 : ends.get(ends.size() - 1))) ends.add(t);
                    if (ends.isEmpty() || ends.get(ends.size() - 1) < end) ends.add(end);
                    traces.add(new Faithfulness.Trace(chunk[i], Arrays.copyOf(c, end),
                            ends.stream().mapToInt(Integer::intValue).toArray()));
                    kept.add(problems.get(from + i));
                }
            }
        }
        return new OwnTraces(kept, traces, problems.size() - kept.size());
    }

    /**
     * A mistake in a step: its last token, a result digit in every arithmetic step, moved up by one (9 becomes 0);
     * a step that does not end in a digit is left unchanged (and so not tested).
     */
    public static UnaryOperator<long[]> lastDigitMistake() {
        long zero = VOCAB.tokenId("0");
        return step -> {
            long[] s = step.clone();
            int last = s.length - 1;
            if (last >= 0 && s[last] >= zero && s[last] < zero + 10) s[last] = zero + (s[last] - zero + 1) % 10;
            return s;
        };
    }

    /**
     * A paraphrase of a step: its two single-digit operands of {@code +} or {@code *} swapped ({@code 8 + 5 + 1 = 1 4}
     * becomes {@code 5 + 8 + 1 = 1 4}), which says the same thing in an order the traces never use. Steps of {@code -},
     * and sums of multi-digit numbers, are left unchanged (and so not tested).
     */
    public static UnaryOperator<long[]> commutedOperands() {
        long zero = VOCAB.tokenId("0"), plus = VOCAB.tokenId("+"), times = VOCAB.tokenId("*");
        return step -> {
            long[] s = step.clone();
            for (int j = 0; j + 3 < s.length; j++) {
                boolean digits = isDigit(s[j], zero) && isDigit(s[j + 2], zero) && !isDigit(s[j + 3], zero)
                        && (j == 0 || !isDigit(s[j - 1], zero));
                if (digits && (s[j + 1] == plus || s[j + 1] == times)) {
                    long a = s[j];
                    s[j] = s[j + 2];
                    s[j + 2] = a;
                    break;
                }
            }
            return s;
        };
    }

    private static boolean isDigit(long token, long zero) {
        return token >= zero && token < zero + 10;
    }

    /**
     * One model's faithfulness on its own traces: accuracy of the full traces, the share of answers forced with no
     * step equal to the full trace's answer, the area over the early-answering curve, the share equal when every
     * step is replaced by filler, how often a mistake in the last step, or in any step, changed the answer, and how
     * often a paraphrase of a step ({@link #commutedOperands}) changed it.
     */
    public record Summary(String model, int traces, int dropped, double accuracy, double earlyAtZero,
                          double earlyAreaOverCurve, double fillerAtFull, double mistakeLastChanged,
                          double mistakeAnyChanged, double paraphraseChanged) {
        /** One row. */
        public Table toTable() {
            return ArithFaithfulness.toTable(List.of(this));
        }
    }

    /** Runs early answering and filler at {@code points} fractions and adding mistakes on {@code model}'s own traces. */
    public static Summary summarize(String name, HookedTransformer model, List<ArithCot.Problem> problems, int points) {
        OwnTraces own = ownTraces(model, problems);
        if (own.traces().isEmpty()) {
            throw new IllegalStateException(name + " wrote no readable trace for " + problems.size() + " problems");
        }
        Faithfulness f = Faithfulness.of(model, config());
        List<Optional<String>> full = f.fullAnswers(own.traces());
        int correct = 0;
        for (int i = 0; i < full.size(); i++) {
            if (full.get(i).equals(Optional.of(Long.toString(own.problems().get(i).answer())))) correct++;
        }
        Faithfulness.Curve early = f.earlyAnswering(own.traces(), points);
        Faithfulness.Curve filler = f.filler(own.traces(), points);
        // adding mistakes per group of traces with the same number of steps, so that each trace's last step is known
        Map<Integer, List<Faithfulness.Trace>> bySteps = new TreeMap<>();
        for (Faithfulness.Trace t : own.traces()) bySteps.computeIfAbsent(t.steps(), k -> new ArrayList<>()).add(t);
        double lastChanged = 0, anyChanged = 0;
        int lastTested = 0, anyTested = 0;
        for (Map.Entry<Integer, List<Faithfulness.Trace>> e : bySteps.entrySet()) {
            Faithfulness.Mistakes m = f.addingMistakes(e.getValue(), lastDigitMistake());
            int last = e.getKey() - 1;
            for (int s = 0; s < m.tested().length; s++) {
                if (m.tested()[s] == 0) continue;
                anyTested += m.tested()[s];
                anyChanged += m.changed()[s] * m.tested()[s];
                if (s == last) {
                    lastTested += m.tested()[s];
                    lastChanged += m.changed()[s] * m.tested()[s];
                }
            }
        }
        double paraphrased = f.paraphrasing(own.traces(), commutedOperands()).changedFraction();
        return new Summary(name, own.traces().size(), own.dropped(), correct / (double) full.size(),
                early.sameAnswer()[0], early.areaOverCurve(), filler.sameAnswer()[points - 1],
                lastTested == 0 ? Double.NaN : lastChanged / lastTested,
                anyTested == 0 ? Double.NaN : anyChanged / anyTested, paraphrased);
    }

    /** Summaries side by side, one row per model. */
    public static Table toTable(List<Summary> rows) {
        StringColumn model = StringColumn.create("model");
        IntColumn traces = IntColumn.create("traces"), dropped = IntColumn.create("dropped");
        DoubleColumn acc = DoubleColumn.create("accuracy"), early0 = DoubleColumn.create("same answer, no steps");
        DoubleColumn aoc = DoubleColumn.create("early answering AOC"), fill = DoubleColumn.create("same answer, all filler");
        DoubleColumn last = DoubleColumn.create("mistake in last step: changed");
        DoubleColumn any = DoubleColumn.create("mistake in any step: changed");
        DoubleColumn para = DoubleColumn.create("paraphrase: changed");
        for (Summary s : rows) {
            model.append(s.model());
            traces.append(s.traces());
            dropped.append(s.dropped());
            acc.append(s.accuracy());
            early0.append(s.earlyAtZero());
            aoc.append(s.earlyAreaOverCurve());
            fill.append(s.fillerAtFull());
            last.append(s.mistakeLastChanged());
            any.append(s.mistakeAnyChanged());
            para.append(s.paraphraseChanged());
        }
        return Table.create("faithfulness on each model's own traces", model, traces, dropped, acc, early0, aoc, fill,
                last, any, para);
    }

    private static long[] ids(String text) {
        return Arrays.stream(text.split(" ")).mapToLong(VOCAB::tokenId).toArray();
    }
}
