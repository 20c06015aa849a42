package dev.jlens.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Real chat templates rendered by {@link ChatTemplate} equal Python's jinja2 with transformers' settings byte for
 * byte: {@code chat/expected.json} was written by {@code tools/chat/render_reference.py} from {@code chat/cases.json}
 * (see {@code chat/README.md} for where each template's text comes from).
 */
class ChatTemplateTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path chatDir() {
        try {
            return Path.of(ChatTemplateTest.class.getResource("chat").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static List<Object> messages(String name) throws IOException {
        return JSON.readValue(chatDir().resolve("messages").resolve(name + ".json").toFile(), List.class);
    }

    @TestFactory
    List<DynamicTest> everyCaseEqualsPythonJinja() throws IOException {
        Path dir = chatDir();
        JsonNode cases = JSON.readTree(dir.resolve("cases.json").toFile());
        JsonNode expected = JSON.readTree(dir.resolve("expected.json").toFile());
        assertEquals(cases.size(), expected.size(), "cases.json and expected.json list the same cases");
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : cases) {
            String name = c.get("name").asText();
            tests.add(DynamicTest.dynamicTest(name, () -> {
                ChatTemplate t = ChatTemplate.load(dir.resolve("templates").resolve(c.get("template").asText()));
                @SuppressWarnings("unchecked")
                Map<String, Object> kwargs = c.has("kwargs") ? JSON.convertValue(c.get("kwargs"), Map.class) : Map.of();
                JsonNode want = expected.get(name);
                List<Object> msgs = messages(c.get("messages").asText());
                boolean gen = c.path("add_generation_prompt").asBoolean(false);
                if (want.has("error")) {
                    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> t.render(msgs, gen, kwargs));
                    assertEquals(want.get("error").asText(), e.getMessage());
                    assertTrue(e.raisedByTemplate());
                } else {
                    String got = t.render(msgs, gen, kwargs);
                    assertEquals(want.get("prompt").asText(), got, () -> "first difference at char "
                            + firstDifference(want.get("prompt").asText(), got));
                }
            }));
        }
        return tests;
    }

    private static int firstDifference(String a, String b) {
        int i = 0;
        while (i < a.length() && i < b.length() && a.charAt(i) == b.charAt(i)) {
            i++;
        }
        return i;
    }

    @Test
    void deepSeekR1DistillPromptIsThePublishedOne() {
        // The prompt DeepSeek's R1 distills are run with since their template change: the generation prompt opens
        // the chain of thought with "<think>\n".
        ChatTemplate t = ChatTemplate.load(chatDir().resolve("templates/deepseek-r1-distill-qwen/tokenizer_config.json"));
        String prompt = t.render(List.of(ChatTemplate.Message.system("You are a good assistant"),
                ChatTemplate.Message.user("What is the weather in Copenhagen?")), true);
        assertEquals("<｜begin▁of▁sentence｜>You are a good assistant<｜User｜>What is the weather in Copenhagen?"
                + "<｜Assistant｜><think>\n", prompt);
        assertEquals("<｜begin▁of▁sentence｜>", t.specialTokens().get("bos_token"), "from an added-token object");
    }

    @Test
    void r1TemplateStripsTheThinkingOfEarlierTurns() {
        ChatTemplate t = ChatTemplate.load(chatDir().resolve("templates/deepseek-r1-distill-qwen"));
        String prompt = t.render(List.of(ChatTemplate.Message.user("1+1?"),
                ChatTemplate.Message.assistant("<think>\nhmm, 2\n</think>\n\n2"), ChatTemplate.Message.user("2+2?")), true);
        assertFalse(prompt.contains("hmm"), prompt);
        assertTrue(prompt.contains("<｜Assistant｜>\n\n2<｜end▁of▁sentence｜>"), prompt);
    }

    @Test
    void qwen3ThinkingSwitch() throws IOException {
        ChatTemplate t = ChatTemplate.load(chatDir().resolve("templates/qwen3"));
        List<Object> msgs = messages("user");
        String on = t.render(msgs, true);
        String off = t.render(msgs, true, Map.of("enable_thinking", false));
        assertTrue(on.endsWith("<|im_start|>assistant\n"), on);
        assertEquals(on + "<think>\n\n</think>\n\n", off);
        assertEquals(on, t.render(msgs, true, Map.of("enable_thinking", true)));
    }

    @Test
    void raiseExceptionCarriesTheTemplatesMessage() throws IOException {
        ChatTemplate gemma = ChatTemplate.load(chatDir().resolve("templates/gemma-2"));
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> gemma.render(messages("system-user"), true));
        assertEquals("System role not supported", e.getMessage());
        assertTrue(e.raisedByTemplate());
        // the next render on the same thread is not affected
        assertTrue(gemma.render(messages("user"), true).startsWith("<bos><start_of_turn>user\n"));
    }

    @Test
    void tokenizerWithoutTemplateIsAClearError() {
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> ChatTemplate.load(chatDir().resolve("templates/gpt2/tokenizer_config.json")));
        assertTrue(e.getMessage().contains("has no chat template"), e.getMessage());
        assertFalse(e.raisedByTemplate());
        assertTrue(ChatTemplate.find(chatDir().resolve("templates/gpt2")).isEmpty());
    }

    @Test
    void missingPathNamesIt(@TempDir Path tmp) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ChatTemplate.load(tmp.resolve("nope.json")));
        assertTrue(e.getMessage().contains("nope.json"), e.getMessage());
    }

    @Test
    void corruptConfigNamesTheFile(@TempDir Path tmp) throws IOException {
        Path cfg = tmp.resolve("tokenizer_config.json");
        Files.writeString(cfg, "{\"chat_template\": ", StandardCharsets.UTF_8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.load(cfg));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void jinjaFileBesideTheConfigIsUsed(@TempDir Path tmp) throws IOException {
        Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
        Files.writeString(tmp.resolve("chat_template.jinja"), "{{ bos_token }}{% for m in messages %}{{ m.content }}\n"
                + "{% endfor %}\n");
        assertEquals("<s>a\nb\n", ChatTemplate.load(tmp).render(List.of(ChatTemplate.Message.user("a"),
                ChatTemplate.Message.assistant("b")), false));
    }

    @Test
    void namedListWithoutDefaultIsRefused(@TempDir Path tmp) throws IOException {
        Files.writeString(tmp.resolve("tokenizer_config.json"),
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}]}");
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.load(tmp));
        assertTrue(e.getMessage().contains("\"default\""), e.getMessage());
    }

    @Test
    void unsupportedSliceIsNamed() {
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> ChatTemplate.of("{% for m in messages[::2] %}{% endfor %}"));
        assertTrue(e.getMessage().contains("[::2]"), e.getMessage());
    }

    @Test
    void unknownFiltersAndTestsAreRefusedNotRenderedAsNothing() {
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> ChatTemplate.of("{{ messages | nosuchfilter }}{% if x is nosuchtest %}{% endif %}"));
        assertTrue(e.getMessage().contains("filter nosuchfilter") && e.getMessage().contains("test nosuchtest"),
                e.getMessage());
        ChatTemplate.of("{{ '|' }}{{ 'a' ~ 'b' | upper }}{% if x is not defined %}{% endif %}"); // a | in a string is text
    }

    @Test
    void syntaxErrorIsAChatTemplateException() {
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> ChatTemplate.of("{{ messages[0].content( }}").render(List.of(ChatTemplate.Message.user("x")), false));
        assertTrue(e.getMessage().contains("failed to render"), e.getMessage());
        assertFalse(e.raisedByTemplate());
    }

    @Test
    void badMessageNamesItsIndex() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ChatTemplate.of("x").render(List.of(ChatTemplate.Message.user("a"), "b"), false));
        assertTrue(e.getMessage().contains("messages[1]"), e.getMessage());
    }

    @Test
    void pythonStringSemantics() {
        assertEquals(List.of("a", "", "b", ""), PyJinja.split("a,,b,", ",", -1));
        assertEquals(List.of("a", "b c"), PyJinja.split("  a b c ", null, 1));
        assertEquals(List.of("a b", "c"), PyJinja.rsplit("a b c", " ", 1));
        assertEquals("x", PyJinja.strip("\u00a0\u2003x\t\n", null, true, true));
        assertEquals("1e+16", PyJinja.floatRepr(1e16));
        assertEquals("1e-05", PyJinja.floatRepr(1e-5));
        assertEquals("0.0001", PyJinja.floatRepr(1e-4));
        assertEquals("100.0", PyJinja.floatRepr(100.0));
        assertEquals("2.5", PyJinja.floatRepr(2.5));
        assertEquals("06 Dec 2026", PyJinja.strftime(java.time.LocalDateTime.of(2026, 12, 6, 3, 0), "%d %b %Y"));
        assertEquals("6 December", PyJinja.strftime(java.time.LocalDateTime.of(2026, 12, 6, 3, 0), "%-d %B"));
    }

    @Test
    void everyCaseWasGeneratedFromTheCommittedInputs() throws IOException {
        // a case added to cases.json without rerunning the reference script would fail everyCaseEqualsPythonJinja;
        // this names the script to run instead
        JsonNode cases = JSON.readTree(chatDir().resolve("cases.json").toFile());
        JsonNode expected = JSON.readTree(chatDir().resolve("expected.json").toFile());
        for (JsonNode c : cases) {
            if (!expected.has(c.get("name").asText())) {
                fail(c.get("name").asText() + " has no expected output: run python3 tools/chat/render_reference.py "
                        + "interp-lib/src/test/resources/dev/jlens/model/chat");
            }
        }
    }
}
