package dev.jlens.sae;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticActivationsTest {
    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    @Test
    void batchesArePureFunctionsOfSeedAndStep() {
        SyntheticActivations a = new SyntheticActivations(128, 32, 5), b = new SyntheticActivations(128, 32, 5);
        try (NDManager m = NDManager.newBaseManager()) {
            assertArrayEquals(a.batch(3, 16, m).toFloatArray(), b.batch(3, 16, m).toFloatArray());
            assertFalse(java.util.Arrays.equals(a.batch(3, 16, m).toFloatArray(), a.batch(4, 16, m).toFloatArray()));
            assertFalse(java.util.Arrays.equals(a.batch(3, 16, m).toFloatArray(),
                    new SyntheticActivations(128, 32, 6).batch(3, 16, m).toFloatArray()));
        }
    }

    @Test
    void featuresAreUnitVectorsWithFrequenciesInRangeAndTheScaleNormalises() {
        SyntheticActivations s = new SyntheticActivations(256, 32, 0.002, 0.05, 7);
        for (float[] f : s.features()) {
            double n = 0;
            for (float v : f) n += v * v;
            assertEquals(1.0, n, 1e-5);
        }
        for (double f : s.frequencies()) assertTrue(f >= 0.002 && f <= 0.05, "frequency " + f);
        double scale = s.normalizationScale();
        try (NDManager m = NDManager.newBaseManager()) {
            float[] x = s.batch(0, 4096, m).toFloatArray();
            double ss = 0;
            for (float v : x) ss += (double) v * v * scale * scale;
            assertEquals(1.0, ss / 4096, 0.05, "scaled vectors have unit mean squared norm");
        }
    }

    @Test
    void meanMaxCosineIsOneForTheTrueDictionaryAndLowForARandomOne() {
        SyntheticActivations s = new SyntheticActivations(64, 16, 3);
        float[][] f = s.features();
        float[] wDec = new float[64 * 16];
        for (int i = 0; i < 64; i++) for (int d = 0; d < 16; d++) wDec[i * 16 + d] = 2 * f[63 - i][d];   // any order, any norm
        SaeConfig cfg = SaeConfig.of(16, 64, new SaeConfig.Relu(0));
        try (SparseCoder truth = TestSaes.of(cfg, new float[16 * 64], new float[64], wDec, new float[16], null);
             SparseCoder random = SparseCoder.create(cfg, 1)) {
            assertEquals(1.0, s.meanMaxCosine(truth), 1e-5);
            double r = s.meanMaxCosine(random);
            assertTrue(r < 0.8, "random dictionary " + r);
        }
        assertThrows(IllegalArgumentException.class, () -> new SyntheticActivations(8, 4, 0.5, 0.1, 0));
    }
}
