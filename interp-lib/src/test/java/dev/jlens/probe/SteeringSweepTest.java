package dev.jlens.probe;

import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Steering tinylang-4l's verb agreement with a number vector read from contrastive pairs. */
class SteeringSweepTest {
    static HookedTransformer model;
    static final String HOOK = "blocks.2.hook_resid_post";
    static final List<String> NOUNS = List.of("dog", "cat", "bird", "horse", "teacher", "farmer", "king", "doctor");

    @BeforeAll
    static void load() {
        model = Zoo.load("tinylang-4l");
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** log P(plural present verb) - log P(singular present verb) at the next token. */
    static ConceptMetric pluralVerbPreference() {
        TinyLang lang = TinyLang.defaults();
        List<Long> plural = new ArrayList<>(), singular = new ArrayList<>();
        for (List<TinyLang.VerbForms> verbs : List.of(TinyLang.INTRANSITIVE, TinyLang.TRANSITIVE)) {
            for (TinyLang.VerbForms v : verbs) {
                plural.add(lang.tokenId(v.plural()));
                singular.add(lang.tokenId(v.singular()));
            }
        }
        ConceptMetric.NextToken p = (ConceptMetric.NextToken) ConceptMetric.logProbOf(plural.stream().mapToLong(x -> x).toArray());
        ConceptMetric.NextToken s = (ConceptMetric.NextToken) ConceptMetric.logProbOf(singular.stream().mapToLong(x -> x).toArray());
        return ConceptMetric.nextToken(l -> p.score().applyAsDouble(l) - s.score().applyAsDouble(l));
    }

    @Test
    void aContrastiveNumberVectorMovesAgreementMonotonicallyWithGrowingSideEffects() {
        List<String> plural = new ArrayList<>(), singular = new ArrayList<>();
        TinyLang.NOUNS.stream().limit(12).forEach(n -> {
            plural.add("the " + n.plural());
            singular.add("the " + n.singular());
        });
        SteeringVector caa = SteeringVector.contrastive(model, HOOK, plural, singular);
        List<String> targets = NOUNS.stream().map(n -> "the " + n + " near the river").toList();
        List<String> neutral = List.of("the big dog near the barn runs . the cats that Alice sees sleep .",
                "Bob likes some tall teachers . the foxes swam .");
        SteeringSweep.Result r = SteeringSweep.of(model, Steering.of(caa), targets, pluralVerbPreference())
                .withNeutral(neutral).withPromptPrefix("the dogs run . the kings sleep . ")
                .run(0, 1, 2, 4);
        Table t = r.toTable();
        System.out.println(caa + "\n" + t.printAll());
        List<SteeringSweep.Row> s = r.steered();
        assertEquals(0.0, s.get(0).klNeutral(), 0.0);           // strength 0: identical distributions
        assertEquals(0.0, s.get(0).lossDeltaNeutral(), 0.0);
        assertTrue(s.get(0).concept() < -2, "singular subjects prefer singular verbs unsteered: " + s.get(0));
        for (int i = 1; i < s.size(); i++) {
            assertTrue(s.get(i).concept() > s.get(i - 1).concept(), "concept rises with strength: " + s);
            assertTrue(s.get(i).klNeutral() > s.get(i - 1).klNeutral(), "KL rises with strength: " + s);
        }
        assertTrue(s.get(s.size() - 1).concept() > 0, "strength 4 should flip agreement to plural: " + s);
        assertTrue(r.promptBaseline().isPresent());
        assertEquals(5, t.rowCount());
        assertEquals(2, r.plot().getSeriesMap().size());
        assertEquals(2, r.plotSideEffects().getSeriesMap().size());

        // the first PC of the same pairs' differences points the same way as their mean
        List<long[]> pt = plural.stream().map(model::toTokens).toList(), st = singular.stream().map(model::toTokens).toList();
        SteeringVector pc = SteeringVector.pcaOfDifferences(model, HOOK, pt, st, Positions.last());
        double cos = Planted.cosine(pc.vector(), caa.vector());
        System.out.printf("cosine(first PC, mean difference) = %.4f%n", cos);
        assertTrue(cos > 0.9, "cosine " + cos);
        assertEquals(1.0, pc.norm(), 1e-5);
    }

    @Test
    void theFirstPrincipalComponentIsTheDirectionOfMostSpreadNotTheMean() {
        // differences (1, +-3): the mean is (1, 0) but the spread is along the second axis
        float[] pc = SteeringVector.firstPrincipalComponent(new double[][] {{1, 3}, {1, -3}, {1, 3}, {1, -3}});
        assertEquals(0.0, pc[0], 1e-6);
        assertEquals(1.0, Math.abs(pc[1]), 1e-6);
        // consistent differences: the PC is their common direction, signed like their mean
        pc = SteeringVector.firstPrincipalComponent(new double[][] {{-2, 0.1}, {-2, -0.1}, {-2.2, 0}});
        assertTrue(pc[0] < -0.99, java.util.Arrays.toString(pc));
    }

    @Test
    void vectorsFromProbesSaeLatentsAndNormalisation() {
        LinearProbe probe = new LinearProbe("diff_means", 2, new float[][] {{3, 4}}, new float[] {0}, java.util.Map.of());
        assertArrayEquals(new float[] {0.6f, 0.8f}, SteeringVector.fromProbe(probe, HOOK).vector(), 1e-7f);
        assertArrayEquals(new float[] {-0.6f, -0.8f}, SteeringVector.fromProbe(probe, 0, HOOK).vector(), 1e-7f);
        try (SparseCoder sae = SparseCoder.create(SaeConfig.of(128, 256, new SaeConfig.TopK(8)), 3)) {
            SteeringVector v = SteeringVector.fromSaeLatent(sae, 17, HOOK);
            assertArrayEquals(sae.weights().get(SaeWeights.W_DEC).get(17).toFloatArray(), v.vector());
            LinearProbeTest.assertMessage(null, "latent 256 is out of range", () -> SteeringVector.fromSaeLatent(sae, 256, HOOK));
        }
        long[][] tokens = {model.toTokens("the big dog near the barn runs . the cats that Alice sees sleep .")};
        double typical = SteeringVector.typicalNorm(model, HOOK, LayerSweep.batches(List.<long[][]>of(tokens)));
        float[] e0 = new float[128];
        e0[0] = 2;
        SteeringVector n = SteeringVector.of(HOOK, e0).normalizedToResidual(model, LayerSweep.batches(List.<long[][]>of(tokens)));
        assertEquals(typical, n.norm(), 1e-4 * typical);
        assertTrue(typical > 1, "typical norm " + typical);
    }
}
