package dev.jlens.probe;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Backtracking on thinker: planted {@code wait}s are found where ArithCot's metadata puts them, and a
 * difference-of-means vector read before planted {@code wait}s causes and suppresses them in greedy generation.
 */
class BacktrackingTest {
    static final ArithCot TASK = ArithCot.defaults().withBacktrackRate(0);
    static HookedTransformer thinker;

    @BeforeAll
    static void load() {
        thinker = Zoo.load("thinker");
    }

    @AfterAll
    static void close() {
        thinker.close();
    }

    static List<ArithCot.Problem> problems(Split split, int n) {
        List<ArithCot.Problem> out = new ArrayList<>();
        for (long i = 0; out.size() < n; i++) out.add(TASK.example(split, i).meta().problem());
        return out;
    }

    @Test
    void plantedWaitsAreFoundWhereTheMetadataPutsThem() {
        int checked = 0;
        for (ArithCot.Problem p : problems(Split.TEST, 60)) {
            Example<ArithCot.Meta> clean = TASK.example(p, false, OptionalInt.empty());
            assertEquals(List.of(), Backtracking.find(TASK, clean.ids()), clean.text());
            assertEquals(0, Backtracking.planted(clean).length);
            for (ArithCot.Step s : clean.meta().steps()) {
                assertEquals(Optional.of(true), Backtracking.stepTrue(clean.tokens().subList(s.start(), s.end())),
                        "every correct step reads as a true equation: " + clean.text());
            }
            int steps = clean.meta().steps().size();
            for (int k : new int[] {0, steps - 1}) {
                Example<ArithCot.Meta> ex = TASK.example(p, false, OptionalInt.of(k));
                List<Backtracking.Wait> found = Backtracking.find(TASK, ex.ids());
                int[] positions = found.stream().mapToInt(Backtracking.Wait::position).toArray();
                assertArrayEquals(Backtracking.planted(ex), positions, ex.text());
                ArithCot.Step wrong = ex.meta().steps().get(ex.meta().backtrack().orElseThrow().wrongStep());
                Backtracking.Wait w = found.get(0);
                assertEquals(wrong.start(), w.stepStart(), ex.text());
                assertTrue(w.correction(), "a false step, wait, a true step: " + ex.text() + " " + w);
                checked++;
            }
        }
        assertEquals(120, checked);
        // the trigger word and a wait with no step after it (cut off) are read too
        Example<ArithCot.Meta> trig = TASK.example(new ArithCot.Problem(ArithCot.Op.MUL, 47, 36), true, OptionalInt.of(2));
        assertArrayEquals(Backtracking.planted(trig),
                Backtracking.find(TASK, trig.ids()).stream().mapToInt(Backtracking.Wait::position).toArray());
        List<Backtracking.Wait> cut = Backtracking.find(List.of("<think>", "4", "+", "8", "+", "1", "=", "1", "2", "wait"));
        assertEquals(1, cut.size());
        assertEquals(Optional.of(false), cut.get(0).stepTrue());
        assertEquals(Optional.empty(), cut.get(0).nextTrue());
        assertFalse(cut.get(0).correction());
        // arithmetic: * before + and -, numbers read from digit runs
        assertEquals(Optional.of(true), Backtracking.stepTrue(List.of("7", "*", "6", "+", "4", "=", "4", "6")));
        assertEquals(Optional.of(true), Backtracking.stepTrue(List.of("1", "3", "-", "8", "-", "0", "=", "5")));
        assertEquals(Optional.of(false), Backtracking.stepTrue(List.of("1", "3", "-", "8", "-", "1", "=", "5")));
        assertEquals(Optional.empty(), Backtracking.stepTrue(List.of("1", "+", "=", "1")));
        assertEquals(Optional.empty(), Backtracking.stepTrue(List.of("1", "+", "2")));
    }

