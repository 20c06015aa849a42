package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line, run in-process: reference outputs on the shared fixtures, and clear errors on bad input. */
class LabTest {
    private static final String STORIES_GREEDY = "461,461,401,401,401,461,378,455,473,456,435,299,362,409,283,264";

    /** Exit code and what a run printed. */
    record Run(int code, String out, String err) {}

    static Run lab(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int code;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            code = Lab.run(args, o, e);
        }
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static String stories() {
        return Fixtures.require("stories260K").toString();
    }

    @Test
    void greedyGenerationMatchesLlama2c() {
        Run r = lab("generate", "--model", stories(), "--ids", "1", "--max-new-tokens", "16", "--temperature", "0");
        assertEquals(0, r.code, r.err);
        // no tokenizer in this checkpoint: the ids line only
        assertEquals(STORIES_GREEDY, r.out.strip());
    }

    @Test
    void greedyGenerationWithoutKvCacheAgrees() {
        Run r = lab("generate", "--model", stories(), "--ids", "1", "--max-new-tokens", "16", "--no-kv-cache");
        assertEquals(0, r.code, r.err);
        assertEquals(STORIES_GREEDY, r.out.strip());
    }

    @Test
    void seededSamplingIsRepeatableAndRespectsLength() {
        String[] args = {"generate", "--model", stories(), "--ids", "1,461", "--max-new-tokens", "12",
                "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--seed", "7"};
        Run a = lab(args), b = lab(args);
        assertEquals(0, a.code, a.err);
        assertEquals(a.out, b.out);
        String[] ids = a.out.strip().split(",");
        assertEquals(12, ids.length, a.out);
        for (String id : ids) {
            long v = Long.parseLong(id);
            assertTrue(v >= 0 && v < 512, "id " + v + " outside the vocabulary");
        }
    }

    @Test
    void logitsMatchLlmCReference() throws IOException {
        ObjectMapper json = new ObjectMapper();
        JsonNode ref = json.readTree(Fixtures.require("gpt2-tiny-random/reference-logits.json").toFile());
        StringBuilder ids = new StringBuilder();
        for (JsonNode t : ref.get("tokens")) ids.append(ids.length() == 0 ? "" : ",").append(t.asLong());
        Run r = lab("logits", "--model", Fixtures.require("gpt2-tiny-random").toString(), "--ids", ids.toString());
        assertEquals(0, r.code, r.err);
        JsonNode got = json.readTree(r.out);
        assertEquals(ref.get("tokens"), got.get("tokens"));
        assertEquals(ref.get("logits").size(), got.get("logits").size());
        double maxErr = 0;
        for (int p = 0; p < ref.get("logits").size(); p++) {
            JsonNode want = ref.get("logits").get(p), row = got.get("logits").get(p);
            assertEquals(want.size(), row.size(), "vocabulary size at position " + p);
            for (int v = 0; v < want.size(); v++) maxErr = Math.max(maxErr, Math.abs(row.get(v).asDouble() - want.get(v).asDouble()));
        }
        assertTrue(maxErr < 1e-4, "max |logit - llm.c| = " + maxErr);
    }

    @Test
    void helpAndNoArgumentsPrintUsage() {
        for (String[] args : new String[][] {{}, {"help"}}) {
            Run r = lab(args);
            assertEquals(0, r.code);
            assertTrue(r.out.contains("usage: lab") && r.out.contains("generate") && r.out.contains("bench model"), r.out);
        }
    }

    @Test
    void badArgumentsExitWith2AndNameTheValidChoices() {
        String m = stories();
        assertUsage(lab("frobnicate"), "valid commands: generate, logits, patch, attribute, pretokenize, sample-corpus, chat-template, toy, sae, bench, zoo, device, help");
        assertUsage(lab("generate", "--ids", "1", "--max-new-tokens", "3"), "--model is required");
        assertUsage(lab("generate", "--model", m, "--ids", "1"), "--max-new-tokens is required");
        assertUsage(lab("generate", "--model", m, "--ids", "1", "--max-new-tokens", "3", "--temprature", "1"),
                "unknown option --temprature", "--temperature");
        assertUsage(lab("generate", "--model", m, "--ids", "1", "--prompt", "hi", "--max-new-tokens", "3"),
                "exactly one of --prompt");
        assertUsage(lab("generate", "--model", m, "--ids", "1,x", "--max-new-tokens", "3"), "comma-separated integers");
        assertUsage(lab("generate", "--model", m, "--ids", "1", "--max-new-tokens", "-1"), "--max-new-tokens must be in");
        assertUsage(lab("generate", "--model", m, "--ids", "1", "--max-new-tokens", "3", "--temperature", "-1"),
                "--temperature must be in");
        assertUsage(lab("generate", "--model", m, "--ids", "1", "--max-new-tokens", "3", "--top-p", "0"), "--top-p");
        assertUsage(lab("generate", "--model", m, "--ids", "1", "--max-new-tokens", "1000"), "context of 512");
        assertUsage(lab("generate", "--model", m, "--ids", "9999", "--max-new-tokens", "3"), "outside the model's vocabulary");
        assertUsage(lab("generate", "--model", m, "--prompt", "Once upon", "--max-new-tokens", "3"), "no tokenizer");
        assertUsage(lab("generate", "--model", "./no/such/model", "--ids", "1", "--max-new-tokens", "3"), "no such directory");
        assertUsage(lab("logits", "--model", m), "exactly one of --ids");
        assertUsage(lab("logits", "--model", m, "--ids", "1", "extra"), "unexpected argument 'extra'");
        assertUsage(lab("bench"), "valid benchmarks: model");
        assertUsage(lab("bench", "nope"), "unknown benchmark 'nope'", "valid benchmarks: model");
        assertUsage(lab("bench", "model", "--shape", "huge"), "--shape must be small or tiny");
        assertUsage(lab("bench", "model", "--runs", "0"), "--runs must be in");
        assertUsage(lab("bench", "model", "--no-python", "--python", "python3"), "--no-python cannot be combined");
        assertUsage(lab("bench", "nope"), "valid benchmarks: model, sae");
        assertUsage(lab("bench", "sae", "--shape", "huge"), "--shape must be full or tiny");
        assertUsage(lab("bench", "sae", "--threads", "0"), "--threads");
        assertUsage(lab("bench", "sae", "--no-python", "--python-script", "x.py"), "--no-python cannot be combined");
    }

