package dev.jlens.store;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RowPermutationTest {

    private static long[] image(long n, long seed, long epoch) {
        RowPermutation p = new RowPermutation(n, seed, epoch);
        long[] out = new long[(int) n];
        for (int i = 0; i < n; i++) out[i] = p.apply(i);
        return out;
    }

    @Test
    void isABijectionForAnySize() {
        for (long n : new long[] {1, 2, 3, 5, 64, 65, 1000, 4097}) {
            long[] img = image(n, 7, 0);
            long[] sorted = img.clone();
            Arrays.sort(sorted);
            for (int i = 0; i < n; i++) assertEquals(i, sorted[i], "n = " + n + ": value " + i + " hit once");
        }
    }

    @Test
    void dependsOnSeedAndEpochOnly() {
        assertTrue(Arrays.equals(image(1000, 7, 2), image(1000, 7, 2)), "a pure function of (n, seed, epoch)");
        assertFalse(Arrays.equals(image(1000, 7, 2), image(1000, 8, 2)), "another seed");
        assertFalse(Arrays.equals(image(1000, 7, 2), image(1000, 7, 3)), "another epoch");
        long[] img = image(1000, 7, 0);
        int fixed = 0;
        for (int i = 0; i < img.length; i++) if (img[i] == i) fixed++;
        assertTrue(fixed < 10, fixed + " fixed points of 1000: not shuffled"); // ~1 expected for a random permutation
    }

    @Test
    void rejectsIndicesOutsideTheDomain() {
        RowPermutation p = new RowPermutation(10, 0, 0);
        assertThrows(IndexOutOfBoundsException.class, () -> p.apply(10));
        assertThrows(IllegalArgumentException.class, () -> new RowPermutation(0, 0, 0));
    }
}
