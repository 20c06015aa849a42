package dev.jlens.drift;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.sae.DictionaryMatch;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import dev.jlens.util.SplitMix;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.QRDecomposition;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Known answers for drift across layers on synthetic activations: layer l is sparse features on orthonormal
 * directions plus a little dense noise; layer l+1 is a known rotation R of layer l plus small noise, with the
 * dictionary at l+1 holding the rotated directions in a planted order. The map must recover R, matching after the map
 * must recover the order, and the linear map must explain all of each feature's change; a planted non-linear feature
 * (its amplitude ReLU'd at l+1) must leave a measured remainder.
 */
class LayerDriftTest {
    static final int D = 32, K = 16, N = 8000;
    static final float THRESHOLD = 0.25f;

    /** A random rotation of R^d (Q of a Gaussian matrix's QR). */
    static double[][] rotation(int d, SplittableRandom rng) {
        double[][] g = new double[d][d];
        for (double[] row : g) for (int j = 0; j < d; j++) row[j] = SplitMix.gaussian(rng);
        return new QRDecomposition(new Array2DRowRealMatrix(g, false)).getQ().getData();
    }

    static float[] times(double[][] r, float[] v) {
        float[] o = new float[r.length];
        for (int i = 0; i < r.length; i++) {
            double s = 0;
            for (int j = 0; j < v.length; j++) s += r[i][j] * v[j];
            o[i] = (float) s;
        }
        return o;
    }

    /** A JumpReLU dictionary with decoder rows {@code dirs}, encoder their transpose, threshold {@link #THRESHOLD}. */
    static SparseCoder dictionary(float[][] dirs) {
        int k = dirs.length, d = dirs[0].length;
        SaeConfig cfg = SaeConfig.of(d, k, new SaeConfig.JumpRelu(1e-3));
        try (NDManager m = NDManager.newBaseManager()) {
            float[] dec = new float[k * d], enc = new float[d * k];
            for (int i = 0; i < k; i++) {
                for (int j = 0; j < d; j++) {
                    dec[i * d + j] = dirs[i][j];
                    enc[j * k + i] = dirs[i][j];
                }
            }
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put(SaeWeights.W_ENC, m.create(enc, new Shape(d, k)));
            t.put(SaeWeights.B_ENC, m.zeros(new Shape(k)));
            t.put(SaeWeights.W_DEC, m.create(dec, new Shape(k, d)));
            t.put(SaeWeights.B_DEC, m.zeros(new Shape(d)));
            float[] th = new float[k];
            java.util.Arrays.fill(th, THRESHOLD);
            t.put(SaeWeights.THRESHOLD, m.create(th));
            return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
        }
    }

    /** The planted world: directions, rotation, order of the l+1 dictionary, and both layers' rows. */
    record World(float[][] dirs, double[][] r, int[] perm, float[] xL, float[] xNext) {}

    /**
     * {@code nonLinear}: feature 0's amplitude at l+1 is {@code 2 * ReLU(a - 1)} instead of {@code a} (it switches off
     * for small amplitudes), every other feature is rotated linearly.
     */
    static World world(long seed, boolean nonLinear) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[][] q = rotation(D, rng);
        float[][] dirs = new float[K][D];
        for (int i = 0; i < K; i++) for (int j = 0; j < D; j++) dirs[i][j] = (float) q[j][i];   // orthonormal
        double[][] r = rotation(D, rng);
        int[] perm = new int[K];
        for (int i = 0; i < K; i++) perm[i] = i;
        for (int i = K - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        float[] xL = new float[N * D], xNext = new float[N * D];
        float[][] rotated = new float[K][];
        for (int i = 0; i < K; i++) rotated[i] = times(r, dirs[i]);
        for (int n = 0; n < N; n++) {
            float[] x = new float[D], y = new float[D];
            for (int j = 0; j < D; j++) x[j] = (float) (0.03 * SplitMix.gaussian(rng));   // dense background
            float[] yBg = times(r, x);
            System.arraycopy(yBg, 0, y, 0, D);
            for (int i = 0; i < K; i++) {
                if (rng.nextDouble() >= 0.15) continue;
                double a = 0.5 + rng.nextDouble();
                double b = nonLinear && i == 0 ? 2 * Math.max(0, a - 1) : a;
                for (int j = 0; j < D; j++) {
                    x[j] += (float) (a * dirs[i][j]);
                    y[j] += (float) (b * rotated[i][j]);
                }
            }
            for (int j = 0; j < D; j++) {
                xL[n * D + j] = x[j];
                xNext[n * D + j] = y[j] + (float) (0.01 * SplitMix.gaussian(rng));
            }
        }
        return new World(dirs, r, perm, xL, xNext);
    }

    static SparseCoder[] dictionaries(World w) {
        float[][] next = new float[K][];
        for (int i = 0; i < K; i++) next[w.perm()[i]] = times(w.r(), w.dirs()[i]);
        return new SparseCoder[]{dictionary(w.dirs()), dictionary(next)};
    }

    @Test
    void aRotationIsRecoveredAndExplainsAllTheDrift() {
        World w = world(1, false);
        LayerMap map = LayerMap.fit(w.xL(), D, w.xNext(), D, 1e-6);
        double err = 0, norm = 0;
        double[][] a = map.matrix();
        for (int i = 0; i < D; i++) {
            for (int j = 0; j < D; j++) {
                err += (a[i][j] - w.r()[i][j]) * (a[i][j] - w.r()[i][j]);
                norm += w.r()[i][j] * w.r()[i][j];
            }
        }
        double rel = Math.sqrt(err / norm);
        assertTrue(rel < 0.05, "||A - R|| / ||R|| = " + rel);
        assertTrue(map.fit().r2() > 0.99, map.toString());
        assertTrue(map.fit().driftExplained() > 0.99, map.toString());
        assertTrue(map.fit().identityR2() < 0.5, "a random rotation is far from the identity: " + map);

        SparseCoder[] sae = dictionaries(w);
        try (SparseCoder l = sae[0]; SparseCoder next = sae[1]) {
            LayerDrift drift = LayerDrift.measure("l -> l+1", l, next, map, w.xL(), w.xNext(),
                    DictionaryMatch.Options.defaults(), true);
            assertArrayEquals(w.perm(), drift.match().mapping().orElseThrow(), "matching A d_l to d_l+1 recovers the planted order");
            LayerDrift.Summary s = drift.summary();
            System.out.println("LayerDriftTest rotation: " + s);
            System.out.println(drift.toTable().first(5));
            assertEquals(1.0, s.matchedFraction(), 0.0);
            assertTrue(s.medianMappedCosine() > 0.99, s.toString());
            assertTrue(s.medianRawCosine() < 0.5, "the raw decoders of a random rotation are far apart: " + s);
            assertTrue(s.linearExplained() > 0.98, s.toString());
            assertTrue(s.identityExplained() < 0.5, s.toString());
            for (LayerDrift.PairDrift p : drift.pairs()) {
                assertTrue(p.tokens() > 0.1 * N, "latent " + p.latentL() + " fires on " + p.tokens());
                assertTrue(p.nonLinearRemainder() < 0.02, "pair " + p);
                assertEquals(1.0, p.mapGain(), 0.05, "a rotation keeps lengths: " + p);
                assertTrue(p.scaledExplained() >= p.linearExplained() - 1e-9, "the best scale can only help: " + p);
            }
            // Without the map the raw decoders carry no match above the threshold.
            LayerDrift raw = LayerDrift.measure("raw", l, next, map, w.xL(), w.xNext(),
                    DictionaryMatch.Options.defaults().minCosine(0.9), false);
            assertEquals(0, raw.pairs().size(), raw.toString());
            assertEquals(2, LayerDrift.summaryTable(java.util.List.of(drift, raw)).rowCount());
            assertEquals(K, drift.chart().getSeriesMap().values().iterator().next().getXData().length);
        }
    }

    @Test
    void aPlantedNonLinearFeatureLeavesARemainder() {
        World w = world(2, true);
        LayerMap map = LayerMap.fit(w.xL(), D, w.xNext(), D, 1e-6);
        SparseCoder[] sae = dictionaries(w);
        try (SparseCoder l = sae[0]; SparseCoder next = sae[1]) {
            LayerDrift drift = LayerDrift.measure("l -> l+1", l, next, map, w.xL(), w.xNext(),
                    DictionaryMatch.Options.defaults(), true);
            assertArrayEquals(w.perm(), drift.match().mapping().orElseThrow(), "the ReLU'd feature keeps its direction, so it still matches");
            System.out.println("LayerDriftTest non-linear: " + drift.summary());
            for (LayerDrift.PairDrift p : drift.pairs()) {
                System.out.printf("  latent %d: linear explained %.4f, identity %.4f, co-firing %.3f%n", p.latentL(),
                        p.linearExplained(), p.identityExplained(), p.coFiring());
                if (p.latentL() == 0) {
                    assertTrue(p.nonLinearRemainder() > 0.2, "the ReLU'd feature's remainder: " + p);
                    assertTrue(p.coFiring() < 0.6, "it is off at l+1 for small amplitudes: " + p);
                    assertTrue(p.mappedCosine() > 0.95, "its direction is still linear: " + p);
                } else {
                    assertTrue(p.nonLinearRemainder() < 0.02, "a linear feature: " + p);
                }
            }
            // Pooled over all pairs the one non-linear feature is a small share: the remainder is visible per pair.
            LayerDrift.PairDrift relu = drift.pairs().get(0);
            assertTrue(drift.summary().medianLinearExplained() > 0.98, drift.summary().toString());
            assertTrue(relu.linearExplained() < drift.summary().medianLinearExplained() - 0.2, relu.toString());
        }
    }
}