    @Test
    void benchSaeTinyPrintsJsonLines() throws Exception {
        Run r = lab("bench", "sae", "--shape", "tiny", "--runs", "1", "--warmup", "0", "--no-python");
        assertEquals(0, r.code, r.err);
        String[] lines = r.out.strip().split("\n");
        assertEquals(9, lines.length, r.out);   // 1 peak (one thread count), 6 training, 2 decode
        for (String line : lines) {
            com.fasterxml.jackson.databind.JsonNode n = new com.fasterxml.jackson.databind.ObjectMapper().readTree(line);
            assertEquals("sae", n.get("bench").asText(), line);
        }
        assertTrue(r.out.contains("\"metric\":\"sae_dense_train_step\""), r.out);
        assertTrue(r.out.contains("\"metric\":\"sae_auxk_train_step\""), r.out);
        assertTrue(r.out.contains("Python baseline off"), r.out);
    }

    @Test
    void aFailingModelLoadIsAMessageNotAStackTrace() {
        // a directory that exists but holds no checkpoint
        Run r = lab("logits", "--model", Fixtures.root().toString(), "--ids", "1");
        assertEquals(1, r.code, r.err);
        assertTrue(r.err.startsWith("lab logits: "), r.err);
        assertNoStackTrace(r);
    }

    private static void assertUsage(Run r, String... expected) {
        assertEquals(2, r.code, "exit code; stderr: " + r.err);
        for (String e : expected) assertTrue(r.err.contains(e), "stderr should mention '" + e + "': " + r.err);
        assertTrue(r.out.isEmpty(), "nothing on stdout: " + r.out);
        assertNoStackTrace(r);
    }

    private static void assertNoStackTrace(Run r) {
        assertFalse(r.err.contains("\tat ") || r.err.contains("Exception"), "no stack trace: " + r.err);
    }

    /** Tiny random checkpoints of the families added beside GPT-2 and Llama, as {@code config.json} describes them. */
    private static final java.util.Map<String, String> NEW_FAMILIES = java.util.Map.of(
            "gemma2", """
                    {"architectures":["Gemma2ForCausalLM"],"hidden_size":16,"num_hidden_layers":3,
                     "num_attention_heads":4,"num_key_value_heads":2,"head_dim":8,"intermediate_size":24,
                     "vocab_size":40,"max_position_embeddings":32,"sliding_window":3,"attn_logit_softcapping":3.0,
                     "final_logit_softcapping":4.0,"query_pre_attn_scalar":8}""",
            "qwen3", """
                    {"architectures":["Qwen3ForCausalLM"],"hidden_size":16,"num_hidden_layers":2,
                     "num_attention_heads":4,"num_key_value_heads":2,"head_dim":8,"intermediate_size":24,
                     "vocab_size":40,"max_position_embeddings":32,"tie_word_embeddings":true}""");

