package dev.jlens.probe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.Example;
import dev.jlens.data.HiddenRoles;
import dev.jlens.data.HiddenRoles.Layout;
import dev.jlens.data.Split;
import dev.jlens.model.HookedTransformer;
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
 * A lie probe on the zoo's deceiver: at the token before each stated role, the residual stream tells the wolf's lies
 * from true claims on held-out games, far better than the token and its position alone (the embeddings), and a probe
 * fitted on the five-player shuffled layout still finds them in the four-player round.
 */
class LieProbeTest {
    static HookedTransformer model;
    static final HiddenRoles GAME = HiddenRoles.defaults();

    @BeforeAll
    static void load() {
        model = Zoo.load("deceiver");
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void liesAreReadOnHeldOutGamesAndAcrossLayouts() {
        LieProbe same = LieProbe.run(model, GAME, GAME, LieProbe.At.BEFORE_ROLE, 300, 200);
        System.out.println(same.toTable().print());
        double embed = same.entries().get(0).testAuroc(), best = same.best().testAuroc();
        assertTrue(best > 0.85, same.toString());
        assertTrue(best > embed + 0.15, String.format(Locale.ROOT, "best %.3f vs embeddings %.3f", best, embed));
        assertTrue(same.best().trainLies() > 50 && same.best().testLies() > 30, same.toString());
        LieProbe across = LieProbe.run(model, GAME.withLayouts(Layout.SHUFFLED_5), GAME.withLayouts(Layout.ROUND_4),
                LieProbe.At.BEFORE_ROLE, 300, 200);
        System.out.println(across.toTable().print());
        assertTrue(across.best().testAuroc() > 0.8, across.toString());
        assertTrue(across.entries().get(0).testAuroc() < 0.65, "embeddings across layouts: " + across);
        assertTrue(same.plot().getSeriesMap().containsKey("held-out AUROC"));
    }

    /** The labeller's rows against the text: one per claim, labelled a lie when the role differs from the deal. */
    @Test
    void labellerMarksEveryClaimAndOnlyTheLies() {
        List<Example<HiddenRoles.Meta>> games = GAME.examples(Split.TEST, 0, 40);
        for (LieProbe.At at : LieProbe.At.values()) {
            TokenLabeller labeller = LieProbe.labeller(games, at);
            for (int s = 0; s < games.size(); s++) {
                List<String> w = games.get(s).tokens();
                Map<String, String> deal = new HashMap<>();
                int p = 3;
                for (; !w.get(p - 1).equals("."); p += 3) deal.put(w.get(p), w.get(p + 1));
                int claims = 0;
                for (int i = 0; i < w.size(); i++) {
                    Optional<TokenLabeller.Row> row = labeller.at(s, i);
                    // a claim's role word sits after "am" (about the speaker 3 back) or "is" (about the name before)
                    boolean roleWord = i >= 1 && (w.get(i - 1).equals("am") || w.get(i - 1).equals("is"));
                    int rolePos = at == LieProbe.At.BEFORE_ROLE ? i + 1 : i;
                    boolean expected = rolePos < w.size() && rolePos >= 1
                            && (w.get(rolePos - 1).equals("am") || w.get(rolePos - 1).equals("is"));
                    assertEquals(expected, row.isPresent(), "position " + i + " of " + String.join(" ", w));
                    if (row.isPresent()) {
                        String subject = w.get(rolePos - 1).equals("am") ? w.get(rolePos - 4) : w.get(rolePos - 2);
                        int lie = deal.get(subject).equals(w.get(rolePos)) ? 0 : 1;
                        assertEquals(lie, row.get().label());
                        assertEquals(s, row.get().group());
                        claims++;
                    }
                    assertTrue(!roleWord || at == LieProbe.At.ROLE_WORD == row.isPresent());
                }
                assertEquals(games.get(s).meta().claims().size(), claims);
            }
        }
    }
}
