package dev.jlens.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

class InductionTest {

    @Test
    void sequencesAreABlockRepeatedOnceAfterBos() {
        Induction task = new Induction(50, 10, 3);
        assertEquals(21, task.maxLength());
        assertEquals(53, task.vocabSize());
        for (Example<Induction.Meta> ex : task.examples(Split.TRAIN, 0, 50)) {
            assertEquals(21, ex.length());
            assertEquals("<bos>", ex.tokens().get(0));
            assertFalse(ex.lossMask()[0]);
            for (int i = 1; i <= 10; i++) {
                assertEquals(ex.tokens().get(i), ex.tokens().get(i + 10));
                assertTrue(ex.ids()[i] >= 3 && ex.ids()[i] < 53);
            }
            for (int i = 1; i < 21; i++) {
                assertTrue(ex.lossMask()[i], "every position after BOS is a target");
            }
            Induction.Meta meta = ex.meta();
            assertEquals(ex.tokens().subList(1, 11), meta.block());
            assertEquals(Induction.Half.BOS, meta.halves().get(0));
            for (int q = 1; q < 21; q++) {
                boolean second = q > 10;
                assertEquals(second ? Induction.Half.SECOND : Induction.Half.FIRST, meta.halves().get(q));
                int src = meta.inductionSource().get(q);
                if (second) {
                    // The source follows the earlier occurrence of the current token, so it holds the next token.
                    assertEquals(ex.tokens().get(q), ex.tokens().get(q - 10));
                    assertEquals(q - 10 + 1, src);
                    if (q + 1 < 21) {
                        assertEquals(ex.tokens().get(q + 1), ex.tokens().get(src));
                    }
                } else {
                    assertEquals(-1, src);
                }
            }
            assertEquals(meta.halves(), ex.label("half"));
        }
    }

    @Test
    void tokensAreRoughlyUniform() {
        Induction task = new Induction(8, 16, 0);
        int[] counts = new int[8];
        for (Example<Induction.Meta> ex : task.examples(Split.TRAIN, 0, 500)) {
            for (int i = 1; i <= 16; i++) {
                counts[(int) ex.ids()[i] - 3]++;
            }
        }
        for (int c : counts) {
            assertTrue(Math.abs(c - 1000) < 150, "token counts " + java.util.Arrays.toString(counts));
        }
    }

    @Test
    void trainAndTestBlocksNeverOverlapAcrossSeeds() {
        // 4^6 = 4096 possible blocks: 2000 train and 300 test draws would share ~150 blocks if splits were random.
        Set<List<String>> train = new HashSet<>();
        Set<List<String>> test = new HashSet<>();
        for (long seed : new long[] {0, 1}) {
            Induction task = new Induction(4, 6, seed);
            for (Example<Induction.Meta> ex : task.examples(Split.TRAIN, 0, 1000)) {
                train.add(ex.meta().block());
            }
            for (Example<Induction.Meta> ex : task.examples(Split.TEST, 0, 150)) {
                test.add(ex.meta().block());
            }
        }
        assertTrue(test.size() > 100 && train.size() > 1000, "too few distinct blocks: " + test.size());
        Set<List<String>> both = new HashSet<>(test);
        both.retainAll(train);
        assertEquals(Set.of(), both);
    }

