package dev.jlens.model;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
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
 *
 * <p>Behind this class: {@link TokenizerFiles} reads the files, {@link Vocabulary} holds the token strings and ids,
 * {@link SpecialTokens} resolves the roles, {@link NativeTokenizer} guards the native library, and
 * {@link TokenizerWriter} writes word- and character-level tokenizers.
 */
public final class Tokenizer implements AutoCloseable {

    /** Which end of a batch row receives the padding. */
    public enum Padding { LEFT, RIGHT }

    private final Path file;
    private final Vocabulary vocab;
    private final SpecialTokens specials;
    private final NativeTokenizer tokenizer;
    private final Optional<Boolean> addBosToken;
    private final Optional<String> chatTemplate;
    private final Optional<com.fasterxml.jackson.databind.JsonNode> tokCfg;
    private final Path tokCfgFile;
    private volatile ChatTemplate chatTemplateRenderer;

    private Tokenizer(TokenizerFiles files, Vocabulary vocab, SpecialTokens specials, NativeTokenizer tokenizer) {
        this.file = files.file();
        this.vocab = vocab;
        this.specials = specials;
        this.tokenizer = tokenizer;
        this.addBosToken = files.addBosToken();
        this.chatTemplate = files.chatTemplate();
        this.tokCfg = files.tokCfg();
        this.tokCfgFile = files.tokCfgFile();
    }

    // ---------------------------------------------------------------------------------------------- loading

    /** Loads a {@code tokenizer.json} file, or the one in a model directory, with its sibling config files. */
    public static Tokenizer load(Path fileOrDir) {
        Objects.requireNonNull(fileOrDir, "fileOrDir: a tokenizer.json file or a directory that holds one");
        return fromFile(TokenizerFiles.locate(fileOrDir));
    }

    /** The tokenizer of a model directory, or empty if the directory holds no {@code tokenizer.json}. */
    public static Optional<Tokenizer> find(Path modelDir) {
        Objects.requireNonNull(modelDir, "modelDir");
        return TokenizerFiles.find(modelDir).map(Tokenizer::fromFile);
    }

    private static Tokenizer fromFile(Path file) {
        TokenizerFiles files = TokenizerFiles.read(file);
        Vocabulary vocab = Vocabulary.read(file, files.root());
        SpecialTokens specials = SpecialTokens.resolve(files, vocab);
        NativeTokenizer tokenizer = NativeTokenizer.create(file, files.text(), vocab);
        try {
            return new Tokenizer(files, vocab, specials, tokenizer);
        } catch (RuntimeException e) {
            tokenizer.close();
            throw e;
        }
    }

    // ------------------------------------------------------------------------------------------- vocabulary

    /** The BOS token id, if the model has one. */
    public OptionalLong bosTokenId() {
        return specials.bos();
    }

    /** The EOS token id, if the model has one. */
    public OptionalLong eosTokenId() {
        return specials.eos();
    }

    /** Every id that ends generation: the EOS token and any further ids listed in config.json's eos_token_id. */
    public long[] eosTokenIds() {
        return specials.eosIds().clone();
    }

    /** The id used for padding: the PAD token, else EOS, else 0. */
    public long padTokenId() {
        return specials.pad().orElse(specials.eos().orElse(0L));
    }

    /** {@code add_bos_token} from tokenizer_config.json, if set (informational: {@link #toTokens} decides alone). */
    public Optional<Boolean> addBosToken() {
        return addBosToken;
    }

    /** The chat template (Jinja source) from tokenizer_config.json or chat_template.jinja, if any. */
    public Optional<String> chatTemplate() {
        return chatTemplate;
    }

    /**
     * The prompt for a chat as this tokenizer's chat template renders it, exactly as transformers'
     * {@code apply_chat_template(messages, tokenize=False, add_generation_prompt=...)} does (see {@link ChatTemplate}).
     * Messages are {@link ChatTemplate.Message}s or maps with "role" and "content". Tokenize the result with
     * {@code toTokens(prompt, false)}: templates write BOS themselves where the model expects it.
     */
    public String applyChatTemplate(List<?> messages, boolean addGenerationPrompt) {
        return applyChatTemplate(messages, addGenerationPrompt, Map.of());
    }

    /** As {@link #applyChatTemplate(List, boolean)} with extra template variables, e.g. {@code enable_thinking}. */
    public String applyChatTemplate(List<?> messages, boolean addGenerationPrompt, Map<String, ?> kwargs) {
        return chatTemplateRenderer().render(messages, addGenerationPrompt, kwargs);
    }

