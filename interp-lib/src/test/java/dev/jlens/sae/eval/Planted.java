package dev.jlens.sae.eval;

import dev.jlens.probe.ProbeTask;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.probe.ProbeData;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import dev.jlens.util.Tensors;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * Activations with a planted hierarchy and two hand-built dictionaries over them. Orthonormal directions in
 * {@link #D} dimensions: a parent {@code P}, children {@code C_0..C_30}, distractors {@code D_0..D_9}. Half the tokens
 * hold the parent: {@code a P + b C_j} (child 0 with probability 0.4 and a weaker own direction, else one of the 30
 * others); the rest are one distractor {@code c D_m}; a little Gaussian noise on everything.
 *
 * <p>{@link #clean()}: one latent per direction, the parent latent fires on every parent token. {@link #absorbing()}:
 * children 1..30 have absorbed the parent (their decoder rows are {@code (P + C_j)/sqrt 2} and the parent latent's
 * encoder is inhibited by them), so the parent latent fires only on child-0 tokens: 60% of the parent's tokens are
 * absorbed, each by a latent that adds too little F1 to count as a split latent.
 */
final class Planted {
    static final int D = 64, CHILDREN = 31, DISTRACTORS = 10, LATENTS = 1 + CHILDREN + DISTRACTORS;
    static final int PARENT_LATENT = 0;
    static final double NOISE = 0.01, THRESHOLD = 0.15;

    final float[][] dirs;   // [LATENTS][D], orthonormal: 0 = P, 1..31 = C_j, 32.. = D_m
    final ProbeData train, test;
    final int[] childOf;    // per row of train ++ test: child index, or -1 for a distractor token

    Planted(long seed, int nTrain, int nTest) {
        SplittableRandom r = new SplittableRandom(seed);
        dirs = orthonormal(LATENTS, D, r);
        int n = nTrain + nTest;
        float[][] x = new float[n][D];
        int[] labels = new int[n], types = new int[n];
        childOf = new int[n];
        for (int i = 0; i < n; i++) {
            if (r.nextDouble() < 0.5) {
                int j = r.nextDouble() < 0.4 ? 0 : 1 + r.nextInt(CHILDREN - 1);
                double a = 0.8 + 0.4 * r.nextDouble(), b = (j == 0 ? 0.5 : 1.0) * (0.8 + 0.4 * r.nextDouble());
                add(x[i], dirs[0], a);
                add(x[i], dirs[1 + j], b);
                labels[i] = 1;
                types[i] = j;
                childOf[i] = j;
            } else {
                int m = r.nextInt(DISTRACTORS);
                add(x[i], dirs[1 + CHILDREN + m], 0.8 + 0.4 * r.nextDouble());
                types[i] = 100 + m;
                childOf[i] = -1;
            }
            for (int k = 0; k < D; k++) x[i][k] += (float) (NOISE * gaussian(r));
        }
        int[] groups = new int[n];
        for (int i = 0; i < n; i++) groups[i] = i;
        ProbeData all = new ProbeData(x, labels, groups, Optional.of(types), 2);
        train = all.subset(range(0, nTrain));
        test = all.subset(range(nTrain, n));
    }

    ProbeTask parentTask() {
        return new ProbeTask("parent", train, test);
    }

    /** Child {@code j}'s tokens against everything else. */
    ProbeTask childTask(int j) {
        return new ProbeTask("child" + j, relabel(train, j), relabel(test, j));
    }

    private static ProbeData relabel(ProbeData d, int child) {
        int[] y = new int[d.size()];
        for (int i = 0; i < y.length; i++) y[i] = d.labels()[i] == 1 && d.types().get()[i] == child ? 1 : 0;
        return d.withLabels(y);
    }

    /** One ReLU latent per planted direction, encoder = decoder, a small threshold against the noise. */
    SparseCoder clean() {
        float[][] enc = new float[LATENTS][], dec = new float[LATENTS][];
        for (int i = 0; i < LATENTS; i++) {
            enc[i] = dirs[i].clone();
            dec[i] = dirs[i].clone();
        }
        return dictionary(enc, dec);
    }

    /** Children 1..30 absorb the parent: decoder {@code (P + C_j)/sqrt 2}; the parent latent is silent on them. */
    SparseCoder absorbing() {
        float[][] enc = new float[LATENTS][], dec = new float[LATENTS][];
        for (int i = 0; i < LATENTS; i++) {
            enc[i] = dirs[i].clone();
            dec[i] = dirs[i].clone();
        }
        for (int j = 2; j <= CHILDREN; j++) {
            add(enc[PARENT_LATENT], dirs[j], -2);              // parent latent inhibited by absorbed children
            enc[j] = scaled(dirs[j], Math.sqrt(2));
            dec[j] = scaled(dirs[j], 1 / Math.sqrt(2));
            add(dec[j], dirs[0], 1 / Math.sqrt(2));
        }
        return dictionary(enc, dec);
    }

    /**
     * A ReLU dictionary with these encoder and decoder rows ({@code [latents][d]}), encoder bias {@code -THRESHOLD},
     * no decoder bias.
     */
    static SparseCoder dictionary(float[][] encRows, float[][] decRows) {
        int d = encRows[0].length, n = encRows.length;
        SaeConfig cfg = SaeConfig.of(d, n, new SaeConfig.Relu(0));
        float[] wEnc = new float[d * n], wDec = new float[n * d], bEnc = new float[n];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < d; k++) {
                wEnc[k * n + i] = encRows[i][k];
                wDec[i * d + k] = decRows[i][k];
            }
        }
        Arrays.fill(bEnc, (float) -THRESHOLD);
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put(SaeWeights.W_ENC, Tensors.owned(m.create(wEnc, new Shape(d, n))));
            t.put(SaeWeights.B_ENC, Tensors.owned(m.create(bEnc)));
            t.put(SaeWeights.W_DEC, Tensors.owned(m.create(wDec, new Shape(n, d))));
            t.put(SaeWeights.B_DEC, Tensors.owned(m.create(new float[d])));
            return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
        }
    }

    static float[][] orthonormal(int n, int d, SplittableRandom r) {
        float[][] out = new float[n][d];
        double[][] q = new double[n][d];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < d; k++) q[i][k] = gaussian(r);
            for (int j = 0; j < i; j++) {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += q[i][k] * q[j][k];
                for (int k = 0; k < d; k++) q[i][k] -= dot * q[j][k];
            }
            double norm = 0;
            for (int k = 0; k < d; k++) norm += q[i][k] * q[i][k];
            norm = Math.sqrt(norm);
            for (int k = 0; k < d; k++) {
                q[i][k] /= norm;
                out[i][k] = (float) q[i][k];
            }
        }
        return out;
    }

    private static void add(float[] x, float[] dir, double c) {
        for (int k = 0; k < x.length; k++) x[k] += (float) (c * dir[k]);
    }

    private static float[] scaled(float[] v, double c) {
        float[] o = new float[v.length];
        for (int k = 0; k < v.length; k++) o[k] = (float) (c * v[k]);
        return o;
    }

    static double gaussian(SplittableRandom r) {
        double u = 1 - r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    private static int[] range(int from, int to) {
        int[] o = new int[to - from];
        for (int i = 0; i < o.length; i++) o[i] = from + i;
        return o;
    }
}
