package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.Gemma2.LayerType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Gemma 2 against a plain-loop re-derivation of Hugging Face's forward pass on a tiny random checkpoint, and the
 * properties its extra pieces promise: capped logits and scores, a window that hides what lies beyond it,
 * KV-cached steps equal to recomputation, padding that changes nothing.
 */
class Gemma2Test {

    /** Three layers (0 and 2 slide, 1 is global), head_dim 8 != d_model / heads, window 3, small caps. */
    static final String CONFIG = """
            {"architectures":["Gemma2ForCausalLM"],"model_type":"gemma2","hidden_size":16,"num_hidden_layers":3,
             "num_attention_heads":4,"num_key_value_heads":2,"head_dim":8,"intermediate_size":24,"vocab_size":40,
             "max_position_embeddings":32,"rms_norm_eps":1e-6,"rope_theta":10000.0,"hidden_activation":
             "gelu_pytorch_tanh","query_pre_attn_scalar":5,"attn_logit_softcapping":3.0,
             "final_logit_softcapping":4.0,"sliding_window":3,"tie_word_embeddings":true,"attention_bias":false,
             "bos_token_id":2,"eos_token_id":1,"torch_dtype":"float32"}""";

    static final PlainForward.Shape SHAPE = new PlainForward.Shape(16, 3, 4, 2, 8, 24, 40, 1e-6, 10000, true, 5, 3.0,
            4.0, 3, false, true);

    private static HookedTransformer tiny(Path dir, PlainForward ref) throws Exception {
        ref.write(dir, CONFIG);
        return HookedTransformer.load(dir);
    }

    private static void assertClose(double[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(want[i] - got[i]);
            assertTrue(err <= tol * Math.max(1, Math.abs(want[i])), what + "[" + i + "]: want " + want[i] + " got "
                    + got[i]);
        }
    }

