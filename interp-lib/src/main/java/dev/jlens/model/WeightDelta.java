package dev.jlens.model;

import dev.jlens.model.arch.LowRank;

import java.util.Map;

/**
 * A low-rank change to some linear layers that a {@link HookedTransformer} applies on every forward pass (a LoRA
 * adapter's {@code (alpha / r) B A}): each adapted layer's output gains {@code (x a^T) b^T}, as if its weight were
 * {@code W + b a}, while the parameters themselves stay as they are. Added with
 * {@link HookedTransformer#addWeightDelta}.
 */
@FunctionalInterface
public interface WeightDelta {

    /**
     * Parameter name ({@link HookedTransformer#parameters()}, a linear layer's weight) to its low-rank change,
     * computed now: inside the forward pass's scope (closed after it) and, when training, on autograd's tape. An
     * empty map changes nothing (e.g. an adapter merged into the weights).
     */
    Map<String, LowRank> deltas();
}
