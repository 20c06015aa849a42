package dev.jlens.model;

import dev.jlens.model.arch.KvCache;

import dev.jlens.model.arch.ForwardInputs;

import dev.jlens.model.arch.ModelConfig;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookFn;
import dev.jlens.hook.HookNames;
import dev.jlens.hook.HookPoint;
import dev.jlens.hook.HookRegistry;
import dev.jlens.hook.HookScope;
import dev.jlens.hook.NameFilter;
import dev.jlens.io.DType;
import dev.jlens.io.HfHub;
import dev.jlens.io.Safetensors;
import dev.jlens.model.arch.Architecture;
import dev.jlens.model.arch.TlWeights;
import dev.jlens.model.arch.Weights;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.function.Function;

/**
 * A transformer with a hook point on every activation (TransformerLens names), loaded from a Hugging Face
 * checkpoint. Arrays it returns belong to the model's output manager and are also registered with the caller's
 * {@link NDScope}, if any: wrap loops in {@code try (NDScope s = new NDScope()) {...}} or close results.
 */
public final class HookedTransformer implements AutoCloseable {
    static {
        if (System.getProperty("ai.djl.offline") == null) System.setProperty("ai.djl.offline", "true");
    }

    private final ModelConfig cfg;
    private final NDManager manager;
    private final NDManager outputs;
    private final HookRegistry hooks = new HookRegistry();
    private final Architecture arch;
    private final String name;
    private final List<WeightDelta> weightDeltas = new ArrayList<>();
    private Tokenizer tokenizer;

    private HookedTransformer(ModelConfig cfg, NDManager manager, String name) {
        this.cfg = cfg;
        this.manager = manager;
        this.outputs = manager.newSubManager();
        this.arch = Architecture.create(cfg, hooks);
        this.name = name;
    }

    // ------------------------------------------------------------------ loading and saving

    /**
     * Loads a model from a local directory in Hugging Face layout, or a Hub repo id ({@code "gpt2"},
     * {@code "Qwen/Qwen2.5-0.5B"}) through the shared Hugging Face cache, downloading what is missing.
     */
    public static HookedTransformer fromPretrained(String repoIdOrDir) {
        return fromPretrained(repoIdOrDir, "main");
    }

    /** As {@link #fromPretrained(String)}, at a revision (branch, tag or commit). */
    public static HookedTransformer fromPretrained(String repoIdOrDir, String revision) {
        if (HfHub.isLocalDir(repoIdOrDir)) return load(Path.of(repoIdOrDir));
        return fromPretrained(repoIdOrDir, revision, HfHub.fromEnvironment());
    }

    /** As {@link #fromPretrained(String, String)}, through a given hub client (endpoint, cache, token). */
    public static HookedTransformer fromPretrained(String repoIdOrDir, String revision, HfHub hub) {
        if (HfHub.isLocalDir(repoIdOrDir)) return load(Path.of(repoIdOrDir));
        return load(hub.snapshotForModel(repoIdOrDir, revision), repoIdOrDir);
    }

    /** Loads {@code config.json}, the safetensors weights and, if present, {@code tokenizer.json} from a directory. */
    public static HookedTransformer load(Path dir) {
        return load(dir, dir.getFileName() == null ? dir.toString() : dir.getFileName().toString());
    }

