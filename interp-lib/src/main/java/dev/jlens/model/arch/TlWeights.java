package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The weights as TransformerLens names and lays them out, beside the checkpoint-named {@code parameters()}:
 * {@code embed.W_E} {@code [d_vocab, d_model]}, {@code pos_embed.W_pos} {@code [n_ctx, d_model]},
 * {@code blocks.L.attn.W_Q} {@code [n_heads, d_model, d_head]}, {@code W_O} {@code [n_heads, d_head, d_model]},
 * {@code b_Q} {@code [n_heads, d_head]}, {@code b_O} {@code [d_model]}, {@code mlp.W_in}/{@code W_gate}
 * {@code [d_model, d_mlp]}, {@code W_out} {@code [d_mlp, d_model]}, {@code ln1.w}, {@code unembed.W_U}
 * {@code [d_model, d_vocab]}. Biases a model lacks are zeros, as in TransformerLens's state dict. With grouped-query
 * attention the state-dict names are {@code _W_K}, {@code _W_V}, {@code _b_K}, {@code _b_V} with {@code n_kv_heads}
 * heads, and {@link #W_K(int)} etc. repeat each to its query heads ({@code W_K[h] = _W_K[h / group]}), like
 * TransformerLens's {@code W_K} property. A gated MLP with biases (Hugging Face's {@code mlp_bias}) adds its gate bias
 * as {@code mlp.b_gate} and {@code b_in} is the up projection's bias, both before the product.
 *
 * <p>Weights are not folded or centred: for RMSNorm families {@code ln1.hook_normalized} is taken before the norm's
 * weight, so {@code hook_q = (normalized * ln1.w) @ W_Q + b_Q}. Every array returned is a fresh copy (changing it
 * does not change the model) owned like a forward pass's result: by the model, and by the caller's {@link NDScope} if
 * there is one, so a loop inside a scope does not grow memory.
 */
public final class TlWeights {

    /** The weights outside the blocks; {@code wPos} and {@code lnFinalB} are null where the family has none. */
    record Outer(NDArray wE, NDArray wPos, NDArray lnFinalW, NDArray lnFinalB, NDArray wU) {
        // wE and wU are [d_vocab, d_model]
    }

    /**
     * One block's weights as torch linear maps {@code [out, in]} with heads along {@code out} (views on the model's
     * tensors); null where the block has none (biases, LayerNorm biases, the gate, the MLP of an attention-only model).
     */
    record Block(NDArray ln1W, NDArray ln1B, NDArray wQ, NDArray bQ, NDArray wK, NDArray bK, NDArray wV, NDArray bV,
                 NDArray wO, NDArray bO, NDArray ln2W, NDArray ln2B, NDArray wIn, NDArray bIn, NDArray wGate,
                 NDArray bGate, NDArray wOut, NDArray bOut) {}

    private record Item(Shape shape, Supplier<NDArray> value) {}

    private final Architecture arch;
    private final NDManager out;
    private final int nHeads, nKvHeads, dHead, dModel, dMlp, nLayers;
    private final String kvPrefix;
    private final Map<String, Item> items = new LinkedHashMap<>();

