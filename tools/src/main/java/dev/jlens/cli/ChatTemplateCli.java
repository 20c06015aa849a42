package dev.jlens.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.model.ChatTemplate;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code lab chat-template --tokenizer-config FILE --messages FILE.json [--add-generation-prompt]
 * [--template-kwargs JSON]}: renders a Hugging Face chat template as transformers' {@code apply_chat_template}
 * does and prints one line {@code {"prompt":"..."}} (UTF-8). A template that raises exits 1 with its message.
 */
final class ChatTemplateCli {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ChatTemplateCli() {}

    static int run(String[] argv, PrintStream out) {
        Args a = Args.parse("chat-template", argv, Set.of("tokenizer-config", "messages", "template-kwargs"),
                Set.of("add-generation-prompt"));
        if (!a.positional().isEmpty()) {
            throw a.usage("unexpected argument '" + a.positional().get(0) + "'");
        }
        Path config = Path.of(a.require("tokenizer-config"));
        Path messagesFile = Path.of(a.require("messages"));
        if (!Files.isRegularFile(config)) {
            throw a.usage("--tokenizer-config " + config + (Files.isDirectory(config) ? " is a directory" : ": no such file")
                    + " (give a tokenizer_config.json file)");
        }
        if (!Files.isRegularFile(messagesFile)) {
            throw a.usage("--messages " + messagesFile + ": no such file (give a JSON array of {\"role\", \"content\"})");
        }
        List<Object> messages = readMessages(messagesFile);
        Map<String, Object> kwargs = a.get("template-kwargs").map(k -> readKwargs(a, k)).orElse(Map.of());
        ChatTemplate template = ChatTemplate.load(config);
        String prompt = template.render(messages, a.flag("add-generation-prompt"), kwargs);
        try {
            // UTF-8 bytes whatever the platform's charset: prompts hold tokens like <｜User｜>
            out.write((JSON.writeValueAsString(Map.of("prompt", prompt)) + "\n").getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        out.flush();
        return Lab.OK;
    }

    private static List<Object> readMessages(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("messages file " + file + " is not valid JSON ("
                    + e.getOriginalMessage() + (e.getLocation() == null ? "" : " at line "
                    + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr()) + ")", e);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read messages file " + file, e);
        }
        if (root == null || !root.isArray()) {
            throw new IllegalArgumentException("messages file " + file + " must hold a JSON array of"
                    + " {\"role\": ..., \"content\": ...} objects; got " + (root == null ? "nothing" : root.getNodeType()));
        }
        for (int i = 0; i < root.size(); i++) {
            JsonNode m = root.get(i);
            if (!m.isObject() || !m.path("role").isTextual()) {
                throw new IllegalArgumentException("messages file " + file + ": message " + i
                        + " must be an object with a string \"role\" (and \"content\"); got " + m);
            }
        }
        return JSON.convertValue(root, List.class);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> readKwargs(Args a, String text) {
        try {
            JsonNode n = JSON.readTree(text);
            if (n == null || !n.isObject()) {
                throw a.usage("--template-kwargs must be a JSON object, e.g. '{\"enable_thinking\": false}'");
            }
            return JSON.convertValue(n, Map.class);
        } catch (JsonProcessingException e) {
            throw a.usage("--template-kwargs is not valid JSON (" + e.getOriginalMessage() + ")");
        }
    }
}