    private static HookedTransformer load(Path dir, String name) {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException("model directory " + dir + " does not exist");
        ModelConfig cfg = ModelConfig.load(dir);
        dev.jlens.util.Devices.check();
        NDManager manager = NDManager.newBaseManager();
        try (Safetensors st = Safetensors.open(dir)) {
            HookedTransformer model = new HookedTransformer(cfg, manager, name);
            model.arch.load(weights(st, manager));
            model.tokenizer = Tokenizer.find(dir).orElse(null);
            return model;
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    private static Weights weights(Safetensors st, NDManager manager) {
        return new Weights() {
            @Override
            public boolean contains(String n) {
                return st.contains(n);
            }

            @Override
            public Set<String> names() {
                return st.names();
            }

            @Override
            public NDArray load(String n) {
                return st.load(n, manager);
            }
        };
    }

    /** A model with fresh random weights (deterministic in {@code seed}), e.g. for training from scratch. */
    public static HookedTransformer random(ModelConfig cfg, long seed) {
        dev.jlens.util.Devices.check();
        NDManager manager = NDManager.newBaseManager();
        HookedTransformer model = new HookedTransformer(cfg, manager, "random " + cfg.modelType());
        model.arch.initRandom(manager, seed);
        return model;
    }

    /** Attaches a tokenizer (the model closes it with itself); returns this model. */
    public HookedTransformer setTokenizer(Tokenizer tok) {
        if (tokenizer != null && tokenizer != tok) tokenizer.close();
        tokenizer = tok;
        return this;
    }

    /** Saves config.json and model.safetensors in Hugging Face layout, weights in {@code dtype}. */
    public void save(Path dir, DType dtype) {
        cfg.save(dir);
        try (NDManager scratch = manager.newSubManager()) {
            Map<String, NDArray> state = arch.stateDict(scratch);
            Safetensors.write(dir.resolve("model.safetensors"), state, Map.of("format", "pt"), dtype);
        }
    }

    /** Saves config.json and model.safetensors in float32. */
    public void save(Path dir) {
        save(dir, DType.F32);
    }

    // ------------------------------------------------------------------ accessors

    /** The model's name: its directory's name or Hub repo id ("random gpt2" for a random one). */
    public String name() {
        return name;
    }

    /** The model's configuration. */
    public ModelConfig cfg() {
        return cfg;
    }

    /** The tokenizer, if the checkpoint has one. */
    public Optional<Tokenizer> tokenizer() {
        return Optional.ofNullable(tokenizer);
    }

    /** The tokenizer, or a clear error if the model has none. */
    public Tokenizer requireTokenizer() {
        if (tokenizer == null) {
            throw new IllegalStateException("model '" + name + "' has no tokenizer (no tokenizer.json in its directory); "
                    + "pass token ids instead, or attach one with setTokenizer(Tokenizer.load(path))");
        }
        return tokenizer;
    }

    /** The manager owning the weights. */
    public NDManager manager() {
        return manager;
    }

    /**
     * Trainable tensors by checkpoint name (the live weights, in forward order); {@code get} of an unknown name throws
     * naming the nearest ones. TransformerLens-named copies: {@link #tlWeights()}.
     */
    public Map<String, NDArray> parameters() {
        return arch.parameters();
    }

    /**
     * The linear layers (checkpoint names, e.g. {@code transformer.h.0.attn.c_attn}) and where each one's weight lives
     * among {@link #parameters()}: what LoRA adapters may target.
     */
    public List<dev.jlens.model.arch.LinearModule> linearModules() {
        return arch.linearModules();
    }

    /** Every hook-point name, in forward order. */
    public List<String> hookNames() {
        return hooks.names();
    }

    /** The hook point {@code name}; an unknown name throws and suggests the nearest names. */
    public HookPoint hook(String name) {
        return hooks.get(name);
    }

    /** The unembedding {@code [d_vocab, d_model]}: the live weight, not a copy ({@link #W_U()} is its transpose). */
    public NDArray unembedWeight() {
        return arch.unembedWeight();
    }

    /** The token embedding {@code [d_vocab, d_model]}: the live weight, not a copy. */
    public NDArray embedWeight() {
        return arch.embedWeight();
    }

    /** Number of transformer blocks. */
    public int nLayers() {
        return cfg.nLayers();
    }

    /**
     * True for LayerNorm models (the norms centre the residual before scaling it), false for RMSNorm ones: what an
     * analysis that folds the norms into the weights needs to know.
     */
    public boolean normCentres() {
        return arch.normCentres();
    }

    /**
     * The full name of a hook point of this model from a short name and a layer, as TransformerLens's
     * {@code get_act_name}: {@code actName("resid_pre", -1)} is the last block's {@code blocks.L.hook_resid_pre}
     * (negative layers count from the end). See {@link HookNames} for the short names; a layer outside
     * {@code [-n_layers, n_layers)} or a point this model lacks throws.
     */
    public String actName(String name, int layer) {
        return actName(name, layer, null);
    }

    /** {@link #actName(String, int)} in a sublayer: {@code actName("scale", 0, "ln1")}; see {@link HookNames}. */
    public String actName(String name, int layer, String sublayer) {
        int n = cfg.nLayers();
        if (layer < -n || layer >= n) {
            throw new IllegalArgumentException("layer " + layer + " is out of range: this model has " + n
                    + " layers, valid layers are [" + (-n) + ", " + n + ")");
        }
        String full = HookNames.actName(name, layer < 0 ? layer + n : layer, sublayer);
        hooks.get(full);   // throws naming the nearest points if this model has none of that name
        return full;
    }

    /**
     * The name without a layer: {@code actName("embed")} is {@code "hook_embed"}, {@code actName("scale")} is
     * {@code "ln_final.hook_scale"}, a block name gives the suffix every layer shares ({@code "hook_resid_pre"}).
     */
    public String actName(String name) {
        String full = HookNames.actName(name);
        for (String h : hooks.names()) if (h.equals(full) || h.endsWith("." + full)) return full;
        throw new IllegalArgumentException("this model has no hook point '" + full + "'" + (full.equals(name) ? ""
                : " (from '" + name + "')") + "; nearest: " + hooks.nearest(full, 5));
    }

    /** The model's final normalisation applied to a residual {@code [..., d_model]} (no hooks). */
    public NDArray finalNorm(NDArray resid) {
        return arch.finalNorm(resid);
    }

    /** Normalised residual {@code [..., d_model]} to logits {@code [..., d_vocab]}. */
    public NDArray unembed(NDArray normed) {
        return arch.unembed(normed);
    }

    // ------------------------------------------------------------------ weights as TransformerLens names them

    private TlWeights tlWeights;

    /**
     * The weights under TransformerLens's state-dict names and shapes ({@code blocks.0.attn.W_Q}
     * {@code [n_heads, d_model, d_head]}, {@code unembed.W_U} {@code [d_model, d_vocab]}, ...); an unknown name throws
     * naming the nearest. Each array it returns is a copy owned like a forward result: see {@link TlWeights}.
     */
    public TlWeights tlWeights() {
        if (tlWeights == null) tlWeights = new TlWeights(arch, outputs);
        return tlWeights;
    }

    /** Token embedding {@code [d_vocab, d_model]} (a copy). */
    public NDArray W_E() {
        return tlWeights().W_E();
    }

    /** Learned positional embedding {@code [n_ctx, d_model]} (a copy; GPT-2 only). */
    public NDArray W_pos() {
        return tlWeights().W_pos();
    }

    /** Unembedding {@code [d_model, d_vocab]} (a copy). */
    public NDArray W_U() {
        return tlWeights().W_U();
    }

    /** Unembedding bias {@code [d_vocab]} (zeros for the families here). */
    public NDArray b_U() {
        return tlWeights().b_U();
    }

    /** Query weights of block {@code layer} {@code [n_heads, d_model, d_head]} (a copy). */
    public NDArray W_Q(int layer) {
        return tlWeights().W_Q(layer);
    }

    /** Key weights {@code [n_heads, d_model, d_head]}, grouped-query heads repeated (unrepeated: {@code _W_K}). */
    public NDArray W_K(int layer) {
        return tlWeights().W_K(layer);
    }

    /** Value weights {@code [n_heads, d_model, d_head]}, grouped-query heads repeated (unrepeated: {@code _W_V}). */
    public NDArray W_V(int layer) {
        return tlWeights().W_V(layer);
    }

    /** Output weights {@code [n_heads, d_head, d_model]} (a copy). */
    public NDArray W_O(int layer) {
        return tlWeights().W_O(layer);
    }

    /** Query bias {@code [n_heads, d_head]} (zeros where the model has none). */
    public NDArray b_Q(int layer) {
        return tlWeights().b_Q(layer);
    }

    /** Key bias {@code [n_heads, d_head]}, repeated like {@link #W_K}. */
    public NDArray b_K(int layer) {
        return tlWeights().b_K(layer);
    }

    /** Value bias {@code [n_heads, d_head]}, repeated like {@link #W_V}. */
    public NDArray b_V(int layer) {
        return tlWeights().b_V(layer);
    }

    /** Attention output bias {@code [d_model]}. */
    public NDArray b_O(int layer) {
        return tlWeights().b_O(layer);
    }

    /** MLP input weights {@code [d_model, d_mlp]} (a gated MLP's up projection). */
    public NDArray W_in(int layer) {
        return tlWeights().W_in(layer);
    }

    /** Gate weights {@code [d_model, d_mlp]} of a gated MLP. */
    public NDArray W_gate(int layer) {
        return tlWeights().W_gate(layer);
    }

    /** MLP output weights {@code [d_mlp, d_model]}. */
    public NDArray W_out(int layer) {
        return tlWeights().W_out(layer);
    }

    /** MLP input bias {@code [d_mlp]}. */
    public NDArray b_in(int layer) {
        return tlWeights().b_in(layer);
    }

    /** MLP output bias {@code [d_model]}. */
    public NDArray b_out(int layer) {
        return tlWeights().b_out(layer);
    }

    // ------------------------------------------------------------------ tokens

    /** Token ids of {@code text} (BOS prepended if the tokenizer defines one). */
    public long[] toTokens(String text) {
        return requireTokenizer().toTokens(text);
    }

    /**
     * The prompt for a chat rendered with the model's chat template, as transformers' {@code apply_chat_template}
     * renders it; e.g. {@code chatPrompt(List.of(Message.user("2+3?")), true)} ends with DeepSeek-R1's
     * {@code <｜Assistant｜><think>\n}. Tokenize it with {@code requireTokenizer().toTokens(prompt, false)}.
     */
    public String chatPrompt(List<?> messages, boolean addGenerationPrompt) {
        return requireTokenizer().applyChatTemplate(messages, addGenerationPrompt);
    }

    /** As {@link #chatPrompt(List, boolean)} with extra template variables, e.g. {@code enable_thinking} for Qwen 3. */
    public String chatPrompt(List<?> messages, boolean addGenerationPrompt, java.util.Map<String, ?> kwargs) {
        return requireTokenizer().applyChatTemplate(messages, addGenerationPrompt, kwargs);
    }

    /** The text of each token of {@code text}, e.g. {@code ["<|endoftext|>", "Hello", " world"]}. */
    public List<String> toStrTokens(String text) {
        return requireTokenizer().toStrTokens(text, true);
    }

    /** The text of each token id on its own, as TransformerLens's {@code to_str_tokens} given ids. */
    public List<String> toStrTokens(long[] ids) {
        return requireTokenizer().toStrTokens(ids);
    }

    /**
     * The id of a text that is exactly one token (tokenized without BOS), as TransformerLens's
     * {@code to_single_token}; a text of several tokens, or none, throws naming them.
     */
    public long toSingleToken(String text) {
        long[] ids = requireTokenizer().toTokens(text, false);
        if (ids.length != 1) {
            throw new IllegalArgumentException(Vocabulary.quote(text) + " is " + ids.length + " tokens, not one: "
                    + (ids.length == 0 ? "[]" : toStrTokens(ids).stream().map(t -> "|" + t + "|").toList()));
        }
        return ids[0];
    }

    /**
     * The unembedding direction of each token: columns of {@link #W_U()}, {@code [n, d_model]} (TransformerLens's
     * {@code tokens_to_residual_directions}). The logit of token {@code t} is the final norm's output dotted with its
     * direction; as the final norm's weight is not folded into {@code W_U} here, direct logit attribution must
     * apply it first ({@link ActivationCache#logitAttribution(NDArray, int, long...)} does). A copy, owned like a
     * forward result.
     */
    public NDArray tokensToResidualDirections(long[] ids) {
        if (ids.length == 0) throw new IllegalArgumentException("no token ids given");
        NDArray out;
        try (NDScope scope = new NDScope()) {
            NDList rows = new NDList();
            for (long id : ids) rows.add(unembedWeight().get(checkedId(id)));
            out = NDArrays.stack(rows, 0);
            NDScope.unregister(out);
        }
        return handOut(out);
    }

    /** The unembedding direction of one token {@code [d_model]}: column {@code id} of {@link #W_U()}. */
    public NDArray tokensToResidualDirections(long id) {
        NDArray out;
        try (NDScope scope = new NDScope()) {
            out = unembedWeight().get(checkedId(id)).duplicate();
            NDScope.unregister(out);
        }
        return handOut(out);
    }

    /** The unembedding direction {@code [d_model]} of a text that is one token ({@link #toSingleToken}). */
    public NDArray tokensToResidualDirections(String token) {
        return tokensToResidualDirections(toSingleToken(token));
    }

    private long checkedId(long id) {
        if (id < 0 || id >= cfg.dVocab()) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary: valid ids are 0.."
                    + (cfg.dVocab() - 1));
        }
        return id;
    }

