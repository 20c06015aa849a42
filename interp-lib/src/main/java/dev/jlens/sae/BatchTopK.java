package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.nn.Activation;

/**
 * The batch-level top-k rule and its inference threshold, shared by {@link BatchTopKSae} and {@link MatryoshkaSae}.
 *
 * <p>Training keeps the {@code k * B} largest scores of the batch, a score being the ReLU'd pre-activation (times
 * the summed per-source decoder norm for a crosscoder, whose rows do not share one norm per source). The smallest kept
 * score of each batch feeds a running estimate (EMA with {@code momentum}, seeded by the first batch, as in
 * dictionary_learning); it is stored in the {@code threshold} tensor as a per-latent JumpReLU threshold on the
 * pre-activation ({@code estimate / norm_i}, the estimate itself for an SAE), so inference is
 * {@code f = pre * (pre > threshold)}.
 */
final class BatchTopK {
    private final double momentum;
    private float estimate;

    BatchTopK(double momentum, SaeWeights w, SaeConfig cfg) {
        this.momentum = momentum;
        this.estimate = fromThreshold(w, cfg);
    }

    /** Takes the estimate back from the threshold tensor, after the weights were overwritten with saved ones. */
    void recover(SaeWeights w, SaeConfig cfg) {
        estimate = fromThreshold(w, cfg);
    }

    /** The estimate a saved threshold tensor encodes (0 when none has been made yet). */
    private static float fromThreshold(SaeWeights w, SaeConfig cfg) {
        if (!w.has(SaeWeights.THRESHOLD)) return 0f;
        try (NDScope scope = new NDScope()) {
            NDArray th = w.get(SaeWeights.THRESHOLD);
            if (cfg.nSources() == 1) return th.max().getFloat();
            return th.mul(Decoders.sparsityNorms(w, cfg)).mean().getFloat();
        }
    }

    /** The running estimate of the smallest kept score. */
    float estimate() {
        return estimate;
    }

    /**
     * The training activations {@code [B, dSae]}: ReLU'd pre-activations at the batch's {@code k * B} largest scores,
     * zero elsewhere; and the smallest kept score (a detached scalar).
     */
    static NDArray[] select(NDArray preBF, int k, SaeWeights w, SaeConfig cfg) {
        NDArray relu = Activation.relu(preBF);
        NDArray score = cfg.nSources() == 1 ? relu : relu.mul(Decoders.sparsityNorms(w, cfg));
        NDArray flat = score.stopGradient().reshape(-1);
        int keep = (int) Math.min(flat.size(), (long) k * preBF.getShape().get(0));
        NDList top = flat.topK(keep, -1, true, false);
        NDArray mask = flat.zerosLike().scatter(top.get(1), top.get(0).onesLike(), 0).reshape(preBF.getShape());
        NDArray kept = top.get(0);
        // smallest positive kept score (a batch whose top k*B includes zeros has fewer positives than k*B)
        NDArray positives = NDArrays.where(kept.gt(0), kept, kept.onesLike().mul(Float.POSITIVE_INFINITY));
        return new NDArray[]{relu.mul(mask), positives.min()};
    }

    /** Folds a batch's smallest kept score into the estimate and writes the threshold tensor. */
    void update(NDArray minKeptScore, SaeWeights w, SaeConfig cfg) {
        float m = minKeptScore.getFloat();
        if (!Float.isFinite(m)) return;   // nothing positive was kept
        estimate = estimate <= 0 ? m : (float) (momentum * estimate + (1 - momentum) * m);
        if (!w.has(SaeWeights.THRESHOLD)) return;
        NDArray th = w.get(SaeWeights.THRESHOLD);
        try (NDScope scope = new NDScope()) {
            if (cfg.nSources() == 1) {
                th.set(new NDIndex(":"), estimate);
            } else {
                th.set(new NDIndex(":"), Decoders.sparsityNorms(w, cfg).maximum(1e-12f).pow(-1).mul(estimate));
            }
        }
    }

    /** JumpReLU with the stored threshold: {@code pre * (pre > threshold)}. */
    static NDArray encode(NDArray preBF, SaeWeights w, String architecture) {
        if (!w.has(SaeWeights.THRESHOLD)) {
            throw new IllegalStateException("this " + architecture + " dictionary has no 'threshold' tensor, which its "
                    + "inference rule needs; train it with SaeTrainer or load weights that include the threshold");
        }
        return preBF.mul(preBF.gt(w.get(SaeWeights.THRESHOLD)));
    }
}
