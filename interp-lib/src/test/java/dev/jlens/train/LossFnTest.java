package dev.jlens.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Losses;
import dev.jlens.model.arch.ModelConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LossFnTest {
    private static final long[][] IDS = {{1, 5, 9, 2, 7, 3}, {4, 4, 8, 0, 6, 1}};

    @Test
    void uniformWeightsGiveTheMeanNextTokenLoss() {
        try (HookedTransformer model = HookedTransformer.random(ModelConfig.gpt2(32, 1, 2, 64, 16, 16), 3);
             NDScope scope = new NDScope()) {
            Batch batch = Batch.of(IDS);
            NDArray logits = model.forward(batch);
            float expected = Losses.meanNextTokenLoss(logits, batch).getFloat();
            assertEquals(expected, LossFn.nextToken().loss(logits, batch).getFloat(), 1e-6);
        }
    }

    @Test
    void weightsSelectAndWeighTargets() {
        try (HookedTransformer model = HookedTransformer.random(ModelConfig.llama(32, 1, 4, 2, 64, 16, 16), 3);
             NDScope scope = new NDScope()) {
            Batch batch = Batch.of(IDS);
            NDArray logits = model.forward(batch);
            float[] per = Losses.nextTokenLoss(logits, batch).toFloatArray();   // [2, 5] row-major
            float[][] w = {{0, 0, 1, 0, 3}, {2, 0, 0, 0, 0}};
            double expected = (per[2] + 3 * per[4] + 2 * per[5]) / 6.0;
            assertEquals(expected, LossFn.nextToken().loss(logits, batch.withTargetWeights(w)).getFloat(), 1e-6);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LossFn.nextToken().loss(logits, batch.withTargetWeights(new float[2][5])));
            assertTrue(e.getMessage().contains("zero"), e.getMessage());
        }
    }
}
