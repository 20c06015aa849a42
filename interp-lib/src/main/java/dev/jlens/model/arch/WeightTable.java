package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.util.Names;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One architecture's weights, each declared once: its checkpoint name ({@code {L}} standing for the layer), the shape
 * the config implies, how a fresh one is initialised, and the holder the forward pass reads it from. A tensor kept
 * fused for speed (Llama's q/k/v) also lists the checkpoint tensors it is stacked from. Loading, random
 * initialisation, {@code parameters()}, the Hugging Face state dict and the parameter count all derive from it.
 *
 * @param <A> the architecture whose holders the entries fill
 */
final class WeightTable<A> {

    /** How a fresh tensor is filled. */
    sealed interface Init permits Normal, Constant {}

    /**
     * Normal(0, std) values from the stream named {@code stream} ({@code {L}} is the layer): see {@link Params#normal}.
     * The stream names predate this table; renaming one changes every model trained from a seed.
     */
    record Normal(String stream, double std) implements Init {}

    /** Every element {@code value} (norm weights 1, biases 0). */
    record Constant(float value) implements Init {}

    static final Init ONES = new Constant(1), ZEROS = new Constant(0);

    static Init normal(String stream, double std) {
        return new Normal(stream, std);
    }

    /** Stores a tensor into a holder of the architecture. */
    interface Holder<A> {
        void set(A arch, NDArray value);
    }

    /** Stores a tensor into a holder of one block. */
    interface LayerHolder<A> {
        void set(A arch, int layer, NDArray value);
    }

    /** A checkpoint tensor that is a slice of a fused entry: its name and its rows (along the first axis). */
    record Part(String name, long rows) {}

    static Part part(String name, long rows) {
        return new Part(name, rows);
    }

    /**
     * One tensor, for one layer. {@code parts} are the checkpoint tensors it is stacked from along its first axis: a
     * single part named like the entry when the checkpoint stores it as is.
     */
    record Entry<A>(String name, Shape shape, Init init, List<Part> parts, Layout layout, Holder<A> holder) {
        boolean fused() {
            return parts.size() > 1;
        }

        Shape partShape(Part p) {
            long[] dims = shape.getShape().clone();
            dims[0] = p.rows();
            return new Shape(dims);
        }
    }

    /**
     * Whether a tensor is a linear layer's weight, and in which layout: torch's {@code [out, in]} ({@code nn.Linear})
     * or GPT-2's Conv1D {@code [in, out]}. Adapters (LoRA) may target linear layers only.
     */
    enum Layout { OTHER, LINEAR, CONV1D }

    /** An entry as declared, before {@code {L}} is filled in. */
    static final class Declared<A> {
        private final String name;
        private final Shape shape;
        private final Init init;
        private final LayerHolder<A> holder;
        private List<Part> parts;
        private Layout layout = Layout.OTHER;

        private Declared(String name, Shape shape, Init init, LayerHolder<A> holder) {
            this.name = name;
            this.shape = shape;
            this.init = init;
            this.holder = holder;
            this.parts = List.of(new Part(name, shape.get(0)));
        }

        /** This tensor is the checkpoint's {@code parts} stacked along the first axis (kept fused for speed). */
        Declared<A> fusedFrom(Part... fused) {
            long rows = Arrays.stream(fused).mapToLong(Part::rows).sum();
            if (rows != shape.get(0)) {
                throw new IllegalStateException(name + ": parts have " + rows + " rows, the tensor " + shape.get(0));
            }
            this.parts = List.of(fused);
            return this;
        }

        /** This tensor is a linear layer's weight in torch's {@code [out, in]} layout (each part one layer). */
        Declared<A> linear() {
            layout = Layout.LINEAR;
            return this;
        }

        /** This tensor is a Conv1D layer's weight, {@code [in, out]} (GPT-2). */
        Declared<A> conv1d() {
            layout = Layout.CONV1D;
            return this;
        }

        private Entry<A> at(int layer) {
            String l = String.valueOf(layer);
            Init in = init instanceof Normal n ? new Normal(n.stream().replace("{L}", l), n.std()) : init;
            List<Part> ps = parts.stream().map(p -> new Part(p.name().replace("{L}", l), p.rows())).toList();
            return new Entry<>(name.replace("{L}", l), shape, in, ps, layout, (a, x) -> holder.set(a, layer, x));
        }
    }

    private final int nLayers;
    private final String optionalPrefix;
    private final List<Declared<A>> before = new ArrayList<>(), perLayer = new ArrayList<>(), after = new ArrayList<>();

    /**
     * An empty table for {@code nLayers} blocks. Checkpoints may store the names that start with
     * {@code optionalPrefix} without it (the {@code gpt2} Hub repository has no {@code transformer.}).
     */
    WeightTable(int nLayers, String optionalPrefix) {
        this.nLayers = nLayers;
        this.optionalPrefix = optionalPrefix;
    }

    static Shape shape(long... dims) {
        return new Shape(dims);
    }

    /** Declares a tensor outside the blocks (before the blocks if no block tensor is declared yet, else after). */
    Declared<A> add(String name, Shape shape, Init init, Holder<A> holder) {
        Declared<A> d = new Declared<>(name, shape, init, (a, l, x) -> holder.set(a, x));
        (perLayer.isEmpty() ? before : after).add(d);
        return d;
    }

    /** Declares a tensor of every block; {@code {L}} in its names stands for the layer. */
    Declared<A> layer(String name, Shape shape, Init init, LayerHolder<A> holder) {
        if (!after.isEmpty()) throw new IllegalStateException("block tensors go before the tensors after the blocks");
        Declared<A> d = new Declared<>(name, shape, init, holder);
        perLayer.add(d);
        return d;
    }

    /** Every tensor, in order: those before the blocks, each block's, those after. */
    List<Entry<A>> entries() {
        List<Entry<A>> out = new ArrayList<>();
        for (Declared<A> d : before) out.add(d.at(0));
        for (int l = 0; l < nLayers; l++) for (Declared<A> d : perLayer) out.add(d.at(l));
        for (Declared<A> d : after) out.add(d.at(0));
        return out;
    }

    /** Number of scalars in all the tensors. */
    long parameterCount() {
        return entries().stream().mapToLong(e -> e.shape().size()).sum();
    }

    /**
     * Loads every tensor from {@code w} into {@code arch}'s holders, checking shapes. Missing tensors are listed all at
     * once, with the nearest names the checkpoint has.
     */
    WeightMap load(A arch, Weights w) {
        List<Entry<A>> entries = entries();
        // decided on the first tensor, as a checkpoint uses the prefix for all its names or for none
        boolean strip = !w.contains(entries.get(0).parts().get(0).name());
        List<String> missing = new ArrayList<>();
        for (Entry<A> e : entries) {
            for (Part p : e.parts()) if (!w.contains(stored(p.name(), strip))) missing.add(stored(p.name(), strip));
        }
        if (!missing.isEmpty()) {
            String listed = missing.size() <= 6 ? missing.toString() : missing.subList(0, 6) + " ...";
            throw new IllegalArgumentException("checkpoint lacks " + missing.size() + " of the tensors the config "
                    + "implies: " + listed + "; nearest to '" + missing.get(0) + "' it has: "
                    + Names.nearest(missing.get(0), w.names(), 5) + " (does config.json match the weights?)");
        }
        Map<String, NDArray> loaded = new LinkedHashMap<>();
        for (Entry<A> e : entries) {
            NDArray t;
            if (e.fused()) {
                NDList parts = new NDList();
                for (Part p : e.parts()) parts.add(w.load(stored(p.name(), strip), e.partShape(p).getShape()));
                t = NDArrays.concat(parts, 0);
                parts.close();
            } else {
                t = w.load(stored(e.name(), strip), e.shape().getShape());
            }
            e.holder().set(arch, t);
            loaded.put(e.name(), t);
        }
        return new WeightMap(loaded, "parameter");
    }

    /**
     * The linear layers, one per checkpoint weight (a fused tensor holds several), in forward order: see
     * {@link LinearModule}.
     */
    List<LinearModule> linearModules() {
        List<LinearModule> out = new ArrayList<>();
        for (Entry<A> e : entries()) {
            if (e.layout() == Layout.OTHER) continue;
            if (e.layout() == Layout.CONV1D) {
                out.add(new LinearModule(module(e.name()), e.name(), 0, e.shape().get(1), e.shape().get(0), true));
                continue;
            }
            long at = 0;
            for (Part p : e.parts()) {
                out.add(new LinearModule(module(p.name()), e.name(), at, p.rows(), e.shape().get(1), false));
                at += p.rows();
            }
        }
        return out;
    }

    private static String module(String weightName) {
        if (!weightName.endsWith(".weight")) throw new IllegalStateException("not a weight: " + weightName);
        return weightName.substring(0, weightName.length() - ".weight".length());
    }

    /**
     * The low-rank paths by the weight array they adapt, checked: each name must be a linear layer's weight and the
     * factors must fit its shape ({@code a} {@code [k, in]}, {@code b} {@code [out, k]}).
     */
    Map<NDArray, LowRank> lowRankByWeight(Map<String, NDArray> params, Map<String, LowRank> paths) {
        if (paths.isEmpty()) return Map.of();
        Map<String, Entry<A>> byName = new LinkedHashMap<>();
        for (Entry<A> e : entries()) byName.put(e.name(), e);
        Map<NDArray, LowRank> out = new java.util.IdentityHashMap<>();
        for (Map.Entry<String, LowRank> p : paths.entrySet()) {
            Entry<A> e = byName.get(p.getKey());
            if (e == null) throw WeightMap.unknown(p.getKey(), byName.keySet(), "parameter");
            if (e.layout() == Layout.OTHER) {
                throw new IllegalArgumentException("parameter '" + p.getKey() + "' is not a linear layer's weight");
            }
            long outF = e.layout() == Layout.CONV1D ? e.shape().get(1) : e.shape().get(0);
            long inF = e.layout() == Layout.CONV1D ? e.shape().get(0) : e.shape().get(1);
            LowRank lr = p.getValue();
            if (lr.a().getShape().get(1) != inF || lr.b().getShape().get(0) != outF) {
                throw new IllegalArgumentException("a low-rank change of '" + p.getKey() + "' (" + inF + " in, " + outF
                        + " out) has a " + lr.a().getShape() + " and b " + lr.b().getShape());
            }
            out.put(params.get(p.getKey()), lr);
        }
        return out;
    }

    private String stored(String name, boolean strip) {
        return strip && name.startsWith(optionalPrefix) ? name.substring(optionalPrefix.length()) : name;
    }

    /** Fresh tensors on {@code m} into {@code arch}'s holders, deterministic in {@code seed}. */
    WeightMap init(A arch, NDManager m, long seed) {
        Map<String, NDArray> made = new LinkedHashMap<>();
        for (Entry<A> e : entries()) {
            long[] dims = e.shape().getShape();
            NDArray t;
            if (e.init() instanceof Normal n) {
                t = Params.normal(m, seed, n.stream(), n.std(), dims);
            } else {
                t = m.full(e.shape(), ((Constant) e.init()).value());
            }
            e.holder().set(arch, t);
            made.put(e.name(), t);
        }
        return new WeightMap(made, "parameter");
    }

    /**
     * The tensors under their Hugging Face checkpoint names: parameters as they are, fused ones split into copies on
     * {@code scratch}.
     */
    Map<String, NDArray> stateDict(Map<String, NDArray> params, NDManager scratch) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Entry<A> e : entries()) {
            NDArray t = params.get(e.name());
            if (!e.fused()) {
                out.put(e.name(), t);
                continue;
            }
            long[] ends = new long[e.parts().size() - 1];
            long at = 0;
            for (int i = 0; i < ends.length; i++) ends[i] = at += e.parts().get(i).rows();
            NDList views = t.split(ends, 0);
            for (int i = 0; i < views.size(); i++) {
                NDArray copy = views.get(i).duplicate();
                copy.attach(scratch);
                out.put(e.parts().get(i).name(), copy);
            }
            views.close();
        }
        return out;
    }
}
