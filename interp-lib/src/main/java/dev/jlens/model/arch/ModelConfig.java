package dev.jlens.model.arch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The shape and flavour of a transformer, read from a Hugging Face {@code config.json}. Field names follow
 * TransformerLens ({@code dModel}, {@code nLayers}, {@code dHead}, ...). Which file implements it is {@link #family()};
 * reading and writing {@code config.json} and the parameter count are that family's (see {@link Architectures}).
 *
 * @param ropeTheta the rotary embeddings' base; 0 for families without rotary embeddings (GPT-2)
 * @param options   settings only the family reads, a record in the family's file ({@link NoOptions} for GPT-2,
 *                  Llama, Qwen2 and Mistral; {@code Llama.Options} for Qwen 3; {@code Gemma2.Options})
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
        OptionalLong eosTokenId,
        FamilyOptions options) {

    /**
     * An architecture family: the name of the one file in {@code dev.jlens.model.arch} that implements it, registered
     * in {@link Architectures}. One instance per name, so {@code ==} compares families.
     */
    public static final class Family {
        private static final Map<String, Family> BY_NAME = new ConcurrentHashMap<>();

        /** GPT-2: LayerNorm, learned positions, GELU MLP, fused QKV with biases ({@link Gpt2}). */
        public static final Family GPT2 = of("gpt2");
        /**
         * Llama and its relatives (Qwen2, Mistral, Qwen 3): RMSNorm, RoPE, SwiGLU, grouped-query attention
         * ({@link Llama}). Gemma 2's key is {@link Gemma2#GEMMA2}.
         */
        public static final Family LLAMA = of("llama");

        private final String name;

        private Family(String name) {
            this.name = name;
        }

        /** The family called {@code name} (lower case, e.g. {@code "gpt2"}); configs check it is registered. */
        public static Family of(String name) {
            if (name == null || name.isEmpty() || !name.equals(name.toLowerCase(Locale.ROOT))) {
                throw new IllegalArgumentException("a family name is lower case and not empty, got '" + name + "'");
            }
            return BY_NAME.computeIfAbsent(name, Family::new);
        }

        /** The family's name, e.g. {@code "gpt2"}. */
        public String name() {
            return name;
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** Settings that only one family reads (say Gemma 2's soft-capping): each such family defines its own record. */
    public interface FamilyOptions {}

    /** No family-specific settings. */
    public enum NoOptions implements FamilyOptions { INSTANCE }

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

        /** The name Hugging Face configs use ({@code gelu_new}, {@code silu}, ...). */
        String hfName() {
            return name().toLowerCase(Locale.ROOT);
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

    /** Hugging Face architecture names this version can load (from the registered families). */
    public static final List<String> SUPPORTED = Architectures.supported();

    // Explicit rather than compact, so that the family's own checks can see the finished config.
    public ModelConfig(Family family, String modelType, int dModel, int nLayers, int nHeads, int nKvHeads, int dHead,
                       int dMlp, int dVocab, int nCtx, double normEps, Activation act, double ropeTheta,
                       Optional<RopeScaling> ropeScaling, boolean tiedEmbeddings, boolean qkvBias, boolean attnOutBias,
                       boolean mlpBias, boolean attnOnly, OptionalInt slidingWindow, OptionalLong bosTokenId,
                       OptionalLong eosTokenId, FamilyOptions options) {
        if (family == null) throw new IllegalArgumentException("family must be set");
        Architectures.Spec spec = Architectures.spec(family);
        require(dModel > 0, "dModel", dModel);
        require(nLayers > 0, "nLayers", nLayers);
        require(nHeads > 0, "nHeads", nHeads);
        require(nKvHeads > 0 && nHeads % nKvHeads == 0, "nKvHeads (must divide nHeads=" + nHeads + ")", nKvHeads);
        require(dHead > 0, "dHead", dHead);
        require(attnOnly || dMlp > 0, "dMlp", dMlp);
        require(dVocab > 0, "dVocab", dVocab);
        require(nCtx > 0, "nCtx", nCtx);
        require(normEps > 0, "normEps", normEps);
        if (act == null) throw new IllegalArgumentException("act must be set");
        options = options == null ? NoOptions.INSTANCE : options;
        if (!spec.options().isInstance(options)) {
            throw new IllegalArgumentException("a " + family + " config takes options of type "
                    + spec.options().getSimpleName() + ", got " + options);
        }
        this.family = family;
        this.modelType = modelType == null ? family.name() : modelType;
        this.dModel = dModel;
        this.nLayers = nLayers;
        this.nHeads = nHeads;
        this.nKvHeads = nKvHeads;
        this.dHead = dHead;
        this.dMlp = dMlp;
        this.dVocab = dVocab;
        this.nCtx = nCtx;
        this.normEps = normEps;
        this.act = act;
        this.ropeTheta = ropeTheta;
        this.ropeScaling = ropeScaling == null ? Optional.empty() : ropeScaling;
        this.tiedEmbeddings = tiedEmbeddings;
        this.qkvBias = qkvBias;
        this.attnOutBias = attnOutBias;
        this.mlpBias = mlpBias;
        this.attnOnly = attnOnly;
        this.slidingWindow = slidingWindow == null ? OptionalInt.empty() : slidingWindow;
        this.bosTokenId = bosTokenId == null ? OptionalLong.empty() : bosTokenId;
        this.eosTokenId = eosTokenId == null ? OptionalLong.empty() : eosTokenId;
        this.options = options;
        spec.validate().accept(this);
    }

    static void require(boolean ok, String field, double value) {
        if (!ok) throw new IllegalArgumentException("invalid model config: " + field + " = " + value);
    }

    /** Number of query heads per key/value head (1 without grouped-query attention). */
    public int groupSize() {
        return nHeads / nKvHeads;
    }

    /** The family options as {@code type}; throws naming the type this config has. */
    public <T extends FamilyOptions> T options(Class<T> type) {
        if (!type.isInstance(options)) {
            throw new IllegalArgumentException("this " + family + " config has options " + options + ", not "
                    + type.getSimpleName());
        }
        return type.cast(options);
    }

    /** A GPT-2 shaped config (learned positions, LayerNorm, gelu_new, tied embeddings). */
    public static ModelConfig gpt2(int dModel, int nLayers, int nHeads, int dMlp, int dVocab, int nCtx) {
        return new ModelConfig(Family.GPT2, "gpt2", dModel, nLayers, nHeads, nHeads, dModel / nHeads, dMlp, dVocab, nCtx,
                1e-5, Activation.GELU_NEW, 0, Optional.empty(), true, true, true, true, false, OptionalInt.empty(),
                OptionalLong.empty(), OptionalLong.empty(), NoOptions.INSTANCE);
    }

    /** A Llama shaped config (RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases, untied). */
    public static ModelConfig llama(int dModel, int nLayers, int nHeads, int nKvHeads, int dMlp, int dVocab, int nCtx) {
        return new ModelConfig(Family.LLAMA, "llama", dModel, nLayers, nHeads, nKvHeads, dModel / nHeads, dMlp, dVocab,
                nCtx, 1e-5, Activation.SILU, 10000, Optional.empty(), false, false, false, false, false,
                OptionalInt.empty(), OptionalLong.empty(), OptionalLong.empty(), NoOptions.INSTANCE);
    }

    /** This config without MLPs (an attention-only model). */
    public ModelConfig withAttnOnly(boolean attnOnly) {
        return new ModelConfig(family, modelType, dModel, nLayers, nHeads, nKvHeads, dHead, dMlp, dVocab, nCtx, normEps,
                act, ropeTheta, ropeScaling, tiedEmbeddings, qkvBias, attnOutBias, mlpBias, attnOnly, slidingWindow,
                bosTokenId, eosTokenId, options);
    }

    /** This config with tied (or untied) input and output embeddings. */
    public ModelConfig withTiedEmbeddings(boolean tied) {
        return new ModelConfig(family, modelType, dModel, nLayers, nHeads, nKvHeads, dHead, dMlp, dVocab, nCtx, normEps,
                act, ropeTheta, ropeScaling, tied, qkvBias, attnOutBias, mlpBias, attnOnly, slidingWindow,
                bosTokenId, eosTokenId, options);
    }

    /** This config with the given BOS and EOS token ids. */
    public ModelConfig withSpecialTokens(OptionalLong bos, OptionalLong eos) {
        return new ModelConfig(family, modelType, dModel, nLayers, nHeads, nKvHeads, dHead, dMlp, dVocab, nCtx, normEps,
                act, ropeTheta, ropeScaling, tiedEmbeddings, qkvBias, attnOutBias, mlpBias, attnOnly, slidingWindow,
                bos, eos, options);
    }

    /** Number of parameters (weights and biases): the sizes in the family's weight table. */
    public long parameterCount() {
        return Architectures.spec(family).weights().apply(this).parameterCount();
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

    /** Parses a Hugging Face config object: the family that registered its architecture reads it. */
    public static ModelConfig fromHf(JsonNode c) {
        if (c == null || !c.isObject()) throw new IllegalArgumentException("config must be a JSON object");
        String arch = c.path("architectures").path(0).asText("");
        String type = c.path("model_type").asText("");
        if (arch.isEmpty()) arch = Architectures.architectureOfModelType(type).orElse("");
        String named = arch;
        Architectures.Spec spec = Architectures.forHfArchitecture(arch).orElseThrow(() -> new IllegalArgumentException(
                "unsupported architecture '" + (named.isEmpty() ? "(none; model_type=" + type + ")" : named)
                        + "'; supported: " + SUPPORTED));
        return spec.fromHf().apply(c, arch).withSpecialTokens(optLong(c, "bos_token_id"), optLong(c, "eos_token_id"));
    }

    /** An integer field a family cannot do without; a clear error when it is missing. */
    static int requireInt(JsonNode c, String field) {
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
        Architectures.spec(family).toHf().accept(this, c);
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
        return String.format(Locale.ROOT, "ModelConfig[%s d_model=%d n_layers=%d n_heads=%d%s d_head=%d d_mlp=%s "
                        + "d_vocab=%d n_ctx=%d act=%s%s%s%s params=%,d]",
                modelType, dModel, nLayers, nHeads, nKvHeads != nHeads ? " n_kv_heads=" + nKvHeads : "", dHead,
                attnOnly ? "none" : String.valueOf(dMlp), dVocab, nCtx, act,
                ropeTheta > 0 ? " rope_theta=" + ropeTheta : "", tiedEmbeddings ? " tied" : "",
                options instanceof NoOptions ? "" : " " + options, parameterCount());
    }
}
