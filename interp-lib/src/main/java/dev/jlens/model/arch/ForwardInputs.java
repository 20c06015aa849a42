package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;

import java.util.Optional;

/**
 * What one forward pass needs besides the weights: token ids {@code [batch, pos]}, their positions
 * {@code [batch, pos]}, the additive attention mask {@code [batch, 1, q_pos, k_pos]} (0 or -inf; keys include
 * any cached ones), the KV cache when generating step by step, and where the pass starts when it resumes mid-model.
 */
public record ForwardInputs(NDArray tokens, NDArray positions, NDArray mask, Optional<KvCache> cache,
                            Optional<Start> start, boolean lastPositionOnly) {

    /** Inputs of a whole forward pass. */
    public ForwardInputs(NDArray tokens, NDArray positions, NDArray mask, Optional<KvCache> cache) {
        this(tokens, positions, mask, cache, Optional.empty(), false);
    }

    /** Inputs of a pass that may resume mid-model, returning every position's logits. */
    public ForwardInputs(NDArray tokens, NDArray positions, NDArray mask, Optional<KvCache> cache,
                         Optional<Start> start) {
        this(tokens, positions, mask, cache, start, false);
    }

    /**
     * Whether block {@code layer} of {@code nLayers} runs its query and everything after it for the last position
     * only: the pass asked for the last position's logits alone ({@code lastPositionOnly}), this is the last block,
     * and there is more than one position. Its keys and values (and the cache) still cover every position, so the
     * last position's output equals a full pass's; the block's hooks from the attention scores on see one position.
     */
    public boolean lastOnlyAt(int layer, int nLayers) {
        return lastPositionOnly && layer == nLayers - 1 && pos() > 1;
    }

    /**
     * Where a pass resumes: at block {@code layer}'s input with the residual stream {@code resid}
     * {@code [batch, pos, d_model]}; the embeddings and earlier blocks are skipped.
     */
    public record Start(int layer, NDArray resid) {}

    /** The first block this pass runs. */
    public int firstLayer() {
        return start.map(Start::layer).orElse(0);
    }

    public int batch() {
        return (int) tokens.getShape().get(0);
    }

    public int pos() {
        return (int) tokens.getShape().get(1);
    }
}
