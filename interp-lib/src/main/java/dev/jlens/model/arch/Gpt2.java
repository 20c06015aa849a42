package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jlens.hook.HookPoint;
import dev.jlens.hook.HookRegistry;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * GPT-2 ({@code GPT2LMHeadModel}): learned positions, pre-LayerNorm blocks, fused QKV projection with biases,
 * GELU MLP, unembedding tied to the token embedding. Weights keep the checkpoint's Conv1D layout {@code [in, out]}.
 */
public final class Gpt2 implements Architecture {
    private final ModelConfig cfg;

    // Hook points, in forward order (TransformerLens names).
    private final HookPoint hookEmbed;      // [batch, pos, d_model]
    private final HookPoint hookPosEmbed;   // [batch, pos, d_model]
    private final Block[] blocks;
    private final HookPoint lnFinalScale;   // [batch, pos, 1]
    private final HookPoint lnFinalNormalized; // [batch, pos, d_model]

    // Weights (checkpoint names without the "transformer." prefix).
    private NDArray wte;   // [d_vocab, d_model]
    private NDArray wpe;   // [n_ctx, d_model]
    private NDArray lnFW, lnFB;
    private NDArray lmHead; // [d_vocab, d_model]; null when tied to wte

    /** One block's hook points and weights. */
    private static final class Block {
        HookPoint residPre, ln1Scale, ln1Normalized, q, k, v, attnScores, pattern, z, result, attnOut, residMid,
                ln2Scale, ln2Normalized, mlpPre, mlpPost, mlpOut, residPost;
        NDArray ln1W, ln1B, cAttnW, cAttnB, cProjW, cProjB, ln2W, ln2B, fcW, fcB, mlpProjW, mlpProjB;
    }

    Gpt2(ModelConfig cfg, HookRegistry hooks) {
        this.cfg = cfg;
        hookEmbed = hooks.declare("hook_embed");
        hookPosEmbed = hooks.declare("hook_pos_embed");
        blocks = new Block[cfg.nLayers()];
        for (int l = 0; l < blocks.length; l++) {
            String p = "blocks." + l + ".";
            Block b = new Block();
            b.residPre = hooks.declare(p + "hook_resid_pre");           // [batch, pos, d_model]
            b.ln1Scale = hooks.declare(p + "ln1.hook_scale");           // [batch, pos, 1]
            b.ln1Normalized = hooks.declare(p + "ln1.hook_normalized"); // [batch, pos, d_model]
            b.q = hooks.declare(p + "attn.hook_q");                     // [batch, pos, head, d_head]
            b.k = hooks.declare(p + "attn.hook_k");                     // [batch, pos, head, d_head]
            b.v = hooks.declare(p + "attn.hook_v");                     // [batch, pos, head, d_head]
            b.attnScores = hooks.declare(p + "attn.hook_attn_scores");  // [batch, head, q_pos, k_pos]
            b.pattern = hooks.declare(p + "attn.hook_pattern");         // [batch, head, q_pos, k_pos]
            b.z = hooks.declare(p + "attn.hook_z");                     // [batch, pos, head, d_head]
            b.result = hooks.declare(p + "attn.hook_result");           // [batch, pos, head, d_model]
            b.attnOut = hooks.declare(p + "hook_attn_out");             // [batch, pos, d_model]
            b.residMid = hooks.declare(p + "hook_resid_mid");           // [batch, pos, d_model]
            if (!cfg.attnOnly()) {
                b.ln2Scale = hooks.declare(p + "ln2.hook_scale");
                b.ln2Normalized = hooks.declare(p + "ln2.hook_normalized");
                b.mlpPre = hooks.declare(p + "mlp.hook_pre");           // [batch, pos, d_mlp]
                b.mlpPost = hooks.declare(p + "mlp.hook_post");         // [batch, pos, d_mlp]
                b.mlpOut = hooks.declare(p + "hook_mlp_out");           // [batch, pos, d_model]
            }
            b.residPost = hooks.declare(p + "hook_resid_post");         // [batch, pos, d_model]
            blocks[l] = b;
        }
        lnFinalScale = hooks.declare("ln_final.hook_scale");
        lnFinalNormalized = hooks.declare("ln_final.hook_normalized");
    }

    @Override
    public ModelConfig cfg() {
        return cfg;
    }

