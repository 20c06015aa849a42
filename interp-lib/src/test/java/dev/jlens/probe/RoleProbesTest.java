package dev.jlens.probe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.Example;
import dev.jlens.data.HiddenRoles;
import dev.jlens.data.Split;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.RoleProbes.At;
import dev.jlens.probe.RoleProbes.Entry;
import dev.jlens.probe.RoleProbes.Kind;
import dev.jlens.probe.RoleProbes.Target;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Role probes on the zoo's deceiver: at the token before a claimed role the residual stream carries the speaker's
 * dealt role (beyond the majority class, the embeddings and the control task), and on the wolf's claims it reads what
 * the model is about to say far better than the generator's coin the text follows.
 */
class RoleProbesTest {
    static HookedTransformer model;
    static RoleProbes roles;
    static final Target ROLE = Target.of(Kind.SPEAKER_ROLE), CLAIM = Target.of(Kind.CLAIMED_ROLE),
            OWN = Target.of(Kind.MODEL_CLAIM);

    @BeforeAll
    static void load() {
        model = Zoo.load("deceiver");
        long t0 = System.nanoTime();
        roles = RoleProbes.run(model, HiddenRoles.defaults(), 150);
        System.out.printf("RoleProbes.run: %.1f s%n", (System.nanoTime() - t0) / 1e9);
        System.out.println(roles.toTable().selectColumns("at", "target", "hook", "rows", "accuracy",
                "control_accuracy", "majority_rate", "wolf_accuracy").printAll());
        System.out.println(roles.wolfTable().printAll());
        System.out.println(roles);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void theSpeakersDealtRoleIsReadBeforeTheClaim() {
        Entry best = roles.best(At.BEFORE_ROLE, ROLE);
        Entry embed = roles.entry(At.BEFORE_ROLE, ROLE, "blocks.0.hook_resid_pre");
        double control = best.report().control().orElseThrow().mean();
        String msg = String.format(Locale.ROOT, "best %.3f, majority %.3f, control %.3f, embeddings %.3f",
                best.accuracy(), best.majority(), control, embed.accuracy());
        assertTrue(best.accuracy() > best.majority() + 0.15, msg);
        assertTrue(best.accuracy() > control + 0.15, msg);
        // at 'am' the token is always the same: its embedding (token and position) says nothing of the role
        assertTrue(embed.accuracy() < embed.majority() + 0.03, msg);
    }

    @Test
    void onTheWolfsClaimsTheTrueRoleAndTheModelsOwnClaimAreReadTheCoinIsNot() {
        String last = roles.hooks().get(roles.hooks().size() - 1);
        Entry role = roles.entry(At.BEFORE_ROLE, ROLE, last);
        Entry text = roles.entry(At.BEFORE_ROLE, CLAIM, last);
        Entry own = roles.entry(At.BEFORE_ROLE, OWN, last);
        String msg = String.format(Locale.ROOT, "wolf claims read as wolf %.3f, as the text's claim %.3f, as the "
                + "model's own claim %.3f", role.wolfAccuracy(), text.wolfAccuracy(), own.wolfAccuracy());
        assertTrue(role.wolfRows() >= 100, msg);
        assertTrue(role.wolfAccuracy() > 0.35, msg);
        // the wolf's stated role is a fair coin of the generator: nothing before the word predicts it
        assertTrue(text.wolfAccuracy() > 0.3 && text.wolfAccuracy() < 0.7, msg);
        assertTrue(own.wolfAccuracy() > text.wolfAccuracy() + 0.15, msg);
        assertTrue(roles.best(At.BEFORE_ROLE, OWN).accuracy() > 0.9, roles.toString());
        // at the speaker's name the role is not yet looked up: the wolf is almost never read as the wolf
        for (String h : roles.hooks()) {
            assertTrue(roles.entry(At.SPEAKER_NAME, ROLE, h).wolfAccuracy() < 0.2, h + ": " + msg);
        }
    }

    @Test
    void someOtherSeatsWolfIsReadBeyondTheMajorityClass() {
        double bestGain = Double.NEGATIVE_INFINITY;
        for (Target t : roles.targets()) {
            if (t.kind() != Kind.SEAT_IS_WOLF) continue;
            for (At at : At.values()) {
                Entry e = roles.best(at, t);
                assertTrue(e.rows() > 200, e.toString());
                bestGain = Math.max(bestGain, e.accuracy() - e.majority());
            }
        }
        assertTrue(bestGain > 0.04, "best seat probe over majority: " + bestGain);
        assertEquals(5, roles.targets().stream().filter(t -> t.kind() == Kind.SEAT_IS_WOLF).count());
    }

    @Test
    void tablesAndCharts() {
        assertEquals(2 * 8 * 4, roles.toTable().rowCount());
        assertEquals(2 * 4, roles.wolfTable().rowCount());
        assertTrue(roles.plot(At.BEFORE_ROLE).getSeriesMap().containsKey("seat_0_is_wolf"));
        assertTrue(roles.wolfPlot().getSeriesMap().containsKey("reads true role (wolf)"));
    }

    /** The labeller's rows against the words: one per role claim, at the name or at 'am', typed by the name. */
    @Test
    void labellerMarksEveryRoleClaim() {
        List<Example<HiddenRoles.Meta>> games = HiddenRoles.defaults().examples(Split.TEST, 0, 30);
        for (At at : At.values()) {
            TokenLabeller labeller = RoleProbes.labeller(games, at);
            for (int s = 0; s < games.size(); s++) {
                List<String> w = games.get(s).tokens();
                Map<String, String> deal = new HashMap<>();
                int p = 3;
                for (; !w.get(p - 1).equals("."); p += 3) deal.put(w.get(p), w.get(p + 1));
                int rows = 0;
                for (int i = 0; i < w.size(); i++) {
                    int name = at == At.SPEAKER_NAME ? i : i - 3;
                    boolean expected = name >= p && name + 3 < w.size() && w.get(name + 1).equals(":")
                            && w.get(name + 2).equals("i") && w.get(name + 3).equals("am");
                    Optional<TokenLabeller.Row> row = labeller.at(s, i);
                    assertEquals(expected, row.isPresent(), at + " position " + i + " of " + String.join(" ", w));
                    if (row.isPresent()) {
                        assertEquals(HiddenRoles.Role.valueOf(deal.get(w.get(name)).toUpperCase(Locale.ROOT)).ordinal(),
                                row.get().label());
                        assertEquals(s, row.get().group());
                        assertEquals(games.get(s).ids()[name], row.get().type());
                        rows++;
                    }
                }
                assertEquals(deal.size(), rows);
            }
        }
    }

    @Test
    void badInputIsNamed() {
        assertThrows(IllegalArgumentException.class, () -> RoleProbes.run(model, HiddenRoles.defaults(), 5));
        assertThrows(IllegalArgumentException.class, () -> new Target(Kind.SPEAKER_ROLE, 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> roles.entry(At.BEFORE_ROLE, ROLE, "blocks.9.hook_resid_post"));
        assertTrue(e.getMessage().contains("blocks.2.hook_resid_post"), e.getMessage());
    }
}
