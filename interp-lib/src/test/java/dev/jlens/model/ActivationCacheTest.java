package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.NameFilter;
import dev.jlens.testing.Models;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.jlens.testing.Models.maxAbsDiff;
import static dev.jlens.testing.Models.tokens;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cache's TransformerLens habits: negative layers, closing, head results, direct logit attribution. */
class ActivationCacheTest {
    static HookedTransformer gpt2;    // LayerNorm, random weights, 3 layers
    static HookedTransformer llama;   // RMSNorm, grouped-query attention, 5 layers
    static HookedTransformer tiny;    // LayerNorm, trained (tinylang-4l)

    @BeforeAll
    static void load() {
        gpt2 = Models.gpt2();
        llama = Models.stories();
        tiny = Zoo.load("tinylang-4l");
    }

    @AfterAll
    static void close() {
        gpt2.close();
        llama.close();
        tiny.close();
    }

    static List<HookedTransformer> all() {
        return List.of(gpt2, llama, tiny);
    }

    /** Two rows so batch and position axes are both exercised. */
    static long[][] batch(HookedTransformer m, int pos, long seed) {
        return new long[][] {tokens(pos, m.cfg().dVocab(), seed), tokens(pos, m.cfg().dVocab(), seed + 1)};
    }

    // ------------------------------------------------------------------ negative layers

