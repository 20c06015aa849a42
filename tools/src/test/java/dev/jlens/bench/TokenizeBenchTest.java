package dev.jlens.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code bench tokenize}: one JSON line per thread count with a positive rate, the 2-thread line against 1. */
class TokenizeBenchTest {

    @Test
    void reportsTokensPerSecondAtOneAndTwoThreads() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        TokenizeBench.run(new TokenizeBench.Options(Fixtures.require("gpt2-tokenizer"), 200, 2, 0, List.of(1, 2)),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        String[] lines = out.toString(StandardCharsets.UTF_8).strip().split("\n");
        assertEquals(2, lines.length, out.toString(StandardCharsets.UTF_8));
        ObjectMapper json = new ObjectMapper();
        JsonNode one = json.readTree(lines[0]), two = json.readTree(lines[1]);
        assertEquals("tokenize", one.get("bench").asText());
        assertEquals("tokens_per_second", one.get("metric").asText());
        assertEquals(1, one.get("threads").asInt());
        assertEquals(2, two.get("threads").asInt());
        assertTrue(one.get("value").asDouble() > 0 && two.get("value").asDouble() > 0);
        assertTrue(one.get("baseline").isNull());
        assertEquals(one.get("value").asDouble(), two.get("baseline").asDouble(), 1e-9);
    }

    @Test
    void findsTheFixtureByItself() {
        assertTrue(TokenizeBench.findGpt2Tokenizer().resolve("tokenizer.json").toFile().isFile());
    }
}
