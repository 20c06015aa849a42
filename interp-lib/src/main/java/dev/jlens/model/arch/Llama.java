package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hook.HookPoint;
import dev.jlens.hook.HookRegistry;
import dev.jlens.model.arch.ModelConfig.Activation;
import dev.jlens.model.arch.ModelConfig.Family;
import dev.jlens.model.arch.ModelConfig.NoOptions;
import dev.jlens.model.arch.ModelConfig.RopeScaling;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

import static dev.jlens.model.arch.ModelConfig.requireInt;
import static dev.jlens.model.arch.WeightTable.ONES;
import static dev.jlens.model.arch.WeightTable.ZEROS;
import static dev.jlens.model.arch.WeightTable.normal;
import static dev.jlens.model.arch.WeightTable.part;
import static dev.jlens.model.arch.WeightTable.shape;

/**
 * Llama and its relatives ({@code LlamaForCausalLM}, {@code Qwen2ForCausalLM} with q/k/v biases,
 * {@code MistralForCausalLM} with a sliding window, {@code Qwen3ForCausalLM} with an explicit head_dim and a
 * per-head RMSNorm on queries and keys before the rotary embedding): RMSNorm, rotary embeddings in Hugging Face's
 * rotate-half layout (with Llama-3.1 frequency scaling), grouped-query attention, SwiGLU MLP.
 * Q, K and V projections are kept fused into one matrix, and so are gate and up, so each is one matmul.
 */
public final class Llama extends TabledArchitecture<Llama> {

    /** The family's registration: its Hugging Face names, config mapping, weight table and constructor. */
    static final Architectures.Spec SPEC = new Architectures.Spec(Family.LLAMA,
            List.of(new Architectures.HfName("LlamaForCausalLM", "llama"),
                    new Architectures.HfName("Qwen2ForCausalLM", "qwen2"),
                    new Architectures.HfName("MistralForCausalLM", "mistral"),
                    new Architectures.HfName("Qwen3ForCausalLM", "qwen3")),
            Llama::fromHf, Llama::toHf, Llama::table, ModelConfig.FamilyOptions.class, Llama::validate, Llama::new);

    /**
     * The family's options: {@link NoOptions} (Llama, Qwen2, Mistral) or this record.
     *
     * @param qkNorm a per-head RMSNorm ({@code self_attn.q_norm}, {@code self_attn.k_norm}, weights {@code [d_head]})
     *               on queries and keys before the rotary embedding, as Qwen 3 has
     */
    public record Options(boolean qkNorm) implements ModelConfig.FamilyOptions {
        /** Qwen 3's options. */
        public static final Options QWEN3 = new Options(true);
    }

