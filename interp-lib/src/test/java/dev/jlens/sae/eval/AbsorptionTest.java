package dev.jlens.sae.eval;

import dev.jlens.probe.ProbeTask;

import dev.jlens.sae.SparseCoder;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Absorption on planted activations with hand-built dictionaries: none where nothing is absorbed, 60% where it is. */
class AbsorptionTest {
    static Planted planted;

    @BeforeAll
    static void plant() {
        planted = new Planted(7, 4000, 2000);
    }

    @Test
    void aDictionaryWithoutAbsorptionScoresZero() {
        try (SparseCoder sae = planted.clean()) {
            Absorption.Result r = Absorption.run(sae, List.of(planted.parentTask()), Absorption.Options.defaults());
            System.out.println(r.toTable().printAll());
            Absorption.Parent p = r.parents().get(0);
            assertTrue(p.probeAccuracy() > 0.99, "the parent is linearly separable: " + p.probeAccuracy());
            assertArrayEquals(new int[] {Planted.PARENT_LATENT}, p.splitLatents(), "the parent latent is the main one");
            assertTrue(p.probeTruePositives() > 900, "about half of 2000 test rows: " + p.probeTruePositives());
            assertEquals(0, p.absorptionFraction(), 0.01);
            assertEquals(0, p.fullAbsorptionRate(), 0.01);
            assertTrue(p.topAbsorber().isEmpty());
        }
    }

    @Test
    void aDictionaryWhoseChildrenAbsorbTheParentScoresTheirShare() {
        try (SparseCoder sae = planted.absorbing()) {
            Absorption.Result r = Absorption.run(sae, List.of(planted.parentTask()), Absorption.Options.defaults());
            System.out.println(r.toTable().printAll());
            Absorption.Parent p = r.parents().get(0);
            assertArrayEquals(new int[] {Planted.PARENT_LATENT}, p.splitLatents(),
                    "each absorbing child adds too little F1 to be a split latent: F1 by k " + java.util.Arrays.toString(p.splitF1()));
            // the absorbed children (1..30) make up 60% of the parent's tokens
            double absorbedShare = absorbedShare();
            assertEquals(absorbedShare, p.absorptionFraction(), 0.03, r.toString());
            assertEquals(absorbedShare, p.fullAbsorptionRate(), 0.03, r.toString());
            assertTrue(p.absorptionFraction() > 0.5, r.toString());
            int absorber = p.topAbsorber().orElseThrow();
            assertTrue(absorber >= 2 && absorber <= Planted.CHILDREN, "an absorbing child latent: " + absorber);
            assertTrue(p.absorbedTypes().keySet().stream().allMatch(t -> t >= 1 && t < Planted.CHILDREN),
                    "only absorbed children's tokens: " + p.absorbedTypes());
            assertEquals(p.absorptionFraction(), r.meanAbsorptionFraction(), 1e-12);
            assertEquals(1.0, r.meanSplitLatents(), 1e-12);
            Table t = r.toTable();
            assertEquals(2, t.rowCount(), "one parent and the mean");
            assertEquals("mean", t.stringColumn("parent").get(1));
        }
    }

    private static double absorbedShare() {
        int pos = 0, absorbed = 0;
        for (int i = 0; i < planted.test.size(); i++) {
            if (planted.test.labels()[i] != 1) continue;
            pos++;
            if (planted.test.types().get()[i] >= 1) absorbed++;
        }
        return (double) absorbed / pos;
    }

    @Test
    void aParentTheModelDoesNotRepresentIsListedButNotScored() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(1);
        int[] yTrain = new int[planted.train.size()], yTest = new int[planted.test.size()];
        for (int i = 0; i < yTrain.length; i++) yTrain[i] = r.nextDouble() < 0.2 ? 1 : 0;
        for (int i = 0; i < yTest.length; i++) yTest[i] = r.nextDouble() < 0.2 ? 1 : 0;
        ProbeTask noise = new ProbeTask("noise", planted.train.withLabels(yTrain), planted.test.withLabels(yTest));
        try (SparseCoder sae = planted.absorbing()) {
            Absorption.Result res = Absorption.run(sae, List.of(planted.parentTask(), noise), Absorption.Options.defaults());
            System.out.println(res.toTable().printAll());
            Absorption.Parent n = res.parents().get(1);
            assertTrue(n.probeF1() < 0.6 && !n.evaluated(), "random labels: probe F1 " + n.probeF1());
            assertEquals(List.of(res.parents().get(0)), res.evaluated());
            assertEquals(res.parents().get(0).absorptionFraction(), res.meanAbsorptionFraction(), 1e-12);
            assertEquals("1 of 2", res.toTable().stringColumn("evaluated").get(2));
            var json = SaeBenchJson.absorption(res, sae, SaeBenchJson.Meta.of("planted", 0));
            assertEquals(1, json.get("eval_result_details").size(), "SAEBench writes no detail for an unscored parent");
            assertTrue(json.get("eval_result_unstructured").get("parents").has("noise"));
            Absorption.Result none = Absorption.run(sae, List.of(noise), Absorption.Options.defaults());
            assertTrue(Double.isNaN(none.meanAbsorptionFraction()));
            assertTrue(SaeBenchJson.absorption(none, sae, SaeBenchJson.Meta.of("planted", 0)).get("eval_result_metrics")
                    .get("mean").get("mean_absorption_fraction_score").isNull(), "JSON has no NaN");
        }
    }

    @Test
    void theTokenRuleFollowsSaeBench() {
        Absorption.Options o = Absorption.Options.defaults();
        boolean[] main = {true, false, false};
        double[] cos = {1, 0.7, 0.05};
        // main latents cover the projection: no absorption
        assertEquals(0, Absorption.absorptionFraction(1.0, 1.0, new double[] {1.0, 0.5, 0}, cos, main, o));
        // main silent, an aligned latent carries it all: full
        assertEquals(1, Absorption.absorptionFraction(1.0, 0, new double[] {0, 0.9, 0}, cos, main, o));
        // an unaligned latent (cosine 0.05 < 0.1) does not count
        assertEquals(0, Absorption.absorptionFraction(1.0, 0, new double[] {0, 0, 0.9}, cos, main, o));
        // partial: main 0.3, absorber 0.6 of 1.0 -> 0.6 / 0.9
        assertEquals(0.6 / 0.9, Absorption.absorptionFraction(1.0, 0.3, new double[] {0.3, 0.6, 0}, cos, main, o), 1e-12);
        // the absorber carries less than 40%: none
        assertEquals(0, Absorption.absorptionFraction(1.0, 0.3, new double[] {0.3, 0.35, 0}, cos, main, o));
        // a token that does not project onto the probe cannot be absorbed
        assertEquals(0, Absorption.absorptionFraction(-0.5, -1, new double[] {-1, 0.9, 0}, cos, main, o));
        assertEquals(0.5, Absorption.f1(new int[] {1, 1, 0, 0}, new int[] {1, 0, 1, 0}), 1e-12);   // tp 1, fp 1, fn 1
    }

    @Test
    void badInputIsNamed() {
        try (SparseCoder sae = planted.clean()) {
            assertThrows(IllegalArgumentException.class, () -> Absorption.run(sae, List.of(), Absorption.Options.defaults()));
        }
        assertThrows(IllegalArgumentException.class, () -> Absorption.Options.defaults().withMaxK(0));
    }
}
