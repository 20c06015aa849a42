package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MatryoshkaSaeTest {
    private static final int D = 8, F = 32, B = 20, K = 5;

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    @Test
    void lossIsTheMeanOfThePrefixReconstructionErrors() {
        SaeConfig cfg = SaeConfig.of(D, F, new SaeConfig.Matryoshka(K, List.of(4, 12, 16)));
        float[] xs = TestSaes.uniform(B * D, -1, 1, 9);
        float[] bDec = TestSaes.uniform(D, -0.2, 0.2, 10);
        try (NDManager m = NDManager.newBaseManager(); NDScope scope = new NDScope();
             SparseCoder sae = TestSaes.of(cfg, TestSaes.uniform(D * F, -1, 1, 11), new float[F],
                     TestSaes.uniform(F * D, -0.5, 0.5, 12), bDec, new float[F])) {
            assertArrayEquals(new int[]{4, 16, 32}, ((MatryoshkaSae) sae).prefixes());
            NDArray x = m.create(xs, new Shape(B, D));
            SparseCoder.Output out = sae.trainForward(x, new SparseCoder.Context(0, 1f, null, m));
            float[] acts = out.acts().toFloatArray();
            float[] wDec = TestSaes.get(sae, SaeWeights.W_DEC);
            int nonzero = 0;
            for (float a : acts) if (a != 0) nonzero++;
            assertEquals(K * B, nonzero, "BatchTopK over all latents");
            double total = 0, last = 0;
            for (int p : new int[]{4, 16, 32}) {
                double sse = 0;
                for (int b = 0; b < B; b++) {
                    for (int d = 0; d < D; d++) {
                        double r = bDec[d];
                        for (int j = 0; j < p; j++) r += acts[b * F + j] * wDec[j * D + d];
                        sse += Math.pow(xs[b * D + d] - r, 2);
                    }
                }
                last = sse / B;
                total += last / 3;
            }
            assertEquals(total, out.loss().getFloat(), 1e-4 * total);
            assertEquals(last, out.parts().get("mse").getFloat(), 1e-4 * last, "mse is the full dictionary's");
            assertTrue(Math.abs(total - last) > 1e-3 * total, "the prefixes' errors differ from the full dictionary's");
        }
    }

    @Test
    void groupsMustCoverTheDictionary() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SaeConfig.of(D, F, new SaeConfig.Matryoshka(K, List.of(4, 12))));
        assertTrue(e.getMessage().contains("sum to 16"), e.getMessage());
    }
}
