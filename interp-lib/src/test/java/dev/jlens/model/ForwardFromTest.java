package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import dev.jlens.hook.NameFilter;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ForwardFromTest {
    @Test
    void resumingAtAnyLayerFromTheCachedResidualGivesTheSameLogitsBitForBit() {
        try (HookedTransformer m = Zoo.load("tinylang-4l")) {
            long[][] ids = {{1, 5, 40, 3, 5, 70, 120}, {1, 6, 41, 3, 9, 71, 121}};
            Batch b = Batch.of(ids);
            try (ActivationCache c = m.runWithCache(b, NameFilter.of("resid_pre", "resid_post"))) {
                float[] full = c.logits().toFloatArray();
                for (int l = 0; l < m.nLayers(); l++) {
                    assertArrayEquals(full, m.forwardFrom(b, l, c.get("resid_pre", l)).toFloatArray(), 0f, "layer " + l);
                }
                NDArray last = c.get("resid_post", m.nLayers() - 1);
                assertArrayEquals(full, m.forwardFrom(b, m.nLayers(), last).toFloatArray(), 0f);
                var e = assertThrows(IllegalArgumentException.class, () -> m.forwardFrom(b, 5, last));
                assertTrue(e.getMessage().contains("valid layers are 0..4"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class,
                        () -> m.forwardFrom(Batch.of(ids[0]), 1, c.get("resid_pre", 1)));
                assertTrue(e.getMessage().contains("[batch, pos, d_model]"), e.getMessage());
            }
        }
    }
}
