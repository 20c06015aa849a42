package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.io.CheckpointException;
import dev.jlens.io.DType;
import dev.jlens.io.Npz;
import dev.jlens.io.Safetensors;
import dev.jlens.io.TensorInfo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Reads and writes SAEs in SAELens's directory layout, so dictionaries move between JLens and Python: {@code cfg.json},
 * {@code sae_weights.safetensors} ({@code W_enc [d_in, d_sae]}, {@code b_enc [d_sae]}, {@code W_dec [d_sae, d_in]},
 * {@code b_dec [d_in]}, and {@code threshold [d_sae]} for {@code jumprelu}) and optionally
 * {@code sparsity.safetensors} ({@code sparsity [d_sae]}: log10 of each latent's firing frequency).
 *
 * <p>Format followed: SAELens 6.x (decoderesearch/SAELens, {@code __version__ = "6.49.2"}): {@code sae_lens/saes/sae.py}
 * ({@code SAEConfig.to_dict}: {@code d_in, d_sae, dtype, device, apply_b_dec_to_input, normalize_activations,
 * reshape_activations, metadata{...}, architecture}; {@code save_model}), {@code saes/topk_sae.py} ({@code k},
 * {@code rescale_acts_by_decoder_norm}), {@code saes/jumprelu_sae.py} ({@code threshold}; training checkpoints'
 * {@code log_threshold}), {@code saes/batchtopk_sae.py} (saved for inference as {@code jumprelu}, the scalar
 * {@code topk_threshold} broadcast to a per-latent {@code threshold}), and
 * {@code loading/pretrained_sae_loaders.py} ({@code handle_pre_6_0_config}: the older flat layout with
 * {@code hook_name}/{@code hook_point}, {@code hook_layer}, {@code model_name} and {@code activation_fn_str} at the top
 * level, and {@code activation_fn_kwargs.k} for TopK). File names from {@code sae_lens/constants.py}.
 *
 * <p>{@link #load} also reads Gemma Scope's layout (a directory holding {@code params.npz} and no {@code cfg.json}):
 * see {@link #loadGemmaScope(Path, Optional, Optional)}.
 *
 * <p>Saving folds {@link SaeConfig#inputScale()} into the weights ({@code W_enc * s}, {@code W_dec / s},
 * {@code b_dec / s}) and writes {@code normalize_activations: "none"}: the file then maps raw activations to raw
 * reconstructions, which is what SAELens does with {@code fold_activation_norm_scaling_factor}.
 */
public final class SaeLens {
    public static final String CFG_FILE = "cfg.json";
    public static final String WEIGHTS_FILE = "sae_weights.safetensors";
    public static final String SPARSITY_FILE = "sparsity.safetensors";
    public static final String SPARSITY_TENSOR = "sparsity";
    /** Gemma Scope's file: an {@code .npz} of {@code W_enc, W_dec, b_enc, b_dec, threshold}. */
    public static final String GEMMA_SCOPE_FILE = "params.npz";

    /** Architectures {@link #load} reads ({@code batchtopk}: a SAELens training checkpoint, loaded as JumpReLU). */
    public static final List<String> LOADABLE = List.of("standard", "topk", "jumprelu", "batchtopk");

    // The layout of cfg.json changed in 6.0 (metadata moved into its own object); SAELens reads a file without a
    // version >= 6.0.0 as the old flat layout, so we declare the first version of the layout we write.
    static final String LAYOUT_VERSION = "6.0.0";

    private static final Set<String> DTYPES = Set.of("float32", "float64", "float16", "bfloat16",
            "torch.float32", "torch.float64", "torch.float16", "torch.bfloat16");
    private static final JsonMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    private SaeLens() {}

    // ------------------------------------------------------------------------------------------------ saving

    /** Writes {@code cfg.json} and {@code sae_weights.safetensors} into {@code dir} (created if needed). */
    public static void save(SparseCoder sae, Path dir) {
        save(sae, dir, (float[]) null);
    }

    /** As {@link #save(SparseCoder, Path)}, plus {@code sparsity.safetensors} from log10 feature densities {@code [dSae]}. */
    public static void save(SparseCoder sae, Path dir, NDArray log10Sparsity) {
        save(sae, dir, log10Sparsity == null ? null : log10Sparsity.toType(ai.djl.ndarray.types.DataType.FLOAT32, false)
                .toFloatArray());
    }

    /** As {@link #save(SparseCoder, Path)}, plus {@code sparsity.safetensors} when {@code log10Sparsity} is not null. */
    public static void save(SparseCoder sae, Path dir, float[] log10Sparsity) {
        SaeConfig cfg = sae.cfg();
        if (cfg.nSources() != 1) {
            throw new IllegalArgumentException("SAELens's format holds single-source SAEs; " + cfg + " is a crosscoder over "
                    + cfg.nSources() + " sources");
        }
        if (log10Sparsity != null && log10Sparsity.length != cfg.dSae()) {
            throw new IllegalArgumentException("log10Sparsity has " + log10Sparsity.length + " values, expected dSae = " + cfg.dSae());
        }
        String arch = savedArchitecture(cfg.kind());
        boolean hasThreshold = arch.equals("jumprelu");
        if (hasThreshold && !sae.weights().has(SaeWeights.THRESHOLD)) {
            throw new IllegalArgumentException(cfg.kind().architecture() + " is saved as jumprelu, which needs a 'threshold' "
                    + "tensor; this dictionary has " + sae.weights().params().keySet());
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create SAE directory " + dir, e);
        }
        float s = (float) cfg.inputScale();
        SaeWeights w = sae.weights();
        try (NDScope scope = new NDScope()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            // raw x: pre = (s x - b_dec) W_enc + b_enc = (x - b_dec/s)(s W_enc) + b_enc; recon = (f W_dec + b_dec)/s
            t.put(SaeWeights.W_ENC, s == 1f ? w.get(SaeWeights.W_ENC) : w.get(SaeWeights.W_ENC).mul(s));
            t.put(SaeWeights.B_ENC, w.get(SaeWeights.B_ENC));
            t.put(SaeWeights.W_DEC, s == 1f ? w.get(SaeWeights.W_DEC) : w.get(SaeWeights.W_DEC).div(s));
            t.put(SaeWeights.B_DEC, s == 1f ? w.get(SaeWeights.B_DEC) : w.get(SaeWeights.B_DEC).div(s));
            if (hasThreshold) t.put(SaeWeights.THRESHOLD, w.get(SaeWeights.THRESHOLD));   // in pre-activation units: unchanged
            Safetensors.write(dir.resolve(WEIGHTS_FILE), t, Map.of(), DType.F32);
        }
        writeJson(dir.resolve(CFG_FILE), configJson(cfg, arch));
        if (log10Sparsity != null) {
            Safetensors.writeFloats(dir.resolve(SPARSITY_FILE), Map.of(SPARSITY_TENSOR, log10Sparsity),
                    Map.of(SPARSITY_TENSOR, new long[] {cfg.dSae()}), Map.of(), DType.F32);
        }
    }

    /** The SAELens architecture a kind is saved as: BatchTopK and Matryoshka infer with a threshold, so as jumprelu. */
    static String savedArchitecture(SaeConfig.Kind k) {
        if (k instanceof SaeConfig.BatchTopK || k instanceof SaeConfig.Matryoshka) return "jumprelu";
        return k.architecture();
    }

    /** The {@code cfg.json} that {@link #save} writes for {@code sae} (e.g. SAEBench's {@code sae_cfg_dict}). */
    public static ObjectNode configJson(SparseCoder sae) {
        return configJson(sae.cfg(), savedArchitecture(sae.cfg().kind()));
    }

    private static ObjectNode configJson(SaeConfig cfg, String arch) {
        ObjectNode c = JsonNodeFactory.instance.objectNode();
        c.put("d_in", cfg.dIn());
        c.put("d_sae", cfg.dSae());
        c.put("dtype", "float32");
        c.put("device", "cpu");
        c.put("apply_b_dec_to_input", cfg.applyBDecToInput());
        c.put("normalize_activations", "none");   // inputScale is folded into the weights
        c.put("reshape_activations", cfg.hookPoint().orElse("").endsWith("hook_z") ? "hook_z" : "none");
        ObjectNode m = c.putObject("metadata");
        m.put("sae_lens_version", LAYOUT_VERSION);
        m.put("sae_lens_training_version", LAYOUT_VERSION);
        if (cfg.modelName().isPresent()) m.put("model_name", cfg.modelName().get());
        else m.putNull("model_name");
        if (cfg.hookPoint().isPresent()) m.put("hook_name", cfg.hookName());
        else m.putNull("hook_name");
        m.putNull("hook_head_index");
        if (cfg.kind() instanceof SaeConfig.TopK tk) {
            c.put("k", tk.k());
            c.put("rescale_acts_by_decoder_norm", false);
        }
        c.put("architecture", arch);
        return c;
    }

    private static void writeJson(Path file, JsonNode node) {
        try {
            Files.writeString(file, JSON.writeValueAsString(node) + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    // ------------------------------------------------------------------------------------------------ loading

    /**
     * Loads an SAE from a SAELens directory (current or pre-6.0 {@code cfg.json} layout; F32, F16 or BF16 weights):
     * {@code standard} as a ReLU SAE (its L1 coefficient is not saved: 0), {@code topk} as TopK(k), {@code jumprelu}
     * (and a {@code batchtopk} training checkpoint) as JumpReLU with its threshold. The hook name comes from
     * {@code metadata.hook_name} (or the older top-level {@code hook_name}/{@code hook_point}). A directory with
     * Gemma Scope's {@code params.npz} and no {@code cfg.json} loads through {@link #loadGemmaScope(Path)}.
     */
    public static SparseCoder load(Path dir) {
        if (Files.isDirectory(dir) && !Files.isRegularFile(dir.resolve(CFG_FILE))
                && Files.isRegularFile(dir.resolve(GEMMA_SCOPE_FILE))) {
            return loadGemmaScope(dir);
        }
        Parsed p = parse(dir);
        Path file = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(file, "missing; an SAELens SAE directory holds " + CFG_FILE + " and " + WEIGHTS_FILE
                    + " (and optionally " + SPARSITY_FILE + "); found " + listing(dir));
        }
        try (NDManager tmp = NDManager.newBaseManager(); Safetensors st = Safetensors.open(file)) {
            Map<String, NDArray> t = tensors(p, st, tmp);
            SaeConfig cfg = p.cfg();
            return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
        }
    }

    // ------------------------------------------------------------------------------------------------ Gemma Scope

    /** Where a Gemma Scope release's folder names put an SAE: its layer, hook and model, as far as they tell. */
    public record GemmaScopeSite(OptionalInt layer, Optional<String> hookName, Optional<String> modelName) {}

    private static final Pattern LAYER_DIR = Pattern.compile("layer_(\\d+)");
    private static final Pattern RELEASE = Pattern.compile(
            "gemma-scope-(\\d+b)-(pt|it)-(res|mlp|att|transcoders)(?:-canonical)?");

    /**
     * What the folder names around {@code dir} say: the layer from a {@code layer_N} folder and, from a Gemma Scope
     * release folder above it (a Hugging Face repository name such as {@code gemma-scope-2b-pt-res}, also inside a
     * Hub cache's {@code models--google--gemma-scope-2b-pt-res}), the hook ({@code res}: {@code
     * blocks.N.hook_resid_post}, {@code mlp}: {@code blocks.N.hook_mlp_out}, {@code att}: {@code
     * blocks.N.attn.hook_z}) and the model ({@code gemma-2-2b}, {@code gemma-2-9b-it}, ...).
     */
    public static GemmaScopeSite gemmaScopeSite(Path dir) {
        OptionalInt layer = OptionalInt.empty();
        String size = null, variant = null, site = null;
        for (Path p = dir.toAbsolutePath().normalize(); p != null && p.getFileName() != null; p = p.getParent()) {
            String name = p.getFileName().toString();
            Matcher l = LAYER_DIR.matcher(name);
            if (layer.isEmpty() && l.matches()) layer = OptionalInt.of(Integer.parseInt(l.group(1)));
            Matcher r = RELEASE.matcher(name);
            if (site == null && r.find()) {
                size = r.group(1);
                variant = r.group(2);
                site = r.group(3);
            }
        }
        Optional<String> model = site == null ? Optional.empty()
                : Optional.of("gemma-2-" + size + (variant.equals("it") ? "-it" : ""));
        Optional<String> hook = Optional.empty();
        if (layer.isPresent() && site != null) {
            String prefix = "blocks." + layer.getAsInt() + ".";
            hook = switch (site) {
                case "res" -> Optional.of(prefix + "hook_resid_post");
                case "mlp" -> Optional.of(prefix + "hook_mlp_out");
                case "att" -> Optional.of(prefix + "attn.hook_z");
                default -> Optional.empty();   // transcoders read one hook and write another
            };
        }
        return new GemmaScopeSite(layer, hook, model);
    }

    /**
     * Loads a Gemma Scope SAE from a directory holding {@code params.npz} (or the file itself), with the hook and
     * model its folder names give ({@link #gemmaScopeSite}); neither is needed to encode and decode.
     */
    public static SparseCoder loadGemmaScope(Path dirOrFile) {
        GemmaScopeSite site = gemmaScopeSite(Files.isDirectory(dirOrFile) ? dirOrFile : dirOrFile.getParent());
        return loadGemmaScope(dirOrFile, site.hookName(), site.modelName());
    }

    /**
     * Loads a Gemma Scope SAE ({@code params.npz}: {@code W_enc [d_in, d_sae]}, {@code W_dec [d_sae, d_in]},
     * {@code b_enc [d_sae]}, {@code b_dec [d_in]}, {@code threshold [d_sae]}) as a JumpReLU SAE whose input is not
     * shifted by {@code b_dec}: {@code pre = x W_enc + b_enc}, {@code f = pre * (pre > threshold)},
     * {@code recon = f W_dec + b_dec}. {@code hookName} and {@code modelName} are what the caller knows.
     */
    public static SparseCoder loadGemmaScope(Path dirOrFile, Optional<String> hookName, Optional<String> modelName) {
        Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve(GEMMA_SCOPE_FILE) : dirOrFile;
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(file, "missing; a Gemma Scope SAE directory holds " + GEMMA_SCOPE_FILE
                    + (Files.isDirectory(dirOrFile) ? "; found " + listing(dirOrFile) : ""));
        }
        Map<String, Npz.Array> a = Npz.read(file);
        List<String> names = List.of(SaeWeights.W_ENC, SaeWeights.W_DEC, SaeWeights.B_ENC, SaeWeights.B_DEC,
                SaeWeights.THRESHOLD);
        List<String> missing = names.stream().filter(n -> !a.containsKey(n)).toList();
        if (!missing.isEmpty()) {
            throw new CheckpointException(file, "lacks " + missing + "; a Gemma Scope file holds " + names + ", this one "
                    + a.keySet());
        }
        List<String> extra = a.keySet().stream().filter(n -> !names.contains(n)).toList();
        if (!extra.isEmpty()) {
            throw new CheckpointException(file, "unexpected arrays " + extra + "; a Gemma Scope file holds " + names);
        }
        long[] enc = a.get(SaeWeights.W_ENC).shape();
        if (enc.length != 2) {
            throw new CheckpointException(file, "W_enc must be [d_in, d_sae], got " + Arrays.toString(enc));
        }
        int dIn = (int) enc[0], dSae = (int) enc[1];
        Map<String, long[]> want = Map.of(SaeWeights.W_ENC, new long[] {dIn, dSae},
                SaeWeights.W_DEC, new long[] {dSae, dIn}, SaeWeights.B_ENC, new long[] {dSae},
                SaeWeights.B_DEC, new long[] {dIn}, SaeWeights.THRESHOLD, new long[] {dSae});
        for (String n : names) {
            if (!Arrays.equals(a.get(n).shape(), want.get(n))) {
                throw new CheckpointException(file, "array '" + n + "' has shape " + Arrays.toString(a.get(n).shape())
                        + " but W_enc " + Arrays.toString(enc) + " (d_in " + dIn + ", d_sae " + dSae + ") needs "
                        + Arrays.toString(want.get(n)));
            }
        }
        SaeConfig cfg;
        try {
            cfg = new SaeConfig(dIn, dSae, new SaeConfig.JumpRelu(0.0), 1,
                    hookName == null ? Optional.empty() : hookName.filter(h -> !h.isEmpty()),
                    modelName == null ? Optional.empty() : modelName, 1.0, false);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file, e.getMessage(), e);
        }
        try (NDManager tmp = NDManager.newBaseManager()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            for (String n : names) t.put(n, tmp.create(a.get(n).data(), new Shape(want.get(n))));
            return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
        }
    }

    /** The configuration in {@code dir}'s {@code cfg.json}, without reading the weights. */
    public static SaeConfig config(Path dir) {
        return parse(dir).cfg();
    }

    /** The log10 feature densities {@code [dSae]} in {@code dir}'s {@code sparsity.safetensors}, if there is one. */
    public static Optional<float[]> loadSparsity(Path dir) {
        Path file = dir.resolve(SPARSITY_FILE);
        if (!Files.isRegularFile(file)) return Optional.empty();
        try (Safetensors st = Safetensors.open(file)) {
            if (!st.contains(SPARSITY_TENSOR)) {
                throw new CheckpointException(file, "has no tensor '" + SPARSITY_TENSOR + "'; it holds " + st.names());
            }
            return Optional.of(st.loadFloats(SPARSITY_TENSOR));
        }
    }

    /** What cfg.json says, reduced to what loading needs. */
    private record Parsed(SaeConfig cfg, String architecture, boolean rescaleByDecoderNorm, Path cfgFile) {}

    private static Parsed parse(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir, "no such SAE directory; an SAELens SAE directory holds " + CFG_FILE + " and "
                    + WEIGHTS_FILE);
        }
        Path cfgFile = dir.resolve(CFG_FILE);
        if (!Files.isRegularFile(cfgFile)) {
            throw new CheckpointException(cfgFile, "missing; an SAELens SAE directory holds " + CFG_FILE + " and " + WEIGHTS_FILE
                    + " (and optionally " + SPARSITY_FILE + "); found " + listing(dir));
        }
        JsonNode c;
        try {
            c = JSON.readTree(Files.readString(cfgFile));
        } catch (JsonProcessingException e) {
            throw new CheckpointException(cfgFile, "is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new CheckpointException(cfgFile, "cannot be read: " + e.getMessage(), e);
        }
        if (c == null || !c.isObject()) throw new CheckpointException(cfgFile, "must hold a JSON object");
        JsonNode meta = c.path("metadata");

        String arch = text(c, "architecture");
        String actFn = text(c, "activation_fn");
        if (actFn == null) actFn = text(c, "activation_fn_str");
        JsonNode kwargsK = c.path("activation_fn_kwargs").path("k");
        // pre-6.0 files name TopK through the activation function (handle_pre_6_0_config)
        if ("topk".equals(actFn) && kwargsK.isNumber() && (arch == null || arch.equals("standard"))) arch = "topk";
        if (arch == null) arch = "standard";
        if (!LOADABLE.contains(arch)) {
            throw new CheckpointException(cfgFile, "architecture '" + arch + "' is not supported; supported: " + LOADABLE);
        }

        int dIn = requireInt(c, "d_in", cfgFile), dSae = requireInt(c, "d_sae", cfgFile);
        String dtype = text(c, "dtype");
        if (dtype != null && !DTYPES.contains(dtype)) {
            throw new CheckpointException(cfgFile, "dtype '" + dtype + "' is not one of " + new TreeSet<>(DTYPES));
        }
        boolean applyBDec = !c.has("apply_b_dec_to_input") || c.get("apply_b_dec_to_input").asBoolean(true);

        // normalize_activations: a boolean before 6.0 (true = expected_average_only_in). That mode and "none" do
        // nothing at inference (SAELens folds the scale into the weights); the run-time norms are not supported.
        JsonNode norm = c.path("normalize_activations");
        String normMode = norm.isBoolean() ? (norm.asBoolean() ? "expected_average_only_in" : "none")
                : norm.isTextual() ? norm.asText() : "none";
        if (!normMode.equals("none") && !normMode.equals("expected_average_only_in")) {
            throw new CheckpointException(cfgFile, "normalize_activations '" + normMode + "' is not supported; supported: "
                    + "[none, expected_average_only_in]");
        }
        String reshape = text(c, "reshape_activations");
        if (reshape != null && !reshape.equals("none") && !reshape.equals("hook_z")) {
            throw new CheckpointException(cfgFile, "reshape_activations '" + reshape + "' is not supported; supported: [none, hook_z]");
        }

        String hook = firstText(meta, c, "hook_name");
        if (hook == null) hook = text(c, "hook_point");
        String model = firstText(meta, c, "model_name");
        JsonNode head = meta.has("hook_head_index") ? meta.get("hook_head_index")
                : c.has("hook_head_index") ? c.get("hook_head_index") : c.path("hook_point_head_index");
        if (head.isNumber()) {
            throw new CheckpointException(cfgFile, "hook_head_index " + head.asInt() + " (an SAE over one attention head) is "
                    + "not supported; SAEs over all heads of hook_z (hook_head_index null) are");
        }

        SaeConfig.Kind kind;
        boolean rescale = c.path("rescale_acts_by_decoder_norm").asBoolean(false);
        switch (arch) {
            case "topk" -> {
                JsonNode k = c.has("k") ? c.get("k") : kwargsK;
                if (!k.canConvertToInt() || k.asDouble() != k.asInt()) {
                    throw new CheckpointException(cfgFile, "topk needs an integer 'k' (or activation_fn_kwargs.k), got " + k);
                }
                if (k.asInt() <= 0 || k.asInt() > dSae) {
                    throw new CheckpointException(cfgFile, "k " + k.asInt() + " must be in [1, d_sae = " + dSae + "]");
                }
                kind = new SaeConfig.TopK(k.asInt());
            }
            case "batchtopk" -> {
                // a training config: its rescale_acts_by_decoder_norm defaults to true (TopKTrainingSAEConfig)
                rescale = c.path("rescale_acts_by_decoder_norm").asBoolean(true);
                kind = new SaeConfig.JumpRelu(0.0);
            }
            case "jumprelu" -> kind = new SaeConfig.JumpRelu(0.0);
            default -> kind = new SaeConfig.Relu(0.0);
        }
        SaeConfig cfg;
        try {
            cfg = new SaeConfig(dIn, dSae, kind, 1, Optional.ofNullable(hook).filter(h -> !h.isEmpty()), Optional.ofNullable(model), 1.0, applyBDec);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(cfgFile, e.getMessage(), e);
        }
        return new Parsed(cfg, arch, rescale, cfgFile);
    }

    /** Reads, checks and converts the weights to what {@link SaeWeights} holds, on {@code tmp}. */
    private static Map<String, NDArray> tensors(Parsed p, Safetensors st, NDManager tmp) {
        SaeConfig cfg = p.cfg();
        int dIn = cfg.dIn(), dSae = cfg.dSae();
        Path file = st.source();
        List<String> expected = new ArrayList<>(List.of(SaeWeights.W_ENC, SaeWeights.B_ENC, SaeWeights.W_DEC, SaeWeights.B_DEC));
        Map<String, long[]> shapes = Map.of(SaeWeights.W_ENC, new long[] {dIn, dSae}, SaeWeights.B_ENC, new long[] {dSae},
                SaeWeights.W_DEC, new long[] {dSae, dIn}, SaeWeights.B_DEC, new long[] {dIn});
        Map<String, NDArray> t = new LinkedHashMap<>();
        for (String n : expected) t.put(n, load(st, n, shapes.get(n), p, tmp));

        Set<String> known = new TreeSet<>(expected);
        boolean jump = p.architecture().equals("jumprelu") || p.architecture().equals("batchtopk");
        if (jump) {
            known.addAll(List.of(SaeWeights.THRESHOLD, "log_threshold", "topk_threshold"));
            NDArray th;
            if (st.contains(SaeWeights.THRESHOLD)) {
                th = load(st, SaeWeights.THRESHOLD, new long[] {dSae}, p, tmp);
            } else if (st.contains("log_threshold")) {
                th = load(st, "log_threshold", new long[] {dSae}, p, tmp).exp();   // older JumpReLU training checkpoints
            } else if (st.contains("topk_threshold")) {
                th = load(st, "topk_threshold", new long[0], p, tmp).broadcast(new Shape(dSae)).duplicate();
            } else {
                throw new CheckpointException(file, p.architecture() + " needs a 'threshold' tensor [" + dSae
                        + "] (or 'log_threshold'); the file holds " + st.names());
            }
            t.put(SaeWeights.THRESHOLD, th);
        } else {
            known.add(SaeWeights.THRESHOLD);   // harmless extra: ignored by ReLU and TopK
        }
        // finetuning_scaling_factor (pre-6.0): decode((f * sf)) == decode with W_dec rows scaled by sf
        for (String sfName : List.of("scaling_factor", "finetuning_scaling_factor")) {
            known.add(sfName);
            if (!st.contains(sfName)) continue;
            NDArray sf = load(st, sfName, new long[] {dSae}, p, tmp);
            t.put(SaeWeights.W_DEC, t.get(SaeWeights.W_DEC).mul(sf.reshape(dSae, 1)));
        }
        List<String> extra = st.names().stream().filter(n -> !known.contains(n)).toList();
        if (!extra.isEmpty()) {
            throw new CheckpointException(file, "unexpected tensors " + extra + " for architecture '" + p.architecture()
                    + "'; expected " + known);
        }
        if (p.rescaleByDecoderNorm()) {
            // rescale_acts_by_decoder_norm: pre * |W_dec_i| selects, f / |W_dec_i| decodes. Folding the norms into the
            // encoder (and out of the decoder) gives the same latents and reconstruction with plain encode/decode.
            NDArray norms = t.get(SaeWeights.W_DEC).norm(new int[] {1}).maximum(1e-8f);
            t.put(SaeWeights.W_ENC, t.get(SaeWeights.W_ENC).mul(norms.reshape(1, dSae)));
            t.put(SaeWeights.B_ENC, t.get(SaeWeights.B_ENC).mul(norms));
            t.put(SaeWeights.W_DEC, t.get(SaeWeights.W_DEC).div(norms.reshape(dSae, 1)));
        }
        return t;
    }

    private static NDArray load(Safetensors st, String name, long[] shape, Parsed p, NDManager tmp) {
        if (!st.contains(name)) {
            throw new CheckpointException(st.source(), "missing tensor '" + name + "' " + Arrays.toString(shape) + " for architecture '"
                    + p.architecture() + "'; the file holds " + st.names());
        }
        TensorInfo info = st.info(name);
        if (!Arrays.equals(info.shape(), shape)) {
            throw new CheckpointException(st.source(), "tensor '" + name + "' has shape " + Arrays.toString(info.shape())
                    + " but " + p.cfgFile().getFileName() + " (d_in " + p.cfg().dIn() + ", d_sae " + p.cfg().dSae()
                    + ") needs " + Arrays.toString(shape));
        }
        if (!info.dtype().isFloatingPoint()) {
            throw new CheckpointException(st.source(), "tensor '" + name + "' has dtype " + info.dtype()
                    + "; expected F32, F16, BF16 or F64");
        }
        return st.load(name, tmp);
    }

    private static int requireInt(JsonNode c, String field, Path cfgFile) {
        JsonNode v = c.get(field);
        if (v == null || !v.canConvertToInt() || v.asDouble() != v.asInt()) {
            throw new CheckpointException(cfgFile, "needs an integer '" + field + "', got " + v);
        }
        return v.asInt();
    }

    private static String text(JsonNode c, String field) {
        JsonNode v = c.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }

    /** {@code field} from the metadata object (6.x layout), else from the top level (older flat layout). */
    private static String firstText(JsonNode meta, JsonNode top, String field) {
        String v = meta.isObject() ? text(meta, field) : null;
        return v != null ? v : text(top, field);
    }

    private static String listing(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(x -> x.getFileName().toString()).sorted().toList().toString();
        } catch (IOException e) {
            return "(unreadable)";
        }
    }
}
