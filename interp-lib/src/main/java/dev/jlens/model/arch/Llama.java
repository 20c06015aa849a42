package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.HookPoint;
import dev.jlens.hook.HookRegistry;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Llama and its relatives ({@code LlamaForCausalLM}, {@code Qwen2ForCausalLM} with q/k/v biases,
 * {@code MistralForCausalLM} with a sliding window): RMSNorm, rotary embeddings in Hugging Face's rotate-half
 * layout (with Llama-3.1 frequency scaling), grouped-query attention, SwiGLU MLP.
 * Q, K and V projections are kept fused into one matrix, and so are gate and up, so each is one matmul.
 */
public final class Llama implements Architecture {
    private final ModelConfig cfg;

    private final HookPoint hookEmbed;          // [batch, pos, d_model]
    private final Block[] blocks;
    private final HookPoint lnFinalScale;       // [batch, pos, 1]
    private final HookPoint lnFinalNormalized;  // [batch, pos, d_model]

    private NDArray embed;     // [d_vocab, d_model]
    private NDArray normW;     // [d_model]
    private NDArray lmHead;    // [d_vocab, d_model]; null when tied
    private NDArray cosTable;  // [n_ctx, d_head]
    private NDArray sinTable;  // [n_ctx, d_head], first half negated (folds rotate-half's sign in)

    private static final class Block {
        HookPoint residPre, ln1Scale, ln1Normalized, q, k, v, rotQ, rotK, attnScores, pattern, z, result, attnOut,
                residMid, ln2Scale, ln2Normalized, mlpPre, mlpPreLinear, mlpPost, mlpOut, residPost;
        NDArray inNormW, qkvW, qkvB, oW, oB, postNormW, gateUpW, gateUpB, downW, downB;
    }

