package dev.jlens.sae;

import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * What a sparse dictionary is: its widths, its architecture with that architecture's hyperparameters, where its
 * input comes from, and the scale applied to raw activations before encoding.
 *
 * <p>{@code dIn} is the full input width: {@code nSources * d_model} for a crosscoder (the sources' activations
 * concatenated, source-major), {@code d_model} for an SAE. {@code inputScale} multiplies raw activations before the
 * encoder and divides the reconstruction after the decoder, so the weights live in normalised units (unit mean
 * squared norm) while callers pass and get raw activations.
 *
 * @param dIn            input width
 * @param dSae           number of latents
 * @param kind           the architecture and its hyperparameters
 * @param nSources       1 for an SAE; the number of models (or hook points) for a crosscoder
 * @param hookPoint      the hook point the input is read at, e.g. {@code blocks.2.hook_resid_pre}; empty for
 *                       activations that do not come from a model
 * @param modelName      the model the dictionary was trained on, when known
 * @param inputScale     raw activation -> normalised activation factor (1 when not normalised)
 * @param applyBDecToInput whether the encoder sees {@code x - b_dec} (SAELens's {@code apply_b_dec_to_input})
 */
public record SaeConfig(int dIn, int dSae, Kind kind, int nSources, Optional<String> hookPoint, Optional<String> modelName,
                        double inputScale, boolean applyBDecToInput) {

    public SaeConfig {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(hookPoint, "hookPoint");
        Objects.requireNonNull(modelName, "modelName");
        if (dIn <= 0 || dSae <= 0) throw new IllegalArgumentException("dIn and dSae must be positive, got " + dIn + ", " + dSae);
        if (nSources <= 0 || dIn % nSources != 0) {
            throw new IllegalArgumentException("nSources must be positive and divide dIn, got nSources " + nSources + ", dIn " + dIn);
        }
        if (!(inputScale > 0) || !Double.isFinite(inputScale)) {
            throw new IllegalArgumentException("inputScale must be positive and finite, got " + inputScale);
        }
        kind.validate(dSae);
    }

    /** An SAE of {@code dSae} latents over {@code dIn}-wide activations (no hook point until set). */
    public static SaeConfig of(int dIn, int dSae, Kind kind) {
        return new SaeConfig(dIn, dSae, kind, 1, Optional.empty(), Optional.empty(), 1.0, true);
    }

    /**
     * The hook point the input is read at, e.g. {@code blocks.2.hook_resid_pre}; throws when the dictionary was
     * trained on activations that do not come from a model ({@link #hookPoint()} is empty).
     */
    public String hookName() {
        return hookPoint.orElseThrow(() -> new IllegalStateException("this dictionary has no hook point: it was trained "
                + "on activations that were not read from a model; give it one with cfg.withHook(\"blocks.L.hook_...\")"));
    }

    public SaeConfig withHook(String name) {
        return new SaeConfig(dIn, dSae, kind, nSources, Optional.of(name), modelName, inputScale, applyBDecToInput);
    }

    public SaeConfig withModel(String name) {
        return new SaeConfig(dIn, dSae, kind, nSources, hookPoint, Optional.ofNullable(name), inputScale, applyBDecToInput);
    }

    public SaeConfig withInputScale(double scale) {
        return new SaeConfig(dIn, dSae, kind, nSources, hookPoint, modelName, scale, applyBDecToInput);
    }

    /** A crosscoder over {@code n} sources: {@code dIn} must be {@code n * d_model}. */
    public SaeConfig withSources(int n) {
        return new SaeConfig(dIn, dSae, kind, n, hookPoint, modelName, inputScale, applyBDecToInput);
    }

    public SaeConfig withKind(Kind newKind) {
        return new SaeConfig(dIn, dSae, newKind, nSources, hookPoint, modelName, inputScale, applyBDecToInput);
    }

    public SaeConfig withApplyBDecToInput(boolean apply) {
        return new SaeConfig(dIn, dSae, kind, nSources, hookPoint, modelName, inputScale, apply);
    }

    /** Width of one source's activations ({@code dIn / nSources}). */
    public int dModel() {
        return dIn / nSources;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "SaeConfig[%s %d -> %d%s%s%s]", kind, dIn, dSae,
                nSources > 1 ? " sources=" + nSources : "", hookPoint.map(h -> " at " + h).orElse(""),
                inputScale == 1.0 ? "" : String.format(Locale.ROOT, " scale=%.4g", inputScale));
    }

    /** The architecture with its own hyperparameters. {@link #architecture()} is the name saved in cfg.json. */
    public sealed interface Kind permits Relu, TopK, BatchTopK, JumpRelu, Matryoshka {
        /** The saved architecture name (SAELens's where SAELens has one). */
        String architecture();

        /** Checks the hyperparameters against the dictionary size. */
        void validate(int dSae);
    }

    /** ReLU latents with an L1 penalty weighted by each latent's decoder norm (SAELens {@code standard}). */
    public record Relu(double l1Coefficient) implements Kind {
        public Relu {
            if (!(l1Coefficient >= 0)) throw new IllegalArgumentException("l1Coefficient must be >= 0, got " + l1Coefficient);
        }

        public String architecture() { return "standard"; }

        public void validate(int dSae) {}
    }

    /**
     * The k largest pre-activations per token, ReLU'd (Gao et al. 2024); AuxK: the {@code auxK} largest dead latents
     * reconstruct the residual error, weighted by {@code auxKCoefficient}.
     */
    public record TopK(int k, int auxK, double auxKCoefficient) implements Kind {
        public TopK {
            if (k <= 0) throw new IllegalArgumentException("k must be positive, got " + k);
            if (auxK < 0 || !(auxKCoefficient >= 0)) throw new IllegalArgumentException("auxK and auxKCoefficient must be >= 0");
        }

        /** TopK with AuxK at {@code 2k} latents and coefficient 1/32 (Gao et al.'s defaults scaled to small k). */
        public TopK(int k) {
            this(k, 2 * k, 1.0 / 32);
        }

        public String architecture() { return "topk"; }

        public void validate(int dSae) {
            if (k > dSae) throw new IllegalArgumentException("k " + k + " exceeds dSae " + dSae);
        }
    }

    /**
     * The {@code k * batch} largest activations over the whole batch (Bussmann et al. 2024); the trainer keeps a
     * running estimate of the smallest kept activation, which becomes a JumpReLU threshold for inference.
     */
    public record BatchTopK(int k, int auxK, double auxKCoefficient, double thresholdMomentum) implements Kind {
        public BatchTopK {
            if (k <= 0) throw new IllegalArgumentException("k must be positive, got " + k);
            if (auxK < 0 || !(auxKCoefficient >= 0)) throw new IllegalArgumentException("auxK and auxKCoefficient must be >= 0");
            if (!(thresholdMomentum >= 0 && thresholdMomentum < 1)) {
                throw new IllegalArgumentException("thresholdMomentum must be in [0, 1), got " + thresholdMomentum);
            }
        }

        public BatchTopK(int k) {
            this(k, 2 * k, 1.0 / 32, 0.99);
        }

        public String architecture() { return "batchtopk"; }

        public void validate(int dSae) {
            if (k > dSae) throw new IllegalArgumentException("k " + k + " exceeds dSae " + dSae);
        }
    }

    /**
     * JumpReLU latents with a learned per-latent threshold, trained through a straight-through estimator with an L0
     * penalty (Rajamanoharan et al. 2024).
     */
    public record JumpRelu(double l0Coefficient, double bandwidth, double initThreshold) implements Kind {
        public JumpRelu {
            if (!(l0Coefficient >= 0)) throw new IllegalArgumentException("l0Coefficient must be >= 0, got " + l0Coefficient);
            if (!(bandwidth > 0)) throw new IllegalArgumentException("bandwidth must be positive, got " + bandwidth);
            if (!(initThreshold >= 0)) throw new IllegalArgumentException("initThreshold must be >= 0, got " + initThreshold);
        }

        public JumpRelu(double l0Coefficient) {
            this(l0Coefficient, 0.001, 0.001);
        }

        public String architecture() { return "jumprelu"; }

        public void validate(int dSae) {}
    }

    /**
     * BatchTopK whose latents are split into nested groups; every prefix of groups must reconstruct the input on its
     * own (Bussmann et al. 2025, Nabeshima 2024). {@code groupSizes} sum to {@code dSae}.
     */
    public record Matryoshka(int k, List<Integer> groupSizes, int auxK, double auxKCoefficient, double thresholdMomentum)
            implements Kind {
        public Matryoshka {
            groupSizes = List.copyOf(groupSizes);
            if (k <= 0) throw new IllegalArgumentException("k must be positive, got " + k);
            if (groupSizes.isEmpty() || groupSizes.stream().anyMatch(g -> g <= 0)) {
                throw new IllegalArgumentException("groupSizes must be positive, got " + groupSizes);
            }
        }

        public Matryoshka(int k, List<Integer> groupSizes) {
            this(k, groupSizes, 2 * k, 1.0 / 32, 0.99);
        }

        public String architecture() { return "matryoshka_batchtopk"; }

        public void validate(int dSae) {
            int sum = groupSizes.stream().mapToInt(Integer::intValue).sum();
            if (sum != dSae) throw new IllegalArgumentException("groupSizes " + groupSizes + " sum to " + sum + ", not dSae " + dSae);
            if (k > dSae) throw new IllegalArgumentException("k " + k + " exceeds dSae " + dSae);
        }
    }
}
