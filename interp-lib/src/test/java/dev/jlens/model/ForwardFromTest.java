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

    @Test
    void resumingAfterAPrefixOfKeysAndValuesGivesTheLastPositionsLogits() {
        // GPT-2 (learned positions) and Llama (rotary: the suffix's positions must continue after the prefix)
        for (var cfg : java.util.List.of(dev.jlens.model.arch.ModelConfig.gpt2(32, 3, 4, 64, 50, 16),
                dev.jlens.model.arch.ModelConfig.llama(32, 3, 4, 2, 64, 50, 16))) {
            try (HookedTransformer m = HookedTransformer.random(cfg, 7)) {
                long[][] ids = {{1, 5, 40, 3, 5, 7, 12, 9}, {1, 6, 41, 3, 9, 7, 2, 11}};
                int len = ids[0].length;
                try (ActivationCache c = m.runWithCache(Batch.of(ids), NameFilter.of("resid_pre"))) {
                    float[] full = c.logits().get(":, -1, :").toFloatArray();
                    for (int cut : new int[] {1, 3, len - 1}) {
                        long[][] head = new long[2][], tail = new long[2][];
                        for (int i = 0; i < 2; i++) {
                            head[i] = java.util.Arrays.copyOf(ids[i], cut);
                            tail[i] = java.util.Arrays.copyOfRange(ids[i], cut, len);
                        }
                        try (var prefix = m.newKvCache()) {
                            m.forward(Batch.of(head), prefix).close();
                            for (int l = 0; l < m.nLayers(); l++) {
                                // three copies of the batch, as patching repeats it
                                try (var kv = prefix.repeat(3, l)) {
                                    NDArray resid = c.get("resid_pre", l).get(":, {}:", cut).tile(new long[] {3, 1, 1});
                                    long[][] tails = {tail[0], tail[1], tail[0], tail[1], tail[0], tail[1]};
                                    float[] got = m.forwardFrom(Batch.of(tails), l, resid, kv).get(":, -1, :")
                                            .toFloatArray();
                                    for (int r = 0; r < 3; r++) {
                                        float[] copy = java.util.Arrays.copyOfRange(got, r * full.length,
                                                (r + 1) * full.length);
                                        assertArrayEquals(full, copy, 1e-4f, cfg.family() + " cut " + cut
                                                + " layer " + l + " copy " + r);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void theLastBlockRunForTheLastPositionAloneGivesAFullPasssLastLogits() {
        for (var cfg : java.util.List.of(dev.jlens.model.arch.ModelConfig.gpt2(32, 3, 4, 64, 50, 16),
                dev.jlens.model.arch.ModelConfig.llama(32, 3, 4, 2, 64, 50, 16))) {
            try (HookedTransformer m = HookedTransformer.random(cfg, 7)) {
                long[][] ids = {{1, 5, 40, 3, 5, 7, 12, 9}, {1, 6, 41, 3, 9, 7, 2, 11}};
                try (ActivationCache c = m.runWithCache(Batch.of(ids), NameFilter.of("resid_pre"))) {
                    float[] full = c.logits().get(":, -1, :").toFloatArray();
                    try (var kv = m.newKvCache()) {
                        NDArray got = m.forward(Batch.of(ids), kv, true);
                        assertTrue(got.getShape().equals(new ai.djl.ndarray.types.Shape(2, 1, 50)), got.getShape().toString());
                        assertArrayEquals(full, got.toFloatArray(), 1e-5f, cfg.family() + " from the start");
                        // the keys and values still cover every position
                        assertTrue(kv.length() == 8 && kv.keys(2).getShape().get(1) == 8, kv.toString());
                    }
                    // resumed at a layer after a prefix, as patching runs it; the last block's z sees one position
                    long[][] head = {java.util.Arrays.copyOf(ids[0], 3), java.util.Arrays.copyOf(ids[1], 3)};
                    long[][] tail = {java.util.Arrays.copyOfRange(ids[0], 3, 8), java.util.Arrays.copyOfRange(ids[1], 3, 8)};
                    try (var prefix = m.newKvCache()) {
                        m.forward(Batch.of(head), prefix).close();
                        for (int l = 0; l < m.nLayers(); l++) {
                            java.util.List<long[]> zShapes = new java.util.ArrayList<>();
                            try (var kv = prefix.repeat(1, l);
                                 var hs = m.hooks(dev.jlens.hook.Hook.fwd("blocks.2.attn.hook_z", (act, hp) -> {
                                     zShapes.add(act.getShape().getShape());
                                     return null;
                                 }))) {
                                NDArray got = m.forwardFrom(Batch.of(tail), l, c.get("resid_pre", l).get(":, 3:"), kv, true);
                                assertArrayEquals(full, got.toFloatArray(), 1e-4f, cfg.family() + " layer " + l);
                            }
                            assertTrue(zShapes.size() == 1 && zShapes.get(0)[1] == 1, "z of the last block at one position");
                        }
                    }
                }
            }
        }
    }
}

