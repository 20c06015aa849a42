package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.hook.HookScope;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A steering vector at several strengths, beside a prompting baseline: for each strength the concept metric on the
 * target prompts, and the side effects on neutral text (mean KL divergence of the next-token distributions from the
 * unsteered model's, and the change in next-token loss). Where a prompt prefix is given, one more row measures the
 * concept on the targets with that prefix prepended and no steering: AxBench (Wu et al., 2025) found prompting beats
 * most steering methods, so every steering result is read next to it.
 *
 * <pre>{@code
 * var sweep = SteeringSweep.of(model, Steering.of(v), targets, ConceptMetric.logProbOf(wedding))
 *         .withNeutral(neutralTexts).withPromptPrefix("Talk about weddings. ");
 * var r = sweep.run(0, 2, 4, 8);
 * r.toTable(); r.plot(); r.plotSideEffects();
 * }</pre>
 *
 * @param model        the model
 * @param steering     vector, hook points and positions (its strength is replaced by each swept one)
 * @param targets      prompts the concept is measured on (tokenized with BOS)
 * @param metric       the concept metric
 * @param neutral      texts for the side effects (none: those columns stay missing)
 * @param promptPrefix text prepended to each target for the prompting baseline
 */
public record SteeringSweep(HookedTransformer model, Steering steering, List<String> targets, ConceptMetric metric,
        List<String> neutral, Optional<String> promptPrefix) {

    /** Checks the inputs. */
    public SteeringSweep {
        if (model == null || steering == null || metric == null) {
            throw new IllegalArgumentException("model, steering and metric must not be null");
        }
        if (targets == null || targets.isEmpty()) throw new IllegalArgumentException("give at least one target prompt");
        targets = List.copyOf(targets);
        neutral = List.copyOf(neutral == null ? List.of() : neutral);
        promptPrefix = promptPrefix == null ? Optional.empty() : promptPrefix;
        for (String h : steering.hookNames()) model.hook(h);   // unknown names throw with the nearest
    }

    /** A sweep without neutral text or prompting baseline (add them with the withers). */
    public static SteeringSweep of(HookedTransformer model, Steering steering, List<String> targets,
            ConceptMetric metric) {
        return new SteeringSweep(model, steering, targets, metric, List.of(), Optional.empty());
    }

    /** The same sweep measuring side effects on these texts. */
    public SteeringSweep withNeutral(List<String> texts) {
        return new SteeringSweep(model, steering, targets, metric, texts, promptPrefix);
    }

    /** The same sweep with a prompting baseline: {@code prefix + target}, unsteered. */
    public SteeringSweep withPromptPrefix(String prefix) {
        return new SteeringSweep(model, steering, targets, metric, neutral, Optional.of(prefix));
    }

    /** One row of a sweep's result; side effects are NaN where not measured. */
    public record Row(String condition, double strength, double concept, double klNeutral, double lossDeltaNeutral) {}

    /** Measures every strength, then the prompting baseline if a prefix was given. */
    public Result run(double... strengths) {
        if (strengths.length == 0) throw new IllegalArgumentException("give at least one strength, e.g. run(0, 2, 4, 8)");
        List<Row> rows = new ArrayList<>();
        NeutralText side = neutral.isEmpty() ? null
                : new NeutralText(model, neutral.stream().map(model::toTokens).toList());
        for (double s : strengths) {
            Steering st = steering.strength(s);
            double concept = concept(st, targets);
            double kl = Double.NaN, dLoss = Double.NaN;
            if (side != null) {
                double[] e = side.measure(st);
                kl = e[0];
                dLoss = e[1];
            }
            rows.add(new Row("steer", s, concept, kl, dLoss));
        }
        promptPrefix.ifPresent(prefix -> rows.add(new Row("prompt: " + prefix, Double.NaN,
                concept(null, targets.stream().map(t -> prefix + t).toList()), Double.NaN, Double.NaN)));
        return new Result(steering, metric.label(), rows);
    }

    /** The mean concept score over {@code prompts} under {@code st} (null: unsteered). */
    private double concept(Steering st, List<String> prompts) {
        double sum = 0;
        for (String prompt : prompts) {
            long[] tokens = model.toTokens(prompt);
            if (metric instanceof ConceptMetric.NextToken m) {
                float[] last;
                try (NDScope scope = new NDScope(); HookScope h = st == null ? null : st.attach(model)) {
                    NDArray logits = model.forward(tokens);
                    last = logits.get("0, -1, :").toFloatArray();
                }
                sum += m.score().applyAsDouble(last);
            } else if (metric instanceof ConceptMetric.Generated g) {
                try (Generation.Result r = st == null ? model.generate(tokens, g.config())
                        : st.generate(model, new long[][] {tokens}, g.config())) {
                    sum += g.score().applyAsDouble(r.texts().isEmpty() ? "" : r.texts().get(0));
                }
            }
        }
        return sum / prompts.size();
    }

    /**
     * Side effects of steering on neutral token sequences: the unsteered next-token log-probabilities are computed
     * once, then {@link #measure} gives, under a steering, the mean KL divergence {@code KL(unsteered || steered)}
     * over every position and the mean change in next-token loss per sequence. Other sweeps (e.g.
     * {@link Backtracking.Sweep}) reuse it.
     */
    public static final class NeutralText {
        private final HookedTransformer model;
        private final List<long[]> tokens;
        private final List<float[][]> base = new ArrayList<>();

        /** Runs the unsteered model once over each sequence (token ids, BOS included). */
        public NeutralText(HookedTransformer model, List<long[]> tokens) {
            if (tokens == null || tokens.isEmpty()) throw new IllegalArgumentException("give at least one neutral sequence");
            this.model = model;
            this.tokens = List.copyOf(tokens);
            for (long[] t : this.tokens) base.add(logProbs(model, t));
        }

        /** {@code {mean KL(unsteered || steered), mean next-token loss change}} under {@code st}. */
        public double[] measure(Steering st) {
            double klSum = 0, lossSum = 0;
            long klCount = 0;
            for (int i = 0; i < tokens.size(); i++) {
                long[] t = tokens.get(i);
                float[][] p = base.get(i), q;
                try (HookScope h = st.attach(model)) {
                    q = logProbs(model, t);
                }
                double lossP = 0, lossQ = 0;
                for (int j = 0; j < t.length; j++) {
                    klSum += kl(p[j], q[j]);
                    klCount++;
                    if (j + 1 < t.length) {
                        lossP -= p[j][(int) t[j + 1]];
                        lossQ -= q[j][(int) t[j + 1]];
                    }
                }
                lossSum += t.length > 1 ? (lossQ - lossP) / (t.length - 1) : 0;
            }
            return new double[] {klSum / klCount, lossSum / tokens.size()};
        }
    }

    /** Next-token log-probabilities {@code [pos][vocab]} of one sequence under the hooks attached now. */
    private static float[][] logProbs(HookedTransformer model, long[] tokens) {
        try (NDScope scope = new NDScope()) {
            NDArray lp = model.forward(tokens).logSoftmax(-1);
            int p = tokens.length, v = (int) lp.getShape().get(2);
            float[] flat = lp.toFloatArray();
            float[][] out = new float[p][];
            for (int j = 0; j < p; j++) out[j] = java.util.Arrays.copyOfRange(flat, j * v, (j + 1) * v);
            return out;
        }
    }

    /** KL(p || q) of two log-probability rows. */
    private static double kl(float[] lp, float[] lq) {
        double s = 0;
        for (int i = 0; i < lp.length; i++) {
            if (lp[i] == Float.NEGATIVE_INFINITY) continue;
            s += Math.exp(lp[i]) * ((double) lp[i] - lq[i]);
        }
        return Math.max(0, s);
    }

    /** A sweep's rows, as a table and plots. */
    public static final class Result {
        private final Steering steering;
        private final String metric;
        private final List<Row> rows;

        Result(Steering steering, String metric, List<Row> rows) {
            this.steering = steering;
            this.metric = metric;
            this.rows = List.copyOf(rows);
        }

        /** Every row: the steered strengths in order, then the prompting baseline if any. */
        public List<Row> rows() {
            return rows;
        }

        /** The steered rows. */
        public List<Row> steered() {
            return rows.stream().filter(r -> r.condition().equals("steer")).toList();
        }

        /** The prompting baseline's row, if a prefix was given. */
        public Optional<Row> promptBaseline() {
            return rows.stream().filter(r -> !r.condition().equals("steer")).findFirst();
        }

        /** Columns: condition, strength, concept, kl_neutral, loss_delta_neutral (missing where not measured). */
        public Table toTable() {
            StringColumn cond = StringColumn.create("condition");
            DoubleColumn strength = DoubleColumn.create("strength"), concept = DoubleColumn.create("concept");
            DoubleColumn kl = DoubleColumn.create("kl_neutral"), loss = DoubleColumn.create("loss_delta_neutral");
            for (Row r : rows) {
                cond.append(r.condition());
                strength.append(r.strength());
                concept.append(r.concept());
                kl.append(r.klNeutral());
                loss.append(r.lossDeltaNeutral());
            }
            return Table.create("steering sweep: " + metric + " (" + steering.vector().source() + " at "
                    + steering.hookNames() + ")", cond, strength, concept, kl, loss);
        }

        /** The concept metric by strength, with the prompting baseline as a flat line when there is one. */
        public CategoryChart plot() {
            List<Row> s = steered();
            Map<String, double[]> series = new LinkedHashMap<>();
            series.put("steering", s.stream().mapToDouble(Row::concept).toArray());
            promptBaseline().ifPresent(b -> series.put("prompting baseline",
                    s.stream().mapToDouble(r -> b.concept()).toArray()));
            return Plots.line(metric + " by steering strength", labels(s), series);
        }

        /** KL divergence and loss change on neutral text by strength. */
        public CategoryChart plotSideEffects() {
            List<Row> s = steered();
            Map<String, double[]> series = new LinkedHashMap<>();
            series.put("KL on neutral text", s.stream().mapToDouble(Row::klNeutral).toArray());
            series.put("loss change on neutral text", s.stream().mapToDouble(Row::lossDeltaNeutral).toArray());
            return Plots.line("side effects by steering strength", labels(s), series);
        }

        private static List<String> labels(List<Row> s) {
            return s.stream().map(r -> String.format("%.3g", r.strength())).toList();
        }

        @Override
        public String toString() {
            return toTable().printAll();
        }
    }
}
