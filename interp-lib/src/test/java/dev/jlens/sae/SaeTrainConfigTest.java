package dev.jlens.sae;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SaeTrainConfigTest {
    @Test
    void learningRateWarmsUpHoldsAndDecaysToZeroOverTheLastFraction() {
        SaeTrainConfig c = SaeTrainConfig.builder().steps(100).lr(1e-3).warmupSteps(10).decayFraction(0.2).build();
        assertEquals(1e-4, c.lrAt(0), 1e-12);
        assertEquals(1e-3, c.lrAt(9), 1e-12);
        assertEquals(1e-3, c.lrAt(79), 1e-12);
        assertEquals(1e-3, c.lrAt(80), 1e-12);     // (100 - 80) / 20
        assertEquals(5e-4, c.lrAt(90), 1e-12);
        assertEquals(5e-5, c.lrAt(99), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> c.lrAt(100));
    }

    @Test
    void sparsityRampsFromZeroToOne() {
        SaeTrainConfig c = SaeTrainConfig.builder().steps(100).sparsityWarmupSteps(4).build();
        assertEquals(0.25f, c.sparsityScaleAt(0));
        assertEquals(1f, c.sparsityScaleAt(3));
        assertEquals(1f, c.sparsityScaleAt(50));
        assertEquals(1f, SaeTrainConfig.builder().build().sparsityScaleAt(0));
    }

    @Test
    void totalTokensSetsTheStepsAndJsonRoundTrips() {
        SaeTrainConfig c = SaeTrainConfig.builder().batchSize(100).totalTokens(1050).resampleEvery(7).checkpointEvery(3)
                .deadAfterTokens(12345).seed(9).build();
        assertEquals(11, c.steps());
        assertEquals(c, SaeTrainConfig.fromJson(c.toJson()));
        assertTrue(c.toString().contains("resample every 7"), c.toString());
    }

    @Test
    void invalidValuesNameTheProblem() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SaeTrainConfig.builder().decayFraction(1.5).build());
        assertTrue(e.getMessage().contains("decayFraction"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> SaeTrainConfig.builder().steps(0).build());
        assertThrows(IllegalArgumentException.class, () -> SaeTrainConfig.builder().deadAfterTokens(0).build());
        assertThrows(IllegalArgumentException.class, () -> SaeTrainConfig.builder().resampleEvery(0).build());
    }
}
