package dev.jlens.model;

import dev.jlens.util.Names;

import ai.djl.engine.EngineException;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * A Hugging Face tokenizer ({@code tokenizer.json}) with TransformerLens-style helpers, on DJL's native tokenizers.
 *
 * <p>The native tokenizer never adds special tokens, truncates or pads on its own: BOS is prepended only by this
 * class ({@code prependBos}), and {@link #batch} pads. BOS, EOS and PAD come from {@code tokenizer_config.json}
 * ({@code bos_token}, {@code eos_token}, {@code pad_token}), else from {@code config.json}
 * ({@code bos_token_id}, {@code eos_token_id}, {@code pad_token_id}); where neither file mentions a role, the
 * token the tokenizer's own post-processor would add is used (Llama's {@code <s>}), else a special added token
 * with a conventional name ({@code <|endoftext|>}, {@code <s>}, {@code <bos>}, {@code <eos>}, {@code <pad>}, ...),
 * which is how GPT-2's bare {@code tokenizer.json} gets {@code <|endoftext|>} as BOS and EOS, as in
 * TransformerLens. A role set to {@code null} in {@code tokenizer_config.json} and absent from
 * {@code config.json} means the model has no such token.
 */
public final class Tokenizer implements AutoCloseable {

    /** Which end of a batch row receives the padding. */
    public enum Padding { LEFT, RIGHT }

    static final String TOKENIZER_JSON = "tokenizer.json";
    static final String TOKENIZER_CONFIG_JSON = "tokenizer_config.json";
    static final String CONFIG_JSON = "config.json";
    static final String CHAT_TEMPLATE_JINJA = "chat_template.jinja";

    private static final ObjectMapper JSON = new ObjectMapper();

    // Conventional names, in order of preference, for models whose files name no BOS/EOS/PAD token.
    private static final List<String> BOS_NAMES =
            List.of("<s>", "<bos>", "<|bos|>", "<|begin_of_text|>", "<|startoftext|>", "<|endoftext|>");
    private static final List<String> EOS_NAMES =
            List.of("</s>", "<eos>", "<|eos|>", "<|end_of_text|>", "<|endoftext|>");
    private static final List<String> PAD_NAMES = List.of("<pad>", "<|pad|>", "[PAD]", "<|padding|>");

    static {
        // DJL's tokenizer factory pings the EC2 metadata service (telemetry) unless DJL offline mode or
        // OPT_OUT_TRACKING is set. JLens never phones home, so opt out unless the user decided otherwise.
        if (System.getenv("OPT_OUT_TRACKING") == null && System.getProperty("OPT_OUT_TRACKING") == null) {
            System.setProperty("OPT_OUT_TRACKING", "true");
        }
    }

    private final Path file;
    private final HuggingFaceTokenizer hf;
    private final Map<String, Long> tokenToId;
    private final Map<Long, String> idToToken;
    private final int vocabSize;
    private final OptionalLong bos;
    private final OptionalLong eos;
    private final OptionalLong pad;
    private final long[] eosIds;
    private final Optional<Boolean> addBosToken;
    private final Optional<String> chatTemplate;
    private volatile boolean closed;

    private Tokenizer(Path file, HuggingFaceTokenizer hf, Map<String, Long> tokenToId, Map<Long, String> idToToken,
            int vocabSize, OptionalLong bos, OptionalLong eos, OptionalLong pad, long[] eosIds,
            Optional<Boolean> addBosToken, Optional<String> chatTemplate) {
        this.file = file;
        this.hf = hf;
        this.tokenToId = tokenToId;
        this.idToToken = idToToken;
        this.vocabSize = vocabSize;
        this.bos = bos;
        this.eos = eos;
        this.pad = pad;
        this.eosIds = eosIds;
        this.addBosToken = addBosToken;
        this.chatTemplate = chatTemplate;
    }

    // ---------------------------------------------------------------------------------------------- loading

