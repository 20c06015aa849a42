package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;

import java.util.Map;

/**
 * A sparse dictionary: encodes activations {@code [..., dIn]} into latents {@code [..., dSae]} and decodes them back.
 * One file per architecture; each adds only its activation rule and its extra losses ({@link #trainForward}), and
 * may take a faster route through a training step ({@link #trainStep}); the one {@link SaeTrainer} trains them all.
 * Weights ({@link SaeWeights}) are named as in SAELens: {@code W_enc [dIn, dSae]}, {@code b_enc [dSae]},
 * {@code W_dec [dSae, dIn]}, {@code b_dec [dIn]}, and {@code threshold [dSae]} for JumpReLU-style inference.
 *
 * <p>Callers pass raw activations; {@link SaeConfig#inputScale()} is applied inside {@link #encode} and undone in
 * {@link #reconstruct}. {@link #trainForward} works in normalised units: the trainer scales its input.
 */
public sealed interface SparseCoder extends AutoCloseable permits AbstractSae {
    // The architectures are AbstractSae's permitted subclasses: ReluSae, TopKSae, BatchTopKSae, JumpReluSae,
    // MatryoshkaSae.

    /** What this dictionary is. */
    SaeConfig cfg();

    /** Its parameters (live arrays the trainer updates in place). */
    SaeWeights weights();

    /** Latent activations {@code [..., dSae]} of raw activations {@code [..., dIn]} (the inference rule). */
    NDArray encode(NDArray x);

    /** The reconstruction in normalised units: {@code f @ W_dec + b_dec}. */
    default NDArray decode(NDArray f) {
        return weights().decode(f);
    }

    /** The reconstruction of raw activations {@code x}, in raw units. */
    default NDArray reconstruct(NDArray x) {
        NDArray r = decode(encode(x));
        double s = cfg().inputScale();
        return s == 1.0 ? r : r.div((float) s);
    }

    /**
     * One training forward pass on normalised activations {@code xBD}: the loss to minimise and what the trainer
     * measures. The training rule may differ from {@link #encode} (BatchTopK trains on the batch's top activations
     * and infers with a threshold).
     */
    Output trainForward(NDArray xBD, Context ctx);

    /**
     * One training step's forward and backward passes on normalised activations {@code xBD}, inside the trainer's
     * {@code NDScope} and open {@code gc}: records the gradients of {@link #trainForward}'s loss in the
     * {@link #trainableParameters()} and measures what the trainer logs. An architecture may override it with a route
     * that gives the same loss and gradients faster (TopK, and single-source BatchTopK and Matryoshka, never build the
     * dense latents: {@link SparseDecode}).
     */
    default StepResult trainStep(NDArray xBD, Context ctx, GradientCollector gc) {
        return TrainSteps.general(this, xBD, ctx, gc);
    }

    /**
     * The tensors gradient descent updates, by name (a subset of {@link SaeWeights#params()}): all but
     * {@code threshold}, except where the threshold is learned (JumpReLU).
     */
    default Map<String, NDArray> trainableParameters() {
        return AbstractSae.withoutThreshold(weights());
    }

    /**
     * Called after the backward pass and before the optimizer step, with the gradients in place (e.g. to remove the
     * gradient component that would change a unit-norm decoder row's length).
     */
    default void beforeStep(Context ctx) {}

    /**
     * Called after each optimizer step, while {@code out}'s arrays are still alive (e.g. to renormalise the decoder
     * or update a threshold estimate).
     */
    default void afterStep(Context ctx, Output out) {}

    /** Frees the weights. */
    @Override
    default void close() {
        weights().close();
    }

    /** A freshly initialised dictionary for {@code cfg} (deterministic in {@code seed}). */
    static SparseCoder create(SaeConfig cfg, long seed) {
        return wrap(cfg, SaeWeights.init(cfg, seed));
    }

    /** The architecture {@code cfg.kind()} names, over existing weights (which it takes ownership of). */
    static SparseCoder wrap(SaeConfig cfg, SaeWeights w) {
        SaeConfig.Kind k = cfg.kind();   // Java 17: no pattern switch; the sealed Kind keeps this list complete
        if (k instanceof SaeConfig.Relu) return new ReluSae(cfg, w);
        if (k instanceof SaeConfig.TopK) return new TopKSae(cfg, w);
        if (k instanceof SaeConfig.BatchTopK) return new BatchTopKSae(cfg, w);
        if (k instanceof SaeConfig.JumpRelu) return new JumpReluSae(cfg, w);
        if (k instanceof SaeConfig.Matryoshka) return new MatryoshkaSae(cfg, w);
        throw new IllegalArgumentException("unknown architecture " + k);
    }

    /**
     * What the trainer tells a variant each step.
     *
     * @param step           optimizer steps done before this one
     * @param sparsityScale  warm-up factor in [0, 1] for the sparsity coefficient
     * @param deadMask       boolean {@code [dSae]}: latents that have not fired within the dead window (for AuxK),
     *                       or {@code null} before the window has passed
     * @param manager        where per-step scalars may be made (closed by the step's scope)
     */
    record Context(int step, float sparsityScale, NDArray deadMask, NDManager manager) {}

    /**
     * One training forward pass.
     *
     * A sparse {@link #trainStep} that builds no dense tensors may hand {@link #afterStep} an Output with null
     * {@code loss}, {@code recon} and {@code acts} and only the {@code parts} its {@code afterStep} reads (BatchTopK and
     * Matryoshka: {@code mse}, {@code min_kept}).
     *
     * @param loss   scalar to minimise
     * @param recon  reconstruction {@code [B, dIn]} (normalised units)
     * @param acts   latent activations {@code [B, dSae]} used for the reconstruction
     * @param parts  named scalar loss terms for logging ({@code mse}, {@code l1}, {@code auxk}, {@code l0}, ...)
     */
    record Output(NDArray loss, NDArray recon, NDArray acts, Map<String, NDArray> parts) {}

    /**
     * What one training step measured, before the update.
     *
     * @param loss   the loss minimised
     * @param mse    its squared-error term: summed over {@code dIn}, mean over the batch (normalised units)
     * @param sse    the squared reconstruction error summed over the batch and {@code dIn} (for the FVU)
     * @param fired  per latent, on how many of the batch's tokens it fired
     * @param output the forward pass, for {@link #afterStep}; null when the step's route builds none (or, on a sparse
     *               route, only the parts {@code afterStep} reads)
     */
    record StepResult(float loss, float mse, float sse, float[] fired, Output output) {}
}