    private static boolean qkNorm(ModelConfig cfg) {
        return cfg.options() instanceof Options o && o.qkNorm();
    }

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
        HookPoint residPre, ln1Scale, ln1Normalized, q, k, v, qNormScale, qNormNormalized, kNormScale,
                kNormNormalized, rotQ, rotK, attnScores, pattern, z, result, attnOut,
                residMid, ln2Scale, ln2Normalized, mlpPre, mlpPreLinear, mlpPost, mlpOut, residPost;
        NDArray inNormW, qkvW, qkvB, qNormW, kNormW, oW, oB, postNormW, gateUpW, gateUpB, downW, downB;
    }

    Llama(ModelConfig cfg, HookRegistry hooks) {
        super(table(cfg));
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
            if (qkNorm(cfg)) {
                // TransformerLens's names (attn.q_norm, attn.k_norm); the scale is per head: [batch, pos, head, 1]
                b.qNormScale = hooks.declare(p + "attn.q_norm.hook_scale");
                b.qNormNormalized = hooks.declare(p + "attn.q_norm.hook_normalized");   // before the weight
                b.kNormScale = hooks.declare(p + "attn.k_norm.hook_scale");
                b.kNormNormalized = hooks.declare(p + "attn.k_norm.hook_normalized");
            }
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
    public NDArray forward(ForwardInputs in, OptionalInt stopAtLayer) {
        int stop = stopAtLayer.orElse(blocks.length);
        long batch = in.batch(), pos = in.pos();
        int h = cfg.nHeads(), kvh = cfg.nKvHeads(), dh = cfg.dHead();
        NDArray cos = Ops.embedding(in.positions(), cosTable).expandDims(2);   // [b, p, 1, d_head]
        NDArray sin = Ops.embedding(in.positions(), sinTable).expandDims(2);
        NDArray resid = in.start().isPresent() ? in.start().get().resid()
                : hookEmbed.run(Ops.embedding(in.tokens(), embed));
        for (int l = in.firstLayer(); l < blocks.length; l++) {
            if (l == stop) return blocks[l].residPre.run(resid);
            Block b = blocks[l];
            resid = b.residPre.run(resid);
            NDArray x = Ops.rmsNorm(resid, b.inNormW, cfg.normEps(), b.ln1Scale, b.ln1Normalized);
            NDList qkv = adapters.linear(x, b.qkvW, b.qkvB).split(new long[] {(long) h * dh, (long) (h + kvh) * dh}, 2);
            NDArray q = b.q.run(qkv.get(0).reshape(batch, pos, h, dh));
            NDArray k = b.k.run(qkv.get(1).reshape(batch, pos, kvh, dh));
            NDArray v = b.v.run(qkv.get(2).reshape(batch, pos, kvh, dh));
            if (b.qNormW != null) {
                q = Ops.rmsNorm(q, b.qNormW, cfg.normEps(), b.qNormScale, b.qNormNormalized);
                k = Ops.rmsNorm(k, b.kNormW, cfg.normEps(), b.kNormScale, b.kNormNormalized);
            }
            q = b.rotQ.run(Ops.rotateHalf(q, cos, sin));
            k = b.rotK.run(Ops.rotateHalf(k, cos, sin));
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
            NDArray attnOut = adapters.linear(z.reshape(batch, pos, (long) h * dh), b.oW, b.oB);
            if (b.result.isActive()) {
                // Per-head outputs only when hooked; a hook that replaces them redefines attn_out as their sum.
                NDArray result = Ops.perHeadResult(z, adapters.effective(b.oW, false));
                NDArray hooked = b.result.run(result);
                if (hooked != result) {
                    attnOut = hooked.sum(new int[] {2});
                    if (b.oB != null) attnOut = attnOut.add(b.oB);
                }
            }
            attnOut = b.attnOut.run(attnOut);
            resid = b.residMid.run(resid.add(attnOut));
            NDArray x2 = Ops.rmsNorm(resid, b.postNormW, cfg.normEps(), b.ln2Scale, b.ln2Normalized);
            NDList gateUp = adapters.linear(x2, b.gateUpW, b.gateUpB).split(2, 2);
            NDArray gate = b.mlpPre.run(gateUp.get(0));
            NDArray up = b.mlpPreLinear.run(gateUp.get(1));
            NDArray post = b.mlpPost.run(Ops.activation(cfg.act(), gate).mul(up));
            NDArray mlpOut = b.mlpOut.run(adapters.linear(post, b.downW, b.downB));
            resid = b.residPost.run(resid.add(mlpOut));
        }
        NDArray normed = Ops.rmsNorm(resid, normW, cfg.normEps(), lnFinalScale, lnFinalNormalized);
        return unembed(normed);
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
    public boolean normCentres() {
        return false;   // RMSNorm
    }

    @Override
    public NDArray unembedWeight() {
        return lmHead != null ? lmHead : embed;
    }

    @Override
    public NDArray embedWeight() {
        return embed;
    }

    // ------------------------------------------------------------------ config.json

    private static void validate(ModelConfig cfg) {
        if (cfg.dHead() % 2 != 0) {
            throw new IllegalArgumentException("rotary embeddings need an even dHead, got " + cfg.dHead());
        }
        if (!(cfg.options() instanceof NoOptions) && !(cfg.options() instanceof Options)) {
            throw new IllegalArgumentException("a llama config takes options of type NoOptions or Llama.Options, got "
                    + cfg.options());
        }
        boolean qwen3 = cfg.modelType().equals("qwen3");
        if (qkNorm(cfg) != qwen3) {
            throw new IllegalArgumentException("query/key norms go with model_type qwen3 (options Llama.Options.QWEN3)"
                    + " and only with it; got model_type '" + cfg.modelType() + "' with options " + cfg.options());
        }
    }

    private static ModelConfig fromHf(JsonNode c, String arch) {
        int d = requireInt(c, "hidden_size");
        int heads = requireInt(c, "num_attention_heads");
        int kv = c.hasNonNull("num_key_value_heads") ? c.get("num_key_value_heads").asInt() : heads;
        int dHead = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : d / heads;
        boolean qwen = arch.startsWith("Qwen2");
        boolean attnBias = c.path("attention_bias").asBoolean(false);
        Optional<RopeScaling> scaling = Optional.empty();
        // newer configs hold rope_theta and the scaling in one rope_parameters object
        JsonNode rope = c.path("rope_parameters");
        double theta = c.hasNonNull("rope_theta") ? c.get("rope_theta").asDouble()
                : rope.path("rope_theta").asDouble(10000);
        JsonNode rs = c.path("rope_scaling").isObject() ? c.path("rope_scaling") : rope;
        if (rs.isObject()) {
            String ropeType = rs.path("rope_type").asText(rs.path("type").asText(""));
            if (!ropeType.equals("llama3") && !ropeType.equals("default")) {
                throw new IllegalArgumentException("unsupported rope_scaling type '" + ropeType
                        + "'; supported: llama3 (or none)");
            }
            if (ropeType.equals("llama3")) {
                scaling = Optional.of(new RopeScaling(rs.path("factor").asDouble(8),
                        rs.path("low_freq_factor").asDouble(1), rs.path("high_freq_factor").asDouble(4),
                        rs.path("original_max_position_embeddings").asInt(8192)));
            }
        }
        OptionalInt window = OptionalInt.empty();
        boolean qwen3 = arch.startsWith("Qwen3");
        boolean useWindow = arch.startsWith("Mistral") || c.path("use_sliding_window").asBoolean(false);
        if (qwen3) {
            // Qwen 3 slides the layers from max_window_layers on (or those layer_types marks), and only with
            // use_sliding_window and a sliding_window; one window applies to every layer here or to none
            int layers = requireInt(c, "num_hidden_layers");
            boolean windowed = useWindow && c.hasNonNull("sliding_window");
            int sliding = 0;
            JsonNode types = c.path("layer_types");
            for (int i = 0; i < layers; i++) {
                String t = types.isArray() && i < types.size() ? types.get(i).asText()
                        : windowed && i >= c.path("max_window_layers").asInt(layers) ? "sliding_attention"
                        : "full_attention";
                if (!t.equals("sliding_attention") && !t.equals("full_attention")) {
                    throw new IllegalArgumentException("unknown layer type '" + t + "' in layer_types; valid: "
                            + "[sliding_attention, full_attention]");
                }
                if (t.equals("sliding_attention") && windowed) sliding++;
            }
            if (types.isArray() && types.size() != layers) {
                throw new IllegalArgumentException("layer_types has " + types.size() + " entries but "
                        + "num_hidden_layers is " + layers);
            }
            if (sliding != 0 && sliding != layers) {
                throw new IllegalArgumentException("a sliding window on " + sliding + " of " + layers + " layers "
                        + "(use_sliding_window with max_window_layers or layer_types marking some layers only) is not "
                        + "supported for Qwen3ForCausalLM; supported: no sliding layer, or every layer sliding");
            }
            useWindow = sliding == layers;
        }
        if (useWindow && c.hasNonNull("sliding_window")) window = OptionalInt.of(c.get("sliding_window").asInt());
        String type = SPEC.hfNames().stream().filter(n -> n.architecture().equals(arch)).findFirst().orElseThrow()
                .modelType();
        return new ModelConfig(Family.LLAMA, type, d, requireInt(c, "num_hidden_layers"), heads, kv, dHead,
                requireInt(c, "intermediate_size"), requireInt(c, "vocab_size"),
                c.path("max_position_embeddings").asInt(2048), c.path("rms_norm_eps").asDouble(1e-6),
                Activation.parse(c.path("hidden_act").asText("silu")), theta, scaling,
                c.path("tie_word_embeddings").asBoolean(false), qwen || attnBias, attnBias,
                c.path("mlp_bias").asBoolean(false), false, window, OptionalLong.empty(), OptionalLong.empty(),
                qwen3 ? Options.QWEN3 : NoOptions.INSTANCE);
    }

    private static void toHf(ModelConfig cfg, ObjectNode c) {
        String archName = SPEC.hfNames().stream().filter(n -> n.modelType().equals(cfg.modelType())).findFirst()
                .orElse(SPEC.hfNames().get(0)).architecture();
        c.putArray("architectures").add(archName);
        c.put("model_type", cfg.modelType());
        c.put("hidden_size", cfg.dModel()).put("num_hidden_layers", cfg.nLayers())
                .put("num_attention_heads", cfg.nHeads()).put("num_key_value_heads", cfg.nKvHeads())
                .put("head_dim", cfg.dHead()).put("intermediate_size", cfg.dMlp()).put("vocab_size", cfg.dVocab())
                .put("max_position_embeddings", cfg.nCtx()).put("rms_norm_eps", cfg.normEps())
                .put("hidden_act", cfg.act().hfName()).put("rope_theta", cfg.ropeTheta())
                .put("tie_word_embeddings", cfg.tiedEmbeddings()).put("attention_bias", cfg.attnOutBias())
                .put("mlp_bias", cfg.mlpBias());
        cfg.ropeScaling().ifPresent(s -> c.putObject("rope_scaling").put("rope_type", "llama3")
                .put("factor", s.factor()).put("low_freq_factor", s.lowFreqFactor())
                .put("high_freq_factor", s.highFreqFactor())
                .put("original_max_position_embeddings", s.originalMaxPositions()));
        cfg.slidingWindow().ifPresent(w -> c.put("sliding_window", w).put("use_sliding_window", true));
    }

    // ------------------------------------------------------------------ weights

    /**
     * Every tensor: checkpoint name, shape, initialisation, holder. Q, K and V are kept fused into one matrix, and so
     * are gate and up, so each is one matmul; checkpoints may leave out the {@code model.} prefix.
     */
    static WeightTable<Llama> table(ModelConfig c) {
        long d = c.dModel(), v = c.dVocab(), m = c.dMlp();
        long qd = (long) c.nHeads() * c.dHead(), kvd = (long) c.nKvHeads() * c.dHead(), qkvd = qd + 2 * kvd;
        double std = 0.02, projStd = 0.02 / Math.sqrt(2.0 * c.nLayers());
        WeightTable<Llama> t = new WeightTable<>(c.nLayers(), "model.");
        t.add("model.embed_tokens.weight", shape(v, d), normal("embed_tokens", std), (a, x) -> a.embed = x);
        String p = "model.layers.{L}.";
        t.layer(p + "input_layernorm.weight", shape(d), ONES, (a, l, x) -> a.blocks[l].inNormW = x);
        t.layer(p + "self_attn.qkv_proj.weight", shape(qkvd, d), normal("layers.{L}.qkv", std),
                (a, l, x) -> a.blocks[l].qkvW = x).fusedFrom(part(p + "self_attn.q_proj.weight", qd),
                part(p + "self_attn.k_proj.weight", kvd), part(p + "self_attn.v_proj.weight", kvd)).linear();
        if (c.qkvBias()) {
            t.layer(p + "self_attn.qkv_proj.bias", shape(qkvd), ZEROS, (a, l, x) -> a.blocks[l].qkvB = x)
                    .fusedFrom(part(p + "self_attn.q_proj.bias", qd), part(p + "self_attn.k_proj.bias", kvd),
                            part(p + "self_attn.v_proj.bias", kvd));
        }
        if (qkNorm(c)) {
            t.layer(p + "self_attn.q_norm.weight", shape(c.dHead()), ONES, (a, l, x) -> a.blocks[l].qNormW = x);
            t.layer(p + "self_attn.k_norm.weight", shape(c.dHead()), ONES, (a, l, x) -> a.blocks[l].kNormW = x);
        }
        t.layer(p + "self_attn.o_proj.weight", shape(d, qd), normal("layers.{L}.o_proj", projStd),
                (a, l, x) -> a.blocks[l].oW = x).linear();
        if (c.attnOutBias()) t.layer(p + "self_attn.o_proj.bias", shape(d), ZEROS, (a, l, x) -> a.blocks[l].oB = x);
        t.layer(p + "post_attention_layernorm.weight", shape(d), ONES, (a, l, x) -> a.blocks[l].postNormW = x);
        t.layer(p + "mlp.gate_up_proj.weight", shape(2 * m, d), normal("layers.{L}.gate_up", std),
                (a, l, x) -> a.blocks[l].gateUpW = x)
                .fusedFrom(part(p + "mlp.gate_proj.weight", m), part(p + "mlp.up_proj.weight", m)).linear();
        if (c.mlpBias()) {
            t.layer(p + "mlp.gate_up_proj.bias", shape(2 * m), ZEROS, (a, l, x) -> a.blocks[l].gateUpB = x)
                    .fusedFrom(part(p + "mlp.gate_proj.bias", m), part(p + "mlp.up_proj.bias", m));
        }
        t.layer(p + "mlp.down_proj.weight", shape(d, m), normal("layers.{L}.down_proj", projStd),
                (a, l, x) -> a.blocks[l].downW = x).linear();
        if (c.mlpBias()) t.layer(p + "mlp.down_proj.bias", shape(d), ZEROS, (a, l, x) -> a.blocks[l].downB = x);
        t.add("model.norm.weight", shape(d), ONES, (a, x) -> a.normW = x);
        if (!c.tiedEmbeddings()) t.add("lm_head.weight", shape(v, d), normal("lm_head", std), (a, x) -> a.lmHead = x);
        return t;
    }

    @Override
    public void load(Weights w) {
        params = table.load(this, w);
        buildRope(embed.getManager());
    }

    @Override
    public void initRandom(NDManager mgr, long seed) {
        params = table.init(this, mgr, seed);
        buildRope(mgr);
    }

    /** cos/sin tables for every position, with Llama-3.1 frequency scaling when configured. */
    private void buildRope(NDManager mgr) {
        NDArray[] t = Ops.ropeTables(mgr, cfg.dHead(), cfg.nCtx(), cfg.ropeTheta(), cfg.ropeScaling());
        cosTable = t[0];
        sinTable = t[1];
    }

    @Override
    public Map<String, NDArray> stateDict(NDManager scratch) {
        return table.stateDict(params, scratch);   // fused tensors split back into the checkpoint's
    }

    @Override
    public TlWeights.Outer tlOuter() {
        return new TlWeights.Outer(embed, null, normW, null, unembedWeight());
    }

    @Override
    public TlWeights.Block tlBlock(int layer) {
        Block b = blocks[layer];
        long qd = (long) cfg.nHeads() * cfg.dHead(), kvd = (long) cfg.nKvHeads() * cfg.dHead(), m = cfg.dMlp();
        NDIndex q = new NDIndex("0:{}", qd), k = new NDIndex("{}:{}", qd, qd + kvd), v = new NDIndex("{}:", qd + kvd);
        NDIndex gate = new NDIndex("0:{}", m), up = new NDIndex("{}:", m);
        boolean qkvB = b.qkvB != null, mlpB = b.gateUpB != null;
        return new TlWeights.Block(b.inNormW, null, b.qkvW.get(q), qkvB ? b.qkvB.get(q) : null, b.qkvW.get(k),
                qkvB ? b.qkvB.get(k) : null, b.qkvW.get(v), qkvB ? b.qkvB.get(v) : null, b.oW, b.oB, b.postNormW, null,
                b.gateUpW.get(up), mlpB ? b.gateUpB.get(up) : null, b.gateUpW.get(gate),
                mlpB ? b.gateUpB.get(gate) : null, b.downW, b.downB);
    }
}
