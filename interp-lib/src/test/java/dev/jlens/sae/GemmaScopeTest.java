package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.io.CheckpointException;
import dev.jlens.io.Npz;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Gemma Scope's params.npz, written here as NumPy writes it, loads as a JumpReLU SAE and encodes by its formula. */
class GemmaScopeTest {
    static final int D_IN = 6, D_SAE = 10;

    static Map<String, Npz.Array> params(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, Npz.Array> a = new LinkedHashMap<>();
        a.put("W_dec", random(r, 0.5, D_SAE, D_IN));
        a.put("W_enc", random(r, 0.5, D_IN, D_SAE));
        a.put("b_dec", random(r, 0.3, D_IN));
        a.put("b_enc", random(r, 0.3, D_SAE));
        float[] th = new float[D_SAE];
        for (int i = 0; i < D_SAE; i++) th[i] = (float) (0.05 + 0.3 * r.nextDouble());
        a.put("threshold", new Npz.Array(new long[] {D_SAE}, th));
        return a;
    }

    static Npz.Array random(SplittableRandom r, double std, long... shape) {
        long n = 1;
        for (long d : shape) n *= d;
        float[] x = new float[(int) n];
        for (int i = 0; i < x.length; i++) x[i] = (float) ((r.nextDouble() * 2 - 1) * std * 1.7);
        return new Npz.Array(shape, x);
    }

    /** The formula, in plain loops: pre = x W_enc + b_enc (no b_dec shift); f = pre * (pre > threshold). */
    static double[][] encode(Map<String, Npz.Array> p, float[][] x) {
        float[] wEnc = p.get("W_enc").data(), bEnc = p.get("b_enc").data(), th = p.get("threshold").data();
        double[][] f = new double[x.length][D_SAE];
        for (int b = 0; b < x.length; b++) {
            for (int j = 0; j < D_SAE; j++) {
                double pre = bEnc[j];
                for (int i = 0; i < D_IN; i++) pre += x[b][i] * wEnc[i * D_SAE + j];
                f[b][j] = pre > th[j] ? pre : 0;
            }
        }
        return f;
    }

    @Test
    void paramsNpzLoadsAsJumpReluWithoutTheBDecShiftAndEncodesByTheFormula(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("gemma-scope-2b-pt-res").resolve("layer_12").resolve("width_16k")
                .resolve("average_l0_82");
        Files.createDirectories(dir);
        Map<String, Npz.Array> p = params(3);
        Npz.write(dir.resolve("params.npz"), p);
        SparseCoder sae = SaeLens.load(dir);
        try (NDManager m = NDManager.newBaseManager()) {
            assertInstanceOf(JumpReluSae.class, sae);
            assertFalse(sae.cfg().applyBDecToInput());
            assertEquals("blocks.12.hook_resid_post", sae.cfg().hookName());
            assertEquals(Optional.of("gemma-2-2b"), sae.cfg().modelName());
            assertEquals(D_IN, sae.cfg().dIn());
            assertEquals(D_SAE, sae.cfg().dSae());
            SplittableRandom r = new SplittableRandom(9);
            float[][] x = new float[5][D_IN];
            float[] flat = new float[5 * D_IN];
            for (int b = 0; b < 5; b++) for (int i = 0; i < D_IN; i++) flat[b * D_IN + i] = x[b][i] = (float) (r.nextDouble() * 4 - 2);
            double[][] want = encode(p, x);
            NDArray f = sae.encode(m.create(flat, new Shape(5, D_IN)));
            float[] got = f.toFloatArray();
            int active = 0;
            for (int b = 0; b < 5; b++) {
                for (int j = 0; j < D_SAE; j++) {
                    assertEquals(want[b][j], got[b * D_SAE + j], 1e-5, "latent " + b + "," + j);
                    if (want[b][j] != 0) active++;
                }
            }
            assertTrue(active > 3 && active < 5 * D_SAE, "some latents fire and some do not: " + active);
            // the decoder: f W_dec + b_dec
            float[] recon = sae.decode(f).toFloatArray();
            float[] wDec = p.get("W_dec").data(), bDec = p.get("b_dec").data();
            for (int b = 0; b < 5; b++) {
                for (int i = 0; i < D_IN; i++) {
                    double v = bDec[i];
                    for (int j = 0; j < D_SAE; j++) v += want[b][j] * wDec[j * D_IN + i];
                    assertEquals(v, recon[b * D_IN + i], 1e-4);
                }
            }
        }
    }

