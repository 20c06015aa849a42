package dev.jlens.probe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.Dialogues;
import dev.jlens.data.Dialogues.Attribute;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.UserModelReadout.At;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The zoo's chat-users model keeps a model of its user: at the {@code ?} that ends each user turn, where the token
 * itself says nothing, a linear probe reads the hidden age group from the residual stream well above its control task
 * and above the embeddings, and asked for it, the model names it far above chance.
 */
class UserModelReadoutTest {
    static HookedTransformer model;
    static final Dialogues TASK = Dialogues.defaults();

    @BeforeAll
    static void load() {
        model = Zoo.load("chat-users");
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void theAgeGroupIsReadAtTheEndOfEachUserTurnAndTheModelNamesItWhenAsked() {
        UserModelReadout r = UserModelReadout.run(model, TASK, Attribute.AGE, At.TURN_END, 150);
        Table t = r.toTable();
        System.out.println(t.print());
        assertEquals(model.cfg().nLayers() + 1, t.rowCount(), "the embeddings and every block");
        double embed = t.doubleColumn("accuracy").get(0), chance = 1.0 / 3;
        double best = r.bestAccuracy();
        LayerSweep.Entry bestEntry = r.sweep().best();
        double control = bestEntry.report().control().orElseThrow().mean();
        // the '?' token alone carries nothing: the embeddings read about chance
        assertTrue(embed < chance + 0.1, "embeddings read the age group at '?' with accuracy " + embed);
        assertTrue(best > chance + 0.25, String.format(Locale.ROOT, "best probe %.3f, chance %.3f", best, chance));
        assertTrue(best > control + 0.15, String.format(Locale.ROOT, "probe %.3f vs control %.3f", best, control));
        assertTrue(r.justAsk().accuracy() > chance + 0.3, "just ask: " + r.justAsk());
        assertTrue(r.justAsk().answerFormat() > 0.9, "answers with an age word: " + r.justAsk());
        assertTrue(r.plot().getSeriesMap().containsKey("just ask"));
    }

    /** The labeller's rows, checked against the text: user words only, labelled with the dialogue's truth. */
    @Test
    void labellerTakesTheUserWordsAndTheirTrueValues() {
        List<Example<Dialogues.Meta>> exs = TASK.examples(Split.TEST, 0, 30);
        TokenLabeller all = UserModelReadout.labeller(exs, Attribute.MOOD, At.USER_TOKENS);
        TokenLabeller first = UserModelReadout.labeller(exs, Attribute.EXPERTISE, At.FIRST_TURN);
        TokenLabeller ends = UserModelReadout.labeller(exs, Attribute.AGE, At.TURN_END);
        int rows = 0, endRows = 0;
        for (int s = 0; s < exs.size(); s++) {
            Example<Dialogues.Meta> ex = exs.get(s);
            for (Dialogues.Turn turn : ex.meta().turns()) {
                boolean userTurn = turn.speaker() == Dialogues.Speaker.USER && turn.exchange() < TASK.turns();
                for (int p = turn.start(); p < turn.end(); p++) {
                    boolean word = userTurn && p >= turn.start() + 2 && p < turn.end() - 1;
                    Optional<TokenLabeller.Row> row = all.at(s, p);
                    assertEquals(word, row.isPresent(), ex.tokens().get(p) + " at " + p + " of " + ex.text());
                    if (word) {
                        assertEquals(ex.meta().moods().get(turn.exchange()).ordinal(), row.get().label());
                        assertEquals(s, row.get().group());
                        assertEquals((int) ex.ids()[p], row.get().type());
                        rows++;
                    }
                    assertEquals(word && turn.exchange() == 0, first.at(s, p).isPresent());
                    first.at(s, p).ifPresent(r -> assertEquals(ex.meta().expertise().ordinal(), r.label()));
                    boolean end = userTurn && p == turn.end() - 1;
                    assertEquals(end, ends.at(s, p).isPresent());
                    if (end) {
                        assertEquals("?", ex.tokens().get(p));
                        assertEquals(ex.meta().age().ordinal(), ends.at(s, p).get().label());
                        endRows++;
                    }
                }
            }
        }
        assertEquals(30 * TASK.turns(), endRows);
        assertTrue(rows >= 30 * TASK.turns() * Dialogues.MIN_USER_WORDS, rows + " rows");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> UserModelReadout.run(model, TASK, Attribute.AGE, At.TURN_END, 3));
        assertTrue(e.getMessage().contains("at least 10"), e.getMessage());
    }
}