    /** The view of {@code arch}'s weights; arrays it returns are attached to {@code out}. */
    public TlWeights(Architecture arch, NDManager out) {
        this.arch = arch;
        this.out = out;
        ModelConfig c = arch.cfg();
        nHeads = c.nHeads();
        nKvHeads = c.nKvHeads();
        dHead = c.dHead();
        dModel = c.dModel();
        dMlp = c.dMlp();
        nLayers = c.nLayers();
        kvPrefix = nKvHeads != nHeads ? "_" : "";
        Outer o;
        Block b;
        try (NDScope probe = new NDScope()) {   // which weights exist, the same in every block
            o = arch.tlOuter();
            b = arch.tlBlock(0);
        }
        long v = c.dVocab();
        outer("embed.W_E", new Shape(v, dModel), Outer::wE);
        if (o.wPos() != null) outer("pos_embed.W_pos", new Shape(c.nCtx(), dModel), Outer::wPos);
        for (int l = 0; l < nLayers; l++) {
            layer(l, "ln1.w", new Shape(dModel), Block::ln1W);
            if (b.ln1B() != null) layer(l, "ln1.b", new Shape(dModel), Block::ln1B);
            layer(l, "attn.W_Q", new Shape(nHeads, dModel, dHead), w -> inHeads(w.wQ(), nHeads));
            layer(l, "attn." + kvPrefix + "W_K", new Shape(nKvHeads, dModel, dHead), w -> inHeads(w.wK(), nKvHeads));
            layer(l, "attn." + kvPrefix + "W_V", new Shape(nKvHeads, dModel, dHead), w -> inHeads(w.wV(), nKvHeads));
            layer(l, "attn.W_O", new Shape(nHeads, dHead, dModel),
                    w -> w.wO().reshape(dModel, nHeads, dHead).transpose(1, 2, 0));
            layer(l, "attn.b_Q", new Shape(nHeads, dHead), w -> bias(w.bQ(), nHeads, dHead));
            layer(l, "attn." + kvPrefix + "b_K", new Shape(nKvHeads, dHead), w -> bias(w.bK(), nKvHeads, dHead));
            layer(l, "attn." + kvPrefix + "b_V", new Shape(nKvHeads, dHead), w -> bias(w.bV(), nKvHeads, dHead));
            layer(l, "attn.b_O", new Shape(dModel), w -> bias(w.bO(), dModel));
            if (b.wIn() == null) continue;   // attention-only
            layer(l, "ln2.w", new Shape(dModel), Block::ln2W);
            if (b.ln2B() != null) layer(l, "ln2.b", new Shape(dModel), Block::ln2B);
            layer(l, "mlp.W_in", new Shape(dModel, dMlp), w -> w.wIn().transpose());
            if (b.wGate() != null) layer(l, "mlp.W_gate", new Shape(dModel, dMlp), w -> w.wGate().transpose());
            layer(l, "mlp.W_out", new Shape(dMlp, dModel), w -> w.wOut().transpose());
            layer(l, "mlp.b_in", new Shape(dMlp), w -> bias(w.bIn(), dMlp));
            if (b.bGate() != null) layer(l, "mlp.b_gate", new Shape(dMlp), Block::bGate);
            layer(l, "mlp.b_out", new Shape(dModel), w -> bias(w.bOut(), dModel));
        }
        outer("ln_final.w", new Shape(dModel), Outer::lnFinalW);
        if (o.lnFinalB() != null) outer("ln_final.b", new Shape(dModel), Outer::lnFinalB);
        outer("unembed.W_U", new Shape(dModel, v), w -> w.wU().transpose());
        outer("unembed.b_U", new Shape(v), w -> bias(null, v));
    }

    private void outer(String name, Shape shape, Function<Outer, NDArray> f) {
        items.put(name, new Item(shape, () -> f.apply(arch.tlOuter())));
    }

    private void layer(int l, String name, Shape shape, Function<Block, NDArray> f) {
        items.put("blocks." + l + "." + name, new Item(shape, () -> f.apply(arch.tlBlock(l))));
    }

    /** A torch-layout projection {@code [heads * d_head, d_model]} as {@code [heads, d_model, d_head]}. */
    private NDArray inHeads(NDArray w, int heads) {
        return w.reshape(heads, dHead, dModel).transpose(0, 2, 1);
    }

    /** A bias reshaped to {@code dims}, or zeros where the model has none. */
    private NDArray bias(NDArray b, long... dims) {
        return b != null ? b.reshape(dims) : out.zeros(new Shape(dims));
    }

    // ---------------------------------------------------------------- by name

    /** The weight called {@code name} in TransformerLens's state dict; an unknown name throws naming the nearest. */
    public NDArray get(String name) {
        Item item = items.get(name);
        if (item == null) {
            IllegalArgumentException e = WeightMap.unknown(name, items.keySet(), "TransformerLens weight");
            if (!kvPrefix.isEmpty() && name.matches(".*attn\\.[Wb]_[KV]")) {
                throw new IllegalArgumentException(e.getMessage() + "; with grouped-query attention the state dict "
                        + "holds _W_K, _W_V, _b_K, _b_V (" + nKvHeads + " heads) and W_K(layer) etc. repeat them to "
                        + nHeads + " heads");
            }
            throw e;
        }
        NDArray copy;
        try (NDScope scope = new NDScope()) {   // frees the views and reshapes the copy is made from
            copy = item.value().get().duplicate();
            NDScope.unregister(copy);
        }
        copy.attach(out);
        NDScope.register(copy);   // into the caller's scope, if there is one
        return copy;
    }

