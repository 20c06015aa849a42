package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hook.HookPoint;
import dev.jlens.hook.HookRegistry;
import dev.jlens.model.arch.ModelConfig.Activation;
import dev.jlens.model.arch.ModelConfig.Family;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

import static dev.jlens.model.arch.ModelConfig.requireInt;
import static dev.jlens.model.arch.WeightTable.ZEROS;
import static dev.jlens.model.arch.WeightTable.normal;
import static dev.jlens.model.arch.WeightTable.part;
import static dev.jlens.model.arch.WeightTable.shape;

/**
 * Gemma 2 ({@code Gemma2ForCausalLM}), as Hugging Face computes it: token embeddings multiplied by
 * {@code sqrt(d_model)}; RMSNorm with weight {@code 1 + w}, before and after attention and before and after the MLP;
 * grouped-query attention with an explicit {@code head_dim}, queries scaled by {@code query_pre_attn_scalar^-0.5},
 * rotary embeddings (rotate-half) and the attention logits soft-capped ({@code cap * tanh(s / cap)}) before the mask;
 * a sliding window on the layers whose {@code layer_types} entry is {@code sliding_attention} (by default the even
 * layers 0, 2, ...); a GeGLU MLP with the tanh GELU; a tied unembedding whose logits are soft-capped too.
 *
 * <p>Hook points are TransformerLens's, with its names for the extra norms: {@code blocks.L.ln1_post} normalises the
 * attention output and {@code blocks.L.ln2_post} the MLP output, each before {@code hook_attn_out} /
 * {@code hook_mlp_out}, so those hooks see what is added to the residual stream. {@code hook_embed} sees the scaled
 * embedding. Computation is in float32, so the embedding scale is {@code (float) sqrt(d_model)}.
 *
 * <p>The window lives in {@link Options}, not in {@link ModelConfig#slidingWindow()} (which would apply it to every
 * layer): the pass derives the sliding layers' mask from the full causal mask it is given, keeping for each query
 * its last {@code window} visible keys, so it holds with padding and with a KV cache (every key is kept; the mask
 * hides those beyond the window).
 */
public final class Gemma2 extends TabledArchitecture<Gemma2> {

    /** The family key Gemma 2 configs carry. */
    public static final Family GEMMA2 = Family.of("gemma2");

    /** The family's registration: its Hugging Face name, config mapping, weight table and constructor. */
    static final Architectures.Spec SPEC = new Architectures.Spec(GEMMA2,
            List.of(new Architectures.HfName("Gemma2ForCausalLM", "gemma2")),
            Gemma2::fromHf, Gemma2::toHf, Gemma2::table, Options.class, Gemma2::validate, Gemma2::new);

    /** How a layer attends: within the sliding window or to every earlier token. */
    public enum LayerType {
        SLIDING("sliding_attention"), FULL("full_attention");

        private final String hfName;

        LayerType(String hfName) {
            this.hfName = hfName;
        }

        /** The name in {@code config.json}'s {@code layer_types}. */
        public String hfName() {
            return hfName;
        }

        static LayerType parse(String name) {
            for (LayerType t : values()) if (t.hfName.equals(name)) return t;
            throw new IllegalArgumentException("unknown layer type '" + name + "' in layer_types; valid: "
                    + Arrays.stream(values()).map(LayerType::hfName).toList());
        }
    }

