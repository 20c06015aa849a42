package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.HookRegistry;
import dev.jlens.model.HookedTransformer;
import dev.jlens.testing.Models;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading, initialisation, the state dict and the parameter count, all read off each family's one weight table. */
class WeightTableTest {

    @Test
    void missingTensorsAreListedTogetherWithTheNearestNames() {
        try (HookedTransformer ref = Models.gpt2(); NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> ckpt = new LinkedHashMap<>(ref.parameters());
            ckpt.remove("transformer.h.1.ln_2.bias");
            ckpt.remove("transformer.ln_f.weight");
            Gpt2 arch = new Gpt2(ref.cfg(), new HookRegistry());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Gpt2.table(ref.cfg()).load(arch, Weights.of(ckpt)));
            assertTrue(e.getMessage().contains("lacks 2 of the tensors")
                    && e.getMessage().contains("transformer.h.1.ln_2.bias")
                    && e.getMessage().contains("transformer.ln_f.weight"), e.getMessage());
            assertTrue(e.getMessage().contains("it has: [transformer.h.0.ln_2.bias"), e.getMessage());
        }
    }

    @Test
    void aWrongShapeNamesTheTensorAndBothShapes() {
        try (HookedTransformer ref = Models.gpt2(); NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> ckpt = new LinkedHashMap<>(ref.parameters());
            ckpt.put("transformer.wpe.weight", m.zeros(new Shape(32, 64)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Gpt2.table(ref.cfg()).load(new Gpt2(ref.cfg(), new HookRegistry()), Weights.of(ckpt)));
            assertTrue(e.getMessage().contains("'transformer.wpe.weight' has shape (32, 64)")
                    && e.getMessage().contains("implies (64, 64)"), e.getMessage());
        }
    }

    @Test
    void checkpointsWithoutThePrefixLoadTheSameTensors() {
        // the gpt2 Hub repository names its tensors without "transformer."
        try (HookedTransformer ref = Models.gpt2()) {
            Map<String, NDArray> hub = new LinkedHashMap<>();
            ref.parameters().forEach((n, t) -> hub.put(n.replaceFirst("^transformer\\.", ""), t));
            assertTrue(hub.containsKey("wte.weight") && hub.containsKey("h.2.mlp.c_proj.bias"));
            Gpt2 arch = new Gpt2(ref.cfg(), new HookRegistry());
            arch.load(Weights.of(hub));
            assertEquals(ref.parameters().keySet(), arch.parameters().keySet());
            for (String n : ref.parameters().keySet()) {
                assertEquals(0.0, Models.maxAbsDiff(ref.parameters().get(n), arch.parameters().get(n)), n);
            }
        }
    }

    @Test
    void fusedTensorsSaveAsTheCheckpointsSeparateOnesAndLoadBackExactly() {
        ModelConfig qwen = new ModelConfig(ModelConfig.Family.LLAMA, "qwen2", 32, 2, 4, 2, 8, 48, 50, 64, 1e-6,
                ModelConfig.Activation.SILU, 1e6, null, false, true, true, true, false, null, null, null, null);
        try (HookedTransformer random = HookedTransformer.random(qwen, 3);
             NDManager scratch = random.manager().newSubManager()) {
            Map<String, NDArray> state = stateDict(random, scratch);
            assertEquals(new Shape(32, 32), state.get("model.layers.1.self_attn.q_proj.weight").getShape());
            assertEquals(new Shape(16, 32), state.get("model.layers.1.self_attn.k_proj.weight").getShape());
            assertEquals(new Shape(16), state.get("model.layers.1.self_attn.v_proj.bias").getShape());
            assertEquals(new Shape(48), state.get("model.layers.0.mlp.up_proj.bias").getShape());
            assertTrue(state.keySet().stream().noneMatch(n -> n.contains("qkv_proj") || n.contains("gate_up")),
                    state.keySet().toString());
            Llama back = new Llama(qwen, new HookRegistry());
            back.load(Weights.of(state));
            assertEquals(random.parameters().keySet(), back.parameters().keySet());
            for (String n : random.parameters().keySet()) {
                assertEquals(0.0, Models.maxAbsDiff(random.parameters().get(n), back.parameters().get(n)), n);
            }
        }
    }

    private static Map<String, NDArray> stateDict(HookedTransformer model, NDManager scratch) {
        // what save() writes: the family's table splits the fused tensors
        return Llama.table(model.cfg()).stateDict(model.parameters(), scratch);
    }

    @Test
    void theParameterCountIsTheSizeOfTheTensors() {
        ModelConfig qwenBiases = new ModelConfig(ModelConfig.Family.LLAMA, "qwen2", 32, 2, 4, 2, 8, 48, 50, 64, 1e-6,
                ModelConfig.Activation.SILU, 1e6, null, false, true, true, true, false, null, null, null, null);
        // the last two were miscounted by the formula the tables replace: an attention-only GPT-2 has no ln_2, and a
        // gated MLP with biases has a gate and an up bias
        for (ModelConfig c : List.of(ModelConfig.gpt2(64, 3, 4, 256, 96, 64),
                ModelConfig.llama(64, 2, 8, 4, 172, 512, 128),
                ModelConfig.gpt2(32, 2, 4, 128, 50, 32).withAttnOnly(true).withTiedEmbeddings(false), qwenBiases)) {
            try (HookedTransformer m = HookedTransformer.random(c, 1)) {
                long size = m.parameters().values().stream().mapToLong(p -> p.getShape().size()).sum();
                assertEquals(size, c.parameterCount(), c.toString());
            }
        }
        assertEquals(12_864, ModelConfig.gpt2(32, 2, 4, 128, 50, 32).withAttnOnly(true).withTiedEmbeddings(false)
                .parameterCount());
        assertEquals(19_168, qwenBiases.parameterCount());
    }
}
