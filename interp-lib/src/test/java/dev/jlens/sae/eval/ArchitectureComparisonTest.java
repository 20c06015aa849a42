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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Matryoshka against BatchTopK on tinylang-4l's resid_post of layer 1: 256 latents, k = 8, 200 steps on the same
 * batches, one seed.
 */
class ArchitectureComparisonTest {
    static final String HOOK = "blocks.1.hook_resid_post";

    @Test
    void matryoshkaAgainstBatchTopKEndToEnd() {
        long t0 = System.nanoTime();
        int k = 8;
        ArchitectureComparison.Result r;
        TinyLang lang = TinyLang.defaults();
        try (HookedTransformer model = Zoo.load("tinylang-4l")) {
            r = ArchitectureComparison.run(model, HOOK, lang.examples(Split.TRAIN, 0, 128),
                    lang.examples(Split.TEST, 0, 40), ArchitectureComparison.matryoshkaVsBatchTopK(128, 256, k),
                    SaeTrainConfig.builder().steps(200).batchSize(512).lr(4e-3).build(), List.of(0L),
                    new ArchitectureComparison.Options(RandomControl.Options.defaults(), 3, 30, 8));
        }
        System.out.println(r.toTable().printAll());
        System.out.println(r.conceptTable().print(8));
        System.out.println(r);
        System.out.printf("%.1f s%n", (System.nanoTime() - t0) / 1e9);
        assertEquals(List.of("batchtopk", "matryoshka"), r.names());
        assertEquals(ArchitectureComparison.METRICS.size(), r.toTable().rowCount());
        assertEquals(3, r.toTable().columnCount());
        assertEquals(2, r.chart().getSeriesMap().size());
        assertEquals(r.runs().get(0).concepts().size(), r.conceptTable().rowCount());
        for (String a : r.names()) {
            // both keep about k latents per held-out token: the batch threshold learned in training holds at inference
            double l0 = r.mean(a, "l0");
            assertTrue(Math.abs(l0 - k) <= 0.3 * k, a + " hits the L0 target " + k + ": " + l0);
            assertTrue(r.mean(a, "fvu") > 0 && r.mean(a, "fvu") < 0.3, a + " reconstructs: " + r.mean(a, "fvu"));
            assertTrue(r.mean(a, "loss_recovered") > 0.5 && r.mean(a, "loss_recovered") < 1.05,
                    a + " keeps most of the model's loss: " + r.mean(a, "loss_recovered"));
            assertTrue(Double.isFinite(r.mean(a, "ce_loss_delta")), a);
            for (String m : List.of("absorption_first_letter", "full_absorption_first_letter", "absorption_word_class",
                    "concept_f1", "dead_fraction")) {
                double v = r.mean(a, m);
                assertTrue(v >= 0 && v <= 1, a + " " + m + " " + v);
            }
            assertTrue(r.mean(a, "concept_auroc") > 0.5 && r.mean(a, "concept_auroc") <= 1, a);
            // a word class is linear in the residual stream; five latents carry at least about what one does
            assertTrue(r.mean(a, "probe_llm_accuracy") > 0.95, a);
            assertTrue(r.mean(a, "sae_top_5_accuracy") >= r.mean(a, "sae_top_1_accuracy") - 0.01, a);
            assertEquals(0, r.sd(a, "fvu"), "one seed: no spread");
        }
        assertThrows(IllegalArgumentException.class, () -> r.mean("relu", "fvu"));
        assertThrows(IllegalArgumentException.class, () -> r.mean("batchtopk", "fvuu"));
    }

    @Test
    void badInputNamesTheProblem() {
        assertThrows(IllegalArgumentException.class, () -> ArchitectureComparison.matryoshkaVsBatchTopK(128, 100, 8));
        Map<String, SaeConfig> mixed = new LinkedHashMap<>();
        mixed.put("a", SaeConfig.of(128, 256, new SaeConfig.BatchTopK(8)));
        mixed.put("b", SaeConfig.of(64, 256, new SaeConfig.BatchTopK(8)));
        TinyLang lang = TinyLang.defaults();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ArchitectureComparison.run(null,
                HOOK, lang.examples(Split.TRAIN, 0, 2), lang.examples(Split.TEST, 0, 2), mixed,
                SaeTrainConfig.builder().build(), List.of(0L), ArchitectureComparison.Options.defaults()));
        assertTrue(e.getMessage().contains("'b' reads 64"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ArchitectureComparison.Options(
                RandomControl.Options.defaults(), 0, 40, 32));
    }
}