    /** Loads a {@code tokenizer.json} file, or the one in a model directory, with its sibling config files. */
    public static Tokenizer load(Path fileOrDir) {
        Objects.requireNonNull(fileOrDir, "fileOrDir: a tokenizer.json file or a directory that holds one");
        if (Files.isDirectory(fileOrDir)) {
            Path file = fileOrDir.resolve(TOKENIZER_JSON);
            if (!Files.isRegularFile(file)) {
                throw new IllegalArgumentException(missingTokenizerMessage(fileOrDir));
            }
            return fromFile(file);
        }
        if (Files.isRegularFile(fileOrDir)) {
            return fromFile(fileOrDir);
        }
        throw new IllegalArgumentException("No tokenizer at " + fileOrDir
                + ": the path does not exist. Pass a " + TOKENIZER_JSON + " file or a directory that holds one");
    }

    /** The tokenizer of a model directory, or empty if the directory holds no {@code tokenizer.json}. */
    public static Optional<Tokenizer> find(Path modelDir) {
        Objects.requireNonNull(modelDir, "modelDir");
        Path file = modelDir.resolve(TOKENIZER_JSON);
        return Files.isDirectory(modelDir) && Files.isRegularFile(file)
                ? Optional.of(fromFile(file))
                : Optional.empty();
    }

    private static String missingTokenizerMessage(Path dir) {
        StringBuilder msg = new StringBuilder("No tokenizer in " + dir + ": looked for " + TOKENIZER_JSON
                + " (the Hugging Face fast-tokenizer format), which is not there");
        List<String> slow = new ArrayList<>();
        for (String name : List.of("vocab.json", "merges.txt", "tokenizer.model", "vocab.txt")) {
            if (Files.exists(dir.resolve(name))) {
                slow.add(name);
            }
        }
        if (!slow.isEmpty()) {
            msg.append(". Found ").append(String.join(", ", slow)).append(", slow-tokenizer files that are not read;"
                    + " save the tokenizer with transformers' save_pretrained to get a " + TOKENIZER_JSON);
        }
        return msg.toString();
    }

    private static Tokenizer fromFile(Path file) {
        String text = readUtf8(file, "tokenizer file");
        JsonNode root = parseJson(file, text, "tokenizer file");
        if (!root.isObject() || !root.has("model")) {
            throw new IllegalArgumentException("Corrupt tokenizer file " + file
                    + ": expected a JSON object with a \"model\" entry (Hugging Face tokenizer.json format)");
        }
        HuggingFaceTokenizer hf = createNative(file, text);
        try {
            Map<String, Long> tokenToId = new HashMap<>();
            Set<String> specialAdded = new LinkedHashSet<>();
            readVocab(file, root, tokenToId, specialAdded);
            Map<Long, String> idToToken = new HashMap<>(tokenToId.size() * 2);
            long maxId = -1;
            for (Map.Entry<String, Long> e : tokenToId.entrySet()) {
                idToToken.put(e.getValue(), e.getKey());
                maxId = Math.max(maxId, e.getValue());
            }
            if (maxId >= Integer.MAX_VALUE) {
                throw new IllegalArgumentException("Corrupt tokenizer file " + file + ": token id " + maxId
                        + " is too large");
            }
            int vocabSize = (int) (maxId + 1);

            Path dir = file.toAbsolutePath().getParent();
            Path tokCfgFile = dir.resolve(TOKENIZER_CONFIG_JSON);
            Path modelCfgFile = dir.resolve(CONFIG_JSON);
            JsonNode tokCfg = readOptionalJson(tokCfgFile);
            JsonNode modelCfg = readOptionalJson(modelCfgFile);
            Roles roles = new Roles(file, tokCfgFile, modelCfgFile, tokCfg, modelCfg, tokenToId, vocabSize, root,
                    specialAdded);
            OptionalLong bos = roles.resolve("bos", BOS_NAMES, true);
            OptionalLong eos = roles.resolve("eos", EOS_NAMES, false);
            OptionalLong pad = roles.resolve("pad", PAD_NAMES, null);
            Set<Long> eosAll = new LinkedHashSet<>();
            eos.ifPresent(eosAll::add);
            for (long id : roles.configIds("eos_token_id")) {
                eosAll.add(id);
            }
            Optional<Boolean> addBos = tokCfg != null && tokCfg.path("add_bos_token").isBoolean()
                    ? Optional.of(tokCfg.get("add_bos_token").booleanValue())
                    : Optional.empty();
            Optional<String> chatTemplate = chatTemplate(tokCfg, dir.resolve(CHAT_TEMPLATE_JINJA));
            return new Tokenizer(file, hf, Map.copyOf(tokenToId), idToToken, vocabSize, bos, eos, pad,
                    eosAll.stream().mapToLong(Long::longValue).toArray(), addBos, chatTemplate);
        } catch (RuntimeException e) {
            hf.close();
            throw e;
        }
    }

