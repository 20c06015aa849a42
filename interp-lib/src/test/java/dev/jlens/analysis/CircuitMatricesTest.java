package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.analysis.CircuitMatrices.Circuit;
import dev.jlens.analysis.CircuitMatrices.Eigenvalues;
import dev.jlens.analysis.CircuitMatrices.Entry;
import dev.jlens.analysis.CircuitMatrices.Processing;
import dev.jlens.analysis.CircuitMatrices.Source;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CircuitMatricesTest {
    private static HookedTransformer tiny;      // random GPT-2: d_model 16, 4 heads of 4, 24 tokens, 12 positions
    private static HookedTransformer attnOnly;  // the zoo's attn-only-2l

    @BeforeAll
    static void load() {
        tiny = HookedTransformer.random(ModelConfig.gpt2(16, 2, 4, 32, 24, 12), 7);
        attnOnly = Zoo.load("attn-only-2l");
    }

    @AfterAll
    static void close() {
        tiny.close();
        attnOnly.close();
    }

    @Test
    void eigenvaluesOfTheSmallMatrixAreThoseOfTheFullProduct() {
        int fallbacks = 0;
        for (Processing p : List.of(Processing.none(), Processing.transformerLens())) {
            try (NDScope scope = new NDScope(); CircuitMatrices circuits = CircuitMatrices.of(tiny, p)) {
                for (Circuit c : List.of(circuits.ov(0, 1), circuits.ov(1, 3), circuits.qk(1, 2),
                        circuits.qkPositions(0, 0))) {
                    Eigenvalues small = c.eigenvalues();                              // from [d_head, d_head]
                    double[][] product = mul(toDoubles(c.left()), toDoubles(c.right()));   // [n, n], in double
                    try {
                        new org.apache.commons.math3.linear.EigenDecomposition(
                                new org.apache.commons.math3.linear.Array2DRowRealMatrix(product));
                    } catch (org.apache.commons.math3.exception.MaxCountExceededException e) {
                        fallbacks++;   // the library's QR iteration stalls on the zero eigenvalues
                    }
                    Eigenvalues full = Eigenvalues.of(product);                       // the library on [n, n]
                    assertEquals(4, small.size());
                    double scale = full.modulus()[0];
                    for (int i = 0; i < 4; i++) {
                        assertEquals(full.real()[i], small.real()[i], 1e-6 * scale, c.name() + " re " + i);
                        assertEquals(full.imaginary()[i], small.imaginary()[i], 1e-6 * scale, c.name() + " im " + i);
                    }
                    for (int i = 4; i < full.size(); i++) {
                        assertTrue(full.modulus()[i] < 1e-6 * scale, c.name() + ": the rank is d_head, eigenvalue "
                                + i + " is " + full.modulus()[i]);
                    }
                    assertEquals(full.copyingScore(), small.copyingScore(), 1e-6, c.name());
                    // and without the library: sum(lambda^k) == trace(product^k) for k = 1..d_head, which fixes the
                    // d_head non-zero eigenvalues (Newton's identities)
                    double[][] power = product;
                    for (int k = 1; k <= 4; k++) {
                        double trace = 0;
                        for (int i = 0; i < power.length; i++) trace += power[i][i];
                        double sum = 0;
                        for (int i = 0; i < 4; i++) {
                            sum += Math.pow(Math.hypot(small.real()[i], small.imaginary()[i]), k)
                                    * Math.cos(k * Math.atan2(small.imaginary()[i], small.real()[i]));
                        }
                        assertEquals(trace, sum, 1e-6 * Math.pow(scale, k) * 4, c.name() + " power sum " + k);
                        power = mul(power, product);
                    }
                }
            }
        }
        System.out.println("EigenDecomposition did not converge on " + fallbacks + " of 8 full products");
    }

    @Test
    void eigenvaluesOfAZeroOrRankDeficientMatrix() {
        assertEquals(0, Eigenvalues.of(new double[3][3]).copyingScore());
        Eigenvalues rank1 = Eigenvalues.of(new double[][] {{1, 2, 3}, {2, 4, 6}, {3, 6, 9}});
        assertEquals(14, rank1.real()[0], 1e-9);
        assertEquals(1, rank1.copyingScore(), 1e-9);
        Eigenvalues rotation = Eigenvalues.of(new double[][] {{0, -1}, {1, 0}});
        assertEquals(1, rotation.imaginary()[0], 1e-12);
        assertEquals(0, rotation.copyingScore(), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> Eigenvalues.of(new double[][] {{1, 2}}));
    }

    @Test
    void rawCircuitsAreTheProductsOfTheWeights() {
        try (NDScope scope = new NDScope(); CircuitMatrices circuits = CircuitMatrices.of(tiny, Processing.none())) {
            double[][] wE = toDoubles(tiny.W_E()), wU = toDoubles(tiny.W_U());
            double[][] wV = toDoubles(tiny.W_V(1).get(3)), wO = toDoubles(tiny.W_O(1).get(3));
            double[][] wQ = toDoubles(tiny.W_Q(1).get(3)), wK = toDoubles(tiny.W_K(1).get(3));
            double[][] ov = mul(mul(mul(wE, wV), wO), wU);
            double[][] qk = mul(mul(wE, wQ), transpose(mul(wE, wK)));
            assertClose(ov, toDoubles(circuits.ov(1, 3).full()), 1e-5, "OV");
            assertClose(qk, toDoubles(circuits.qk(1, 3).full()), 1e-5, "QK");
            double[][] wPos = toDoubles(tiny.W_pos());
            double[][] posQk = mul(mul(wE, wQ), transpose(mul(wPos, wK)));
            Circuit tokPos = circuits.qk(1, 3, Source.TOKENS, Source.POSITIONS);
            assertEquals(new Shape(24, 12), tokPos.shape());
            assertClose(posQk, toDoubles(tokPos.full()), 1e-5, "tokens x positions QK");
        }
    }

    @Test
    void transformerLensProcessingCentresAndFoldsTheNorms() {
        // by hand on trained weights (LayerNorm weights far from 1): W_E and W_O centred over d_model, ln1.w folded
        // into W_V, ln_final.w into W_U, W_U centred over the vocabulary
        try (NDScope scope = new NDScope(); CircuitMatrices circuits = CircuitMatrices.of(attnOnly)) {
            double[][] wE = centreRows(toDoubles(attnOnly.W_E()));
            double[] ln1 = toDoubles(attnOnly.tlWeights().get("blocks.1.ln1.w").expandDims(0))[0];
            double[] lnF = toDoubles(attnOnly.tlWeights().get("ln_final.w").expandDims(0))[0];
            double[][] wV = toDoubles(attnOnly.W_V(1).get(1));
            double[][] wO = centreRows(toDoubles(attnOnly.W_O(1).get(1)));
            double[][] wU = toDoubles(attnOnly.W_U());
            for (int i = 0; i < wE.length; i++) for (int j = 0; j < ln1.length; j++) wE[i][j] *= ln1[j];
            for (int i = 0; i < wU.length; i++) for (int j = 0; j < wU[i].length; j++) wU[i][j] *= lnF[i];
            wU = centreRows(wU);
            double[][] expected = mul(mul(mul(wE, wV), wO), wU);
            long[] ids = {3, 4, 10, 77, 130};
            double[][] got = toDoubles(circuits.ov(1, 1).submatrix(ids, ids));
            double max = 0;
            for (int i = 0; i < ids.length; i++) {
                for (int j = 0; j < ids.length; j++) {
                    max = Math.max(max, Math.abs(expected[(int) ids[i]][(int) ids[j]] - got[i][j]));
                }
            }
            assertTrue(max < 1e-3, "largest difference " + max);
            // the induction head copies: its own token is the top logit for most source tokens
            NDArray full = circuits.ov(1, 1).full();
            long[] argmax = full.argMax(1).toLongArray();
            int own = 0;
            for (int t = 3; t < 131; t++) if (argmax[t] == t) own++;
            assertTrue(own > 100, "tokens whose OV row peaks at themselves: " + own + " of 128");
        }
    }

    @Test
    void rowsColumnsEntriesAndTopEntriesComeFromTheFactors() {
        try (NDScope scope = new NDScope(); CircuitMatrices circuits = CircuitMatrices.of(tiny)) {
            Circuit c = circuits.ov(0, 2);
            double[][] full = toDoubles(c.full());
            assertEquals(new Shape(24, 24), c.shape());
            double[] row = toDoubles(c.row(5).expandDims(0))[0], col = toDoubles(c.column(7).expandDims(0))[0];
            for (int j = 0; j < 24; j++) assertEquals(full[5][j], row[j], 1e-5);
            for (int i = 0; i < 24; i++) assertEquals(full[i][7], col[i], 1e-5);
            assertEquals(full[3][9], c.get(3, 9), 1e-5);
            double[][] sub = toDoubles(c.submatrix(new long[] {2, 0}, new long[] {1, 1, 23}));
            assertEquals(full[2][23], sub[0][2], 1e-5);
            assertEquals(full[0][1], sub[1][1], 1e-5);
            List<Entry> top = c.topEntries(5), bottom = c.bottomEntries(3);
            List<Double> all = new java.util.ArrayList<>();
            for (double[] r : full) for (double v : r) all.add(v);
            all.sort(null);
            for (int i = 0; i < 5; i++) {
                assertEquals(all.get(all.size() - 1 - i), top.get(i).value(), 1e-5);
                assertEquals(full[(int) top.get(i).row()][(int) top.get(i).column()], top.get(i).value(), 1e-5);
            }
            for (int i = 0; i < 3; i++) assertEquals(all.get(i), bottom.get(i).value(), 1e-5);
            assertEquals(24 * 24, c.topEntries(10_000).size());
        }
    }

    @Test
    void thePreviousTokenHeadsPositionalCircuitPrefersThePreviousPosition() {
        // L0H7 of attn-only-2l on positional embeddings alone: among keys 0..q it scores q - 1 highest at 63 of the
        // 64 query positions 1..64 (measured)
        try (NDScope scope = new NDScope(); CircuitMatrices circuits = CircuitMatrices.of(attnOnly)) {
            double[][] pos = toDoubles(circuits.qkPositions(0, 7).full());
            assertEquals(65, pos.length);
            int hits = 0;
            for (int q = 1; q < 65; q++) {
                int best = 0;
                for (int k = 1; k <= q; k++) if (pos[q][k] > pos[q][best]) best = k;
                if (best == q - 1) hits++;
            }
            assertTrue(hits >= 60, hits + " of 64");
        }
    }

    @Test
    void closingFreesTheFactorsAndScopesFreeWhatWasHandedOut() {
        CircuitMatrices circuits = CircuitMatrices.of(tiny);
        Circuit kept = circuits.ov(0, 0);
        Circuit scoped;
        try (NDScope scope = new NDScope()) {
            scoped = circuits.ov(0, 1);
            scoped.full();
        }
        IllegalStateException freed = assertThrows(IllegalStateException.class, scoped::full);
        assertTrue(freed.getMessage().contains("L0H1 OV was closed"), freed.getMessage());
        assertEquals(new Shape(24, 24), kept.full().getShape());
        circuits.close();
        assertThrows(IllegalStateException.class, () -> circuits.ov(0, 0));
        assertThrows(IllegalStateException.class, kept::full);
    }

    @Test
    void heatmapsOverChosenTokensAndTables() {
        try (NDScope scope = new NDScope(); CircuitMatrices circuits = CircuitMatrices.of(attnOnly)) {
            Circuit ov = circuits.ov(1, 1);
            assertNotNull(ov.heatmap(List.of("t0", "t1", "t2", "t0")));
            assertNotNull(ov.heatmap(List.of("t5"), List.of("t5", "#130")));
            assertNotNull(circuits.qkPositions(0, 7).heatmap(new long[] {1, 2, 3}, new long[] {0, 1, 2}));
            assertTrue(ov.toHtml().contains("copying score"), ov.toHtml());
            assertEquals("L1H1 OV", ov.name());
            assertEquals(2, circuits.copyingScores().nLayers());
            assertNotNull(ov.eigenvalues().toTable());
            assertNotNull(ov.eigenvalues().scatter("L1H1 OV eigenvalues"));
        }
    }

    @Test
    void badInputNamesTheProblemAndTheValidRange() {
        try (CircuitMatrices circuits = CircuitMatrices.of(attnOnly)) {
            IllegalArgumentException layer = assertThrows(IllegalArgumentException.class, () -> circuits.ov(2, 0));
            assertTrue(layer.getMessage().contains("layer 2") && layer.getMessage().contains("[-2, 2)"),
                    layer.getMessage());
            IllegalArgumentException head = assertThrows(IllegalArgumentException.class, () -> circuits.qk(0, 8));
            assertTrue(head.getMessage().contains("head 8") && head.getMessage().contains("[0, 8)"),
                    head.getMessage());
            Circuit ov = circuits.ov(-1, 0);
            assertEquals(1, ov.layer());
            IllegalArgumentException word = assertThrows(IllegalArgumentException.class,
                    () -> ov.heatmap(List.of("t0", "banana")));
            assertTrue(word.getMessage().contains("banana") && word.getMessage().contains("0..130"),
                    word.getMessage());
            IllegalArgumentException id = assertThrows(IllegalArgumentException.class,
                    () -> ov.heatmap(List.of("#131")));
            assertTrue(id.getMessage().contains("131") && id.getMessage().contains("0..130"), id.getMessage());
            IllegalArgumentException row = assertThrows(IllegalArgumentException.class, () -> ov.row(200));
            assertTrue(row.getMessage().contains("token id 200") && row.getMessage().contains("0..130"),
                    row.getMessage());
            Circuit mixed = circuits.qk(0, 0, Source.TOKENS, Source.POSITIONS);
            IllegalArgumentException square = assertThrows(IllegalArgumentException.class, mixed::eigenvalues);
            assertTrue(square.getMessage().contains("not square"), square.getMessage());
            IllegalArgumentException positions = assertThrows(IllegalArgumentException.class,
                    () -> mixed.heatmap(List.of("t0")));
            assertTrue(positions.getMessage().contains("positions"), positions.getMessage());
        }
    }

    // ------------------------------------------------------------------ helpers

    static double[][] toDoubles(NDArray a) {
        long[] s = a.getShape().getShape();
        int r = (int) s[0], c = (int) s[1];
        float[] f = a.toFloatArray();
        double[][] out = new double[r][c];
        for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) out[i][j] = f[i * c + j];
        return out;
    }

    private static double[][] mul(double[][] a, double[][] b) {
        double[][] out = new double[a.length][b[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int k = 0; k < b.length; k++) {
                double x = a[i][k];
                for (int j = 0; j < b[0].length; j++) out[i][j] += x * b[k][j];
            }
        }
        return out;
    }

    private static double[][] transpose(double[][] a) {
        double[][] out = new double[a[0].length][a.length];
        for (int i = 0; i < a.length; i++) for (int j = 0; j < a[0].length; j++) out[j][i] = a[i][j];
        return out;
    }

    private static double[][] centreRows(double[][] a) {
        double[][] out = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            double mean = java.util.Arrays.stream(a[i]).average().orElse(0);
            out[i] = java.util.Arrays.stream(a[i]).map(v -> v - mean).toArray();
        }
        return out;
    }

    private static void assertClose(double[][] expected, double[][] got, double tol, String what) {
        double scale = 0, max = 0;
        for (int i = 0; i < expected.length; i++) {
            for (int j = 0; j < expected[i].length; j++) {
                scale = Math.max(scale, Math.abs(expected[i][j]));
                max = Math.max(max, Math.abs(expected[i][j] - got[i][j]));
            }
        }
        assertTrue(max <= tol * Math.max(1, scale), what + ": largest difference " + max + " (scale " + scale + ")");
    }
}
