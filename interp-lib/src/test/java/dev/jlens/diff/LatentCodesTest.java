package dev.jlens.diff;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Latent codes of a dictionary whose latents are known: with an identity encoder, latent j of an SAE is ReLU of
 * residual coordinate j, and of a crosscoder over [base | tuned] latent d_model + j is ReLU of the tuned model's
 * coordinate j; padding is left out and precision and recall count the right tokens.
 */
class LatentCodesTest {
    static final ModelConfig CFG = ModelConfig.gpt2(8, 2, 2, 16, 20, 12);
    static final String HOOK = "blocks.1.hook_resid_post";

    /** A ReLU dictionary with encoder I (latent j reads input coordinate j) and no bias. */
    static SparseCoder identity(NDManager m, int dIn, int sources) {
        SaeConfig cfg = SaeConfig.of(dIn, dIn, new SaeConfig.Relu(0)).withSources(sources);
        Map<String, NDArray> t = new LinkedHashMap<>();
        NDArray eye = m.eye(dIn);
        t.put(SaeWeights.W_DEC, eye);
        t.put(SaeWeights.W_ENC, eye.duplicate());
        t.put(SaeWeights.B_ENC, m.zeros(new Shape(dIn)));
        t.put(SaeWeights.B_DEC, m.zeros(new Shape(dIn)));
        return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
    }

    @Test
    void codesAreTheEncodedActivationsOfUnpaddedTokens() {
        long[][] ids = {{1, 5, 7, 9, 2}, {1, 3, 4, 0, 0}};
        boolean[][] mask = {{true, true, true, true, true}, {true, true, true, false, false}};
        Batch batch = Batch.of(ids, mask);
        try (NDManager m = NDManager.newBaseManager();
             HookedTransformer base = HookedTransformer.random(CFG, 1); HookedTransformer tuned = HookedTransformer.random(CFG, 2);
             SparseCoder sae = identity(m, 8, 1); SparseCoder cc = identity(m, 16, 2)) {
            float[] a, b;
            long len = batch.length();
            try (ActivationCache ca = base.runWithCache(batch, NameFilter.of(HOOK));
                 ActivationCache cb = tuned.runWithCache(batch, NameFilter.of(HOOK))) {
                a = ca.get(HOOK).toFloatArray();
                b = cb.get(HOOK).toFloatArray();
            }
            LatentCodes one = LatentCodes.of(sae, batch, HOOK, base);
            LatentCodes two = LatentCodes.of(cc, batch, HOOK, base, tuned);
            assertEquals(8, one.tokens().size(), "5 + 3 unpadded tokens");
            assertEquals(new LatentCodes.Token(1, 2), one.tokens().get(7));
            for (int row = 0; row < 8; row++) {
                LatentCodes.Token t = one.tokens().get(row);
                int o = (int) ((t.prompt() * len + t.position()) * 8);
                for (int j = 0; j < 8; j++) {
                    assertEquals(Math.max(0, a[o + j]), one.get(row, j), 1e-5);
                    assertEquals(Math.max(0, a[o + j]), two.get(row, j), 1e-5);
                    assertEquals(Math.max(0, b[o + j]), two.get(row, 8 + j), 1e-5);
                }
            }
            // precision and recall of latent 3 for the tokens of prompt 0, counted by hand
            LatentCodes.Context prompt0 = (p, pos) -> p == 0;
            int fired = 0, firedIn0 = 0, in0 = 5, firedOf0 = 0;
            for (int row = 0; row < 8; row++) {
                boolean f = one.get(row, 3) > 0, inside = one.tokens().get(row).prompt() == 0;
                if (f) fired++;
                if (f && inside) { firedIn0++; firedOf0++; }
            }
            assertEquals(fired == 0 ? Double.NaN : firedIn0 / (double) fired, one.precision(new int[] {3}, prompt0), 1e-12);
            assertEquals(firedOf0 / (double) in0, one.recall(new int[] {3}, prompt0), 1e-12);
            assertEquals(5 / 8.0, one.baseRate(prompt0), 1e-12);
            // every latent together fires on every token with a positive coordinate: recall 1 unless a row is all <= 0
            int[] all = {0, 1, 2, 3, 4, 5, 6, 7};
            assertTrue(one.recall(all, prompt0) > 0.99);
            assertEquals(8, one.table(all, prompt0).rowCount());
            // a dictionary of differences encodes tuned - base
            LatentCodes diff = LatentCodes.ofDifference(sae, batch, HOOK, base, tuned);
            for (int row = 0; row < 8; row++) {
                LatentCodes.Token t = diff.tokens().get(row);
                int o = (int) ((t.prompt() * len + t.position()) * 8);
                for (int j = 0; j < 8; j++) assertEquals(Math.max(0, b[o + j] - a[o + j]), diff.get(row, j), 1e-5);
            }
            assertThrows(IllegalArgumentException.class, () -> LatentCodes.ofDifference(cc, batch, HOOK, base, tuned));
            float[] density = one.density();
            for (int j = 0; j < 8; j++) {
                int f = 0;
                for (int row = 0; row < 8; row++) if (one.get(row, j) > 0) f++;
                assertEquals(f / 8.0, density[j], 1e-6, "density of latent " + j);
                assertEquals(one.table(new int[] {j}, prompt0).doubleColumn("density").getDouble(0), density[j], 1e-6);
            }
            assertTrue(Double.isNaN(one.recall(new int[] {0}, (p, pos) -> false)), "no marked token: NaN recall");
        }
    }

    @Test
    void aDictionaryOfTheWrongWidthIsRefusedNamingBoth() {
        try (NDManager m = NDManager.newBaseManager(); HookedTransformer base = HookedTransformer.random(CFG, 1);
             SparseCoder sae = identity(m, 8, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LatentCodes.of(sae, Batch.of(new long[] {1, 2, 3}), HOOK, base, base));
            assertTrue(e.getMessage().contains("1 source(s), d_in 8") && e.getMessage().contains("2 model(s)"),
                    e.getMessage());
        }
    }
}
