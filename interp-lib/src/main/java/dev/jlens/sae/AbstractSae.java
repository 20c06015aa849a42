package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

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

    /**
     * The trainer's hook when it continues a saved run into this dictionary: overwrites every weight, in place, with
     * the tensor of the same name and shape in {@code saved}, then re-derives what the architecture keeps outside
     * its weights.
     */
    final void loadWeights(Map<String, NDArray> saved) {
        Map<String, NDArray> params = w.params();
        if (!saved.keySet().equals(params.keySet())) {
            throw new IllegalArgumentException("the saved weights hold " + saved.keySet() + " but this dictionary has "
                    + params.keySet());
        }
        for (var e : params.entrySet()) {
            NDArray from = saved.get(e.getKey());
            if (!from.getShape().equals(e.getValue().getShape())) {
                throw new IllegalArgumentException("saved tensor '" + e.getKey() + "' has shape " + from.getShape()
                        + " but this dictionary's has " + e.getValue().getShape());
            }
        }
        params.forEach((name, p) -> p.set(new NDIndex(":"), saved.get(name)));
        weightsLoaded();
    }

    /** After {@link #loadWeights}: re-derives state kept outside the weights (none by default). */
    void weightsLoaded() {}

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
