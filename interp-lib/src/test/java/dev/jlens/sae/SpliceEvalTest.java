package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.jlens.testing.Models.tokens;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SpliceEvalTest {
    static final String HOOK = "blocks.1.hook_resid_pre";
    static HookedTransformer model;
    // stories260K (pretrained, d_model 64, vocab 512, BOS 1): its own greedy story from BOS, as in the fixture's README,
    // and random token sequences; on a trained model ablating the residual stream clearly hurts
    static final long[] STORY = {1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283, 264};
    static final List<Batch> BATCHES = List.of(
            Batch.of(STORY, tokens(17, 512, 2), tokens(17, 512, 3)),
            Batch.of(java.util.Arrays.copyOf(STORY, 12)));

    @BeforeAll
    static void load() {
        model = dev.jlens.testing.Models.stories();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** A TopK SAE with given weights (row-major float arrays), k = dSae: ReLU latents. */
    static SparseCoder sae(int dIn, int dSae, float[] wEnc, float[] wDec) {
        SaeConfig cfg = SaeConfig.of(dIn, dSae, new SaeConfig.TopK(dSae)).withHook(HOOK);
        try (NDManager tmp = NDManager.newBaseManager()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put(SaeWeights.W_ENC, tmp.create(wEnc, new Shape(dIn, dSae)).duplicate());
            t.put(SaeWeights.B_ENC, tmp.zeros(new Shape(dSae)));
            t.put(SaeWeights.W_DEC, tmp.create(wDec, new Shape(dSae, dIn)).duplicate());
            t.put(SaeWeights.B_DEC, tmp.zeros(new Shape(dIn)));
            return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
        }
    }

    /** dSae = 2 dIn, W_enc = [I, -I], W_dec = [I; -I]: ReLU(x) - ReLU(-x) = x, a perfect reconstruction. */
    static SparseCoder identitySae(int d) {
        float[] wEnc = new float[d * 2 * d], wDec = new float[2 * d * d];
        for (int i = 0; i < d; i++) {
            wEnc[i * 2 * d + i] = 1f;
            wEnc[i * 2 * d + d + i] = -1f;
            wDec[i * d + i] = 1f;
            wDec[(d + i) * d + i] = -1f;
        }
        return sae(d, 2 * d, wEnc, wDec);
    }

    @Test
    void aPerfectReconstructionRecoversAllTheLoss() {
        try (SparseCoder id = identitySae(64)) {
            SpliceEval e = SpliceEval.run(model, id, BATCHES);
            assertEquals(3 * 16 + 11, e.tokens());
            assertTrue(e.ablatedLoss() - e.cleanLoss() > 0.01, "ablating must hurt for the score to mean anything: " + e);
            assertEquals(e.cleanLoss(), e.splicedLoss(), 1e-6, e.toString());
            assertEquals(1.0, e.lossRecovered(), 1e-4, e.toString());
            assertTrue(e.klSpliced() < 1e-6 && e.klSpliced() >= -1e-6, e.toString());
            assertTrue(e.klAblated() > 1e-3, e.toString());
            assertEquals(1.0, e.klScore(), 1e-3);
            assertTrue(e.toString().contains("recovered 100.0%"), e.toString());
            assertEquals(model.loss(BATCHES.get(1)), SpliceEval.run(model, id, List.of(BATCHES.get(1))).cleanLoss(), 1e-5,
                    "the clean loss is the model's own");
        }
    }

    @Test
    void aZeroReconstructionRecoversNothing() {
        int d = 64, dSae = 32;
        float[] wEnc = new float[d * dSae];
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        for (int i = 0; i < wEnc.length; i++) wEnc[i] = (float) r.nextGaussian();
        try (SparseCoder zero = sae(d, dSae, wEnc, new float[dSae * d])) {
            SpliceEval e = SpliceEval.run(model, zero, BATCHES);
            assertEquals(e.ablatedLoss(), e.splicedLoss(), 1e-6, e.toString());
            assertEquals(0.0, e.lossRecovered(), 1e-4, e.toString());
            assertEquals(e.klAblated(), e.klSpliced(), 1e-6);
            assertEquals(0.0, e.klScore(), 1e-4);
        }
    }

    @Test
    void lossesMatchTheSpliceAndAZeroHook() {
        try (SparseCoder sae = SaeLensTest.randomSae(SaeConfig.of(64, 128, new SaeConfig.TopK(16)).withHook(HOOK), 7)) {
            Batch b = BATCHES.get(0);
            SpliceEval e = SpliceEval.run(model, sae, List.of(b));
            float spliced;
            try (SaeSplice s = SaeSplice.attach(model, sae)) {
                spliced = model.loss(b);
            }
            float ablated;
            try (var s = model.hooks(Hook.fwd(HOOK, (x, hp) -> x.zerosLike()))) {
                ablated = model.loss(b);
            }
            assertEquals(model.loss(b), e.cleanLoss(), 1e-5);
            assertEquals(spliced, e.splicedLoss(), 1e-5);
            assertEquals(ablated, e.ablatedLoss(), 1e-5);
            assertEquals((ablated - spliced) / (ablated - model.loss(b)), e.lossRecovered(), 1e-3);
            assertTrue(e.klSpliced() > 0, e.toString());
        }
    }

    @Test
    void ignoredTokensAndPaddingAreLeftOut() {
        long bos = 1;
        long[] a = tokens(10, 512, 8), c = tokens(7, 512, 9);
        for (long[] seq : new long[][] {a, c}) for (int i = 0; i < seq.length; i++) if (seq[i] == bos) seq[i] = 2;
        a[0] = bos;
        c[0] = bos;
        a[5] = bos;   // a special token mid-sequence is left out too, as SAELens does
        Batch padded = Batch.leftPadded(new long[][] {a, c}, 0);
        try (SparseCoder id = identitySae(64); SparseCoder zeroDec = sae(64, 32, new float[64 * 32], new float[32 * 64])) {
            SpliceEval all = SpliceEval.run(model, id, List.of(padded));
            assertEquals(9 + 6, all.tokens(), "padding is never counted");
            SpliceEval noBos = SpliceEval.run(model, id, List.of(padded), Set.of(bos));
            assertEquals(9 + 6 - 3, noBos.tokens(), "predictions made at BOS positions are left out");
            // positions holding an ignored token keep their activation: with a zero reconstruction everywhere else,
            // the spliced run differs from the ablation run even where the BOS activation would have been zeroed
            SpliceEval z = SpliceEval.run(model, zeroDec, List.of(padded), Set.of(bos));
            assertTrue(Math.abs(z.splicedLoss() - z.ablatedLoss()) > 1e-4, z.toString());
            SpliceEval zAll = SpliceEval.run(model, zeroDec, List.of(padded));
            assertEquals(zAll.ablatedLoss(), zAll.splicedLoss(), 1e-6);
        }
    }

    @Test
    void wrongHookFailsBeforeRunning() {
        SaeConfig cfg = SaeConfig.of(64, 32, new SaeConfig.TopK(4)).withHook("blocks.9.hook_resid_pre");
        try (SparseCoder sae = SaeLensTest.randomSae(cfg, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SpliceEval.run(model, sae, BATCHES));
            assertTrue(e.getMessage().contains("blocks.9.hook_resid_pre"), e.getMessage());
        }
    }
}
