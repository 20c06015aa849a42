package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.cot.Steps;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookFn;
import dev.jlens.hook.HookNames;
import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.HeatMapChart;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ThoughtAnchorsTest {
    private static final ArithCot TASK = ArithCot.defaults().withBacktrackRate(0);
    private static HookedTransformer thinker;
    private static ArithCot.Problem problem;
    private static Example<ArithCot.Meta> ex;
    /** The reasoning steps of Meta.steps(), the answer left out. */
    private static Resampling.Trace steps;
    /** The same steps and one more: {@code </think> answer: D D D D}. */
    private static Resampling.Trace withAnswer;

    @BeforeAll
    static void load() {
        thinker = Zoo.load("thinker");
        problem = new ArithCot.Problem(ArithCot.Op.MUL, 47, 36);
        ex = TASK.example(problem, false, OptionalInt.empty());
        List<Steps.TokenRange> ranges = new ArrayList<>();
        for (ArithCot.Step s : ex.meta().steps()) ranges.add(new Steps.TokenRange(s.start(), s.end()));
        steps = new Resampling.Trace(ex.ids(), ranges);
        int endThink = ex.tokens().indexOf(ArithCot.END_THINK);
        List<Steps.TokenRange> all = new ArrayList<>(ranges);
        all.add(new Steps.TokenRange(endThink, ex.meta().answerEnd()));
        withAnswer = new Resampling.Trace(ex.ids(), all);
    }

    @AfterAll
    static void close() {
        thinker.close();
    }

    @Test
    void kurtosisIsLowForEvenValuesAndHighForOneHot() {
        double[] even = new double[100];
        for (int i = 0; i < even.length; i++) even[i] = i;
        double n = 10;
        double[] oneHot = new double[10];
        oneHot[3] = 1;
        assertEquals(-1.2, ThoughtAnchors.kurtosis(even), 0.01, "evenly spread values: about -1.2");
        assertEquals(((n - 1) * (n - 1) * (n - 1) + 1) / (n * (n - 1)) - 3, ThoughtAnchors.kurtosis(oneHot), 1e-9);
        assertTrue(ThoughtAnchors.kurtosis(oneHot) > 5, "one-hot is peaked");
        double[] flat = new double[10];
        Arrays.fill(flat, 0.1);
        assertTrue(Double.isNaN(ThoughtAnchors.kurtosis(flat)), "all equal: undefined");
    }

    @Test
    void suppressingNothingOrTheFutureGivesZero() {
        int n = withAnswer.stepCount();
        List<ThoughtAnchors.Suppression> sup = new ArrayList<>();
        List<Steps.TokenRange> at = new ArrayList<>();
        Steps.TokenRange last = withAnswer.steps().get(n - 1), first = withAnswer.steps().get(0);
        // nothing masked
        sup.add(new ThoughtAnchors.Suppression(last, new Steps.TokenRange(first.start(), first.start())));
        at.add(last);
        // step 0 cannot see the answer step anyway (causal mask): masking it changes nothing
        sup.add(new ThoughtAnchors.Suppression(first, last));
        at.add(first);
        double[] kl = ThoughtAnchors.suppressionKl(thinker, withAnswer.tokens(), sup, at, 4);
        assertEquals(0, kl[0], 1e-6);
        assertEquals(0, kl[1], 1e-6);
    }

    @Test
    void suppressingTheStepTheAnswerCopiesFromMovesTheAnswer() {
        ThoughtAnchors.SuppressionMatrix m = ThoughtAnchors.suppressionMatrix(thinker, withAnswer);
        int n = withAnswer.stepCount();
        double[][] kl = m.kl();
        System.out.println("suppression matrix (row = suppressed step i, column = affected step j):");
        for (double[] row : kl) System.out.println(Arrays.toString(Arrays.stream(row)
                .map(x -> Math.round(x * 1000) / 1000.0).toArray()));
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) assertEquals(0, kl[i][j], "nothing suppressed where i >= j");
        }
        // the answer copies the last step's (the sum of partials') result digits
        double fromSum = kl[n - 2][n - 1];
        assertTrue(fromSum > 1.0, "masking the sum step moves the answer tokens: KL " + fromSum);
        for (int i = 0; i < n - 2; i++) {
            assertTrue(kl[i][n - 1] < fromSum, "the sum step matters most to the answer; step " + i + " gives "
                    + kl[i][n - 1]);
        }
        Table t = m.toTable();
        assertEquals(n, t.rowCount());
        assertEquals(n + 1, t.columnCount());
        HeatMapChart chart = m.heatmap();
        assertFalse(chart.getSeriesMap().isEmpty());
    }

    @Test
    void receiverHeadsRankHeadsByKurtosis() {
        List<ThoughtAnchors.ReceiverHead> heads = ThoughtAnchors.receiverHeads(thinker, withAnswer);
        assertEquals(thinker.cfg().nLayers() * thinker.cfg().nHeads(), heads.size());
        for (int h = 1; h < heads.size(); h++) {
            double a = heads.get(h - 1).kurtosis(), b = heads.get(h).kurtosis();
            assertTrue(Double.isNaN(b) || a >= b, "sorted, highest first");
        }
        for (ThoughtAnchors.ReceiverHead h : heads) {
            assertEquals(withAnswer.stepCount() - 1, h.received().length);
            for (double r : h.received()) assertTrue(r >= 0 && r <= 1 + 1e-6, "a mean of attention weights");
        }
        Table t = ThoughtAnchors.receiverHeadTable(heads, 5);
        System.out.println(t.print());
        assertEquals(5, t.rowCount());
    }

    @Test
    void forcedAnswerRisesOnlyWhenTheStepsAreWritten() {
        Faithfulness f = Faithfulness.of(thinker, FaithfulnessTest.config());
        long[] answerPrefix = {TASK.tokenId(ArithCot.END_THINK), TASK.tokenId(ArithCot.ANSWER)};
        long[] answer = Arrays.copyOfRange(ex.ids(), ex.meta().answerStart(), ex.meta().answerEnd());
        String correct = Long.toString(problem.answer());
        ThoughtAnchors.ForcedAnswer fa = ThoughtAnchors.forcedAnswer(thinker, steps, answerPrefix, answer, correct, f);
        double[] p = fa.pCorrect();
        System.out.println(fa.toTable().print());
        assertEquals(steps.stepCount() + 1, p.length);
        assertTrue(p[p.length - 1] > 0.9, "after every step the answer is known: " + p[p.length - 1]);
        assertTrue(p[0] < 0.1, "with no steps written thinker cannot multiply in one go: " + p[0]);
        assertEquals(correct, fa.greedy().get(p.length - 1).orElseThrow());
        double[] imp = fa.importance();
        double sum = Arrays.stream(imp).sum();
        assertEquals(p[p.length - 1] - p[0], sum, 1e-9, "importances telescope");
        // an empty step (the trace compared with itself) cannot matter: its importance is 0
        List<Steps.TokenRange> padded = new ArrayList<>(steps.steps());
        int e = padded.get(1).end();
        padded.add(2, new Steps.TokenRange(e, e));
        Resampling.Trace withEmpty = new Resampling.Trace(ex.ids(), padded);
        ThoughtAnchors.ForcedAnswer fe = ThoughtAnchors.forcedAnswer(thinker, withEmpty, answerPrefix, answer, correct,
                null);
        assertEquals(0, fe.importance()[2], 1e-9);
        assertEquals(imp[1], fe.importance()[1], 1e-6);
        assertEquals(imp[2], fe.importance()[3], 1e-6);
    }

    @Test
    void counterfactualImportanceCountsOnlyResamplesThatChangeTheStep() {
        Resampling.Options o = Resampling.Options.of(12, 60, 1.0).withSeed(7);
        Resampling.Sweep s = Resampling.sweep(thinker, withAnswer, o, Long.toString(problem.answer()));
        double[] p = s.pCorrect(), pd = s.pCorrectDifferent(), f = s.differentFraction();
        double[] ri = s.importance(), ci = s.counterfactualImportance();
        boolean[][] diff = s.differentStep();
        System.out.println("P(correct | first k): " + Arrays.toString(p));
        System.out.println("different fraction:   " + Arrays.toString(f));
        System.out.println("resampling imp:       " + Arrays.toString(ri));
        System.out.println("counterfactual imp:   " + Arrays.toString(ci));
        for (int i = 0; i < ci.length; i++) {
            // a continuation that rewrote step i token for token is the original trace: it is not counted
            Resampling.Result r = s.results().get(i);
            Steps.TokenRange st = withAnswer.steps().get(i);
            long[] orig = Arrays.copyOfRange(withAnswer.tokens(), withAnswer.prefixEnd(i), st.end());
            for (int c = 0; c < diff[i].length; c++) {
                long[] t = r.continuations().get(c).tokens();
                boolean same = t.length >= orig.length && Arrays.equals(Arrays.copyOf(t, orig.length), orig);
                assertEquals(!same, diff[i][c]);
            }
            if (f[i] == 0) {
                assertTrue(Double.isNaN(ci[i]), "no resample differs: undefined");
            } else {
                assertEquals(p[i + 1] - pd[i], ci[i], 1e-12);
                if (f[i] == 1) assertEquals(ri[i], ci[i], 1e-12, "every resample differs: as resampling importance");
            }
        }
        Table t = s.toTable();
        assertTrue(t.columnNames().contains("counterfactual_importance_of_step_k"));
    }

    @Test
    void onALongerTraceTheSumStepAnchorsTheAnswer() {
        // 3 digits by 3 digits: nine digit steps, then the sum of the partial products
        ArithCot.Problem p = new ArithCot.Problem(ArithCot.Op.MUL, 738, 469);
        Example<ArithCot.Meta> e = TASK.example(p, false, OptionalInt.empty());
        List<Steps.TokenRange> ranges = new ArrayList<>();
        for (ArithCot.Step s : e.meta().steps()) ranges.add(new Steps.TokenRange(s.start(), s.end()));
        ranges.add(new Steps.TokenRange(e.tokens().indexOf(ArithCot.END_THINK), e.meta().answerEnd()));
        Resampling.Trace t = new Resampling.Trace(e.ids(), ranges);
        int n = t.stepCount();
        assertEquals(11, n);
        double[][] kl = ThoughtAnchors.suppressionMatrix(thinker, t).kl();
        System.out.println("738 * 469, KL at the answer step with attention to step i masked: " + Arrays.toString(
                Arrays.stream(kl).mapToDouble(r -> Math.round(r[n - 1] * 1000) / 1000.0).toArray()));
        int best = 0;
        for (int i = 1; i < n - 1; i++) if (kl[i][n - 1] > kl[best][n - 1]) best = i;
        assertEquals(n - 2, best, "the answer copies the sum step");
        List<ThoughtAnchors.ReceiverHead> heads = ThoughtAnchors.receiverHeads(thinker, t);
        System.out.println(ThoughtAnchors.receiverHeadTable(heads, 5).print());
        for (ThoughtAnchors.ReceiverHead h : heads.subList(0, 5)) {
            System.out.println("L" + h.layer() + "H" + h.head() + " receives " + Arrays.toString(Arrays.stream(
                    h.received()).map(x -> Math.round(x * 1000) / 1000.0).toArray()));
        }
        assertFalse(Double.isNaN(heads.get(0).kurtosis()));
    }

    @Test
    void theMaskZeroesExactlyTheSuppressedAttention() {
        long[] tokens = withAnswer.tokens();
        int t = tokens.length;
        Steps.TokenRange q = withAnswer.steps().get(withAnswer.stepCount() - 1);
        Steps.TokenRange k = withAnswer.steps().get(withAnswer.stepCount() - 2);
        float[] mask = new float[t * t];
        for (int a = q.start(); a < q.end(); a++) {
            for (int b = k.start(); b < k.end(); b++) mask[a * t + b] = ThoughtAnchors.MASKED;
        }
        List<float[]> patterns = new ArrayList<>();
        try (NDScope scope = new NDScope()) {
            NDArray m = thinker.manager().create(mask, new Shape(1, 1, t, t));
            List<Hook> hooks = new ArrayList<>(List.of(ThoughtAnchors.maskHooks(thinker, m)));
            for (int l = 0; l < thinker.cfg().nLayers(); l++) {
                hooks.add(Hook.fwd(HookNames.actName("pattern", l),
                        HookFn.reader((act, hook) -> patterns.add(act.toFloatArray()))));
            }
            thinker.runWithHooks(tokens, hooks.toArray(Hook[]::new));
        }
        assertEquals(thinker.cfg().nLayers(), patterns.size());
        for (float[] pat : patterns) {
            int heads = pat.length / (t * t);
            for (int h = 0; h < heads; h++) {
                for (int a = 0; a < t; a++) {
                    double row = 0;
                    for (int b = 0; b < t; b++) {
                        float w = pat[(h * t + a) * t + b];
                        row += w;
                        boolean masked = a >= q.start() && a < q.end() && b >= k.start() && b < k.end();
                        if (masked || b > a) assertEquals(0, w, 1e-7, "masked or future: no attention");
                    }
                    assertEquals(1, row, 1e-4, "each row still sums to 1");
                }
            }
        }
    }

    @Test
    void greedyResamplesRewriteTheTraceItselfSoNoStepDiffers() {
        // thinker's greedy continuation from any k is the dataset trace: every resample repeats the step it replaces
        // (separator included), so no step has a counterfactual
        Resampling.Sweep s = Resampling.sweep(thinker, withAnswer, Resampling.Options.of(2, 60, 0),
                Long.toString(problem.answer()));
        for (int i = 0; i < withAnswer.stepCount(); i++) {
            long[] cont = s.results().get(i).continuations().get(0).tokens();
            long[] rest = Arrays.copyOfRange(withAnswer.tokens(), withAnswer.prefixEnd(i), withAnswer.tokens().length);
            assertEquals(Arrays.toString(rest), Arrays.toString(cont), "greedy from k = " + i + " is the trace");
        }
        for (double f : s.differentFraction()) assertEquals(0, f);
        for (double c : s.counterfactualImportance()) assertTrue(Double.isNaN(c));
        for (double p : s.pCorrect()) assertEquals(1, p);
    }
}
