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
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The model benchmark end to end on a tiny GPT-2 (Python baseline and load probe included): its output contract. */
class ModelBenchTest {

    @Test
    void everyLineIsAMetricObjectAndEveryPartReports() throws IOException {
        ModelBench.Options tiny = ModelBench.Options.tiny();
        ModelBench.Options o = new ModelBench.Options(tiny.cfg(), tiny.seq(), List.of(1), 0, 1, 4, 1, List.of(1),
                List.of(1), true, tiny.pythonExe(), tiny.pythonScript(), true, 3);
        ByteArrayOutputStream out = new ByteArrayOutputStream(), log = new ByteArrayOutputStream();
        try (PrintStream po = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream pl = new PrintStream(log, true, StandardCharsets.UTF_8)) {
            ModelBench.run(o, po, pl);
        }
        String text = out.toString(StandardCharsets.UTF_8);
        assertFalse(text.isBlank(), "no output; log: " + log);
        ObjectMapper json = new ObjectMapper();
        Map<String, JsonNode> byMetric = new HashMap<>();
        for (String line : text.split("\n")) {
            JsonNode n = json.readTree(line);   // throws on a line that is not JSON
            assertTrue(n.isObject(), line);
            for (String key : List.of("bench", "metric", "value", "unit", "baseline", "ratio")) {
                assertTrue(n.has(key), "missing '" + key + "' in " + line);
            }
            assertEquals("model", n.get("bench").asText(), line);
            assertTrue(n.get("value").isNumber(), line);
            if (n.get("baseline").isNumber() && n.get("baseline").asDouble() != 0) {
                double ratio = n.get("value").asDouble() / n.get("baseline").asDouble();
                assertEquals(ratio, n.get("ratio").asDouble(), Math.abs(ratio) * 1e-3 + 1e-9, line);
            } else {
                assertTrue(n.get("ratio").isNull(), line);
            }
            byMetric.put(n.get("metric").asText(), n);
        }
        for (String m : List.of("forward_djl_threads", "forward_python_threads", "forward_vs_python",
                "hook_points_forward", "plain_max_abs_diff", "run_with_cache_resid_post", "generate_kv_cache",
                "load_peak_rss", "load_rss_growth", "load_jvm_heap_used")) {
            assertTrue(byMetric.containsKey(m), "no '" + m + "' line in:\n" + text);
        }
        // the plain forward is a reference only if it computes the same logits as the hooked model
        assertTrue(byMetric.get("plain_max_abs_diff").get("value").asDouble() <= 1e-4, text);
        assertTrue(byMetric.get("generate_kv_cache").get("same_tokens").asBoolean(), text);
        // the load probe saw the weights: peak RSS above their size
        JsonNode rss = byMetric.get("load_peak_rss");
        assertTrue(rss.get("value").asDouble() > rss.get("baseline").asDouble(), rss.toString());
        assertEquals(o.cfg().parameterCount() * 4 / (1024.0 * 1024.0), rss.get("baseline").asDouble(), 1e-3);
    }
}