    @Test
    void logitsMatchAPlainLoopReDerivation(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 7, 1.0);
        long[] tokens = {2, 17, 5, 33, 9, 9, 21, 0, 38};
        double[][] want = ref.logits(tokens);
        try (HookedTransformer m = tiny(dir, ref)) {
            assertEquals(Gemma2.GEMMA2, m.cfg().family());
            NDArray logits = m.forward(tokens);
            assertEquals(new Shape(1, tokens.length, 40), logits.getShape());
            for (int t = 0; t < tokens.length; t++) {
                assertClose(want[t], logits.get(0, t).toFloatArray(), 2e-4, "logits at " + t);
            }
        }
    }

    @Test
    void theLastBlockForTheLastPositionAloneMatchesAFullPass(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 7, 1.0);
        long[][] ids = {{2, 17, 5, 33, 9, 9, 21, 0, 38}};   // longer than the sliding window of 3
        try (HookedTransformer m = tiny(dir, ref); dev.jlens.model.arch.KvCache kv = m.newKvCache()) {
            float[] full = m.forward(dev.jlens.model.Batch.of(ids)).get(":, -1, :").toFloatArray();
            NDArray got = m.forward(dev.jlens.model.Batch.of(ids), kv, true);
            assertEquals(new Shape(1, 1, 40), got.getShape());
            float[] last = got.toFloatArray();
            for (int i = 0; i < full.length; i++) assertEquals(full[i], last[i], 1e-5, "logit " + i);
        }
    }

    @Test
    void softCapsBoundTheLogitsAndTheAttentionScores(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 11, 3.0);   // a large unembedding: uncapped logits would be ~12
        try (HookedTransformer m = tiny(dir, ref); ActivationCache cache = m.runWithCache(new long[] {3, 1, 4, 1, 5,
                9, 2, 6})) {
            float[] logits = m.forward(new long[] {3, 1, 4, 1, 5, 9, 2, 6}).toFloatArray();
            double max = 0;
            for (float x : logits) max = Math.max(max, Math.abs(x));
            assertTrue(max <= 4.0, "a logit beyond the cap: " + max);
            assertTrue(max > 3.6, "the cap should be reached nearly: " + max);
            for (int l = 0; l < 3; l++) {
                for (float s : cache.get("blocks." + l + ".attn.hook_attn_scores").toFloatArray()) {
                    assertTrue(s == Float.NEGATIVE_INFINITY || Math.abs(s) <= 3.0, "a score beyond the cap: " + s);
                }
            }
        }
    }

    @Test
    void aTokenBeyondTheWindowDoesNotReachASlidingLayer(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 13, 1.0);
        long[] a = {5, 6, 7, 8, 9, 10, 11, 12}, b = a.clone();
        b[0] = 30;
        try (HookedTransformer m = tiny(dir, ref); ActivationCache ca = m.runWithCache(a);
             ActivationCache cb = m.runWithCache(b)) {
            NDArray sa = ca.get("blocks.0.hook_attn_out"), sb = cb.get("blocks.0.hook_attn_out");
            for (int t = 3; t < a.length; t++) {   // window 3: position t sees t-2..t
                float[] x = sa.get(0, t).toFloatArray(), y = sb.get(0, t).toFloatArray();
                for (int i = 0; i < x.length; i++) assertEquals(x[i], y[i], 1e-6, "sliding layer 0, position " + t);
            }
            assertTrue(maxDiff(sa.get(0, 2), sb.get(0, 2)) > 1e-4, "inside the window the change shows");
            // the global layer 1 sees the first token from the last position
            assertTrue(maxDiff(ca.get("blocks.1.hook_attn_out").get(0, 7), cb.get("blocks.1.hook_attn_out").get(0, 7))
                    > 1e-4, "a global layer sees every earlier token");
            float[] pattern = ca.get("blocks.0.attn.hook_pattern").toFloatArray();   // [1, head, q, k]
            int n = a.length;
            for (int h = 0; h < 4; h++) {
                for (int q = 0; q < n; q++) {
                    for (int k = 0; k < n; k++) {
                        float p = pattern[(h * n + q) * n + k];
                        if (k > q || q - k >= 3) assertEquals(0f, p, "layer 0 head " + h + " q " + q + " k " + k);
                    }
                }
            }
            float[] global = ca.get("blocks.1.attn.hook_pattern").toFloatArray();
            assertTrue(global[7 * n] > 0, "layer 1 attends from the last position to the first");
        }
    }

    private static double maxDiff(NDArray x, NDArray y) {
        return x.sub(y).abs().max().getFloat();
    }

    @Test
    void kvCachedStepsEqualRecomputationPastTheWindow(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 17, 1.0);
        long[] tokens = {2, 8, 15, 23, 4, 16, 42 % 40, 7, 19, 3};
        try (HookedTransformer m = tiny(dir, ref); KvCache cache = m.newKvCache()) {
            float[] full = m.forward(tokens).toFloatArray();
            int prompt = 3, v = 40;
            long[] first = java.util.Arrays.copyOf(tokens, prompt);
            float[] got = m.forward(Batch.of(first), cache).toFloatArray();
            for (int i = 0; i < prompt * v; i++) assertEquals(full[i], got[i], 1e-5, "prompt logit " + i);
            for (int t = prompt; t < tokens.length; t++) {
                float[] step = m.forward(Batch.of(new long[] {tokens[t]}), cache).toFloatArray();
                for (int i = 0; i < v; i++) assertEquals(full[t * v + i], step[i], 1e-5, "step " + t + " logit " + i);
            }
            assertEquals(tokens.length, cache.length());
        }
    }

    @Test
    void leftPaddingChangesNoRealPosition(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 19, 1.0);
        long[] shortSeq = {9, 8, 7, 6, 5}, longSeq = {1, 2, 3, 4, 5, 6, 7, 8};
        double[][] want = ref.logits(shortSeq);
        try (HookedTransformer m = tiny(dir, ref)) {
            NDArray logits = m.forward(Batch.leftPadded(new long[][] {shortSeq, longSeq}, 0));
            for (int t = 0; t < shortSeq.length; t++) {
                assertClose(want[t], logits.get(0, 3 + t).toFloatArray(), 2e-4, "padded row at " + t);
            }
        }
    }

    @Test
    void hooksFollowTransformerLensIncludingTheExtraNorms(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 23, 1.0);
        try (HookedTransformer m = tiny(dir, ref); ActivationCache c = m.runWithCache(new long[] {1, 2, 3, 4})) {
            for (String n : List.of("ln1_post.hook_scale", "ln1_post.hook_normalized", "ln2_post.hook_scale",
                    "ln2_post.hook_normalized", "attn.hook_rot_q", "mlp.hook_pre_linear")) {
                assertTrue(m.hookNames().contains("blocks.2." + n), n);
            }
            assertEquals(new Shape(1, 4, 1), c.get("blocks.0.ln1_post.hook_scale").getShape());
            assertEquals(new Shape(1, 4, 4, 8), c.get("blocks.0.attn.hook_q").getShape());
            assertEquals(new Shape(1, 4, 2, 8), c.get("blocks.0.attn.hook_k").getShape());
            // hook_attn_out is after ln1_post: what the residual stream receives
            NDArray mid = c.get("blocks.0.hook_resid_mid"), pre = c.get("blocks.0.hook_resid_pre");
            assertTrue(maxDiff(mid.sub(pre), c.get("blocks.0.hook_attn_out")) < 1e-5);
            // hook_embed is the scaled embedding
            NDArray e = m.embedWeight().get(new NDIndex("1")).mul(4f);   // sqrt(16)
            assertTrue(maxDiff(c.get("hook_embed").get(0, 0), e) < 1e-5);
        }
    }

    @Test
    void transformerLensWeightsFoldTheEmbeddingScaleAndOnePlusW(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 29, 1.0);
        try (HookedTransformer m = tiny(dir, ref)) {
            TlWeights tl = m.tlWeights();
            float[] wE = tl.get("embed.W_E").toFloatArray(), raw = ref.w.get("model.embed_tokens.weight");
            for (int i = 0; i < raw.length; i++) assertEquals(raw[i] * 4f, wE[i], 1e-5);
            float[] ln1 = tl.get("blocks.1.ln1.w").toFloatArray();
            float[] stored = ref.w.get("model.layers.1.input_layernorm.weight");
            for (int i = 0; i < stored.length; i++) assertEquals(1 + stored[i], ln1[i], 1e-6);
            assertEquals(new Shape(4, 16, 8), tl.get("blocks.0.attn.W_Q").getShape());
            assertEquals(new Shape(2, 16, 8), tl.get("blocks.0.attn._W_K").getShape());
        }
    }

    @Test
    void resumingMidModelAfterACachedPrefixEqualsTheFullPass(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 31, 1.0);
        long[] tokens = {4, 9, 13, 2, 27, 8, 30};
        try (HookedTransformer m = tiny(dir, ref); KvCache prefix = m.newKvCache();
             ActivationCache all = m.runWithCache(tokens)) {
            float[] full = m.forward(tokens).toFloatArray();
            m.forward(Batch.of(java.util.Arrays.copyOf(tokens, 5)), prefix);
            long[] rest = java.util.Arrays.copyOfRange(tokens, 5, 7);
            NDArray resid = all.get("blocks.1.hook_resid_pre").get(new NDIndex(":, 5:"));
            float[] got = m.forwardFrom(Batch.of(rest), 1, resid, prefix).toFloatArray();
            for (int i = 0; i < 2 * 40; i++) assertEquals(full[5 * 40 + i], got[i], 1e-5, "logit " + i);
        }
    }

    @Test
    void configMapsRoundTripsAndNamesWhatIsWrong() throws Exception {
        ModelConfig c = ModelConfigTest.parse(CONFIG);
        Gemma2.Options o = c.options(Gemma2.Options.class);
        assertEquals(List.of(LayerType.SLIDING, LayerType.FULL, LayerType.SLIDING), o.layerTypes());
        assertEquals(3, o.slidingWindow().getAsInt());
        assertEquals(5.0, o.queryPreAttnScalar());
        assertEquals(ModelConfig.Activation.GELU_NEW, c.act());
        assertTrue(c.tiedEmbeddings());
        assertEquals(c, ModelConfig.fromHf(c.toHf()));
        assertEquals(c, ModelConfigTest.parse(CONFIG.replace("\"rope_theta\":10000.0",
                "\"rope_parameters\":{\"rope_theta\":10000.0,\"rope_type\":\"default\"}")));
        // explicit layer types and switched-off caps round-trip too
        ModelConfig explicit = ModelConfigTest.parse(CONFIG.replace("\"sliding_window\":3", "\"sliding_window\":3,"
                + "\"layer_types\":[\"full_attention\",\"sliding_attention\",\"full_attention\"]")
                .replace("\"final_logit_softcapping\":4.0", "\"final_logit_softcapping\":null"));
        assertEquals(List.of(LayerType.FULL, LayerType.SLIDING, LayerType.FULL),
                explicit.options(Gemma2.Options.class).layerTypes());
        assertTrue(explicit.options(Gemma2.Options.class).finalLogitSoftCap().isEmpty());
        assertEquals(explicit, ModelConfig.fromHf(explicit.toHf()));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelConfigTest.parse(
                CONFIG.replace("\"sliding_window\":3", "\"sliding_window\":3,\"layer_types\":[\"local\",\"global\","
                        + "\"local\"]")));
        assertTrue(e.getMessage().contains("local") && e.getMessage().contains("sliding_attention")
                && e.getMessage().contains("full_attention"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfigTest.parse(CONFIG.replace(
                "\"sliding_window\":3", "\"sliding_window\":3,\"layer_types\":[\"full_attention\"]")));
        assertTrue(e.getMessage().contains("layer_types has 1") && e.getMessage().contains("3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfigTest.parse(
                CONFIG.replace("\"hidden_size\":16,", "")));
        assertTrue(e.getMessage().contains("hidden_size"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfigTest.parse(
                CONFIG.replace("\"gelu_pytorch_tanh\"", "\"swiglu\"")));
        assertTrue(e.getMessage().contains("swiglu") && e.getMessage().contains("gelu_pytorch_tanh"), e.getMessage());
    }

    /** google/gemma-2-2b's published config.json. */
    static final String GEMMA_2_2B = """
            {
              "architectures": ["Gemma2ForCausalLM"],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "attn_logit_softcapping": 50.0,
              "bos_token_id": 2,
              "cache_implementation": "hybrid",
              "eos_token_id": 1,
              "final_logit_softcapping": 30.0,
              "head_dim": 256,
              "hidden_act": "gelu_pytorch_tanh",
              "hidden_activation": "gelu_pytorch_tanh",
              "hidden_size": 2304,
              "initializer_range": 0.02,
              "intermediate_size": 9216,
              "max_position_embeddings": 8192,
              "model_type": "gemma2",
              "num_attention_heads": 8,
              "num_hidden_layers": 26,
              "num_key_value_heads": 4,
              "pad_token_id": 0,
              "query_pre_attn_scalar": 256,
              "rms_norm_eps": 1e-06,
              "rope_theta": 10000.0,
              "sliding_window": 4096,
              "torch_dtype": "float32",
              "transformers_version": "4.42.4",
              "use_cache": true,
              "vocab_size": 256000
            }""";

    @Test
    void gemma2_2bHasItsPublishedParameterCount() throws Exception {
        ModelConfig c = ModelConfig.fromHf(new ObjectMapper().readTree(GEMMA_2_2B));
        assertEquals(2_614_341_888L, c.parameterCount());
        Gemma2.Options o = c.options(Gemma2.Options.class);
        assertEquals(Gemma2.Options.defaults(26), o);
        assertEquals(256, c.dHead());
        assertEquals(4, c.nKvHeads());
        assertEquals(2, c.bosTokenId().getAsLong());
    }
}