    Llama(ModelConfig cfg, HookRegistry hooks) {
        this.cfg = cfg;
        hookEmbed = hooks.declare("hook_embed");
        blocks = new Block[cfg.nLayers()];
        for (int l = 0; l < blocks.length; l++) {
            String p = "blocks." + l + ".";
            Block b = new Block();
            b.residPre = hooks.declare(p + "hook_resid_pre");           // [batch, pos, d_model]
            b.ln1Scale = hooks.declare(p + "ln1.hook_scale");           // [batch, pos, 1]
            b.ln1Normalized = hooks.declare(p + "ln1.hook_normalized"); // [batch, pos, d_model] (before weight)
            b.q = hooks.declare(p + "attn.hook_q");                     // [batch, pos, head, d_head]
            b.k = hooks.declare(p + "attn.hook_k");                     // [batch, pos, kv_head, d_head]
            b.v = hooks.declare(p + "attn.hook_v");                     // [batch, pos, kv_head, d_head]
            b.rotQ = hooks.declare(p + "attn.hook_rot_q");              // [batch, pos, head, d_head]
            b.rotK = hooks.declare(p + "attn.hook_rot_k");              // [batch, pos, kv_head, d_head]
            b.attnScores = hooks.declare(p + "attn.hook_attn_scores");  // [batch, head, q_pos, k_pos]
            b.pattern = hooks.declare(p + "attn.hook_pattern");         // [batch, head, q_pos, k_pos]
            b.z = hooks.declare(p + "attn.hook_z");                     // [batch, pos, head, d_head]
            b.result = hooks.declare(p + "attn.hook_result");           // [batch, pos, head, d_model]
            b.attnOut = hooks.declare(p + "hook_attn_out");             // [batch, pos, d_model]
            b.residMid = hooks.declare(p + "hook_resid_mid");           // [batch, pos, d_model]
            b.ln2Scale = hooks.declare(p + "ln2.hook_scale");
            b.ln2Normalized = hooks.declare(p + "ln2.hook_normalized");
            b.mlpPre = hooks.declare(p + "mlp.hook_pre");               // [batch, pos, d_mlp] gate, before act
            b.mlpPreLinear = hooks.declare(p + "mlp.hook_pre_linear");  // [batch, pos, d_mlp] up projection
            b.mlpPost = hooks.declare(p + "mlp.hook_post");             // [batch, pos, d_mlp] act(gate) * up
            b.mlpOut = hooks.declare(p + "hook_mlp_out");               // [batch, pos, d_model]
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
        long batch = in.batch(), pos = in.pos();
        int h = cfg.nHeads(), kvh = cfg.nKvHeads(), dh = cfg.dHead();
        NDArray cos = Ops.embedding(in.positions(), cosTable).expandDims(2);   // [b, p, 1, d_head]
        NDArray sin = Ops.embedding(in.positions(), sinTable).expandDims(2);
        NDArray resid = hookEmbed.run(Ops.embedding(in.tokens(), embed));
        for (int l = 0; l < blocks.length; l++) {
            if (l == stopAtLayer) return blocks[l].residPre.run(resid);
            Block b = blocks[l];
            resid = b.residPre.run(resid);
            NDArray x = Ops.rmsNorm(resid, b.inNormW, cfg.normEps(), b.ln1Scale, b.ln1Normalized);
            NDList qkv = Ops.linear(x, b.qkvW, b.qkvB).split(new long[] {(long) h * dh, (long) (h + kvh) * dh}, 2);
            NDArray q = b.q.run(qkv.get(0).reshape(batch, pos, h, dh));
            NDArray k = b.k.run(qkv.get(1).reshape(batch, pos, kvh, dh));
            NDArray v = b.v.run(qkv.get(2).reshape(batch, pos, kvh, dh));
            q = b.rotQ.run(rotate(q, cos, sin));
            k = b.rotK.run(rotate(k, cos, sin));
            if (cache != null) {
                NDArray[] kv = cache.append(l, k, v);
                k = kv[0];
                v = kv[1];
            }
            NDArray z = Ops.attention(q, k, v, in.mask(), b.attnScores, b.pattern, b.z);
            NDArray attnOut = Ops.linear(z.reshape(batch, pos, (long) h * dh), b.oW, b.oB);
            if (b.result.isActive()) {
                // Per-head outputs only when hooked; a hook that replaces them redefines attn_out as their sum.
                NDArray result = Ops.perHeadResult(z, b.oW);
                NDArray hooked = b.result.run(result);
                if (hooked != result) {
                    attnOut = hooked.sum(new int[] {2});
                    if (b.oB != null) attnOut = attnOut.add(b.oB);
                }
            }
            attnOut = b.attnOut.run(attnOut);
            resid = b.residMid.run(resid.add(attnOut));
            NDArray x2 = Ops.rmsNorm(resid, b.postNormW, cfg.normEps(), b.ln2Scale, b.ln2Normalized);
            NDList gateUp = Ops.linear(x2, b.gateUpW, b.gateUpB).split(2, 2);
            NDArray gate = b.mlpPre.run(gateUp.get(0));
            NDArray up = b.mlpPreLinear.run(gateUp.get(1));
            NDArray post = b.mlpPost.run(Ops.activation(cfg.act(), gate).mul(up));
            NDArray mlpOut = b.mlpOut.run(Ops.linear(post, b.downW, b.downB));
            resid = b.residPost.run(resid.add(mlpOut));
        }
        NDArray normed = Ops.rmsNorm(resid, normW, cfg.normEps(), lnFinalScale, lnFinalNormalized);
        return unembed(normed);
    }

    /** Rotary embedding, rotate-half layout: {@code x * cos + swap_halves(x) * sin'} with sin' = [-sin, sin]. */
    private static NDArray rotate(NDArray x, NDArray cos, NDArray sin) {
        NDList halves = x.split(2, 3);
        NDArray swapped = halves.get(1).concat(halves.get(0), 3);
        return x.mul(cos).add(swapped.mul(sin));
    }

    @Override
    public NDArray finalNorm(NDArray resid) {
        NDArray scale = resid.square().mean(new int[] {-1}, true).add(cfg.normEps()).sqrt();
        return resid.div(scale).mul(normW);
    }

    @Override
    public NDArray unembed(NDArray normed) {
        return Ops.linear(normed, unembedWeight(), null);
    }

    @Override
    public NDArray unembedWeight() {
        return lmHead != null ? lmHead : embed;
    }

    @Override
    public NDArray embedWeight() {
        return embed;
    }

    // ------------------------------------------------------------------ weights

    @Override
    public void load(Weights w) {
        long d = cfg.dModel(), v = cfg.dVocab(), m = cfg.dMlp();
        long qd = (long) cfg.nHeads() * cfg.dHead(), kvd = (long) cfg.nKvHeads() * cfg.dHead();
        String pre = w.contains("model.embed_tokens.weight") ? "model." : "";
        embed = w.load(w.resolve(pre + "embed_tokens.weight"), v, d);
        NDManager mgr = embed.getManager();
        for (int l = 0; l < blocks.length; l++) {
            Block b = blocks[l];
            String p = pre + "layers." + l + ".";
            b.inNormW = w.load(p + "input_layernorm.weight", d);
            b.qkvW = concat(w.load(p + "self_attn.q_proj.weight", qd, d), w.load(p + "self_attn.k_proj.weight", kvd, d),
                    w.load(p + "self_attn.v_proj.weight", kvd, d));
            if (cfg.qkvBias()) {
                b.qkvB = concat(w.load(p + "self_attn.q_proj.bias", qd), w.load(p + "self_attn.k_proj.bias", kvd),
                        w.load(p + "self_attn.v_proj.bias", kvd));
            }
            b.oW = w.load(p + "self_attn.o_proj.weight", d, qd);
            if (cfg.attnOutBias()) b.oB = w.load(p + "self_attn.o_proj.bias", d);
            b.postNormW = w.load(p + "post_attention_layernorm.weight", d);
            b.gateUpW = concat(w.load(p + "mlp.gate_proj.weight", m, d), w.load(p + "mlp.up_proj.weight", m, d));
            b.downW = w.load(p + "mlp.down_proj.weight", d, m);
            if (cfg.mlpBias()) {
                b.gateUpB = concat(w.load(p + "mlp.gate_proj.bias", m), w.load(p + "mlp.up_proj.bias", m));
                b.downB = w.load(p + "mlp.down_proj.bias", d);
            }
        }
        normW = w.load(pre + "norm.weight", d);
        if (!cfg.tiedEmbeddings()) {
            lmHead = w.load("lm_head.weight", v, d);
        }
        buildRope(mgr);
    }

    /** Joins checkpoint tensors along their first axis into one fused parameter. */
    private static NDArray concat(NDArray... parts) {
        NDArray joined = ai.djl.ndarray.NDArrays.concat(new NDList(parts), 0);
        for (NDArray part : parts) part.close();
        return joined;
    }

    @Override
    public void initRandom(NDManager mgr, long seed) {
        long d = cfg.dModel(), v = cfg.dVocab(), m = cfg.dMlp();
        long qkvd = (long) (cfg.nHeads() + 2 * cfg.nKvHeads()) * cfg.dHead(), qd = (long) cfg.nHeads() * cfg.dHead();
        double std = 0.02, projStd = 0.02 / Math.sqrt(2.0 * cfg.nLayers());
        embed = Params.normal(mgr, seed, "embed_tokens", std, v, d);
        for (int l = 0; l < blocks.length; l++) {
            Block b = blocks[l];
            String p = "layers." + l + ".";
            b.inNormW = Params.ones(mgr, d);
            b.qkvW = Params.normal(mgr, seed, p + "qkv", std, qkvd, d);
            if (cfg.qkvBias()) b.qkvB = Params.zeros(mgr, qkvd);
            b.oW = Params.normal(mgr, seed, p + "o_proj", projStd, d, qd);
            if (cfg.attnOutBias()) b.oB = Params.zeros(mgr, d);
            b.postNormW = Params.ones(mgr, d);
            b.gateUpW = Params.normal(mgr, seed, p + "gate_up", std, 2 * m, d);
            b.downW = Params.normal(mgr, seed, p + "down_proj", projStd, d, m);
            if (cfg.mlpBias()) {
                b.gateUpB = Params.zeros(mgr, 2 * m);
                b.downB = Params.zeros(mgr, d);
            }
        }
        normW = Params.ones(mgr, d);
        if (!cfg.tiedEmbeddings()) lmHead = Params.normal(mgr, seed, "lm_head", std, v, d);
        buildRope(mgr);
    }

    /** cos/sin tables for every position, with Llama-3.1 frequency scaling when configured. */
    private void buildRope(NDManager mgr) {
        int dh = cfg.dHead(), half = dh / 2, n = cfg.nCtx();
        double[] invFreq = new double[half];
        for (int i = 0; i < half; i++) {
            double f = 1.0 / Math.pow(cfg.ropeTheta(), (2.0 * i) / dh);
            if (cfg.ropeScaling().isPresent()) {
                ModelConfig.RopeScaling s = cfg.ropeScaling().get();
                double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
                double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
                double wavelen = 2 * Math.PI / f;
                if (wavelen > lowWavelen) {
                    f = f / s.factor();
                } else if (wavelen >= highWavelen) {
                    double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor())
                            / (s.highFreqFactor() - s.lowFreqFactor());
                    f = (1 - smooth) * f / s.factor() + smooth * f;
                }
            }
            invFreq[i] = (float) f;   // Hugging Face computes inv_freq in float32
        }
        float[] cos = new float[n * dh], sin = new float[n * dh];
        for (int p = 0; p < n; p++) {
            for (int i = 0; i < dh; i++) {
                // float32 product, as torch computes position * inv_freq before cos/sin
                float angle = (float) p * (float) invFreq[i % half];
                cos[p * dh + i] = (float) Math.cos(angle);
                float s = (float) Math.sin(angle);
                sin[p * dh + i] = i < half ? -s : s;
            }
        }
        cosTable = mgr.create(cos, new Shape(n, dh));
        sinTable = mgr.create(sin, new Shape(n, dh));
    }

