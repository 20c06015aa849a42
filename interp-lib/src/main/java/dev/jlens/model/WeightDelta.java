package dev.jlens.model;

import ai.djl.ndarray.NDArray;

import java.util.Map;

/**
 * A change to some weights that a {@link HookedTransformer} applies on every forward pass (a LoRA adapter's
 * {@code scale * B A}): the pass reads {@code W + delta} for each named parameter, the parameters themselves stay as
 * they are. Added with {@link HookedTransformer#addWeightDelta}.
 */
@FunctionalInterface
public interface WeightDelta {

    /**
     * Parameter name ({@link HookedTransformer#parameters()}) to its delta in the parameter's shape and layout,
     * computed now: inside the forward pass's scope (closed after it) and, when training, on autograd's tape. An
     * empty map changes nothing (e.g. an adapter merged into the weights).
     */
    Map<String, NDArray> deltas();
}
