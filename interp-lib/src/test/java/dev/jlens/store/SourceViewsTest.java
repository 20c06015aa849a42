package dev.jlens.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

/** Views of a three-source source whose rows are known: selected columns, differences and their scales. */
class SourceViewsTest {
    static final int D = 2;

    /** Row r of step s: source k holds (100 k + r + s, -(100 k + r + s)) times (k + 1). */
    static final class Known implements ActivationSource {
        @Override
        public int width() {
            return 3 * D;
        }

        @Override
        public int nSources() {
            return 3;
        }

        @Override
        public NDArray batch(long step, int batchSize, NDManager manager) {
            float[] v = new float[batchSize * 3 * D];
            for (int r = 0; r < batchSize; r++) {
                for (int k = 0; k < 3; k++) {
                    float x = (100 * k + r + step) * (k + 1) / 1000f;
                    v[r * 3 * D + k * D] = x;
                    v[r * 3 * D + k * D + 1] = -x;
                }
            }
            return manager.create(v, new Shape(batchSize, 3 * D));
        }

        @Override
        public double normalizationScale() {
            return 0.5;
        }
    }

    @Test
    void selectKeepsTheNamedSourcesInOrder() {
        ActivationSource view = new Known().select(2, 0);
        assertEquals(2 * D, view.width());
        assertEquals(2, view.nSources());
        try (NDManager m = NDManager.newBaseManager()) {
            float[] all = new Known().batch(3, 4, m).toFloatArray(), got = view.batch(3, 4, m).toFloatArray();
            for (int r = 0; r < 4; r++) {
                assertArrayEquals(new float[] {all[r * 6 + 4], all[r * 6 + 5], all[r * 6], all[r * 6 + 1]},
                        java.util.Arrays.copyOfRange(got, r * 4, r * 4 + 4));
            }
            // its own scale: 1 / sqrt(mean squared norm of its first rows)
            float[] first = view.batch(0, SourceViews.SCALE_ROWS, m).toFloatArray();
            double sq = 0;
            for (float x : first) sq += x * x;
            assertEquals(1 / Math.sqrt(sq / SourceViews.SCALE_ROWS), view.normalizationScale(), 1e-4);
        }
    }

    @Test
    void differenceSubtractsOneSourceFromAnother() {
        ActivationSource diff = new Known().difference(1, 0);
        assertEquals(D, diff.width());
        assertEquals(1, diff.nSources());
        try (NDManager m = NDManager.newBaseManager()) {
            float[] got = diff.batch(5, 3, m).toFloatArray();
            for (int r = 0; r < 3; r++) {
                float want = ((100 + r + 5) * 2 - (r + 5)) / 1000f;
                assertEquals(want, got[r * D], 1e-5);
                assertEquals(-want, got[r * D + 1], 1e-5);
            }
        }
    }

    @Test
    void badSourcesAreNamed() {
        Known k = new Known();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> k.select(0, 3));
        assertTrue(e.getMessage().contains("source 3") && e.getMessage().contains("0..2"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> k.select(1, 1));
        assertThrows(IllegalArgumentException.class, () -> k.select());
        assertThrows(IllegalArgumentException.class, () -> k.difference(1, 1));
        assertThrows(IllegalArgumentException.class, () -> k.difference(-1, 0));
    }

    @Test
    void aGivenScaleReplacesTheSourcesOwnAndKeepsItsBatches() {
        ActivationSource one = new Known().select(1);
        ActivationSource fixed = one.withNormalizationScale(0.125);
        assertEquals(0.125, fixed.normalizationScale(), 0);
        assertEquals(one.width(), fixed.width());
        try (NDManager m = NDManager.newBaseManager()) {
            assertArrayEquals(one.batch(2, 5, m).toFloatArray(), fixed.batch(2, 5, m).toFloatArray(), 0f);
        }
        assertThrows(IllegalArgumentException.class, () -> one.withNormalizationScale(0));
        assertThrows(IllegalArgumentException.class, () -> one.withNormalizationScale(Double.NaN));
    }
}