    private static HuggingFaceTokenizer createNative(Path file, String text) {
        // Special tokens, truncation and padding are this class's business, never the native tokenizer's.
        Map<String, String> options = new HashMap<>();
        options.put("addSpecialTokens", "false");
        options.put("withOverflowingTokens", "false");
        options.put("truncation", "false");
        options.put("padding", "false");
        try (InputStream in = new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8))) {
            return HuggingFaceTokenizer.newInstance(in, options);
        } catch (EngineException | LinkageError e) {
            throw new IllegalStateException("Cannot load DJL's native tokenizers library"
                    + " (ai.djl.huggingface:tokenizers) for " + System.getProperty("os.name") + "/"
                    + System.getProperty("os.arch") + ", needed to read " + file + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Corrupt tokenizer file " + file
                    + ": the tokenizers library rejected it: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read tokenizer file " + file, e);
        }
    }

    private static void readVocab(Path file, JsonNode root, Map<String, Long> tokenToId, Set<String> specialAdded) {
        JsonNode vocab = root.path("model").path("vocab");
        if (vocab.isObject()) { // BPE, WordPiece, WordLevel: {"token": id}
            vocab.fields().forEachRemaining(e -> tokenToId.put(e.getKey(), requireId(file, e.getValue(), e.getKey())));
        } else if (vocab.isArray()) { // Unigram: [["piece", score], ...], id = index
            for (int i = 0; i < vocab.size(); i++) {
                tokenToId.put(vocab.get(i).path(0).asText(), (long) i);
            }
        } else {
            throw new IllegalArgumentException("Corrupt tokenizer file " + file + ": model.vocab is missing");
        }
        for (JsonNode added : root.path("added_tokens")) {
            String content = added.path("content").asText();
            tokenToId.put(content, requireId(file, added.path("id"), content));
            if (added.path("special").asBoolean(false)) {
                specialAdded.add(content);
            }
        }
    }

    private static long requireId(Path file, JsonNode id, String token) {
        if (!id.canConvertToLong() || !id.isIntegralNumber() || id.longValue() < 0) {
            throw new IllegalArgumentException("Corrupt tokenizer file " + file + ": token '" + token
                    + "' has id " + id + ", expected a non-negative integer");
        }
        return id.longValue();
    }

    private static Optional<String> chatTemplate(JsonNode tokCfg, Path jinja) {
        JsonNode t = tokCfg == null ? null : tokCfg.get("chat_template");
        if (t != null && t.isTextual()) {
            return Optional.of(t.asText());
        }
        if (t != null && t.isArray() && t.size() > 0) { // older format: [{"name": "default", "template": "..."}]
            for (JsonNode named : t) {
                if ("default".equals(named.path("name").asText())) {
                    return Optional.of(named.path("template").asText());
                }
            }
            return Optional.of(t.get(0).path("template").asText());
        }
        return Files.isRegularFile(jinja) ? Optional.of(readUtf8(jinja, "chat template")) : Optional.empty();
    }

    /** Resolves BOS/EOS/PAD from the config files, the post-processor and conventional names, in that order. */
    private record Roles(Path file, Path tokCfgFile, Path modelCfgFile, JsonNode tokCfg, JsonNode modelCfg,
            Map<String, Long> vocab, int vocabSize, JsonNode root, Set<String> specialAdded) {

        /** {@code templateFirst}: true = BOS (leading template token), false = EOS (trailing), null = none. */
        OptionalLong resolve(String role, List<String> names, Boolean templateFirst) {
            String key = role + "_token";
            boolean explicitNone = false;
            if (tokCfg != null && tokCfg.has(key)) {
                JsonNode n = tokCfg.get(key);
                String content = n.isTextual() ? n.asText()
                        : n.isObject() && n.path("content").isTextual() ? n.get("content").asText() : null;
                if (content != null) {
                    Long id = vocab.get(content);
                    if (id == null) {
                        throw new IllegalArgumentException(tokCfgFile + " names " + key + " '" + content
                                + "', which is not in the vocabulary of " + file);
                    }
                    return OptionalLong.of(id);
                }
                if (!n.isNull()) {
                    throw new IllegalArgumentException(tokCfgFile + ": " + key + " must be a string, an object with"
                            + " \"content\", or null; got " + n);
                }
                explicitNone = true;
            }
            String idKey = role + "_token_id";
            long[] ids = configIds(idKey);
            if (ids.length > 0) {
                return OptionalLong.of(ids[0]);
            }
            if (explicitNone || configMentions(idKey)) {
                return OptionalLong.empty();
            }
            if (templateFirst != null) {
                OptionalLong fromTemplate = templateToken(root.path("post_processor"), templateFirst);
                if (fromTemplate.isPresent()) {
                    return fromTemplate;
                }
            }
            for (String name : names) {
                if (specialAdded.contains(name)) {
                    return OptionalLong.of(vocab.get(name));
                }
            }
            return OptionalLong.empty();
        }

        /** Ids under {@code key} in config.json (an int or a list, also in {@code text_config}); -1 means none. */
        long[] configIds(String key) {
            if (modelCfg == null) {
                return new long[0];
            }
            JsonNode n = modelCfg.has(key) ? modelCfg.get(key) : modelCfg.path("text_config").path(key);
            List<JsonNode> items = new ArrayList<>();
            if (n.isArray()) {
                n.forEach(items::add);
            } else if (!n.isMissingNode() && !n.isNull()) {
                items.add(n);
            }
            List<Long> out = new ArrayList<>();
            for (JsonNode item : items) {
                if (item.isIntegralNumber() && item.longValue() < 0) {
                    continue; // some configs write pad_token_id -1 for "no pad token"
                }
                if (!item.isIntegralNumber() || item.longValue() >= vocabSize) {
                    throw new IllegalArgumentException(modelCfgFile + ": " + key + " " + n + " is not a token id of "
                            + file + " (valid ids 0.." + (vocabSize - 1) + ")");
                }
                out.add(item.longValue());
            }
            return out.stream().mapToLong(Long::longValue).toArray();
        }

        private boolean configMentions(String key) {
            return modelCfg != null && (modelCfg.has(key) || modelCfg.path("text_config").has(key));
        }

        private OptionalLong templateToken(JsonNode proc, boolean first) {
            String type = proc.path("type").asText("");
            switch (type) {
                case "Sequence": {
                    for (JsonNode p : proc.path("processors")) {
                        OptionalLong id = templateToken(p, first);
                        if (id.isPresent()) {
                            return id;
                        }
                    }
                    return OptionalLong.empty();
                }
                case "TemplateProcessing": {
                    JsonNode single = proc.path("single");
                    if (single.size() == 0) {
                        return OptionalLong.empty();
                    }
                    JsonNode piece = single.get(first ? 0 : single.size() - 1).path("SpecialToken");
                    if (piece.isMissingNode()) {
                        return OptionalLong.empty();
                    }
                    JsonNode ids = proc.path("special_tokens").path(piece.path("id").asText()).path("ids");
                    return ids.size() == 1 ? OptionalLong.of(ids.get(0).asLong()) : OptionalLong.empty();
                }
                case "BertProcessing":
                case "RobertaProcessing": {
                    JsonNode pair = proc.path(first ? "cls" : "sep");
                    return pair.size() == 2 ? OptionalLong.of(pair.get(1).asLong()) : OptionalLong.empty();
                }
                default:
                    return OptionalLong.empty();
            }
        }
    }

    // --------------------------------------------------------------------------------------------- encoding

    /** Token ids of {@code text}; {@code prependBos} adds the BOS token, and is a no-op for a model without one. */
    public long[] toTokens(String text, boolean prependBos) {
        long[] ids = encodeRaw(text);
        if (!prependBos || bos.isEmpty()) {
            return ids;
        }
        long[] out = new long[ids.length + 1];
        out[0] = bos.getAsLong();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    /** Token ids of {@code text}, with BOS prepended when the model has one (TransformerLens's default). */
    public long[] toTokens(String text) {
        return toTokens(text, true);
    }

    /** The text of each token, decoded one at a time (e.g. {@code " world"}), as TransformerLens's to_str_tokens. */
    public List<String> toStrTokens(String text, boolean prependBos) {
        long[] ids = toTokens(text, prependBos);
        if (ids.length == 0) {
            return List.of();
        }
        long[][] singles = new long[ids.length][];
        for (int i = 0; i < ids.length; i++) {
            singles[i] = new long[] {ids[i]};
        }
        // A token holding part of a multi-byte character decodes to U+FFFD on its own, as in TransformerLens.
        return List.of(nativeTokenizer().batchDecode(singles, false));
    }

    /** {@link #toStrTokens(String, boolean)} with BOS prepended when the model has one. */
    public List<String> toStrTokens(String text) {
        return toStrTokens(text, true);
    }

    /** Decodes ids to text, keeping special tokens such as {@code <|endoftext|>}. */
    public String decode(long[] ids) {
        return decode(ids, false);
    }

    /** Decodes ids to text; {@code skipSpecial} drops special tokens (BOS, EOS, PAD, ...). */
    public String decode(long[] ids, boolean skipSpecial) {
        Objects.requireNonNull(ids, "ids");
        // The native decoder silently drops unknown ids (and casts negatives to u32), so check them here.
        for (long id : ids) {
            checkId(id);
        }
        return nativeTokenizer().decode(ids, skipSpecial);
    }

    /** The text of a single token (e.g. 995 gives {@code " world"} for GPT-2). */
    public String decodeToken(long id) {
        return decode(new long[] {id}, false);
    }

    /** Tokenizes several texts into one padded batch; pads are {@link #padTokenId()} with mask false. */
    public Batch batch(List<String> texts, boolean prependBos, Padding side) {
        Objects.requireNonNull(side, "side: Padding.LEFT or Padding.RIGHT");
        if (texts == null || texts.isEmpty()) {
            throw new IllegalArgumentException("batch needs at least one text, got " + texts);
        }
        // One native call per text: DJL's batchEncode unwraps the Rust result, so a text that fails to encode
        // (an unknown word with no <unk>) would abort the JVM instead of throwing.
        long[][] rows = new long[texts.size()][];
        for (int b = 0; b < rows.length; b++) {
            rows[b] = toTokens(texts.get(b), prependBos);
        }
        return side == Padding.LEFT ? Batch.leftPadded(rows, padTokenId()) : Batch.rightPadded(rows, padTokenId());
    }

    /** {@link #batch(List, boolean, Padding)} with BOS when the model has one and right padding. */
    public Batch batch(List<String> texts) {
        return batch(texts, true, Padding.RIGHT);
    }

    private long[] encodeRaw(String text) {
        requireText(text);
        HuggingFaceTokenizer native_ = nativeTokenizer();
        try {
            return native_.encode(text, false, false).getIds();
        } catch (RuntimeException e) {
            String hint = String.valueOf(e.getMessage()).contains("Missing [UNK]")
                    ? " (a word of the text is not in the vocabulary, and the vocabulary has no unknown token)"
                    : "";
            throw new IllegalArgumentException("Cannot tokenize " + quote(text) + " with " + file + ": "
                    + e.getMessage() + hint, e);
        }
    }

    private static String requireText(String text) {
        if (text == null) {
            throw new IllegalArgumentException("text is null; pass a string (\"\" gives no tokens)");
        }
        return text;
    }

    private void checkId(long id) {
        if (!idToToken.containsKey(id)) {
            throw new IllegalArgumentException("Token id " + id + " is not in the vocabulary of " + file
                    + " (ids 0.." + (vocabSize - 1) + ")");
        }
    }

    private HuggingFaceTokenizer nativeTokenizer() {
        if (closed) {
            throw new IllegalStateException("Tokenizer for " + file + " is closed");
        }
        return hf;
    }

    // ------------------------------------------------------------------------------------------- vocabulary

    /** The BOS token id, if the model has one. */
    public OptionalLong bosTokenId() {
        return bos;
    }

    /** The EOS token id, if the model has one. */
    public OptionalLong eosTokenId() {
        return eos;
    }

    /** Every id that ends generation: the EOS token and any further ids listed in config.json's eos_token_id. */
    public long[] eosTokenIds() {
        return eosIds.clone();
    }

    /** The id used for padding: the PAD token, else EOS, else 0. */
    public long padTokenId() {
        return pad.isPresent() ? pad.getAsLong() : eos.isPresent() ? eos.getAsLong() : 0L;
    }

    /** {@code add_bos_token} from tokenizer_config.json, if set (informational: {@link #toTokens} decides alone). */
    public Optional<Boolean> addBosToken() {
        return addBosToken;
    }

    /** The chat template (Jinja source) from tokenizer_config.json or chat_template.jinja, if any. */
    public Optional<String> chatTemplate() {
        return chatTemplate;
    }

    /** Number of token ids: the largest id, counting added tokens, plus one (50257 for GPT-2). */
    public int vocabSize() {
        return vocabSize;
    }

    /** The tokenizer.json this tokenizer was read from. */
    public Path file() {
        return file;
    }

    /** The id of a vocabulary entry, spelled exactly as in the vocabulary (GPT-2: {@code "Ġworld"}). */
    public long tokenId(String token) {
        Objects.requireNonNull(token, "token");
        Long id = tokenToId.get(token);
        if (id != null) {
            return id;
        }
        StringBuilder msg = new StringBuilder(quote(token) + " is not a vocabulary entry of " + file + ".");
        if (!closed) {
            try {
                long[] ids = encodeRaw(token);
                if (ids.length == 1) {
                    msg.append(" As text it encodes to the single token ").append(ids[0]).append(" (")
                            .append(quote(idToToken.get(ids[0]))).append("); use toTokens for text.");
                } else if (ids.length > 1 && ids.length <= 8) {
                    msg.append(" As text it encodes to ").append(ids.length).append(" tokens ")
                            .append(Arrays.toString(ids)).append('.');
                }
            } catch (IllegalArgumentException ignored) {
                // Not encodable either: the near matches below are all we can offer.
            }
        }
        List<String> near = nearestEntries(token, 5);
        msg.append(near.isEmpty() ? " No close entries."
                : " Nearest entries: " + near.stream().map(t -> quote(t) + " (" + tokenToId.get(t) + ")")
                        .collect(Collectors.joining(", ")));
        throw new IllegalArgumentException(msg.toString());
    }

    private List<String> nearestEntries(String query, int limit) {
        int maxDistance = Math.max(2, query.length() / 2);
        record Hit(String entry, int distance) { }
        List<Hit> hits = new ArrayList<>();
        for (String entry : tokenToId.keySet()) {
            // Compare also with the byte-level/SentencePiece space markers shown as spaces.
            String shown = entry.replace('Ġ', ' ').replace('▁', ' ');
            int d = Math.min(Names.editDistance(query, entry, maxDistance), Names.editDistance(query, shown, maxDistance));
            if (d <= maxDistance) {
                hits.add(new Hit(entry, d));
            }
        }
        hits.sort(Comparator.comparingInt(Hit::distance).thenComparing(h -> tokenToId.get(h.entry())));
        return hits.stream().limit(limit).map(Hit::entry).toList();
    }


    /** Frees the native tokenizer; safe to call twice. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            hf.close();
        }
    }

    @Override
    public String toString() {
        Path parent = file.getParent();
        String name = parent == null || parent.getFileName() == null ? file.toString()
                : parent.getFileName() + "/" + file.getFileName();
        return "Tokenizer[" + name + ", vocab " + vocabSize + ", bos " + describe(bos) + ", eos " + describe(eos)
                + ", pad " + padTokenId() + (closed ? ", closed" : "") + "]";
    }

    private String describe(OptionalLong id) {
        return id.isPresent() ? id.getAsLong() + " " + quote(idToToken.get(id.getAsLong())) : "none";
    }

    // -------------------------------------------------------------------------------------------- builders

    /**
     * Writes a word-level tokenizer.json: words split on whitespace, decoded joined by single spaces.
     *
     * <p>Specials keep their ids; vocabulary words take the remaining ids 0..N-1 in order. Specials named
     * conventionally ({@code <bos>}, {@code <eos>}, {@code <pad>}, {@code <s>}, ...) become BOS/EOS/PAD when loaded;
     * a word outside the vocabulary maps to {@code <unk>} if that is a special, else encoding it fails.
     * {@code out} is a file, or a directory that receives {@code tokenizer.json}; returns the file written.
     */
    public static Path buildWordLevel(List<String> vocab, Map<String, Long> specials, Path out) {
        Objects.requireNonNull(vocab, "vocab");
        for (String word : vocab) {
            if (word == null || word.isEmpty() || word.codePoints().anyMatch(Tokenizer::isSpace)) {
                throw new IllegalArgumentException("Word-level vocabulary entries must be non-empty and free of"
                        + " whitespace (text is split on whitespace); got " + quote(word));
            }
        }
        ObjectNode preTokenizer = JsonNodeFactory.instance.objectNode().put("type", "WhitespaceSplit");
        // No decoder: the tokenizers library then joins decoded tokens with single spaces.
        return writeBuilt(vocab, specials, out, preTokenizer, JsonNodeFactory.instance.nullNode());
    }

    /**
     * Writes a character-level tokenizer.json: every Unicode code point is one token, decoded by concatenation.
     *
     * <p>Ids as in {@link #buildWordLevel}: specials keep theirs, characters take the rest in order.
     */
    public static Path buildCharLevel(List<String> chars, Map<String, Long> specials, Path out) {
        Objects.requireNonNull(chars, "chars");
        for (String c : chars) {
            if (c == null || c.codePointCount(0, c.length()) != 1) {
                throw new IllegalArgumentException("Character-level vocabulary entries must be single characters"
                        + " (one Unicode code point each); got " + quote(c));
            }
        }
        ObjectNode preTokenizer = JsonNodeFactory.instance.objectNode().put("type", "Split");
        preTokenizer.putObject("pattern").put("Regex", "[\\s\\S]"); // any code point, newlines included
        preTokenizer.put("behavior", "Isolated").put("invert", false);
        ObjectNode decoder = JsonNodeFactory.instance.objectNode().put("type", "Fuse");
        return writeBuilt(chars, specials, out, preTokenizer, decoder);
    }

    private static Path writeBuilt(List<String> entries, Map<String, Long> specials, Path out, JsonNode preTokenizer,
            JsonNode decoder) {
        Objects.requireNonNull(specials, "specials: a map from special token to id (may be empty)");
        Objects.requireNonNull(out, "out: a tokenizer.json path or a directory");
        int n = entries.size() + specials.size();
        if (n == 0) {
            throw new IllegalArgumentException("A tokenizer needs at least one vocabulary entry or special token");
        }
        String[] byId = new String[n];
        for (Map.Entry<String, Long> s : new TreeMap<>(specials).entrySet()) {
            String token = s.getKey();
            Long id = s.getValue();
            if (token == null || token.isEmpty() || id == null) {
                throw new IllegalArgumentException("Special tokens need a non-empty name and an id; got " + s);
            }
            if (id < 0 || id >= n) {
                throw new IllegalArgumentException("Special token " + quote(token) + " has id " + id
                        + "; ids must lie in 0.." + (n - 1) + " (" + entries.size() + " entries + "
                        + specials.size() + " specials), so that they leave no gaps");
            }
            if (byId[id.intValue()] != null) {
                throw new IllegalArgumentException("Special tokens " + quote(byId[id.intValue()]) + " and "
                        + quote(token) + " share id " + id);
            }
            byId[id.intValue()] = token;
        }
        Set<String> seen = new LinkedHashSet<>(specials.keySet());
        int next = 0;
        for (String entry : entries) {
            if (!seen.add(entry)) {
                throw new IllegalArgumentException("Vocabulary entry " + quote(entry) + " is listed twice"
                        + (specials.containsKey(entry) ? " (it is also a special token)" : ""));
            }
            while (byId[next] != null) {
                next++;
            }
            byId[next] = entry;
        }

        ObjectNode root = JsonNodeFactory.instance.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        ObjectNode vocab = JsonNodeFactory.instance.objectNode();
        for (int id = 0; id < n; id++) {
            vocab.put(byId[id], id);
            if (specials.containsKey(byId[id])) {
                added.addObject().put("id", id).put("content", byId[id]).put("single_word", false)
                        .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
            }
        }
        root.putNull("normalizer");
        root.set("pre_tokenizer", preTokenizer);
        root.putNull("post_processor");
        root.set("decoder", decoder);
        ObjectNode model = root.putObject("model");
        model.put("type", "WordLevel");
        model.set("vocab", vocab);
        model.put("unk_token", "<unk>");

        Path file = Files.isDirectory(out) ? out.resolve(TOKENIZER_JSON) : out;
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n",
                    StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot write tokenizer file " + file, e);
        }
        return file;
    }

    // ---------------------------------------------------------------------------------------------- helpers

    private static boolean isSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp);
    }

    private static String readUtf8(Path file, String what) {
        try {
            byte[] bytes = Files.readAllBytes(file);
            return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("Corrupt " + what + " " + file + ": not UTF-8 text", e);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + what + " " + file, e);
        }
    }

    private static JsonNode parseJson(Path file, String text, String what) {
        try {
            JsonNode node = JSON.readTree(text);
            if (node == null || node.isMissingNode()) {
                throw new IllegalArgumentException("Corrupt " + what + " " + file + ": the file is empty");
            }
            return node;
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? ""
                    : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
            throw new IllegalArgumentException("Corrupt " + what + " " + file + ": not valid JSON ("
                    + e.getOriginalMessage() + where + ")", e);
        }
    }

    private static JsonNode readOptionalJson(Path file) {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        JsonNode node = parseJson(file, readUtf8(file, "config file"), "config file");
        if (!node.isObject()) {
            throw new IllegalArgumentException("Corrupt config file " + file + ": expected a JSON object");
        }
        return node;
    }

    private static String quote(String s) {
        if (s == null) {
            return "null";
        }
        String shown = s.length() > 60 ? s.substring(0, 57) + "..." : s;
        return "'" + shown.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + "'";
    }
}
