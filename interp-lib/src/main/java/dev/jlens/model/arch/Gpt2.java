package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hook.HookPoint;
import dev.jlens.hook.HookRegistry;
import dev.jlens.model.arch.ModelConfig.Activation;
import dev.jlens.model.arch.ModelConfig.Family;
import dev.jlens.model.arch.ModelConfig.NoOptions;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

import static dev.jlens.model.arch.ModelConfig.requireInt;
import static dev.jlens.model.arch.WeightTable.ONES;
import static dev.jlens.model.arch.WeightTable.ZEROS;
import static dev.jlens.model.arch.WeightTable.normal;
import static dev.jlens.model.arch.WeightTable.shape;

/**
 * GPT-2 ({@code GPT2LMHeadModel}): learned positions, pre-LayerNorm blocks, fused QKV projection with biases,
 * GELU MLP, unembedding tied to the token embedding. Weights keep the checkpoint's Conv1D layout {@code [in, out]}.
 */
public final class Gpt2 extends TabledArchitecture<Gpt2> {

    /** GPT-2's registration: its Hugging Face name, config mapping, weight table and constructor. */
    static final Architectures.Spec SPEC = new Architectures.Spec(Family.GPT2,
            List.of(new Architectures.HfName("GPT2LMHeadModel", "gpt2")), Gpt2::fromHf, Gpt2::toHf, Gpt2::table,
            NoOptions.class, cfg -> {}, Gpt2::new);

    private final ModelConfig cfg;

    // Hook points, in forward order (TransformerLens names).
    private final HookPoint hookEmbed;      // [batch, pos, d_model]
    private final HookPoint hookPosEmbed;   // [batch, pos, d_model]
    private final Block[] blocks;
    private final HookPoint lnFinalScale;   // [batch, pos, 1]
    private final HookPoint lnFinalNormalized; // [batch, pos, d_model]

