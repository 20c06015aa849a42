package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.jlens.io.CheckpointException;
import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static dev.jlens.testing.Models.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SaeLensTest {
    static final JsonMapper JSON = new JsonMapper();
    NDManager nd;

    @BeforeEach
    void open() {
        nd = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        nd.close();
    }

    /** A dictionary with random weights and non-zero biases (init leaves the biases at zero, which hides mistakes). */
    static SparseCoder randomSae(SaeConfig cfg, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        try (NDManager tmp = NDManager.newBaseManager()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put(SaeWeights.W_ENC, tmp.create(gauss(r, cfg.dIn() * cfg.dSae(), 0.5), new Shape(cfg.dIn(), cfg.dSae())));
            t.put(SaeWeights.B_ENC, tmp.create(gauss(r, cfg.dSae(), 0.2), new Shape(cfg.dSae())));
            t.put(SaeWeights.W_DEC, tmp.create(gauss(r, cfg.dSae() * cfg.dIn(), 0.5), new Shape(cfg.dSae(), cfg.dIn())));
            t.put(SaeWeights.B_DEC, tmp.create(gauss(r, cfg.dIn(), 0.3), new Shape(cfg.dIn())));
            if (!(cfg.kind() instanceof SaeConfig.Relu) && !(cfg.kind() instanceof SaeConfig.TopK)) {
                float[] th = new float[cfg.dSae()];
                for (int i = 0; i < th.length; i++) th[i] = (float) (0.1 + 0.5 * r.nextDouble());
                t.put(SaeWeights.THRESHOLD, tmp.create(th, new Shape(cfg.dSae())));
            }
            for (var e : t.entrySet()) e.setValue(e.getValue().duplicate());   // engine-owned copies
            return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
        }
    }

    static float[] gauss(SplittableRandom r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            double u = 1 - r.nextDouble(), v = r.nextDouble();
            a[i] = (float) (scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
        }
        return a;
    }

    /** Values on a 1/64 grid in [-1, 1]: exact in F16 and BF16, so a half-precision file holds them unchanged. */
    static float[] grid(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (r.nextInt(129) - 64) / 64f;
        return a;
    }

    static JsonNode readCfg(Path dir) throws Exception {
        return JSON.readTree(Files.readString(dir.resolve("cfg.json")));
    }

    @Test
    void roundTripWritesSaelensFilesAndLoadsTheSameDictionary(@TempDir Path tmp) throws Exception {
        SaeConfig cfg = SaeConfig.of(8, 16, new SaeConfig.TopK(5)).withHook("blocks.1.hook_resid_pre").withModel("tiny-gpt2")
                .withApplyBDecToInput(true);
        float[] sparsity = new float[16];
        for (int i = 0; i < 16; i++) sparsity[i] = -1f - i / 8f;
        try (SparseCoder sae = randomSae(cfg, 1)) {
            SaeLens.save(sae, tmp, sparsity);
            try (var files = Files.list(tmp)) {
                assertEquals(Set.of("cfg.json", "sae_weights.safetensors", "sparsity.safetensors"),
                        Set.copyOf(files.map(p -> p.getFileName().toString()).toList()));
            }
            JsonNode c = readCfg(tmp);
            assertEquals("topk", c.get("architecture").asText());
            assertEquals(8, c.get("d_in").asInt());
            assertEquals(16, c.get("d_sae").asInt());
            assertEquals(5, c.get("k").asInt());
            assertFalse(c.get("rescale_acts_by_decoder_norm").asBoolean());
            assertEquals("float32", c.get("dtype").asText());
            assertEquals("none", c.get("normalize_activations").asText());
            assertEquals("none", c.get("reshape_activations").asText());
            assertTrue(c.get("apply_b_dec_to_input").asBoolean());
            assertEquals("blocks.1.hook_resid_pre", c.get("metadata").get("hook_name").asText());
            assertEquals("tiny-gpt2", c.get("metadata").get("model_name").asText());
            assertTrue(c.get("metadata").get("sae_lens_version").asText().startsWith("6."),
                    "SAELens reads files without a 6.x version as the old flat layout");
            try (Safetensors st = Safetensors.open(tmp.resolve("sae_weights.safetensors"))) {
                assertEquals(Set.of("W_enc", "b_enc", "W_dec", "b_dec"), st.names());
                assertArrayEquals(new long[] {8, 16}, st.info("W_enc").shape());
                assertArrayEquals(new long[] {16}, st.info("b_enc").shape());
                assertArrayEquals(new long[] {16, 8}, st.info("W_dec").shape());
                assertArrayEquals(new long[] {8}, st.info("b_dec").shape());
                assertEquals(DType.F32, st.info("W_enc").dtype());
            }
            assertArrayEquals(sparsity, SaeLens.loadSparsity(tmp).orElseThrow());

            try (SparseCoder back = SaeLens.load(tmp)) {
                assertInstanceOf(TopKSae.class, back);
                assertEquals(cfg.kind().architecture(), back.cfg().kind().architecture());
                assertEquals(5, ((SaeConfig.TopK) back.cfg().kind()).k());
                assertEquals(cfg.hookName(), back.cfg().hookName());
                assertEquals(cfg.modelName(), back.cfg().modelName());
                assertEquals(cfg.applyBDecToInput(), back.cfg().applyBDecToInput());
                NDArray x = nd.create(gauss(new SplittableRandom(9), 3 * 7 * 8, 1.0), new Shape(3, 7, 8));
                NDArray f0 = sae.encode(x), f1 = back.encode(x);
                assertEquals(new Shape(3, 7, 16), f1.getShape());
                assertEquals(0.0, maxAbsDiff(f0, f1));
                assertEquals(0.0, maxAbsDiff(sae.reconstruct(x), back.reconstruct(x)));
            }
        }
        try (SparseCoder sae = randomSae(cfg, 2)) {
            Path other = tmp.resolve("no-sparsity");
            SaeLens.save(sae, other);
            assertTrue(SaeLens.loadSparsity(other).isEmpty());
        }
    }

    @Test
    void inputScaleIsFoldedIntoTheSavedWeights(@TempDir Path tmp) {
        double s = 2.5;
        SaeConfig cfg = SaeConfig.of(6, 12, new SaeConfig.TopK(4)).withHook("blocks.0.hook_resid_post").withInputScale(s);
        try (SparseCoder sae = randomSae(cfg, 3)) {
            SaeLens.save(sae, tmp);
            try (Safetensors st = Safetensors.open(tmp.resolve("sae_weights.safetensors"))) {
                float[] wEnc = sae.weights().get("W_enc").toFloatArray(), wDec = sae.weights().get("W_dec").toFloatArray();
                float[] bDec = sae.weights().get("b_dec").toFloatArray(), bEnc = sae.weights().get("b_enc").toFloatArray();
                float[] fEnc = st.loadFloats("W_enc"), fDec = st.loadFloats("W_dec"), fbDec = st.loadFloats("b_dec");
                for (int i = 0; i < wEnc.length; i++) assertEquals(wEnc[i] * s, fEnc[i], 1e-6);
                for (int i = 0; i < wDec.length; i++) assertEquals(wDec[i] / s, fDec[i], 1e-6);
                for (int i = 0; i < bDec.length; i++) assertEquals(bDec[i] / s, fbDec[i], 1e-6);
                assertArrayEquals(bEnc, st.loadFloats("b_enc"));
            }
            try (SparseCoder back = SaeLens.load(tmp)) {
                assertEquals(1.0, back.cfg().inputScale());
                NDArray x = nd.create(gauss(new SplittableRandom(4), 10 * 6, 3.0), new Shape(10, 6));
                assertTrue(maxAbsDiff(sae.encode(x), back.encode(x)) < 1e-5, "latents of raw activations agree");
                assertTrue(maxAbsDiff(sae.reconstruct(x), back.reconstruct(x)) < 1e-5, "raw reconstructions agree");
            }
        }
    }

    /** Writes {@code cfg} and the tensors as SAELens would lay them out. */
    static void writeDir(Path dir, String cfgJson, Map<String, float[]> tensors, Map<String, long[]> shapes, DType dtype)
            throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("cfg.json"), cfgJson);
        Safetensors.writeFloats(dir.resolve("sae_weights.safetensors"), tensors, shapes, Map.of(), dtype);
    }

    /** Weights on the 1/64 grid for a dIn x dSae SAE. */
    static Map<String, float[]> gridWeights(int dIn, int dSae, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, float[]> t = new LinkedHashMap<>();
        t.put("W_enc", grid(r, dIn * dSae));
        t.put("b_enc", grid(r, dSae));
        t.put("W_dec", grid(r, dSae * dIn));
        t.put("b_dec", grid(r, dIn));
        return t;
    }

    static Map<String, long[]> shapes(int dIn, int dSae) {
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("W_enc", new long[] {dIn, dSae});
        s.put("b_enc", new long[] {dSae});
        s.put("W_dec", new long[] {dSae, dIn});
        s.put("b_dec", new long[] {dIn});
        return s;
    }

    /** SAELens's encode, written out: TopK of (x - b_dec * apply) W_enc + b_enc, ReLU'd, per row. */
    static double[][] manualTopK(float[][] x, Map<String, float[]> t, int dIn, int dSae, int k, boolean applyBDec,
                                 double[] scaleLatents) {
        double[][] out = new double[x.length][dSae];
        for (int n = 0; n < x.length; n++) {
            double[] pre = new double[dSae];
            for (int j = 0; j < dSae; j++) {
                double acc = t.get("b_enc")[j];
                for (int i = 0; i < dIn; i++) {
                    acc += (x[n][i] - (applyBDec ? t.get("b_dec")[i] : 0)) * t.get("W_enc")[i * dSae + j];
                }
                pre[j] = acc * (scaleLatents == null ? 1 : scaleLatents[j]);
            }
            double[] sorted = pre.clone();
            Arrays.sort(sorted);
            double kth = sorted[dSae - k];
            for (int j = 0; j < dSae; j++) out[n][j] = pre[j] >= kth ? Math.max(0, pre[j]) : 0;
        }
        return out;
    }

    static float[][] rows(long seed, int n, int d) {
        SplittableRandom r = new SplittableRandom(seed);
        float[][] x = new float[n][];
        for (int i = 0; i < n; i++) x[i] = gauss(r, d, 1.0);
        return x;
    }

    NDArray toArray(float[][] x) {
        float[] flat = new float[x.length * x[0].length];
        for (int i = 0; i < x.length; i++) System.arraycopy(x[i], 0, flat, i * x[0].length, x[0].length);
        return nd.create(flat, new Shape(x.length, x[0].length));
    }

    static void assertClose(double[][] want, NDArray got, double tol) {
        float[] g = got.toFloatArray();
        int d = want[0].length;
        for (int n = 0; n < want.length; n++) {
            for (int j = 0; j < d; j++) {
                assertEquals(want[n][j], g[n * d + j], tol, "row " + n + ", latent " + j);
            }
        }
    }

    @Test
    void currentLayoutWrittenBySaelensLoadsAndEncodesLikeSaelens(@TempDir Path tmp) throws Exception {
        int dIn = 6, dSae = 10, k = 4;
        // SAELens 6.x SAEConfig.to_dict() of a TopKSAEConfig, as json.dump writes it
        String cfg = """
                {"d_in": 6, "d_sae": 10, "dtype": "float16", "device": "cuda", "apply_b_dec_to_input": true,
                 "normalize_activations": "none", "reshape_activations": "none",
                 "metadata": {"sae_lens_version": "6.49.2", "sae_lens_training_version": "6.49.2",
                              "model_name": "gpt2", "hook_name": "blocks.3.hook_resid_post", "hook_head_index": null,
                              "prepend_bos": true, "context_size": 128, "dataset_path": "monology/pile-uncopyrighted",
                              "model_class_name": "HookedTransformer", "model_from_pretrained_kwargs": {},
                              "exclude_special_tokens": false, "neuronpedia_id": null, "seqpos_slice": [null]},
                 "k": 4, "rescale_acts_by_decoder_norm": false, "architecture": "topk"}
                """;
        Map<String, float[]> t = gridWeights(dIn, dSae, 5);
        writeDir(tmp, cfg, t, shapes(dIn, dSae), DType.F16);
        try (SparseCoder sae = SaeLens.load(tmp)) {
            assertEquals("blocks.3.hook_resid_post", sae.cfg().hookName());
            assertEquals("gpt2", sae.cfg().modelName().orElseThrow());
            assertEquals(k, ((SaeConfig.TopK) sae.cfg().kind()).k());
            float[][] x = rows(6, 9, dIn);
            assertClose(manualTopK(x, t, dIn, dSae, k, true, null), sae.encode(toArray(x)), 1e-5);
        }
    }

    @Test
    void olderFlatLayoutLoads(@TempDir Path tmp) throws Exception {
        int dIn = 5, dSae = 8, k = 3;
        // pre-6.0: hook_point/model_name at the top level, TopK through activation_fn_str + activation_fn_kwargs
        String cfg = """
                {"model_name": "pythia-70m-deduped", "hook_point": "blocks.2.hook_resid_post", "hook_point_layer": 2,
                 "hook_point_head_index": null, "d_in": 5, "d_sae": 8, "dtype": "torch.float32", "device": "cpu",
                 "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 3}, "apply_b_dec_to_input": false,
                 "normalize_activations": false, "finetuning_scaling_factor": false, "context_size": 128,
                 "dataset_path": "NeelNanda/pile-small-tokenized-2b", "prepend_bos": true,
                 "sae_lens_training_version": "3.5.0"}
                """;
        Map<String, float[]> t = gridWeights(dIn, dSae, 7);
        writeDir(tmp, cfg, t, shapes(dIn, dSae), DType.BF16);
        try (SparseCoder sae = SaeLens.load(tmp)) {
            assertInstanceOf(TopKSae.class, sae);
            assertEquals("blocks.2.hook_resid_post", sae.cfg().hookName());
            assertEquals("pythia-70m-deduped", sae.cfg().modelName().orElseThrow());
            assertFalse(sae.cfg().applyBDecToInput());
            float[][] x = rows(8, 6, dIn);
            assertClose(manualTopK(x, t, dIn, dSae, k, false, null), sae.encode(toArray(x)), 1e-5);
        }
        // SAELens 4-5.x: flat layout with hook_name/hook_layer and an explicit architecture
        Path std = tmp.resolve("standard");
        String cfg5 = """
                {"architecture": "standard", "d_in": 5, "d_sae": 8, "dtype": "float32", "device": "cpu",
                 "model_name": "gpt2-small", "hook_name": "blocks.0.hook_mlp_out", "hook_layer": 0, "hook_head_index": null,
                 "activation_fn_str": "relu", "activation_fn_kwargs": {}, "apply_b_dec_to_input": true,
                 "finetuning_scaling_factor": false, "sae_lens_training_version": "5.1.0", "prepend_bos": true,
                 "dataset_path": "Skylion007/openwebtext", "context_size": 128, "normalize_activations": "none",
                 "neuronpedia_id": "gpt2-small/0-res-jb"}
                """;
        writeDir(std, cfg5, gridWeights(dIn, dSae, 8), shapes(dIn, dSae), DType.F32);
        try (SparseCoder sae = SaeLens.load(std)) {
            assertInstanceOf(SaeConfig.Relu.class, sae.cfg().kind());
            assertEquals("blocks.0.hook_mlp_out", sae.cfg().hookName());
            assertEquals("gpt2-small", sae.cfg().modelName().orElseThrow());
            assertArrayEquals(gridWeights(dIn, dSae, 8).get("W_dec"), sae.weights().get("W_dec").toFloatArray());
        }
    }

    @Test
    void topkWithDecoderNormRescalingIsFoldedToTheSameLatentsAndReconstruction(@TempDir Path tmp) throws Exception {
        int dIn = 6, dSae = 12, k = 5;
        String cfg = """
                {"d_in": 6, "d_sae": 12, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": true,
                 "normalize_activations": "none", "reshape_activations": "none",
                 "metadata": {"sae_lens_version": "6.20.0", "hook_name": "blocks.0.hook_resid_pre"},
                 "k": 5, "rescale_acts_by_decoder_norm": true, "architecture": "topk"}
                """;
        Map<String, float[]> t = gridWeights(dIn, dSae, 11);
        writeDir(tmp, cfg, t, shapes(dIn, dSae), DType.F32);
        double[] norms = new double[dSae];
        for (int j = 0; j < dSae; j++) {
            double ss = 0;
            for (int i = 0; i < dIn; i++) ss += t.get("W_dec")[j * dIn + i] * t.get("W_dec")[j * dIn + i];
            norms[j] = Math.max(Math.sqrt(ss), 1e-8);
        }
        float[][] x = rows(12, 7, dIn);
        // SAELens: hidden_pre * |W_dec_j| -> TopK -> (f / |W_dec_j|) @ W_dec + b_dec
        double[][] f = manualTopK(x, t, dIn, dSae, k, true, norms);
        double[][] recon = new double[x.length][dIn];
        for (int n = 0; n < x.length; n++) {
            for (int i = 0; i < dIn; i++) {
                double acc = t.get("b_dec")[i];
                for (int j = 0; j < dSae; j++) acc += f[n][j] / norms[j] * t.get("W_dec")[j * dIn + i];
                recon[n][i] = acc;
            }
        }
        try (SparseCoder sae = SaeLens.load(tmp)) {
            NDArray xa = toArray(x);
            assertClose(f, sae.encode(xa), 1e-5);
            assertClose(recon, sae.reconstruct(xa), 1e-5);
        }
    }

    @Test
    void jumpReluLoadsItsThresholdAndOldLogThreshold(@TempDir Path tmp) throws Exception {
        int dIn = 4, dSae = 6;
        String cfg = """
                {"d_in": 4, "d_sae": 6, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": false,
                 "normalize_activations": "none", "reshape_activations": "none",
                 "metadata": {"sae_lens_version": "6.5.0", "model_name": "gemma-2-2b", "hook_name": "blocks.12.hook_resid_post"},
                 "architecture": "jumprelu"}
                """;
        Map<String, float[]> t = gridWeights(dIn, dSae, 13);
        float[] th = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
        t.put("threshold", th);
        Map<String, long[]> s = shapes(dIn, dSae);
        s.put("threshold", new long[] {dSae});
        writeDir(tmp.resolve("a"), cfg, t, s, DType.F32);
        try (SparseCoder sae = SaeLens.load(tmp.resolve("a"))) {
            assertInstanceOf(JumpReluSae.class, sae);
            assertInstanceOf(SaeConfig.JumpRelu.class, sae.cfg().kind());
            assertFalse(sae.cfg().applyBDecToInput());
            assertArrayEquals(th, sae.weights().get("threshold").toFloatArray());
        }
        t.remove("threshold");
        s.remove("threshold");
        float[] logTh = new float[dSae];
        for (int i = 0; i < dSae; i++) logTh[i] = (float) Math.log(th[i]);
        t.put("log_threshold", logTh);
        s.put("log_threshold", new long[] {dSae});
        writeDir(tmp.resolve("b"), cfg, t, s, DType.F32);
        try (SparseCoder sae = SaeLens.load(tmp.resolve("b"))) {
            assertArrayEquals(th, sae.weights().get("threshold").toFloatArray(), 1e-6f);
        }
        t.remove("log_threshold");
        s.remove("log_threshold");
        writeDir(tmp.resolve("c"), cfg, t, s, DType.F32);
        CheckpointException e = assertThrows(CheckpointException.class, () -> SaeLens.load(tmp.resolve("c")));
        assertTrue(e.getMessage().contains("threshold"), e.getMessage());
    }

    @Test
    void batchTopKIsSavedAsJumpReluWithItsThreshold(@TempDir Path tmp) throws Exception {
        SaeConfig cfg = SaeConfig.of(4, 8, new SaeConfig.BatchTopK(2)).withHook("blocks.0.hook_resid_pre");
        try (SparseCoder sae = randomSae(cfg, 21)) {
            SaeLens.save(sae, tmp);
            assertEquals("jumprelu", readCfg(tmp).get("architecture").asText());
            try (SparseCoder back = SaeLens.load(tmp)) {
                assertInstanceOf(SaeConfig.JumpRelu.class, back.cfg().kind());
                assertArrayEquals(sae.weights().get("threshold").toFloatArray(), back.weights().get("threshold").toFloatArray());
                assertArrayEquals(sae.weights().get("W_enc").toFloatArray(), back.weights().get("W_enc").toFloatArray());
            }
        }
    }

    @Test
    void batchTopKTrainingCheckpointBecomesJumpRelu(@TempDir Path tmp) throws Exception {
        int dIn = 4, dSae = 6;
        // TrainingSAE.save_model of a BatchTopK SAE: its scalar topk_threshold, decoder-norm rescaling on by default
        String cfg = """
                {"d_in": 4, "d_sae": 6, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": true,
                 "normalize_activations": "none", "reshape_activations": "none",
                 "metadata": {"sae_lens_version": "6.49.2", "hook_name": "blocks.0.hook_resid_pre"},
                 "k": 2.5, "topk_threshold_lr": 0.01, "aux_loss_coefficient": 1.0, "architecture": "batchtopk"}
                """;
        Map<String, float[]> t = gridWeights(dIn, dSae, 17);
        t.put("topk_threshold", new float[] {0.375f});
        Map<String, long[]> s = shapes(dIn, dSae);
        s.put("topk_threshold", new long[0]);
        writeDir(tmp, cfg, t, s, DType.F32);
        try (SparseCoder sae = SaeLens.load(tmp)) {
            assertInstanceOf(SaeConfig.JumpRelu.class, sae.cfg().kind());
            float[] th = sae.weights().get("threshold").toFloatArray();
            float[] want = new float[dSae];
            Arrays.fill(want, 0.375f);
            assertArrayEquals(want, th);
            float[] wDec = sae.weights().get("W_dec").toFloatArray();
            for (int j = 0; j < dSae; j++) {
                double ss = 0;
                for (int i = 0; i < dIn; i++) ss += wDec[j * dIn + i] * wDec[j * dIn + i];
                assertEquals(1.0, Math.sqrt(ss), 1e-5, "decoder norms are folded into the encoder");
            }
        }
    }

    @Test
    void brokenDirectoriesSayWhatIsWrong(@TempDir Path tmp) throws Exception {
        CheckpointException e = assertThrows(CheckpointException.class, () -> SaeLens.load(tmp.resolve("nope")));
        assertTrue(e.getMessage().contains("nope") && e.getMessage().contains("cfg.json"), e.getMessage());

        Path noCfg = Files.createDirectories(tmp.resolve("no-cfg"));
        Files.writeString(noCfg.resolve("readme.txt"), "x");
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(noCfg));
        assertTrue(e.getMessage().contains(noCfg.resolve("cfg.json").toString()), e.getMessage());
        assertTrue(e.getMessage().contains("sae_weights.safetensors") && e.getMessage().contains("readme.txt"), e.getMessage());

        String topk = """
                {"d_in": 4, "d_sae": 6, "architecture": "topk", "k": 2,
                 "metadata": {"sae_lens_version": "6.0.0", "hook_name": "blocks.0.hook_resid_pre"}}
                """;
        Path noWeights = Files.createDirectories(tmp.resolve("no-weights"));
        Files.writeString(noWeights.resolve("cfg.json"), topk);
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(noWeights));
        assertTrue(e.getMessage().contains(noWeights.resolve("sae_weights.safetensors").toString()), e.getMessage());

        Path gated = tmp.resolve("gated");
        writeDir(gated, topk.replace("\"topk\"", "\"gated\""), gridWeights(4, 6, 1), shapes(4, 6), DType.F32);
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(gated));
        assertTrue(e.getMessage().contains("'gated'") && e.getMessage().contains("[standard, topk, jumprelu, batchtopk]"),
                e.getMessage());

        Path badShape = tmp.resolve("bad-shape");
        Map<String, long[]> s = shapes(4, 6);
        s.put("W_enc", new long[] {6, 4});
        writeDir(badShape, topk, gridWeights(4, 6, 1), s, DType.F32);
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(badShape));
        assertTrue(e.getMessage().contains("'W_enc'") && e.getMessage().contains("[6, 4]") && e.getMessage().contains("[4, 6]"),
                e.getMessage());

        Path truncated = tmp.resolve("truncated");
        writeDir(truncated, topk, gridWeights(4, 6, 1), shapes(4, 6), DType.F32);
        Path w = truncated.resolve("sae_weights.safetensors");
        byte[] bytes = Files.readAllBytes(w);
        Files.write(w, Arrays.copyOf(bytes, bytes.length - 10));
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(truncated));
        assertTrue(e.getMessage().contains(w.toString()), e.getMessage());

        Path badJson = Files.createDirectories(tmp.resolve("bad-json"));
        Files.writeString(badJson.resolve("cfg.json"), "{\"d_in\": 4,");
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(badJson));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());

        Path head = tmp.resolve("head");
        writeDir(head, topk.replace("\"hook_name\"", "\"hook_head_index\": 3, \"hook_name\""), gridWeights(4, 6, 1), shapes(4, 6),
                DType.F32);
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(head));
        assertTrue(e.getMessage().contains("hook_head_index 3"), e.getMessage());

        Path extra = tmp.resolve("extra");
        Map<String, float[]> t = gridWeights(4, 6, 1);
        t.put("W_gate", new float[6]);
        Map<String, long[]> s2 = shapes(4, 6);
        s2.put("W_gate", new long[] {6});
        writeDir(extra, topk, t, s2, DType.F32);
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(extra));
        assertTrue(e.getMessage().contains("W_gate"), e.getMessage());
    }

    @Test
    void crosscodersAndWrongSparsityAreRefusedOnSave(@TempDir Path tmp) {
        SaeConfig cc = SaeConfig.of(8, 16, new SaeConfig.TopK(4)).withSources(2);
        try (SparseCoder sae = randomSae(cc, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SaeLens.save(sae, tmp));
            assertTrue(e.getMessage().contains("crosscoder"), e.getMessage());
        }
        try (SparseCoder sae = randomSae(SaeConfig.of(8, 16, new SaeConfig.TopK(4)), 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SaeLens.save(sae, tmp, new float[3]));
            assertTrue(e.getMessage().contains("16"), e.getMessage());
        }
    }
}
