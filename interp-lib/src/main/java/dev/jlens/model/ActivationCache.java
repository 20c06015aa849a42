package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import dev.jlens.notebook.Display;
import dev.jlens.notebook.HtmlRenderable;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Activations recorded during one forward pass, by hook-point name ({@code blocks.3.hook_resid_post}).
 * Owns its arrays: close it (or use try-with-resources) to free them. Short names work at the edges:
 * {@code cache.get("resid_post", 3)}, {@code cache.get("pattern", 0)}.
 */
public final class ActivationCache implements AutoCloseable, HtmlRenderable {
    private final NDManager manager;
    private final Map<String, NDArray> acts = new LinkedHashMap<>();
    private final HookedTransformer model;
    private NDArray logits;

    ActivationCache(NDManager parent, HookedTransformer model) {
        this.manager = parent.newSubManager();
        this.model = model;
    }

    /** The manager owning the cached arrays (attach derived arrays here to free them with the cache). */
    public NDManager manager() {
        return manager;
    }

    /** Stores an activation; the cache takes ownership of the array. */
    public void put(String name, NDArray activation) {
        NDScope.unregister(activation);
        activation.attach(manager);
        acts.put(name, activation);
    }

    /** Stores the logits of the run. */
    public void putLogits(NDArray l) {
        NDScope.unregister(l);
        l.attach(manager);
        logits = l;
    }

    /** The logits of the cached run {@code [batch, pos, d_vocab]}, if the run computed them. */
    public NDArray logits() {
        if (logits == null) throw new IllegalStateException("this cache holds no logits (the run stopped early)");
        return logits;
    }

    /** Names of the cached activations, in forward order. */
    public Set<String> names() {
        return Collections.unmodifiableSet(acts.keySet());
    }

    /** Number of cached activations. */
    public int size() {
        return acts.size();
    }

    /** True if an activation is cached under this full name. */
    public boolean contains(String name) {
        return acts.containsKey(name);
    }

    /** The activation under its full name, e.g. {@code blocks.0.attn.hook_pattern}, or a unique short name. */
    public NDArray get(String name) {
        NDArray a = acts.get(name);
        if (a != null) return a;
        List<String> matches = new ArrayList<>();
        for (String n : acts.keySet()) if (matchesShort(n, name)) matches.add(n);
        if (matches.size() == 1) return acts.get(matches.get(0));
        if (matches.isEmpty()) {
            throw new IllegalArgumentException("no activation '" + name + "' in this cache; it holds " + acts.size()
                    + " names, e.g. " + acts.keySet().stream().limit(8).toList()
                    + (acts.isEmpty() ? "" : ". Was it selected by the run's NameFilter?"));
        }
        throw new IllegalArgumentException("'" + name + "' is ambiguous; add the layer: get(\"" + name
                + "\", layer). Matches: " + matches.stream().limit(6).toList());
    }

    /** The activation of layer {@code layer} by short name: {@code get("resid_post", 3)}, {@code get("pattern", 0)}. */
    public NDArray get(String shortName, int layer) {
        String prefix = "blocks." + layer + ".";
        for (String n : acts.keySet()) {
            if (n.startsWith(prefix) && matchesShort(n.substring(prefix.length()), shortName)) return acts.get(n);
        }
        throw new IllegalArgumentException("no activation '" + shortName + "' for layer " + layer + " in this cache; "
                + "layer " + layer + " has " + acts.keySet().stream().filter(n -> n.startsWith(prefix)).toList());
    }

    private static boolean matchesShort(String fullName, String shortName) {
        String s = shortName.startsWith("hook_") || shortName.contains(".") ? shortName : "hook_" + shortName;
        return fullName.equals(s) || fullName.endsWith("." + s);
    }

    /** One activation per layer stacked on a new first axis: {@code [n_layers, ...]}, owned by this cache. */
    public NDArray stack(String shortName) {
        NDList parts = new NDList();
        for (int l = 0; l < model.nLayers(); l++) parts.add(get(shortName, l));
        return keep(NDArrays.stack(parts, 0));
    }