    /** Owned like a forward result: by the model's output manager and the caller's scope, if any. */
    private NDArray handOut(NDArray out) {
        out.attach(outputs);
        NDScope.register(out);
        return out;
    }

    /**
     * TransformerLens's {@code utils.test_prompt}: how the model ranks {@code answer} after {@code prompt}. The prompt
     * is tokenized with BOS, the answer without, after prepending a space unless it starts with one (as
     * TransformerLens does by default); an answer of several tokens is scored token by token, teacher-forced. Shows
     * the top 10 predictions at each answer token; prints like TransformerLens and renders as a table.
     */
    public PromptTestResult testPrompt(String prompt, String answer) {
        return testPrompt(prompt, answer, 10);
    }

    /** {@link #testPrompt(String, String)} showing the {@code topK} best predictions. */
    public PromptTestResult testPrompt(String prompt, String answer, int topK) {
        return testPrompt(prompt, answer, topK, true);
    }

    /** {@link #testPrompt(String, String, int)}; {@code prependSpace} false keeps the answer as given. */
    public PromptTestResult testPrompt(String prompt, String answer, int topK, boolean prependSpace) {
        return PromptTestResult.run(this, prompt, answer, topK, prependSpace);
    }

    /** Texts tokenized with BOS and left-padded into one batch (the layout generation uses). */
    public Batch toBatch(java.util.List<String> texts) {
        return requireTokenizer().batch(texts, true, Tokenizer.Padding.LEFT);
    }

