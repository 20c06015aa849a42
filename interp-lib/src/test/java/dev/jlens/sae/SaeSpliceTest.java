package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jlens.model.ActivationCache;
import dev.jlens.hook.Hook;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.jlens.testing.Models.maxAbsDiff;
import static dev.jlens.testing.Models.tokens;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SaeSpliceTest {
    static final String HOOK = "blocks.1.hook_resid_pre";
    static HookedTransformer model;

    @BeforeAll
    static void load() {
        model = dev.jlens.testing.Models.gpt2();   // d_model 64, 3 layers, 4 heads, vocab 96
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static SparseCoder sae(String hook, int dIn, int dSae, int k, long seed) {
        return SaeLensTest.randomSae(SaeConfig.of(dIn, dSae, new SaeConfig.TopK(k)).withHook(hook), seed);
    }

    /** A copy that outlives the cache it came from (closed by the test's NDScope). */
    static NDArray kept(NDArray a) {
        NDArray d = a.duplicate();
        d.attach(model.manager());
        return d;
    }

    static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    static double maxRelDiff(NDArray a, NDArray b) {
        double scale = Math.max(1e-12, a.abs().max().getFloat());
        return maxAbsDiff(a, b) / scale;
    }

    @Test
    void errorTermLeavesTheLogitsUnchanged() {
        long[][] t = {tokens(12, 96, 1), tokens(12, 96, 2)};
        try (SparseCoder sae = sae(HOOK, 64, 128, 16, 3); NDScope scope = new NDScope()) {
            NDArray clean = model.forward(t);
            try (SaeSplice s = SaeSplice.attach(model, sae, true)) {
                double rel = maxRelDiff(clean, model.forward(t));
                assertTrue(rel < 1e-5, "with the error term the logits must not change: max rel diff " + rel);
            }
            try (SaeSplice s = SaeSplice.attach(model, sae, false)) {
                double rel = maxRelDiff(clean, model.forward(t));
                assertTrue(rel > 1e-3, "a random SAE's reconstruction must change the logits: " + rel);
            }
            assertEquals(0.0, maxAbsDiff(clean, model.forward(t)), "detached: the model is as before");
        }
    }

    @Test
    void withoutErrorTermTheActivationIsTheReconstruction() {
        long[] t = tokens(10, 96, 4);
        try (SparseCoder sae = sae(HOOK, 64, 128, 8, 5); NDScope scope = new NDScope()) {
            NDArray x;
            try (ActivationCache c = model.runWithCache(t, NameFilter.of(HOOK))) {
                x = kept(c.get(HOOK));
            }
            try (SaeSplice s = SaeSplice.attach(model, sae, false);
                 ActivationCache c = model.runWithCache(t, NameFilter.of("hook_sae_output", "hook_sae_recons", "hook_sae_input"))) {
                NDArray recon = sae.reconstruct(x);
                assertEquals(0.0, maxAbsDiff(x, c.get(HOOK + ".hook_sae_input")));
                assertTrue(maxAbsDiff(recon, c.get(HOOK + ".hook_sae_recons")) < 1e-6);
                assertTrue(maxAbsDiff(recon, c.get(HOOK + ".hook_sae_output")) < 1e-6);
            }
        }
    }

    @Test
    void saeHookPointsAreModelHookPointsWhileAttached() {
        long[] t = tokens(9, 96, 6);
        try (SparseCoder sae = sae(HOOK, 64, 96, 12, 7); NDScope scope = new NDScope()) {
            int at = model.hookNames().indexOf(HOOK);
            int before = model.hookNames().size();
            NDArray x;
            try (ActivationCache c = model.runWithCache(t, NameFilter.of(HOOK))) {
                x = kept(c.get(HOOK));
            }
            try (SaeSplice s = SaeSplice.attach(model, sae, true)) {
                List<String> names = model.hookNames();
                assertEquals(List.of(HOOK + ".hook_sae_input", HOOK + ".hook_sae_acts_pre", HOOK + ".hook_sae_acts_post",
                        HOOK + ".hook_sae_recons", HOOK + ".hook_sae_error", HOOK + ".hook_sae_output"), s.hookNames());
                assertEquals(s.hookNames(), names.subList(at + 1, at + 7), "declared right after the spliced hook point");
                try (ActivationCache c = model.runWithCache(t, NameFilter.of("hook_sae_acts_post", "hook_sae_acts_pre",
                        "hook_sae_error"))) {
                    NDArray acts = c.get(HOOK + ".hook_sae_acts_post");
                    assertEquals(new Shape(1, 9, 96), acts.getShape());
                    assertEquals(0.0, maxAbsDiff(sae.encode(x), acts));
                    NDArray pre = c.get(HOOK + ".hook_sae_acts_pre");
                    assertEquals(new Shape(1, 9, 96), pre.getShape());
                    assertTrue(maxAbsDiff(sae.weights().preActs(x, true), pre) < 1e-6);
                    assertTrue(maxAbsDiff(x.sub(sae.reconstruct(x)), c.get(HOOK + ".hook_sae_error")) < 1e-5);
                }
            }
            assertEquals(before, model.hookNames().size());
            assertFalse(model.hookNames().contains(HOOK + ".hook_sae_acts_post"));
            try (ActivationCache c = model.runWithCache(t, NameFilter.of("hook_sae_acts_post"))) {
                assertEquals(0, c.size());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.hook(HOOK + ".hook_sae_acts_post"));
            assertTrue(e.getMessage().startsWith("unknown hook point '" + HOOK + ".hook_sae_acts_post'. Nearest: ["),
                    e.getMessage());
        }
    }

    @Test
    void editingALatentWithTheErrorTermChangesOnlyThatLatentsContribution() {
        long[] t = tokens(11, 96, 8);
        try (SparseCoder sae = sae(HOOK, 64, 128, 16, 9); NDScope scope = new NDScope()) {
            NDArray clean = model.forward(t);
            NDArray x;
            try (ActivationCache c = model.runWithCache(t, NameFilter.of(HOOK))) {
                x = kept(c.get(HOOK));
            }
            NDArray f = sae.encode(x);   // [1, 11, 128]
            int latent = (int) f.sum(new int[] {0, 1}).argMax().getLong();
            NDArray fj = f.get(new NDIndex(":, :, {}", latent)).expandDims(-1);          // [1, 11, 1]
            NDArray wj = sae.weights().get(SaeWeights.W_DEC).get(latent);              // [64]
            NDArray expected = x.sub(fj.mul(wj));

            try (SaeSplice s = SaeSplice.attach(model, sae, true)) {
                float[][] out = new float[1][];   // copied out: arrays made inside a forward pass die with it
                Hook zero = Hook.fwd(s.hook(SaeSplice.ACTS_POST), (acts, hp) -> {
                    NDArray z = acts.duplicate();
                    z.set(new NDIndex(":, :, {}", latent), 0f);
                    return z;
                });
                Hook read = Hook.fwd(s.hook(SaeSplice.OUTPUT), (o, hp) -> {
                    out[0] = o.toFloatArray();
                    return null;
                });
                NDArray edited = model.runWithHooks(new long[][] {t}, zero, read);
                assertNotNull(out[0]);
                double diff = maxDiff(expected.toFloatArray(), out[0]);
                assertTrue(diff < 1e-5 * Math.max(1, x.abs().max().getFloat()), "output = x - f_j W_dec[j]: max diff " + diff);
                assertTrue(maxRelDiff(clean, edited) > 1e-4, "zeroing an active latent changes the logits");

                // boosting: adding 3 to the latent adds 3 W_dec[j] to every position
                Hook boost = Hook.fwd(s.hook(SaeSplice.ACTS_POST), (acts, hp) -> {
                    NDArray z = acts.duplicate();
                    z.set(new NDIndex(":, :, {}", latent), acts.get(new NDIndex(":, :, {}", latent)).add(3f));
                    return z;
                });
                model.runWithHooks(new long[][] {t}, boost, read);
                double boosted = maxDiff(x.add(wj.mul(3f)).toFloatArray(), out[0]);
                double scale = Math.max(1, x.abs().max().getFloat());   // float rounding grows with the values
                assertTrue(boosted < 1e-5 * scale, "output = x + 3 W_dec[j]: max diff " + boosted);

                Hook badPre = Hook.fwd(s.hook(SaeSplice.ACTS_PRE), (pre, hp) -> pre.zerosLike());
                UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                        () -> model.runWithHooks(new long[][] {t}, badPre));
                assertTrue(e.getMessage().contains("hook_sae_acts_post"), e.getMessage());
            }
        }
    }

    @Test
    void gradientsReachTheLatents() {
        long[] t = tokens(8, 96, 10);
        try (SparseCoder sae = sae(HOOK, 64, 128, 16, 11); NDScope scope = new NDScope();
             SaeSplice s = SaeSplice.attach(model, sae, true)) {
            String post = s.hook(SaeSplice.ACTS_POST);
            try (ActivationCache g = model.runWithGradients(Batch.of(t), NameFilter.of(post, HOOK + ".hook_sae_output"),
                    logits -> logits.get(new NDIndex(":, -1, 5")).sum())) {
                NDArray gf = g.get(post), gout = g.get(HOOK + ".hook_sae_output");
                assertEquals(new Shape(1, 8, 128), gf.getShape());
                // d logit / d f = (d logit / d output) W_dec^T: the latents feed the output through the decoder
                NDArray want = gout.matMul(sae.weights().get(SaeWeights.W_DEC).transpose());
                assertTrue(gf.abs().max().getFloat() > 0);
                assertTrue(maxAbsDiff(want, gf) < 1e-5 * Math.max(1, want.abs().max().getFloat()),
                        "gradient at acts_post = gradient at output @ W_dec^T");
            }
        }
    }

    @Test
    void perHeadActivationsAreFlattenedForTheSae() {
        String z = "blocks.0.attn.hook_z";   // [batch, pos, 4 heads, 16]
        long[] t = tokens(7, 96, 12);
        try (SparseCoder sae = sae(z, 64, 128, 32, 13); NDScope scope = new NDScope()) {
            NDArray clean = model.forward(t);
            try (SaeSplice s = SaeSplice.attach(model, sae, true)) {
                assertTrue(maxRelDiff(clean, model.forward(t)) < 1e-5);
                try (ActivationCache c = model.runWithCache(t, NameFilter.of(s.hook(SaeSplice.ACTS_POST)))) {
                    assertEquals(new Shape(1, 7, 128), c.get(s.hook(SaeSplice.ACTS_POST)).getShape());
                }
            }
            try (SaeSplice s = SaeSplice.attach(model, sae, false)) {
                assertTrue(maxRelDiff(clean, model.forward(t)) > 1e-3);
            }
        }
    }

    @Test
    void wrongHookOrWidthOrASecondSpliceAreRefused() {
        try (SparseCoder typo = sae("blocks.1.hook_resid_psot", 64, 32, 4, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SaeSplice.attach(model, typo, true));
            assertTrue(e.getMessage().contains("'blocks.1.hook_resid_psot'") && e.getMessage().contains("blocks.1.hook_resid_post"),
                    e.getMessage());
        }
        try (SparseCoder narrow = sae(HOOK, 32, 64, 4, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SaeSplice.attach(model, narrow, true));
            assertTrue(e.getMessage().contains("d_in = 32") && e.getMessage().contains("width 64"), e.getMessage());
            assertFalse(model.hookNames().contains(HOOK + ".hook_sae_input"), "a refused splice declares nothing");
        }
        try (SparseCoder noHook = SaeLensTest.randomSae(SaeConfig.of(64, 32, new SaeConfig.TopK(4)), 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SaeSplice.attach(model, noHook));
            assertTrue(e.getMessage().contains("withHook"), e.getMessage());
        }
        try (SparseCoder a = sae(HOOK, 64, 32, 4, 1); SparseCoder b = sae(HOOK, 64, 32, 4, 2);
             SaeSplice s = SaeSplice.attach(model, a, true)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> SaeSplice.attach(model, b, true));
            assertTrue(e.getMessage().contains("already spliced"), e.getMessage());
            assertEquals(1, model.hook(HOOK).forwardCount(), "the refused splice left no hook behind");
        }
        assertEquals(0, model.hook(HOOK).forwardCount());
    }
}
