package dev.jlens.cli;

import dev.jlens.zoo.Zoo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ZooCliTest {
    private final ByteArrayOutputStream outBytes = new ByteArrayOutputStream(), errBytes = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(outBytes, true, StandardCharsets.UTF_8);
    private final PrintStream err = new PrintStream(errBytes, true, StandardCharsets.UTF_8);

    private int run(String... args) {
        return ZooCli.run(args, out, err);
    }

    private String out() {
        return outBytes.toString(StandardCharsets.UTF_8);
    }

    private String err() {
        return errBytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void listNamesEveryModel() {
        assertEquals(0, run("list"));
        for (String n : Zoo.names()) assertTrue(out().contains(n), out());
    }

    @Test
    void badCommandLinesAreUsageErrors() {
        assertEquals(2, run());
        assertEquals(2, run("frobnicate"));
        assertTrue(err().contains("unknown command 'frobnicate'"), err());
        assertEquals(2, run("eval"));
        assertEquals(2, run("eval", "no-such-model"));
        assertTrue(err().contains("attn-only-2l"), "names the valid models: " + err());
        assertEquals(2, run("train", "attn-only-2l", "--steps", "zero"));
        assertEquals(2, run("eval", "attn-only-2l", "--fresh"));
        assertEquals(0, run("--help"));
        assertTrue(out().contains("./lab zoo train NAME"));
    }

    @Test
    void evalPrintsOneJsonLinePerMetricWithTheManifestValue() throws Exception {
        assertEquals(0, run("eval", "attn-only-2l", "--examples", "32"), err());
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> lines = new ArrayList<>();
        for (String l : out().split("\n")) if (!l.isBlank()) lines.add(json.readTree(l));
        JsonNode score = lines.stream().filter(l -> "induction_score_l1_max".equals(l.path("metric").asText()))
                .findFirst().orElseThrow(() -> new AssertionError(out()));
        assertEquals(32, score.get("examples").asInt());
        assertEquals(Zoo.manifest("attn-only-2l").metric("induction_score_l1_max"), score.get("manifest").asDouble(), 1e-6);
        assertTrue(score.get("value").asDouble() >= 0.7);
        assertTrue(lines.get(lines.size() - 1).get("bars_met").asBoolean());
    }
}
