package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.util.SplitMix;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Cross-dictionary matching on planted answers: a permutation of decoder rows, brute-forced optima, folding. */
class DictionaryMatchTest {

    static float[][] gaussianRows(int n, int d, SplittableRandom rng) {
        float[][] r = new float[n][d];
        for (float[] row : r) for (int j = 0; j < d; j++) row[j] = (float) SplitMix.gaussian(rng);
        return r;
    }

    static int[] permutation(int n, SplittableRandom rng) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1), t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    @Test
    void recoversAPlantedPermutationOfDecoderRows() {
        SplittableRandom rng = new SplittableRandom(7);
        int n = 96, d = 32;   // overcomplete: 96 directions in 32 dimensions, so near neighbours are common
        float[][] a = gaussianRows(n, d, rng);
        int[] perm = permutation(n, rng);
        float[][] b = new float[n][d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) b[perm[i]][j] = a[i][j] * 1.7f + 0.15f * (float) SplitMix.gaussian(rng);
        }
        for (DictionaryMatch.Method method : DictionaryMatch.Method.values()) {
            DictionaryMatch m = DictionaryMatch.ofRows(a, b, DictionaryMatch.Options.defaults().method(method));
            assertArrayEquals(perm, m.mapping().orElseThrow(), method + " recovers the permutation");
            assertEquals(1.0, m.matchedFraction(), 0.0);
            assertTrue(m.medianCosine() > 0.95, method + ": " + m);
            assertEquals(n, m.toTable().rowCount());
        }
        // Latents with no counterpart: replace 16 rows of b by fresh random ones; the threshold drops their pairs.
        for (int i = 0; i < 16; i++) b[perm[i]] = gaussianRows(1, d, rng)[0];
        DictionaryMatch m = DictionaryMatch.ofRows(a, b, DictionaryMatch.Options.defaults());
        assertTrue(m.mapping().isEmpty(), "not every latent has a partner");
        for (int i = 0; i < n; i++) {
            if (i < 16) assertTrue(m.partner(i).isEmpty(), "latent " + i + " lost its counterpart and must stay unmatched");
            else assertEquals(perm[i], m.partner(i).getAsInt(), "latent " + i);
        }
        assertEquals(80.0 / 96, m.matchedFraction(), 1e-12);
        System.out.println("DictionaryMatchTest: " + m);
    }

    @Test
    void hungarianIsOptimalAgainstBruteForce() {
        SplittableRandom rng = new SplittableRandom(3);
        for (int trial = 0; trial < 30; trial++) {
            int n = 1 + rng.nextInt(6), m = 1 + rng.nextInt(6);
            double[][] c = new double[n][m];
            for (double[] row : c) for (int j = 0; j < m; j++) row[j] = rng.nextDouble();
            int[] got = DictionaryMatch.hungarian(c);
            double cost = 0;
            boolean[] used = new boolean[m];
            int assigned = 0;
            for (int i = 0; i < n; i++) {
                if (got[i] < 0) continue;
                assertTrue(!used[got[i]], "column used twice");
                used[got[i]] = true;
                cost += c[i][got[i]];
                assigned++;
            }
            assertEquals(Math.min(n, m), assigned);
            assertEquals(best(c, 0, new boolean[m], Math.min(n, m)), cost, 1e-9, "trial " + trial + " " + n + "x" + m);
        }
    }

    /** Least cost of assigning min(n, m) rows to distinct columns (rows from {@code i} on; rows may be skipped when n > m). */
    private static double best(double[][] c, int i, boolean[] used, int need) {
        if (need == 0) return 0;
        if (c.length - i < need) return Double.POSITIVE_INFINITY;
        double b = best(c, i + 1, used, need);   // skip row i
        for (int j = 0; j < used.length; j++) {
            if (used[j]) continue;
            used[j] = true;
            b = Math.min(b, c[i][j] + best(c, i + 1, used, need - 1));
            used[j] = false;
        }
        return b;
    }

    @Test
    void foldingMovesTheThresholdToOneAndKeepsTheReconstruction() {
        int d = 16, k = 24, rows = 64;
        double scale = 2.5;
        SplittableRandom rng = new SplittableRandom(11);
        SaeConfig cfg = SaeConfig.of(d, k, new SaeConfig.JumpRelu(1e-3)).withInputScale(scale).withApplyBDecToInput(true);
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put(SaeWeights.W_ENC, m.create(flat(gaussianRows(d, k, rng)), new Shape(d, k)));
            t.put(SaeWeights.B_ENC, m.create(flat(gaussianRows(1, k, rng)), new Shape(k)).mul(0.1f));
            t.put(SaeWeights.W_DEC, m.create(flat(gaussianRows(k, d, rng)), new Shape(k, d)));
            t.put(SaeWeights.B_DEC, m.create(flat(gaussianRows(1, d, rng)), new Shape(d)).mul(0.3f));
            float[] theta = new float[k];
            for (int i = 0; i < k; i++) theta[i] = (float) (0.2 + 2 * rng.nextDouble());
            t.put(SaeWeights.THRESHOLD, m.create(theta));
            try (SparseCoder sae = SparseCoder.wrap(cfg, new SaeWeights(cfg, t))) {
                float[][] x = gaussianRows(rows, d, rng);
                NDArray xs = m.create(flat(x), new Shape(rows, d));
                float[] f = sae.encode(xs).toFloatArray();
                float[] recon = sae.reconstruct(xs).toFloatArray();
                float[] bDec = sae.weights().get(SaeWeights.B_DEC).toFloatArray();
                DictionaryMatch.Folded folded = DictionaryMatch.fold(sae);
                assertArrayEquals(theta, folded.thresholds(), 0f);
                int fired = 0;
                for (int r = 0; r < rows; r++) {
                    float[] mine = new float[d];
                    for (int j = 0; j < d; j++) mine[j] = (float) (bDec[j] / scale);
                    for (int i = 0; i < k; i++) {
                        double pre = folded.encoderBias()[i];
                        for (int j = 0; j < d; j++) pre += x[r][j] * folded.encoder()[i][j];
                        double fi = f[r * k + i];
                        assertEquals(fi > 0, pre > 1, "row " + r + " latent " + i + ": folded threshold is 1");
                        if (fi > 0) {
                            fired++;
                            assertEquals(fi / theta[i], pre, 1e-4 * Math.max(1, Math.abs(pre)));
                            for (int j = 0; j < d; j++) mine[j] += (float) (pre * folded.decoder()[i][j]);
                        }
                    }
                    for (int j = 0; j < d; j++) assertEquals(recon[r * d + j], mine[j], 1e-3, "reconstruction " + r);
                }
                assertTrue(fired > rows, "the check needs firing latents, got " + fired);
            }
        }
    }

    /** A JumpReLU dictionary with these decoder rows (encoder their transpose) and thresholds. */
    static SparseCoder jumpRelu(float[][] dec, float[] theta, NDManager m) {
        int k = dec.length, d = dec[0].length;
        SaeConfig cfg = SaeConfig.of(d, k, new SaeConfig.JumpRelu(1e-3));
        float[] enc = new float[d * k];
        for (int i = 0; i < k; i++) for (int j = 0; j < d; j++) enc[j * k + i] = dec[i][j];
        Map<String, NDArray> t = new LinkedHashMap<>();
        t.put(SaeWeights.W_ENC, m.create(enc, new Shape(d, k)));
        t.put(SaeWeights.B_ENC, m.zeros(new Shape(k)));
        t.put(SaeWeights.W_DEC, m.create(flat(dec), new Shape(k, d)));
        t.put(SaeWeights.B_DEC, m.zeros(new Shape(d)));
        t.put(SaeWeights.THRESHOLD, m.create(theta));
        return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
    }

    @Test
    void foldedDistanceMatchesByScaleWhereCosineMatchesByDirection() {
        // Two latents a0, a1 along nearly one direction, thresholds 1 and 3; in b the nearer direction to a0 has
        // threshold 3. Cosine pairs a0 with that direction; the folded decoders (threshold times row) pair a0 with the
        // latent of its own scale.
        SplittableRandom rng = new SplittableRandom(5);
        int d = 8;
        float[] u = gaussianRows(1, d, rng)[0], e = gaussianRows(1, d, rng)[0];
        float[][] a = new float[2][d], b = new float[2][d];
        for (int j = 0; j < d; j++) {
            a[0][j] = u[j];
            a[1][j] = u[j] + 0.2f * e[j];
            b[0][j] = u[j] + 0.02f * e[j];   // nearest a0 by direction
            b[1][j] = u[j] + 0.18f * e[j];   // nearest a1 by direction
        }
        try (NDManager m = NDManager.newBaseManager();
             SparseCoder sa = jumpRelu(a, new float[]{1f, 3f}, m);
             SparseCoder sb = jumpRelu(b, new float[]{3f, 1f}, m)) {
            DictionaryMatch.Options o = DictionaryMatch.Options.defaults();
            assertArrayEquals(new int[]{0, 1}, DictionaryMatch.of(sa, sb, o).mapping().orElseThrow(), "by cosine");
            DictionaryMatch folded = DictionaryMatch.of(sa, sb, o.criterion(DictionaryMatch.Criterion.FOLDED_MSE));
            assertArrayEquals(new int[]{1, 0}, folded.mapping().orElseThrow(), "by folded distance: " + folded);
            assertTrue(folded.pairs().get(0).cosine() > 0.9, "the reported cosine is the decoders': " + folded);
        }
    }

    static float[] flat(float[][] rows) {
        int w = rows[0].length;
        float[] o = new float[rows.length * w];
        for (int i = 0; i < rows.length; i++) System.arraycopy(rows[i], 0, o, i * w, w);
        return o;
    }
}