    /** The text of token ids. */
    public String toString(long[] ids) {
        return requireTokenizer().decode(ids);
    }

    // ------------------------------------------------------------------ forward

    /** Logits {@code [1, pos, d_vocab]} for a text (tokenized with BOS). */
    public NDArray forward(String text) {
        return forward(new long[][] {toTokens(text)});
    }

    /** Logits {@code [1, pos, d_vocab]} for one sequence of token ids. */
    public NDArray forward(long[] tokens) {
        return forward(new long[][] {tokens});
    }

    /** Logits {@code [batch, pos, d_vocab]} for equal-length sequences. */
    public NDArray forward(long[][] tokens) {
        return run(Batch.of(tokens), Optional.empty(), OptionalInt.empty(), outputs);
    }

    /** Logits for a left- or right-padded batch; {@code attentionMask[b][p]} is false on padding. */
    public NDArray forward(long[][] tokens, boolean[][] attentionMask) {
        return run(Batch.of(tokens, attentionMask), Optional.empty(), OptionalInt.empty(), outputs);
    }

    /** Logits for token ids {@code [batch, pos]} (or {@code [pos]}) held in an NDArray. */
    public NDArray forward(NDArray tokens) {
        return forward(Batch.toLongs(tokens));
    }

    /** Logits for a tokenized (padded) batch. */
    public NDArray forward(Batch batch) {
        return run(batch, Optional.empty(), OptionalInt.empty(), outputs);
    }

    /** {@link #residualAt(Batch, int)} for a text (tokenized with BOS). */
    public NDArray residualAt(String text, int layer) {
        return residualAt(toTokens(text), layer);
    }

    /** {@link #residualAt(Batch, int)} for one sequence. */
    public NDArray residualAt(long[] tokens, int layer) {
        return residualAt(new long[][] {tokens}, layer);
    }

    /** {@link #residualAt(Batch, int)} for equal-length sequences. */
    public NDArray residualAt(long[][] tokens, int layer) {
        return residualAt(Batch.of(tokens), layer);
    }

    /** The residual stream entering block {@code layer} ({@code blocks.L.hook_resid_pre}), skipping later blocks. */
    public NDArray residualAt(Batch batch, int layer) {
        if (layer < 0 || layer >= cfg.nLayers()) {
            throw new IllegalArgumentException("layer " + layer + " out of range [0, " + cfg.nLayers() + ")");
        }
        return run(batch, Optional.empty(), OptionalInt.of(layer), outputs);
    }

    /**
     * Resumes a forward pass at block {@code layer} from the residual stream {@code residPre}
     * {@code [batch, pos, d_model]} (block {@code layer}'s {@code hook_resid_pre}, which runs its hooks on it), as
     * TransformerLens's {@code start_at_layer}: the embeddings and earlier blocks are skipped. {@code batch} gives the
     * positions and the attention mask. {@code layer == n_layers} applies only the final norm and the unembedding.
     */
    public NDArray forwardFrom(Batch batch, int layer, NDArray residPre) {
        return forwardFrom(batch, layer, residPre, Optional.empty());
    }

