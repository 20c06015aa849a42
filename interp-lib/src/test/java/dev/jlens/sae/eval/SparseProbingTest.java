package dev.jlens.sae.eval;

import dev.jlens.sae.SparseCoder;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** k-sparse probing on planted activations: k = 1 finds the planted latent and matches the full probe. */
class SparseProbingTest {
    @Test
    void theTopLatentIsThePlantedOneAndMatchesTheFullProbe() {
        Planted planted = new Planted(3, 3000, 1500);
        try (SparseCoder sae = planted.clean()) {
            SparseProbing.Result r = SparseProbing.run(sae, List.of(planted.parentTask(), planted.childTask(12),
                    planted.childTask(5)), SparseProbing.Options.defaults());
            Table t = r.toTable();
            System.out.println(t.printAll());
            SparseProbing.Row parent = r.rows().get(0), child12 = r.rows().get(1), child5 = r.rows().get(2);
            assertEquals(Planted.PARENT_LATENT, parent.latents().get(1)[0]);
            assertEquals(13, child12.latents().get(1)[0], "child 12's latent");
            assertEquals(6, child5.latents().get(1)[0], "child 5's latent");
            for (SparseProbing.Row row : r.rows()) {
                assertTrue(row.llm() > 0.98, row.task() + ": full probe " + row.llm());
                assertTrue(row.saeTopK().get(1) > 0.98, row.task() + ": top-1 latent " + row.saeTopK().get(1));
                assertTrue(row.saeTopK().get(1) >= row.llm() - 0.01, row.task() + " top-1 vs full");
                assertEquals(5, row.latents().get(5).length);
            }
            // one raw dimension does not carry a planted direction: the top-1 raw probe is worse than the top-1 latent
            assertTrue(r.meanLlmTopK(1).orElseThrow() < r.meanSaeTopK(1), r.meanLlmTopK(1) + " " + r);
            Map<String, Double> m = r.metrics();
            assertEquals(List.of("llm_test_accuracy", "llm_top_1_test_accuracy", "llm_top_2_test_accuracy",
                    "llm_top_5_test_accuracy", "sae_test_accuracy", "sae_top_1_test_accuracy", "sae_top_2_test_accuracy",
                    "sae_top_5_test_accuracy"), List.copyOf(m.keySet()));
            assertEquals(4, t.rowCount() + 1, "one row per task");
            assertThrows(IllegalArgumentException.class, () -> r.meanSaeTopK(3));
        }
    }

    @Test
    void latentsAreRankedByTheAbsoluteDifferenceOfClassMeans() {
        float[][] rows = {{0, 5, 1}, {0, 5, 1}, {1, 0, 1}, {1, 0, 0}};
        int[] labels = {0, 0, 1, 1};
        // column 1: |0 - 5| = 5, column 0: |1 - 0| = 1, column 2: |0.5 - 1| = 0.5
        assertEquals(List.of(1, 0, 2), java.util.Arrays.stream(SparseProbing.topByMeanDifference(rows, labels, 3))
                .boxed().toList());
        assertThrows(IllegalArgumentException.class, () -> SparseProbing.Options.defaults().withKs(0));
    }
}