    @Test
    void theSiteComesFromTheFoldersOrTheCaller(@TempDir Path tmp) throws Exception {
        SaeLens.GemmaScopeSite mlp = SaeLens.gemmaScopeSite(
                Path.of("models--google--gemma-scope-9b-it-mlp", "snapshots", "abc", "layer_3", "width_131k", "x"));
        assertEquals(Optional.of("blocks.3.hook_mlp_out"), mlp.hookName());
        assertEquals(Optional.of("gemma-2-9b-it"), mlp.modelName());
        assertEquals(Optional.of("blocks.20.attn.hook_z"), SaeLens.gemmaScopeSite(
                Path.of("gemma-scope-2b-pt-att-canonical", "layer_20", "width_16k", "canonical")).hookName());
        SaeLens.GemmaScopeSite bare = SaeLens.gemmaScopeSite(Path.of("somewhere", "layer_7", "w"));
        assertEquals(7, bare.layer().getAsInt());
        assertTrue(bare.hookName().isEmpty() && bare.modelName().isEmpty());

        Path dir = tmp.resolve("sae");
        Files.createDirectories(dir);
        Npz.write(dir.resolve("params.npz"), params(4));
        SparseCoder plain = SaeLens.load(dir);
        assertTrue(plain.cfg().hookPoint().isEmpty());
        SparseCoder named = SaeLens.loadGemmaScope(dir.resolve("params.npz"), Optional.of("blocks.5.hook_resid_post"),
                Optional.of("gemma-2-2b"));
        assertEquals("blocks.5.hook_resid_post", named.cfg().hookName());
    }

    @Test
    void brokenFilesSayWhatIsWrong(@TempDir Path tmp) throws Exception {
        Map<String, Npz.Array> p = params(5);
        p.remove("threshold");
        Npz.write(tmp.resolve("params.npz"), p);
        CheckpointException e = assertThrows(CheckpointException.class, () -> SaeLens.load(tmp));
        assertTrue(e.getMessage().contains("threshold"), e.getMessage());
        p = params(5);
        p.put("b_enc", new Npz.Array(new long[] {3}, new float[3]));
        Npz.write(tmp.resolve("params.npz"), p);
        e = assertThrows(CheckpointException.class, () -> SaeLens.load(tmp));
        assertTrue(e.getMessage().contains("b_enc") && e.getMessage().contains("[10]"), e.getMessage());
        Files.writeString(tmp.resolve("params.npz"), "not a zip");
        assertThrows(CheckpointException.class, () -> SaeLens.load(tmp));
    }

    @Test
    void npyHeadersInFortranOrderAndFloat64AreRead(@TempDir Path tmp) throws Exception {
        // a hand-made .npy: float64, Fortran order, shape (2, 3) holding [[0, 1, 2], [3, 4, 5]]
        String dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
        String header = dict + " ".repeat(64 - (10 + dict.length() + 1) % 64) + "\n";
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(10 + header.length() + 48)
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bb.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
        bb.put(header.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        for (double v : new double[] {0, 3, 1, 4, 2, 5}) bb.putDouble(v);   // column by column
        Files.write(tmp.resolve("a.npy"), bb.array());
        Npz.Array a = Npz.readNpy(tmp.resolve("a.npy"));
        assertEquals("[2, 3]", java.util.Arrays.toString(a.shape()));
        assertEquals("[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]", java.util.Arrays.toString(a.data()));
    }
}
