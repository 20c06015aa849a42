package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;

import java.util.Optional;

/**
 * What one forward pass needs besides the weights: token ids {@code [batch, pos]}, their positions
 * {@code [batch, pos]}, the additive attention mask {@code [batch, 1, q_pos, k_pos]} (0 or -inf; keys include
 * any cached ones), and the KV cache when generating step by step.
 */
public record ForwardInputs(NDArray tokens, NDArray positions, NDArray mask, Optional<KvCache> cache) {

    public int batch() {
        return (int) tokens.getShape().get(0);
    }

    public int pos() {
        return (int) tokens.getShape().get(1);
    }
}
