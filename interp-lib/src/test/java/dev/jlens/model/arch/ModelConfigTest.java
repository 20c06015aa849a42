package dev.jlens.model.arch;

import dev.jlens.model.HookedTransformer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.testing.Models;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelConfigTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static ModelConfig parse(String json) throws Exception {
        return ModelConfig.fromHf(JSON.readTree(json));
    }

    @Test
    void qwen2HasQkvBiasesAndNoOutputBias() throws Exception {
        ModelConfig c = parse("""
                {"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,
                 "num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,
                 "max_position_embeddings":32768,"rms_norm_eps":1e-6,"rope_theta":1000000.0,"tie_word_embeddings":true,
                 "use_sliding_window":false,"sliding_window":32768,"hidden_act":"silu"}""");
        assertEquals(ModelConfig.Family.LLAMA, c.family());
        assertTrue(c.qkvBias());
        assertTrue(!c.attnOutBias());
        assertEquals(7, c.groupSize());
        assertEquals(64, c.dHead());
        assertTrue(c.slidingWindow().isEmpty());
        // Qwen2.5-0.5B has 494M parameters (published figure)
        assertEquals(494_032_768L, c.parameterCount());
    }

    @Test
    void llama31RopeScalingAndMistralWindowAreRead() throws Exception {
        ModelConfig l = parse("""
                {"architectures":["LlamaForCausalLM"],"hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
                 "num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"max_position_embeddings":131072,
                 "rms_norm_eps":1e-5,"rope_theta":500000.0,"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,
                 "high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}}""");
        assertEquals(8.0, l.ropeScaling().orElseThrow().factor());
        assertEquals(8192, l.ropeScaling().orElseThrow().originalMaxPositions());
        assertTrue(!l.tiedEmbeddings());
        assertEquals(8_030_261_248L, l.parameterCount());   // Llama-3.1-8B
        ModelConfig m = parse("""
                {"architectures":["MistralForCausalLM"],"hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
                 "num_attention_heads":32,"num_key_value_heads":8,"vocab_size":32000,"max_position_embeddings":32768,
                 "rms_norm_eps":1e-5,"rope_theta":10000.0,"sliding_window":4096}""");
        assertEquals(4096, m.slidingWindow().getAsInt());
        assertEquals("mistral", m.modelType());
    }

    @Test
    void unsupportedArchitectureNamesTheSupportedOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> parse("{\"architectures\":[\"BertForMaskedLM\"],\"hidden_size\":8}"));
        assertTrue(e.getMessage().contains("BertForMaskedLM"), e.getMessage());
        assertTrue(e.getMessage().contains("GPT2LMHeadModel") && e.getMessage().contains("Qwen2ForCausalLM"));
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> parse("{\"architectures\":[\"GPT2LMHeadModel\"],\"n_embd\":64}"));
        assertTrue(missing.getMessage().contains("n_head") || missing.getMessage().contains("n_layer"),
                missing.getMessage());
    }

    @Test
    void savedConfigsRoundTripAndFamiliesRunFromRandomWeights(@TempDir Path tmp) throws Exception {
        ModelConfig qwen = parse("""
                {"architectures":["Qwen2ForCausalLM"],"hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,
                 "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":50,"max_position_embeddings":64,
                 "rms_norm_eps":1e-6,"rope_theta":1000000.0,"tie_word_embeddings":false,
                 "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
                 "original_max_position_embeddings":16,"rope_type":"llama3"}}""");
        long[] t = Models.tokens(10, 50, 3);
        try (HookedTransformer m = HookedTransformer.random(qwen, 5); NDScope scope = new NDScope()) {
            NDArray before = m.forward(t);
            m.save(tmp.resolve("qwen"));
            assertEquals(qwen, ModelConfig.load(tmp.resolve("qwen")));
            try (HookedTransformer back = HookedTransformer.load(tmp.resolve("qwen"))) {
                assertEquals(0.0, Models.maxAbsDiff(before, back.forward(t)));
            }
        }
    }

    @Test
    void theRegisteredFamiliesNameTheSupportedArchitecturesAndReadConfigsWithoutThem() throws Exception {
        assertEquals(List.of("GPT2LMHeadModel", "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM",
                "Qwen3ForCausalLM", "Gemma2ForCausalLM"), ModelConfig.SUPPORTED);
        assertEquals(List.of(ModelConfig.Family.GPT2, ModelConfig.Family.LLAMA, Gemma2.GEMMA2),
                Architectures.families());
        // no "architectures": the model_type picks the family
        ModelConfig q = parse("""
                {"model_type":"qwen2","hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,
                 "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":50}""");
        assertEquals(ModelConfig.Family.LLAMA, q.family());
        assertEquals("qwen2", q.modelType());
        assertTrue(q.qkvBias());
        ModelConfig g = parse("{\"model_type\":\"gpt2\",\"n_embd\":32,\"n_layer\":2,\"n_head\":4,"
                + "\"vocab_size\":50,\"n_positions\":16,\"bos_token_id\":7}");
        assertEquals(ModelConfig.Family.GPT2, g.family());
        assertEquals(128, g.dMlp());
        assertEquals(7, g.bosTokenId().getAsLong());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> parse("{\"model_type\":\"bert\",\"hidden_size\":8}"));
        assertTrue(e.getMessage().contains("model_type=bert") && e.getMessage().contains("MistralForCausalLM"),
                e.getMessage());
    }

    @Test
    void everyFamilyWritesConfigsItReadsBackUnchanged() throws Exception {
        ModelConfig mistral = parse("""
                {"architectures":["MistralForCausalLM"],"hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,
                 "num_attention_heads":4,"num_key_value_heads":1,"vocab_size":50,"max_position_embeddings":64,
                 "rms_norm_eps":1e-5,"rope_theta":10000.0,"sliding_window":16,"eos_token_id":[2, 3]}""");
        ModelConfig llama31 = parse("""
                {"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,
                 "num_attention_heads":4,"vocab_size":50,"max_position_embeddings":64,"rope_theta":500000.0,
                 "mlp_bias":true,"attention_bias":true,"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,
                 "high_freq_factor":4.0,"original_max_position_embeddings":16,"rope_type":"llama3"}}""");
        for (ModelConfig c : List.of(ModelConfig.gpt2(64, 2, 4, 256, 96, 64),
                ModelConfig.gpt2(64, 2, 4, 256, 96, 64).withAttnOnly(true).withTiedEmbeddings(false),
                ModelConfig.llama(64, 2, 8, 4, 172, 512, 128), mistral, llama31)) {
            assertEquals(c, ModelConfig.fromHf(c.toHf()), c.toString());
        }
        assertEquals("MistralForCausalLM", mistral.toHf().get("architectures").get(0).asText());
        assertEquals(2, mistral.eosTokenId().getAsLong());
    }

    /** Options a family of its own would define (Gemma 2's soft-capping, say). */
    record SoftCap(double logits) implements ModelConfig.FamilyOptions {}

    @Test
    void familiesAreCanonicalAndTheirChecksAndOptionsApply() {
        assertSame(ModelConfig.Family.GPT2, ModelConfig.Family.of("gpt2"));
        ModelConfig g = ModelConfig.gpt2(64, 2, 4, 256, 96, 64);
        assertSame(ModelConfig.NoOptions.INSTANCE, g.options(ModelConfig.NoOptions.class));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.options(SoftCap.class));
        assertTrue(e.getMessage().contains("SoftCap"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new ModelConfig(ModelConfig.Family.GPT2, "gpt2", 64, 2,
                4, 4, 16, 256, 96, 64, 1e-5, ModelConfig.Activation.GELU_NEW, 0, null, true, true, true, true, false,
                null, null, null, new SoftCap(30)));
        assertTrue(e.getMessage().contains("NoOptions") && e.getMessage().contains("SoftCap"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new ModelConfig(ModelConfig.Family.of("mamba"), null,
                64, 2, 4, 4, 16, 256, 96, 64, 1e-5, ModelConfig.Activation.GELU_NEW, 0, null, true, true, true, true,
                false, null, null, null, null));
        assertTrue(e.getMessage().contains("mamba") && e.getMessage().contains("[gpt2, llama, gemma2]"),
                e.getMessage());
        // the Llama file's own check: rotary embeddings rotate pairs of dimensions
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.llama(60, 2, 4, 4, 96, 50, 64));
        assertTrue(e.getMessage().contains("even dHead, got 15"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ModelConfig.Family.of("GPT2"));
    }
}
