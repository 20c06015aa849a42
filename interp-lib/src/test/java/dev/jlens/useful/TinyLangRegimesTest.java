package dev.jlens.useful;

import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The regimes of task (c) on tinylang-4l hold what they promise, and the comparison runs on them. */
class TinyLangRegimesTest {
    static HookedTransformer model;
    static List<UsefulTask> tasks;
    static final TinyLangRegimes.Options OPTIONS = new TinyLangRegimes.Options("blocks.1.hook_resid_post",
            List.of(TinyLangRegimes.Concept.NOUN), List.of(TinyLangRegimes.Regime.values()), 60, 20, 300, 100, 300, 12,
            0.05, 0.2, 128, 8, 100, 0);

    @BeforeAll
    static void build() {
        model = Zoo.load("tinylang-4l");
        tasks = TinyLangRegimes.build(model, OPTIONS);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static UsefulTask task(String name) {
        return tasks.stream().filter(t -> t.name().equals(name)).findFirst().orElseThrow();
    }

    static Set<Float> tokens(float[][] rows) {
        Set<Float> s = new HashSet<>();
        for (float[] r : rows) s.add(r[0]);
        return s;
    }

    @Test
    void regimesHoldWhatTheyPromise() {
        assertEquals(List.of("noun/full", "noun/scarcity", "noun/imbalance", "noun/noise", "noun/shift"),
                tasks.stream().map(UsefulTask::name).toList());
        UsefulTask full = task("noun/full");
        assertEquals(300, full.train().length);
        assertEquals(128, full.view("resid").dim());
        assertEquals(128, full.view("sae").dim());
        UsefulTask scarce = task("noun/scarcity");
        assertEquals(12, scarce.train().length);
        int pos = Arrays.stream(scarce.train()).sum();
        assertTrue(pos >= 2 && pos <= 10, "at least two of each class: " + pos);
        assertEquals(15, Arrays.stream(task("noun/imbalance").train()).sum(), "5% of 300 rows");
        // nouns are a word class: clean labels are a function of the token; noise breaks that for about 20% of rows
        java.util.Map<Float, Integer> clean = new java.util.HashMap<>();
        UsefulTask.View fullIds = full.view("token");
        float[][][] idParts = {fullIds.train(), fullIds.validation(), fullIds.test()};
        int[][] labelParts = {full.train(), full.validation(), full.test()};
        for (int p = 0; p < 3; p++) {
            for (int i = 0; i < idParts[p].length; i++) {
                Integer before = clean.put(idParts[p][i][0], labelParts[p][i]);
                assertTrue(before == null || before == labelParts[p][i], "token " + idParts[p][i][0] + " has one label");
            }
        }
        UsefulTask noise = task("noun/noise");
        int known = 0, disagree = 0;
        for (int i = 0; i < noise.train().length; i++) {
            Integer c = clean.get(noise.view("token").train()[i][0]);
            if (c == null) continue;
            known++;
            if (c != noise.train()[i]) disagree++;
        }
        double rate = (double) disagree / known;
        assertTrue(known > 200 && rate > 0.12 && rate < 0.28, "flipped fraction " + rate + " of " + known);
        // shift: the test words are words the training and validation rows never show
        UsefulTask shift = task("noun/shift");
        Set<Float> seen = tokens(shift.view("token").train());
        seen.addAll(tokens(shift.view("token").validation()));
        Set<Float> test = tokens(shift.view("token").test());
        assertFalse(test.isEmpty());
        test.retainAll(seen);
        assertEquals(Set.of(), test, "no test word in training");
        // and without the shift they overlap
        Set<Float> fullTest = tokens(full.view("token").test());
        fullTest.retainAll(tokens(full.view("token").train()));
        assertFalse(fullTest.isEmpty());
    }

    @Test
    void probesFindNounsOnFullData() {
        Comparison c = Comparison.run(task("noun/full"), TinyLangRegimes.entries(), Bootstrap.defaults());
        assertEquals(5, c.rows().size());
        for (Comparison.Row r : c.rows()) assertTrue(r.test().estimate() > 0.9, r.toString());
        assertEquals(1, c.winLoss().rowCount());
    }
}
