package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.HookNames;
import dev.jlens.notebook.Display;
import dev.jlens.notebook.HtmlRenderable;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Activations recorded during one forward pass, by hook-point name ({@code blocks.3.hook_resid_post}).
 * Owns its arrays: close it (or use try-with-resources) to free them; after that every method throws an
 * {@link IllegalStateException} saying so. Short names work at the edges: {@code cache.get("resid_post", 3)},
 * {@code cache.get("pattern", 0)}, and layers count from the end when negative: {@code cache.get("resid_pre", -1)}
 * is the last block's. Full names from short ones: {@link #actName(String, int)}.
 *
 * <p>Direct logit attribution, as TransformerLens: {@link #decomposeResid()} or {@link #stackHeadResults()} split
 * the final residual into components; {@link #applyLnToStack(NDArray)} divides each by the final norm's cached
 * scale (after centring, for LayerNorm models), and {@link #logitAttribution(NDArray)} carries them on to the
 * logits. {@link #logitLens(NDArray)} is for whole residual streams ({@link #accumulatedResid()}) and refuses a
 * decomposition.
 */
public final class ActivationCache implements AutoCloseable, HtmlRenderable {
    private final NDManager manager;
    private final Map<String, NDArray> acts = new LinkedHashMap<>();
    private final HookedTransformer model;
    private NDArray logits;
    /**
     * Arrays this cache returned as decompositions of the residual stream, which logitLens refuses: held weakly (a
     * notebook frees arrays nothing references) and compared by identity (NDArray's equals compares contents).
     */
    private final List<WeakReference<NDArray>> decompositions = new ArrayList<>();
    private boolean closed;

    ActivationCache(NDManager parent, HookedTransformer model) {
        this.manager = parent.newSubManager();
        this.model = model;
    }

    /** The manager owning the cached arrays (attach derived arrays here to free them with the cache). */
    public NDManager manager() {
        checkOpen();
        return manager;
    }

    /** Stores an activation; the cache takes ownership of the array. */
    public void put(String name, NDArray activation) {
        checkOpen();
        NDScope.unregister(activation);
        activation.attach(manager);
        acts.put(name, activation);
    }

    /** Stores the logits of the run. */
    public void putLogits(NDArray l) {
        checkOpen();
        NDScope.unregister(l);
        l.attach(manager);
        logits = l;
    }

    /** The logits of the cached run {@code [batch, pos, d_vocab]}, if the run computed them. */
    public NDArray logits() {
        checkOpen();
        if (logits == null) throw new IllegalStateException("this cache holds no logits (the run stopped early)");
        return logits;
    }

    /** Names of the cached activations, in forward order. */
    public Set<String> names() {
        checkOpen();
        return Collections.unmodifiableSet(acts.keySet());
    }

    /** Number of cached activations. */
    public int size() {
        checkOpen();
        return acts.size();
    }

    /** True if an activation is cached under this full name. */
    public boolean contains(String name) {
        checkOpen();
        return acts.containsKey(name);
    }

    /** The activation under its full name, e.g. {@code blocks.0.attn.hook_pattern}, or a unique short name. */
    public NDArray get(String name) {
        checkOpen();
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

    /**
     * The activation of layer {@code layer} by short name: {@code get("resid_post", 3)}, {@code get("pattern", 0)}.
     * A negative layer counts from the end as in Python: {@code get("resid_pre", -1)} is the last block's. Layers
     * outside {@code [-n_layers, n_layers)} throw naming that range.
     */
    public NDArray get(String shortName, int layer) {
        checkOpen();
        layer = layerIndex(layer);
        String prefix = "blocks." + layer + ".";
        for (String n : acts.keySet()) {
            if (n.startsWith(prefix) && matchesShort(n.substring(prefix.length()), shortName)) return acts.get(n);
        }
        throw new IllegalArgumentException("no activation '" + shortName + "' for layer " + layer + " in this cache; "
                + "layer " + layer + " has " + acts.keySet().stream().filter(n -> n.startsWith(prefix)).toList());
    }

    /** {@code layer} in {@code [0, n_layers)}, counting a negative one from the end; out of range throws. */
    private int layerIndex(int layer) {
        int n = model.nLayers();
        if (layer < -n || layer >= n) {
            throw new IllegalArgumentException("layer " + layer + " is out of range: this model has " + n
                    + " layers, valid layers are [" + (-n) + ", " + n + ") (negative ones count from the end, -1 is "
                    + "layer " + (n - 1) + ")");
        }
        return layer < 0 ? layer + n : layer;
    }

    private static boolean matchesShort(String fullName, String shortName) {
        String s = shortName.startsWith("hook_") || shortName.contains(".") ? shortName : "hook_" + shortName;
        return fullName.equals(s) || fullName.endsWith("." + s);
    }

    /** One activation per layer stacked on a new first axis: {@code [n_layers, ...]}, owned by this cache. */
    public NDArray stack(String shortName) {
        checkOpen();
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
        checkOpen();
        NDList parts = new NDList();
        for (int l = 0; l < model.nLayers(); l++) parts.add(get("resid_pre", l));
        parts.add(get("resid_post", model.nLayers() - 1));
        return keep(NDArrays.stack(parts, 0));
    }

    /** Labels of {@link #accumulatedResid()}'s first axis: {@code 0_pre ... L_pre, final_post}. */
    public List<String> accumulatedResidLabels() {
        checkOpen();
        List<String> labels = new ArrayList<>();
        for (int l = 0; l < model.nLayers(); l++) labels.add(l + "_pre");
        labels.add("final_post");
        return labels;
    }

    /**
     * The final residual stream split into what wrote it: the embeddings, then each layer's attention and MLP
     * outputs: {@code [components, batch, pos, d_model]}, summing to the last {@code resid_post}. Labels from
     * {@link #decomposeResidLabels()}. For their contributions to the logits use {@link #logitAttribution(NDArray)},
     * not {@link #logitLens(NDArray)}.
     */
    public NDArray decomposeResid() {
        checkOpen();
        NDList parts = new NDList();
        for (String label : decomposeResidLabels()) parts.add(component(label));
        return decomposition(keep(NDArrays.stack(parts, 0)));
    }

    /** Labels of {@link #decomposeResid()}'s first axis: {@code embed, pos_embed, 0_attn_out, 0_mlp_out, ...}. */
    public List<String> decomposeResidLabels() {
        checkOpen();
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
     * output of {@link #accumulatedResid()}), giving logits {@code [..., d_vocab]} owned by this cache. Each residual
     * is normalised on its own, which is right for whole residual streams and wrong for the parts of one: a
     * decomposition returned by {@link #decomposeResid()} or {@link #stackHeadResults()} is refused (use
     * {@link #logitAttribution(NDArray)}); slices of one are not recognised, so do not pass those either.
     */
    public NDArray logitLens(NDArray resid) {
        checkOpen();
        if (decompositions.stream().anyMatch(r -> r.get() == resid)) {
            throw new IllegalArgumentException("logitLens normalises each residual on its own, but this array is a "
                    + "decomposition of one residual stream (from decomposeResid() or stackHeadResults()): every "
                    + "component would be centred and rescaled by its own statistics, so the results would not add up "
                    + "to the logits. For direct logit attribution use cache.logitAttribution(stack) (or "
                    + "cache.applyLnToStack(stack), times the final norm's weight, then .matMul(model.W_U())), which "
                    + "divides every component by the final norm's cached scale; logitLens is for whole residuals "
                    + "such as cache.accumulatedResid()");
        }
        try (NDScope scope = new NDScope()) {
            NDArray out = model.unembed(model.finalNorm(resid));
            NDScope.unregister(out);
            out.attach(manager);
            return out;
        }
    }

    // ------------------------------------------------------------------ direct logit attribution

    /**
     * Every head's output {@code [n_layers * n_heads, batch, pos, d_model]} (TransformerLens's
     * {@code stack_head_results}), in the order of {@link #stackHeadResultsLabels()} ({@code L0H0, L0H1, ...}),
     * without the attention output bias: the heads of layer {@code l} plus {@code model.b_O(l)} sum to
     * {@code attn_out} of that layer. Read from {@code blocks.L.attn.hook_result} where cached, else computed from
     * {@code hook_z} and {@code W_O} ({@code z[h] @ W_O[h]}); run with {@code NameFilter.of("z")} (cheaper) or
     * {@code NameFilter.of("result")}. Owned by this cache.
     */
    public NDArray stackHeadResults() {
        checkOpen();
        int n = model.nLayers();
        try (NDScope scope = new NDScope()) {
            NDList perLayer = new NDList();
            for (int l = 0; l < n; l++) {
                String result = "blocks." + l + ".attn.hook_result", z = "blocks." + l + ".attn.hook_z";
                if (acts.containsKey(result)) {
                    perLayer.add(acts.get(result).transpose(2, 0, 1, 3));           // [head, batch, pos, d_model]
                } else if (acts.containsKey(z)) {
                    NDArray zs = acts.get(z);                                         // [batch, pos, head, d_head]
                    Shape s = zs.getShape();
                    long b = s.get(0), p = s.get(1), h = s.get(2), dh = s.get(3);
                    NDArray zh = zs.transpose(2, 0, 1, 3).reshape(h, b * p, dh);      // [head, batch * pos, d_head]
                    NDArray out = zh.matMul(model.W_O(l));                            // [head, batch * pos, d_model]
                    perLayer.add(out.reshape(h, b, p, out.getShape().get(2)));
                } else {
                    throw new IllegalArgumentException("stackHeadResults needs each layer's " + result + " or " + z
                            + ", and layer " + l + " has neither in this cache; run with a NameFilter that selects "
                            + "them, e.g. model.runWithCache(tokens, NameFilter.of(\"z\")) (per-head results are then "
                            + "computed from z and W_O) or NameFilter.of(\"result\")");
                }
            }
            return decomposition(keep(NDArrays.concat(perLayer, 0)));
        }
    }

    /** Labels of {@link #stackHeadResults()}'s first axis, as TransformerLens: {@code L0H0, L0H1, ..., L1H0, ...}. */
    public List<String> stackHeadResultsLabels() {
        checkOpen();
        List<String> labels = new ArrayList<>();
        for (int l = 0; l < model.nLayers(); l++) {
            for (int h = 0; h < model.cfg().nHeads(); h++) labels.add("L" + l + "H" + h);
        }
        return labels;
    }

    /**
     * Residual components {@code [..., batch, pos, d_model]} as the unembedding sees them (TransformerLens's
     * {@code apply_ln_to_stack} at the final layer): each is centred (LayerNorm models; RMSNorm only rescales) and
     * divided by the final norm's cached scale {@code ln_final.hook_scale} {@code [batch, pos, 1]}, the same divisor
     * for every component. The norm's weight and bias are not applied, so for a decomposition
     * {@code sum(components) == (resid_final - mean) / scale}, the final norm's output before its weight and bias.
     * Needs {@code ln_final.hook_scale} in the cache. Owned by this cache.
     */
    public NDArray applyLnToStack(NDArray stack) {
        checkOpen();
        try (NDScope scope = new NDScope()) {
            return keep(normalized(stack));
        }
    }

    /**
     * {@link #applyLnToStack(NDArray)} at one position: takes the full stack {@code [..., batch, pos, d_model]} and
     * returns {@code [..., batch, d_model]} at position {@code pos} ({@code -1} is the last).
     */
    public NDArray applyLnToStack(NDArray stack, int pos) {
        checkOpen();
        try (NDScope scope = new NDScope()) {
            return keep(normalizedAt(stack, pos));
        }
    }

    /**
     * Each component's direct contribution to the logits: {@code (applyLnToStack(stack) * w_ln) @ W_U}, giving
     * {@code [..., batch, pos, d_vocab]}, with {@code w_ln} the final norm's weight. For a full decomposition of the
     * final residual ({@link #decomposeResid()}) the components add up to the logits less a constant:
     * {@code logits == sum over components + b_ln @ W_U + b_U}, where {@code b_ln} is the final norm's bias (none for
     * RMSNorm) and {@code b_U} the unembedding bias (zero here). Owned by this cache.
     */
    public NDArray logitAttribution(NDArray stack) {
        checkOpen();
        try (NDScope scope = new NDScope()) {
            return keep(normalized(stack).mul(model.tlWeights().get("ln_final.w")).matMul(model.W_U()));
        }
    }

    /**
     * Each component's direct contribution to the logit of {@code tokens} at position {@code pos}: from a full stack
     * {@code [..., batch, pos, d_model]}, gives {@code [..., batch]}. One token is used for every batch row; else give
     * one per row (TransformerLens's {@code logit_attrs}, but with the final norm's weight applied, as this library
     * does not fold it into {@code W_U}). A logit difference is the difference of two of these. Owned by this cache.
     */
    public NDArray logitAttribution(NDArray stack, int pos, long... tokens) {
        checkOpen();
        long batch = finalScale(stack).getShape().get(0);
        if (tokens.length != 1 && tokens.length != batch) {
            throw new IllegalArgumentException("logitAttribution needs one token for every row or one per batch row ("
                    + batch + "), got " + tokens.length);
        }
        try (NDScope scope = new NDScope()) {
            NDArray ln = normalizedAt(stack, pos).mul(model.tlWeights().get("ln_final.w"));     // [..., batch, d]
            NDArray dirs = model.tokensToResidualDirections(tokens);                               // [n, d_model]
            NDArray out = tokens.length == 1 ? ln.matMul(dirs.get(0)) : ln.mul(dirs).sum(new int[] {-1});
            return keep(out);
        }
    }

    /** The final norm's cached scale {@code [batch, pos, 1]}, checked against a stack {@code [..., batch, pos, d]}. */
    private NDArray finalScale(NDArray stack) {
        NDArray scale = acts.get("ln_final.hook_scale");
        if (scale == null) {
            throw new IllegalArgumentException("this needs the final norm's scale ln_final.hook_scale, which this "
                    + "cache does not hold; run with a NameFilter that selects it, e.g. "
                    + "NameFilter.of(\"ln_final.hook_scale\", ...) or NameFilter.all()");
        }
        Shape s = stack.getShape(), sc = scale.getShape();
        int d = s.dimension();
        if (d < 3 || s.get(d - 1) != model.cfg().dModel() || s.get(d - 3) != sc.get(0) || s.get(d - 2) != sc.get(1)) {
            throw new IllegalArgumentException("expected residual components [..., batch, pos, d_model] = [..., "
                    + sc.get(0) + ", " + sc.get(1) + ", " + model.cfg().dModel() + "] (all positions, as cached), got "
                    + s);
        }
        return scale;
    }

    /** Centred (LayerNorm) and divided by the final scale, all positions; a new array in the caller's scope. */
    private NDArray normalized(NDArray stack) {
        return centre(stack).div(finalScale(stack));
    }

    /** {@link #normalized} at one position: {@code [..., batch, d_model]}. */
    private NDArray normalizedAt(NDArray stack, int pos) {
        NDArray scale = finalScale(stack);
        int p = positionIndex(pos, scale.getShape().get(1));
        NDArray at = stack.get(new NDIndex("..., {}, :", p));                       // [..., batch, d_model]
        return centre(at).div(scale.get(new NDIndex(":, {}, :", p)));               // / [batch, 1]
    }

    private NDArray centre(NDArray x) {
        return model.normCentres() ? x.sub(x.mean(new int[] {-1}, true)) : x;
    }

    private static int positionIndex(int pos, long n) {
        if (pos < -n || pos >= n) {
            throw new IllegalArgumentException("position " + pos + " is out of range: the cached run has " + n
                    + " positions, valid positions are [" + (-n) + ", " + n + ")");
        }
        return (int) (pos < 0 ? pos + n : pos);
    }

    private NDArray decomposition(NDArray a) {
        decompositions.removeIf(r -> r.get() == null);
        decompositions.add(new WeakReference<>(a));
        return a;
    }

    // ------------------------------------------------------------------ names

    /** TransformerLens's {@code get_act_name}: {@code actName("resid_pre", 3)} is {@code "blocks.3.hook_resid_pre"}. */
    public static String actName(String shortName, int layer) {
        return HookNames.actName(shortName, layer);
    }

    /** {@code actName("scale", 3, "ln1")} is {@code "blocks.3.ln1.hook_scale"}; see {@link HookNames}. */
    public static String actName(String shortName, int layer, String sublayer) {
        return HookNames.actName(shortName, layer, sublayer);
    }

    /** {@code actName("embed")} is {@code "hook_embed"}, {@code actName("scale")} {@code "ln_final.hook_scale"}. */
    public static String actName(String shortName) {
        return HookNames.actName(shortName);
    }

    /** Attaches a derived array to this cache so it is freed with it. */
    private NDArray keep(NDArray a) {
        NDScope.unregister(a);
        a.attach(manager);
        return a;
    }

    /** Name, shape and size of every cached activation. */
    public Table toTable() {
        checkOpen();
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

    /** Renders as the table of names and shapes (a closed cache renders as {@code ActivationCache(closed)}). */
    @Override
    public String toHtml() {
        if (closed) return "<pre>" + Display.escapeHtml(toString()) + "</pre>";
        return Display.render(toTable()).get(Display.HTML);
    }

    /** Frees every cached array; later calls of any method but this one and {@code toString} throw. */
    @Override
    public void close() {
        closed = true;
        decompositions.clear();
        acts.clear();
        logits = null;
        manager.close();
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this ActivationCache was closed (by close() or its try-with-resources "
                    + "block); its arrays are freed. Run the model again (model.runWithCache(...)) for a new cache; to "
                    + "keep an array past the cache, copy it out before the cache closes: NDArray kept = "
                    + "cache.get(...).duplicate(); kept.attach(model.manager());");
        }
        if (!manager.isOpen()) {
            throw new IllegalStateException("this ActivationCache's arrays were freed with its model (model.close()); "
                    + "load the model and run it again for a new cache");
        }
    }

    @Override
    public String toString() {
        if (closed) return "ActivationCache(closed)";
        if (!manager.isOpen()) return "ActivationCache(freed with its model)";
        long bytes = acts.values().stream().mapToLong(a -> a.size() * a.getDataType().getNumOfBytes()).sum();
        return String.format(java.util.Locale.ROOT, "ActivationCache(%d activations, %.1f MB)", acts.size(),
                bytes / 1e6);
    }
}