    @Test
    void negativeLayersCountFromTheEndAndOutOfRangeNamesTheValidRange() {
        for (HookedTransformer m : all()) {
            int n = m.nLayers();
            try (ActivationCache c = m.runWithCache(tokens(5, m.cfg().dVocab(), 1))) {
                for (int l = 0; l < n; l++) {
                    assertSame(c.get("resid_pre", l), c.get("resid_pre", l - n));
                    assertSame(c.get("blocks." + l + ".attn.hook_pattern"), c.get("pattern", l - n));
                }
                assertSame(c.get("blocks." + (n - 1) + ".hook_resid_post"), c.get("resid_post", -1));
                for (int bad : new int[] {n, -n - 1, 100}) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> c.get("resid_pre", bad));
                    assertTrue(e.getMessage().contains("layer " + bad + " is out of range")
                            && e.getMessage().contains("[" + (-n) + ", " + n + ")"), e.getMessage());
                }
            }
        }
    }

    // ------------------------------------------------------------------ closing

    @Test
    void aClosedCacheSaysSoFromEveryMethod() {
        long[] t = tokens(5, 96, 2);
        ActivationCache c = gpt2.runWithCache(t);
        NDArray raw = c.get("resid_post", 0);
        NDArray kept = raw.duplicate();
        kept.attach(gpt2.manager());   // the recipe the error message gives
        float[] before = raw.toFloatArray();
        NDArray stack = c.decomposeResid();
        c.close();
        c.close();   // twice is fine
        assertEquals("ActivationCache(closed)", c.toString());
        assertTrue(c.toHtml().contains("ActivationCache(closed)"), c.toHtml());
        Map<String, Executable> calls = new java.util.LinkedHashMap<>();
        calls.put("get", () -> c.get("hook_embed"));
        calls.put("get(layer)", () -> c.get("resid_pre", 0));
        calls.put("names", c::names);
        calls.put("size", c::size);
        calls.put("contains", () -> c.contains("hook_embed"));
        calls.put("logits", c::logits);
        calls.put("stack", () -> c.stack("resid_pre"));
        calls.put("accumulatedResid", c::accumulatedResid);
        calls.put("accumulatedResidLabels", c::accumulatedResidLabels);
        calls.put("decomposeResid", c::decomposeResid);
        calls.put("decomposeResidLabels", c::decomposeResidLabels);
        calls.put("stackHeadResults", c::stackHeadResults);
        calls.put("stackHeadResultsLabels", c::stackHeadResultsLabels);
        calls.put("applyLnToStack", () -> c.applyLnToStack(stack));
        calls.put("logitAttribution", () -> c.logitAttribution(stack));
        calls.put("logitLens", () -> c.logitLens(kept));
        calls.put("toTable", c::toTable);
        calls.put("manager", c::manager);
        calls.put("put", () -> c.put("x", kept));
        for (Map.Entry<String, Executable> call : calls.entrySet()) {
            IllegalStateException e = assertThrows(IllegalStateException.class, call.getValue(), call.getKey());
            assertTrue(e.getMessage().startsWith("this ActivationCache was closed (by close() or its "
                    + "try-with-resources block); its arrays are freed. Run the model again"), e.getMessage());
        }
        // the arrays it handed out are freed (DJL's own message, which the kernel explains) and the copy lives on
        IllegalStateException e = assertThrows(IllegalStateException.class, raw::toFloatArray);
        assertEquals("Native resource has been released already.", e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> raw.add(1));
        assertEquals("NDManager has been closed already.", e.getMessage());
        assertEquals(0.0, maxDiff(kept.toFloatArray(), before));
        kept.close();
    }

    @Test
    void aCacheWhoseModelClosedSaysSo() {
        HookedTransformer m = Models.gpt2();
        ActivationCache c = m.runWithCache(tokens(4, 96, 3));
        m.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> c.get("resid_pre", 0));
        assertTrue(e.getMessage().contains("freed with its model"), e.getMessage());
        assertEquals("ActivationCache(freed with its model)", c.toString());
    }

    // ------------------------------------------------------------------ head results

    @Test
    void headResultsFromResultOrFromZAgreeAndSumToAttnOut() {
        for (HookedTransformer m : List.of(gpt2, llama)) {
            int n = m.nLayers(), h = m.cfg().nHeads();
            long[][] t = batch(m, 6, 4);
            try (NDScope scope = new NDScope();
                 ActivationCache full = m.runWithCache(t);
                 ActivationCache zOnly = m.runWithCache(t, NameFilter.of("z", "attn_out"))) {
                NDArray fromResult = full.stackHeadResults();
                NDArray fromZ = zOnly.stackHeadResults();
                assertEquals(new Shape((long) n * h, 2, 6, m.cfg().dModel()), fromResult.getShape());
                assertTrue(maxAbsDiff(fromResult, fromZ) < 1e-5, m + ": " + maxAbsDiff(fromResult, fromZ));
                List<String> labels = zOnly.stackHeadResultsLabels();
                assertEquals(n * h, labels.size());
                assertEquals("L0H0", labels.get(0));
                assertEquals("L0H1", labels.get(1));
                assertEquals("L" + (n - 1) + "H" + (h - 1), labels.get(n * h - 1));
                for (int l = 0; l < n; l++) {
                    // heads of layer l plus the output bias rebuild attn_out
                    NDArray heads = fromZ.get(l * h + ":" + (l + 1) * h).sum(new int[] {0}).add(m.b_O(l));
                    assertTrue(maxAbsDiff(heads, zOnly.get("attn_out", l)) < 1e-4, "layer " + l);
                    // and head k of layer l is result[:, :, k] as cached
                    NDArray cached = full.get("result", l);
                    assertEquals(0.0, maxAbsDiff(fromResult.get(l * h + 1), cached.get(":, :, 1")));
                }
            }
        }
        try (ActivationCache c = gpt2.runWithCache(tokens(4, 96, 5), NameFilter.of("resid_post"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c::stackHeadResults);
            assertTrue(e.getMessage().contains("blocks.0.attn.hook_z") && e.getMessage().contains("NameFilter.of(\"z\")"),
                    e.getMessage());
        }
    }

    // ------------------------------------------------------------------ applyLnToStack and attribution

    /** (x - mean) / sqrt(var + eps) over the last axis, or x / sqrt(mean(x^2) + eps) for RMSNorm, in doubles. */
    static float[] normalizeIndependently(float[] x, int d, boolean centre, double eps) {
        float[] out = new float[x.length];
        for (int r = 0; r < x.length / d; r++) {
            double mean = 0;
            if (centre) {
                for (int j = 0; j < d; j++) mean += x[r * d + j];
                mean /= d;
            }
            double sq = 0;
            for (int j = 0; j < d; j++) sq += (x[r * d + j] - mean) * (x[r * d + j] - mean);
            double scale = Math.sqrt(sq / d + eps);
            for (int j = 0; j < d; j++) out[r * d + j] = (float) ((x[r * d + j] - mean) / scale);
        }
        return out;
    }

    static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    @Test
    void lnAppliedComponentsSumToTheNormalizedFinalResidual() {
        for (HookedTransformer m : all()) {
            boolean layerNorm = m != llama;
            int d = m.cfg().dModel(), n = m.nLayers();
            try (NDScope scope = new NDScope(); ActivationCache c = m.runWithCache(batch(m, 7, 6))) {
                NDArray stack = c.decomposeResid();
                NDArray ln = c.applyLnToStack(stack);
                assertEquals(stack.getShape(), ln.getShape());
                float[] sum = ln.sum(new int[] {0}).toFloatArray();
                float[] resid = c.get("resid_post", -1).toFloatArray();
                float[] expected = normalizeIndependently(resid, d, layerNorm, m.cfg().normEps());
                assertTrue(maxDiff(sum, expected) < 1e-4, m + ": " + maxDiff(sum, expected));
                // times the final norm's weight (plus its bias) it is what the model's final norm output
                NDArray w = m.tlWeights().get("ln_final.w");
                NDArray normed = ln.sum(new int[] {0});
                if (layerNorm) normed = normed.mul(w).add(m.tlWeights().get("ln_final.b"));
                // (Llama's hook_normalized is before the weight, as in TransformerLens)
                assertTrue(maxAbsDiff(normed, c.get("ln_final.hook_normalized")) < 1e-4, m.toString());
                // a single component: centred for LayerNorm, only rescaled for RMSNorm, by the shared scale
                int comp = 2;
                float[] x = stack.get(comp).toFloatArray();
                float[] scale = c.get("ln_final.hook_scale").toFloatArray();
                float[] one = ln.get(comp).toFloatArray();
                for (int r = 0; r < scale.length; r++) {
                    double mean = 0;
                    if (layerNorm) {
                        for (int j = 0; j < d; j++) mean += x[r * d + j];
                        mean /= d;
                    }
                    for (int j = 0; j < d; j += 17) {
                        double want = (x[r * d + j] - mean) / scale[r];
                        assertEquals(want, one[r * d + j], 1e-4 * Math.max(1, Math.abs(want)));
                    }
                }
                // one position: the full stack in, [components, batch, d_model] out
                NDArray last = c.applyLnToStack(stack, -1);
                assertEquals(new Shape(stack.getShape().get(0), 2, d), last.getShape());
                assertTrue(maxAbsDiff(last, ln.get(":, :, 6, :")) < 1e-6);
                assertTrue(maxAbsDiff(c.applyLnToStack(stack, 0), ln.get(":, :, 0, :")) < 1e-6);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> c.applyLnToStack(stack, 7));
                assertTrue(e.getMessage().contains("[-7, 7)"), e.getMessage());
                assertEquals(n + 1, c.accumulatedResid().getShape().get(0));
            }
        }
    }

    @Test
    void logitAttributionOfADecompositionAddsUpToTheLogits() {
        for (HookedTransformer m : all()) {
            boolean layerNorm = m != llama;
            try (NDScope scope = new NDScope(); ActivationCache c = m.runWithCache(batch(m, 6, 7))) {
                NDArray stack = c.decomposeResid();
                NDArray attr = c.logitAttribution(stack);      // [components, batch, pos, d_vocab]
                assertEquals(new Shape(stack.getShape().get(0), 2, 6, m.cfg().dVocab()), attr.getShape());
                NDArray constant = m.b_U();
                if (layerNorm) constant = constant.add(m.tlWeights().get("ln_final.b").matMul(m.W_U()));
                NDArray total = attr.sum(new int[] {0}).add(constant);
                NDArray logits = m.forward(batch(m, 6, 7));
                assertTrue(maxAbsDiff(total, logits) < 2e-3, m + ": " + maxAbsDiff(total, logits));

                // one answer token at the last position: [components, batch], the slice of the above
                long answer = 3;
                NDArray perToken = c.logitAttribution(stack, -1, answer);
                assertEquals(new Shape(stack.getShape().get(0), 2), perToken.getShape());
                assertTrue(maxAbsDiff(perToken, attr.get(":, :, 5, " + answer)) < 1e-4);
                // one token per row, checked against the logits directly
                long[] answers = {4, 9};
                float[] rows = c.logitAttribution(stack, -1, answers).sum(new int[] {0}).toFloatArray();
                float[] logitRows = logits.get(":, -1, :").toFloatArray();
                float[] constRow = constant.toFloatArray();
                int v = m.cfg().dVocab();
                for (int b = 0; b < 2; b++) {
                    int a = (int) answers[b];
                    assertEquals(logitRows[b * v + a], rows[b] + constRow[a], 2e-3, m + " row " + b);
                }
                assertThrows(IllegalArgumentException.class, () -> c.logitAttribution(stack, -1, 1L, 2L, 3L));
            }
        }
    }

    @Test
    void logitLensRefusesADecompositionAndSaysWhatToUse() {
        try (NDScope scope = new NDScope(); ActivationCache c = gpt2.runWithCache(tokens(5, 96, 8))) {
            for (NDArray parts : List.of(c.decomposeResid(), c.stackHeadResults())) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.logitLens(parts));
                assertTrue(e.getMessage().contains("would not add up to the logits")
                        && e.getMessage().contains("cache.logitAttribution(stack)")
                        && e.getMessage().contains("cache.applyLnToStack(stack)"), e.getMessage());
            }
            // whole residuals still work, and reproduce the logits at the end
            NDArray acc = c.accumulatedResid();
            assertTrue(maxAbsDiff(c.logitLens(acc.get("-1")), c.logits()) < 1e-4);
        }
    }

    @Test
    void applyLnNeedsTheFinalScaleAndSaysWhichFilter() {
        try (NDScope scope = new NDScope();
             ActivationCache c = gpt2.runWithCache(tokens(5, 96, 9), NameFilter.of("embed", "pos_embed", "attn_out",
                     "mlp_out"))) {
            NDArray stack = c.decomposeResid();
            for (Executable call : new ArrayList<Executable>(List.of(() -> c.applyLnToStack(stack),
                    () -> c.applyLnToStack(stack, -1), () -> c.logitAttribution(stack)))) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
                assertTrue(e.getMessage().contains("ln_final.hook_scale") && e.getMessage().contains("NameFilter"),
                        e.getMessage());
            }
        }
        try (NDScope scope = new NDScope(); ActivationCache c = gpt2.runWithCache(tokens(5, 96, 9))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> c.applyLnToStack(c.get("resid_post", 0).get(":, :3")));
            assertTrue(e.getMessage().contains("[..., batch, pos, d_model]"), e.getMessage());
        }
    }

    @Test
    void actNameStaticsMatchTheCachedNames() {
        try (ActivationCache c = gpt2.runWithCache(tokens(4, 96, 10))) {
            assertEquals("blocks.2.hook_resid_pre", ActivationCache.actName("resid_pre", 2));
            assertSame(c.get("resid_pre", 2), c.get(ActivationCache.actName("resid_pre", 2)));
            assertSame(c.get("blocks.1.ln2.hook_scale"), c.get(ActivationCache.actName("scale", 1, "ln2")));
            assertSame(c.get("ln_final.hook_scale"), c.get(ActivationCache.actName("scale")));
        }
    }

    @Test
    void severalRunsCachedInOnePassEqualEachRunCachedAlone() {
        for (HookedTransformer m : List.of(gpt2, llama)) {
            long[][] a = {{1, 5, 9, 2, 7}, {3, 3, 8, 1, 4}}, b = {{2, 6, 9, 2, 7}};
            NameFilter f = n -> n.contains("resid_pre") || n.contains("hook_z");
            try (dev.jlens.model.arch.KvCache kv = m.newKvCache();
                 ActivationCache aloneA = m.runWithCache(a, f); ActivationCache aloneB = m.runWithCache(b, f)) {
                List<ActivationCache> both = m.runWithCaches(List.of(a, b), f, kv);
                try (ActivationCache ca = both.get(0); ActivationCache cb = both.get(1);
                     dev.jlens.model.arch.KvCache kvA = kv.rows(0, 2)) {
                    assertEquals(aloneA.names(), ca.names());
                    for (String k : aloneA.names()) {
                        assertEquals(aloneA.get(k).getShape(), ca.get(k).getShape(), k);
                        assertTrue(maxAbsDiff(aloneA.get(k), ca.get(k)) < 1e-5, k);
                        assertTrue(maxAbsDiff(aloneB.get(k), cb.get(k)) < 1e-5, k);
                    }
                    assertTrue(maxAbsDiff(aloneA.logits(), ca.logits()) < 1e-4);
                    assertTrue(maxAbsDiff(aloneB.logits(), cb.logits()) < 1e-4);
                    // the keys and values of every row, in run order; rows cuts the first run's out
                    assertEquals(3, kv.validMask().length);
                    assertEquals(2, kvA.validMask().length);
                    assertEquals(5, kvA.length());
                    assertEquals(new Shape(2, 5, m.cfg().nKvHeads(), m.cfg().dHead()), kvA.keys(0).getShape());
                    assertTrue(maxAbsDiff(kv.keys(1).get("0:2"), kvA.keys(1)) == 0);
                }
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpt2.runWithCaches(List.of(new long[][] {{1, 2, 3}}, new long[][] {{1, 2}}), n -> true, null));
        assertTrue(e.getMessage().contains("one length"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> gpt2.runWithCaches(List.of(), n -> true, null));
    }
}
