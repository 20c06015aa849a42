package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jlens.hook.HookRegistry;

import java.util.Map;

/**
 * One transformer family: its hook points, its weights (named as in its Hugging Face checkpoints) and its forward
 * pass. Each family lives in one file; shared code never branches on the family.
 */
public sealed interface Architecture permits Gpt2, Llama {

    /** The implementation for {@code cfg.family()}, declaring its hook points into {@code hooks}. */
    static Architecture create(ModelConfig cfg, HookRegistry hooks) {
        return switch (cfg.family()) {
            case GPT2 -> new Gpt2(cfg, hooks);
            case LLAMA -> new Llama(cfg, hooks);
        };
    }

    ModelConfig cfg();

    /** Loads every tensor from a checkpoint; missing tensors or wrong shapes throw naming them. */
    void load(Weights weights);

    /** Fresh weights for training from scratch, deterministic in {@code seed}. */
    void initRandom(NDManager manager, long seed);

    /** The trainable tensors, by stable name (leaves for autograd). */
    Map<String, NDArray> parameters();

    /** Tensors under their Hugging Face checkpoint names, for saving (may create views on {@code scratch}). */
    Map<String, NDArray> stateDict(NDManager scratch);

    /**
     * Runs the model. Returns logits {@code [batch, pos, d_vocab]}, or with {@code stopAtLayer} in
     * {@code [0, nLayers)} the residual stream entering that block ({@code blocks.L.hook_resid_pre}).
     */
    NDArray forward(ForwardInputs in, int stopAtLayer);

    /** The final normalisation, without hooks (for the logit lens). */
    NDArray finalNorm(NDArray resid);

    /** Normalised residual {@code [..., d_model]} to logits {@code [..., d_vocab]}. */
    NDArray unembed(NDArray normed);

    /** The unembedding as {@code [d_vocab, d_model]} (rows are output-token directions). */
    NDArray unembedWeight();

    /** The token embedding {@code [d_vocab, d_model]}. */
    NDArray embedWeight();
}
