package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.cli.LabTest.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.jlens.cli.LabTest.lab;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lab chat-template}: the contract's one output line, and clear errors that name the problem. */
class ChatTemplateCliTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    /** A template directory of interp-lib's test resources (the committed real templates), copied to a file. */
    private Path config(String template) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(template));
        if (Files.exists(dir.resolve("tokenizer_config.json"))) {
            return dir.resolve("tokenizer_config.json");
        }
        try (InputStream in = getClass().getResourceAsStream("/dev/jlens/model/chat/templates/" + template
                + "/tokenizer_config.json")) {
            Files.copy(in, dir.resolve("tokenizer_config.json"));
        }
        return dir.resolve("tokenizer_config.json");
    }

    private Path messages(String json) throws IOException {
        return Files.writeString(tmp.resolve("messages-" + System.nanoTime() + ".json"), json);
    }

    @Test
    void printsOneJsonLineWithTheR1DistillPrompt() throws IOException {
        Run r = lab("chat-template", "--tokenizer-config", config("deepseek-r1-distill-qwen").toString(), "--messages",
                messages("[{\"role\":\"user\",\"content\":\"What is 2 + 3?\"}]").toString(), "--add-generation-prompt");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().endsWith("\n") && r.out().indexOf('\n') == r.out().length() - 1, "one line: " + r.out());
        assertEquals("<｜begin▁of▁sentence｜><｜User｜>What is 2 + 3?<｜Assistant｜><think>\n",
                JSON.readTree(r.out()).get("prompt").asText());
        assertEquals(1, JSON.readTree(r.out()).size(), "only \"prompt\"");
    }

    @Test
    void withoutGenerationPromptAndWithTemplateKwargs() throws IOException {
        Path msgs = messages("[{\"role\":\"user\",\"content\":\"Hi\"}]");
        Run plain = lab("chat-template", "--tokenizer-config", config("qwen3").toString(), "--messages", msgs.toString());
        assertEquals(0, plain.code(), plain.err());
        assertEquals("<|im_start|>user\nHi<|im_end|>\n", JSON.readTree(plain.out()).get("prompt").asText());
        Run off = lab("chat-template", "--tokenizer-config", config("qwen3").toString(),
                "--messages", msgs.toString(), "--add-generation-prompt", "--template-kwargs", "{\"enable_thinking\": false}");
        assertEquals(0, off.code(), off.err());
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
                JSON.readTree(off.out()).get("prompt").asText());
    }

    @Test
    void aTemplateThatRaisesExitsNonZeroWithItsMessage() throws IOException {
        Run r = lab("chat-template", "--tokenizer-config", config("gemma-2").toString(), "--messages",
                messages("[{\"role\":\"system\",\"content\":\"x\"},{\"role\":\"user\",\"content\":\"y\"}]").toString());
        assertEquals(Lab.FAILED, r.code());
        assertEquals("", r.out());
        assertTrue(r.err().contains("System role not supported"), r.err());
    }

    @Test
    void noTemplateIsNamed() throws IOException {
        Run r = lab("chat-template", "--tokenizer-config", config("gpt2").toString(), "--messages",
                messages("[{\"role\":\"user\",\"content\":\"y\"}]").toString());
        assertEquals(Lab.FAILED, r.code());
        assertTrue(r.err().contains("has no chat template"), r.err());
    }

    @Test
    void badInputsAreNamed() throws IOException {
        Path cfg = config("qwen3");
        Run missingCfg = lab("chat-template", "--tokenizer-config", tmp.resolve("nope.json").toString(), "--messages",
                messages("[]").toString());
        assertEquals(Lab.USAGE, missingCfg.code());
        assertTrue(missingCfg.err().contains("nope.json: no such file"), missingCfg.err());

        Run missingMsgs = lab("chat-template", "--tokenizer-config", cfg.toString(), "--messages", "absent.json");
        assertEquals(Lab.USAGE, missingMsgs.code());
        assertTrue(missingMsgs.err().contains("absent.json: no such file"), missingMsgs.err());

        Run badJson = lab("chat-template", "--tokenizer-config", cfg.toString(), "--messages",
                messages("[{\"role\": \"user\", ").toString());
        assertEquals(Lab.FAILED, badJson.code());
        assertTrue(badJson.err().contains("is not valid JSON"), badJson.err());

        Run notArray = lab("chat-template", "--tokenizer-config", cfg.toString(), "--messages",
                messages("{\"role\": \"user\"}").toString());
        assertEquals(Lab.FAILED, notArray.code());
        assertTrue(notArray.err().contains("must hold a JSON array"), notArray.err());

        Run noRole = lab("chat-template", "--tokenizer-config", cfg.toString(), "--messages",
                messages("[{\"content\": \"x\"}]").toString());
        assertEquals(Lab.FAILED, noRole.code());
        assertTrue(noRole.err().contains("message 0"), noRole.err());

        Run noOption = lab("chat-template", "--messages", messages("[]").toString());
        assertEquals(Lab.USAGE, noOption.code());
        assertTrue(noOption.err().contains("--tokenizer-config"), noOption.err());
    }
}
