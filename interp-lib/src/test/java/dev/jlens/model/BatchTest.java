package dev.jlens.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BatchTest {

    @Test
    void uniformWeightsCoverEveryTarget() {
        Batch tb = Batch.of(new long[][] {{1, 2, 3, 4}, {5, 6, 7, 8}});
        assertEquals(6.0, tb.targetWeight());
        assertEquals(8, tb.tokenCount());
        assertEquals(2, tb.size());
    }

    @Test
    void paddingCountsForNothing() {
        Batch padded = Batch.leftPadded(new long[][] {{1, 2, 3, 4}, {7, 8}}, 0);
        // row 1 is [pad, pad, 7, 8]: only the target 8 (predicted from 7) is real
        assertEquals(3 + 1, padded.targetWeight());
        float[][] w = {{0, 0, 2}, {5, 5, 1}};
        assertEquals(2 + 1, padded.withTargetWeights(w).targetWeight());
    }

    @Test
    void weightsMustMatchTheTargets() {
        Batch b = Batch.of(new long[][] {{1, 2, 3}});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> b.withTargetWeights(new float[][] {{1, 1, 1}}));
        assertTrue(e.getMessage().contains("pos - 1 = 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> b.withTargetWeights(new float[][] {{1, -1}}));
        assertTrue(e.getMessage().contains(">= 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> b.withTargetWeights(new float[][] {{1, Float.NaN}}));
        assertTrue(e.getMessage().contains("finite"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> b.withTargetWeights(new float[][] {{1, 1}, {1, 1}}));
        assertTrue(e.getMessage().contains("2 rows for 1 sequences"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Batch.of(new long[][] {{1}}).requireTargets());
        assertTrue(e.getMessage().contains("at least 2 tokens"), e.getMessage());
    }

    @Test
    void equalityIsByContent() {
        assertEquals(Batch.of(new long[][] {{1, 2}}), Batch.of(new long[][] {{1, 2}}));
    }
}