    @Override
    public Map<String, NDArray> parameters() {
        Map<String, NDArray> p = new LinkedHashMap<>();
        p.put("model.embed_tokens.weight", embed);
        for (int l = 0; l < blocks.length; l++) {
            Block b = blocks[l];
            String n = "model.layers." + l + ".";
            p.put(n + "input_layernorm.weight", b.inNormW);
            p.put(n + "self_attn.qkv_proj.weight", b.qkvW);
            if (b.qkvB != null) p.put(n + "self_attn.qkv_proj.bias", b.qkvB);
            p.put(n + "self_attn.o_proj.weight", b.oW);
            if (b.oB != null) p.put(n + "self_attn.o_proj.bias", b.oB);
            p.put(n + "post_attention_layernorm.weight", b.postNormW);
            p.put(n + "mlp.gate_up_proj.weight", b.gateUpW);
            if (b.gateUpB != null) p.put(n + "mlp.gate_up_proj.bias", b.gateUpB);
            p.put(n + "mlp.down_proj.weight", b.downW);
            if (b.downB != null) p.put(n + "mlp.down_proj.bias", b.downB);
        }
        p.put("model.norm.weight", normW);
        if (lmHead != null) p.put("lm_head.weight", lmHead);
        return p;
    }

    @Override
    public Map<String, NDArray> stateDict(NDManager scratch) {
        long qd = (long) cfg.nHeads() * cfg.dHead(), kvd = (long) cfg.nKvHeads() * cfg.dHead(), m = cfg.dMlp();
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : parameters().entrySet()) {
            String name = e.getKey();
            NDArray t = e.getValue();
            if (name.contains("qkv_proj")) {
                String suffix = name.endsWith("bias") ? "bias" : "weight";
                String base = name.substring(0, name.indexOf("qkv_proj"));
                NDList parts = t.split(new long[] {qd, qd + kvd}, 0);
                String[] names = {"q_proj", "k_proj", "v_proj"};
                for (int i = 0; i < 3; i++) out.put(base + names[i] + "." + suffix, own(parts.get(i), scratch));
            } else if (name.contains("gate_up_proj")) {
                String suffix = name.endsWith("bias") ? "bias" : "weight";
                String base = name.substring(0, name.indexOf("gate_up_proj"));
                NDList parts = t.split(new long[] {m}, 0);
                out.put(base + "gate_proj." + suffix, own(parts.get(0), scratch));
                out.put(base + "up_proj." + suffix, own(parts.get(1), scratch));
            } else {
                out.put(name, t);
            }
        }
        return out;
    }

    private static NDArray own(NDArray view, NDManager scratch) {
        NDArray copy = view.duplicate();
        copy.attach(scratch);
        view.close();
        return copy;
    }
}
