package dev.jlens.analysis;

import dev.jlens.cot.Answer;
import dev.jlens.cot.AnswerFormat;
import dev.jlens.cot.Steps;
import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.Table;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ResamplingTest {
    private static HookedTransformer thinker;
    private static HookedTransformer gpt2;
    private static ArithCot.Problem problem;
    private static Resampling.Trace trace;

    @BeforeAll
    static void load() {
        thinker = Zoo.load("thinker");
        problem = new ArithCot.Problem(ArithCot.Op.MUL, 47, 36);
        Example<ArithCot.Meta> ex = ArithCot.defaults().example(problem, false, OptionalInt.empty());
        trace = Resampling.Trace.of(thinker, String.join(" ", ex.tokens()));
        gpt2 = HookedTransformer.random(ModelConfig.gpt2(64, 2, 4, 256, 211, 64), 3);
    }

    @AfterAll
    static void close() {
        thinker.close();
        gpt2.close();
    }

    /** A random-token trace for the GPT-2-shaped model (no tokenizer): a 6-token prompt and three steps. */
    private static Resampling.Trace randomTrace() {
        long[] prompt = {5, 17, 42, 8, 99, 3};
        long[] chain = new long[18];
        for (int i = 0; i < chain.length; i++) chain[i] = (i * 37 + 11) % 211;
        return Resampling.Trace.of(prompt, chain, List.of(new Steps.TokenRange(0, 6), new Steps.TokenRange(6, 12),
                new Steps.TokenRange(12, 18)));
    }

    @Test
    void traceOfTextSplitsTheThinkersStepsAfterThePrompt() {
        // 47 * 36: four digit steps, the sum of partials, then the answer
        assertEquals(6, trace.stepCount(), trace.toString());
        assertEquals(ArithCot.prompt(problem, false).split(" ").length + 1, trace.promptLength(),
                "prompt and <think> come before step 0");
        assertEquals(thinker.requireTokenizer().bosTokenId().getAsLong(), trace.prefix(0)[0], "one BOS, not two");
        assertEquals(trace.tokens().length - 1, trace.prefixEnd(trace.stepCount()), "all steps: all but <eos>");
    }

    @Test
    void sharedPrefixEqualsIndependentGenerationGreedy() {
        Resampling.Options o = Resampling.Options.of(3, 80, 0).withRowsPerPass(2);
        for (int k : new int[] {0, 2, trace.stepCount()}) {
            Resampling.Result shared = Resampling.resample(thinker, trace, k, o);
            Resampling.Result recomputed = Resampling.resample(thinker, trace, k, o.sharePrefix(false));
            for (int i = 0; i < o.samples(); i++) {
                long[] alone;
                try (Generation.Result g = thinker.generate(trace.prefix(k),
                        Resampling.generationConfig(thinker, o, k, i))) {
                    alone = g.first();
                }
                assertArrayEquals(alone, shared.tokens()[i], "k " + k + " continuation " + i);
                assertArrayEquals(alone, recomputed.tokens()[i], "k " + k + " continuation " + i);
                assertTrue(shared.continuations().get(i).stopped(), shared.continuations().get(i).toString());
            }
            assertEquals(1.0, shared.traceAgreement(), "greedy continuations are all alike");
        }
    }

    @Test
    void sharedPrefixEqualsIndependentGenerationSampled() {
        // 12 rows in passes of 5, 5 and 2: each row's draws must depend on its own seed only
        Resampling.Options o = Resampling.Options.of(12, 80, 1.5).withRowsPerPass(5).withSeed(7);
        for (int k : new int[] {0, 3}) {
            Resampling.Result shared = Resampling.resample(thinker, trace, k, o);
            Resampling.Result recomputed = Resampling.resample(thinker, trace, k, o.sharePrefix(false).withRowsPerPass(12));
            Set<String> distinct = new HashSet<>();
            for (int i = 0; i < o.samples(); i++) {
                long[] alone;
                try (Generation.Result g = thinker.generate(trace.prefix(k),
                        Resampling.generationConfig(thinker, o, k, i))) {
                    alone = g.first();
                }
                assertArrayEquals(alone, shared.tokens()[i], "k " + k + " continuation " + i);
                assertArrayEquals(alone, recomputed.tokens()[i], "k " + k + " continuation " + i);
                distinct.add(Arrays.toString(alone));
            }
            assertTrue(distinct.size() > 1, "at temperature 1.5 the continuations differ: " + distinct);
        }
    }

    @Test
    void sharedPrefixEqualsIndependentGenerationOnAGpt2ShapeWithTopKAndTopP() {
        Resampling.Trace t = randomTrace();
        Resampling.Options o = Resampling.Options.of(9, 20, 1.0).withTopK(50).withTopP(0.9).withRowsPerPass(4);
        for (int k = 0; k <= t.stepCount(); k++) {
            Resampling.Result shared = Resampling.resample(gpt2, t, k, o);
            Resampling.Result recomputed = Resampling.resample(gpt2, t, k, o.sharePrefix(false));
            for (int i = 0; i < o.samples(); i++) {
                long[] alone;
                try (Generation.Result g = gpt2.generate(t.prefix(k), Resampling.generationConfig(gpt2, o, k, i))) {
                    alone = g.first();
                }
                assertEquals(20, alone.length, "no tokenizer, no stop tokens: maxNewTokens each");
                assertArrayEquals(alone, shared.tokens()[i], "k " + k + " continuation " + i);
                assertArrayEquals(alone, recomputed.tokens()[i], "k " + k + " continuation " + i);
            }
            assertTrue(shared.traceAgreement() < 1, "sampled continuations of a random model differ");
        }
    }

    @Test
    void oneContinuationIsReproducedAlone() {
        Resampling.Options o = Resampling.Options.of(6, 80, 1.5).withSeed(11).withRowsPerPass(6);
        Resampling.Result all = Resampling.resample(thinker, trace, 2, o);
        for (int i : new int[] {0, 4}) {
            Resampling.Continuation alone = Resampling.continuation(thinker, trace, 2, i, o);
            Resampling.Continuation inBatch = all.continuations().get(i);
            assertArrayEquals(inBatch.tokens(), alone.tokens(), "continuation " + i);
            assertEquals(inBatch.seed(), alone.seed());
            assertEquals(inBatch.traceText(), alone.traceText());
        }
        assertNotEquals(Resampling.seedOf(11, 2, 0), Resampling.seedOf(11, 2, 1));
        assertNotEquals(Resampling.seedOf(11, 2, 1), Resampling.seedOf(11, 1, 2));
        assertNotEquals(Resampling.seedOf(11, 2, 0), Resampling.seedOf(12, 2, 0));
    }

    @Test
    void aPrefixHoldingTheAnswerGivesItWithCertaintyUnderGreedy() {
        String correct = Long.toString(problem.answer());
        Resampling.Result r = Resampling.resample(thinker, trace, trace.stepCount(), Resampling.Options.of(4, 8, 0));
        for (Optional<Answer> a : r.answers()) {
            assertEquals(correct, a.orElseThrow().value());
            assertEquals(AnswerFormat.THINKER, a.get().format());
        }
        assertEquals(1.0, r.pCorrect(correct));
        assertEquals(0.0, r.pCorrect(Long.toString(problem.answer() + 1)));
        assertEquals(0.0, r.noAnswerRate());
        assertEquals(1.0, r.answerAgreement());
        Table t = r.toTable();
        assertEquals(4, t.rowCount());
        assertEquals(correct, t.stringColumn("answer").get(0));
    }

    @Test
    void sweepGivesPCorrectImportanceAndDeterminismForEveryK() {
        Resampling.Options o = Resampling.Options.of(4, 80, 0);
        Resampling.Sweep s = Resampling.sweep(thinker, trace, o, Long.toString(problem.answer()));
        int steps = trace.stepCount();
        double[] p = s.pCorrect();
        assertEquals(steps + 1, p.length);
        assertEquals(1.0, p[steps], "the answer is in the prefix");
        double[] imp = s.importance();
        assertEquals(steps, imp.length);
        for (int i = 0; i < steps; i++) assertEquals(p[i + 1] - p[i], imp[i], 1e-12);
        for (double a : s.traceAgreement()) assertEquals(1.0, a, "greedy: one trace per k");
        Table t = s.toTable();
        assertEquals(steps + 1, t.rowCount());
        assertTrue(t.doubleColumn("importance_of_step_k").isMissing(steps), "no step after the last");
        XYChart chart = s.plot();
        assertEquals(3, chart.getSeriesMap().size());
    }

    @Test
    void badInputNamesTheProblemAndTheValidRange() {
        int steps = trace.stepCount();
        Resampling.Options o = Resampling.Options.of(2, 4, 0);
        IllegalArgumentException past = assertThrows(IllegalArgumentException.class,
                () -> Resampling.resample(thinker, trace, steps + 1, o));
        assertTrue(past.getMessage().contains("k = " + (steps + 1)) && past.getMessage().contains("0.." + steps),
                past.getMessage());
        IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                () -> Resampling.resample(thinker, trace, -1, o));
        assertTrue(negative.getMessage().contains("0.." + steps), negative.getMessage());
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
                () -> Resampling.Options.of(0, 4, 0));
        assertTrue(none.getMessage().contains("samples must be >= 1"), none.getMessage());
        IllegalArgumentException emptyPrompt = assertThrows(IllegalArgumentException.class,
                () -> Resampling.Trace.of(new long[0], new long[] {1, 2}, List.of(new Steps.TokenRange(0, 2))));
        assertTrue(emptyPrompt.getMessage().contains("prompt is empty"), emptyPrompt.getMessage());
        IllegalArgumentException overlap = assertThrows(IllegalArgumentException.class,
                () -> Resampling.Trace.of(new long[] {1}, new long[] {1, 2, 3},
                        List.of(new Steps.TokenRange(0, 2), new Steps.TokenRange(1, 3))));
        assertTrue(overlap.getMessage().contains("step 1") && overlap.getMessage().contains("from 3"), // positions in prompt + chain
                overlap.getMessage());
        IllegalArgumentException index = assertThrows(IllegalArgumentException.class,
                () -> Resampling.continuation(thinker, trace, 0, 2, o));
        assertTrue(index.getMessage().contains("0..1"), index.getMessage());
        IllegalArgumentException temperature = assertThrows(IllegalArgumentException.class,
                () -> Resampling.Options.of(2, 4, -1));
        assertTrue(temperature.getMessage().contains("temperature"), temperature.getMessage());
    }
}
