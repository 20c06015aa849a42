package dev.jlens.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The SAE benchmark end to end at tiny sizes (Python baseline included): its output contract. */
class SaeBenchTest {

    private static Map<String, JsonNode> run(SaeBench.Options o) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), log = new ByteArrayOutputStream();
        try (PrintStream po = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream pl = new PrintStream(log, true, StandardCharsets.UTF_8)) {
            SaeBench.run(o, po, pl);
        }
        String text = out.toString(StandardCharsets.UTF_8);
        assertFalse(text.isBlank(), "no output; log: " + log);
        ObjectMapper json = new ObjectMapper();
        Map<String, JsonNode> byMetric = new HashMap<>();
        for (String line : text.split("\n")) {
            JsonNode n = json.readTree(line);   // throws on a line that is not JSON
            for (String key : List.of("bench", "metric", "value", "unit", "baseline", "ratio", "runs", "note")) {
                assertTrue(n.has(key), "missing '" + key + "' in " + line);
            }
            assertEquals("sae", n.get("bench").asText(), line);
            double v = n.get("value").asDouble();
            assertTrue(n.get("value").isNumber() && Double.isFinite(v) && v >= 0, line);
            if (n.get("baseline").isNumber()) {
                double b = n.get("baseline").asDouble();
                assertTrue(b > 0 && Double.isFinite(b), line);
                assertEquals(v / b, n.get("ratio").asDouble(), Math.abs(v / b) * 1e-3 + 1e-9, line);
            } else {
                assertTrue(n.get("ratio").isNull(), line);
            }
            byMetric.put(n.get("metric").asText(), n);
        }
        for (String m : List.of("matmul_peak_gflops", "sae_train_step", "sae_train_step_gflops", "sae_auxk_train_step",
                "sae_auxk_train_step_gflops", "sae_dense_train_step", "sae_dense_train_step_gflops", "topk_decode",
                "topk_decode_max_abs_diff")) {
            assertTrue(byMetric.containsKey(m), "no '" + m + "' line in:\n" + text);
        }
        return byMetric;
    }

    @Test
    void everyLineIsAMetricAndTheStepsAgree() throws IOException {
        Map<String, JsonNode> m = run(SaeBench.Options.tiny());
        for (String metric : List.of("matmul_peak_gflops", "sae_train_step", "sae_auxk_train_step", "sae_dense_train_step",
                "topk_decode")) {
            assertTrue(m.get(metric).get("value").asDouble() > 0, m.get(metric).toString());
        }
        // the Python baseline ran: the steps have a baseline, and their GFLOP/s are measured against the peak
        assertTrue(m.get("sae_train_step").get("baseline").isNumber(), m.get("sae_train_step").toString());
        assertEquals(m.get("matmul_peak_gflops").get("value").asDouble(),
                m.get("sae_train_step_gflops").get("baseline").asDouble(), 1e-3 * m.get("matmul_peak_gflops").get("value").asDouble());
        assertTrue(m.get("sae_train_step").get("tokens_per_s").asDouble() > 0);
        assertTrue(m.get("sae_auxk_train_step").get("baseline").isNumber(), m.get("sae_auxk_train_step").toString());
        // the sparse AuxK step and the dense route start from the same weights and see the same batch and dead
        // latents: the same loss, which AuxK makes larger than the step without dead latents
        double dl = m.get("sae_dense_train_step").get("loss").asDouble(), al = m.get("sae_auxk_train_step").get("loss").asDouble();
        double pl = m.get("sae_train_step").get("loss").asDouble();
        assertTrue(dl > 0 && Math.abs(dl - al) <= 1e-3 * dl, "dense loss " + dl + ", sparse AuxK loss " + al);
        assertTrue(al > pl * 1.0001, "AuxK loss " + al + " must exceed the plain step's " + pl);
        // the goals sit on the trainer's steps; the general dense route is reported without one
        assertTrue(m.get("sae_auxk_train_step_gflops").has("goal"), m.get("sae_auxk_train_step_gflops").toString());
        assertTrue(!m.get("sae_dense_train_step_gflops").has("goal") || m.get("sae_dense_train_step_gflops").get("goal").isNull(),
                m.get("sae_dense_train_step_gflops").toString());
        assertTrue(m.get("topk_decode_max_abs_diff").get("value").asDouble() <= 1e-3, m.toString());
    }

    @Test
    void withoutPythonTheBaselineIsNullAndSaysWhy() throws IOException {
        SaeBench.Options t = SaeBench.Options.tiny();
        Map<String, JsonNode> m = run(new SaeBench.Options(t.dIn(), t.dSae(), t.k(), t.batch(), t.decodeDSae(),
                t.decodeBatch(), t.peakN(), 0, 1, List.of(1), t.chunk(), true, java.util.Optional.of("/nonexistent/python3"),
                t.pythonScript(), 1));
        JsonNode step = m.get("sae_train_step");
        assertTrue(step.get("baseline").isNull(), step.toString());
        assertTrue(step.get("note").asText().contains("/nonexistent/python3"), step.toString());
    }

    @Test
    void optionsAreValidated() {
        SaeBench.Options t = SaeBench.Options.tiny();
        assertThrows(IllegalArgumentException.class, () -> t.with(List.of(), 0, 1, false));
        assertThrows(IllegalArgumentException.class, () -> t.with(List.of(1), 0, 0, false));
    }
}
