package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The low-rank paths of one architecture instance, found by the weight array a linear call reads (the holder's array
 * is the parameter's), so that a forward pass calls {@link #linear} or {@link #conv1d} where it called
 * {@code Ops.linear} and gets the adapted output, with no per-pass cost when nothing is adapted.
 */
final class Adapters {
    private Map<NDArray, LowRank> byWeight = Map.of();

    /** Replaces the paths (an empty map clears them). */
    void set(Map<NDArray, LowRank> paths) {
        byWeight = paths.isEmpty() ? Map.of() : new IdentityHashMap<>(paths);
    }

    /** {@code x @ w^T + bias} with {@code w} {@code [out, in]}, plus the low-rank path of {@code w} if it has one. */
    NDArray linear(NDArray x, NDArray w, NDArray bias) {
        NDArray out = Ops.linear(x, w, bias);
        LowRank lr = byWeight.get(w);
        return lr == null ? out : out.add(lr.apply(x));
    }

    /** {@code x @ w + bias} with a Conv1D weight {@code w} {@code [in, out]}, plus its low-rank path if it has one. */
    NDArray conv1d(NDArray x, NDArray w, NDArray bias) {
        NDArray out = Ops.linear(x, w.transpose(), bias);
        LowRank lr = byWeight.get(w);
        return lr == null ? out : out.add(lr.apply(x));
    }

    /** The weight a pass effectively reads, {@code w} plus its change (for per-head results); {@code w} if none. */
    NDArray effective(NDArray w, boolean conv1dLayout) {
        LowRank lr = byWeight.get(w);
        if (lr == null) return w;
        NDArray d = lr.delta();
        return w.add(conv1dLayout ? d.transpose() : d);
    }
}
