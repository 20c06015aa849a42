package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jlens.hook.HookRegistry;

import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * One transformer family: its hook points, its weights (named as in its Hugging Face checkpoints, declared once in
 * its weight table) and its forward pass. Each family lives in one file and registers itself in
 * {@link Architectures}; shared code never branches on the family.
 */
public interface Architecture {

    /** The implementation for {@code cfg.family()}, declaring its hook points into {@code hooks}. */
    static Architecture create(ModelConfig cfg, HookRegistry hooks) {
        return Architectures.create(cfg, hooks);
    }

    ModelConfig cfg();

    /** Loads every tensor from a checkpoint; missing tensors or wrong shapes throw naming them. */
    void load(Weights weights);

    /** Fresh weights for training from scratch, deterministic in {@code seed}. */
    void initRandom(NDManager manager, long seed);

    /**
     * The trainable tensors, by stable name (leaves for autograd); {@code get} of an unknown name throws naming the
     * nearest ones.
     */
    Map<String, NDArray> parameters();

    /** The linear layers, in forward order, with where each one's weight lives among {@link #parameters()}. */
    List<LinearModule> linearModules();

    /**
     * Gives the named linear layers (parameter names) a low-rank path, {@code output += (x a^T) b^T}, in the forward
     * passes from now on, replacing the paths set before (an empty map clears them). The parameters are unchanged.
     * Adapters (LoRA) set them for one pass at a time.
     */
    void adapt(Map<String, LowRank> paths);

    /** Tensors under their Hugging Face checkpoint names, for saving (may create copies on {@code scratch}). */
    Map<String, NDArray> stateDict(NDManager scratch);

    /**
     * Runs the model. Returns logits {@code [batch, pos, d_vocab]}, or with {@code stopAtLayer} (in
     * {@code [0, nLayers)}) the residual stream entering that block ({@code blocks.L.hook_resid_pre}).
     */
    NDArray forward(ForwardInputs in, OptionalInt stopAtLayer);

    /** The final normalisation, without hooks (for the logit lens). */
    NDArray finalNorm(NDArray resid);

    /** Normalised residual {@code [..., d_model]} to logits {@code [..., d_vocab]}. */
    NDArray unembed(NDArray normed);

    /**
     * True if the model's norms subtract the mean (LayerNorm), false if they only rescale (RMSNorm): whether a
     * residual component is centred before the cached scale divides it.
     */
    boolean normCentres();

    /** The unembedding as {@code [d_vocab, d_model]} (rows are output-token directions). */
    NDArray unembedWeight();

    /** The token embedding {@code [d_vocab, d_model]}. */
    NDArray embedWeight();

    /** The weights outside the blocks, in the common form {@link TlWeights} reads. */
    TlWeights.Outer tlOuter();

    /** Block {@code layer}'s weights as torch linear maps (views), in the common form {@link TlWeights} reads. */
    TlWeights.Block tlBlock(int layer);
}