    @Override
    public NDArray forward(ForwardInputs in, int stopAtLayer) {
        KvCache cache = in.cache();
        NDArray embed = hookEmbed.run(Ops.embedding(in.tokens(), wte));
        NDArray posEmbed = hookPosEmbed.run(Ops.embedding(in.positions(), wpe));
        NDArray resid = embed.add(posEmbed);
        int nHeads = cfg.nHeads(), dHead = cfg.dHead(), d = cfg.dModel();
        long batch = in.batch(), pos = in.pos();
        for (int l = 0; l < blocks.length; l++) {
            if (l == stopAtLayer) return blocks[l].residPre.run(resid);
            Block b = blocks[l];
            resid = b.residPre.run(resid);
            NDArray x = Ops.layerNorm(resid, b.ln1W, b.ln1B, cfg.normEps(), b.ln1Scale, b.ln1Normalized);
            NDArray qkv = Ops.linear(x, b.cAttnW.transpose(), b.cAttnB);            // [b, p, 3 d]
            ai.djl.ndarray.NDList qkvParts = qkv.split(3, 2);
            NDArray q = b.q.run(qkvParts.get(0).reshape(batch, pos, nHeads, dHead));
            NDArray k = b.k.run(qkvParts.get(1).reshape(batch, pos, nHeads, dHead));
            NDArray v = b.v.run(qkvParts.get(2).reshape(batch, pos, nHeads, dHead));
            if (cache != null) {
                NDArray[] kv = cache.append(l, k, v);
                k = kv[0];
                v = kv[1];
            }
            NDArray z = Ops.attention(q, k, v, in.mask(), b.attnScores, b.pattern, b.z);
            NDArray attnOut = Ops.linear(z.reshape(batch, pos, d), b.cProjW.transpose(), b.cProjB);
            if (b.result.isActive()) {
                // Per-head outputs only when hooked; a hook that replaces them redefines attn_out as their sum.
                NDArray result = Ops.perHeadResult(z, b.cProjW.transpose());
                NDArray hooked = b.result.run(result);
                if (hooked != result) attnOut = hooked.sum(new int[] {2}).add(b.cProjB);
            }
            attnOut = b.attnOut.run(attnOut);
            if (cfg.attnOnly()) {
                resid = b.residPost.run(resid.add(attnOut));
                continue;
            }
            resid = b.residMid.run(resid.add(attnOut));
            NDArray x2 = Ops.layerNorm(resid, b.ln2W, b.ln2B, cfg.normEps(), b.ln2Scale, b.ln2Normalized);
            NDArray pre = b.mlpPre.run(Ops.linear(x2, b.fcW.transpose(), b.fcB));
            NDArray post = b.mlpPost.run(Ops.activation(cfg.act(), pre));
            NDArray mlpOut = b.mlpOut.run(Ops.linear(post, b.mlpProjW.transpose(), b.mlpProjB));
            resid = b.residPost.run(resid.add(mlpOut));
        }
        NDArray normed = Ops.layerNorm(resid, lnFW, lnFB, cfg.normEps(), lnFinalScale, lnFinalNormalized);
        return unembed(normed);
    }

    @Override
    public NDArray finalNorm(NDArray resid) {
        long dm = resid.getShape().tail();
        return resid.getNDArrayInternal().layerNorm(resid, new ai.djl.ndarray.types.Shape(dm), lnFW, lnFB,
                (float) cfg.normEps()).singletonOrThrow();
    }

    @Override
    public NDArray unembed(NDArray normed) {
        return Ops.linear(normed, unembedWeight(), null);
    }

    @Override
    public NDArray unembedWeight() {
        return lmHead != null ? lmHead : wte;
    }

    @Override
    public NDArray embedWeight() {
        return wte;
    }

    // ------------------------------------------------------------------ weights

