package dev.jlens.probe;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Backtracking in {@link ArithCot} chains of thought ({@code 4 + 8 + 1 = 1 2 wait 4 + 8 + 1 = 1 3}): finding the
 * {@code wait} corrections, a steering vector for them after Venhoff et al. (2025), and its dose–response.
 *
 * <ul>
 * <li><b>Finding</b>: {@link #find} lists every {@code wait} of a token sequence (a planted trace or a model's own
 *     generation) with the step it follows and the step after it, each checked as arithmetic ({@link #stepTrue}), so
 *     a real correction (a false step, {@code wait}, a true one) is told apart from a stray {@code wait};
 *     {@link #planted} reads the position from the task's metadata.</li>
 * <li><b>Vector</b>: {@link #vector} is the difference of means of the activations at the last token of a wrong
 *     step (the position just before {@code wait}, where the model decides to backtrack) minus those at the same
 *     position of the same problem's trace without a backtrack (the matched correct step; a wrong step has as many
 *     tokens as the right one, so the positions coincide), over every step of every problem given.</li>
 * <li><b>Dose–response</b>: {@link Sweep} steers greedy generation at each strength on two prompt sets, the plain
 *     prompts {@code <bos> a op b =} and prompts whose trace is forced to start with a wrong first step
 *     ({@link #wrongFirstStepPrompt}, which is also the prompting baseline for causing a backtrack), and measures
 *     the backtrack rate (generations with a {@code wait}), the correction rate (with a real correction), answer
 *     accuracy, malformed answers and the KL divergence on neutral traces (via {@link SteeringSweep.NeutralText}).</li>
 * </ul>
 *
 * <pre>{@code
 * SteeringVector v = Backtracking.vector(thinker, "blocks.2.hook_resid_post", task, trainProblems);
 * Backtracking.Result r = Backtracking.Sweep.of(thinker, Steering.of(v), task, testProblems).run(-8, -4, 0, 4, 8);
 * r.toTable(); r.plot();
 * }</pre>
 */
public final class Backtracking {
    private Backtracking() {}

    /**
     * A {@code wait} in a sequence: its position, the start of the step it follows ({@code -1} if none), whether that
     * step is a true equation and whether the step after the {@code wait} is (empty where a step cannot be read as
     * an equation, e.g. it is cut off or has no {@code =}).
     */
    public record Wait(int position, int stepStart, Optional<Boolean> stepTrue, Optional<Boolean> nextTrue) {
        /** A false step, {@code wait}, then a true step: a correction as the task plants it. */
        public boolean correction() {
            return stepTrue.equals(Optional.of(false)) && nextTrue.equals(Optional.of(true));
        }
    }

    /** The planted {@code wait} position of an example (none without a backtrack), from its metadata. */
    public static int[] planted(Example<ArithCot.Meta> ex) {
        return ex.meta().backtrack().map(b -> new int[] {b.waitPosition()}).orElse(new int[0]);
    }

    /** Every {@code wait} of a sequence of {@code task}'s token ids. */
    public static List<Wait> find(ArithCot task, long[] ids) {
        List<String> vocab = task.vocab();
        List<String> tokens = new ArrayList<>(ids.length);
        for (long id : ids) {
            if (id < 0 || id >= vocab.size()) {
                throw new IllegalArgumentException("token id " + id + " is outside " + task.name() + "'s vocabulary 0.."
                        + (vocab.size() - 1));
            }
            tokens.add(vocab.get((int) id));
        }
        return find(tokens);
    }

    /**
     * Every {@code wait} of a sequence of tokens. Steps are the runs between {@code <think>}, {@code ,},
     * {@code wait} and {@code </think>} (or the end).
     */
    public static List<Wait> find(List<String> tokens) {
        List<Wait> out = new ArrayList<>();
        for (int w = 0; w < tokens.size(); w++) {
            if (!tokens.get(w).equals(ArithCot.WAIT)) continue;
            int start = w;
            while (start > 0 && !boundary(tokens.get(start - 1))) start--;
            int end = w + 1;
            while (end < tokens.size() && !boundary(tokens.get(end)) && !tokens.get(end).equals("<eos>")) end++;
            Optional<Boolean> before = start < w ? stepTrue(tokens.subList(start, w)) : Optional.empty();
            Optional<Boolean> after = end > w + 1 ? stepTrue(tokens.subList(w + 1, end)) : Optional.empty();
            out.add(new Wait(w, start < w ? start : -1, before, after));
        }
        return out;
    }

    private static boolean boundary(String t) {
        return t.equals(ArithCot.THINK) || t.equals(ArithCot.END_THINK) || t.equals(ArithCot.SEPARATOR)
                || t.equals(ArithCot.WAIT) || t.equals(ArithCot.ANSWER) || t.equals("<bos>");
    }

    /**
     * Whether a step {@code lhs = rhs} is a true equation: numbers are runs of digit tokens read together
     * ({@code 1 3} is 13), the left side is evaluated with {@code *} before {@code +} and {@code -}, the right
     * side is one number. Empty if the step is not of that form.
     */
    public static Optional<Boolean> stepTrue(List<String> step) {
        int eq = step.indexOf("=");
        if (eq <= 0 || eq != step.lastIndexOf("=") || eq == step.size() - 1) return Optional.empty();
        List<String> rhs = step.subList(eq + 1, step.size());
        if (!rhs.stream().allMatch(Backtracking::digit) || rhs.size() > 18) return Optional.empty();
        long right = Long.parseLong(String.join("", rhs));
        // left side: number (op number)*
        List<Long> terms = new ArrayList<>();   // the sum of signed products
        long product = 0;
        int sign = 1;
        StringBuilder num = new StringBuilder();
        String pendingOp = null;
        List<String> lhs = new ArrayList<>(step.subList(0, eq));
        lhs.add("+");   // flushes the last term
        for (String t : lhs) {
            if (digit(t)) {
                if (num.length() >= 18) return Optional.empty();
                num.append(t);
                continue;
            }
            if (!(t.equals("+") || t.equals("-") || t.equals("*")) || num.length() == 0) return Optional.empty();
            long n = Long.parseLong(num.toString());
            num.setLength(0);
            product = "*".equals(pendingOp) ? product * n : n;
            if (!t.equals("*")) {
                terms.add(sign * product);
                sign = t.equals("-") ? -1 : 1;
            }
            pendingOp = t;
        }
        long left = terms.stream().mapToLong(Long::longValue).sum();
        return Optional.of(left == right);
    }

    private static boolean digit(String t) {
        return t.length() == 1 && t.charAt(0) >= '0' && t.charAt(0) <= '9';
    }

    // ------------------------------------------------------------------------------------------- the vector

    /**
     * A matched pair: a trace with a wrong step and {@code wait}, the same problem's trace without, and the position
     * read in both (the wrong step's last token, just before {@code wait}; the correct step's last token).
     */
    public record Pair(long[] backtrack, long[] clean, int position, int step) {}

    /** One pair per step of each problem's trace (in {@code task}'s format, no trigger word). */
    public static List<Pair> pairs(ArithCot task, List<ArithCot.Problem> problems) {
        List<Pair> out = new ArrayList<>();
        for (ArithCot.Problem p : problems) {
            Example<ArithCot.Meta> clean = task.example(p, false, OptionalInt.empty());
            List<ArithCot.Step> steps = clean.meta().steps();
            for (int k = 0; k < steps.size(); k++) {
                Example<ArithCot.Meta> bt = task.example(p, false, OptionalInt.of(k));
                ArithCot.Backtrack b = bt.meta().backtrack().orElseThrow();
                int pos = b.waitPosition() - 1;
                if (steps.get(k).end() - 1 != pos) {
                    throw new IllegalStateException("the wrong step of " + p + " at " + k + " ends at " + pos
                            + " but the correct one at " + (steps.get(k).end() - 1));
                }
                out.add(new Pair(bt.ids(), clean.ids(), pos, k));
            }
        }
        return out;
    }

    /**
     * The backtracking direction at {@code hook}: the mean over {@link #pairs} of the activation at the end of the
     * wrong step minus that at the end of the matched correct step (Venhoff et al.'s difference of means, with
     * matched positions).
     */
    public static SteeringVector vector(HookedTransformer model, String hook, ArithCot task,
            List<ArithCot.Problem> problems) {
        if (problems.isEmpty()) throw new IllegalArgumentException("give at least one problem");
        List<Pair> pairs = pairs(task, problems);
        SteeringVector v = SteeringVector.contrastiveTokens(model, hook, pairs.stream().map(Pair::backtrack).toList(),
                pairs.stream().map(Pair::clean).toList(), pairs.stream().map(q -> Positions.at(q.position())).toList());
        return new SteeringVector(hook, v.vector(), "backtracking: mean(end of wrong step) - mean(end of matched step), "
                + pairs.size() + " pairs");
    }

    // ------------------------------------------------------------------------------------------- prompts

    /** {@code <bos> a op b =}: the plain prompt. */
    public static long[] prompt(ArithCot task, ArithCot.Problem p) {
        Example<ArithCot.Meta> ex = task.example(p, false, OptionalInt.empty());
        return Arrays.copyOf(ex.ids(), ex.meta().promptLength());
    }

    /** {@code <bos> a op b = <think>} and a wrong first step, stopping where the planted trace writes {@code wait}. */
    public static long[] wrongFirstStepPrompt(ArithCot task, ArithCot.Problem p) {
        Example<ArithCot.Meta> ex = task.example(p, false, OptionalInt.of(0));
        return Arrays.copyOf(ex.ids(), ex.meta().backtrack().orElseThrow().waitPosition());
    }

    // --------------------------------------------------------------------------------------- dose–response

    /** What a set of generations shows (rates are fractions of the generations). */
    public record Rates(int n, double backtrack, double correction, double accuracy, double malformed) {}

    /**
     * Measures greedy generations from {@code prompts}: waits are counted only in the generated part.
     *
     * @param result generations from {@code prompts}
     */
    public static Rates rates(ArithCot task, List<ArithCot.Problem> problems, long[][] prompts,
            Generation.Result result) {
        long[][] seqs = result.sequences();
        int n = prompts.length, back = 0, corr = 0, right = 0, bad = 0;
        for (int i = 0; i < n; i++) {
            List<Wait> ws = find(task, seqs[i]);
            int from = prompts[i].length;
            if (ws.stream().anyMatch(w -> w.position() >= from)) back++;
            if (ws.stream().anyMatch(w -> w.position() >= from && w.correction())) corr++;
            ArithCot.Grade g = ArithCot.grade(problems.get(i), text(task, result.tokens()[i]));
            if (g == ArithCot.Grade.CORRECT) right++;
            if (g == ArithCot.Grade.MALFORMED) bad++;
        }
        return new Rates(n, (double) back / n, (double) corr / n, (double) right / n, (double) bad / n);
    }

    private static String text(ArithCot task, long[] ids) {
        List<String> vocab = task.vocab();
        StringBuilder sb = new StringBuilder();
        for (long id : ids) sb.append(sb.length() == 0 ? "" : " ").append(vocab.get((int) id));
        return sb.toString();
    }

    /** One row of a sweep: a prompt set under a condition ("steer" at a strength, or a prompting baseline). */
    public record Row(String prompts, String condition, double strength, Rates rates, double klNeutral,
            double lossDeltaNeutral) {}

    /**
     * A dose–response sweep of a backtracking steering vector on thinker-like models.
     *
     * @param model        the model
     * @param steering     vector, hook points and positions (its strength is replaced by each swept one)
     * @param task         the task (its format must be COT)
     * @param problems     held-out problems; each gives a plain and a wrong-first-step prompt
     * @param maxNewTokens generation length (stops at {@code <eos>})
     * @param neutral      token sequences for the KL side effect (none: those columns stay NaN)
     */
    public record Sweep(HookedTransformer model, Steering steering, ArithCot task, List<ArithCot.Problem> problems,
            int maxNewTokens, List<long[]> neutral) {

        /** Checks the inputs. */
        public Sweep {
            if (model == null || steering == null || task == null) {
                throw new IllegalArgumentException("model, steering and task must not be null");
            }
            if (task.format() != ArithCot.Format.COT) throw new IllegalArgumentException("backtracking needs the COT format");
            if (problems == null || problems.isEmpty()) throw new IllegalArgumentException("give at least one problem");
            if (maxNewTokens < 1) throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
            problems = List.copyOf(problems);
            neutral = List.copyOf(neutral == null ? List.of() : neutral);
            for (String h : steering.hookNames()) model.hook(h);
        }

        /** 80 new tokens at most, and as neutral text the problems' correct traces (teacher-forced). */
        public static Sweep of(HookedTransformer model, Steering steering, ArithCot task, List<ArithCot.Problem> problems) {
            List<long[]> neutral = problems.stream().limit(16)
                    .map(p -> task.example(p, false, OptionalInt.empty()).ids()).toList();
            return new Sweep(model, steering, task, problems, 80, neutral);
        }

        /** The same sweep measuring side effects on these sequences. */
        public Sweep withNeutral(List<long[]> tokens) {
            return new Sweep(model, steering, task, problems, maxNewTokens, tokens);
        }

        /** Greedy generation until {@code <eos>}. */
        public Generation.Config config() {
            return Generation.Config.greedy(maxNewTokens).withStopTokens(task.tokenId("<eos>"));
        }

        /** The plain prompts. */
        public long[][] plainPrompts() {
            return problems.stream().map(p -> prompt(task, p)).toArray(long[][]::new);
        }

        /** The prompts forced to start with a wrong first step. */
        public long[][] wrongFirstStepPrompts() {
            return problems.stream().map(p -> wrongFirstStepPrompt(task, p)).toArray(long[][]::new);
        }

        /**
         * Every strength on both prompt sets, then the prompting baseline: the wrong-first-step prompts unsteered
         * (the prompt that makes an unsteered model backtrack).
         */
        public Result run(double... strengths) {
            if (strengths.length == 0) throw new IllegalArgumentException("give at least one strength, e.g. run(-8, 0, 8)");
            SteeringSweep.NeutralText side = neutral.isEmpty() ? null : new SteeringSweep.NeutralText(model, neutral);
            long[][] plain = plainPrompts(), wrong = wrongFirstStepPrompts();
            List<Row> rows = new ArrayList<>();
            for (double s : strengths) {
                Steering st = steering.strength(s);
                double[] e = side == null ? new double[] {Double.NaN, Double.NaN} : side.measure(st);
                rows.add(new Row(PLAIN, "steer", s, generate(st, plain), e[0], e[1]));
                rows.add(new Row(WRONG_FIRST, "steer", s, generate(st, wrong), e[0], e[1]));
            }
            try (Generation.Result r = model.generate(wrong, config())) {
                rows.add(new Row(WRONG_FIRST, "prompt: wrong first step", Double.NaN, rates(task, problems, wrong, r),
                        Double.NaN, Double.NaN));
            }
            return new Result(steering, rows);
        }

        /** Rates of steered greedy generations from {@code prompts}. */
        public Rates generate(Steering st, long[][] prompts) {
            try (Generation.Result r = st.generate(model, prompts, config())) {
                return rates(task, problems, prompts, r);
            }
        }
    }

    /** Prompt set names in rows. */
    public static final String PLAIN = "a op b =", WRONG_FIRST = "wrong first step";

    /** A sweep's rows, as a table and a chart. */
    public static final class Result {
        private final Steering steering;
        private final List<Row> rows;

        Result(Steering steering, List<Row> rows) {
            this.steering = steering;
            this.rows = List.copyOf(rows);
        }

        /** Every row: per strength the plain then the wrong-first-step prompts, then the prompting baseline. */
        public List<Row> rows() {
            return rows;
        }

        /** The steered rows of one prompt set ({@link #PLAIN} or {@link #WRONG_FIRST}), by strength. */
        public List<Row> steered(String prompts) {
            return rows.stream().filter(r -> r.condition().equals("steer") && r.prompts().equals(prompts)).toList();
        }

        /** The row of a prompt set at a swept strength. */
        public Row at(String prompts, double strength) {
            return steered(prompts).stream().filter(r -> r.strength() == strength).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("no row for " + prompts + " at strength " + strength));
        }

        /** The prompting baseline's row. */
        public Row promptBaseline() {
            return rows.stream().filter(r -> !r.condition().equals("steer")).findFirst().orElseThrow();
        }

        /**
         * Columns: prompts, condition, strength, n, backtrack_rate, correction_rate, accuracy, malformed, kl_neutral,
         * loss_delta_neutral.
         */
        public Table toTable() {
            StringColumn prompts = StringColumn.create("prompts"), cond = StringColumn.create("condition");
            DoubleColumn strength = DoubleColumn.create("strength");
            IntColumn n = IntColumn.create("n");
            DoubleColumn back = DoubleColumn.create("backtrack_rate"), corr = DoubleColumn.create("correction_rate"),
                    acc = DoubleColumn.create("accuracy"), bad = DoubleColumn.create("malformed"),
                    kl = DoubleColumn.create("kl_neutral"), loss = DoubleColumn.create("loss_delta_neutral");
            for (Row r : rows) {
                prompts.append(r.prompts());
                cond.append(r.condition());
                strength.append(r.strength());
                n.append(r.rates().n());
                back.append(r.rates().backtrack());
                corr.append(r.rates().correction());
                acc.append(r.rates().accuracy());
                bad.append(r.rates().malformed());
                kl.append(r.klNeutral());
                loss.append(r.lossDeltaNeutral());
            }
            return Table.create("backtracking dose-response (" + steering.vector().source() + " at "
                    + steering.hookNames() + ")", prompts, cond, strength, n, back, corr, acc, bad, kl, loss);
        }

        /**
         * Backtrack rate and accuracy by strength on both prompt sets, with the prompting baseline's backtrack rate
         * as a flat line.
         */
        public CategoryChart plot() {
            List<Row> plain = steered(PLAIN), wrong = steered(WRONG_FIRST);
            Map<String, double[]> series = new LinkedHashMap<>();
            series.put("backtrack rate, " + PLAIN, plain.stream().mapToDouble(r -> r.rates().backtrack()).toArray());
            series.put("backtrack rate, " + WRONG_FIRST, wrong.stream().mapToDouble(r -> r.rates().backtrack()).toArray());
            series.put("accuracy, " + PLAIN, plain.stream().mapToDouble(r -> r.rates().accuracy()).toArray());
            series.put("malformed, " + PLAIN, plain.stream().mapToDouble(r -> r.rates().malformed()).toArray());
            double base = promptBaseline().rates().backtrack();
            series.put("prompting baseline (wrong first step, unsteered)", plain.stream().mapToDouble(r -> base).toArray());
            return Plots.line("backtracking by steering strength",
                    plain.stream().map(r -> String.format("%.3g", r.strength())).toList(), series);
        }

        @Override
        public String toString() {
            return toTable().printAll();
        }
    }
}
