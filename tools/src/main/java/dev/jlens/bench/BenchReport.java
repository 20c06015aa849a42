package dev.jlens.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Writes a bench's metric lines (one JSON object each: the required keys first, then the extras). */
final class BenchReport {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String bench;
    private final PrintStream out;

    BenchReport(String bench, PrintStream out) {
        this.bench = bench;
        this.out = out;
    }

    /** One metric line; {@code baseline} null leaves baseline and ratio null. */
    void emit(String metric, double value, String unit, Double baseline, Map<String, Object> extra) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("bench", bench);
        line.put("metric", metric);
        line.put("value", round(value));
        line.put("unit", unit);
        line.put("baseline", baseline == null ? null : round(baseline));
        line.put("ratio", baseline == null || baseline == 0 ? null : round(value / baseline));
        line.putAll(extra);
        try {
            out.println(JSON.writeValueAsString(line));
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
        out.flush();
    }

    /** {@code v} to 5 significant digits. */
    static double round(double v) {
        if (v == 0 || !Double.isFinite(v)) return v;
        double scale = Math.pow(10, 4 - (int) Math.floor(Math.log10(Math.abs(v))));   // 5 significant digits
        return Math.round(v * scale) / scale;
    }

    /** The usual extra keys, in order: batch and threads (each if not null), runs, goal and ok (if a goal), note. */
    static Map<String, Object> extra(Integer batch, Integer threads, int runs, String goal, Boolean ok, String note) {
        Map<String, Object> x = new LinkedHashMap<>();
        if (batch != null) x.put("batch", batch);
        if (threads != null) x.put("threads", threads);
        x.put("runs", runs);
        if (goal != null) {
            x.put("goal", goal);
            x.put("ok", ok);
        }
        x.put("note", note);
        return x;
    }

    /** Where a bench's Python script may be: under {@code -Djlens.root}, then the working directory and its parents. */
    static List<Path> scriptPlaces(String script) {
        List<Path> tried = new ArrayList<>();
        String root = System.getProperty("jlens.root");
        if (root != null) tried.add(Path.of(root).resolve(script));
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) tried.add(d.resolve(script));
        return tried;
    }

    /** The first of {@link #scriptPlaces} that exists, or null. */
    static Path findScript(String script) {
        return scriptPlaces(script).stream().filter(Files::isRegularFile).findFirst().orElse(null);
    }

    /** The Pythons to try for a baseline, in order: {@code $JLENS_PYTHON}, {@code python3}, {@code /usr/bin/python3}. */
    static List<String> pythonCandidates() {
        List<String> candidates = new ArrayList<>();
        String env = System.getenv("JLENS_PYTHON");
        if (env != null && !env.isBlank()) candidates.add(env);
        candidates.add("python3");
        candidates.add("/usr/bin/python3");   // Debian's, where python3-torch installs; may differ from PATH's
        return candidates;
    }

    /** The last 2000 characters of a subprocess's output. */
    static String tail(String s) {
        return s.length() <= 2000 ? s : "..." + s.substring(s.length() - 2000);
    }
}
