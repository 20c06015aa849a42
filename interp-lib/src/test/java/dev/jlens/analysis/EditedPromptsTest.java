package dev.jlens.analysis;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.Dialogues;
import dev.jlens.data.Dialogues.Attribute;
import dev.jlens.data.HiddenRoles;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Patching from edited prompts: the pairs differ exactly where the edit says (checked against the words), patching
 * every position of layer 0's residual stream restores the clean metric, and each edit moves its metric the way the
 * generator's rules say it should (a player dealt the seer claims seer; an expert's cues call for expert words).
 */
class EditedPromptsTest {
    static HookedTransformer deceiver, chat;
    static EditedPrompts.Pairs game, expertise, age;

    @BeforeAll
    static void load() {
        deceiver = Zoo.load("deceiver");
        chat = Zoo.load("chat-users");
        game = EditedPrompts.rolesSwapped(HiddenRoles.defaults(), 32, 1, 3);
        expertise = EditedPrompts.cuesReplaced(Dialogues.defaults(), Attribute.EXPERTISE, 0, 1, 32, 2, 0);
        age = EditedPrompts.cuesReplaced(Dialogues.defaults(), Attribute.AGE, 0, 2, 32, 2, 0);
    }

    @AfterAll
    static void close() {
        deceiver.close();
        chat.close();
    }

