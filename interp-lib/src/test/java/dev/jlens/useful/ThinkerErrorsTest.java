package dev.jlens.useful;

import dev.jlens.data.ArithCot;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.Backtracking;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Task (a) on thinker: labels are thinker's own greedy mistakes, rows are what they claim, splits are disjoint. */
class ThinkerErrorsTest {
    static HookedTransformer thinker;
    static UsefulTask task;
    static final ThinkerErrors.Options OPTIONS = new ThinkerErrors.Options(400, 0.5, 0.2, 2, 128, 8, 60, 8, 3);

    @BeforeAll
    static void build() {
        thinker = Zoo.load("thinker");
        task = ThinkerErrors.build(thinker, OPTIONS);
        System.out.println(task + " " + task.notes());
    }

    @AfterAll
    static void close() {
        thinker.close();
    }

    @Test
    void problemFeaturesFollowLongMultiplication() {
        // 47 * 36: 7*6 = 42 (carry 4), 4*6+4 = 28 (carry 2); 7*3 = 21 (carry 2), 4*3+2 = 14 (carry 1);
        // 282 + 1410 = 1692 with no column carrying
        float[] f = ThinkerErrors.features(new ArithCot.Problem(ArithCot.Op.MUL, 47, 36));
        assertArrayEquals(new float[] {47, 36, 4, 7, 3, 6, 1692, 4, 4, 9, 4, 0, 0, 4}, f);
        assertEquals(ThinkerErrors.PROBLEM_FEATURES.size(), f.length);
        // 99 * 99: 891 + 8910 = 9801, carries out of the tens and hundreds columns
        assertEquals(2, ThinkerErrors.features(new ArithCot.Problem(ArithCot.Op.MUL, 99, 99))[11]);
    }

    @Test
    void labelsAreThinkersGreedyMistakesAndSplitsAreDisjoint() {
        assertEquals(200, task.train().length);
        assertEquals(80, task.validation().length);
        assertEquals(120, task.test().length);
        double rate = (Arrays.stream(task.train()).sum() + Arrays.stream(task.validation()).sum()
                + Arrays.stream(task.test()).sum()) / 400.0;
        assertTrue(rate > 0.05 && rate < 0.4, "thinker is wrong on " + rate + " of two-digit products");
        Set<String> seen = new HashSet<>();
        UsefulTask.View problems = task.view("problem");
        for (float[][] part : new float[][][] {problems.train(), problems.validation(), problems.test()}) {
            for (float[] r : part) assertTrue(seen.add(r[0] + "*" + r[1]), "a problem in two rows: " + r[0] + "*" + r[1]);
        }
        // the first test rows: label and activations recomputed one prompt at a time
        ArithCot arith = ArithCot.defaults().withBacktrackRate(0);
        for (int i = 0; i < 5; i++) {
            float[] row = problems.test()[i];
            ArithCot.Problem p = new ArithCot.Problem(ArithCot.Op.MUL, (long) row[0], (long) row[1]);
            long[] prompt = Backtracking.prompt(arith, p);
            try (Generation.Result g = thinker.generate(prompt, Generation.Config.greedy(60)
                    .withStopTokens(arith.tokenId("<eos>")))) {
                StringBuilder text = new StringBuilder();
                for (long t : g.first()) text.append(arith.vocab().get((int) t)).append(' ');
                int wrong = ArithCot.grade(p, text.toString()) == ArithCot.Grade.CORRECT ? 0 : 1;
                assertEquals(wrong, task.test()[i], p + ": " + text);
            }
            try (ActivationCache cache = thinker.runWithCache(prompt)) {
                float[] all = cache.get("blocks.1.hook_resid_post").toFloatArray();
                float[] last = Arrays.copyOfRange(all, all.length - 128, all.length);
                float[] mine = task.view("resid_1").test()[i];
                for (int j = 0; j < 128; j++) assertEquals(last[j], mine[j], 1e-4, "resid_1 of " + p + " at " + j);
            }
        }
        assertEquals(128, task.view("sae").dim());
        assertEquals(2 * 8 + 8 + 4, task.view("confidence").dim());
        for (float[] r : task.view("confidence").test()) {
            for (int t = 0; t < 12; t++) assertTrue(r[2 * t] > 0 && r[2 * t] <= 1.0001f, "max-probabilities");
        }
    }

    @Test
    void comparisonRunsAndBadOptionsThrow() {
        Comparison c = Comparison.run(task, ThinkerErrors.entries(), Bootstrap.defaults());
        assertEquals(11, c.rows().size());
        assertEquals(5, c.winLoss().rowCount());
        assertThrows(IllegalArgumentException.class, () -> ThinkerErrors.Options.defaults().withProblems(9000));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ThinkerErrors.build(thinker, OPTIONS.withSaeLayer(7)));
        assertTrue(e.getMessage().contains("0..3"), e.getMessage());
    }
}
