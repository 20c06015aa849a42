package dev.jlens.sae;

import ai.djl.ndarray.NDArray;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What every architecture holds: its config and weights. The config is replaced only by {@link SaeTrainer}, which
 * trains the weights in place in normalised units and so sets {@link SaeConfig#inputScale()} to its source's scale.
 */
abstract sealed class AbstractSae implements SparseCoder
        permits ReluSae, TopKSae, BatchTopKSae, JumpReluSae, MatryoshkaSae {
    private volatile SaeConfig cfg;
    protected final SaeWeights w;

    AbstractSae(SaeConfig cfg, SaeWeights w) {
        this.cfg = Objects.requireNonNull(cfg, "cfg");
        this.w = Objects.requireNonNull(w, "weights");
    }

    @Override
    public final SaeConfig cfg() {
        return cfg;
    }

    @Override
    public final SaeWeights weights() {
        return w;
    }

    /** The trainer's hook: the weights now expect inputs multiplied by {@code scale}. */
    final void setInputScale(double scale) {
        cfg = cfg.withInputScale(scale);
    }

    /** The trainer's hook: records the hook point the training activations came from. */
    final void setHookName(String hookName) {
        cfg = cfg.withHook(hookName);
    }

    /** Every tensor except {@code threshold}: the parameters gradient descent updates for most architectures. */
    static Map<String, NDArray> withoutThreshold(SaeWeights w) {
        Map<String, NDArray> out = new LinkedHashMap<>(w.params());
        out.remove(SaeWeights.THRESHOLD);
        return out;
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + cfg + "]";
    }
}