    /** The chat template as a renderer; throws naming the files looked at when the tokenizer has none. */
    public ChatTemplate chatTemplateRenderer() {
        ChatTemplate t = chatTemplateRenderer;
        if (t == null) {
            t = ChatTemplate.fromConfig(tokCfg, tokCfgFile).orElseThrow(() -> new ChatTemplateException("The tokenizer "
                    + file + " has no chat template: no \"chat_template\" in " + tokCfgFile + " and no "
                    + TokenizerFiles.CHAT_TEMPLATE_JINJA + " beside it. This model was not trained for chat: build the"
                    + " prompt as plain text"));
            chatTemplateRenderer = t;
        }
        return t;
    }

    /** Number of token ids: the largest id, counting added tokens, plus one (50257 for GPT-2). */
    public int vocabSize() {
        return vocab.size();
    }

    /** The tokenizer.json this tokenizer was read from. */
    public Path file() {
        return file;
    }

    /** The id of a vocabulary entry, spelled exactly as in the vocabulary (GPT-2: {@code "Ġworld"}). */
    public long tokenId(String token) {
        Objects.requireNonNull(token, "token");
        OptionalLong id = vocab.id(token);
        if (id.isPresent()) {
            return id.getAsLong();
        }
        StringBuilder msg = new StringBuilder(Vocabulary.quote(token) + " is not a vocabulary entry of " + file + ".");
        if (!tokenizer.isClosed()) {
            try {
                long[] ids = tokenizer.encode(token);
                if (ids.length == 1) {
                    msg.append(" As text it encodes to the single token ").append(ids[0]).append(" (")
                            .append(Vocabulary.quote(vocab.token(ids[0]).orElse(null))).append("); use toTokens for text.");
                } else if (ids.length > 1 && ids.length <= 8) {
                    msg.append(" As text it encodes to ").append(ids.length).append(" tokens ")
                            .append(Arrays.toString(ids)).append('.');
                }
            } catch (IllegalArgumentException ignored) {
                // Not encodable either: the near matches below are all we can offer.
            }
        }
        List<String> near = vocab.nearest(token, 5);
        msg.append(near.isEmpty() ? " No close entries."
                : " Nearest entries: " + near.stream()
                        .map(t -> Vocabulary.quote(t) + " (" + vocab.id(t).getAsLong() + ")")
                        .collect(Collectors.joining(", ")));
        throw new IllegalArgumentException(msg.toString());
    }

    // --------------------------------------------------------------------------------------------- encoding

    /** Token ids of {@code text}; {@code prependBos} adds the BOS token, and is a no-op for a model without one. */
    public long[] toTokens(String text, boolean prependBos) {
        long[] ids = tokenizer.encode(text);
        if (!prependBos || specials.bos().isEmpty()) {
            return ids;
        }
        long[] out = new long[ids.length + 1];
        out[0] = specials.bos().getAsLong();
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
        // A token holding part of a multi-byte character decodes to U+FFFD on its own, as in TransformerLens.
        return ids.length == 0 ? List.of() : tokenizer.decodeEach(ids);
    }

    /** {@link #toStrTokens(String, boolean)} with BOS prepended when the model has one. */
    public List<String> toStrTokens(String text) {
        return toStrTokens(text, true);
    }

    /** The text of each id decoded on its own, as TransformerLens's to_str_tokens given ids. */
    public List<String> toStrTokens(long[] ids) {
        Objects.requireNonNull(ids, "ids");
        return ids.length == 0 ? List.of() : tokenizer.decodeEach(ids);
    }

    /** Decodes ids to text, keeping special tokens such as {@code <|endoftext|>}. */
    public String decode(long[] ids) {
        return decode(ids, false);
    }

    /** Decodes ids to text; {@code skipSpecial} drops special tokens (BOS, EOS, PAD, ...). */
    public String decode(long[] ids, boolean skipSpecial) {
        return tokenizer.decode(ids, skipSpecial);
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

    /** Frees the native tokenizer; safe to call twice. */
    @Override
    public void close() {
        tokenizer.close();
    }

    @Override
    public String toString() {
        Path parent = file.getParent();
        String name = parent == null || parent.getFileName() == null ? file.toString()
                : parent.getFileName() + "/" + file.getFileName();
        return "Tokenizer[" + name + ", vocab " + vocab.size() + ", bos " + describe(specials.bos()) + ", eos "
                + describe(specials.eos()) + ", pad " + padTokenId() + (tokenizer.isClosed() ? ", closed" : "") + "]";
    }

    private String describe(OptionalLong id) {
        return id.isPresent() ? id.getAsLong() + " " + Vocabulary.quote(vocab.token(id.getAsLong()).orElse(null)) : "none";
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
        return TokenizerWriter.wordLevel(vocab, specials, out);
    }

    /**
     * Writes a character-level tokenizer.json: every Unicode code point is one token, decoded by concatenation.
     *
     * <p>Ids as in {@link #buildWordLevel}: specials keep theirs, characters take the rest in order.
     */
    public static Path buildCharLevel(List<String> chars, Map<String, Long> specials, Path out) {
        return TokenizerWriter.charLevel(chars, specials, out);
    }
}
