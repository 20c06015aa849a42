package dev.jlens.model;

import ai.djl.engine.EngineException;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * DJL's native Hugging Face tokenizer behind the checks that keep it from taking the JVM down: its batch calls and
 * decoder abort the process on bad input, so texts are encoded one at a time and every id is checked against the
 * vocabulary before it is decoded. The native side never adds special tokens, truncates or pads.
 */
final class NativeTokenizer implements AutoCloseable {

    static {
        // DJL's tokenizer factory pings the EC2 metadata service (telemetry) unless DJL offline mode or
        // OPT_OUT_TRACKING is set. JLens never phones home, so opt out unless the user decided otherwise.
        if (System.getenv("OPT_OUT_TRACKING") == null && System.getProperty("OPT_OUT_TRACKING") == null) {
            System.setProperty("OPT_OUT_TRACKING", "true");
        }
    }

    private final Path file;
    private final HuggingFaceTokenizer hf;
    private final Vocabulary vocab;
    private volatile boolean closed;

    private NativeTokenizer(Path file, HuggingFaceTokenizer hf, Vocabulary vocab) {
        this.file = file;
        this.hf = hf;
        this.vocab = vocab;
    }

    /** Loads the native tokenizer from a tokenizer.json's text; {@code vocab} is what its ids are checked against. */
    static NativeTokenizer create(Path file, String text, Vocabulary vocab) {
        // Special tokens, truncation and padding are the Tokenizer's business, never the native tokenizer's.
        Map<String, String> options = new HashMap<>();
        options.put("addSpecialTokens", "false");
        options.put("withOverflowingTokens", "false");
        options.put("truncation", "false");
        options.put("padding", "false");
        try (InputStream in = new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8))) {
            return new NativeTokenizer(file, HuggingFaceTokenizer.newInstance(in, options), vocab);
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

    /** Token ids of one text, no special tokens added; a text the model cannot encode throws, naming why. */
    long[] encode(String text) {
        if (text == null) {
            throw new IllegalArgumentException("text is null; pass a string (\"\" gives no tokens)");
        }
        HuggingFaceTokenizer native_ = open();
        try {
            return native_.encode(text, false, false).getIds();
        } catch (RuntimeException e) {
            String hint = String.valueOf(e.getMessage()).contains("Missing [UNK]")
                    ? " (a word of the text is not in the vocabulary, and the vocabulary has no unknown token)"
                    : "";
            throw new IllegalArgumentException("Cannot tokenize " + Vocabulary.quote(text) + " with " + file + ": "
                    + e.getMessage() + hint, e);
        }
    }

    /** The text of ids; {@code skipSpecial} drops special tokens. */
    String decode(long[] ids, boolean skipSpecial) {
        Objects.requireNonNull(ids, "ids");
        // The native decoder silently drops unknown ids (and casts negatives to u32), so check them here.
        for (long id : ids) {
            vocab.checkId(id);
        }
        return open().decode(ids, skipSpecial);
    }

    /** The text of each id decoded on its own (a token holding part of a multi-byte character gives U+FFFD). */
    List<String> decodeEach(long[] ids) {
        long[][] singles = new long[ids.length][];
        for (int i = 0; i < ids.length; i++) {
            vocab.checkId(ids[i]);
            singles[i] = new long[] {ids[i]};
        }
        return List.of(open().batchDecode(singles, false));
    }

    boolean isClosed() {
        return closed;
    }

    private HuggingFaceTokenizer open() {
        if (closed) {
            throw new IllegalStateException("Tokenizer for " + file + " is closed");
        }
        return hf;
    }

    /** Frees the native tokenizer; safe to call twice. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            hf.close();
        }
    }
}
