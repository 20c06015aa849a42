package dev.jlens.sae;

import ai.djl.ndarray.NDManager;
import dev.jlens.store.ActivationStore;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.train.ProgressSink;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A crosscoder trained through {@link ActivationStore} on two real models: tinylang-4l against itself (loaded twice,
 * identical weights) has no diff, so every live latent must come out shared with the same direction in both halves.
 */
class CrosscoderStoreTest {
    static final String HOOK = "blocks.2.hook_resid_post";

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    @Test
    void aModelAgainstItselfGivesOnlySharedLatents() {
        long t0 = System.nanoTime();
        try (HookedTransformer base = Zoo.load("tinylang-4l"); HookedTransformer same = Zoo.load("tinylang-4l");
             ActivationStore store = ActivationStore.builder().source("base", base, HOOK).source("finetuned", same, HOOK)
                     .tokens(TinyLang.defaults(), 16).bufferRows(4096).normSamples(2048).build();
             NDManager m = NDManager.newBaseManager()) {
            int dm = base.cfg().dModel();
            assertEquals(2, store.nSources());
            assertEquals(2 * dm, store.width());
            float[] probe = store.batch(0, 8, m).toFloatArray();
            for (int row = 0; row < 8; row++) {
                assertArrayEquals(Arrays.copyOfRange(probe, row * 2 * dm, row * 2 * dm + dm),
                        Arrays.copyOfRange(probe, row * 2 * dm + dm, (row + 1) * 2 * dm), 1e-5f,
                        "both halves of row " + row + " come from identical weights");
            }

            SaeConfig cfg = SaeConfig.of(2 * dm, 128, new SaeConfig.BatchTopK(8)).withSources(2);
            try (SparseCoder sae = SparseCoder.create(cfg, 1)) {
                // At initialisation each latent's two halves are independent random directions: the cosine check
                // below is what training has to earn.
                double initCos = meanAbs(Crosscoder.of(sae).cosineSimilarities(), null);
                SaeTrainConfig tc = SaeTrainConfig.builder().steps(300).batchSize(256).lr(2e-3).warmupSteps(20)
                        .deadAfterTokens(20_000).logEvery(50).build();
                SaeTrainer.Result r;
                try (SaeTrainer t = SaeTrainer.of(store, tc).add("cc", sae).progress(ProgressSink.none())) {
                    r = t.train();
                }
                // held-out rows just past the 300 x 256 trained on (a streaming store replays the rows before a step)
                boolean[] live = live(sae, store.batch(38, 2048, m).toFloatArray(), 2048);
                Crosscoder cc = Crosscoder.of(sae, "base", "same", Crosscoder.Thresholds.defaults());
                double[] rel = cc.relativeNorms(), cos = cc.cosineSimilarities();
                int nLive = 0;
                double maxDev = 0;
                for (int l = 0; l < live.length; l++) {
                    if (!live[l]) continue;
                    nLive++;
                    maxDev = Math.max(maxDev, Math.abs(rel[l] - 0.5));
                }
                double liveCos = meanAbs(cos, live);
                StepStatsLine line = new StepStatsLine(r.last("cc"));
                System.out.printf("CrosscoderStoreTest: %d steps in %.1f s; %s; %d live latents, max |r - 0.5| %.4f, "
                                + "mean half-to-half decoder cosine %.4f (init %.4f); %s%n", tc.steps(),
                        (System.nanoTime() - t0) / 1e9, line, nLive, maxDev, liveCos, initCos, cc);
                assertTrue(line.fvu < 0.5, "the crosscoder learned to reconstruct: FVU " + line.fvu);
                assertTrue(nLive >= 32, "only " + nLive + " live latents");
                assertTrue(maxDev <= 0.1, "a live latent has r " + (0.5 + maxDev) + " or " + (0.5 - maxDev)
                        + " although the two models are the same");
                // r starts at exactly 0.5 (each source's block has half the init norm), so the check that training did
                // the right thing is the halves' alignment: only the reconstruction error drives their antisymmetric
                // part to zero, slowly (0.06 at init, 0.51 after these 300 steps; it keeps rising with more).
                assertTrue(liveCos >= 0.4, "live latents' base and fine-tuned decoder halves: mean cosine " + liveCos);
                assertTrue(initCos < 0.3, "init cosine " + initCos);
            }
        }
    }

    /** The last step's FVU, printed compactly. */
    record StepStatsLine(double fvu, double l0) {
        StepStatsLine(SaeTrainer.StepStats s) {
            this(s.fvu(), s.l0());
        }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "FVU %.4f, L0 %.1f", fvu, l0);
        }
    }

    /** Latents firing on at least 0.5% of the rows. */
    static boolean[] live(SparseCoder sae, float[] rowsRaw, int rows) {
        int dSae = sae.cfg().dSae();
        try (NDManager m = NDManager.newBaseManager()) {
            float[] f = sae.encode(m.create(rowsRaw, new ai.djl.ndarray.types.Shape(rows, sae.cfg().dIn())))
                    .toFloatArray();
            int[] fired = new int[dSae];
            for (int i = 0; i < rows; i++) for (int j = 0; j < dSae; j++) if (f[i * dSae + j] > 0) fired[j]++;
            boolean[] live = new boolean[dSae];
            for (int j = 0; j < dSae; j++) live[j] = fired[j] >= rows / 200;
            return live;
        }
    }

    private static double meanAbs(double[] v, boolean[] mask) {
        double s = 0;
        int n = 0;
        for (int i = 0; i < v.length; i++) {
            if ((mask != null && !mask[i]) || Double.isNaN(v[i])) continue;
            s += mask == null ? Math.abs(v[i]) : v[i];
            n++;
        }
        return s / n;
    }
}