    /**
     * {@link #forwardFrom(Batch, int, NDArray)} for the positions after those {@code prefix} holds: {@code batch}
     * and {@code residPre} cover only the new positions, which attend to the prefix's keys and values (the cache
     * needs those of blocks {@code layer} and up; it is extended as a generation step extends it).
     */
    public NDArray forwardFrom(Batch batch, int layer, NDArray residPre, KvCache prefix) {
        return forwardFrom(batch, layer, residPre, Optional.of(Objects.requireNonNull(prefix, "prefix")), false);
    }

    /**
     * {@link #forwardFrom(Batch, int, NDArray, KvCache)} returning the last position's logits only
     * {@code [batch, 1, d_vocab]} when {@code lastPositionOnly}: the last block then runs its query, attention output
     * and MLP for that position alone (its keys and values still for every position), so its hooks from the
     * attention scores on see one position. The logits equal the last position of a full pass's.
     */
    public NDArray forwardFrom(Batch batch, int layer, NDArray residPre, KvCache prefix, boolean lastPositionOnly) {
        return forwardFrom(batch, layer, residPre, Optional.of(Objects.requireNonNull(prefix, "prefix")),
                lastPositionOnly);
    }

    private NDArray forwardFrom(Batch batch, int layer, NDArray residPre, Optional<KvCache> prefix) {
        return forwardFrom(batch, layer, residPre, prefix, false);
    }

    private NDArray forwardFrom(Batch batch, int layer, NDArray residPre, Optional<KvCache> prefix,
                                boolean lastPositionOnly) {
        if (layer < 0 || layer > cfg.nLayers()) {
            throw new IllegalArgumentException("start layer " + layer + " is out of range: valid layers are 0.."
                    + cfg.nLayers());
        }
        Shape want = new Shape(batch.size(), batch.length(), cfg.dModel());
        if (!residPre.getShape().equals(want)) {
            throw new IllegalArgumentException("the residual stream has shape " + residPre.getShape() + " but the "
                    + "batch needs " + want + " [batch, pos, d_model]");
        }
        NDArray result;
        try (NDScope scope = new NDScope()) {
            ForwardInputs full = inputs(batch, prefix);
            ForwardInputs in = new ForwardInputs(full.tokens(), full.positions(), full.mask(), prefix,
                    Optional.of(new ForwardInputs.Start(layer, residPre)), lastPositionOnly);
            try (Bound b = bindDeltas()) {
                result = arch.forward(in, OptionalInt.empty());
            }
            NDScope.unregister(result);
        }
        result.attach(outputs);
        NDScope.register(result);
        return result;
    }

    /**
     * One forward step with a KV cache: feeds {@code batch} (the new tokens only), appending their keys and values.
     * Positions and the attention mask continue from what the cache holds.
     */
    public NDArray forward(Batch batch, KvCache cache) {
        return run(batch, Optional.of(cache), OptionalInt.empty(), outputs);
    }

    /**
     * {@link #forward(Batch, KvCache)} returning the last position's logits only {@code [batch, 1, d_vocab]} when
     * {@code lastPositionOnly} (see {@link #forwardFrom(Batch, int, NDArray, KvCache, boolean)}).
     */
    public NDArray forward(Batch batch, KvCache cache, boolean lastPositionOnly) {
        return run(batch, Optional.of(cache), OptionalInt.empty(), outputs, lastPositionOnly);
    }

    // ------------------------------------------------------------------ weight deltas (adapters)

    /**
     * Applies {@code delta} on every forward pass from now on (the adapted layers' outputs gain its low-rank path;
     * the parameters and the weight accessors keep the base weights). Several deltas add up. Hooks see the adapted
     * model.
     */
    public void addWeightDelta(WeightDelta delta) {
        Objects.requireNonNull(delta, "delta");
        if (weightDeltas.stream().anyMatch(d -> d == delta)) {
            throw new IllegalArgumentException("this weight delta is already applied to model '" + name + "'");
        }
        weightDeltas.add(delta);
    }

    /** Stops applying {@code delta}; returns whether it was applied. */
    public boolean removeWeightDelta(WeightDelta delta) {
        return weightDeltas.removeIf(d -> d == delta);
    }

    /** The deltas applied on every forward pass, in the order they were added. */
    public List<WeightDelta> weightDeltas() {
        return List.copyOf(weightDeltas);
    }

    /** Low-rank paths set for one forward pass; {@code close()} clears them. */
    private interface Bound extends AutoCloseable {
        @Override
        void close();
    }

    /** Sets every delta's low-rank paths (several on one layer side by side), inside the caller's scope. */
    private Bound bindDeltas() {
        if (weightDeltas.isEmpty()) return () -> {};
        Map<String, dev.jlens.model.arch.LowRank> paths = new LinkedHashMap<>();
        for (WeightDelta d : weightDeltas) {
            d.deltas().forEach((name, lr) -> paths.merge(name, lr, (x, y) -> new dev.jlens.model.arch.LowRank(
                    x.a().concat(y.a(), 0), x.b().concat(y.b(), 1))));
        }
        if (paths.isEmpty()) return () -> {};
        arch.adapt(paths);
        return () -> arch.adapt(Map.of());
    }

    /** A new, empty KV cache for this model (close it when done). */
    public KvCache newKvCache() {
        return new KvCache(manager, cfg.nLayers());
    }

