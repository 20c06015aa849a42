package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jlens.store.ActivationSource;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A crosscoder built by hand over planted two-model data, so that each fine-tuned-only latent's true status is known:
 * latent 1's direction is in both models but its base decoder is zero (complete shrinkage), latent 2's direction is in
 * the fine-tuned model only (genuinely fine-tuned-only), latent 3's direction is in both models and the base side is
 * reconstructed by a base-only latent 4 (decoupling). Latent 0 is shared.
 */
class LatentScalingTest {
    static final int DM = 8;

    @Test
    void flagsCompleteShrinkageAndDecouplingAndLeavesAGenuineLatentAlone() {
        SparseCoder coder = SparseCoder.create(SaeConfig.of(2 * DM, 5, new SaeConfig.Relu(0.0)).withSources(2), 0);
        float[] enc = new float[2 * DM * 5], dec = new float[5 * 2 * DM];
        // encoder [2 dm, dSae]: latent -> the input coordinate it reads
        int[][] reads = {{0, 0}, {DM + 1, 1}, {DM + 2, 2}, {DM + 3, 3}, {3, 4}};
        for (int[] r : reads) enc[r[0] * 5 + r[1]] = 1f;
        // decoder [dSae, 2 dm]: latent -> (base coordinate or -1, fine-tuned coordinate or -1)
        int[][] writes = {{0, 0}, {-1, 1}, {-1, 2}, {-1, 3}, {3, -1}};
        for (int l = 0; l < 5; l++) {
            if (writes[l][0] >= 0) dec[l * 2 * DM + writes[l][0]] = 1f;
            if (writes[l][1] >= 0) dec[l * 2 * DM + DM + writes[l][1]] = 1f;
        }
        SaeWeights w = coder.weights();
        w.get(SaeWeights.W_ENC).set(new NDIndex(":"), w.get(SaeWeights.W_ENC).getManager().create(enc, new Shape(2 * DM, 5)));
        w.get(SaeWeights.W_DEC).set(new NDIndex(":"), w.get(SaeWeights.W_DEC).getManager().create(dec, new Shape(5, 2 * DM)));
        w.get(SaeWeights.B_ENC).set(new NDIndex(":"), 0f);
        w.get(SaeWeights.B_DEC).set(new NDIndex(":"), 0f);

        Crosscoder cc = Crosscoder.of(coder);
        int[] ftOnly = cc.latents(Crosscoder.Category.FINETUNED_ONLY);
        assertArrayEquals(new int[] {1, 2, 3}, ftOnly, "by decoder norms latents 1-3 look fine-tuned-only");

        LatentScaling ls = LatentScaling.of(cc, planted(), ftOnly, 4, 256);
        double[] nuE = ls.nuError(), nuR = ls.nuReconstruction();
        Table t = ls.table();
        assertEquals(3, t.rowCount());
        assertEquals(1.0, nuE[0], 1e-4, "latent 1: the base model carries the direction in its error");
        assertEquals(0.0, nuR[0], 1e-4);
        assertEquals(0.0, nuE[1], 1e-4, "latent 2 is genuinely fine-tuned-only");
        assertEquals(0.0, nuR[1], 1e-4);
        assertEquals(0.0, nuE[2], 1e-4, "latent 3: the base side is reconstructed, not left in the error");
        assertEquals(1.0, nuR[2], 1e-4, "latent 3: a base-only latent reconstructs its direction");
        assertTrue(ls.completeShrinkage(0) && !ls.decoupled(0));
        assertFalse(ls.completeShrinkage(1) || ls.decoupled(1));
        assertTrue(!ls.completeShrinkage(2) && ls.decoupled(2));
        assertTrue(t.longColumn("firings").getLong(0) > 300, "each latent fires on about half of 1,024 rows");
        assertTrue(ls.toString().contains("1 completely shrunk"));

        assertThrows(IllegalArgumentException.class, () -> LatentScaling.of(cc, planted(), new int[] {5}, 1, 8));
    }

    /** Latent activations a0..a3 in [0.5, 1.5], each present with probability 1/2, written where the story says. */
    static ActivationSource planted() {
        return new ActivationSource() {
            @Override
            public int width() {
                return 2 * DM;
            }

            @Override
            public int nSources() {
                return 2;
            }

            @Override
            public NDArray batch(long step, int batchSize, NDManager manager) {
                SplittableRandom r = new SplittableRandom(step * 7919 + 1);
                float[] x = new float[batchSize * 2 * DM];
                for (int b = 0; b < batchSize; b++) {
                    float[] a = new float[4];
                    for (int k = 0; k < 4; k++) a[k] = r.nextBoolean() ? (float) (0.5 + r.nextDouble()) : 0f;
                    int o = b * 2 * DM;
                    x[o] = a[0];               // shared feature, base
                    x[o + DM] = a[0];          // and fine-tuned
                    x[o + 1] = a[1];           // latent 1's direction in the base model too
                    x[o + DM + 1] = a[1];
                    x[o + DM + 2] = a[2];      // latent 2's: fine-tuned only
                    x[o + 3] = a[3];           // latent 3's: both, base side read by latent 4
                    x[o + DM + 3] = a[3];
                }
                return manager.create(x, new Shape(batchSize, 2 * DM));
            }
        };
    }
}
