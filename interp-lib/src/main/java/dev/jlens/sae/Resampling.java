package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.util.Tensors;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Anthropic-style resampling of dead latents (Towards Monosemanticity): each dead latent gets, as its decoder row, the
 * direction of an input of the batch drawn with probability proportional to its squared reconstruction error (minus
 * {@code b_dec}); its encoder column is that direction scaled to 0.2 times the mean encoder norm of the live latents;
 * its encoder bias and its Adam moments are reset.
 */
final class Resampling {
    private Resampling() {}

    /**
     * Resamples the dead latents of {@code s} from the batch of step {@code i}: {@code raw} as read, {@code x} in
     * normalised units (on the step's manager).
     */
    static void resample(DictionarySlot s, NDArray raw, NDArray x, int i, SaeTrainConfig cfg) {
        int dSae = s.sae.cfg().dSae(), dIn = s.sae.cfg().dIn();
        List<Integer> dead = s.latents.dead(cfg.deadAfterTokens());
        if (dead.isEmpty()) return;
        SaeWeights w = s.sae.weights();
        NDManager mgr = x.getManager();
        try (NDScope scope = new NDScope()) {
            float[] err = raw.sub(s.sae.reconstruct(raw)).square().sum(new int[]{1}).toFloatArray();
            float[] xs = x.toFloatArray();
            float[] bDec = w.get(SaeWeights.B_DEC).toFloatArray();
            double[] cum = new double[err.length];
            double acc = 0;
            for (int r = 0; r < err.length; r++) cum[r] = acc += err[r];
            SplittableRandom rng = new SplittableRandom(cfg.seed() * 0x9E3779B97F4A7C15L + i);
            float[] dirs = new float[dSae * dIn];
            float[] keep = new float[dSae];
            Arrays.fill(keep, 1f);
            for (int j : dead) {
                int row = pick(cum, acc, rng);
                double ss = 0;
                for (int d = 0; d < dIn; d++) {
                    float v = xs[row * dIn + d] - bDec[d];
                    dirs[j * dIn + d] = v;
                    ss += (double) v * v;
                }
                float inv = (float) (1 / Math.sqrt(Math.max(ss, 1e-24)));
                for (int d = 0; d < dIn; d++) dirs[j * dIn + d] *= inv;
                keep[j] = 0f;
                s.latents.revive(j);
            }
            NDArray keepF = Tensors.owned(mgr.create(keep));
            NDArray dirsFD = Tensors.owned(mgr.create(dirs, new Shape(dSae, dIn)));
            NDArray wEnc = w.get(SaeWeights.W_ENC);
            NDArray encNorms = wEnc.norm(new int[]{0});
            float alive = keepF.sum().getFloat();
            float encScale = alive > 0 ? 0.2f * encNorms.mul(keepF).sum().getFloat() / alive : 0.2f;
            w.get(SaeWeights.W_DEC).muli(keepF.expandDims(1)).addi(dirsFD);
            wEnc.muli(keepF.expandDims(0)).addi(dirsFD.transpose().mul(encScale));
            w.get(SaeWeights.B_ENC).muli(keepF);
            for (String name : List.of(SaeWeights.W_DEC, SaeWeights.W_ENC, SaeWeights.B_ENC)) {
                NDArray mask = name.equals(SaeWeights.W_DEC) ? keepF.expandDims(1)
                        : name.equals(SaeWeights.W_ENC) ? keepF.expandDims(0) : keepF;
                s.opt.expAvg(name).muli(mask);
                s.opt.expAvgSq(name).muli(mask);
            }
        }
    }

    /** A row index drawn with probability proportional to its share of {@code total} ({@code cum}: running sums). */
    private static int pick(double[] cum, double total, SplittableRandom rng) {
        if (!(total > 0)) return rng.nextInt(cum.length);
        double u = rng.nextDouble() * total;
        int lo = 0, hi = cum.length - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (cum[mid] > u) hi = mid; else lo = mid + 1;
        }
        return lo;
    }
}
