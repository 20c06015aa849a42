package dev.jlens.diff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import dev.jlens.sae.SyntheticActivations;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StageDiffTest {

    /** A copy is an independent dictionary with equal weights; turning one decoder row makes it the most moved. */
    @Test
    void theLatentWhoseDecoderTurnedComesFirst() {
        SyntheticActivations data = new SyntheticActivations(64, 32, 0);
        SparseCoder before = SparseCoder.create(SaeConfig.of(32, 96, new SaeConfig.TopK(4)), 1);
        SaeTrainer.train(before, data, SaeTrainConfig.builder().steps(150).batchSize(256).lr(3e-3).logEvery(50).build());
        SparseCoder after = StageDiff.copyOf(before);
        for (var e : before.weights().params().entrySet()) {
            assertArrayEquals(e.getValue().toFloatArray(), after.weights().get(e.getKey()).toFloatArray(), 0f, e.getKey());
        }
        StageDiff same = StageDiff.of(before, after, data, data, 2, 512);
        for (double c : same.decoderCosines()) assertTrue(Double.isNaN(c) || Math.abs(c - 1) < 1e-5, "unchanged: cosine 1");

        // the next stage changed latent 7's direction: its decoder row now points at latent 8's
        NDArray wDec = after.weights().get(SaeWeights.W_DEC);
        wDec.set(new NDIndex("7, :"), wDec.get("8, :").duplicate());
        StageDiff moved = StageDiff.of(before, after, data, data, 2, 512);
        assertEquals(7, moved.movedMost(1)[0]);
        Table t = moved.table();
        assertEquals(96, t.rowCount());
        assertEquals(7, t.intColumn("latent").getInt(0));
        assertTrue(t.doubleColumn("decoder_cosine").getDouble(0) < 0.9);
        // densities on the same data by the unchanged encoder are equal
        assertEquals(t.doubleColumn("density_before").getDouble(0), t.doubleColumn("density_after").getDouble(0), 1e-9);
        assertThrows(IllegalArgumentException.class, () -> StageDiff.of(before,
                SparseCoder.create(SaeConfig.of(32, 48, new SaeConfig.TopK(4)), 1), data, data, 1, 64));
    }
}
