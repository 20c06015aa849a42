package dev.jlens.probe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.Dialogues;
import dev.jlens.data.Dialogues.Attribute;
import dev.jlens.data.Dialogues.Speaker;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.UserModelSteering.Method;
import dev.jlens.probe.UserModelSteering.Rates;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.List;
import java.util.Locale;

/**
 * The behavioural classifier recovers the generator's truth at the rate its fidelity implies, and steering the
 * chat-users model's user model along the age probe's direction makes its replies address a senior far more often
 * than unsteered or along a random direction of the same length; strength 0 changes nothing.
 */
class UserModelSteeringTest {
    static HookedTransformer model;
    static UserModelSteering senior;
    static final Dialogues TASK = Dialogues.defaults();

    @BeforeAll
    static void load() {
        model = Zoo.load("chat-users");
        senior = UserModelSteering.fit(model, TASK, Attribute.AGE, "senior");
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /**
     * On the generator's own assistant turns: the age verdict is the opener's value (ties go to the earliest vote), so
     * it is right with probability ASSISTANT_FIDELITY; the expertise verdict is a majority of Binomial(4, P_DEPTH)
     * explanation words, each right with that fidelity, undecided when there is none.
     */
    @Test
    void classifierRecoversTheTruthOfGeneratedRepliesAtTheGeneratorsFidelity() {
        List<Example<Dialogues.Meta>> exs = TASK.examples(Split.TEST, 0, 400);
        int n = 0, ageRight = 0, expRight = 0, expUndecided = 0;
        for (Example<Dialogues.Meta> ex : exs) {
            for (Dialogues.Turn t : ex.meta().turns()) {
                if (t.speaker() != Speaker.ASSISTANT || t.exchange() >= TASK.turns()) continue;
                List<String> reply = UserModelSteering.reply(ex, t);
                assertTrue(UserModelSteering.wellFormed(reply), "generator turn not well-formed: " + reply);
                UserModelSteering.Verdict age = UserModelSteering.classify(Attribute.AGE, reply);
                int opener = -1;
                for (int v = 0; v < 3; v++) if (Dialogues.OPENERS.get(v).contains(reply.get(0))) opener = v;
                assertEquals(opener, age.value().orElseThrow(), "age verdict is the opener's value: " + reply);
                ageRight += age.is(ex.meta().age().ordinal()) ? 1 : 0;
                UserModelSteering.Verdict exp = UserModelSteering.classify(Attribute.EXPERTISE, reply);
                expRight += exp.is(ex.meta().expertise().ordinal()) ? 1 : 0;
                expUndecided += exp.value().isEmpty() ? 1 : 0;
                n++;
            }
        }
        double f = Dialogues.ASSISTANT_FIDELITY, p = Dialogues.P_DEPTH;
        int words = Dialogues.ASSISTANT_CONTENT_WORDS;
        double expectRight = 0;   // sum over k depth words, j of them right: majority right, a tie right half the time
        for (int k = 1; k <= words; k++) {
            for (int j = 0; j <= k; j++) {
                double pr = binom(words, k, p) * binom(k, j, f);
                expectRight += 2 * j > k ? pr : 2 * j == k ? pr / 2 : 0;
            }
        }
        double expectUndecided = Math.pow(1 - p, words);
        System.out.printf(Locale.ROOT, "%d turns: age right %.4f (expected %.4f), expertise right %.4f (expected %.4f), "
                + "undecided %.4f (expected %.4f)%n", n, ageRight / (double) n, f, expRight / (double) n, expectRight,
                expUndecided / (double) n, expectUndecided);
        check("age right", ageRight / (double) n, f, n);
        check("expertise right", expRight / (double) n, expectRight, n);
        check("expertise undecided", expUndecided / (double) n, expectUndecided, n);

        // hand-made replies: a tie goes to the earliest vote; no cue word, no verdict
        assertEquals(0, UserModelSteering.classify(Attribute.AGE, List.of("cool", "try", "pamphlet", ".")).value().orElseThrow());
        assertEquals(2, UserModelSteering.classify(Attribute.AGE, List.of("indeed", "try", "pamphlet", ".")).value().orElseThrow());
        assertEquals(1, UserModelSteering.classify(Attribute.EXPERTISE, List.of("sure", "step", "detail", "tradeoffs")).value().orElseThrow());
        assertTrue(UserModelSteering.classify(Attribute.EXPERTISE, List.of("sure", "you", "try", "guide", ".")).value().isEmpty());
        assertFalse(UserModelSteering.wellFormed(List.of("sure", "you", "try", "guide")), "no period");
        assertFalse(UserModelSteering.wellFormed(List.of("you", "you", "try", "guide", ".")), "no opener");
        assertFalse(UserModelSteering.wellFormed(List.of("sure", "you", "try", "you", ".")), "no recommendation");
    }

    private static void check(String what, double rate, double expected, int n) {
        double sd = Math.sqrt(expected * (1 - expected) / n);
        assertTrue(Math.abs(rate - expected) < 4 * sd, String.format(Locale.ROOT, "%s: %.4f, expected %.4f +- %.4f (n %d)",
                what, rate, expected, 4 * sd, n));
    }

    private static double binom(int n, int k, double p) {
        double c = 1;
        for (int i = 1; i <= k; i++) c = c * (n - k + i) / i;
        return c * Math.pow(p, k) * Math.pow(1 - p, n - k);
    }

    @Test
    void theProbeDirectionMakesRepliesAddressASeniorAndStrengthZeroChangesNothing() {
        assertEquals(senior.unsteeredReplies(), senior.replies(Method.PROBE, 1, 0), "strength 0, token for token");
        UserModelSteering.Sweep sweep = senior.sweep(1, 0, 0.25, 0.5, 1);
        System.out.println(sweep.toTable().printAll());
        System.out.println(sweep);
        Rates base = senior.unsteered();
        assertTrue(senior.prompts() >= 50, senior.prompts() + " held-out prompts");
        assertEquals(1.0, base.wellFormed());
        for (Method m : Method.values()) {
            UserModelSteering.Row zero = sweep.at(m, 0);
            assertEquals(base, zero.rates(), m + " at strength 0 equals the unsteered rates");
            assertEquals(0.0, zero.klNeutral(), 1e-9);
        }
        // measured: unsteered 0.20, probe 0.83 at half a residual norm, random 0.13, difference of means 1.00
        double probe = sweep.at(Method.PROBE, 0.5).rates().target();
        double random = sweep.at(Method.RANDOM, 0.5).rates().target();
        double diff = sweep.at(Method.DIFF_MEANS, 0.5).rates().target();
        assertTrue(probe > base.target() + 0.4, "probe " + probe + " vs unsteered " + base.target());
        assertTrue(diff > base.target() + 0.4, "difference of means " + diff + " vs unsteered " + base.target());
        assertTrue(random < base.target() + 0.15, "random " + random + " vs unsteered " + base.target());
        assertTrue(probe > random + 0.4, "probe " + probe + " vs random " + random);
        // side effects grow with strength; half a norm keeps the replies well-formed
        List<UserModelSteering.Row> rows = sweep.steered(Method.PROBE);
        for (int i = 1; i < rows.size(); i++) assertTrue(rows.get(i).klNeutral() > rows.get(i - 1).klNeutral());
        assertTrue(sweep.at(Method.PROBE, 0.5).rates().wellFormed() > 0.9);
        // the prompting baseline: two of the user's words replaced by senior cue words (measured 0.91)
        assertTrue(sweep.promptBaseline().rates().target() > base.target() + 0.5, sweep.promptBaseline().toString());
        Table t = sweep.toTable();
        assertEquals(3 * 4 + 1, t.rowCount());
        assertTrue(sweep.plot().getSeriesMap().containsKey("prompting baseline"));
        assertTrue(sweep.plotSideEffects().getSeriesMap().containsKey("KL random"));
    }

    @Test
    void readerVsControllerHasEveryLayerAndMethod() {
        UserModelSteering.ReaderVsController rc = senior.readerVsController(0.25);
        System.out.println(rc.toTable().printAll());
        System.out.println(rc);
        assertEquals(model.cfg().nLayers() * 3, rc.toTable().rowCount());
        for (UserModelSteering.ReaderVsController.Entry e : rc.entries()) {
            if (e.method() == Method.RANDOM) continue;
            assertTrue(e.readingAuroc() > 0.75, "held-out reading AUROC " + e);
            assertTrue(e.readingAccuracy() > 0.6, "held-out 3-class accuracy " + e);
        }
        for (UserModelSteering.ReaderVsController.Entry e : rc.entries()) {
            if (e.method() == Method.DIFF_MEANS) assertEquals(1.0, e.cosineToDiffMeans(), 1e-6);
            // the rate at 0.25 norms is the sweep's own measurement (one generation per setting, kept)
            assertEquals(senior.rates(e.method(), e.layer(), 0.25).target(), e.targetRate());
        }
        assertTrue(rc.bestReader().method() != Method.RANDOM && rc.bestController().method() != Method.RANDOM);
        assertEquals(rc.bestReader().equals(rc.bestController()), rc.sameBest());
        assertEquals(4, rc.plot().getSeriesMap().size());
    }

    @Test
    void badInputNamesTheValidOptions() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> UserModelSteering.fit(model, TASK, Attribute.AGE, "elderly"));
        assertTrue(e.getMessage().contains("[teen, adult, senior]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> senior.sweep(3, 0, 1));
        assertTrue(e.getMessage().contains("0..2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> senior.direction(Method.PROBE, -1));
        assertTrue(e.getMessage().contains("0..2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> UserModelSteering.fit(model, TASK, Attribute.MOOD, "calm"));
        assertTrue(e.getMessage().contains("AGE") && e.getMessage().contains("EXPERTISE"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> UserModelSteering.value(Attribute.EXPERTISE, "guru"));
        assertTrue(e.getMessage().contains("[novice, expert]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> senior.sweep(1));
        assertTrue(e.getMessage().contains("strength"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> senior.sweep(1, 0, 1).at(Method.PROBE, 0.3));
        assertTrue(e.getMessage().contains("[0.0, 1.0]"), e.getMessage());
    }
}
