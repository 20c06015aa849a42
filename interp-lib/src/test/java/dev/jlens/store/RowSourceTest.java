package dev.jlens.store;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** In-memory rows: every row once per epoch, batches a pure function of (seed, step), unit mean squared norm. */
class RowSourceTest {
    @Test
    void everyRowOncePerEpochInASeededOrder() {
        int rows = 10, width = 3;
        float[] data = new float[rows * width];
        for (int r = 0; r < rows; r++) for (int j = 0; j < width; j++) data[r * width + j] = r + 1;
        RowSource src = RowSource.of(data, width, 4);
        try (NDManager m = NDManager.newBaseManager()) {
            float[] epoch = src.batch(0, rows, m).toFloatArray();
            float[] firsts = new float[rows];
            for (int i = 0; i < rows; i++) firsts[i] = epoch[i * width];
            float[] sorted = firsts.clone();
            Arrays.sort(sorted);
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, sorted);
            assertArrayEquals(src.batch(3, 4, m).toFloatArray(), RowSource.of(data, width, 4).batch(3, 4, m).toFloatArray());
            assertNotEquals(Arrays.toString(epoch), Arrays.toString(RowSource.of(data, width, 5).batch(0, rows, m).toFloatArray()));
            // steps 2 and 3 of 5 rows are the next epoch: again every row once
            float[] next = src.batch(2, 5, m).toFloatArray(), next2 = src.batch(3, 5, m).toFloatArray();
            float[] both = new float[rows];
            for (int i = 0; i < 5; i++) {
                both[i] = next[i * width];
                both[5 + i] = next2[i * width];
            }
            Arrays.sort(both);
            assertArrayEquals(sorted, both);
        }
        double ms = 0;
        for (int r = 0; r < rows; r++) ms += 3.0 * (r + 1) * (r + 1);
        assertEquals(Math.sqrt(rows / ms), src.normalizationScale(), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> RowSource.of(new float[7], 3, 0));
        assertThrows(IllegalArgumentException.class, () -> RowSource.of(new float[6], 3, 0));   // all zero
    }
}
