package dev.jlens.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;

import java.util.Map;

/**
 * GPT-2's forward pass written out with no hook points, on a {@link HookedTransformer}'s own weights and with the
 * same DJL operations as its GPT-2 architecture: the reference that "a hook point costs nothing" is measured
 * against. Inference only; causal mask, no padding, no KV cache.
 */
public final class PlainGpt2 {
    private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);

    private final ModelConfig cfg;
    private final NDManager manager;
    private final NDArray wte, wpe, lnFW, lnFB;   // wte [d_vocab, d_model] is also the unembedding
    private final Layer[] layers;

    /** One block's weights, Conv1D layout {@code [in, out]} as in the checkpoint. */
    private record Layer(NDArray ln1W, NDArray ln1B, NDArray cAttnW, NDArray cAttnB, NDArray cProjW, NDArray cProjB,
                         NDArray ln2W, NDArray ln2B, NDArray fcW, NDArray fcB, NDArray mlpProjW, NDArray mlpProjB) {}

    private PlainGpt2(ModelConfig cfg, NDManager manager, Map<String, NDArray> p) {
        this.cfg = cfg;
        this.manager = manager;
        wte = req(p, "transformer.wte.weight");
        wpe = req(p, "transformer.wpe.weight");
        lnFW = req(p, "transformer.ln_f.weight");
        lnFB = req(p, "transformer.ln_f.bias");
        layers = new Layer[cfg.nLayers()];
        for (int l = 0; l < layers.length; l++) {
            String n = "transformer.h." + l + ".";
            layers[l] = new Layer(req(p, n + "ln_1.weight"), req(p, n + "ln_1.bias"),
                    req(p, n + "attn.c_attn.weight"), req(p, n + "attn.c_attn.bias"),
                    req(p, n + "attn.c_proj.weight"), req(p, n + "attn.c_proj.bias"),
                    req(p, n + "ln_2.weight"), req(p, n + "ln_2.bias"),
                    req(p, n + "mlp.c_fc.weight"), req(p, n + "mlp.c_fc.bias"),
                    req(p, n + "mlp.c_proj.weight"), req(p, n + "mlp.c_proj.bias"));
        }
    }

    /** The plain forward pass over {@code model}'s weights (shared, not copied); the model must be a GPT-2 with MLPs. */
    public static PlainGpt2 of(HookedTransformer model) {
        ModelConfig cfg = model.cfg();
        if (cfg.family() != ModelConfig.Family.GPT2 || cfg.attnOnly() || !cfg.tiedEmbeddings()) {
            throw new IllegalArgumentException("PlainGpt2 needs a GPT-2 model with MLPs and tied embeddings, got " + cfg);
        }
        return new PlainGpt2(cfg, model.manager(), model.parameters());
    }

    private static NDArray req(Map<String, NDArray> p, String name) {
        NDArray a = p.get(name);
        if (a == null) throw new IllegalArgumentException("model has no parameter '" + name + "'; it has " + p.keySet());
        return a;
    }

    /**
     * Logits {@code [batch, pos, d_vocab]} for equal-length sequences. Intermediates are freed; the result is
     * registered with the caller's {@link NDScope}, if any, else the caller closes it.
     */
    public NDArray forward(long[][] ids) {
        int b = ids.length, p = ids[0].length;
        NDArray logits;
        try (NDScope scope = new NDScope()) {
            long[] flat = new long[b * p], positions = new long[b * p];
            float[] mask = new float[b * p * p];
            for (int r = 0; r < b; r++) {
                System.arraycopy(ids[r], 0, flat, r * p, p);
                for (int j = 0; j < p; j++) {
                    positions[r * p + j] = j;
                    for (int k = j + 1; k < p; k++) mask[(r * p + j) * p + k] = Float.NEGATIVE_INFINITY;
                }
            }
            NDArray tokens = manager.create(flat, new Shape(b, p));
            NDArray pos = manager.create(positions, new Shape(b, p));
            NDArray maskB1QK = manager.create(mask, new Shape(b, 1, p, p));
            logits = forward(tokens, pos, maskB1QK);
            NDScope.unregister(logits);
        }
        NDScope.register(logits);
        return logits;
    }

    private NDArray forward(NDArray tokens, NDArray pos, NDArray maskB1QK) {
        long batch = tokens.getShape().get(0), seq = tokens.getShape().get(1);
        int h = cfg.nHeads(), dh = cfg.dHead(), d = cfg.dModel();
        float eps = (float) cfg.normEps();
        double scale = 1.0 / Math.sqrt(dh);
        NDArray resid = embedding(tokens, wte).add(embedding(pos, wpe));          // [b, p, d]
        for (Layer l : layers) {
            NDArray x = layerNorm(resid, l.ln1W, l.ln1B, eps);
            NDArray qkv = linear(x, l.cAttnW.transpose(), l.cAttnB);              // [b, p, 3d]
            NDList parts = qkv.split(3, 2);
            NDArray q = parts.get(0).reshape(batch, seq, h, dh).transpose(0, 2, 1, 3);   // [b, h, q, dh]
            NDArray k = parts.get(1).reshape(batch, seq, h, dh).transpose(0, 2, 3, 1);   // [b, h, dh, k]
            NDArray v = parts.get(2).reshape(batch, seq, h, dh).transpose(0, 2, 1, 3);   // [b, h, k, dh]
            NDArray pattern = q.matMul(k).mul(scale).add(maskB1QK).softmax(-1);          // [b, h, q, k]
            NDArray z = pattern.matMul(v).transpose(0, 2, 1, 3);                          // [b, q, h, dh]
            NDArray attnOut = linear(z.reshape(batch, seq, d), l.cProjW.transpose(), l.cProjB);
            resid = resid.add(attnOut);
            NDArray x2 = layerNorm(resid, l.ln2W, l.ln2B, eps);
            NDArray pre = linear(x2, l.fcW.transpose(), l.fcB);                         // [b, p, d_mlp]
            NDArray post = geluNew(pre);
            resid = resid.add(linear(post, l.mlpProjW.transpose(), l.mlpProjB));
        }
        return linear(layerNorm(resid, lnFW, lnFB, eps), wte, null);              // [b, p, d_vocab]
    }

    private static NDArray linear(NDArray x, NDArray wOutIn, NDArray b) {
        return x.getNDArrayInternal().linear(x, wOutIn, b).singletonOrThrow();
    }

    private static NDArray layerNorm(NDArray x, NDArray w, NDArray b, float eps) {
        return x.getNDArrayInternal().layerNorm(x, new Shape(x.getShape().tail()), w, b, eps).singletonOrThrow();
    }

    private static NDArray embedding(NDArray ids, NDArray table) {
        return ids.getNDArrayInternal().embedding(ids, table, SparseFormat.DENSE).singletonOrThrow();
    }

    private static NDArray geluNew(NDArray x) {
        NDArray inner = x.pow(3).mul(0.044715).add(x).mul(SQRT_2_OVER_PI);
        return inner.tanh().add(1).mul(x).mul(0.5);
    }
}
