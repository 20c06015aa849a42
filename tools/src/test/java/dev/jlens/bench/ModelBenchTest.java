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
                "load_peak_rss", "load_rss_growth", "load_jvm_heap_used", "forward_matmul_ms", "forward_other_ms",
                "forward_matmul_bound")) {
            assertTrue(byMetric.containsKey(m), "no '" + m + "' line in:\n" + text);
        }
        // both profiles saw matrix products and other ops; the bound sets JLens's products against the whole baseline
        JsonNode mm = byMetric.get("forward_matmul_ms"), other = byMetric.get("forward_other_ms");
        for (JsonNode n : List.of(mm, other)) {
            assertTrue(n.get("value").asDouble() > 0 && n.get("baseline").asDouble() > 0, n.toString());
        }
        JsonNode bound = byMetric.get("forward_matmul_bound");
        assertEquals(mm.get("value").asDouble(), bound.get("value").asDouble(), 1e-9, text);
        assertEquals(mm.get("baseline").asDouble() + other.get("baseline").asDouble(), bound.get("baseline").asDouble(),
                1e-6 * bound.get("baseline").asDouble(), text);
        // the plain forward is a reference only if it computes the same logits as the hooked model
        assertTrue(byMetric.get("plain_max_abs_diff").get("value").asDouble() <= 1e-4, text);
        assertTrue(byMetric.get("generate_kv_cache").get("same_tokens").asBoolean(), text);
        // the load probe saw the weights: peak RSS above their size
        JsonNode rss = byMetric.get("load_peak_rss");
        assertTrue(rss.get("value").asDouble() > rss.get("baseline").asDouble(), rss.toString());
        assertEquals(o.cfg().parameterCount() * 4 / (1024.0 * 1024.0), rss.get("baseline").asDouble(), 1e-3);
    }

    @Test
    void selfTimesSubtractNestedOpsPerThread() throws IOException {
        // thread 1: addmm [0, 10) holding empty [1, 5); add [12, 15); thread 2: mm [2, 8) overlapping thread 1's addmm
        JsonNode trace = new ObjectMapper().readTree("""
                [{"ph":"X","name":"aten::addmm","tid":1,"ts":0,"dur":10000},
                 {"ph":"X","name":"aten::empty","tid":1,"ts":1000,"dur":4000},
                 {"ph":"X","name":"aten::add","tid":1,"ts":12000,"dur":3000},
                 {"ph":"X","name":"aten::mm","tid":2,"ts":2000,"dur":6000},
                 {"ph":"M","name":"process_name","tid":1,"ts":0}]""");
        double[] t = ModelBench.selfTimes(trace);
        assertEquals(6 + 6, t[0], 1e-9, "matrix products: addmm's own 6 ms and mm's 6 ms");
        assertEquals(4 + 3, t[1], 1e-9, "everything else: the nested empty and the add");
    }
}
