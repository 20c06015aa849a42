package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookScope;
import dev.jlens.hook.NameFilter;
import dev.jlens.testing.Models;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GenerationTest {
    static HookedTransformer gpt2;
    static HookedTransformer llama;

    @BeforeAll
    static void load() {
        gpt2 = Models.gpt2();
        llama = Models.stories();
    }

    @AfterAll
    static void close() {
        gpt2.close();
        llama.close();
    }

    @Test
    void kvCacheEqualsRecomputationIdsAndLogits() {
        for (HookedTransformer m : new HookedTransformer[] {gpt2, llama}) {
            long[][] prompt = {Models.tokens(5, m.cfg().dVocab(), 21)};
            Generation.Config c = Generation.Config.greedy(20).withLogits(true);
            try (Generation.Result cached = m.generate(prompt, c);
                 Generation.Result full = m.generate(prompt, c.withKvCache(false))) {
                assertArrayEquals(full.first(), cached.first());
                assertEquals(20, cached.first().length);
                double err = Models.maxAbsDiff(full.logits(), cached.logits());
                assertTrue(err < 1e-4, "cached vs recomputed logits differ by " + err);
            }
        }
    }

    @Test
    void leftPaddedBatchOfPromptsEqualsEachAlone() {
        long[][] prompts = {{1}, {1, 461, 461, 401}, {1, 300, 42}};
        try (Generation.Result batch = llama.generate(prompts, Generation.Config.greedy(12))) {
            for (int b = 0; b < prompts.length; b++) {
                try (Generation.Result alone = llama.generate(new long[][] {prompts[b]}, Generation.Config.greedy(12))) {
                    assertArrayEquals(alone.first(), batch.tokens()[b], "prompt " + b);
                }
            }
        }
    }

    @Test
    void seededSamplingIsReproducibleAndTopKOneIsGreedy() {
        long[][] bos = {{1}};
        Generation.Config sample = Generation.Config.sample(16, 1.0, 7);
        try (Generation.Result a = llama.generate(bos, sample);
             Generation.Result b = llama.generate(bos, sample);
             Generation.Result c = llama.generate(bos, sample.withSeed(8));
             Generation.Result topK1 = llama.generate(bos, sample.withTopK(1));
             Generation.Result nucleusTiny = llama.generate(bos, sample.withTopP(1e-6));
             Generation.Result greedy = llama.generate(bos, Generation.Config.greedy(16))) {
            assertArrayEquals(a.first(), b.first());
            assertNotEquals(Arrays.toString(a.first()), Arrays.toString(c.first()));
            assertArrayEquals(greedy.first(), topK1.first());
            assertArrayEquals(greedy.first(), nucleusTiny.first());
        }
    }

    @Test
    void stopTokenEndsTheSequenceAndIsKept() {
        // the greedy continuation from BOS begins 461, 461, 401: stopping at 401 keeps three tokens
        try (Generation.Result r = llama.generate(new long[][] {{1}}, Generation.Config.greedy(16).withStopTokens(401L))) {
            assertArrayEquals(new long[] {461, 461, 401}, r.first());
        }
    }

    @Test
    void hooksStayActiveAndGeneratedActivationsAreRecorded() {
        int[] calls = {0};
        try (HookScope s = llama.hooks(Hook.fwd("blocks.0.hook_resid_pre", (a, h) -> {
                 calls[0]++;
                 return null;
             }));
             Generation.Result r = llama.generate(new long[][] {{1, 300}},
                     Generation.Config.greedy(10).recording(NameFilter.of("blocks.3.hook_resid_post")))) {
            assertEquals(10, calls[0]);   // one call per step with the KV cache
            NDArray rec = r.activations().get("blocks.3.hook_resid_post");
            assertEquals(new ai.djl.ndarray.types.Shape(1, 2 + 10 - 1, 64), rec.getShape());
            // the same activations as one pass over the whole generated sequence
            long[] seq = r.sequences()[0];
            try (ActivationCache c = llama.runWithCache(Arrays.copyOf(seq, seq.length - 1),
                    NameFilter.of("blocks.3.hook_resid_post"))) {
                assertTrue(Models.maxAbsDiff(c.get("resid_post", 3), rec) < 1e-4);
            }
        }
    }

    @Test
    void badSettingsAreRejectedWithTheValidRange() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Generation.Config.greedy(4).withTopP(1.5));
        assertTrue(e.getMessage().contains("(0, 1]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Generation.Config.sample(4, -1, 0));
    }

    @Test
    void samplingOrderIsAStableDescendingSortByFloatCompare() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        float[] logits = new float[500];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) Math.round(r.nextGaussian() * 8) / 4; // many ties
        logits[3] = -0.0f;
        logits[4] = 0.0f;
        logits[7] = Float.NEGATIVE_INFINITY;
        logits[9] = Float.POSITIVE_INFINITY;
        logits[11] = Float.NaN;
        Integer[] boxed = new Integer[logits.length];
        for (int i = 0; i < boxed.length; i++) boxed[i] = i;
        Arrays.sort(boxed, (x, y) -> Float.compare(logits[y], logits[x]));   // the order sampling used before
        assertArrayEquals(Arrays.stream(boxed).mapToInt(Integer::intValue).toArray(),
                Generation.descendingOrder(logits));
    }
}
