package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.util.Tensors;

/**
 * Decoder-norm bookkeeping shared by the architectures. A dictionary's decoder row may be held at unit norm (TopK,
 * BatchTopK, Matryoshka: the norm over all sources for a crosscoder, the convention of {@link SaeWeights#init}), or
 * left free with its norm inside the sparsity penalty (ReLU).
 */
final class Decoders {
    private static final NDArray EPS = Tensors.scalar(1e-12f);

    private Decoders() {}

    /**
     * Per-latent weight of the sparsity penalty and of the BatchTopK ranking: the decoder norm, summed over sources
     * for a crosscoder (Anthropic's crosscoder L1). {@code [dSae]}; differentiable.
     */
    static NDArray sparsityNorms(SaeWeights w, SaeConfig cfg) {
        return cfg.nSources() == 1 ? w.decoderNorms() : w.decoderNormsPerSource(cfg.nSources()).sum(new int[]{1});
    }

    /**
     * Removes from {@code W_dec}'s gradient the component parallel to each row, so that a step moves the rows along
     * the unit sphere (SAELens's and dictionary_learning's {@code remove_gradient_parallel_to_decoder_directions}).
     */
    static void removeParallelGradient(SaeWeights w) {
        NDArray wDec = w.get(SaeWeights.W_DEC);
        try (NDScope scope = new NDScope(); NDArray g = wDec.getGradient()) {
            NDArray sq = wDec.square().sum(new int[]{1}, true).maximum(EPS);
            NDArray parallel = g.mul(wDec).sum(new int[]{1}, true).div(sq);   // [dSae, 1]
            g.subi(parallel.mul(wDec));
        }
    }

    /** Scales every decoder row back to unit norm (in place). */
    static void renormalise(SaeWeights w) {
        NDArray wDec = w.get(SaeWeights.W_DEC);
        try (NDScope scope = new NDScope()) {
            wDec.divi(wDec.norm(new int[]{1}, true).maximum(EPS));
        }
    }
}