    @Test
    void logitsAndGenerationWorkForGemma2AndQwen3(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
            throws IOException {
        ObjectMapper json = new ObjectMapper();
        for (var e : NEW_FAMILIES.entrySet()) {
            java.nio.file.Path dir = tmp.resolve(e.getKey());
            dev.jlens.model.arch.ModelConfig cfg = dev.jlens.model.arch.ModelConfig.fromHf(json.readTree(e.getValue()));
            float[] want;
            try (dev.jlens.model.HookedTransformer m = dev.jlens.model.HookedTransformer.random(cfg, 5)) {
                m.save(dir);
                want = m.forward(new long[] {1, 7, 3, 9, 4, 12}).toFloatArray();
            }
            Run r = lab("logits", "--model", dir.toString(), "--ids", "1,7,3,9,4,12");
            assertEquals(0, r.code, e.getKey() + ": " + r.err);
            JsonNode rows = json.readTree(r.out).get("logits");
            assertEquals(6, rows.size());
            for (int p = 0; p < 6; p++) {
                for (int i = 0; i < 40; i++) {
                    assertEquals(want[p * 40 + i], rows.get(p).get(i).floatValue(), 1e-5, e.getKey() + " " + p);
                }
            }
            // past the window, cached and uncached generation agree
            Run cached = lab("generate", "--model", dir.toString(), "--ids", "1,7", "--max-new-tokens", "8");
            Run uncached = lab("generate", "--model", dir.toString(), "--ids", "1,7", "--max-new-tokens", "8",
                    "--no-kv-cache");
            assertEquals(0, cached.code, cached.err);
            assertEquals(cached.out, uncached.out, e.getKey());
        }
    }

    /**
     * {@code --adapter}: logits equal those of the model with the adapter applied in the library, which differ from
     * the base model's; generation takes it too; a missing directory is a usage error, an adapter of another model a
     * message naming both sides.
     */
    @Test
    void adapterAppliesAPeftLoraAdapter(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws IOException {
        ObjectMapper json = new ObjectMapper();
        dev.jlens.model.arch.ModelConfig cfg = dev.jlens.model.arch.ModelConfig.gpt2(32, 2, 4, 64, 50, 16);
        java.nio.file.Path model = tmp.resolve("model"), adapter = tmp.resolve("adapter");
        long[] ids = {1, 7, 3, 9, 4, 12};
        float[] base, adapted;
        try (dev.jlens.model.HookedTransformer m = dev.jlens.model.HookedTransformer.random(cfg, 5);
             dev.jlens.lora.Lora lora = dev.jlens.lora.Lora.attach(m,
                     dev.jlens.lora.LoraConfig.of(4, 8, "c_attn", "mlp.c_proj"))) {
            m.save(model);
            java.util.SplittableRandom r = new java.util.SplittableRandom(1);
            for (var e : lora.parameters().entrySet()) {
                if (!e.getKey().endsWith("lora_B.weight")) continue;
                float[] v = new float[(int) e.getValue().size()];
                for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextDouble() - 0.5);
                e.getValue().set(new ai.djl.ndarray.index.NDIndex(":"),
                        e.getValue().getManager().create(v, e.getValue().getShape()));
            }
            lora.save(adapter);
            adapted = m.forward(ids).toFloatArray();
            lora.detach();
            base = m.forward(ids).toFloatArray();
        }
        Run plain = lab("logits", "--model", model.toString(), "--ids", "1,7,3,9,4,12");
        Run withAdapter = lab("logits", "--model", model.toString(), "--ids", "1,7,3,9,4,12", "--adapter",
                adapter.toString());
        assertEquals(0, plain.code, plain.err);
        assertEquals(0, withAdapter.code, withAdapter.err);
        JsonNode p = json.readTree(plain.out).get("logits"), a = json.readTree(withAdapter.out).get("logits");
        double adapterEffect = 0;
        for (int pos = 0; pos < ids.length; pos++) {
            for (int v = 0; v < 50; v++) {
                assertEquals(base[pos * 50 + v], p.get(pos).get(v).floatValue(), 1e-5, "base " + pos);
                assertEquals(adapted[pos * 50 + v], a.get(pos).get(v).floatValue(), 1e-5, "adapted " + pos);
                adapterEffect = Math.max(adapterEffect, Math.abs(base[pos * 50 + v] - adapted[pos * 50 + v]));
            }
        }
        assertTrue(adapterEffect > 1e-2, "the adapter changes the logits: " + adapterEffect);
        Run gen = lab("generate", "--model", model.toString(), "--ids", "1,7", "--max-new-tokens", "4", "--adapter",
                adapter.toString());
        assertEquals(0, gen.code, gen.err);
        String[] generated = gen.out.strip().split(",");
        assertEquals(4, generated.length, gen.out);
        int argmax = 0;   // greedy: the first new token is the adapted model's top prediction after [1, 7]
        for (int v = 1; v < 50; v++) if (adapted[50 + v] > adapted[50 + argmax]) argmax = v;
        assertEquals(argmax, Integer.parseInt(generated[0]), gen.out);
        assertUsage(lab("logits", "--model", model.toString(), "--ids", "1", "--adapter", tmp.resolve("none").toString()),
                "--adapter", "no such directory");
        java.nio.file.Path other = tmp.resolve("other");
        try (dev.jlens.model.HookedTransformer m = dev.jlens.model.HookedTransformer.random(
                dev.jlens.model.arch.ModelConfig.gpt2(48, 2, 4, 64, 50, 16), 5)) {
            m.save(other);
        }
        Run wrong = lab("logits", "--model", other.toString(), "--ids", "1", "--adapter", adapter.toString());
        assertEquals(1, wrong.code, wrong.err);
        assertTrue(wrong.err.contains("shape mismatch") && wrong.err.contains("(4, 32)"), wrong.err);
        assertNoStackTrace(wrong);
    }
}
