package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Qwen 3 (Llama-style blocks with an explicit head_dim and a per-head RMSNorm on queries and keys before the rotary
 * embedding) against a plain-loop re-derivation on a tiny random checkpoint.
 */
class Qwen3Test {

    static final String CONFIG = """
            {"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3","hidden_size":16,"num_hidden_layers":2,
             "num_attention_heads":4,"num_key_value_heads":2,"head_dim":8,"intermediate_size":24,"vocab_size":40,
             "max_position_embeddings":32,"rms_norm_eps":1e-6,"rope_theta":1000000.0,"hidden_act":"silu",
             "attention_bias":false,"tie_word_embeddings":true,"use_sliding_window":false,"sliding_window":null,
             "max_window_layers":2,"bos_token_id":1,"eos_token_id":2,"torch_dtype":"bfloat16"}""";

    static final PlainForward.Shape SHAPE = new PlainForward.Shape(16, 2, 4, 2, 8, 24, 40, 1e-6, 1e6, false, 0, 0, 0,
            0, true, true);

    private static HookedTransformer tiny(Path dir, PlainForward ref) throws Exception {
        ref.write(dir, CONFIG);
        return HookedTransformer.load(dir);
    }

    @Test
    void logitsMatchAPlainLoopReDerivation(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 5, 1.0);
        long[] tokens = {1, 17, 5, 33, 9, 9, 21, 0, 38};
        double[][] want = ref.logits(tokens);
        try (HookedTransformer m = tiny(dir, ref)) {
            NDArray logits = m.forward(tokens);
            for (int t = 0; t < tokens.length; t++) {
                float[] got = logits.get(0, t).toFloatArray();
                for (int i = 0; i < got.length; i++) {
                    assertEquals(want[t][i], got[i], 2e-4 * Math.max(1, Math.abs(want[t][i])), "logit " + t + "," + i);
                }
            }
            // without the q/k norms the result differs: the reference is not vacuous
            PlainForward.Shape noNorm = new PlainForward.Shape(16, 2, 4, 2, 8, 24, 40, 1e-6, 1e6, false, 0, 0, 0, 0,
                    false, true);
            PlainForward plain = new PlainForward(noNorm, 5, 1.0);
            plain.w.putAll(ref.w);
            double diff = 0;
            double[][] other = plain.logits(tokens);
            for (int t = 0; t < tokens.length; t++) for (int i = 0; i < 40; i++) diff += Math.abs(other[t][i] - want[t][i]);
            assertTrue(diff > 1e-2, "the q/k norms change the logits");
        }
    }

    @Test
    void theNormalisedQueriesAndKeysAreHooked(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 6, 1.0);
        try (HookedTransformer m = tiny(dir, ref); ActivationCache c = m.runWithCache(new long[] {1, 2, 3})) {
            assertEquals(new Shape(1, 3, 4, 8), c.get("blocks.1.attn.q_norm.hook_normalized").getShape());
            assertEquals(new Shape(1, 3, 2, 8), c.get("blocks.1.attn.k_norm.hook_normalized").getShape());
            assertEquals(new Shape(1, 3, 4, 1), c.get("blocks.1.attn.q_norm.hook_scale").getShape());
            // hook_q is the projection before the norm: normalising it per head gives hook_normalized
            NDArray q = c.get("blocks.0.attn.hook_q");
            NDArray rms = q.square().mean(new int[] {-1}, true).add(1e-6).sqrt();
            assertTrue(q.div(rms).sub(c.get("blocks.0.attn.q_norm.hook_normalized")).abs().max().getFloat() < 1e-5);
            assertTrue(m.hookNames().stream().noneMatch(n -> n.contains("ln1_post")));
        }
    }

    @Test
    void kvCachedStepsEqualRecomputation(@TempDir Path dir) throws Exception {
        PlainForward ref = new PlainForward(SHAPE, 8, 1.0);
        long[] tokens = {1, 8, 15, 23, 4, 16, 2, 7};
        try (HookedTransformer m = tiny(dir, ref); KvCache cache = m.newKvCache()) {
            float[] full = m.forward(tokens).toFloatArray();
            int v = 40;
            float[] got = m.forward(Batch.of(Arrays.copyOf(tokens, 2)), cache).toFloatArray();
            for (int i = 0; i < 2 * v; i++) assertEquals(full[i], got[i], 1e-5);
            for (int t = 2; t < tokens.length; t++) {
                float[] step = m.forward(Batch.of(new long[] {tokens[t]}), cache).toFloatArray();
                for (int i = 0; i < v; i++) assertEquals(full[t * v + i], step[i], 1e-5, "step " + t);
            }
        }
    }

    @Test
    void configMapsAndRoundTrips() throws Exception {
        ModelConfig c = ModelConfigTest.parse(CONFIG);
        assertEquals(ModelConfig.Family.LLAMA, c.family());
        assertEquals("qwen3", c.modelType());
        assertEquals(Llama.Options.QWEN3, c.options());
        assertEquals(8, c.dHead());
        assertTrue(!c.qkvBias() && !c.attnOutBias() && c.tiedEmbeddings() && c.slidingWindow().isEmpty());
        assertEquals(c, ModelConfig.fromHf(c.toHf()));
        assertEquals("Qwen3ForCausalLM", c.toHf().get("architectures").get(0).asText());
        // newer configs: rope_theta inside rope_parameters
        ModelConfig newer = ModelConfigTest.parse(CONFIG.replace("\"rope_theta\":1000000.0",
                "\"rope_parameters\":{\"rope_theta\":1000000.0,\"rope_type\":\"default\"}"));
        assertEquals(c, newer);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelConfigTest.parse(CONFIG
                .replace("\"use_sliding_window\":false", "\"use_sliding_window\":true")
                .replace("\"sliding_window\":null", "\"sliding_window\":4")
                .replace("\"max_window_layers\":2", "\"max_window_layers\":1")));
        assertTrue(e.getMessage().contains("max_window_layers") && e.getMessage().contains("1 of 2"),
                e.getMessage());
        // every layer sliding is one window; layer_types all full is none
        ModelConfig allSliding = ModelConfigTest.parse(CONFIG
                .replace("\"use_sliding_window\":false", "\"use_sliding_window\":true")
                .replace("\"sliding_window\":null", "\"sliding_window\":4")
                .replace("\"max_window_layers\":2", "\"max_window_layers\":0"));
        assertEquals(4, allSliding.slidingWindow().getAsInt());
        ModelConfig typed = ModelConfigTest.parse(CONFIG.replace("\"max_window_layers\":2",
                "\"max_window_layers\":2,\"layer_types\":[\"full_attention\",\"full_attention\"]"));
        assertTrue(typed.slidingWindow().isEmpty());
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfigTest.parse(CONFIG.replace(
                "\"max_window_layers\":2", "\"max_window_layers\":2,\"layer_types\":[\"global\",\"global\"]")));
        assertTrue(e.getMessage().contains("global") && e.getMessage().contains("full_attention"), e.getMessage());
        // q/k norms only with model_type qwen3, and qwen3 only with them
        e = assertThrows(IllegalArgumentException.class, () -> new ModelConfig(ModelConfig.Family.LLAMA, "llama", 16, 2,
                4, 2, 8, 24, 40, 32, 1e-6, ModelConfig.Activation.SILU, 1e4, null, false, false, false, false, false,
                null, null, null, Llama.Options.QWEN3));
        assertTrue(e.getMessage().contains("qwen3"), e.getMessage());
    }

    /** Qwen/Qwen3-0.6B's published config.json. */
    static final String QWEN3_0_6B = """
            {
              "architectures": ["Qwen3ForCausalLM"],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "bos_token_id": 151643,
              "eos_token_id": 151645,
              "head_dim": 128,
              "hidden_act": "silu",
              "hidden_size": 1024,
              "initializer_range": 0.02,
              "intermediate_size": 3072,
              "max_position_embeddings": 40960,
              "max_window_layers": 28,
              "model_type": "qwen3",
              "num_attention_heads": 16,
              "num_hidden_layers": 28,
              "num_key_value_heads": 8,
              "rms_norm_eps": 1e-06,
              "rope_scaling": null,
              "rope_theta": 1000000,
              "sliding_window": null,
              "tie_word_embeddings": true,
              "torch_dtype": "bfloat16",
              "transformers_version": "4.51.0",
              "use_cache": true,
              "use_sliding_window": false,
              "vocab_size": 151936
            }""";

    @Test
    void qwen3_0_6bHasItsPublishedParameterCount() throws Exception {
        ModelConfig c = ModelConfig.fromHf(new ObjectMapper().readTree(QWEN3_0_6B));
        assertEquals(596_049_920L, c.parameterCount());
        assertEquals(128, c.dHead());
        assertEquals(151645, c.eosTokenId().getAsLong());
    }
}
