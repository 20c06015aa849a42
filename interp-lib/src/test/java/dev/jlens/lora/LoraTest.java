package dev.jlens.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hook.NameFilter;
import dev.jlens.io.Safetensors;
import dev.jlens.io.TensorInfo;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.testing.Models;
import dev.jlens.train.ProgressSink;
import dev.jlens.train.TrainConfig;
import dev.jlens.train.TrainResult;
import dev.jlens.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LoraTest {
    /** d_model 32, 2 layers, 4 heads, d_mlp 64, vocab 50, context 16. */
    static final ModelConfig GPT2 = ModelConfig.gpt2(32, 2, 4, 64, 50, 16);
    /** The same with grouped-query attention (2 kv heads): q_proj 32 rows, k_proj and v_proj 16 rows each. */
    static final ModelConfig LLAMA = ModelConfig.llama(32, 2, 4, 2, 64, 50, 16);
    static final LoraConfig GPT2_ALL = new LoraConfig(4, 8, List.of("c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"), 0, 1);
    static final LoraConfig LLAMA_ALL = new LoraConfig(4, 8,
            List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), 0, 1);
    static final long[][] TOKENS = {Models.tokens(12, 50, 1), Models.tokens(12, 50, 2)};

    /** Random values in [-scale, scale) into every B, so the adapter changes the model. */
    static void randomiseB(Lora lora, long seed, float scale) {
        SplittableRandom r = new SplittableRandom(seed);
        for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
            if (!e.getKey().endsWith("lora_B.weight")) continue;
            NDArray b = e.getValue();
            float[] v = new float[Math.toIntExact(b.size())];
            for (int i = 0; i < v.length; i++) v[i] = (float) ((2 * r.nextDouble() - 1) * scale);
            try (NDArray src = b.getManager().create(v, b.getShape())) {
                b.set(new NDIndex(":"), src);
            }
        }
    }

    static Map<String, float[]> snapshot(Map<String, NDArray> params) {
        Map<String, float[]> out = new LinkedHashMap<>();
        params.forEach((k, v) -> out.put(k, v.toFloatArray()));
        return out;
    }

    static float[] logits(HookedTransformer m) {
        try (NDScope s = new NDScope()) {
            return m.forward(TOKENS).toFloatArray();
        }
    }

    static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double d = 0;
        for (int i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        return d;
    }

    @Test
    void zeroBGivesTheBaseModelsLogitsExactly() {
        for (ModelConfig c : List.of(GPT2, LLAMA)) {
            try (HookedTransformer m = HookedTransformer.random(c, 3)) {
                float[] before = logits(m);
                if (c == GPT2) {
                    try (Lora both = Lora.attach(m, LoraConfig.of(2, 2, "c_proj"))) {
                        assertEquals(List.of("transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj",
                                "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_proj"), both.modules(),
                                "c_proj matches attn.c_proj and mlp.c_proj, as PEFT's suffix rule does");
                    }
                }
                try (Lora lora = Lora.attach(m, c == GPT2 ? GPT2_ALL : LLAMA_ALL)) {
                    assertEquals(c == GPT2 ? 8 : 14, lora.modules().size(), lora.toString());
                    assertArrayEquals(before, logits(m), c.modelType() + ": B = 0 must leave the logits bit for bit");
                    randomiseB(lora, 5, 0.2f);
                    assertTrue(maxDiff(before, logits(m)) > 1e-3, "a non-zero B must change the logits");
                }
                assertArrayEquals(before, logits(m), "closing the adapter detaches it");
            }
        }
    }

    /** Gemma 2 marks the same linear layers as Llama: an adapter on them applies per pass as it does merged. */
    @Test
    void gemma2LayersTakeAdaptersToo() throws IOException {
        ModelConfig gemma = ModelConfig.fromHf(new ObjectMapper().readTree("""
                {"architectures":["Gemma2ForCausalLM"],"hidden_size":16,"num_hidden_layers":2,
                 "num_attention_heads":4,"num_key_value_heads":2,"head_dim":8,"intermediate_size":24,
                 "vocab_size":50,"max_position_embeddings":32,"sliding_window":3,"attn_logit_softcapping":3.0,
                 "final_logit_softcapping":4.0,"query_pre_attn_scalar":8}"""));
        try (HookedTransformer m = HookedTransformer.random(gemma, 3); Lora lora = Lora.attach(m, LLAMA_ALL)) {
            assertEquals(14, lora.modules().size());
            assertEquals("model.layers.0.self_attn.q_proj", lora.modules().get(0));
            randomiseB(lora, 4, 0.3f);
            float[] perPass = logits(m);
            lora.merge();
            assertTrue(maxDiff(perPass, logits(m)) < 1e-5);
            lora.unmerge();
            lora.detach();
            assertTrue(maxDiff(perPass, logits(m)) > 1e-4, "the adapter changed the model");
        }
    }

    @Test
    void aIsKaimingUniformAndSeeded() {
        try (HookedTransformer m = HookedTransformer.random(GPT2, 3);
             Lora a = Lora.attach(m, GPT2_ALL); Lora b = Lora.attach(m, GPT2_ALL)) {
            String name = "base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight";   // in_features 64
            float[] x = a.parameters().get(name).toFloatArray();
            assertArrayEquals(x, b.parameters().get(name).toFloatArray(), "same seed, same A");
            double bound = 1 / Math.sqrt(64);
            double max = 0;
            for (float v : x) max = Math.max(max, Math.abs(v));
            assertTrue(max <= bound && max > 0.8 * bound, "A within ±1/sqrt(in): max |A| " + max + ", bound " + bound);
            assertEquals(new Shape(4, 64), a.parameters().get(name).getShape());
            assertEquals(new Shape(32, 4),
                    a.parameters().get("base_model.model.transformer.h.0.mlp.c_proj.lora_B.weight").getShape());
        }
    }

    @Test
    void mergeThenUnmergeRestoresTheWeightsBitForBit() {
        for (ModelConfig c : List.of(GPT2, LLAMA)) {
            try (HookedTransformer m = HookedTransformer.random(c, 3);
                 Lora lora = Lora.attach(m, c == GPT2 ? GPT2_ALL : LLAMA_ALL)) {
                randomiseB(lora, 7, 0.3f);
                Map<String, float[]> base = snapshot(m.parameters());
                float[] onTheFly = logits(m);
                lora.merge();
                assertTrue(lora.merged());
                String first = m.linearModules().get(0).parameter();
                assertFalse(Arrays.equals(base.get(first), m.parameters().get(first).toFloatArray()),
                        "merge changes the weights");
                assertTrue(maxDiff(onTheFly, logits(m)) < 1e-5, "merged and per-pass adapters agree");
                lora.unmerge();
                Map<String, float[]> after = snapshot(m.parameters());
                for (String k : base.keySet()) assertArrayEquals(base.get(k), after.get(k), k + " restored bit for bit");
                assertArrayEquals(onTheFly, logits(m), "unmerged: the per-pass adapter applies again");
            }
        }
    }

    /**
     * A hand-built adapter whose scale * B A is a known delta gives the logits of a model whose weights were edited by
     * that delta: for GPT-2's Conv1D (weights stored [in, out], the delta transposed) and for Llama's fused q/k/v and
     * gate/up (the delta in the adapted layer's rows).
     */
    @Test
    void aKnownDeltaEqualsEditingTheWeightsDirectly() {
        // GPT-2: attn.c_attn of block 1 (out 96, in 32) and mlp.c_fc of block 0 (out 64, in 32)
        checkKnownDelta(GPT2, new LoraConfig(2, 4, List.of("h.1.attn.c_attn", "h.0.mlp.c_fc"), 0, 0),
                Map.of("transformer.h.1.attn.c_attn", new Edit("transformer.h.1.attn.c_attn.weight", 0, true),
                        "transformer.h.0.mlp.c_fc", new Edit("transformer.h.0.mlp.c_fc.weight", 0, true)));
        // Llama: k_proj rows 32..48 of qkv_proj, up_proj rows 64..128 of gate_up_proj, o_proj as is
        checkKnownDelta(LLAMA, new LoraConfig(2, 4, List.of("layers.0.self_attn.k_proj", "layers.1.mlp.up_proj",
                        "layers.1.self_attn.o_proj"), 0, 0),
                Map.of("model.layers.0.self_attn.k_proj", new Edit("model.layers.0.self_attn.qkv_proj.weight", 32, false),
                        "model.layers.1.mlp.up_proj", new Edit("model.layers.1.mlp.gate_up_proj.weight", 64, false),
                        "model.layers.1.self_attn.o_proj", new Edit("model.layers.1.self_attn.o_proj.weight", 0, false)));
    }

    private record Edit(String parameter, long rowOffset, boolean conv1d) {}

    private static void checkKnownDelta(ModelConfig c, LoraConfig cfg, Map<String, Edit> edits) {
        try (HookedTransformer adapted = HookedTransformer.random(c, 9);
             HookedTransformer edited = HookedTransformer.random(c, 9);
             Lora lora = Lora.attach(adapted, cfg);
             NDManager scratch = NDManager.newBaseManager()) {
            assertEquals(edits.size(), lora.modules().size());
            float[] unedited = logits(edited);
            SplittableRandom r = new SplittableRandom(11);
            for (String module : lora.modules()) {
                NDArray a = lora.parameters().get(Lora.PREFIX + module + ".lora_A.weight");
                NDArray b = lora.parameters().get(Lora.PREFIX + module + ".lora_B.weight");
                NDArray newA = random(scratch, r, a.getShape()), newB = random(scratch, r, b.getShape());
                a.set(new NDIndex(":"), newA);
                b.set(new NDIndex(":"), newB);
                // the delta computed here, in double, from the factors: (alpha / r) B A as [out, in]
                float[] fa = newA.toFloatArray(), fb = newB.toFloatArray();
                int rank = (int) a.getShape().get(0), in = (int) a.getShape().get(1), out = (int) b.getShape().get(0);
                float[] delta = new float[out * in];
                for (int o = 0; o < out; o++) {
                    for (int i = 0; i < in; i++) {
                        double s = 0;
                        for (int k = 0; k < rank; k++) s += fb[o * rank + k] * fa[k * in + i];
                        delta[o * in + i] = (float) (2.0 * s);   // alpha 4 / r 2
                    }
                }
                NDArray d = scratch.create(delta, new Shape(out, in));
                assertTrue(maxDiff(delta, lora.deltaWeight(module).toFloatArray()) < 1e-5, "deltaWeight of " + module);
                Edit e = edits.get(module);
                NDArray w = edited.parameters().get(e.parameter());
                if (e.conv1d()) {
                    w.addi(d.transpose());
                } else {
                    NDIndex rows = new NDIndex("{}:{}", e.rowOffset(), e.rowOffset() + out);
                    w.set(rows, w.get(rows).add(d));
                }
            }
            double diff = maxDiff(logits(adapted), logits(edited));
            assertTrue(diff < 1e-4, c.modelType() + ": adapter vs directly edited weights differ by " + diff);
            assertTrue(maxDiff(logits(adapted), unedited) > 1e-3,
                    "the delta must change the model for this test to mean anything");
        }
    }

    private static NDArray random(NDManager m, SplittableRandom r, Shape shape) {
        float[] v = new float[Math.toIntExact(shape.size())];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextDouble() - 0.5);
        return m.create(v, shape);
    }

    @Test
    void hooksSeeTheAdaptedModel() {
        try (HookedTransformer m = HookedTransformer.random(LLAMA, 3); Lora lora = Lora.attach(m, LLAMA_ALL)) {
            randomiseB(lora, 3, 0.3f);
            float[] q, qMerged, logits;
            try (ActivationCache c = m.runWithCache(Batch.of(TOKENS), NameFilter.of("attn.hook_q"))) {
                q = c.get("q", 1).toFloatArray();
                logits = c.logits().toFloatArray();
            }
            assertArrayEquals(logits(m), logits, "a cached run equals a plain forward pass");
            lora.merge();
            try (ActivationCache c = m.runWithCache(Batch.of(TOKENS), NameFilter.of("attn.hook_q"))) {
                qMerged = c.get("q", 1).toFloatArray();
            }
            assertTrue(maxDiff(q, qMerged) < 1e-5, "hook_q under the per-pass adapter equals the merged model's");
            lora.unmerge();
            // per-head results read the adapted o_proj: they add up to the adapted attention output
            try (ActivationCache c = m.runWithCache(Batch.of(TOKENS), NameFilter.of("attn.hook_result", "hook_attn_out"))) {
                float[] summed = c.get("result", 0).sum(new int[] {2}).toFloatArray();
                float[] attnOut = c.get("attn_out", 0).toFloatArray();
                assertTrue(maxDiff(summed, attnOut) < 1e-5, "sum of hook_result vs hook_attn_out");
            }
        }
    }

    /** KV-cached generation sees the per-pass adapter: greedy tokens equal the merged model's and differ from the base's. */
    @Test
    void generationUsesTheAdapter() {
        try (HookedTransformer m = HookedTransformer.random(GPT2, 3); Lora lora = Lora.attach(m, GPT2_ALL)) {
            randomiseB(lora, 8, 0.5f);
            dev.jlens.model.Generation.Config greedy = dev.jlens.model.Generation.Config.greedy(10);
            long[] prompt = {3, 14, 15};
            long[] perPass, merged, base;
            try (var r = m.generate(prompt, greedy)) {
                perPass = r.first();
            }
            lora.merge();
            try (var r = m.generate(prompt, greedy)) {
                merged = r.first();
            }
            lora.detach();
            try (var r = m.generate(prompt, greedy)) {
                base = r.first();
            }
            assertArrayEquals(merged, perPass);
            assertFalse(Arrays.equals(base, perPass), "the adapter changes what is generated");
        }
    }

    /** Next-token loss on one fixed batch: a LoRA that can memorise it lowers the loss. */
    @Test
    void trainingLowersTheLossAndChangesOnlyAAndB() {
        for (ModelConfig c : List.of(GPT2, LLAMA)) {
            try (HookedTransformer m = HookedTransformer.random(c, 4);
                 Lora lora = Lora.attach(m, (c == GPT2 ? GPT2_ALL : LLAMA_ALL).withSeed(2))) {
                Map<String, float[]> base = snapshot(m.parameters());
                Map<String, float[]> ab = snapshot(lora.parameters());
                TrainConfig cfg = TrainConfig.builder().steps(25).batchSize(2).lr(2e-2).warmupSteps(0).logEvery(100)
                        .build();
                TrainResult r;
                try (Trainer t = lora.trainer(cfg, (seed, step, n) -> Batch.of(TOKENS)).progress(ProgressSink.none())) {
                    r = t.train();
                }
                double first = r.losses()[0], last = r.losses()[r.losses().length - 1];
                assertTrue(last < first - 0.5, c.modelType() + ": loss " + first + " -> " + last + " should drop");
                Map<String, float[]> after = snapshot(m.parameters());
                for (String k : base.keySet()) assertArrayEquals(base.get(k), after.get(k), k + " is frozen");
                Map<String, float[]> abAfter = snapshot(lora.parameters());
                for (String k : ab.keySet()) assertFalse(Arrays.equals(ab.get(k), abAfter.get(k)), k + " was trained");
                for (NDArray p : lora.parameters().values()) assertFalse(p.hasGradient(), "gradients off after training");
                float loss = m.loss(TOKENS);
                assertTrue(Math.abs(loss - last) < 0.5, "the model's loss now " + loss + " reflects the training");
            }
        }
    }

    /** A LoRA run stopped at a checkpoint and continued in a new trainer ends with the same A and B, bit for bit. */
    @Test
    void aStoppedLoraRunResumesBitForBit(@TempDir Path tmp) {
        TrainConfig cfg = TrainConfig.builder().steps(6).batchSize(2).lr(1e-2).warmupSteps(0).checkpointEvery(3)
                .logEvery(100).build();
        dev.jlens.train.BatchSource src = (seed, step, n) -> Batch.of(Models.tokens(12, 50, step),
                Models.tokens(12, 50, step + 100));
        Map<String, float[]> straight;
        try (HookedTransformer m = HookedTransformer.random(GPT2, 4); Lora lora = Lora.attach(m, GPT2_ALL);
             Trainer t = lora.trainer(cfg, src).progress(ProgressSink.none())) {
            t.train();
            straight = snapshot(lora.parameters());
        }
        Path run = tmp.resolve("run");
        try (HookedTransformer m = HookedTransformer.random(GPT2, 4); Lora lora = Lora.attach(m, GPT2_ALL);
             Trainer t = lora.trainer(cfg, src).progress(ProgressSink.none()).runDir(run)) {
            t.trainUntil(3);
        }
        try (HookedTransformer m = HookedTransformer.random(GPT2, 4); Lora lora = Lora.attach(m, GPT2_ALL.withSeed(9));
             Trainer t = lora.trainer(cfg, src).progress(ProgressSink.none())) {
            t.resumeOrStart(run);
            assertEquals(3, t.step());
            t.train();
            Map<String, float[]> resumed = snapshot(lora.parameters());
            for (String k : straight.keySet()) assertArrayEquals(straight.get(k), resumed.get(k), k);
        }
        // the plain resume (which would train every weight) refuses such a run
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Trainer.resume(run, src));
        assertTrue(e.getMessage().contains("trainable.safetensors"), e.getMessage());
    }

    @Test
    void peftFilesRoundTripWithPeftsNamesAndShapes(@TempDir Path tmp) throws IOException {
        // GPT-2: Conv1D layers, fan_in_fan_out
        try (HookedTransformer m = HookedTransformer.random(GPT2, 3); Lora lora = Lora.attach(m, GPT2_ALL)) {
            randomiseB(lora, 1, 0.2f);
            Path dir = tmp.resolve("gpt2-adapter");
            lora.save(dir, "gpt2");
            JsonNode c = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
            assertEquals("LORA", c.get("peft_type").asText());
            assertEquals(4, c.get("r").asInt());
            assertEquals(8, c.get("lora_alpha").asInt());
            assertTrue(c.get("lora_alpha").isIntegralNumber());
            assertEquals("[\"c_attn\",\"attn.c_proj\",\"c_fc\",\"mlp.c_proj\"]", c.get("target_modules").toString());
            assertEquals(0.0, c.get("lora_dropout").asDouble());
            assertTrue(c.get("fan_in_fan_out").asBoolean());
            assertEquals("none", c.get("bias").asText());
            assertEquals("CAUSAL_LM", c.get("task_type").asText());
            assertEquals("gpt2", c.get("base_model_name_or_path").asText());
            Map<String, long[]> shapes = headerShapes(dir.resolve("adapter_model.safetensors"));
            assertEquals(16, shapes.size(), shapes.keySet().toString());
            String h0 = "base_model.model.transformer.h.0.";
            assertArrayEquals(new long[] {4, 32}, shapes.get(h0 + "attn.c_attn.lora_A.weight"));
            assertArrayEquals(new long[] {96, 4}, shapes.get(h0 + "attn.c_attn.lora_B.weight"));
            assertArrayEquals(new long[] {4, 32}, shapes.get(h0 + "attn.c_proj.lora_A.weight"));
            assertArrayEquals(new long[] {32, 4}, shapes.get(h0 + "attn.c_proj.lora_B.weight"));
            assertArrayEquals(new long[] {4, 32}, shapes.get(h0 + "mlp.c_fc.lora_A.weight"));
            assertArrayEquals(new long[] {64, 4}, shapes.get(h0 + "mlp.c_fc.lora_B.weight"));
            assertArrayEquals(new long[] {4, 64}, shapes.get(h0 + "mlp.c_proj.lora_A.weight"));
            assertArrayEquals(new long[] {32, 4}, shapes.get(h0 + "mlp.c_proj.lora_B.weight"));
            try (Safetensors st = Safetensors.open(dir.resolve("adapter_model.safetensors"))) {
                assertEquals("pt", st.metadata().get("format"));
            }
            roundTrip(m, lora, dir, GPT2);
        }
        // Llama: q_proj/k_proj/v_proj of the fused qkv_proj
        try (HookedTransformer m = HookedTransformer.random(LLAMA, 3); Lora lora = Lora.attach(m, LLAMA_ALL)) {
            randomiseB(lora, 2, 0.2f);
            Path dir = tmp.resolve("llama-adapter");
            lora.save(dir);
            JsonNode c = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
            assertFalse(c.get("fan_in_fan_out").asBoolean());
            Map<String, long[]> shapes = headerShapes(dir.resolve("adapter_model.safetensors"));
            assertEquals(28, shapes.size());
            String l1 = "base_model.model.model.layers.1.";
            assertArrayEquals(new long[] {4, 32}, shapes.get(l1 + "self_attn.q_proj.lora_A.weight"));
            assertArrayEquals(new long[] {32, 4}, shapes.get(l1 + "self_attn.q_proj.lora_B.weight"));
            assertArrayEquals(new long[] {16, 4}, shapes.get(l1 + "self_attn.k_proj.lora_B.weight"));
            assertArrayEquals(new long[] {16, 4}, shapes.get(l1 + "self_attn.v_proj.lora_B.weight"));
            assertArrayEquals(new long[] {64, 4}, shapes.get(l1 + "mlp.gate_proj.lora_B.weight"));
            assertArrayEquals(new long[] {4, 64}, shapes.get(l1 + "mlp.down_proj.lora_A.weight"));
            roundTrip(m, lora, dir, LLAMA);
        }
    }

    /** Names and shapes from the file's JSON header, read by hand (not through Safetensors). */
    private static Map<String, long[]> headerShapes(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long n = java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode h = new ObjectMapper().readTree(new String(bytes, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8));
        Map<String, long[]> out = new LinkedHashMap<>();
        h.fields().forEachRemaining(e -> {
            if (e.getKey().equals("__metadata__")) return;
            assertEquals("F32", e.getValue().get("dtype").asText());
            JsonNode s = e.getValue().get("shape");
            long[] shape = new long[s.size()];
            for (int i = 0; i < shape.length; i++) shape[i] = s.get(i).asLong();
            out.put(e.getKey(), shape);
        });
        return out;
    }

    private static void roundTrip(HookedTransformer m, Lora saved, Path dir, ModelConfig c) {
        float[] want = logits(m);
        try (HookedTransformer fresh = HookedTransformer.random(c, 3); Lora loaded = Lora.load(fresh, dir)) {
            assertEquals(saved.config().r(), loaded.config().r());
            assertEquals(saved.config().alpha(), loaded.config().alpha());
            assertEquals(saved.config().targetModules(), loaded.config().targetModules());
            assertEquals(saved.parameters().keySet(), loaded.parameters().keySet());
            saved.parameters().forEach((k, v) -> assertArrayEquals(v.toFloatArray(),
                    loaded.parameters().get(k).toFloatArray(), k));
            assertArrayEquals(want, logits(fresh), c.modelType() + ": the loaded adapter gives the same logits");
        }
    }

    @Test
    void loadingNamesWhatDoesNotFit(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("a");
        try (HookedTransformer m = HookedTransformer.random(GPT2, 3); Lora lora = Lora.attach(m, GPT2_ALL)) {
            lora.save(dir);
        }
        // an unknown target module: names it and the model's layers
        IllegalArgumentException e;
        try (HookedTransformer m = HookedTransformer.random(GPT2, 3)) {
            e = assertThrows(IllegalArgumentException.class, () -> Lora.attach(m, LoraConfig.of(4, 8, "q_proj")));
            assertTrue(e.getMessage().contains("'q_proj'") && e.getMessage().contains("attn.c_attn"), e.getMessage());
        }
        // a Llama adapter on GPT-2: its targets match nothing
        try (HookedTransformer llama = HookedTransformer.random(LLAMA, 3); Lora l = Lora.attach(llama, LLAMA_ALL);
             HookedTransformer gpt2 = HookedTransformer.random(GPT2, 3)) {
            l.save(tmp.resolve("llama"));
            e = assertThrows(IllegalArgumentException.class, () -> Lora.load(gpt2, tmp.resolve("llama")));
            assertTrue(e.getMessage().contains("q_proj") && e.getMessage().contains("c_attn"), e.getMessage());
        }
        // shape mismatch: the adapter of a d_model 32 model on a d_model 48 model
        try (HookedTransformer wide = HookedTransformer.random(ModelConfig.gpt2(48, 2, 4, 64, 50, 16), 3)) {
            e = assertThrows(IllegalArgumentException.class, () -> Lora.load(wide, dir));
            assertTrue(e.getMessage().contains("shape mismatch") && e.getMessage().contains("(4, 32)")
                    && e.getMessage().contains("(4, 48)"), e.getMessage());
        }
        try (HookedTransformer m = HookedTransformer.random(GPT2, 3)) {
            // rank mismatch: the config says 8, the tensors have 4
            ObjectNode c = (ObjectNode) new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
            c.put("r", 8);
            Path bad = Files.createDirectories(tmp.resolve("rank"));
            new ObjectMapper().writeValue(bad.resolve("adapter_config.json").toFile(), c);
            Files.copy(dir.resolve("adapter_model.safetensors"), bad.resolve("adapter_model.safetensors"));
            e = assertThrows(IllegalArgumentException.class, () -> Lora.load(m, bad));
            assertTrue(e.getMessage().contains("rank mismatch") && e.getMessage().contains("r = 8")
                    && e.getMessage().contains("(4, 32)"), e.getMessage());
            // a tensor for a layer target_modules does not name
            c.put("r", 4);
            c.putArray("target_modules").add("c_attn");
            new ObjectMapper().writeValue(bad.resolve("adapter_config.json").toFile(), c);
            e = assertThrows(IllegalArgumentException.class, () -> Lora.load(m, bad));
            assertTrue(e.getMessage().contains("c_proj") && e.getMessage().contains("does not name"), e.getMessage());
            // a regular expression (PEFT's string form) selects layers by their full names
            c.put("target_modules", "transformer\\.h\\.\\d+\\.(attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj)");
            new ObjectMapper().writeValue(bad.resolve("adapter_config.json").toFile(), c);
            try (Lora byRegex = Lora.load(m, bad)) {
                assertEquals(8, byRegex.modules().size(), byRegex.modules().toString());
            }
            // missing files
            Files.delete(bad.resolve("adapter_model.safetensors"));
            e = assertThrows(IllegalArgumentException.class, () -> Lora.load(m, bad));
            assertTrue(e.getMessage().contains("adapter_model.safetensors"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Lora.load(m, tmp.resolve("nowhere")));
            assertTrue(e.getMessage().contains("nowhere"), e.getMessage());
        }
    }

    @Test
    void theUpdatesSvdFromItsFactorsRebuildsDeltaWAndMatchesAFullSvd() {
        try (HookedTransformer m = HookedTransformer.random(LLAMA, 3); Lora lora = Lora.attach(m, LLAMA_ALL)) {
            randomiseB(lora, 5, 0.3f);
            for (String module : List.of("layers.0.self_attn.o_proj", "layers.1.mlp.down_proj", "layers.1.self_attn.k_proj")) {
                float[] dw;
                long out, in;
                try (NDScope s = new NDScope()) {
                    NDArray d = lora.deltaWeight(module);
                    dw = d.toFloatArray();
                    out = d.getShape().get(0);
                    in = d.getShape().get(1);
                }
                Lora.Svd svd = lora.svd(module);
                assertEquals(4, svd.values().length);
                assertEquals(out, svd.left()[0].length);
                assertEquals(in, svd.right()[0].length);
                // U S V^T is the update
                double maxErr = 0, maxAbs = 0;
                for (int i = 0; i < out; i++) {
                    for (int j = 0; j < in; j++) {
                        double v = 0;
                        for (int k = 0; k < 4; k++) v += svd.values()[k] * svd.left()[k][i] * svd.right()[k][j];
                        maxErr = Math.max(maxErr, Math.abs(v - dw[(int) (i * in + j)]));
                        maxAbs = Math.max(maxAbs, Math.abs(dw[(int) (i * in + j)]));
                    }
                }
                assertTrue(maxErr < 1e-5 * Math.max(1, maxAbs), module + ": U S V^T is off by " + maxErr);
                // orthonormal directions
                for (int a = 0; a < 4; a++) {
                    for (int b = 0; b < 4; b++) {
                        double dl = 0, dr = 0;
                        for (int i = 0; i < out; i++) dl += svd.left()[a][i] * svd.left()[b][i];
                        for (int i = 0; i < in; i++) dr += svd.right()[a][i] * svd.right()[b][i];
                        assertEquals(a == b ? 1 : 0, dl, 1e-9, module + " left " + a + "." + b);
                        assertEquals(a == b ? 1 : 0, dr, 1e-9, module + " right " + a + "." + b);
                    }
                }
                // the same singular values as a full SVD of the dense matrix (Commons Math)
                double[][] dense = new double[(int) out][(int) in];
                for (int i = 0; i < out; i++) for (int j = 0; j < in; j++) dense[i][j] = dw[(int) (i * in + j)];
                double[] full = new org.apache.commons.math3.linear.SingularValueDecomposition(
                        new org.apache.commons.math3.linear.Array2DRowRealMatrix(dense, false)).getSingularValues();
                for (int k = 0; k < 4; k++) assertEquals(full[k], svd.values()[k], 1e-5 * full[0], module + " sigma " + k);
                assertEquals(1.0, Arrays.stream(svd.energy()).sum(), 1e-12);
                assertEquals(4, svd.toTable().rowCount());
                // the top output direction has |cosine| 1 with itself and the others 0
                float[] u0 = new float[(int) out];
                for (int i = 0; i < out; i++) u0[i] = (float) svd.left()[0][i];
                double[] cos = svd.outputCosines(u0);
                assertEquals(1.0, cos[0], 1e-6);
                for (int k = 1; k < 4; k++) assertEquals(0.0, cos[k], 1e-6);
            }
            assertThrows(IllegalArgumentException.class, () -> lora.svd("o_projj"));
        }
    }

    @Test
    void zeroBHasNoSingularValues() {
        try (HookedTransformer m = HookedTransformer.random(LLAMA, 3); Lora lora = Lora.attach(m, LLAMA_ALL)) {
            Lora.Svd svd = lora.svd("layers.0.self_attn.o_proj");
            for (double v : svd.values()) assertEquals(0.0, v, 0.0);
            assertArrayEquals(new double[4], svd.energy(), 0.0);
        }
    }
}