    @Test
    void theVectorAtStrengthZeroChangesNoGeneratedToken() {
        String hook = "blocks.2.hook_resid_post";
        List<ArithCot.Problem> test = problems(Split.TEST, 32);
        SteeringVector v = Backtracking.vector(thinker, hook, TASK, problems(Split.TRAIN, 16));
        Backtracking.Sweep sweep = Backtracking.Sweep.of(thinker, Steering.of(v), TASK, test);
        for (long[][] prompts : List.of(sweep.plainPrompts(), sweep.wrongFirstStepPrompts())) {
            try (Generation.Result plain = thinker.generate(prompts, sweep.config());
                 Generation.Result steered = Steering.of(v).strength(0).generate(thinker, prompts, sweep.config())) {
                for (int i = 0; i < prompts.length; i++) {
                    assertArrayEquals(plain.tokens()[i], steered.tokens()[i], "prompt " + i);
                }
            }
        }
        // waits in thinker's own greedy generations after a forced wrong first step: right after it, and real fixes
        long[][] wrong = sweep.wrongFirstStepPrompts();
        try (Generation.Result r = thinker.generate(wrong, sweep.config())) {
            int backtracked = 0;
            for (int i = 0; i < wrong.length; i++) {
                int from = wrong[i].length;
                List<Backtracking.Wait> own = Backtracking.find(TASK, r.sequences()[i]).stream()
                        .filter(w -> w.position() >= from).toList();
                if (own.isEmpty()) continue;
                backtracked++;
                Backtracking.Wait w = own.get(0);
                assertEquals(from, w.position(), "wait comes right after the forced wrong step: " + r.texts().get(i));
                assertTrue(w.correction(), "the step after wait is true: " + r.texts().get(i));
            }
            System.out.printf("thinker backtracks after a forced wrong first step in %d of %d greedy generations%n",
                    backtracked, wrong.length);
            assertTrue(backtracked > wrong.length / 2, backtracked + " of " + wrong.length);
        }
    }

    @Test
    void theVectorCausesBacktracksAndSuppressesThemSpecifically() {
        String hook = "blocks.3.hook_resid_post";
        List<ArithCot.Problem> test = problems(Split.TEST, 48);
        SteeringVector v = Backtracking.vector(thinker, hook, TASK, problems(Split.TRAIN, 48));
        Backtracking.Result r = Backtracking.Sweep.of(thinker, Steering.of(v), TASK, test).run(-0.5, 0, 0.5);
        // a random direction of the same length, as a control for "any push breaks the trace"
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(7);
        float[] g = new float[v.dim()];
        for (int i = 0; i < g.length; i++) g[i] = (float) rnd.nextGaussian();
        SteeringVector random = SteeringVector.of(hook, g).normalizedTo(v.norm());
        Backtracking.Result c = Backtracking.Sweep.of(thinker, Steering.of(random), TASK, test).run(-0.5, 0.5);
        System.out.println(v + "\n" + r.toTable().printAll() + "\n" + c.toTable().printAll());

        String plain = Backtracking.PLAIN, wrong = Backtracking.WRONG_FIRST;
        Backtracking.Rates base = r.at(plain, 0).rates(), forced = r.at(wrong, 0).rates();
        assertTrue(base.backtrack() < 0.1, "thinker rarely backtracks on its own: " + base);
        assertTrue(base.accuracy() > 0.9, "thinker is right unsteered: " + base);
        assertTrue(forced.backtrack() > 0.6, "after a forced wrong first step thinker writes wait: " + forced);
        assertEquals(forced.backtrack(), r.promptBaseline().rates().backtrack(), 0, "the baseline is the same run");
        assertEquals(0.0, r.at(plain, 0).klNeutral(), 0.0);

        // causes: positive strength raises the backtrack rate far above the unsteered one, and the control does not
        Backtracking.Rates up = r.at(plain, 0.5).rates();
        assertTrue(up.backtrack() > base.backtrack() + 0.4, "steered " + up + " vs unsteered " + base);
        assertTrue(c.at(plain, 0.5).rates().backtrack() < base.backtrack() + 0.1, "random control " + c.at(plain, 0.5));
        // suppresses: negative strength lowers wait after a forced wrong step, while plain traces stay right
        Backtracking.Rates down = r.at(wrong, -0.5).rates();
        assertTrue(down.backtrack() < forced.backtrack() - 0.2, "steered " + down + " vs unsteered " + forced);
        assertTrue(c.at(wrong, -0.5).rates().backtrack() > forced.backtrack() - 0.1, "random control " + c.at(wrong, -0.5));
        assertTrue(r.at(plain, -0.5).rates().accuracy() > 0.9, "plain traces unharmed: " + r.at(plain, -0.5));
        // without the correction, the answer follows the wrong step
        assertTrue(down.accuracy() < forced.accuracy(), "suppressed " + down + " vs " + forced);
        assertEquals(7, r.toTable().rowCount());
        assertEquals(5, r.plot().getSeriesMap().size());
    }
}
