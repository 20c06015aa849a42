package dev.jlens.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The files a Hugging Face tokenizer is saved as, read and checked: {@code tokenizer.json} (the fast-tokenizer
 * format the native library reads), and beside it the optional {@code tokenizer_config.json} (special tokens,
 * {@code add_bos_token}, chat template), {@code config.json} (special token ids) and {@code chat_template.jinja}.
 *
 * @param file         the tokenizer.json
 * @param text         its text, as handed to the native library
 * @param root         its JSON
 * @param tokCfgFile   where tokenizer_config.json is (or would be)
 * @param tokCfg       tokenizer_config.json, if present
 * @param modelCfgFile where config.json is (or would be)
 * @param modelCfg     config.json, if present
 */
record TokenizerFiles(Path file, String text, JsonNode root, Path tokCfgFile, Optional<JsonNode> tokCfg,
        Path modelCfgFile, Optional<JsonNode> modelCfg) {

    static final String TOKENIZER_JSON = "tokenizer.json";
    static final String TOKENIZER_CONFIG_JSON = "tokenizer_config.json";
    static final String CONFIG_JSON = "config.json";
    static final String CHAT_TEMPLATE_JINJA = "chat_template.jinja";

    static final ObjectMapper JSON = new ObjectMapper();

    /** The tokenizer.json to load: the file itself, or the one in a model directory; throws naming what is there. */
    static Path locate(Path fileOrDir) {
        if (Files.isDirectory(fileOrDir)) {
            Path file = fileOrDir.resolve(TOKENIZER_JSON);
            if (!Files.isRegularFile(file)) {
                throw new IllegalArgumentException(missingTokenizerMessage(fileOrDir));
            }
            return file;
        }
        if (Files.isRegularFile(fileOrDir)) {
            return fileOrDir;
        }
        throw new IllegalArgumentException("No tokenizer at " + fileOrDir
                + ": the path does not exist. Pass a " + TOKENIZER_JSON + " file or a directory that holds one");
    }

    /** The tokenizer.json of a model directory, if it has one. */
    static Optional<Path> find(Path modelDir) {
        Path file = modelDir.resolve(TOKENIZER_JSON);
        return Files.isDirectory(modelDir) && Files.isRegularFile(file) ? Optional.of(file) : Optional.empty();
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

    /** Reads a tokenizer.json and the config files beside it. */
    static TokenizerFiles read(Path file) {
        String text = readUtf8(file, "tokenizer file");
        JsonNode root = parseJson(file, text, "tokenizer file");
        if (!root.isObject() || !root.has("model")) {
            throw new IllegalArgumentException("Corrupt tokenizer file " + file
                    + ": expected a JSON object with a \"model\" entry (Hugging Face tokenizer.json format)");
        }
        Path dir = file.toAbsolutePath().getParent();
        Path tokCfgFile = dir.resolve(TOKENIZER_CONFIG_JSON);
        Path modelCfgFile = dir.resolve(CONFIG_JSON);
        return new TokenizerFiles(file, text, root, tokCfgFile, readOptionalJson(tokCfgFile), modelCfgFile,
                readOptionalJson(modelCfgFile));
    }

    /** {@code add_bos_token} from tokenizer_config.json, if set. */
    Optional<Boolean> addBosToken() {
        return tokCfg.filter(c -> c.path("add_bos_token").isBoolean()).map(c -> c.get("add_bos_token").booleanValue());
    }

    /** The chat template from tokenizer_config.json (either format), else chat_template.jinja, if any. */
    Optional<String> chatTemplate() {
        JsonNode t = tokCfg.map(c -> c.get("chat_template")).orElse(null);
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
        Path jinja = file.toAbsolutePath().getParent().resolve(CHAT_TEMPLATE_JINJA);
        return Files.isRegularFile(jinja) ? Optional.of(readUtf8(jinja, "chat template")) : Optional.empty();
    }

    static String readUtf8(Path file, String what) {
        try {
            byte[] bytes = Files.readAllBytes(file);
            return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString();
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

    private static Optional<JsonNode> readOptionalJson(Path file) {
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        JsonNode node = parseJson(file, readUtf8(file, "config file"), "config file");
        if (!node.isObject()) {
            throw new IllegalArgumentException("Corrupt config file " + file + ": expected a JSON object");
        }
        return Optional.of(node);
    }
}