    @Test
    void gamePairsDifferExactlyAtTheTwoDealtRoles() {
        assertEquals(32, game.size());
        for (int i = 0; i < game.size(); i++) {
            List<String> c = game.cleanWords().get(i), e = game.editedWords().get(i);
            assertEquals(game.length(), c.size());
            assertEquals(game.length(), e.size());
            // the deal: "<bos> deal : NAME ROLE , ..." -- seat 1's role word is the 8th token, seat 3's the 14th
            List<Integer> differ = new ArrayList<>();
            for (int p = 0; p < c.size(); p++) if (!c.get(p).equals(e.get(p))) differ.add(p);
            assertEquals(List.of(7, 13), differ, game.show(i));
            assertEquals(List.of("wolf", "seer"), List.of(c.get(7), c.get(13)));
            assertEquals(List.of("seer", "wolf"), List.of(e.get(7), e.get(13)));
            // it ends where the wolf (seat 1, named at position 6) is about to state its role
            assertEquals(List.of(c.get(6), ":", "i", "am"), c.subList(c.size() - 4, c.size()));
            assertArrayEquals(new int[] {7, 13}, game.editedPositions()[i]);
            for (int p = 0; p < c.size(); p++) {
                assertEquals(deceiver.toTokens(String.join(" ", c.subList(1, c.size())))[p], game.clean()[i][p]);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> EditedPrompts.rolesSwapped(HiddenRoles.defaults(), 4, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> EditedPrompts.rolesSwapped(HiddenRoles.defaults(), 4, 0, 4));
    }

    @Test
    void dialoguePairsDifferExactlyAtTheReplacedCues() {
        for (EditedPrompts.Pairs pairs : List.of(expertise, age)) {
            boolean isAge = pairs == age;
            List<String> from = isAge ? Dialogues.AGE_CUES.get(0) : Dialogues.EXPERTISE_CUES.get(0);
            List<String> to = isAge ? Dialogues.AGE_CUES.get(2) : Dialogues.EXPERTISE_CUES.get(1);
            for (int i = 0; i < pairs.size(); i++) {
                List<String> c = pairs.cleanWords().get(i), e = pairs.editedWords().get(i);
                int question = c.indexOf("?");
                int replaced = 0;
                for (int p = 0; p < c.size(); p++) {
                    boolean cue = p < question && from.contains(c.get(p));
                    assertEquals(cue, !c.get(p).equals(e.get(p)), "position " + p + ": " + pairs.show(i));
                    if (cue) {
                        assertTrue(to.contains(e.get(p)), pairs.show(i));
                        replaced++;
                    }
                }
                assertTrue(replaced >= 2, pairs.show(i));
                assertEquals(replaced, pairs.editedPositions()[i].length);
                // the first user turn has the most words, and the prompt stops where the assistant's register shows
                assertEquals(List.of("<bos>", "user", ":"), c.subList(0, 3));
                assertEquals(3 + Dialogues.MAX_USER_WORDS, question);
                assertEquals(List.of("assistant", ":"), c.subList(question + 1, question + 3));
                assertEquals(isAge ? question + 3 : question + 4, c.size());
            }
        }
        assertThrows(IllegalArgumentException.class,
                () -> EditedPrompts.cuesReplaced(Dialogues.defaults(), Attribute.MOOD, 0, 1, 4, 1, 0));
        assertThrows(IllegalArgumentException.class,
                () -> EditedPrompts.cuesReplaced(Dialogues.defaults(), Attribute.EXPERTISE, 0, 2, 4, 1, 0));
    }

    @Test
    void pairsAreDeterministic() {
        EditedPrompts.Pairs again = EditedPrompts.cuesReplaced(Dialogues.defaults(), Attribute.EXPERTISE, 0, 1, 32, 2, 0);
        for (int i = 0; i < 32; i++) assertArrayEquals(expertise.edited()[i], again.edited()[i]);
        EditedPrompts.Pairs other = EditedPrompts.cuesReplaced(Dialogues.defaults(), Attribute.EXPERTISE, 0, 1, 32, 2, 7);
        boolean differs = false;
        for (int i = 0; i < 32; i++) differs |= !java.util.Arrays.equals(expertise.edited()[i], other.edited()[i]);
        assertTrue(differs, "another seed draws other replacement words");
    }

    @Test
    void patchingEveryPositionRestoresTheCleanRunAndTheFirstLayerAtTheEditsDoesToo() {
        for (var pm : List.of(new Object[] {game, deceiver}, new Object[] {expertise, chat}, new Object[] {age, chat})) {
            EditedPrompts.Pairs pairs = (EditedPrompts.Pairs) pm[0];
            HookedTransformer model = (HookedTransformer) pm[1];
            Patching p = pairs.patching(model);
            PatchResult layers = p.sweepLayers(PatchSite.RESID_PRE, Direction.DENOISE);
            assertEquals(p.metricClean(), layers.value(new PatchIndex(0, java.util.OptionalInt.empty(),
                    java.util.OptionalInt.empty())), 1e-4, pairs.description());
            EditedPrompts.Recovery r = EditedPrompts.recovery(model, pairs);
            System.out.println(r);
            assertEquals(p.metricClean(), r.metricClean(), 1e-6);
            for (EditedPrompts.Recovery.Row row : r.rows()) {
                if (row.where().equals("all positions")) assertEquals(1, row.fraction(), 1e-3, row.toString());
            }
            // at the embeddings the edited tokens are the only difference: patching them undoes the whole edit
            assertEquals(1, r.fraction("blocks.0.hook_resid_pre", "edited positions"), 1e-3);
            // the last residual stream acts on the logits at the final position only
            assertEquals(1, r.fraction("blocks.2.hook_resid_post", "final position"), 1e-3);
            assertEquals(0, r.fraction("blocks.2.hook_resid_post", "edited positions"), 1e-3);
            assertEquals(3 * 4, r.toTable().rowCount());
            assertTrue(r.plot().getSeriesMap().containsKey("final position"));
        }
    }

    @Test
    void editsMoveTheMetricTheWayTheRulesSay() {
        Patching g = game.patching(deceiver), x = expertise.patching(chat), a = age.patching(chat);
        String msg = String.format(Locale.ROOT, "game %.3f -> %.3f, expertise %.3f -> %.3f, age %.3f -> %.3f",
                g.metricClean(), g.metricCorrupt(), x.metricClean(), x.metricCorrupt(), a.metricClean(),
                a.metricCorrupt());
        System.out.println(msg);
        // the metric by hand: mean logit of the senior openers minus the teen openers at the last position
        Dialogues d = Dialogues.defaults();
        try (ai.djl.ndarray.NDScope scope = new ai.djl.ndarray.NDScope()) {
            float[] logits = chat.forward(age.clean()).toFloatArray();
            int len = age.length(), vocab = chat.cfg().dVocab();
            double sum = 0;
            for (int i = 0; i < age.size(); i++) {
                int base = (i * len + len - 1) * vocab;
                double senior = 0, teen = 0;
                for (String w : Dialogues.OPENERS.get(2)) senior += logits[base + (int) d.tokenId(w)] / 3.0;
                for (String w : Dialogues.OPENERS.get(0)) teen += logits[base + (int) d.tokenId(w)] / 3.0;
                sum += senior - teen;
            }
            assertEquals(sum / age.size(), a.metricClean(), 1e-4);
        }
        // a player dealt the seer claims seer: logit(seer) - logit(villager) rises (observed +6.7)
        assertTrue(g.metricCorrupt() - g.metricClean() > 4, msg);
        // expert cues call for expert explanation words (observed +0.80), senior cues for senior openers (+3.2)
        assertTrue(x.metricCorrupt() - x.metricClean() > 0.5, msg);
        assertTrue(a.metricCorrupt() - a.metricClean() > 2, msg);
    }

    @Test
    void theRoleTravelsToTheClaimInTheFirstBlock() {
        Patching p = game.patching(deceiver);
        PatchResult sweep = p.sweep(PatchSite.RESID_PRE, Direction.DENOISE);
        System.out.println(sweep + ", top " + sweep.top(6));
        EditedPrompts.Recovery r = EditedPrompts.recovery(deceiver, game);
        // after block 0 the deal's role words no longer carry the edit; the claim's position does
        assertTrue(Math.abs(r.fraction("blocks.2.hook_resid_pre", "edited positions")) < 0.15, r.toString());
        assertTrue(r.fraction("blocks.2.hook_resid_pre", "final position") > 0.7, r.toString());
        int last = game.length() - 1;
        assertTrue(sweep.top(3).contains(PatchIndex.position(1, last)), sweep.top(6).toString());
        assertEquals(3 * game.length(), sweep.toTable().rowCount());
    }
}
