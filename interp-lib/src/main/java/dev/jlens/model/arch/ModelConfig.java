package dev.jlens.model.arch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * The shape and flavour of a transformer, read from a Hugging Face {@code config.json}. Field names follow
 * TransformerLens ({@code dModel}, {@code nLayers}, {@code dHead}, ...).
 */
public record ModelConfig(
        Family family,
        String modelType,
        int dModel,
        int nLayers,
        int nHeads,
        int nKvHeads,
        int dHead,
        int dMlp,
        int dVocab,
        int nCtx,
        double normEps,
        Activation act,
        double ropeTheta,
        Optional<RopeScaling> ropeScaling,
        boolean tiedEmbeddings,
        boolean qkvBias,
        boolean attnOutBias,
        boolean mlpBias,
        boolean attnOnly,
        OptionalInt slidingWindow,
        OptionalLong bosTokenId,
        OptionalLong eosTokenId) {

    /** Architecture families; each has one implementation file in {@code dev.jlens.model.arch}. */
    public enum Family {
        /** GPT-2: LayerNorm, learned positions, GELU MLP, fused QKV with biases. */
        GPT2,
        /** Llama and its relatives (Qwen2, Mistral): RMSNorm, RoPE, SwiGLU, grouped-query attention. */
        LLAMA
    }

    /** MLP activation functions. */
    public enum Activation {
        GELU_NEW, GELU, RELU, SILU;

        static Activation parse(String hf) {
            return switch (hf) {
                case "gelu_new", "gelu_pytorch_tanh", "gelu_fast" -> GELU_NEW;
                case "gelu" -> GELU;
                case "relu" -> RELU;
                case "silu", "swish" -> SILU;
                default -> throw new IllegalArgumentException("unsupported activation_function '" + hf
                        + "'; supported: gelu_new, gelu_pytorch_tanh, gelu, relu, silu");
            };
        }
    }

    /** Llama-3.1 style RoPE frequency scaling ({@code rope_scaling.rope_type = "llama3"}). */
    public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {
        public RopeScaling {
            if (factor <= 0 || lowFreqFactor <= 0 || highFreqFactor <= lowFreqFactor || originalMaxPositions <= 0) {
                throw new IllegalArgumentException("invalid llama3 rope_scaling: factor=" + factor + " low_freq_factor="
                        + lowFreqFactor + " high_freq_factor=" + highFreqFactor
                        + " original_max_position_embeddings=" + originalMaxPositions);
            }
        }
    }

    /** Hugging Face architecture names this version can load. */
    public static final java.util.List<String> SUPPORTED = java.util.List.of(
            "GPT2LMHeadModel", "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM");

    public ModelConfig {
        if (family == null) throw new IllegalArgumentException("family must be set");
        require(dModel > 0, "dModel", dModel);
        require(nLayers > 0, "nLayers", nLayers);
        require(nHeads > 0, "nHeads", nHeads);
        require(nKvHeads > 0 && nHeads % nKvHeads == 0, "nKvHeads (must divide nHeads=" + nHeads + ")", nKvHeads);
        require(dHead > 0, "dHead", dHead);
        require(attnOnly || dMlp > 0, "dMlp", dMlp);
        require(dVocab > 0, "dVocab", dVocab);
        require(nCtx > 0, "nCtx", nCtx);
        require(normEps > 0, "normEps", normEps);
        if (family == Family.LLAMA && dHead % 2 != 0) {
            throw new IllegalArgumentException("rotary embeddings need an even dHead, got " + dHead);
        }
        if (act == null) throw new IllegalArgumentException("act must be set");
        modelType = modelType == null ? family.name().toLowerCase(Locale.ROOT) : modelType;
        ropeScaling = ropeScaling == null ? Optional.empty() : ropeScaling;
        slidingWindow = slidingWindow == null ? OptionalInt.empty() : slidingWindow;
        bosTokenId = bosTokenId == null ? OptionalLong.empty() : bosTokenId;
        eosTokenId = eosTokenId == null ? OptionalLong.empty() : eosTokenId;
    }

    private static void require(boolean ok, String field, double value) {
        if (!ok) throw new IllegalArgumentException("invalid model config: " + field + " = " + value);
    }

    /** Number of query heads per key/value head (1 without grouped-query attention). */
    public int groupSize() {
        return nHeads / nKvHeads;
    }

    /** A GPT-2 shaped config (learned positions, LayerNorm, gelu_new, tied embeddings). */
    public static ModelConfig gpt2(int dModel, int nLayers, int nHeads, int dMlp, int dVocab, int nCtx) {
        return new ModelConfig(Family.GPT2, "gpt2", dModel, nLayers, nHeads, nHeads, dModel / nHeads, dMlp, dVocab, nCtx,
                1e-5, Activation.GELU_NEW, 0, Optional.empty(), true, true, true, true, false, OptionalInt.empty(),
                OptionalLong.empty(), OptionalLong.empty());
    }

    /** A Llama shaped config (RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases, untied). */
    public static ModelConfig llama(int dModel, int nLayers, int nHeads, int nKvHeads, int dMlp, int dVocab, int nCtx) {
        return new ModelConfig(Family.LLAMA, "llama", dModel, nLayers, nHeads, nKvHeads, dModel / nHeads, dMlp, dVocab,
                nCtx, 1e-5, Activation.SILU, 10000, Optional.empty(), false, false, false, false, false,
                OptionalInt.empty(), OptionalLong.empty(), OptionalLong.empty());
    }

    /** This config without MLPs (an attention-only model). */
    public ModelConfig withAttnOnly(boolean attnOnly) {
        return new ModelConfig(family, modelType, dModel, nLayers, nHeads, nKvHeads, dHead, dMlp, dVocab, nCtx, normEps,
                act, ropeTheta, ropeScaling, tiedEmbeddings, qkvBias, attnOutBias, mlpBias, attnOnly, slidingWindow,
                bosTokenId, eosTokenId);
    }

    /** This config with tied (or untied) input and output embeddings. */
    public ModelConfig withTiedEmbeddings(boolean tied) {
        return new ModelConfig(family, modelType, dModel, nLayers, nHeads, nKvHeads, dHead, dMlp, dVocab, nCtx, normEps,
                act, ropeTheta, ropeScaling, tied, qkvBias, attnOutBias, mlpBias, attnOnly, slidingWindow,
                bosTokenId, eosTokenId);
    }

    /** This config with the given BOS and EOS token ids. */
    public ModelConfig withSpecialTokens(OptionalLong bos, OptionalLong eos) {
        return new ModelConfig(family, modelType, dModel, nLayers, nHeads, nKvHeads, dHead, dMlp, dVocab, nCtx, normEps,
                act, ropeTheta, ropeScaling, tiedEmbeddings, qkvBias, attnOutBias, mlpBias, attnOnly, slidingWindow,
                bos, eos);
    }

    /** Number of parameters (weights and biases). */
    public long parameterCount() {
        long d = dModel, qkv = (long) (nHeads + 2L * nKvHeads) * dHead;
        long attn = d * qkv + (long) nHeads * dHead * d + (qkvBias ? qkv : 0) + (attnOutBias ? d : 0);
        long mlp = attnOnly ? 0 : (family == Family.LLAMA ? 3L * d * dMlp : 2L * d * dMlp)
                + (mlpBias ? dMlp + d : 0);
        long norms = family == Family.GPT2 ? 4 * d : 2 * d;
        long perLayer = attn + mlp + norms;
        long embed = (long) dVocab * d + (family == Family.GPT2 ? (long) nCtx * d : 0);
        long unembed = tiedEmbeddings ? 0 : (long) dVocab * d;
        return embed + nLayers * perLayer + (family == Family.GPT2 ? 2 * d : d) + unembed;
    }

    // ---------------------------------------------------------------- Hugging Face config.json

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads {@code config.json} from a model directory (or the file itself). */
    public static ModelConfig load(Path dirOrFile) {
        Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve("config.json") : dirOrFile;
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no config.json at " + file + " (a model directory in Hugging Face "
                    + "layout holds config.json and model.safetensors)");
        }
        JsonNode node;
        try {
            node = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot parse " + file + ": " + e.getMessage(), e);
        }
        try {
            return fromHf(node);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** Parses a Hugging Face config object. */
    public static ModelConfig fromHf(JsonNode c) {
        if (c == null || !c.isObject()) throw new IllegalArgumentException("config must be a JSON object");
        String arch = c.path("architectures").path(0).asText("");
        String type = c.path("model_type").asText("");
        if (arch.isEmpty()) {
            arch = switch (type) {
                case "gpt2" -> "GPT2LMHeadModel";
                case "llama" -> "LlamaForCausalLM";
                case "qwen2" -> "Qwen2ForCausalLM";
                case "mistral" -> "MistralForCausalLM";
                default -> "";
            };
        }
        return switch (arch) {
            case "GPT2LMHeadModel" -> gpt2FromHf(c);
            case "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM" -> llamaFromHf(c, arch);
            default -> throw new IllegalArgumentException("unsupported architecture '"
                    + (arch.isEmpty() ? "(none; model_type=" + type + ")" : arch) + "'; supported: " + SUPPORTED);
        };
    }

    private static ModelConfig gpt2FromHf(JsonNode c) {
        int d = req(c, "n_embd");
        int heads = req(c, "n_head");
        int inner = c.hasNonNull("n_inner") ? c.get("n_inner").asInt() : 4 * d;
        boolean attnOnly = c.path("jlens_attn_only").asBoolean(false);
        return new ModelConfig(Family.GPT2, "gpt2", d, req(c, "n_layer"), heads, heads, d / heads, inner,
                req(c, "vocab_size"), req(c, "n_positions"), c.path("layer_norm_epsilon").asDouble(1e-5),
                Activation.parse(c.path("activation_function").asText("gelu_new")), 0, Optional.empty(),
                c.path("tie_word_embeddings").asBoolean(true), true, true, true, attnOnly, OptionalInt.empty(),
                optLong(c, "bos_token_id"), optLong(c, "eos_token_id"));
    }

    private static ModelConfig llamaFromHf(JsonNode c, String arch) {
        int d = req(c, "hidden_size");
        int heads = req(c, "num_attention_heads");
        int kv = c.hasNonNull("num_key_value_heads") ? c.get("num_key_value_heads").asInt() : heads;
        int dHead = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : d / heads;
        boolean qwen = arch.startsWith("Qwen2");
        boolean attnBias = c.path("attention_bias").asBoolean(false);
        Optional<RopeScaling> scaling = Optional.empty();
        JsonNode rs = c.path("rope_scaling");
        if (rs.isObject()) {
            String ropeType = rs.path("rope_type").asText(rs.path("type").asText(""));
            if (!ropeType.equals("llama3") && !ropeType.equals("default")) {
                throw new IllegalArgumentException("unsupported rope_scaling type '" + ropeType
                        + "'; supported: llama3 (or none)");
            }
            if (ropeType.equals("llama3")) {
                scaling = Optional.of(new RopeScaling(rs.path("factor").asDouble(8), rs.path("low_freq_factor").asDouble(1),
                        rs.path("high_freq_factor").asDouble(4), rs.path("original_max_position_embeddings").asInt(8192)));
            }
        }
        OptionalInt window = OptionalInt.empty();
        boolean useWindow = arch.startsWith("Mistral") || c.path("use_sliding_window").asBoolean(false);
        if (useWindow && c.hasNonNull("sliding_window")) window = OptionalInt.of(c.get("sliding_window").asInt());
        String type = arch.startsWith("Qwen2") ? "qwen2" : arch.startsWith("Mistral") ? "mistral" : "llama";
        return new ModelConfig(Family.LLAMA, type, d, req(c, "num_hidden_layers"), heads, kv, dHead,
                req(c, "intermediate_size"), req(c, "vocab_size"), c.path("max_position_embeddings").asInt(2048),
                c.path("rms_norm_eps").asDouble(1e-6), Activation.parse(c.path("hidden_act").asText("silu")),
                c.path("rope_theta").asDouble(10000), scaling, c.path("tie_word_embeddings").asBoolean(false),
                qwen || attnBias, attnBias, c.path("mlp_bias").asBoolean(false), false, window,
                optLong(c, "bos_token_id"), optLong(c, "eos_token_id"));
    }

    private static int req(JsonNode c, String field) {
        JsonNode v = c.get(field);
        if (v == null || !v.canConvertToInt()) {
            throw new IllegalArgumentException("config.json lacks integer field '" + field + "'");
        }
        return v.asInt();
    }

    private static OptionalLong optLong(JsonNode c, String field) {
        JsonNode v = c.get(field);
        if (v == null || v.isNull()) return OptionalLong.empty();
        if (v.isArray()) return v.size() == 0 ? OptionalLong.empty() : OptionalLong.of(v.get(0).asLong());
        return OptionalLong.of(v.asLong());
    }

    /** This config as a Hugging Face {@code config.json} object (so saved models load in Python too). */
    public ObjectNode toHf() {
        ObjectNode c = JSON.createObjectNode();
        if (family == Family.GPT2) {
            c.putArray("architectures").add("GPT2LMHeadModel");
            c.put("model_type", "gpt2");
            c.put("n_embd", dModel).put("n_layer", nLayers).put("n_head", nHeads).put("n_inner", dMlp)
                    .put("vocab_size", dVocab).put("n_positions", nCtx).put("n_ctx", nCtx)
                    .put("layer_norm_epsilon", normEps).put("activation_function", switch (act) {
                        case GELU_NEW -> "gelu_new";
                        case GELU -> "gelu";
                        case RELU -> "relu";
                        case SILU -> "silu";
                    }).put("tie_word_embeddings", tiedEmbeddings);
            if (attnOnly) c.put("jlens_attn_only", true);
        } else {
            String archName = switch (modelType) {
                case "qwen2" -> "Qwen2ForCausalLM";
                case "mistral" -> "MistralForCausalLM";
                default -> "LlamaForCausalLM";
            };
            c.putArray("architectures").add(archName);
            c.put("model_type", modelType);
            c.put("hidden_size", dModel).put("num_hidden_layers", nLayers).put("num_attention_heads", nHeads)
                    .put("num_key_value_heads", nKvHeads).put("head_dim", dHead).put("intermediate_size", dMlp)
                    .put("vocab_size", dVocab).put("max_position_embeddings", nCtx).put("rms_norm_eps", normEps)
                    .put("hidden_act", act == Activation.SILU ? "silu" : act.name().toLowerCase(Locale.ROOT))
                    .put("rope_theta", ropeTheta).put("tie_word_embeddings", tiedEmbeddings)
                    .put("attention_bias", attnOutBias).put("mlp_bias", mlpBias);
            ropeScaling.ifPresent(s -> c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", s.factor())
                    .put("low_freq_factor", s.lowFreqFactor()).put("high_freq_factor", s.highFreqFactor())
                    .put("original_max_position_embeddings", s.originalMaxPositions()));
            slidingWindow.ifPresent(w -> c.put("sliding_window", w).put("use_sliding_window", true));
        }
        bosTokenId.ifPresent(b -> c.put("bos_token_id", b));
        eosTokenId.ifPresent(e -> c.put("eos_token_id", e));
        c.put("torch_dtype", "float32");
        return c;
    }

    /** Writes {@code config.json} into {@code dir}. */
    public void save(Path dir) {
        try {
            Files.createDirectories(dir);
            JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), toHf());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write config.json to " + dir, e);
        }
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "ModelConfig[%s%s d_model=%d n_layers=%d n_heads=%d%s d_head=%d d_mlp=%s "
                        + "d_vocab=%d n_ctx=%d act=%s%s%s params=%,d]",
                modelType, "", dModel, nLayers, nHeads, nKvHeads != nHeads ? " n_kv_heads=" + nKvHeads : "", dHead,
                attnOnly ? "none" : String.valueOf(dMlp), dVocab, nCtx, act,
                family == Family.LLAMA ? " rope_theta=" + ropeTheta : "", tiedEmbeddings ? " tied" : "",
                parameterCount());
    }

}