    /**
     * Gemma 2's settings.
     *
     * @param queryPreAttnScalar attention scores are multiplied by {@code queryPreAttnScalar^-0.5}
     * @param attnLogitSoftCap   the cap on attention logits, if any
     * @param finalLogitSoftCap  the cap on output logits, if any
     * @param slidingWindow      how many tokens (the query's own included) a sliding layer sees; empty: all
     * @param layerTypes         per layer, whether it slides
     */
    public record Options(double queryPreAttnScalar, OptionalDouble attnLogitSoftCap, OptionalDouble finalLogitSoftCap,
                          OptionalInt slidingWindow, List<LayerType> layerTypes)
            implements ModelConfig.FamilyOptions {
        public Options {
            if (!(queryPreAttnScalar > 0)) {
                throw new IllegalArgumentException("query_pre_attn_scalar must be > 0, got " + queryPreAttnScalar);
            }
            attnLogitSoftCap = attnLogitSoftCap == null ? OptionalDouble.empty() : attnLogitSoftCap;
            finalLogitSoftCap = finalLogitSoftCap == null ? OptionalDouble.empty() : finalLogitSoftCap;
            slidingWindow = slidingWindow == null ? OptionalInt.empty() : slidingWindow;
            if (attnLogitSoftCap.isPresent() && !(attnLogitSoftCap.getAsDouble() > 0)) {
                throw new IllegalArgumentException("attn_logit_softcapping must be > 0 (or null), got "
                        + attnLogitSoftCap.getAsDouble());
            }
            if (finalLogitSoftCap.isPresent() && !(finalLogitSoftCap.getAsDouble() > 0)) {
                throw new IllegalArgumentException("final_logit_softcapping must be > 0 (or null), got "
                        + finalLogitSoftCap.getAsDouble());
            }
            if (slidingWindow.isPresent() && slidingWindow.getAsInt() < 1) {
                throw new IllegalArgumentException("sliding_window must be >= 1 (or null), got "
                        + slidingWindow.getAsInt());
            }
            layerTypes = List.copyOf(layerTypes);
        }

        /** Hugging Face's default pattern: layers 0, 2, 4, ... slide, the odd ones attend to everything. */
        public static List<LayerType> alternating(int nLayers) {
            List<LayerType> out = new ArrayList<>(nLayers);
            for (int i = 0; i < nLayers; i++) out.add(i % 2 == 0 ? LayerType.SLIDING : LayerType.FULL);
            return out;
        }

        /** Gemma 2's published settings (scalar 256, caps 50 and 30, window 4096, alternating layers). */
        public static Options defaults(int nLayers) {
            return new Options(256, OptionalDouble.of(50), OptionalDouble.of(30), OptionalInt.of(4096),
                    alternating(nLayers));
        }

        /** Whether layer {@code layer} applies a window (a sliding layer of a config with a window). */
        public boolean slides(int layer) {
            return slidingWindow.isPresent() && layerTypes.get(layer) == LayerType.SLIDING;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "query_pre_attn_scalar=%s attn_cap=%s final_cap=%s window=%s",
                    queryPreAttnScalar, attnLogitSoftCap.isPresent() ? attnLogitSoftCap.getAsDouble() : "none",
                    finalLogitSoftCap.isPresent() ? finalLogitSoftCap.getAsDouble() : "none",
                    slidingWindow.isPresent() ? slidingWindow.getAsInt() + " (" + layerTypes.stream()
                            .filter(t -> t == LayerType.SLIDING).count() + " sliding layers)" : "none");
        }
    }

    private final ModelConfig cfg;
    private final Options opts;

    private final HookPoint hookEmbed;          // [batch, pos, d_model], scaled by sqrt(d_model)
    private final Block[] blocks;
    private final HookPoint lnFinalScale;       // [batch, pos, 1]
    private final HookPoint lnFinalNormalized;  // [batch, pos, d_model]

    private NDArray embed;     // [d_vocab, d_model]
    private NDArray normW;     // [d_model], the stored w of weight 1 + w
    private NDArray lmHead;    // [d_vocab, d_model]; null when tied
    private NDArray cosTable;  // [n_ctx, d_head]
    private NDArray sinTable;  // [n_ctx, d_head], first half negated

    private static final class Block {
        HookPoint residPre, ln1Scale, ln1Normalized, q, k, v, rotQ, rotK, attnScores, pattern, z, result,
                ln1PostScale, ln1PostNormalized, attnOut, residMid, ln2Scale, ln2Normalized, mlpPre, mlpPreLinear,
                mlpPost, ln2PostScale, ln2PostNormalized, mlpOut, residPost;
        NDArray inNormW, qkvW, qkvB, oW, oB, postAttnNormW, preFfNormW, gateUpW, downW, postFfNormW;
    }

    Gemma2(ModelConfig cfg, HookRegistry hooks) {
        super(table(cfg));
        this.cfg = cfg;
        this.opts = cfg.options(Options.class);
        hookEmbed = hooks.declare("hook_embed");
        blocks = new Block[cfg.nLayers()];
        for (int l = 0; l < blocks.length; l++) {
            String p = "blocks." + l + ".";
            Block b = new Block();
            b.residPre = hooks.declare(p + "hook_resid_pre");                 // [batch, pos, d_model]
            b.ln1Scale = hooks.declare(p + "ln1.hook_scale");                 // [batch, pos, 1]
            b.ln1Normalized = hooks.declare(p + "ln1.hook_normalized");       // [batch, pos, d_model] (before weight)
            b.q = hooks.declare(p + "attn.hook_q");                           // [batch, pos, head, d_head]
            b.k = hooks.declare(p + "attn.hook_k");                           // [batch, pos, kv_head, d_head]
            b.v = hooks.declare(p + "attn.hook_v");                           // [batch, pos, kv_head, d_head]
            b.rotQ = hooks.declare(p + "attn.hook_rot_q");                    // [batch, pos, head, d_head]
            b.rotK = hooks.declare(p + "attn.hook_rot_k");                    // [batch, pos, kv_head, d_head]
            b.attnScores = hooks.declare(p + "attn.hook_attn_scores");        // [batch, head, q_pos, k_pos] capped
            b.pattern = hooks.declare(p + "attn.hook_pattern");               // [batch, head, q_pos, k_pos]
            b.z = hooks.declare(p + "attn.hook_z");                           // [batch, pos, head, d_head]
            b.result = hooks.declare(p + "attn.hook_result");                 // [batch, pos, head, d_model] pre-norm
            b.ln1PostScale = hooks.declare(p + "ln1_post.hook_scale");        // [batch, pos, 1]
            b.ln1PostNormalized = hooks.declare(p + "ln1_post.hook_normalized");
            b.attnOut = hooks.declare(p + "hook_attn_out");                   // [batch, pos, d_model] after ln1_post
            b.residMid = hooks.declare(p + "hook_resid_mid");                 // [batch, pos, d_model]
            b.ln2Scale = hooks.declare(p + "ln2.hook_scale");
            b.ln2Normalized = hooks.declare(p + "ln2.hook_normalized");
            b.mlpPre = hooks.declare(p + "mlp.hook_pre");                     // [batch, pos, d_mlp] gate, before act
            b.mlpPreLinear = hooks.declare(p + "mlp.hook_pre_linear");        // [batch, pos, d_mlp] up projection
            b.mlpPost = hooks.declare(p + "mlp.hook_post");                   // [batch, pos, d_mlp] act(gate) * up
            b.ln2PostScale = hooks.declare(p + "ln2_post.hook_scale");
            b.ln2PostNormalized = hooks.declare(p + "ln2_post.hook_normalized");
            b.mlpOut = hooks.declare(p + "hook_mlp_out");                     // [batch, pos, d_model] after ln2_post
            b.residPost = hooks.declare(p + "hook_resid_post");               // [batch, pos, d_model]
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
        double eps = cfg.normEps();
        double scale = Math.pow(opts.queryPreAttnScalar(), -0.5);
        double attnCap = opts.attnLogitSoftCap().orElse(0);
        NDArray cos = Ops.embedding(in.positions(), cosTable).expandDims(2);   // [b, p, 1, d_head]
        NDArray sin = Ops.embedding(in.positions(), sinTable).expandDims(2);
        NDArray resid = in.start().isPresent() ? in.start().get().resid()
                : hookEmbed.run(Ops.embedding(in.tokens(), embed).mul(Ops.scalar((float) Math.sqrt(cfg.dModel()))));
        NDArray slidingMask = null;
        for (int l = in.firstLayer(); l < blocks.length; l++) {
            if (l == stop) return blocks[l].residPre.run(resid);
            Block b = blocks[l];
            resid = b.residPre.run(resid);
            NDArray x = Ops.rmsNorm(resid, plusOne(b.inNormW), eps, b.ln1Scale, b.ln1Normalized);
            NDList qkv = adapters.linear(x, b.qkvW, b.qkvB).split(new long[] {(long) h * dh, (long) (h + kvh) * dh}, 2);
            NDArray q = b.q.run(qkv.get(0).reshape(batch, pos, h, dh));
            NDArray k = b.k.run(qkv.get(1).reshape(batch, pos, kvh, dh));
            NDArray v = b.v.run(qkv.get(2).reshape(batch, pos, kvh, dh));
            q = b.rotQ.run(Ops.rotateHalf(q, cos, sin));
            k = b.rotK.run(Ops.rotateHalf(k, cos, sin));
            if (in.cache().isPresent()) {
                NDArray[] kv = in.cache().get().append(l, k, v);
                k = kv[0];
                v = kv[1];
            }
            NDArray mask = in.mask();
            if (opts.slides(l)) {
                if (slidingMask == null) slidingMask = slidingMask(in.mask(), opts.slidingWindow().getAsInt());
                mask = slidingMask;
            }
            if (in.lastOnlyAt(l, blocks.length)) {   // only the last position's output is wanted
                NDArray[] last = Ops.lastPosition(q, resid, mask);
                q = last[0];
                resid = last[1];
                mask = last[2];
                pos = 1;
            }
            NDArray z = Ops.attention(q, k, v, mask, scale, attnCap, b.attnScores, b.pattern, b.z);
            NDArray attnOut = adapters.linear(z.reshape(batch, pos, (long) h * dh), b.oW, b.oB);
            if (b.result.isActive()) {
                // Per-head outputs only when hooked; a hook that replaces them redefines the sum ln1_post reads.
                NDArray result = Ops.perHeadResult(z, adapters.effective(b.oW, false));
                NDArray hooked = b.result.run(result);
                if (hooked != result) {
                    attnOut = hooked.sum(new int[] {2});
                    if (b.oB != null) attnOut = attnOut.add(b.oB);
                }
            }
            attnOut = Ops.rmsNorm(attnOut, plusOne(b.postAttnNormW), eps, b.ln1PostScale, b.ln1PostNormalized);
            attnOut = b.attnOut.run(attnOut);
            resid = b.residMid.run(resid.add(attnOut));
            NDArray x2 = Ops.rmsNorm(resid, plusOne(b.preFfNormW), eps, b.ln2Scale, b.ln2Normalized);
            NDList gateUp = adapters.linear(x2, b.gateUpW, null).split(2, 2);
            NDArray gate = b.mlpPre.run(gateUp.get(0));
            NDArray up = b.mlpPreLinear.run(gateUp.get(1));
            NDArray post = b.mlpPost.run(Ops.activation(cfg.act(), gate).mul(up));
            NDArray mlpOut = adapters.linear(post, b.downW, null);
            mlpOut = Ops.rmsNorm(mlpOut, plusOne(b.postFfNormW), eps, b.ln2PostScale, b.ln2PostNormalized);
            mlpOut = b.mlpOut.run(mlpOut);
            resid = b.residPost.run(resid.add(mlpOut));
        }
        NDArray normed = Ops.rmsNorm(resid, plusOne(normW), eps, lnFinalScale, lnFinalNormalized);
        return unembed(normed);
    }

    /** Gemma's norm weight: the checkpoint stores {@code w} and the norm multiplies by {@code 1 + w} (float32). */
    private static NDArray plusOne(NDArray w) {
        return w.add(Ops.scalar(1f));
    }

    /**
     * The mask of a sliding layer from the full additive mask {@code [batch, 1, q_pos, k_pos]}: each query keeps only
     * its last {@code window} visible keys. A query's visible keys are the real tokens up to itself, so counting them
     * from the right gives how far back a key is in positions ({@code window} of them: distance < window, as
     * Hugging Face's sliding mask); a padding query sees only itself and keeps it.
     */
    static NDArray slidingMask(NDArray mask, int window) {
        NDArray visible = mask.eq(0f);
        NDArray fromRight = visible.toType(DataType.FLOAT32, false).flip(3).cumSum(3).flip(3);
        NDArray keep = visible.logicalAnd(fromRight.lte((float) window));
        return NDArrays.where(keep, mask.zerosLike(), mask.getManager().full(mask.getShape(), Float.NEGATIVE_INFINITY));
    }

    @Override
    public NDArray finalNorm(NDArray resid) {
        NDArray scale = resid.square().mean(new int[] {-1}, true).add(cfg.normEps()).sqrt();
        return resid.div(scale).mul(plusOne(normW));
    }

    /** Logits from the normalised residual, soft-capped when the config caps them. */
    @Override
    public NDArray unembed(NDArray normed) {
        NDArray logits = Ops.linear(normed, unembedWeight(), null);
        return opts.finalLogitSoftCap().isPresent() ? Ops.softCap(logits, opts.finalLogitSoftCap().getAsDouble())
                : logits;
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
        Options o = cfg.options(Options.class);
        if (o.layerTypes().size() != cfg.nLayers()) {
            throw new IllegalArgumentException("layer_types has " + o.layerTypes().size() + " entries but the model has "
                    + cfg.nLayers() + " layers");
        }
        if (cfg.slidingWindow().isPresent()) {
            throw new IllegalArgumentException("a gemma2 config keeps its sliding window in Gemma2.Options (it applies "
                    + "to the sliding layers only); ModelConfig.slidingWindow must be empty");
        }
        if (cfg.attnOnly() || cfg.mlpBias()) {
            throw new IllegalArgumentException("Gemma 2 has an MLP without biases; attnOnly and mlpBias must be false");
        }
        if (cfg.qkvBias() != cfg.attnOutBias()) {
            throw new IllegalArgumentException("Gemma 2's attention_bias applies to q, k, v and o alike; got qkvBias="
                    + cfg.qkvBias() + " attnOutBias=" + cfg.attnOutBias());
        }
    }

    private static OptionalDouble optDouble(JsonNode c, String field, double dflt) {
        if (!c.has(field)) return OptionalDouble.of(dflt);     // absent: Hugging Face's default
        JsonNode v = c.get(field);
        if (v.isNull()) return OptionalDouble.empty();        // null: switched off
        if (!v.isNumber()) throw new IllegalArgumentException("config.json field '" + field + "' must be a number or "
                + "null, got " + v);
        return OptionalDouble.of(v.asDouble());
    }

    private static ModelConfig fromHf(JsonNode c, String arch) {
        int d = requireInt(c, "hidden_size");
        int layers = requireInt(c, "num_hidden_layers");
        int heads = requireInt(c, "num_attention_heads");
        int kv = c.hasNonNull("num_key_value_heads") ? c.get("num_key_value_heads").asInt() : heads;
        int dHead = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : 256;
        if (c.path("use_bidirectional_attention").asBoolean(false)) {
            throw new IllegalArgumentException("use_bidirectional_attention is not supported; supported: causal "
                    + "attention (false or absent)");
        }
        JsonNode rope = c.path("rope_parameters");
        double theta = c.hasNonNull("rope_theta") ? c.get("rope_theta").asDouble()
                : rope.path("rope_theta").asDouble(10000);
        JsonNode scaling = c.hasNonNull("rope_scaling") ? c.get("rope_scaling") : rope;
        String ropeType = scaling.path("rope_type").asText(scaling.path("type").asText("default"));
        if (!ropeType.equals("default")) {
            throw new IllegalArgumentException("unsupported rope type '" + ropeType + "' for Gemma 2; supported: "
                    + "default");
        }
        String act = c.hasNonNull("hidden_activation") ? c.get("hidden_activation").asText()
                : c.path("hidden_act").asText("gelu_pytorch_tanh");
        OptionalDouble window = optDouble(c, "sliding_window", 4096);
        List<LayerType> types;
        JsonNode lt = c.get("layer_types");
        if (lt != null && !lt.isNull()) {
            if (!lt.isArray()) throw new IllegalArgumentException("layer_types must be a list, got " + lt);
            types = new ArrayList<>();
            for (JsonNode t : lt) types.add(LayerType.parse(t.asText()));
            if (types.size() != layers) {
                throw new IllegalArgumentException("layer_types has " + types.size() + " entries but "
                        + "num_hidden_layers is " + layers);
            }
        } else {
            types = Options.alternating(layers);
        }
        Options o = new Options(c.path("query_pre_attn_scalar").asDouble(256),
                optDouble(c, "attn_logit_softcapping", 50), optDouble(c, "final_logit_softcapping", 30),
                window.isPresent() ? OptionalInt.of((int) window.getAsDouble()) : OptionalInt.empty(), types);
        boolean bias = c.path("attention_bias").asBoolean(false);
        return new ModelConfig(GEMMA2, "gemma2", d, layers, heads, kv, dHead, requireInt(c, "intermediate_size"),
                requireInt(c, "vocab_size"), c.path("max_position_embeddings").asInt(8192),
                c.path("rms_norm_eps").asDouble(1e-6), Activation.parse(act), theta, Optional.empty(),
                c.path("tie_word_embeddings").asBoolean(true), bias, bias, false, false, OptionalInt.empty(),
                OptionalLong.empty(), OptionalLong.empty(), o);
    }

    private static void toHf(ModelConfig cfg, ObjectNode c) {
        Options o = cfg.options(Options.class);
        String act = cfg.act() == Activation.GELU_NEW ? "gelu_pytorch_tanh" : cfg.act().hfName();
        c.putArray("architectures").add("Gemma2ForCausalLM");
        c.put("model_type", "gemma2");
        c.put("hidden_size", cfg.dModel()).put("num_hidden_layers", cfg.nLayers())
                .put("num_attention_heads", cfg.nHeads()).put("num_key_value_heads", cfg.nKvHeads())
                .put("head_dim", cfg.dHead()).put("intermediate_size", cfg.dMlp()).put("vocab_size", cfg.dVocab())
                .put("max_position_embeddings", cfg.nCtx()).put("rms_norm_eps", cfg.normEps())
                .put("hidden_activation", act).put("hidden_act", act).put("rope_theta", cfg.ropeTheta())
                .put("tie_word_embeddings", cfg.tiedEmbeddings()).put("attention_bias", cfg.qkvBias())
                .put("query_pre_attn_scalar", o.queryPreAttnScalar());
        if (o.attnLogitSoftCap().isPresent()) c.put("attn_logit_softcapping", o.attnLogitSoftCap().getAsDouble());
        else c.putNull("attn_logit_softcapping");
        if (o.finalLogitSoftCap().isPresent()) c.put("final_logit_softcapping", o.finalLogitSoftCap().getAsDouble());
        else c.putNull("final_logit_softcapping");
        if (o.slidingWindow().isPresent()) c.put("sliding_window", o.slidingWindow().getAsInt());
        else c.putNull("sliding_window");
        ArrayNode types = c.putArray("layer_types");
        o.layerTypes().forEach(t -> types.add(t.hfName()));
    }

    // ------------------------------------------------------------------ weights

    /**
     * Every tensor: checkpoint name, shape, initialisation, holder. Q, K and V are kept fused into one matrix, and so
     * are gate and up. Norm weights start at 0 (the norm multiplies by 1 + w).
     */
    static WeightTable<Gemma2> table(ModelConfig c) {
        long d = c.dModel(), v = c.dVocab(), m = c.dMlp();
        long qd = (long) c.nHeads() * c.dHead(), kvd = (long) c.nKvHeads() * c.dHead(), qkvd = qd + 2 * kvd;
        double std = 0.02;
        WeightTable<Gemma2> t = new WeightTable<>(c.nLayers(), "model.");
        t.add("model.embed_tokens.weight", shape(v, d), normal("embed_tokens", std), (a, x) -> a.embed = x);
        String p = "model.layers.{L}.";
        t.layer(p + "input_layernorm.weight", shape(d), ZEROS, (a, l, x) -> a.blocks[l].inNormW = x);
        t.layer(p + "self_attn.qkv_proj.weight", shape(qkvd, d), normal("layers.{L}.qkv", std),
                (a, l, x) -> a.blocks[l].qkvW = x).fusedFrom(part(p + "self_attn.q_proj.weight", qd),
                part(p + "self_attn.k_proj.weight", kvd), part(p + "self_attn.v_proj.weight", kvd)).linear();
        if (c.qkvBias()) {
            t.layer(p + "self_attn.qkv_proj.bias", shape(qkvd), ZEROS, (a, l, x) -> a.blocks[l].qkvB = x)
                    .fusedFrom(part(p + "self_attn.q_proj.bias", qd), part(p + "self_attn.k_proj.bias", kvd),
                            part(p + "self_attn.v_proj.bias", kvd));
        }
        t.layer(p + "self_attn.o_proj.weight", shape(d, qd), normal("layers.{L}.o_proj", std),
                (a, l, x) -> a.blocks[l].oW = x).linear();
        if (c.attnOutBias()) t.layer(p + "self_attn.o_proj.bias", shape(d), ZEROS, (a, l, x) -> a.blocks[l].oB = x);
        t.layer(p + "post_attention_layernorm.weight", shape(d), ZEROS, (a, l, x) -> a.blocks[l].postAttnNormW = x);
        t.layer(p + "pre_feedforward_layernorm.weight", shape(d), ZEROS, (a, l, x) -> a.blocks[l].preFfNormW = x);
        t.layer(p + "mlp.gate_up_proj.weight", shape(2 * m, d), normal("layers.{L}.gate_up", std),
                (a, l, x) -> a.blocks[l].gateUpW = x)
                .fusedFrom(part(p + "mlp.gate_proj.weight", m), part(p + "mlp.up_proj.weight", m)).linear();
        t.layer(p + "mlp.down_proj.weight", shape(d, m), normal("layers.{L}.down_proj", std),
                (a, l, x) -> a.blocks[l].downW = x).linear();
        t.layer(p + "post_feedforward_layernorm.weight", shape(d), ZEROS, (a, l, x) -> a.blocks[l].postFfNormW = x);
        t.add("model.norm.weight", shape(d), ZEROS, (a, x) -> a.normW = x);
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

    private void buildRope(NDManager mgr) {
        NDArray[] t = Ops.ropeTables(mgr, cfg.dHead(), cfg.nCtx(), cfg.ropeTheta(), Optional.empty());
        cosTable = t[0];
        sinTable = t[1];
    }

    @Override
    public Map<String, NDArray> stateDict(NDManager scratch) {
        return table.stateDict(params, scratch);
    }

    /** TransformerLens's form: {@code W_E} holds the scaled embedding and norm weights are {@code 1 + w}. */
    @Override
    public TlWeights.Outer tlOuter() {
        return new TlWeights.Outer(embed.mul(Ops.scalar((float) Math.sqrt(cfg.dModel()))), null, plusOne(normW),
                null, unembedWeight());
    }

    /** The pre-norms' weights as {@code 1 + w}; the post-norms ({@code ln1_post}, {@code ln2_post}) have no slot. */
    @Override
    public TlWeights.Block tlBlock(int layer) {
        Block b = blocks[layer];
        long qd = (long) cfg.nHeads() * cfg.dHead(), kvd = (long) cfg.nKvHeads() * cfg.dHead(), m = cfg.dMlp();
        NDIndex q = new NDIndex("0:{}", qd), k = new NDIndex("{}:{}", qd, qd + kvd), v = new NDIndex("{}:", qd + kvd);
        NDIndex gate = new NDIndex("0:{}", m), up = new NDIndex("{}:", m);
        boolean qkvB = b.qkvB != null;
        return new TlWeights.Block(plusOne(b.inNormW), null, b.qkvW.get(q), qkvB ? b.qkvB.get(q) : null,
                b.qkvW.get(k), qkvB ? b.qkvB.get(k) : null, b.qkvW.get(v), qkvB ? b.qkvB.get(v) : null, b.oW, b.oB,
                plusOne(b.preFfNormW), null, b.gateUpW.get(up), null, b.gateUpW.get(gate), null, b.downW, null);
    }
}
