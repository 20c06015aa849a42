package dev.jlens.sae;

import ai.djl.ndarray.NDManager;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * End to end: a crosscoder trained on two models' activations with known shared, base-only and fine-tuned-only
 * features recovers each feature as one latent of the right category ({@link Crosscoder}'s relative decoder norm).
 */
class CrosscoderTrainingTest {
    static final int DM = 64, SHARED = 96, BASE = 16, FT = 16, ROTATED = 8;
    static final double ROTATION = Math.toRadians(60);
    // Twice as many latents as features: the surplus dies (BatchTopK) or duplicates shared features (ReLU); at 1.25x
    // the rarest exclusive features were merged. k = 3 is about the true L0 in latents (a shared feature is one).
    static final int D_SAE = 256, K = 3;

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    static SyntheticPair data() {
        return new SyntheticPair(DM, SHARED, BASE, FT, ROTATED, ROTATION, 0.01, 0.05, 3);
    }

    static SaeTrainConfig config() {
        return SaeTrainConfig.builder().steps(1200).batchSize(512).lr(5e-3).warmupSteps(50).deadAfterTokens(100_000)
                .logEvery(100).build();
    }

    @Test
    void reluCrosscoderRecoversTheDiff() {
        SyntheticPair data = data();
        SaeConfig cfg = SaeConfig.of(2 * DM, D_SAE, new SaeConfig.Relu(0.15)).withSources(2);
        try (SparseCoder cc = SparseCoder.create(cfg, 5)) {
            trainAndCheck("ReLU (L1 on summed decoder norms)", data, cc);
        }
    }

    @Test
    void batchTopKCrosscoderRecoversTheDiff() {
        SyntheticPair data = data();
        SaeConfig cfg = SaeConfig.of(2 * DM, D_SAE, new SaeConfig.BatchTopK(K)).withSources(2);
        try (SparseCoder cc = SparseCoder.create(cfg, 5)) {
            trainAndCheck("BatchTopK (ranked by f x summed norms)", data, cc);
        }
    }

    static void trainAndCheck(String label, SyntheticPair data, SparseCoder sae) {
        long t0 = System.nanoTime();
        SaeTrainer.Result r;
        try (SaeTrainer t = SaeTrainer.of(data, config()).add("cc", sae).progress(ProgressSink.none())) {
            r = t.train();
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        Analysis a = Analysis.of(data, sae);
        System.out.printf("CrosscoderTrainingTest %s: %d steps in %.1f s; last step %s%n%s%n", label, config().steps(),
                secs, r.last("cc"), a);
        double[] rel = a.cc().relativeNorms(), cos = a.cc().cosineSimilarities();
        for (int i = 0; i < data.nFeatures(); i++) {
            // every true feature's best-matching latent (by the cosine of the whole concatenated decoder row) sits in
            // the feature's category: no exclusive feature hides in a shared latent or the other way round
            assertEquals(Analysis.expected(data.kind(i)), a.cc().category(a.best()[i]), "feature " + i + " ("
                    + data.kind(i) + "): best latent " + a.best()[i] + " has r " + rel[a.best()[i]] + ", cosine "
                    + a.bestCos()[i]);
        }
        for (SyntheticPair.Kind k : SyntheticPair.Kind.values()) {
            // at most 2 of 16 exclusive features merged or split (ReLU merges one fine-tuned-only pair)
            assertTrue(a.recoveredFraction(k) >= 0.875, k + " recovered " + a.recoveredFraction(k));
        }
        assertTrue(a.recoveredFraction(null) >= 0.95, "recovered " + a.recoveredFraction(null));
        assertTrue(a.meanBaseCos() >= 0.9 && a.meanFtCos() >= 0.9, "mean max cosine per half: base "
                + a.meanBaseCos() + ", finetuned " + a.meanFtCos());
        for (int i = 0; i < data.nShared; i++) {
            double c = cos[a.best()[i]];
            if (i < data.nRotated) {
                assertEquals(Math.cos(data.rotation), c, 0.1, "rotated shared feature " + i + ": latent's base/ft cosine");
            } else {
                assertTrue(c >= 0.95, "shared feature " + i + ": latent's base/ft cosine " + c);
            }
        }
        // Live latents by category ~ 96 / 16 / 16; surplus capacity may only duplicate shared features (ReLU keeps
        // some duplicates alive; BatchTopK lets them die), never invent exclusive ones.
        int[] c = a.liveCounts();
        int base = c[Crosscoder.Category.BASE_ONLY.ordinal()], shared = c[Crosscoder.Category.SHARED.ordinal()];
        int ft = c[Crosscoder.Category.FINETUNED_ONLY.ordinal()], other = c[Crosscoder.Category.OTHER.ordinal()];
        assertTrue(base >= BASE - 2 && base <= BASE + 2, "live base-only latents " + base);
        assertTrue(ft >= FT - 2 && ft <= FT + 2, "live finetuned-only latents " + ft);
        assertTrue(shared >= 0.9 * SHARED && shared <= 2 * SHARED, "live shared latents " + shared);
        assertTrue(other <= 3, "live latents of no category " + other);
    }

    /** How the trained crosscoder's latents line up with the true features. */
    record Analysis(Crosscoder cc, boolean[] live, int[] best, double[] bestCos, double meanBaseCos, double meanFtCos,
                    SyntheticPair data) {

        static Analysis of(SyntheticPair data, SparseCoder sae) {
            Crosscoder cc = Crosscoder.of(sae);
            int dSae = sae.cfg().dSae(), w = 2 * DM;
            float[] dec = sae.weights().get(SaeWeights.W_DEC).toFloatArray();
            // live: fires on at least 0.1% of 8192 held-out rows (the rarest feature fires on 0.5%)
            boolean[] live = new boolean[dSae];
            try (NDManager m = NDManager.newBaseManager()) {
                int rows = 8192;
                float[] f = sae.encode(data.batch(1_000_000, rows, m)).toFloatArray();
                int[] fired = new int[dSae];
                for (int i = 0; i < rows; i++) for (int j = 0; j < dSae; j++) if (f[i * dSae + j] > 0) fired[j]++;
                for (int j = 0; j < dSae; j++) live[j] = fired[j] >= rows / 1000;
            }
            int n = data.nFeatures();
            int[] best = new int[n];
            double[] bestCos = new double[n];
            double sumBase = 0, sumFt = 0;
            int nBase = 0, nFt = 0;
            for (int i = 0; i < n; i++) {
                float[] a = data.baseDirection(i), b = data.finetunedDirection(i);
                float[] full = new float[w];
                if (a != null) System.arraycopy(a, 0, full, 0, DM);
                if (b != null) System.arraycopy(b, 0, full, DM, DM);
                bestCos[i] = -2;
                double maxA = -2, maxB = -2;
                for (int l = 0; l < dSae; l++) {
                    double c = cosine(full, 0, dec, l * w, w);
                    if (c > bestCos[i]) {
                        bestCos[i] = c;
                        best[i] = l;
                    }
                    if (a != null) maxA = Math.max(maxA, cosine(a, 0, dec, l * w, DM));
                    if (b != null) maxB = Math.max(maxB, cosine(b, 0, dec, l * w + DM, DM));
                }
                if (a != null) {
                    sumBase += maxA;
                    nBase++;
                }
                if (b != null) {
                    sumFt += maxB;
                    nFt++;
                }
            }
            return new Analysis(cc, live, best, bestCos, sumBase / nBase, sumFt / nFt, data);
        }

        /** The category a feature of this kind should land in. */
        static Crosscoder.Category expected(SyntheticPair.Kind k) {
            return switch (k) {
                case SHARED -> Crosscoder.Category.SHARED;
                case BASE_ONLY -> Crosscoder.Category.BASE_ONLY;
                case FINETUNED_ONLY -> Crosscoder.Category.FINETUNED_ONLY;
            };
        }

        /** Feature recovered: its best latent points its way (cosine >= 0.9) and has the feature's category. */
        boolean recovered(int i) {
            return bestCos[i] >= 0.9 && cc.category(best[i]) == expected(data.kind(i));
        }

        /** Fraction of the features of kind {@code k} (all features when null) recovered. */
        double recoveredFraction(SyntheticPair.Kind k) {
            int n = 0, ok = 0;
            for (int i = 0; i < best.length; i++) {
                if (k != null && data.kind(i) != k) continue;
                n++;
                if (recovered(i)) ok++;
            }
            return (double) ok / n;
        }

        /** Category counts among live latents. */
        int[] liveCounts() {
            int[] c = new int[Crosscoder.Category.values().length];
            for (int l = 0; l < live.length; l++) if (live[l]) c[cc.category(l).ordinal()]++;
            return c;
        }

        @Override
        public String toString() {
            StringBuilder s = new StringBuilder();
            double[] r = cc.relativeNorms(), cos = cc.cosineSimilarities();
            for (SyntheticPair.Kind k : SyntheticPair.Kind.values()) {
                double minR = 1, maxR = 0, meanCos = 0;
                int n = 0;
                for (int i = 0; i < best.length; i++) {
                    if (data.kind(i) != k) continue;
                    minR = Math.min(minR, r[best[i]]);
                    maxR = Math.max(maxR, r[best[i]]);
                    meanCos += bestCos[i];
                    n++;
                }
                s.append(String.format(java.util.Locale.ROOT, "  %-14s recovered %5.1f%%, best-latent r in [%.3f, %.3f],"
                        + " mean best cosine %.4f%n", k, 100 * recoveredFraction(k), minR, maxR, meanCos / n));
            }
            double rotCos = 0, plainCos = 0;
            for (int i = 0; i < data.nShared; i++) {
                if (i < data.nRotated) rotCos += cos[best[i]]; else plainCos += cos[best[i]];
            }
            for (int i = 0; i < best.length; i++) {
                if (!recovered(i)) {
                    s.append(String.format(java.util.Locale.ROOT, "  missed feature %d (%s, frequency %.4f): best latent %d,"
                            + " cosine %.3f, r %.3f%n", i, data.kind(i), data.frequency(i), best[i], bestCos[i], r[best[i]]));
                }
            }
            int[] c = liveCounts();
            int nLive = 0;
            for (boolean b : live) if (b) nLive++;
            s.append(String.format(java.util.Locale.ROOT, "  shared latents' base/ft decoder cosine: rotated %.3f (truth "
                    + "%.3f), unrotated %.3f%n", rotCos / data.nRotated, Math.cos(data.rotation),
                    plainCos / (data.nShared - data.nRotated)));
            s.append(String.format(java.util.Locale.ROOT, "  mean max cosine per half: base %.4f, finetuned %.4f%n",
                    meanBaseCos, meanFtCos));
            s.append(String.format(java.util.Locale.ROOT, "  live latents %d of %d: base-only %d, shared %d, "
                    + "finetuned-only %d, other %d; %s", nLive, live.length, c[0], c[1], c[2], c[3], cc));
            return s.toString();
        }
    }

    static double cosine(float[] a, int ao, float[] b, int bo, int n) {
        double dot = 0, na = 0, nb = 0;
        for (int j = 0; j < n; j++) {
            dot += (double) a[ao + j] * b[bo + j];
            na += (double) a[ao + j] * a[ao + j];
            nb += (double) b[bo + j] * b[bo + j];
        }
        return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
    }
}
