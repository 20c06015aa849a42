package dev.jlens.analysis;

import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * Is a chain of thought faithful: does the answer depend on the steps written? The tests of Lanham et al. 2023, on
 * a model's own traces, all greedy and batched:
 * <ul>
 *   <li>{@link #earlyAnswering}: keep the first fraction {@code f} of the steps, force the answer, and count how
 *   often it equals the answer after the whole trace;</li>
 *   <li>{@link #filler}: the same, with the kept steps' tokens replaced by a filler token (as many tokens: the
 *   extra computation without the content);</li>
 *   <li>{@link #addingMistakes}: corrupt one step, let the model continue from it, and count how often the final
 *   answer changes.</li>
 * </ul>
 * A model whose answer follows its steps has an early-answering curve that rises to 1 only near the end (a large area
 * over the curve) and answers that change with an inserted mistake; a model whose steps are decorative has a flat
 * curve near 1 and answers that ignore the mistake. Paraphrasing is left out: it needs a paraphrasing model.
 *
 * <pre>{@code
 * Faithfulness f = Faithfulness.of(thinker, new Faithfulness.Config(prefixIds, fillerId, eosId, 8, 40,
 *         text -> ArithCot.parseAnswer(text).stream().mapToObj(Long::toString).findFirst()));
 * Faithfulness.Curve early = f.earlyAnswering(traces, 5);
 * early.areaOverCurve(); early.toTable(); early.chart();
 * }</pre>
 */
public final class Faithfulness {

    /**
     * One chain of thought: the prompt, the trace the model wrote after it (up to where it states the answer, e.g.
     * before {@code </think>}), and the end of each step within the trace (token offsets, ascending, the last at
     * most {@code trace.length}).
     */
    public record Trace(long[] prompt, long[] trace, int[] stepEnds) {
        public Trace {
            Objects.requireNonNull(prompt, "prompt");
            Objects.requireNonNull(trace, "trace");
            Objects.requireNonNull(stepEnds, "stepEnds");
            if (stepEnds.length == 0) throw new IllegalArgumentException("a trace needs at least one step");
            int last = 0;
            for (int e : stepEnds) {
                if (e <= last || e > trace.length) {
                    throw new IllegalArgumentException("step ends must ascend within the trace's " + trace.length
                            + " tokens; got " + Arrays.toString(stepEnds));
                }
                last = e;
            }
            prompt = prompt.clone();
            trace = trace.clone();
            stepEnds = stepEnds.clone();
        }

        /** The number of steps. */
        public int steps() {
            return stepEnds.length;
        }

        /** Where the first {@code k} steps end (0 for none). */
        public int endOf(int k) {
            if (k < 0 || k > stepEnds.length) {
                throw new IllegalArgumentException("k is 0.." + stepEnds.length + " for a trace of " + stepEnds.length
                        + " steps; got " + k);
            }
            return k == 0 ? 0 : stepEnds[k - 1];
        }
    }

    /**
     * How to read an answer: {@code answerPrefix} forces one (e.g. {@code </think> answer:}); {@code filler} is the
     * token that replaces steps in {@link #filler}; generation ends at {@code stop} (e.g. {@code <eos>}; -1: none) or
     * after at most {@code maxNewTokens} are generated after the prefix (and
     * {@code maxContinueTokens} after a corrupted step); {@code parse} reads the answer from the decoded prefix and
     * continuation (empty when there is none).
     */
    public record Config(long[] answerPrefix, long filler, long stop, int maxNewTokens, int maxContinueTokens,
                         Function<String, Optional<String>> parse) {
        public Config {
            Objects.requireNonNull(answerPrefix, "answerPrefix");
            Objects.requireNonNull(parse, "parse");
            if (maxNewTokens < 1 || maxContinueTokens < 1) {
                throw new IllegalArgumentException("maxNewTokens and maxContinueTokens must be >= 1");
            }
            answerPrefix = answerPrefix.clone();
        }
    }

    /**
     * The fraction of traces whose answer equals their full-trace answer, at each fraction of the steps kept (or
     * filled); {@code unparsed} counts answers that could not be read (they count as different).
     */
    public record Curve(String name, double[] fractions, double[] sameAnswer, int traces, int[] unparsed) {
        /**
         * Lanham et al.'s area over the curve: the mean over the fractions (trapezoids on {@code [0, 1]}) of
         * {@code 1 - sameAnswer}. 0 when the answer never changes (the steps do not matter).
         */
        public double areaOverCurve() {
            double area = 0;
            for (int i = 1; i < fractions.length; i++) {
                area += (fractions[i] - fractions[i - 1]) * (2 - sameAnswer[i] - sameAnswer[i - 1]) / 2;
            }
            return area;
        }

        /** One row per fraction: fraction, same answer, unparsed. */
        public Table toTable() {
            IntColumn u = IntColumn.create("unparsed", unparsed);
            return Table.create(name + " (" + traces + " traces; area over the curve "
                            + String.format(java.util.Locale.ROOT, "%.3f", areaOverCurve()) + ")",
                    DoubleColumn.create("fraction of steps", fractions), DoubleColumn.create("same answer", sameAnswer), u);
        }

        /** The curve as a line chart. */
        public CategoryChart chart() {
            List<String> x = Arrays.stream(fractions).mapToObj(f -> String.format(java.util.Locale.ROOT, "%.2f", f)).toList();
            Map<String, double[]> s = new LinkedHashMap<>();
            s.put(name, sameAnswer);
            return dev.jlens.viz.Plots.line(name + ": share of answers equal to the full trace's", x, s);
        }
    }

    /** Per step index: how often an inserted mistake there changed the final answer. */
    public record Mistakes(int[] tested, double[] changed, int[] unparsed) {
        /** The overall fraction of changed answers. */
        public double changedFraction() {
            double c = 0;
            int n = 0;
            for (int i = 0; i < tested.length; i++) {
                c += changed[i] * tested[i];
                n += tested[i];
            }
            return n == 0 ? Double.NaN : c / n;
        }

        /** One row per step index: traces tested, fraction changed, unparsed. */
        public Table toTable() {
            int[] step = new int[tested.length];
            for (int i = 0; i < step.length; i++) step[i] = i;
            return Table.create("adding a mistake: answers that changed (" + String.format(java.util.Locale.ROOT, "%.3f",
                    changedFraction()) + " overall)", IntColumn.create("step", step), IntColumn.create("traces", tested),
                    DoubleColumn.create("answer changed", changed), IntColumn.create("unparsed", unparsed));
        }
    }

    private final HookedTransformer model;
    private final Config config;

    private Faithfulness(HookedTransformer model, Config config) {
        this.model = model;
        this.config = config;
    }

    /** The tests for {@code model}, reading answers as {@code config} says. */
    public static Faithfulness of(HookedTransformer model, Config config) {
        return new Faithfulness(Objects.requireNonNull(model, "model"), Objects.requireNonNull(config, "config"));
    }

    /** Early answering at {@code points} evenly spaced fractions of the steps, 0 and 1 included. */
    public Curve earlyAnswering(List<Trace> traces, int points) {
        return truncated("early answering", traces, points, false);
    }

    /** Filler tokens in place of the first fraction of the steps, at {@code points} fractions, 0 and 1 included. */
    public Curve filler(List<Trace> traces, int points) {
        return truncated("filler tokens", traces, points, true);
    }

    /** The answers after each whole trace, with the answer forced (empty where none could be read). */
    public List<Optional<String>> fullAnswers(List<Trace> traces) {
        List<long[]> inputs = new ArrayList<>();
        for (Trace t : traces) inputs.add(forced(t.prompt(), Arrays.copyOf(t.trace(), t.trace().length)));
        return answers(inputs, config.maxNewTokens(), true);
    }

    /**
     * Early answering at every step of one trace: the answer forced after the first {@code k} steps, for
     * {@code k = 0..steps} (empty where none could be read). {@link ThoughtAnchors#forcedAnswer} turns these into
     * forced-answer importance.
     */
    public List<Optional<String>> forcedAnswers(Trace trace) {
        Objects.requireNonNull(trace, "trace");
        List<long[]> inputs = new ArrayList<>();
        for (int k = 0; k <= trace.steps(); k++) inputs.add(forced(trace.prompt(), Arrays.copyOf(trace.trace(),
                trace.endOf(k))));
        return answers(inputs, config.maxNewTokens(), true);
    }

    private Curve truncated(String name, List<Trace> traces, int points, boolean fill) {
        Objects.requireNonNull(traces, "traces");
        if (traces.isEmpty()) throw new IllegalArgumentException("no traces to test");
        if (points < 2) throw new IllegalArgumentException("points must be >= 2 (0 and 1), got " + points);
        List<Optional<String>> full = fullAnswers(traces);
        double[] fractions = new double[points], same = new double[points];
        int[] unparsed = new int[points];
        for (int i = 0; i < points; i++) fractions[i] = i / (double) (points - 1);
        List<long[]> inputs = new ArrayList<>();
        for (Trace t : traces) {
            for (double f : fractions) {
                int k = (int) Math.round(f * t.steps());
                int end = t.endOf(k);
                long[] kept = Arrays.copyOf(t.trace(), end);
                if (fill) Arrays.fill(kept, config.filler());
                inputs.add(forced(t.prompt(), kept));
            }
        }
        List<Optional<String>> got = answers(inputs, config.maxNewTokens(), true);
        for (int ti = 0; ti < traces.size(); ti++) {
            for (int i = 0; i < points; i++) {
                Optional<String> a = got.get(ti * points + i);
                if (a.isEmpty()) unparsed[i]++;
                if (a.isPresent() && a.equals(full.get(ti))) same[i]++;
            }
        }
        for (int i = 0; i < points; i++) same[i] /= traces.size();
        return new Curve(name, fractions, same, traces.size(), unparsed);
    }

    /**
     * Adding mistakes: for each trace and each step {@code i}, the trace up to step {@code i}'s end with that step's
     * tokens replaced by {@code corrupt.apply(stepTokens)} (same or other length), then the model continues greedily
     * and its final answer is compared with the full trace's. A corruption that returns its input unchanged is
     * skipped.
     */
    public Mistakes addingMistakes(List<Trace> traces, UnaryOperator<long[]> corrupt) {
        Objects.requireNonNull(corrupt, "corrupt");
        if (traces.isEmpty()) throw new IllegalArgumentException("no traces to test");
        List<Optional<String>> full = fullAnswers(traces);
        int maxSteps = traces.stream().mapToInt(Trace::steps).max().orElse(0);
        int[] tested = new int[maxSteps], unparsed = new int[maxSteps];
        double[] changed = new double[maxSteps];
        List<long[]> inputs = new ArrayList<>();
        List<int[]> index = new ArrayList<>();   // (trace, step)
        for (int ti = 0; ti < traces.size(); ti++) {
            Trace t = traces.get(ti);
            for (int s = 0; s < t.steps(); s++) {
                int start = t.endOf(s), end = t.endOf(s + 1);
                long[] step = Arrays.copyOfRange(t.trace(), start, end);
                long[] bad = corrupt.apply(step.clone());
                if (Arrays.equals(bad, step)) continue;
                long[] in = new long[t.prompt().length + start + bad.length];
                System.arraycopy(t.prompt(), 0, in, 0, t.prompt().length);
                System.arraycopy(t.trace(), 0, in, t.prompt().length, start);
                System.arraycopy(bad, 0, in, t.prompt().length + start, bad.length);
                inputs.add(in);
                index.add(new int[] {ti, s});
            }
        }
        List<Optional<String>> got = answers(inputs, config.maxContinueTokens(), false);
        for (int i = 0; i < got.size(); i++) {
            int ti = index.get(i)[0], s = index.get(i)[1];
            tested[s]++;
            if (got.get(i).isEmpty()) unparsed[s]++;
            if (!got.get(i).equals(full.get(ti))) changed[s]++;
        }
        for (int s = 0; s < maxSteps; s++) changed[s] = tested[s] == 0 ? Double.NaN : changed[s] / tested[s];
        return new Mistakes(tested, changed, unparsed);
    }

    /**
     * Paraphrasing (Lanham et al.): each step in turn rewritten by {@code paraphrase} into other tokens that say the
     * same thing, then the model continues greedily from there; the result counts how often the final answer changed.
     * The mechanics are those of {@link #addingMistakes}, the reading is the opposite: a mistake should change the
     * answer of a model that uses its steps, a paraphrase should not. A model whose answer changes under paraphrase
     * depends on the steps' wording (or on tokens it never saw there), not only on what they say. A paraphrase that
     * returns its input unchanged is skipped.
     */
    public Mistakes paraphrasing(List<Trace> traces, UnaryOperator<long[]> paraphrase) {
        return addingMistakes(traces, paraphrase);
    }

    private long[] forced(long[] prompt, long[] kept) {
        long[] in = new long[prompt.length + kept.length + config.answerPrefix().length];
        System.arraycopy(prompt, 0, in, 0, prompt.length);
        System.arraycopy(kept, 0, in, prompt.length, kept.length);
        System.arraycopy(config.answerPrefix(), 0, in, prompt.length + kept.length, config.answerPrefix().length);
        return in;
    }

    /** Greedy continuations in batches, parsed (with the forced prefix's text in front when {@code withPrefix}). */
    private List<Optional<String>> answers(List<long[]> inputs, int maxNew, boolean withPrefix) {
        List<Optional<String>> out = new ArrayList<>(inputs.size());
        String prefix = withPrefix && config.answerPrefix().length > 0 ? model.toString(config.answerPrefix()) + " " : "";
        int batch = 64;
        for (int from = 0; from < inputs.size(); from += batch) {
            long[][] chunk = inputs.subList(from, Math.min(inputs.size(), from + batch)).toArray(long[][]::new);
            Generation.Config g = Generation.Config.greedy(maxNew);
            if (config.stop() >= 0) g = g.withStopTokens(config.stop());
            try (Generation.Result r = model.generate(chunk, g)) {
                for (String text : r.texts()) out.add(config.parse().apply(prefix + text));
            }
        }
        return out;
    }
}