    // Weights, named as in the checkpoint (see table()).
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
        super(table(cfg));
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
    public NDArray forward(ForwardInputs in, OptionalInt stopAtLayer) {
        int stop = stopAtLayer.orElse(blocks.length);
        NDArray resid;
        if (in.start().isPresent()) {
            resid = in.start().get().resid();
        } else {
            NDArray embed = hookEmbed.run(Ops.embedding(in.tokens(), wte));
            NDArray posEmbed = hookPosEmbed.run(Ops.embedding(in.positions(), wpe));
            resid = embed.add(posEmbed);
        }
        int nHeads = cfg.nHeads(), dHead = cfg.dHead(), d = cfg.dModel();
        long batch = in.batch(), pos = in.pos();
        for (int l = in.firstLayer(); l < blocks.length; l++) {
            if (l == stop) return blocks[l].residPre.run(resid);
            Block b = blocks[l];
            resid = b.residPre.run(resid);
            NDArray x = Ops.layerNorm(resid, b.ln1W, b.ln1B, cfg.normEps(), b.ln1Scale, b.ln1Normalized);
            NDArray qkv = adapters.conv1d(x, b.cAttnW, b.cAttnB);            // [b, p, 3 d]
            ai.djl.ndarray.NDList qkvParts = qkv.split(3, 2);
            NDArray q = b.q.run(qkvParts.get(0).reshape(batch, pos, nHeads, dHead));
            NDArray k = b.k.run(qkvParts.get(1).reshape(batch, pos, nHeads, dHead));
            NDArray v = b.v.run(qkvParts.get(2).reshape(batch, pos, nHeads, dHead));
            if (in.cache().isPresent()) {
                NDArray[] kv = in.cache().get().append(l, k, v);
                k = kv[0];
                v = kv[1];
            }
            NDArray mask = in.mask();
            if (in.lastOnlyAt(l, blocks.length)) {   // only the last position's output is wanted
                NDArray[] last = Ops.lastPosition(q, resid, mask);
                q = last[0];
                resid = last[1];
                mask = last[2];
                pos = 1;
            }
            NDArray z = Ops.attention(q, k, v, mask, b.attnScores, b.pattern, b.z);
            NDArray attnOut = adapters.conv1d(z.reshape(batch, pos, d), b.cProjW, b.cProjB);
            if (b.result.isActive()) {
                // Per-head outputs only when hooked; a hook that replaces them redefines attn_out as their sum.
                NDArray result = Ops.perHeadResult(z, adapters.effective(b.cProjW, true).transpose());
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
            NDArray pre = b.mlpPre.run(adapters.conv1d(x2, b.fcW, b.fcB));
            NDArray post = b.mlpPost.run(Ops.activation(cfg.act(), pre));
            NDArray mlpOut = b.mlpOut.run(adapters.conv1d(post, b.mlpProjW, b.mlpProjB));
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
    public boolean normCentres() {
        return true;   // LayerNorm
    }

    @Override
    public NDArray unembedWeight() {
        return lmHead != null ? lmHead : wte;
    }

    @Override
    public NDArray embedWeight() {
        return wte;
    }

    // ------------------------------------------------------------------ config.json

    private static ModelConfig fromHf(JsonNode c, String hfArchitecture) {
        int d = requireInt(c, "n_embd");
        int heads = requireInt(c, "n_head");
        int inner = c.hasNonNull("n_inner") ? c.get("n_inner").asInt() : 4 * d;
        boolean attnOnly = c.path("jlens_attn_only").asBoolean(false);
        return new ModelConfig(Family.GPT2, "gpt2", d, requireInt(c, "n_layer"), heads, heads, d / heads, inner,
                requireInt(c, "vocab_size"), requireInt(c, "n_positions"), c.path("layer_norm_epsilon").asDouble(1e-5),
                Activation.parse(c.path("activation_function").asText("gelu_new")), 0, Optional.empty(),
                c.path("tie_word_embeddings").asBoolean(true), true, true, true, attnOnly, OptionalInt.empty(),
                OptionalLong.empty(), OptionalLong.empty(), NoOptions.INSTANCE);
    }

    private static void toHf(ModelConfig cfg, ObjectNode c) {
        c.putArray("architectures").add("GPT2LMHeadModel");
        c.put("model_type", "gpt2");
        c.put("n_embd", cfg.dModel()).put("n_layer", cfg.nLayers()).put("n_head", cfg.nHeads())
                .put("n_inner", cfg.dMlp()).put("vocab_size", cfg.dVocab()).put("n_positions", cfg.nCtx())
                .put("n_ctx", cfg.nCtx()).put("layer_norm_epsilon", cfg.normEps())
                .put("activation_function", cfg.act().hfName()).put("tie_word_embeddings", cfg.tiedEmbeddings());
        if (cfg.attnOnly()) c.put("jlens_attn_only", true);
    }

    // ------------------------------------------------------------------ weights

    /**
     * Every tensor: checkpoint name, shape, initialisation, holder. Weights keep the checkpoint's Conv1D layout
     * {@code [in, out]}; checkpoints may leave out the {@code transformer.} prefix.
     */
    static WeightTable<Gpt2> table(ModelConfig c) {
        long d = c.dModel(), v = c.dVocab(), m = c.dMlp();
        double std = 0.02, projStd = 0.02 / Math.sqrt(2.0 * c.nLayers());
        WeightTable<Gpt2> t = new WeightTable<>(c.nLayers(), "transformer.");
        t.add("transformer.wte.weight", shape(v, d), normal("wte", std), (a, x) -> a.wte = x);
        t.add("transformer.wpe.weight", shape(c.nCtx(), d), normal("wpe", 0.01), (a, x) -> a.wpe = x);
        String h = "transformer.h.{L}.";
        t.layer(h + "ln_1.weight", shape(d), ONES, (a, l, x) -> a.blocks[l].ln1W = x);
        t.layer(h + "ln_1.bias", shape(d), ZEROS, (a, l, x) -> a.blocks[l].ln1B = x);
        t.layer(h + "attn.c_attn.weight", shape(d, 3 * d), normal("h.{L}.c_attn", std),
                (a, l, x) -> a.blocks[l].cAttnW = x).conv1d();
        t.layer(h + "attn.c_attn.bias", shape(3 * d), ZEROS, (a, l, x) -> a.blocks[l].cAttnB = x);
        t.layer(h + "attn.c_proj.weight", shape(d, d), normal("h.{L}.c_proj", projStd),
                (a, l, x) -> a.blocks[l].cProjW = x).conv1d();
        t.layer(h + "attn.c_proj.bias", shape(d), ZEROS, (a, l, x) -> a.blocks[l].cProjB = x);
        if (!c.attnOnly()) {
            t.layer(h + "ln_2.weight", shape(d), ONES, (a, l, x) -> a.blocks[l].ln2W = x);
            t.layer(h + "ln_2.bias", shape(d), ZEROS, (a, l, x) -> a.blocks[l].ln2B = x);
            t.layer(h + "mlp.c_fc.weight", shape(d, m), normal("h.{L}.c_fc", std), (a, l, x) -> a.blocks[l].fcW = x).conv1d();
            t.layer(h + "mlp.c_fc.bias", shape(m), ZEROS, (a, l, x) -> a.blocks[l].fcB = x);
            t.layer(h + "mlp.c_proj.weight", shape(m, d), normal("h.{L}.mlp.c_proj", projStd),
                    (a, l, x) -> a.blocks[l].mlpProjW = x).conv1d();
            t.layer(h + "mlp.c_proj.bias", shape(d), ZEROS, (a, l, x) -> a.blocks[l].mlpProjB = x);
        }
        t.add("transformer.ln_f.weight", shape(d), ONES, (a, x) -> a.lnFW = x);
        t.add("transformer.ln_f.bias", shape(d), ZEROS, (a, x) -> a.lnFB = x);
        if (!c.tiedEmbeddings()) t.add("lm_head.weight", shape(v, d), normal("lm_head", std), (a, x) -> a.lmHead = x);
        return t;
    }

    @Override
    public void load(Weights w) {
        params = table.load(this, w);
    }

    @Override
    public void initRandom(NDManager mgr, long seed) {
        params = table.init(this, mgr, seed);
    }

    @Override
    public Map<String, NDArray> stateDict(NDManager scratch) {
        return table.stateDict(params, scratch);   // GPT-2 keeps the checkpoint layout as is
    }

    @Override
    public TlWeights.Outer tlOuter() {
        return new TlWeights.Outer(wte, wpe, lnFW, lnFB, unembedWeight());
    }

    @Override
    public TlWeights.Block tlBlock(int layer) {
        Block b = blocks[layer];
        long d = cfg.dModel();
        // c_attn is [d_model, 3 d_model] (Conv1D, [in, out]): q, k, v are its column blocks, transposed to [out, in]
        NDArray wQ = b.cAttnW.get(new NDIndex(":, 0:{}", d)).transpose();
        NDArray wK = b.cAttnW.get(new NDIndex(":, {}:{}", d, 2 * d)).transpose();
        NDArray wV = b.cAttnW.get(new NDIndex(":, {}:", 2 * d)).transpose();
        NDArray bQ = b.cAttnB.get(new NDIndex("0:{}", d));
        NDArray bK = b.cAttnB.get(new NDIndex("{}:{}", d, 2 * d));
        NDArray bV = b.cAttnB.get(new NDIndex("{}:", 2 * d));
        boolean mlp = !cfg.attnOnly();
        return new TlWeights.Block(b.ln1W, b.ln1B, wQ, bQ, wK, bK, wV, bV, b.cProjW.transpose(), b.cProjB,
                b.ln2W, b.ln2B, mlp ? b.fcW.transpose() : null, b.fcB, null, null,
                mlp ? b.mlpProjW.transpose() : null, b.mlpProjB);
    }
}
