package dev.jlens.model;

import dev.jlens.util.Names;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;

/**
 * The token strings and ids of a {@code tokenizer.json}: the model's vocabulary (BPE, WordPiece and WordLevel as
 * {@code {"token": id}}, Unigram as {@code [[piece, score], ...]}) plus its added tokens. Knows which ids exist, which
 * is what guards the native decoder against ids it would mishandle.
 */
final class Vocabulary {

    private final Path file;
    private final Map<String, Long> tokenToId;
    private final Map<Long, String> idToToken;
    private final Set<String> specialAdded;
    private final int size;

    private Vocabulary(Path file, Map<String, Long> tokenToId, Set<String> specialAdded) {
        this.file = file;
        this.tokenToId = Map.copyOf(tokenToId);
        this.specialAdded = Collections.unmodifiableSet(specialAdded);
        this.idToToken = new HashMap<>(tokenToId.size() * 2);
        tokenToId.forEach((token, id) -> idToToken.put(id, token));
        OptionalLong maxId = tokenToId.values().stream().mapToLong(Long::longValue).max();
        if (maxId.isPresent() && maxId.getAsLong() >= Integer.MAX_VALUE) {
            throw new IllegalArgumentException("Corrupt tokenizer file " + file + ": token id " + maxId.getAsLong()
                    + " is too large");
        }
        this.size = maxId.isPresent() ? (int) maxId.getAsLong() + 1 : 0;
    }

    /** Reads the vocabulary and added tokens of a parsed tokenizer.json. */
    static Vocabulary read(Path file, JsonNode root) {
        Map<String, Long> tokenToId = new HashMap<>();
        Set<String> specialAdded = new LinkedHashSet<>();
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
        return new Vocabulary(file, tokenToId, specialAdded);
    }

    private static long requireId(Path file, JsonNode id, String token) {
        if (!id.canConvertToLong() || !id.isIntegralNumber() || id.longValue() < 0) {
            throw new IllegalArgumentException("Corrupt tokenizer file " + file + ": token '" + token
                    + "' has id " + id + ", expected a non-negative integer");
        }
        return id.longValue();
    }

    /** Number of token ids: the largest id plus one. */
    int size() {
        return size;
    }

    /** The id of an entry spelled exactly as in the vocabulary. */
    OptionalLong id(String token) {
        Long id = tokenToId.get(token);
        return id == null ? OptionalLong.empty() : OptionalLong.of(id);
    }

    /** The entry of an id. */
    Optional<String> token(long id) {
        return Optional.ofNullable(idToToken.get(id));
    }

    /** Added tokens marked special ({@code <|endoftext|>}, {@code <s>}, ...), in file order. */
    Set<String> specialAdded() {
        return specialAdded;
    }

    /** Throws naming the valid range unless {@code id} is a token of this vocabulary. */
    void checkId(long id) {
        if (!idToToken.containsKey(id)) {
            throw new IllegalArgumentException("Token id " + id + " is not in the vocabulary of " + file
                    + " (ids 0.." + (size - 1) + ")");
        }
    }

    /** Up to {@code limit} entries close to {@code query} in edit distance, nearest first, then by id. */
    List<String> nearest(String query, int limit) {
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

    /** A token or text for a message: quoted, shortened, with newlines and tabs visible. */
    static String quote(String s) {
        if (s == null) {
            return "null";
        }
        String shown = s.length() > 60 ? s.substring(0, 57) + "..." : s;
        return "'" + shown.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + "'";
    }
}
