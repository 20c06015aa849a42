package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import dev.jlens.model.Batch;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cache's buffers grow past their first capacity (prefix + 64) without changing what the model computes. */
class KvCacheTest {

    @Test
    void generationPastSeveralBufferGrowthsEqualsRecomputation() {
        ModelConfig[] cfgs = {ModelConfig.gpt2(32, 2, 2, 64, 50, 256), ModelConfig.llama(32, 2, 4, 2, 64, 50, 256)};
        for (ModelConfig cfg : cfgs) {
            try (HookedTransformer m = HookedTransformer.random(cfg, 4)) {
                long[][] prompt = {{3, 9, 27, 31, 13}, {7, 7, 1, 2, 0}};
                Generation.Config c = Generation.Config.sample(200, 1.0, 5).withLogits(true);   // 5 + 64, then doubling
                try (Generation.Result cached = m.generate(prompt, c);
                     Generation.Result full = m.generate(prompt, c.withKvCache(false))) {
                    assertArrayEquals(full.tokens()[0], cached.tokens()[0], cfg.family() + " row 0");
                    assertArrayEquals(full.tokens()[1], cached.tokens()[1], cfg.family() + " row 1");
                    assertEquals(200, cached.tokens()[0].length);
                    float diff = full.logits().sub(cached.logits()).abs().max().getFloat();
                    assertTrue(diff < 1e-4, cfg.family() + " logits differ by " + diff);
                }
            }
        }
    }

    @Test
    void keysViewTheFilledPositionsAndRepeatTilesThem() {
        try (HookedTransformer m = HookedTransformer.random(ModelConfig.gpt2(32, 2, 2, 64, 50, 256), 4);
             KvCache cache = m.newKvCache()) {
            long[][] ids = new long[1][70];
            for (int i = 0; i < 70; i++) ids[0][i] = (i * 7) % 50;
            m.forward(Batch.of(ids), cache).close();
            for (int t = 0; t < 80; t++) m.forward(Batch.of(new long[][] {{(long) t % 50}}), cache).close();
            assertEquals(150, cache.length());
            NDArray k = cache.keys(1);
            assertEquals(new ai.djl.ndarray.types.Shape(1, 150, 2, 16), k.getShape());
            try (KvCache three = cache.repeat(3, 0)) {
                NDArray k3 = three.keys(1);
                assertEquals(new ai.djl.ndarray.types.Shape(3, 150, 2, 16), k3.getShape());
                assertEquals(0f, k3.get("2").sub(k.get("0")).abs().max().getFloat());
            }
        }
    }

    @Test
    void aPrefixCutFromALongerRunEqualsARunOfThePrefixAndNamesItsRange() {
        for (ModelConfig cfg : new ModelConfig[] {ModelConfig.gpt2(32, 2, 2, 64, 50, 256),
                ModelConfig.llama(32, 2, 4, 2, 64, 50, 256)}) {
            try (HookedTransformer m = HookedTransformer.random(cfg, 4);
                 KvCache full = m.newKvCache(); KvCache short4 = m.newKvCache()) {
                long[][] ids = {{3, 9, 27, 31, 13, 8, 2}, {7, 7, 1, 2, 0, 44, 5}};
                m.forward(Batch.of(ids), full).close();
                m.forward(Batch.of(new long[][] {java.util.Arrays.copyOf(ids[0], 4), java.util.Arrays.copyOf(ids[1], 4)}),
                        short4).close();
                try (KvCache cut = full.prefix(4)) {
                    assertEquals(4, cut.length());
                    assertEquals(2, cut.validMask().length);
                    assertEquals(4, cut.validMask()[0].length);
                    for (int l = 0; l < 2; l++) {
                        float dk = cut.keys(l).sub(short4.keys(l)).abs().max().getFloat();
                        float dv = cut.values(l).sub(short4.values(l)).abs().max().getFloat();
                        assertTrue(dk < 1e-5 && dv < 1e-5, cfg.family() + " layer " + l + ": " + dk + ", " + dv);
                    }
                    // the cut is a copy: continuing it leaves the longer cache as it was
                    m.forward(Batch.of(new long[][] {{1}, {1}}), cut).close();
                    assertEquals(7, full.length());
                }
                IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                        IllegalArgumentException.class, () -> full.prefix(8));
                assertTrue(e.getMessage().contains("1..7"), e.getMessage());
            }
        }
    }
}