    /**
     * The forward pass: builds positions and the mask, runs the architecture inside a scope that frees every
     * intermediate (up to block {@code stopAtLayer}'s input when given), and hands the result to {@code out} and the
     * caller's scope.
     */
    private NDArray run(Batch batch, Optional<KvCache> cache, OptionalInt stopAtLayer, NDManager out) {
        return run(batch, cache, stopAtLayer, out, false);
    }

    private NDArray run(Batch batch, Optional<KvCache> cache, OptionalInt stopAtLayer, NDManager out,
                        boolean lastPositionOnly) {
        NDArray result;
        try (NDScope scope = new NDScope()) {
            ForwardInputs full = inputs(batch, cache);
            ForwardInputs in = lastPositionOnly ? new ForwardInputs(full.tokens(), full.positions(), full.mask(),
                    full.cache(), full.start(), true) : full;
            try (Bound b = bindDeltas()) {
                result = arch.forward(in, stopAtLayer);
            }
            NDScope.unregister(result);
        }
        result.attach(out);
        NDScope.register(result);   // into the caller's scope, if there is one
        return result;
    }

    /** Positions and the additive mask for {@code batch}, continuing from {@code cache}. */
    private ForwardInputs inputs(Batch batch, Optional<KvCache> cache) {
        checkTokenIds(batch);
        int b = batch.size(), p = batch.length();
        int past = cache.map(KvCache::length).orElse(0);
        cache.ifPresent(c -> c.extend(batch.mask()));
        boolean[][] valid = cache.map(KvCache::validMask).orElse(batch.mask());
        int total = past + p;
        long[] positions = new long[b * p];
        float[] mask = new float[b * p * total];
        int window = cfg.slidingWindow().orElse(Integer.MAX_VALUE);
        for (int r = 0; r < b; r++) {
            int[] posOf = new int[total];
            int count = 0;
            for (int k = 0; k < total; k++) {
                posOf[k] = Math.max(0, valid[r][k] ? count : count - 1);
                if (valid[r][k]) count++;
            }
            for (int j = 0; j < p; j++) {
                int a = past + j;
                positions[r * p + j] = posOf[a];
                if (posOf[a] >= cfg.nCtx()) {
                    throw new IllegalArgumentException("position " + posOf[a] + " is beyond the model's context of "
                            + cfg.nCtx() + " tokens");
                }
                int base = (r * p + j) * total;
                for (int k = 0; k < total; k++) {
                    // a pad query may attend to itself so its row is never all -inf (no NaN); its output is unused
                    boolean ok = k <= a && (valid[r][k] || k == a) && posOf[a] - posOf[k] < window;
                    mask[base + k] = ok ? 0f : Float.NEGATIVE_INFINITY;
                }
            }
        }
        // Copies that the engine owns: arrays made from Java data borrow a direct buffer that is freed by the garbage
        // collector after close(), but the embedding's backward pass reads these ids after forward() has returned.
        NDArray tokens = owned(manager.create(batch.flatIds(), new Shape(b, p)));
        NDArray pos = owned(manager.create(positions, new Shape(b, p)));
        NDArray m = manager.create(mask, new Shape(b, 1, p, total));
        return new ForwardInputs(tokens, pos, m, cache);
    }