    @Test
    void testSplitIsExactlyTheHashedBlocksAndAnEmptyOneFailsClearly() {
        int emptySplits = 0;
        for (int half = 1; half <= 3; half++) {
            Induction task = new Induction(2, half, 0);
            Set<List<String>> testBlocks = new HashSet<>();
            for (int bits = 0; bits < (1 << half); bits++) {
                long[] ids = new long[half];
                List<String> block = new java.util.ArrayList<>();
                for (int i = 0; i < half; i++) {
                    ids[i] = 3 + ((bits >> i) & 1);
                    block.add("t" + ((bits >> i) & 1));
                }
                if (Split.of("induction", ids) == Split.TEST) {
                    testBlocks.add(block);
                }
            }
            if (testBlocks.isEmpty()) {
                emptySplits++;
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> task.example(Split.TEST, 0));
                assertTrue(e.getMessage().contains("too small"), e.getMessage());
            } else {
                for (Example<Induction.Meta> ex : task.examples(Split.TEST, 0, 20)) {
                    assertTrue(testBlocks.contains(ex.meta().block()), ex.text());
                }
            }
            for (Example<Induction.Meta> ex : task.examples(Split.TRAIN, 0, 20)) {
                assertFalse(testBlocks.contains(ex.meta().block()), ex.text());
            }
        }
        assertTrue(emptySplits > 0, "expected a configuration without test blocks among 2, 4 and 8 blocks");
        assertThrows(IllegalArgumentException.class, () -> new Induction(1, 10, 0));
        assertThrows(IllegalArgumentException.class, () -> new Induction(10, 0, 0));
    }

    // ------------------------------------------------------------------------------------------ scores

    /** {@code [head, q, k]}: head 0 a perfect induction head, head 1 uniform causal, head 2 previous token. */
    private static float[][][] patterns(int halfLength) {
        int t = 2 * halfLength + 1;
        float[][][] p = new float[3][t][t];
        for (int q = 0; q < t; q++) {
            boolean second = q > halfLength;
            p[0][q][second ? q - halfLength + 1 : 0] = 1f; // first half: rest on BOS
            for (int k = 0; k <= q; k++) {
                p[1][q][k] = 1f / (q + 1);
            }
            p[2][q][Math.max(0, q - 1)] = 1f;
        }
        return p;
    }

    @Test
    void inductionScoreIsOneForAPerfectHeadAndOneOverKForUniform() {
        int half = 20;
        double[] score = Induction.inductionScore(patterns(half), half);
        assertEquals(3, score.length);
        assertEquals(1.0, score[0], 1e-12);
        // Uniform attention over the k = q + 1 visible keys gives 1/k at the induction key.
        double expected = 0;
        for (int q = half + 1; q <= 2 * half; q++) {
            expected += 1.0 / (q + 1);
        }
        expected /= half;
        assertEquals(expected, score[1], 1e-6);
        assertTrue(score[1] > 1.0 / (2 * half + 1) && score[1] < 1.0 / (half + 1));
        assertEquals(0.0, score[2], 1e-12);
    }

    @Test
    void inductionScoreAveragesABatchAndWorksWithoutBos() {
        int half = 8;
        float[][][] withBos = patterns(half);
        float[][][] scaled = new float[3][][];
        for (int h = 0; h < 3; h++) {
            scaled[h] = new float[withBos[h].length][];
            for (int q = 0; q < withBos[h].length; q++) {
                scaled[h][q] = withBos[h][q].clone();
                for (int k = 0; k < scaled[h][q].length; k++) {
                    scaled[h][q][k] *= 0.5f;
                }
            }
        }
        double[] mean = Induction.inductionScore(new float[][][][] {withBos, scaled}, half);
        assertEquals(0.75, mean[0], 1e-9);

        // Without BOS: 2L positions, the second half starts at L and attends to q - L + 1.
        float[][][] noBos = new float[1][2 * half][2 * half];
        for (int q = half; q < 2 * half; q++) {
            noBos[0][q][q - half + 1] = 1f;
        }
        assertArrayEquals(new double[] {1.0}, Induction.inductionScore(noBos, half), 1e-12);

        assertThrows(IllegalArgumentException.class, () -> Induction.inductionScore(noBos, half + 1));
        float[][][] ragged = new float[1][2 * half][3];
        assertThrows(IllegalArgumentException.class, () -> Induction.inductionScore(ragged, half));
    }

    @Test
    void inductionScoreOnTheTasksOwnLabels() {
        // A pattern built from the task's inductionSource labels is a perfect induction head.
        Induction task = new Induction(30, 12, 5);
        Example<Induction.Meta> ex = task.example(Split.TEST, 4);
        int t = ex.length();
        float[][][] p = new float[1][t][t];
        for (int q = 0; q < t; q++) {
            int src = ex.meta().inductionSource().get(q);
            p[0][q][src >= 0 ? src : 0] = 1f;
        }
        assertEquals(1.0, Induction.inductionScore(p, task.halfLength())[0], 1e-12);
    }

    /** {@code a} as nested Java arrays {@code [b][h][q][k]}, copied element by element. */
    private static float[][][][] nested(NDArray a) {
        long[] s = a.getShape().getShape();
        float[] flat = a.toFloatArray();
        int b = (int) s[0], h = (int) s[1], q = (int) s[2], k = (int) s[3];
        float[][][][] out = new float[b][h][q][k];
        for (int i = 0; i < b; i++) for (int j = 0; j < h; j++) for (int r = 0; r < q; r++) {
            System.arraycopy(flat, ((i * h + j) * q + r) * k, out[i][j][r], 0, k);
        }
        return out;
    }

    @Test
    void scoreOfACachedPatternEqualsTheScoreOfItsJavaCopy() {
        Induction task = new Induction(128, 32, 0);
        long[][] ids = task.examples(Split.TEST, 0, 6).stream().map(Example::ids).toArray(long[][]::new);
        try (HookedTransformer model = Zoo.load("attn-only-2l");
             ActivationCache cache = model.runWithCache(ids, NameFilter.of("attn.hook_pattern"))) {
            for (int layer = 0; layer < model.cfg().nLayers(); layer++) {
                NDArray pattern = cache.get("pattern", layer);
                assertEquals(new Shape(6, model.cfg().nHeads(), 65, 65), pattern.getShape());
                float[][][][] copy = nested(pattern);
                double[] fromArray = Induction.inductionScore(pattern, task.halfLength());
                assertArrayEquals(Induction.inductionScore(copy, task.halfLength()), fromArray, 0.0);
                // one batch row, [head, q, k]
                try (NDArray row = pattern.get(2)) {
                    assertArrayEquals(Induction.inductionScore(copy[2], task.halfLength()),
                            Induction.inductionScore(row, task.halfLength()), 0.0);
                }
                if (layer == 1) {
                    double max = java.util.Arrays.stream(fromArray).max().orElseThrow();
                    assertTrue(max > 0.7, "layer 1 of attn-only-2l has an induction head, best score " + max);
                }
            }
        }
    }

    @Test
    void scoreOfAnArrayWorksForOtherDtypesAndChecksTheShape() {
        int half = 6;
        float[][][] p = patterns(half);
        int t = p[0].length;
        float[] flat = new float[3 * t * t];
        for (int h = 0; h < 3; h++) for (int q = 0; q < t; q++) System.arraycopy(p[h][q], 0, flat, (h * t + q) * t, t);
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray a = m.create(flat, new Shape(3, t, t));
            assertArrayEquals(Induction.inductionScore(p, half), Induction.inductionScore(a, half), 0.0);
            NDArray doubles = a.toType(DataType.FLOAT64, false);
            assertArrayEquals(Induction.inductionScore(p, half), Induction.inductionScore(doubles, half), 0.0);
            int before = m.getManagedArrays().size();
            Induction.inductionScore(a.expandDims(0).repeat(0, 2), half);
            assertEquals(before + 2, m.getManagedArrays().size(), "scoring left native arrays behind");
            IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
                    () -> Induction.inductionScore(m.zeros(new Shape(t, t)), half));
            assertTrue(rank.getMessage().contains("[batch, head, q, k]"), rank.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> Induction.inductionScore(m.zeros(new Shape(1, 2, t, t - 1)), half));
            assertThrows(IllegalArgumentException.class, () -> Induction.inductionScore(a, half + 1));
        }
    }
}
