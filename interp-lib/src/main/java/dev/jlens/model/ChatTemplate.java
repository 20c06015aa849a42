package dev.jlens.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * A Hugging Face chat template ({@code tokenizer_config.json}'s Jinja {@code chat_template}), rendered as
 * transformers' {@code apply_chat_template(messages, tokenize=False)} renders it, so that a prompt is byte for byte
 * what the model was trained on: one stray newline silently changes what the model sees.
 *
 * <p>Like transformers, the template runs with {@code trim_blocks} and {@code lstrip_blocks}, the loop controls
 * {@code break}/{@code continue}, the globals {@code raise_exception(message)} (a {@link ChatTemplateException}
 * carrying the template's message) and {@code strftime_now(format)}, the {@code tojson} filter as transformers
 * defines it ({@code json.dumps} with {@code ensure_ascii=False}; {@code indent}, {@code separators},
 * {@code sort_keys}), and the variables {@code messages}, {@code tools} and {@code documents} (none),
 * {@code add_generation_prompt}, the tokenizer's special tokens ({@code bos_token}, {@code eos_token}, ... as
 * strings; each written in the config as a string or an added-token object {@code {"content": ...}}, and only those
 * set, as transformers' {@code special_tokens_map}) and any extra keyword arguments ({@code enable_thinking} for
 * Qwen 3, {@code date_string} for Llama 3, ...).
 *
 * <p>The engine is HubSpot's Jinjava with Python's semantics added where chat templates rely on them: the string
 * methods {@code strip}, {@code lstrip}, {@code rstrip}, {@code split}, {@code startswith}, {@code endswith},
 * {@code replace}, {@code title}, ... (Java's {@code split} takes a regular expression and drops trailing empty
 * strings), string indexing, the dict methods {@code items}, {@code keys}, {@code values}, {@code get}, the
 * {@code items} and {@code trim} filters, reversal by slicing ({@code [::-1]}), transformers'
 * {@code {% generation %}} tag, printed values spelled as Python spells them ({@code True}, {@code ['a']}), and
 * Jinja's source handling, applied to the source before Jinjava sees it ({@link JinjaRewrite}): newlines
 * normalised, one trailing newline dropped, {@code trim_blocks}/{@code lstrip_blocks} and the {@code -}/{@code +}
 * markers exactly as jinja2's lexer applies them, and parentheses where Jinjava's grammar would bind otherwise
 * ({@code not x is defined}, {@code k=a - 1} in a call). Not supported, refused with a clear error where it can
 * be seen before rendering: slices with a step other than -1, filters and tests Jinjava lacks, {@code raw}
 * blocks; not supported silently: two closing braces inside an expression (a nested dict literal printed
 * directly; set it to a variable first), string
 * repetition ({@code 'x' * 3}) and {@code %}-formatting, and telling none from undefined ({@code x is defined} is
 * false and {@code {{ x }}} prints nothing for a variable passed as none, where Python says true and
 * {@code None}).
 * The committed tests render real templates (DeepSeek-R1-Distill, Qwen 3, Llama 3.1, Gemma 2) and compare with
 * Python's jinja2 byte for byte ({@code tools/chat/render_reference.py}).
 */
public final class ChatTemplate {

    /** The special-token entries of tokenizer_config.json that transformers' {@code special_tokens_map} holds. */
    static final List<String> SPECIAL_TOKEN_KEYS =
            List.of("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token");


    private final String source;
    private final String prepared;
    private final String origin;
    private final Map<String, Object> specialTokens;

    private ChatTemplate(String source, Map<String, Object> specialTokens, String origin) {
        this.source = source;
        this.origin = origin;
        this.specialTokens = Collections.unmodifiableMap(new LinkedHashMap<>(specialTokens));
        this.prepared = prepare(source, origin);
        Engine.checkNames(prepared, origin);
    }

    /** A message of a chat: a role ({@code system}, {@code user}, {@code assistant}, ...) and its text. */
    public record Message(String role, String content) {
        public Message {
            Objects.requireNonNull(role, "role");
        }

        /** A system message. */
        public static Message system(String content) {
            return new Message("system", content);
        }

        /** A user message. */
        public static Message user(String content) {
            return new Message("user", content);
        }

        /** An assistant message (may hold {@code <think>...</think>}, which some templates strip). */
        public static Message assistant(String content) {
            return new Message("assistant", content);
        }

        Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("role", role);
            m.put("content", content);
            return m;
        }
    }

    // ------------------------------------------------------------------------------------------------ loading

    /**
     * The chat template of a {@code tokenizer_config.json} file, or of the one in a model directory: its
     * {@code chat_template} (a string, or a list of named templates, of which {@code default} is taken), else a
     * {@code chat_template.jinja} beside it; special tokens from the same config. Throws naming what is missing.
     */
    public static ChatTemplate load(Path tokenizerConfigOrDir) {
        Objects.requireNonNull(tokenizerConfigOrDir, "tokenizerConfigOrDir");
        Path dir;
        Path config;
        if (Files.isDirectory(tokenizerConfigOrDir)) {
            dir = tokenizerConfigOrDir;
            config = dir.resolve(TokenizerFiles.TOKENIZER_CONFIG_JSON);
        } else if (Files.isRegularFile(tokenizerConfigOrDir)) {
            config = tokenizerConfigOrDir;
            dir = config.toAbsolutePath().getParent();
        } else {
            throw new IllegalArgumentException("No tokenizer config at " + tokenizerConfigOrDir
                    + ": the path does not exist. Pass a " + TokenizerFiles.TOKENIZER_CONFIG_JSON
                    + " file or a model directory that holds one");
        }
        Optional<JsonNode> json = Files.isRegularFile(config)
                ? Optional.of(readConfig(config)) : Optional.empty();
        Path jinja = dir.resolve(TokenizerFiles.CHAT_TEMPLATE_JINJA);
        Optional<String> text = templateText(json, jinja, config);
        if (text.isEmpty()) {
            throw new ChatTemplateException(config + " has no chat template: no \"chat_template\" entry"
                    + (json.isEmpty() ? " (the file does not exist)" : "") + " and no "
                    + TokenizerFiles.CHAT_TEMPLATE_JINJA + " beside it. This tokenizer (for example GPT-2's) was not"
                    + " trained for chat: build the prompt as plain text, or pass a template with ChatTemplate.of");
        }
        return new ChatTemplate(text.get(), json.map(ChatTemplate::specialTokens).orElse(Map.of()),
                json.isPresent() && json.get().has("chat_template") ? config.toString() : jinja.toString());
    }

    /** The chat template of a model directory, or empty if it has none. */
    public static Optional<ChatTemplate> find(Path modelDir) {
        Objects.requireNonNull(modelDir, "modelDir");
        Path config = modelDir.resolve(TokenizerFiles.TOKENIZER_CONFIG_JSON);
        Optional<JsonNode> json = Files.isRegularFile(config) ? Optional.of(readConfig(config)) : Optional.empty();
        Path jinja = modelDir.resolve(TokenizerFiles.CHAT_TEMPLATE_JINJA);
        return templateText(json, jinja, config).map(t -> new ChatTemplate(t,
                json.map(ChatTemplate::specialTokens).orElse(Map.of()), config.toString()));
    }

    /** A template given as Jinja source, with its special tokens ({@code bos_token} and so on) as variables. */
    public static ChatTemplate of(String source, Map<String, ?> specialTokens) {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(specialTokens, "specialTokens");
        return new ChatTemplate(source, new LinkedHashMap<>(specialTokens), "the given template");
    }

    /** A template given as Jinja source, without special tokens. */
    public static ChatTemplate of(String source) {
        return of(source, Map.of());
    }

    /** The template of a tokenizer config read elsewhere (the tokenizer's own files). */
    static Optional<ChatTemplate> fromConfig(Optional<JsonNode> tokCfg, Path tokCfgFile) {
        Path jinja = tokCfgFile.toAbsolutePath().getParent().resolve(TokenizerFiles.CHAT_TEMPLATE_JINJA);
        return templateText(tokCfg, jinja, tokCfgFile).map(t -> new ChatTemplate(t,
                tokCfg.map(ChatTemplate::specialTokens).orElse(Map.of()), tokCfgFile.toString()));
    }

    private static JsonNode readConfig(Path config) {
        String text = TokenizerFiles.readUtf8(config, "tokenizer config");
        JsonNode node;
        try {
            node = TokenizerFiles.JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("Corrupt tokenizer config " + config + ": not valid JSON ("
                    + e.getOriginalMessage() + ")", e);
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("Corrupt tokenizer config " + config + ": expected a JSON object");
        }
        return node;
    }

    private static Optional<String> templateText(Optional<JsonNode> json, Path jinja, Path config) {
        JsonNode t = json.map(c -> c.get("chat_template")).orElse(null);
        if (t != null && t.isTextual()) {
            return Optional.of(t.asText());
        }
        if (t != null && t.isArray()) { // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
            List<String> names = new ArrayList<>();
            for (JsonNode named : t) {
                names.add(named.path("name").asText());
                if ("default".equals(named.path("name").asText()) && named.path("template").isTextual()) {
                    return Optional.of(named.path("template").asText());
                }
            }
            throw new ChatTemplateException(config + ": chat_template is a list of named templates " + names
                    + " without one named \"default\"");
        }
        if (t != null && !t.isNull()) {
            throw new ChatTemplateException(config + ": chat_template must be a string or a list of"
                    + " {\"name\", \"template\"} objects; got " + t.getNodeType());
        }
        return Files.isRegularFile(jinja) ? Optional.of(TokenizerFiles.readUtf8(jinja, "chat template"))
                : Optional.empty();
    }

    /** transformers' special_tokens_map: each role set to a non-empty string, and additional_special_tokens. */
    static Map<String, Object> specialTokens(JsonNode config) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (String key : SPECIAL_TOKEN_KEYS) {
            String content = tokenContent(config.get(key));
            if (content != null && !content.isEmpty()) {
                out.put(key, content);
            }
        }
        List<String> extra = new ArrayList<>();
        for (JsonNode n : config.path("additional_special_tokens")) {
            String content = tokenContent(n);
            if (content != null) {
                extra.add(content);
            }
        }
        if (!extra.isEmpty()) {
            out.put("additional_special_tokens", extra);
        }
        return out;
    }

    private static String tokenContent(JsonNode n) {
        if (n == null) {
            return null;
        }
        if (n.isTextual()) {
            return n.asText();
        }
        return n.isObject() && n.path("content").isTextual() ? n.get("content").asText() : null;
    }

    // ---------------------------------------------------------------------------------------------- rendering

    /** The prompt for {@code messages} ({@link Message}s or maps with "role" and "content"). */
    public String render(List<?> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * The prompt for {@code messages} with extra template variables, e.g. {@code Map.of("enable_thinking", false)}
     * for Qwen 3. Throws {@link ChatTemplateException} with the template's own message when it calls
     * {@code raise_exception}, or naming the problem when it cannot be rendered.
     */
    public String render(List<?> messages, boolean addGenerationPrompt, Map<String, ?> kwargs) {
        Objects.requireNonNull(messages, "messages");
        Objects.requireNonNull(kwargs, "kwargs");
        Map<String, Object> vars = new LinkedHashMap<>();
        vars.put("messages", toMaps(messages));
        vars.put("tools", null);
        vars.put("documents", null);
        vars.put("add_generation_prompt", addGenerationPrompt);
        vars.putAll(specialTokens);
        for (Map.Entry<String, ?> e : kwargs.entrySet()) {
            vars.put(e.getKey(), PyJinja.plain(e.getValue()));
        }
        return Engine.render(prepared, vars, origin);
    }

    /** The Jinja source, as written in the config. */
    public String source() {
        return source;
    }

    /** The special tokens the template sees ({@code bos_token}, {@code eos_token}, ...). */
    public Map<String, Object> specialTokens() {
        return specialTokens;
    }

    @Override
    public String toString() {
        return "ChatTemplate(" + origin + ", " + source.length() + " chars, special tokens " + specialTokens.keySet()
                + ")";
    }

    private static List<Object> toMaps(List<?> messages) {
        List<Object> out = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            Object m = messages.get(i);
            if (m instanceof Message msg) {
                out.add(msg.toMap());
            } else if (m instanceof Map<?, ?> map) {
                out.add(PyJinja.plain(map));
            } else {
                throw new IllegalArgumentException("messages[" + i + "] must be a ChatTemplate.Message or a map with"
                        + " \"role\" and \"content\"; got " + (m == null ? "null" : m.getClass().getSimpleName()));
            }
        }
        return out;
    }

    /**
     * Jinja's source handling that Jinjava lacks: newlines normalised to \n, one trailing newline dropped
     * (keep_trailing_newline=False); then the expressions rewritten for Jinjava's parser ({@link JinjaRewrite}).
     */
    static String prepare(String source, String origin) {
        String s = source.replace("\r\n", "\n").replace('\r', '\n');
        if (s.endsWith("\n")) {
            s = s.substring(0, s.length() - 1);
        }
        return JinjaRewrite.rewrite(s, origin);
    }

    /** One Jinjava shared by all templates (its configuration is the same for all; rendering is thread-safe). */
    private static final class Engine {
        private static final Jinjava JINJAVA = create();

        private static Jinjava create() {
            JinjavaConfig config = JinjavaConfig.newBuilder()
                    // trim_blocks, lstrip_blocks and the -/+ markers are applied to the source by JinjaRewrite
                    .withTrimBlocks(false)
                    .withLstripBlocks(false)
                    .withKeepTrailingNewline(true) // prepare() drops the one newline Jinja drops
                    .withNestedInterpretationEnabled(false)
                    // Jinja's behaviour where Jinjava kept its own for compatibility; not whitespaceRequiredWithinTokens,
                    // which would read {{bos_token}} (no spaces, as DeepSeek writes it) as text
                    .withLegacyOverrides(LegacyOverrides.newBuilder()
                            .withEvaluateMapKeys(true)
                            .withIterateOverMapKeys(true)
                            .withUsePyishObjectMapper(true)
                            .withUseNaturalOperatorPrecedence(true)
                            .withParseWhitespaceControlStrictly(true)
                            .withAllowAdjacentTextNodes(true)
                            .withUseTrimmingForNotesAndExpressions(true)
                            .withKeepNullableLoopValues(true)
                            .withHandleBackslashInQuotesOnly(true)
                            .build())
                    .withElResolver(PyJinja.resolver())
                    .build();
            Jinjava j = new Jinjava(config);
            j.getGlobalContext().registerFunction(function("raise_exception", "raiseException", Object.class));
            j.getGlobalContext().registerFunction(function("strftime_now", "strftimeNow", String.class));
            j.getGlobalContext().registerFilter(new PyJinja.ToJson());
            j.getGlobalContext().registerFilter(new PyJinja.Items());
            j.getGlobalContext().registerFilter(new PyJinja.Trim());
            j.getGlobalContext().registerFunction(function("__py", "printed", Object.class));
            j.getGlobalContext().registerTag(new PyJinja.GenerationTag());
            return j;
        }

        private static ELFunctionDefinition function(String name, String method, Class<?> param) {
            try {
                Method m = PyJinja.class.getDeclaredMethod(method, param);
                m.setAccessible(true); // PyJinja is package-private
                return new ELFunctionDefinition("", name, m);
            } catch (NoSuchMethodException e) {
                throw new IllegalStateException(e);
            }
        }

        /** Refuses a template that uses a filter or test Jinjava lacks (it would print nothing, not fail). */
        static void checkNames(String prepared, String origin) {
            List<String> unknown = new ArrayList<>();
            for (String use : JinjaRewrite.filtersAndTests(prepared)) {
                String name = use.substring(use.indexOf(' ') + 1);
                boolean known = use.startsWith("filter ") ? JINJAVA.getGlobalContext().getFilter(name) != null
                        : JINJAVA.getGlobalContext().getExpTest(name) != null;
                if (!known) {
                    unknown.add(use);
                }
            }
            if (!unknown.isEmpty()) {
                throw new ChatTemplateException("Chat template in " + origin + " uses " + String.join(", ", unknown)
                        + ", not supported here (Jinja's own filters and tests are, with tojson, items and trim as"
                        + " transformers and Jinja define them)");
            }
        }

        static String render(String template, Map<String, Object> vars, String origin) {
            RenderResult result;
            String raised;
            try {
                result = JINJAVA.renderForResult(template, vars);
                raised = PyJinja.RAISED.get();
            } catch (RuntimeException e) {
                raised = PyJinja.RAISED.get();
                if (raised == null) {
                    throw new ChatTemplateException("Chat template in " + origin + " failed to render: "
                            + e.getMessage(), e);
                }
                result = null;
            } finally {
                PyJinja.RAISED.remove();
            }
            if (raised != null) { // the template's own raise_exception, even if Jinjava went on after it
                throw new ChatTemplateException(raised, true);
            }
            List<TemplateError> fatal = result.getErrors().stream()
                    .filter(e -> e.getSeverity() == TemplateError.ErrorType.FATAL).collect(Collectors.toList());
            if (!fatal.isEmpty()) {
                throw new ChatTemplateException("Chat template in " + origin + " failed to render: " + fatal.stream()
                        .map(e -> "line " + e.getLineno() + ": " + e.getMessage()).collect(Collectors.joining("; ")));
            }
            return result.getOutput();
        }
    }
}