    /** Every id, padding included (it reaches the embedding too), must index the vocabulary. */
    private void checkTokenIds(Batch batch) {
        long[][] ids = batch.ids();
        int vocab = cfg.dVocab();
        for (int r = 0; r < ids.length; r++) {
            for (int j = 0; j < ids[r].length; j++) {
                long id = ids[r][j];
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("token id " + id + " at batch " + r + ", position " + j
                            + " is outside the vocabulary: valid ids are 0.." + (vocab - 1) + " (d_vocab = " + vocab
                            + ")");
                }
            }
        }
    }

    private static NDArray owned(NDArray borrowed) {
        return dev.jlens.util.Tensors.owned(borrowed);
    }

    // ------------------------------------------------------------------ loss

    /** Mean next-token cross-entropy over the sequence(s). */
    public float loss(long[][] tokens) {
        return loss(Batch.of(tokens));
    }

    /** Mean next-token cross-entropy of one sequence. */
    public float loss(long[] tokens) {
        return loss(new long[][] {tokens});
    }

    /** Mean next-token cross-entropy of a text (tokenized with BOS). */
    public float loss(String text) {
        return loss(toTokens(text));
    }

    /** Mean next-token cross-entropy over the non-padding targets of a batch. */
    public float loss(Batch batch) {
        try (NDScope scope = new NDScope()) {
            return Losses.meanNextTokenLoss(forward(batch), batch).getFloat();
        }
    }

    /** {@link #lossPerToken(Batch)} of a text (tokenized with BOS): {@code [1, pos - 1]}. */
    public NDArray lossPerToken(String text) {
        return lossPerToken(toTokens(text));
    }

    /** {@link #lossPerToken(Batch)} of one sequence: {@code [1, pos - 1]}. */
    public NDArray lossPerToken(long[] tokens) {
        return lossPerToken(new long[][] {tokens});
    }

    /** {@link #lossPerToken(Batch)} of equal-length sequences. */
    public NDArray lossPerToken(long[][] tokens) {
        return lossPerToken(Batch.of(tokens));
    }

    /** Next-token cross-entropy at each position {@code [batch, pos - 1]}; 0 where the target is padding. */
    public NDArray lossPerToken(Batch batch) {
        NDArray logits = forward(batch);
        NDArray out;
        try (NDScope scope = new NDScope()) {
            out = Losses.nextTokenLoss(logits, batch);
            NDScope.unregister(out);
        }
        logits.close();
        out.attach(outputs);
        NDScope.register(out);
        return out;
    }

    // ------------------------------------------------------------------ hooks and caches

    /** Attaches hooks until the returned scope is closed: {@code try (HookScope s = model.hooks(...)) {...}}. */
    public HookScope hooks(Hook... hookList) {
        return hooks.attach(List.of(hookList));
    }

    /** Attaches one forward hook until the returned scope is closed. */
    public HookScope hook(String name, HookFn fn) {
        return hooks(Hook.fwd(name, fn));
    }

    /**
     * Adds hook points right after {@code anchor} until the returned scope is closed, for components attached at run
     * time (an SAE spliced in at {@code anchor} declares {@code anchor.hook_sae_acts_post} and its other points).
     */
    public HookScope addHookPoints(String anchor, List<String> names) {
        return hooks.declareAfter(anchor, names);
    }

    /** Removes every hook from every hook point. */
    public void resetHooks() {
        hooks.resetHooks();
    }

    /** Runs a text (tokenized with BOS) with the given hooks attached for this call only; returns the logits. */
    public NDArray runWithHooks(String text, Hook... hookList) {
        return runWithHooks(toTokens(text), hookList);
    }

    /** Runs one sequence with the given hooks attached for this call only; returns the logits. */
    public NDArray runWithHooks(long[] tokens, Hook... hookList) {
        return runWithHooks(new long[][] {tokens}, hookList);
    }

    /** Runs with the given hooks attached for this call only; returns the logits. */
    public NDArray runWithHooks(long[][] tokens, Hook... hookList) {
        return runWithHooks(Batch.of(tokens), hookList);
    }

    /** Runs a batch with the given hooks attached for this call only; returns the logits. */
    public NDArray runWithHooks(Batch batch, Hook... hookList) {
        try (HookScope s = hooks(hookList)) {
            return forward(batch);
        }
    }

    /** Runs and records every activation whose hook name {@code filter} selects. Close the cache when done. */
    public ActivationCache runWithCache(long[][] tokens, NameFilter filter) {
        return runWithCache(Batch.of(tokens), filter);
    }

    /** Runs one sequence and records the selected activations. */
    public ActivationCache runWithCache(long[] tokens, NameFilter filter) {
        return runWithCache(new long[][] {tokens}, filter);
    }

    /** Runs a text (tokenized with BOS) and records every activation. */
    public ActivationCache runWithCache(String text) {
        return runWithCache(text, NameFilter.all());
    }

    /** Runs a text (tokenized with BOS) and records the selected activations. */
    public ActivationCache runWithCache(String text, NameFilter filter) {
        return runWithCache(toTokens(text), filter);
    }

    /** Runs one sequence and records every activation. */
    public ActivationCache runWithCache(long[] tokens) {
        return runWithCache(tokens, NameFilter.all());
    }

    /** Runs equal-length sequences and records every activation. */
    public ActivationCache runWithCache(long[][] tokens) {
        return runWithCache(tokens, NameFilter.all());
    }

    /** Runs a batch and records every activation. */
    public ActivationCache runWithCache(Batch batch) {
        return runWithCache(batch, NameFilter.all());
    }

    /** Runs a batch and records the selected activations; the cache also holds the logits. */
    public ActivationCache runWithCache(Batch batch, NameFilter filter) {
        return runWithCache(batch, filter, null);
    }

    /**
     * {@link #runWithCache(Batch, NameFilter)} that also appends the batch's keys and values to {@code kv} (null:
     * none), as {@link #forward(Batch, KvCache)} does: one pass gives the activations and a cache to continue from.
     */
    public ActivationCache runWithCache(Batch batch, NameFilter filter, KvCache kv) {
        ActivationCache cache = new ActivationCache(manager, this);
        List<Hook> recorders = new ArrayList<>();
        for (String n : hooks.select(filter)) recorders.add(Hook.fwd(n, (act, hp) -> {
            cache.put(hp.name(), act);
            return null;
        }));
        try (HookScope s = hooks.attach(recorders)) {
            cache.putLogits(run(batch, Optional.ofNullable(kv), OptionalInt.empty(), cache.manager()));
        } catch (RuntimeException e) {
            cache.close();
            throw e;
        }
        return cache;
    }

    /**
     * Several runs of equal length in one forward pass, their sequences stacked along the batch, each returned as its
     * own cache of the selected activations and logits, as {@link #runWithCache(long[][], NameFilter)} would give it
     * (to float rounding of the larger matrix products): one pass's fixed cost instead of one per run, e.g. the clean
     * and corrupt runs of a patching experiment. {@code kv} (null: none) receives the keys and values of every row,
     * runs in order ({@link KvCache#rows} cuts one run's rows out). Close every returned cache.
     */
    public List<ActivationCache> runWithCaches(List<long[][]> runs, NameFilter filter, KvCache kv) {
        if (runs.isEmpty()) throw new IllegalArgumentException("no runs to cache");
        int length = runs.get(0).length == 0 ? 0 : runs.get(0)[0].length;
        List<long[]> rows = new ArrayList<>();
        int[] start = new int[runs.size() + 1];
        for (int r = 0; r < runs.size(); r++) {
            for (long[] seq : runs.get(r)) {
                if (seq.length != length) {
                    throw new IllegalArgumentException("runs cached in one pass must be of one length: run 0 has "
                            + length + " tokens, run " + r + " has a sequence of " + seq.length);
                }
                rows.add(seq);
            }
            start[r + 1] = rows.size();
            if (start[r + 1] == start[r]) throw new IllegalArgumentException("run " + r + " has no sequences");
        }
        List<ActivationCache> caches = new ArrayList<>();
        try {
            for (int r = 0; r < runs.size(); r++) caches.add(new ActivationCache(manager, this));
            List<Hook> recorders = new ArrayList<>();
            for (String n : hooks.select(filter)) recorders.add(Hook.fwd(n, (act, hp) -> {
                for (int r = 0; r < caches.size(); r++) {
                    caches.get(r).put(hp.name(), act.get(new ai.djl.ndarray.index.NDIndex("{}:{}", start[r], start[r + 1])));
                }
                return null;
            }));
            try (HookScope s = hooks.attach(recorders); NDScope scope = new NDScope()) {
                NDArray logits = run(Batch.of(rows.toArray(long[][]::new)), Optional.ofNullable(kv), OptionalInt.empty(),
                        manager);
                for (int r = 0; r < caches.size(); r++) {
                    caches.get(r).putLogits(logits.get(new ai.djl.ndarray.index.NDIndex("{}:{}", start[r], start[r + 1])));
                }
            }
        } catch (RuntimeException e) {
            caches.forEach(ActivationCache::close);
            throw e;
        }
        return caches;
    }

    /** {@link #runWithGradients(Batch, NameFilter, Function)} for a text (tokenized with BOS). */
    public ActivationCache runWithGradients(String text, NameFilter filter, Function<NDArray, NDArray> lossFn) {
        return runWithGradients(toTokens(text), filter, lossFn);
    }

    /** {@link #runWithGradients(Batch, NameFilter, Function)} for one sequence. */
    public ActivationCache runWithGradients(long[] tokens, NameFilter filter, Function<NDArray, NDArray> lossFn) {
        return runWithGradients(new long[][] {tokens}, filter, lossFn);
    }

    /** {@link #runWithGradients(Batch, NameFilter, Function)} for equal-length sequences. */
    public ActivationCache runWithGradients(long[][] tokens, NameFilter filter, Function<NDArray, NDArray> lossFn) {
        return runWithGradients(Batch.of(tokens), filter, lossFn);
    }

    /**
     * Runs with autograd and returns the gradient of {@code lossFn(logits)} with respect to each selected activation
     * (same names and shapes as the activations); backward hooks attached with {@link Hook#bwd} are called with
     * their gradients. The weights get no gradients unless they require them.
     */
    public ActivationCache runWithGradients(Batch batch, NameFilter filter, Function<NDArray, NDArray> lossFn) {
        Map<String, NDArray> probes = new LinkedHashMap<>();
        List<HookPoint> tapped = new ArrayList<>();
        for (HookPoint hp : hooks.points()) {
            if (filter.test(hp.name()) || !hp.backwardHooks().isEmpty()) {
                hp.setTap((point, x) -> {
                    NDArray probe = x.zerosLike();
                    probe.setRequiresGradient(true);
                    probes.put(point.name(), probe);
                    return x.add(probe);
                });
                tapped.add(hp);
            }
        }
        ActivationCache grads = new ActivationCache(manager, this);
        try (NDScope scope = new NDScope();
             GradientCollector gc = dev.jlens.util.Tensors.gradientCollector()) {
            ForwardInputs in = inputs(batch, Optional.empty());
            NDArray logits;
            try (Bound b = bindDeltas()) {
                logits = arch.forward(in, OptionalInt.empty());
            }
            NDArray loss = lossFn.apply(logits);
            gc.backward(loss);
            for (Map.Entry<String, NDArray> e : probes.entrySet()) {
                NDArray g;
                try (NDArray wrapper = e.getValue().getGradient()) {
                    g = wrapper.duplicate();
                }
                HookPoint hp = hooks.get(e.getKey());
                for (HookFn fn : hp.backwardHooks()) fn.apply(g, hp);
                if (filter.test(e.getKey())) grads.put(e.getKey(), g);
            }
        } catch (RuntimeException e) {
            grads.close();
            throw e;
        } finally {
            tapped.forEach(hp -> hp.setTap(null));
        }
        return grads;
    }

    // ------------------------------------------------------------------ generation

    /** Generates from a prompt; see {@link Generation}. */
    public Generation.Result generate(String prompt, Generation.Config config) {
        return Generation.run(this, prompt, config);
    }

    /** Generates a continuation of one token-id prompt. */
    public Generation.Result generate(long[] prompt, Generation.Config config) {
        return generate(new long[][] {prompt}, config);
    }

    /** Generates continuations of token-id prompts (of any lengths; left-padded internally). */
    public Generation.Result generate(long[][] prompts, Generation.Config config) {
        return Generation.run(this, prompts, config);
    }

    // ------------------------------------------------------------------ lifecycle

    /** Frees the weights, every array the model handed out, and the tokenizer. */
    @Override
    public void close() {
        hooks.resetHooks();
        if (tokenizer != null) tokenizer.close();
        manager.close();
    }

    @Override
    public String toString() {
        return "HookedTransformer(" + name + ", " + cfg + ", " + hooks.names().size() + " hook points)";
    }
}
