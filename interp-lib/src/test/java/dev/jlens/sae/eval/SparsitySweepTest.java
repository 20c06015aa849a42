package dev.jlens.sae.eval;

import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TopK dictionaries (256 latents, 300 steps) for k = 2, 4, 8, 16, 32 on tinylang-4l's resid_post of layer 1; the
 * concept match against held-out L0.
 */
class SparsitySweepTest {

    @Test
    void conceptMatchAgainstL0OverATopKSweep() {
        long t0 = System.nanoTime();
        SparsitySweep.Result r;
        try (HookedTransformer model = Zoo.load("tinylang-4l")) {
            TinyLang lang = TinyLang.defaults();
            SaeTrainConfig cfg = SaeTrainConfig.builder().steps(300).batchSize(512).lr(4e-3).seed(0).build();
            r = SparsitySweep.run(model, "blocks.1.hook_resid_post", lang.examples(Split.TRAIN, 0, 128),
                    lang.examples(Split.TEST, 0, 64), 256, List.of(2, 4, 8, 16, 32), cfg);
        }
        System.out.println(r.toTable().printAll());
        System.out.printf("%.1f s%n", (System.nanoTime() - t0) / 1e9);
        assertEquals(5, r.points().size());
        assertEquals(2, r.chart().getSeriesMap().size());
        for (int i = 0; i < r.points().size(); i++) {
            SparsitySweep.Point p = r.points().get(i);
            // TopK keeps at most k latents per token
            assertTrue(p.l0() <= p.k() + 1e-6 && p.l0() > 0.5 * p.k(), p.toString());
            assertTrue(p.meanF1() > 0 && p.meanF1() <= 1, p.toString());
            assertTrue(p.concepts() > 10, p.toString());
            if (i > 0) {
                SparsitySweep.Point prev = r.points().get(i - 1);
                assertTrue(p.l0() > prev.l0(), "L0 grows with k");
                assertTrue(p.fvu() < prev.fvu() + 0.02, "more latents per token reconstruct at least as well");
            }
        }
    }
}
