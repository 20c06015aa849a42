package dev.jlens.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.cli.Lab;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code bench cot} on the tiny shape: one well-formed JSON line, both arms drawing identical tokens. */
class CotBenchTest {

    @Test
    void tinyShapePrintsOneLineWithIdenticalTokens() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Lab.run(new String[] {"bench", "cot", "--shape", "tiny", "--runs", "2", "--rows", "3"},
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        String printed = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, printed + err.toString(StandardCharsets.UTF_8));
        String[] lines = printed.strip().split("\n");
        assertEquals(1, lines.length, printed);
        JsonNode line = new ObjectMapper().readTree(lines[0]);
        assertEquals("cot", line.get("bench").asText());
        assertEquals("resample_ms", line.get("metric").asText());
        assertEquals("ms", line.get("unit").asText());
        assertTrue(line.get("value").asDouble() > 0 && line.get("baseline").asDouble() > 0, printed);
        assertEquals(8, line.get("samples").asInt());
        assertEquals(40, line.get("prefix_tokens").asInt());
        assertEquals(3, line.get("rows_per_pass").asInt());
        assertEquals(2, line.get("runs").asInt());
        assertTrue(line.get("identical_tokens").asBoolean(), printed);
        assertEquals("3/3", line.get("alone_equal").asText(), printed);
        assertFalse(line.has("goal"), "the goal is set for the default shape only");
    }

    @Test
    void aPrefixPastTheContextIsRefusedWithTheLimit() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Lab.run(new String[] {"bench", "cot", "--shape", "tiny", "--prefix", "62", "--new-tokens", "4"},
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertTrue(code != 0);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("context of 64"), err.toString(StandardCharsets.UTF_8));
    }
}
