package dev.jlens.sae.eval;

import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Concept recovery on planted latents, and the random-model control on real activations: tinylang-4l and the same
 * architecture with random weights, resid_post of layer 1, a small TopK dictionary trained briefly on each.
 */
class RandomControlTest {
    static final String HOOK = "blocks.1.hook_resid_post";

    @Test
    void conceptRecoveryFindsThePlantedLatent() {
        SplittableRandom r = new SplittableRandom(5);
        int n = 500;
        boolean[] concept = new boolean[n];
        float[][] latents = new float[n][3];
        for (int i = 0; i < n; i++) {
            concept[i] = r.nextDouble() < 0.3;
            latents[i][0] = r.nextDouble() < 0.5 ? (float) r.nextDouble() : 0;          // noise
            latents[i][1] = concept[i] ? 1 + (float) r.nextDouble() : 0;                // the concept exactly
            latents[i][2] = concept[i] || r.nextDouble() < 0.5 ? (float) r.nextDouble() : 0;  // too general
        }
        Map<String, boolean[]> concepts = new LinkedHashMap<>();
        concepts.put("pos=X", concept);
        List<RandomControl.Recovery> rec = RandomControl.conceptRecovery(latents, concepts);
        assertEquals(1, rec.size());
        RandomControl.Recovery c = rec.get(0);
        assertEquals(1, c.f1Latent());
        assertEquals(1.0, c.f1(), 1e-6);
        assertEquals(1, c.aurocLatent());
        assertEquals(1.0, c.auroc(), 1e-9);
        assertTrue(c.wordClass());
        // a latent silent everywhere ranks every token the same: AUROC 1/2
        List<RandomControl.Recovery> silent = RandomControl.conceptRecovery(new float[n][1], concepts);
        assertEquals(0.5, silent.get(0).auroc(), 1e-9);
    }

    @Test
    void trainedModelsDictionaryRecoversWordClassesBetterThanARandomModels() {
        long t0 = System.nanoTime();
        TinyLang lang = TinyLang.defaults();
        RandomControl.Result res;
        RandomControl.Options d = RandomControl.Options.defaults();
        RandomControl.Options options = new RandomControl.Options(d.labels(), d.absorption().withMaxK(5), d.probing(),
                d.harvestBatch(), d.minRelativeDifference());
        try (HookedTransformer trained = Zoo.load("tinylang-4l");
             HookedTransformer random = HookedTransformer.random(trained.cfg(), 0)) {
            Map<String, HookedTransformer> models = new LinkedHashMap<>();
            models.put("trained", trained);
            models.put("random", random);
            res = RandomControl.run(models, HOOK, lang.examples(Split.TRAIN, 0, 128), lang.examples(Split.TEST, 0, 48),
                    SaeConfig.of(trained.cfg().dModel(), 128, new SaeConfig.TopK(8)),
                    SaeTrainConfig.builder().steps(200).batchSize(512).lr(4e-3).build(), List.of(0L), options);
        }
        System.out.println(res.toTable().printAll());
        System.out.println(res.conceptTable().printAll());
        System.out.println(res);
        System.out.printf("total %.1f s%n", (System.nanoTime() - t0) / 1e9);
        assertEquals(2, res.runs().size());
        double trainedF1 = res.mean("trained", "concept_f1_word_class"), randomF1 = res.mean("random", "concept_f1_word_class");
        assertTrue(trainedF1 > randomF1, "trained " + trainedF1 + " vs random " + randomF1);
        assertTrue(res.apart("concept_f1_word_class"), res.toString());
        // the same TopK rule on both: L0 is k on each, so L0 cannot tell them apart
        assertEquals(8.0, res.mean("trained", "l0"), 1e-6);
        assertEquals(8.0, res.mean("random", "l0"), 1e-6);
        assertTrue(!res.apart("l0"));
    }
}