    /** Every name, in state-dict order. */
    public List<String> names() {
        return new ArrayList<>(items.keySet());
    }

    /** The shape of {@code name}, without making the array. */
    public Shape shape(String name) {
        Item item = items.get(name);
        if (item == null) throw WeightMap.unknown(name, items.keySet(), "TransformerLens weight");
        return item.shape();
    }

    // ---------------------------------------------------------------- typed, as TransformerLens's properties

    /** Token embedding {@code [d_vocab, d_model]}. */
    public NDArray W_E() {
        return get("embed.W_E");
    }

    /** Learned positional embedding {@code [n_ctx, d_model]} (families with learned positions only). */
    public NDArray W_pos() {
        return get("pos_embed.W_pos");
    }

    /** Unembedding {@code [d_model, d_vocab]}. */
    public NDArray W_U() {
        return get("unembed.W_U");
    }

    /** Unembedding bias {@code [d_vocab]} (zeros for the families here). */
    public NDArray b_U() {
        return get("unembed.b_U");
    }

    /** Query weights of block {@code layer}: {@code [n_heads, d_model, d_head]}. */
    public NDArray W_Q(int layer) {
        return get(attn(layer, "W_Q"));
    }

    /** Key weights {@code [n_heads, d_model, d_head]}, key/value heads repeated to their query heads. */
    public NDArray W_K(int layer) {
        return repeated(attn(layer, kvPrefix + "W_K"));
    }

    /** Value weights {@code [n_heads, d_model, d_head]}, key/value heads repeated to their query heads. */
    public NDArray W_V(int layer) {
        return repeated(attn(layer, kvPrefix + "W_V"));
    }

    /** Output weights {@code [n_heads, d_head, d_model]}. */
    public NDArray W_O(int layer) {
        return get(attn(layer, "W_O"));
    }

    /** Query bias {@code [n_heads, d_head]}. */
    public NDArray b_Q(int layer) {
        return get(attn(layer, "b_Q"));
    }

    /** Key bias {@code [n_heads, d_head]}, repeated like {@link #W_K}. */
    public NDArray b_K(int layer) {
        return repeated(attn(layer, kvPrefix + "b_K"));
    }

    /** Value bias {@code [n_heads, d_head]}, repeated like {@link #W_V}. */
    public NDArray b_V(int layer) {
        return repeated(attn(layer, kvPrefix + "b_V"));
    }

    /** Output bias {@code [d_model]}. */
    public NDArray b_O(int layer) {
        return get(attn(layer, "b_O"));
    }

    /** MLP input weights {@code [d_model, d_mlp]} (the up projection of a gated MLP). */
    public NDArray W_in(int layer) {
        return get(mlp(layer, "W_in"));
    }

    /** Gate weights {@code [d_model, d_mlp]} of a gated MLP (Llama's {@code gate_proj}). */
    public NDArray W_gate(int layer) {
        return get(mlp(layer, "W_gate"));
    }

    /** MLP output weights {@code [d_mlp, d_model]}. */
    public NDArray W_out(int layer) {
        return get(mlp(layer, "W_out"));
    }

    /** MLP input bias {@code [d_mlp]}. */
    public NDArray b_in(int layer) {
        return get(mlp(layer, "b_in"));
    }

    /** MLP output bias {@code [d_model]}. */
    public NDArray b_out(int layer) {
        return get(mlp(layer, "b_out"));
    }

    private String attn(int layer, String name) {
        return block(layer) + "attn." + name;
    }

    private String mlp(int layer, String name) {
        return block(layer) + "mlp." + name;
    }

    private String block(int layer) {
        if (layer < 0 || layer >= nLayers) {
            throw new IllegalArgumentException("layer " + layer + " out of range [0, " + nLayers + ")");
        }
        return "blocks." + layer + ".";
    }

    /** A key/value weight or bias with each key/value head repeated for the query heads that read it. */
    private NDArray repeated(String name) {
        NDArray kv = get(name);
        if (nKvHeads == nHeads) return kv;
        NDArray rep = kv.repeat(0, nHeads / nKvHeads);
        kv.close();
        return rep;
    }

    @Override
    public String toString() {
        return "TlWeights(" + items.size() + " weights: " + String.join(", ", names().subList(0, Math.min(6,
                items.size()))) + (items.size() > 6 ? ", ..." : "") + ")";
    }
}
