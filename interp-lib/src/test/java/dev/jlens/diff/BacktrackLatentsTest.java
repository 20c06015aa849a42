package dev.jlens.diff;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A small TopK SAE on thinker's layer-2 residual stream over traces of which half backtrack: the contexts read off the
 * tokens agree with ArithCot's metadata, and a latent tied to backtracking is found with high precision and recall.
 */
class BacktrackLatentsTest {
    static final BacktrackLatents.Options OPTIONS = BacktrackLatents.Options.defaults().withSize(256, 8)
            .withTraining(300, 400);
    static HookedTransformer thinker;
    static SparseCoder sae;
    static BacktrackLatents.Result result;

    @BeforeAll
    static void train() {
        thinker = Zoo.load("thinker");
        sae = BacktrackLatents.train(thinker, OPTIONS);
        result = BacktrackLatents.of(thinker, sae, BacktrackLatents.sequences(OPTIONS.task(), Split.TEST, 200));
        System.out.println(result);
        System.out.println(result.toTable(3).printAll());
    }

    @AfterAll
    static void close() {
        sae.close();
        thinker.close();
    }

    @Test
    void contextsReadOffTheTokensAgreeWithTheMetadata() {
        ArithCot task = ArithCot.defaults();
        int checked = 0;
        for (Example<ArithCot.Meta> clean : BacktrackLatents.examples(task.withBacktrackRate(0), Split.TEST, 20)) {
            for (boolean[] m : BacktrackLatents.contexts(clean.ids()).values()) {
                for (boolean b : m) assertFalse(b, "no wait, no context: " + clean.text());
            }
            int steps = clean.meta().steps().size();
            for (int s = 0; s < steps; s++) {
                Example<ArithCot.Meta> ex = task.example(clean.meta().problem(), false, OptionalInt.of(s));
                ArithCot.Backtrack b = ex.meta().backtrack().orElseThrow();
                ArithCot.Step wrong = ex.meta().steps().get(b.wrongStep()), fix = ex.meta().steps().get(b.fixStep());
                int firstWrong = wrong.start();
                while (ex.ids()[firstWrong] == ex.ids()[fix.start() + firstWrong - wrong.start()]) firstWrong++;
                Map<BacktrackLatents.Context, boolean[]> c = BacktrackLatents.contexts(ex.ids());
                for (int p = 0; p < ex.ids().length; p++) {
                    assertEquals(p == b.waitPosition(), c.get(BacktrackLatents.Context.WAIT)[p]);
                    assertEquals(p == b.waitPosition() - 1, c.get(BacktrackLatents.Context.BEFORE_WAIT)[p]);
                    assertEquals(p >= fix.start() && p < fix.end(), c.get(BacktrackLatents.Context.CORRECTION)[p]);
                    assertEquals(p >= firstWrong && p < b.waitPosition(), c.get(BacktrackLatents.Context.ERROR)[p],
                            ex.text() + " at " + p);
                }
                checked++;
            }
        }
        assertTrue(checked > 40, "checked " + checked);
    }

    @Test
    void aLatentTiedToBacktrackingIsFound() {
        assertTrue(result.marked(BacktrackLatents.Context.WAIT) > 50, "about half of 200 traces backtrack");
        // wait is about 1.3% of the tokens: its best latent fires on nearly every wait, and a wait is many times
        // likelier where it fires than elsewhere
        BacktrackLatents.LatentScore wait = result.best(BacktrackLatents.Context.WAIT);
        double waitBase = result.codes().baseRate(result.context(BacktrackLatents.Context.WAIT));
        assertTrue(wait.recall() > 0.6 && wait.precision() > 10 * waitBase, wait + " base rate " + waitBase);
        BacktrackLatents.LatentScore before = result.best(BacktrackLatents.Context.BEFORE_WAIT);
        double base = result.codes().baseRate(result.context(BacktrackLatents.Context.BEFORE_WAIT));
        assertTrue(before.precision() > 5 * base, before + " base rate " + base);
        // control: the same latent against the contexts of another trace (marks moved by one trace) is no better
        // than chance, so the precision above comes from where the traces backtrack
        LatentCodes.Context moved = (p, pos) -> result.context(BacktrackLatents.Context.WAIT).test((p + 1) % 200, pos);
        int[] one = {wait.latent()};
        assertTrue(result.codes().precision(one, moved) < wait.precision() / 3,
                "moved contexts: " + result.codes().precision(one, moved));
        tech.tablesaw.api.Table fires = result.firingTokens(wait.latent());
        assertEquals(1.0, fires.doubleColumn("share_of_firings").sum(), 1e-9);
        assertTrue(fires.stringColumn("token").contains("wait"), fires.print());
        List<BacktrackLatents.LatentScore> top = result.best(BacktrackLatents.Context.ERROR, 3);
        assertEquals(3, top.size());
        assertTrue(top.get(0).f1() >= top.get(1).f1() && top.get(1).f1() >= top.get(2).f1());
        assertEquals(4 * 3, result.toTable(3).rowCount());
        assertEquals(4, result.plot().getSeriesMap().size());
        assertThrows(IllegalArgumentException.class, () -> BacktrackLatents.Options.defaults().withSize(8, 16));
    }
}
