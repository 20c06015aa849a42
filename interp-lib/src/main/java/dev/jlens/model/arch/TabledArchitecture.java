package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * What every architecture built on a {@link WeightTable} shares: the table, the loaded parameters, and the low-rank
 * paths adapters attach to its linear layers ({@link Adapters}). {@code A} is the architecture itself, the type its
 * table's setters write into.
 */
abstract class TabledArchitecture<A extends TabledArchitecture<A>> implements Architecture {
    /** The checkpoint's tensors: names, shapes, initialisers and where each goes in {@code A}. */
    protected final WeightTable<A> table;
    /** The parameters by checkpoint name, set by {@code load} or {@code initRandom}. */
    protected WeightMap params;
    /** Low-rank paths of adapted linear layers (LoRA); empty unless an adapter is attached. */
    protected final Adapters adapters = new Adapters();

    protected TabledArchitecture(WeightTable<A> table) {
        this.table = table;
    }

    @Override
    public Map<String, NDArray> parameters() {
        return params;
    }

    @Override
    public List<LinearModule> linearModules() {
        return table.linearModules();
    }

    @Override
    public void adapt(Map<String, LowRank> paths) {
        adapters.set(table.lowRankByWeight(params, paths));
    }
}
