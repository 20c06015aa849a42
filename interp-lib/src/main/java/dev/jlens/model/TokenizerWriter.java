package dev.jlens.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * Writes small {@code tokenizer.json} files for synthetic tasks and tests: a word-level vocabulary split on
 * whitespace, or a character-level one. Both use the {@code WordLevel} model, so the native library reads them like
 * any Hugging Face tokenizer.
 */
final class TokenizerWriter {

    private TokenizerWriter() {}

    /**
     * Writes a word-level tokenizer.json: words split on whitespace, decoded joined by single spaces.
     *
     * <p>Specials keep their ids; vocabulary words take the remaining ids 0..N-1 in order. Specials named
     * conventionally ({@code <bos>}, {@code <eos>}, {@code <pad>}, {@code <s>}, ...) become BOS/EOS/PAD when loaded;
     * a word outside the vocabulary maps to {@code <unk>} if that is a special, else encoding it fails.
     * {@code out} is a file, or a directory that receives {@code tokenizer.json}; returns the file written.
     */
    static Path wordLevel(List<String> vocab, Map<String, Long> specials, Path out) {
        Objects.requireNonNull(vocab, "vocab");
        for (String word : vocab) {
            if (word == null || word.isEmpty() || word.codePoints().anyMatch(TokenizerWriter::isSpace)) {
                throw new IllegalArgumentException("Word-level vocabulary entries must be non-empty and free of"
                        + " whitespace (text is split on whitespace); got " + Vocabulary.quote(word));
            }
        }
        ObjectNode preTokenizer = JsonNodeFactory.instance.objectNode().put("type", "WhitespaceSplit");
        // No decoder: the tokenizers library then joins decoded tokens with single spaces.
        return writeBuilt(vocab, specials, out, preTokenizer, JsonNodeFactory.instance.nullNode());
    }

    /**
     * Writes a character-level tokenizer.json: every Unicode code point is one token, decoded by concatenation.
     *
     * <p>Ids as in {@link #wordLevel}: specials keep theirs, characters take the rest in order.
     */
    static Path charLevel(List<String> chars, Map<String, Long> specials, Path out) {
        Objects.requireNonNull(chars, "chars");
        for (String c : chars) {
            if (c == null || c.codePointCount(0, c.length()) != 1) {
                throw new IllegalArgumentException("Character-level vocabulary entries must be single characters"
                        + " (one Unicode code point each); got " + Vocabulary.quote(c));
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
                throw new IllegalArgumentException("Special token " + Vocabulary.quote(token) + " has id " + id
                        + "; ids must lie in 0.." + (n - 1) + " (" + entries.size() + " entries + "
                        + specials.size() + " specials), so that they leave no gaps");
            }
            if (byId[id.intValue()] != null) {
                throw new IllegalArgumentException("Special tokens " + Vocabulary.quote(byId[id.intValue()]) + " and "
                        + Vocabulary.quote(token) + " share id " + id);
            }
            byId[id.intValue()] = token;
        }
        Set<String> seen = new LinkedHashSet<>(specials.keySet());
        int next = 0;
        for (String entry : entries) {
            if (!seen.add(entry)) {
                throw new IllegalArgumentException("Vocabulary entry " + Vocabulary.quote(entry) + " is listed twice"
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

        Path file = Files.isDirectory(out) ? out.resolve(TokenizerFiles.TOKENIZER_JSON) : out;
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Files.writeString(file, TokenizerFiles.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n",
                    StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot write tokenizer file " + file, e);
        }
        return file;
    }

    private static boolean isSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp);
    }
}