    @Override
    public void load(Weights w) {
        long d = cfg.dModel(), v = cfg.dVocab(), m = cfg.dMlp();
        String pre = w.contains("transformer.wte.weight") ? "transformer." : "";
        wte = w.load(w.resolve(pre + "wte.weight"), v, d);
        wpe = w.load(pre + "wpe.weight", cfg.nCtx(), d);
        for (int l = 0; l < blocks.length; l++) {
            Block b = blocks[l];
            String p = pre + "h." + l + ".";
            b.ln1W = w.load(p + "ln_1.weight", d);
            b.ln1B = w.load(p + "ln_1.bias", d);
            b.cAttnW = w.load(p + "attn.c_attn.weight", d, 3 * d);
            b.cAttnB = w.load(p + "attn.c_attn.bias", 3 * d);
            b.cProjW = w.load(p + "attn.c_proj.weight", d, d);
            b.cProjB = w.load(p + "attn.c_proj.bias", d);
            if (!cfg.attnOnly()) {
                b.ln2W = w.load(p + "ln_2.weight", d);
                b.ln2B = w.load(p + "ln_2.bias", d);
                b.fcW = w.load(p + "mlp.c_fc.weight", d, m);
                b.fcB = w.load(p + "mlp.c_fc.bias", m);
                b.mlpProjW = w.load(p + "mlp.c_proj.weight", m, d);
                b.mlpProjB = w.load(p + "mlp.c_proj.bias", d);
            }
        }
        lnFW = w.load(pre + "ln_f.weight", d);
        lnFB = w.load(pre + "ln_f.bias", d);
        if (!cfg.tiedEmbeddings()) lmHead = w.load("lm_head.weight", v, d);
    }

    @Override
    public void initRandom(NDManager mgr, long seed) {
        long d = cfg.dModel(), v = cfg.dVocab(), m = cfg.dMlp();
        double std = 0.02, projStd = 0.02 / Math.sqrt(2.0 * cfg.nLayers());
        wte = Params.normal(mgr, seed, "wte", std, v, d);
        wpe = Params.normal(mgr, seed, "wpe", 0.01, cfg.nCtx(), d);
        for (int l = 0; l < blocks.length; l++) {
            Block b = blocks[l];
            String p = "h." + l + ".";
            b.ln1W = Params.ones(mgr, d);
            b.ln1B = Params.zeros(mgr, d);
            b.cAttnW = Params.normal(mgr, seed, p + "c_attn", std, d, 3 * d);
            b.cAttnB = Params.zeros(mgr, 3 * d);
            b.cProjW = Params.normal(mgr, seed, p + "c_proj", projStd, d, d);
            b.cProjB = Params.zeros(mgr, d);
            if (!cfg.attnOnly()) {
                b.ln2W = Params.ones(mgr, d);
                b.ln2B = Params.zeros(mgr, d);
                b.fcW = Params.normal(mgr, seed, p + "c_fc", std, d, m);
                b.fcB = Params.zeros(mgr, m);
                b.mlpProjW = Params.normal(mgr, seed, p + "mlp.c_proj", projStd, m, d);
                b.mlpProjB = Params.zeros(mgr, d);
            }
        }
        lnFW = Params.ones(mgr, d);
        lnFB = Params.zeros(mgr, d);
        if (!cfg.tiedEmbeddings()) lmHead = Params.normal(mgr, seed, "lm_head", std, v, d);
    }

    @Override
    public Map<String, NDArray> parameters() {
        Map<String, NDArray> p = new LinkedHashMap<>();
        p.put("transformer.wte.weight", wte);
        p.put("transformer.wpe.weight", wpe);
        for (int l = 0; l < blocks.length; l++) {
            Block b = blocks[l];
            String n = "transformer.h." + l + ".";
            p.put(n + "ln_1.weight", b.ln1W);
            p.put(n + "ln_1.bias", b.ln1B);
            p.put(n + "attn.c_attn.weight", b.cAttnW);
            p.put(n + "attn.c_attn.bias", b.cAttnB);
            p.put(n + "attn.c_proj.weight", b.cProjW);
            p.put(n + "attn.c_proj.bias", b.cProjB);
            if (!cfg.attnOnly()) {
                p.put(n + "ln_2.weight", b.ln2W);
                p.put(n + "ln_2.bias", b.ln2B);
                p.put(n + "mlp.c_fc.weight", b.fcW);
                p.put(n + "mlp.c_fc.bias", b.fcB);
                p.put(n + "mlp.c_proj.weight", b.mlpProjW);
                p.put(n + "mlp.c_proj.bias", b.mlpProjB);
            }
        }
        p.put("transformer.ln_f.weight", lnFW);
        p.put("transformer.ln_f.bias", lnFB);
        if (lmHead != null) p.put("lm_head.weight", lmHead);
        return p;
    }

    @Override
    public Map<String, NDArray> stateDict(NDManager scratch) {
        return parameters();   // GPT-2 keeps the checkpoint layout as is
    }
}