    /**
     * The residual stream entering each block and after the last: {@code [n_layers + 1, batch, pos, d_model]}
     * (TransformerLens's {@code accumulated_resid}). Needs {@code resid_pre} of every layer and the last
     * {@code resid_post} cached.
     */
    public NDArray accumulatedResid() {
        NDList parts = new NDList();
        for (int l = 0; l < model.nLayers(); l++) parts.add(get("resid_pre", l));
        parts.add(get("resid_post", model.nLayers() - 1));
        return keep(NDArrays.stack(parts, 0));
    }

    /** Labels of {@link #accumulatedResid()}'s first axis: {@code 0_pre ... L_pre, final_post}. */
    public List<String> accumulatedResidLabels() {
        List<String> labels = new ArrayList<>();
        for (int l = 0; l < model.nLayers(); l++) labels.add(l + "_pre");
        labels.add("final_post");
        return labels;
    }

    /**
     * The final residual stream split into what wrote it: the embeddings, then each layer's attention and MLP
     * outputs: {@code [components, batch, pos, d_model]}, summing to the last {@code resid_post}. Labels from
     * {@link #decomposeResidLabels()}.
     */
    public NDArray decomposeResid() {
        NDList parts = new NDList();
        for (String label : decomposeResidLabels()) parts.add(component(label));
        return keep(NDArrays.stack(parts, 0));
    }

    /** Labels of {@link #decomposeResid()}'s first axis: {@code embed, pos_embed, 0_attn_out, 0_mlp_out, ...}. */
    public List<String> decomposeResidLabels() {
        List<String> labels = new ArrayList<>();
        labels.add("embed");
        if (acts.containsKey("hook_pos_embed")) labels.add("pos_embed");
        for (int l = 0; l < model.nLayers(); l++) {
            labels.add(l + "_attn_out");
            if (acts.containsKey("blocks." + l + ".hook_mlp_out")) labels.add(l + "_mlp_out");
        }
        return labels;
    }

    private NDArray component(String label) {
        if (label.equals("embed")) return get("hook_embed");
        if (label.equals("pos_embed")) return get("hook_pos_embed");
        int us = label.indexOf('_');
        return get(label.substring(us + 1), Integer.parseInt(label.substring(0, us)));
    }

    /**
     * Logit lens: applies the model's final norm and unembedding to residuals {@code [..., d_model]} (e.g. the
     * output of {@link #accumulatedResid()}), giving logits {@code [..., d_vocab]} owned by this cache.
     */
    public NDArray logitLens(NDArray resid) {
        try (NDScope scope = new NDScope()) {
            NDArray out = model.unembed(model.finalNorm(resid));
            NDScope.unregister(out);
            out.attach(manager);
            return out;
        }
    }

    /** Attaches a derived array to this cache so it is freed with it. */
    private NDArray keep(NDArray a) {
        NDScope.unregister(a);
        a.attach(manager);
        return a;
    }

    /** Name, shape and size of every cached activation. */
    public Table toTable() {
        StringColumn names = StringColumn.create("name");
        StringColumn shapes = StringColumn.create("shape");
        IntColumn sizes = IntColumn.create("elements");
        for (Map.Entry<String, NDArray> e : acts.entrySet()) {
            names.append(e.getKey());
            shapes.append(e.getValue().getShape().toString());
            sizes.append((int) Math.min(Integer.MAX_VALUE, e.getValue().size()));
        }
        return Table.create("ActivationCache", names, shapes, sizes);
    }

    /** Renders as the table of names and shapes. */
    @Override
    public String toHtml() {
        return Display.render(toTable()).get(Display.HTML);
    }

    /** Frees every cached array. */
    @Override
    public void close() {
        acts.clear();
        logits = null;
        manager.close();
    }

    @Override
    public String toString() {
        long bytes = acts.values().stream().mapToLong(a -> a.size() * a.getDataType().getNumOfBytes()).sum();
        return String.format(java.util.Locale.ROOT, "ActivationCache(%d activations, %.1f MB)", acts.size(),
                bytes / 1e6);
    }
}
