package dev.jlens.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code lab bench compare}: two saved bench runs side by side, so that a regression shows.
 *
 * <p>A saved run ({@code lab bench NAME --save}) is a JSON-lines file under {@code bench/results/}: a header line
 * ({@code "record": "header"}, with the bench name, arguments, time, commit and machine) and the bench's own
 * lines. Records of the two runs are matched on their identifying fields ({@link #KEY_FIELDS}: bench, metric and
 * whichever of batch, threads, shape, ... the record has). Each matched pair's {@code value} is compared when its
 * unit says which way is better: a time (ns, us, ms, s) is better lower, a rate (any unit with "/s") higher; other
 * units (MB, a difference, a load average) are shown but not judged. A timing worse by more than the threshold
 * (default 10%) is a regression, and the exit code is then {@link #REGRESSED}.
 */
public final class BenchCompare {

    /** Exit code when at least one record regressed beyond the threshold. */
    public static final int REGRESSED = 3;
    static final int OK = 0;
    static final int USAGE = 2;
    static final double DEFAULT_THRESHOLD_PCT = 10;

    /** The fields that name a record (the rest are measurements or notes), in the order they are shown. */
    static final List<String> KEY_FIELDS = List.of("bench", "metric", "name", "model", "shape", "site", "batch",
            "seq", "threads", "torch_threads", "python_threads", "chunk", "lines");

    private static final ObjectMapper JSON = new ObjectMapper();

    /** How a record's value is judged. */
    enum Direction { LOWER_IS_BETTER, HIGHER_IS_BETTER, NOT_JUDGED }

    /** One saved run: its header (may be empty) and its records by key, in file order. */
    record Run(Path file, JsonNode header, Map<String, JsonNode> records) {}

    /** One row of the comparison. */
    record Row(String key, String unit, Double a, Double b, Direction direction, String verdict) {}

    private BenchCompare() {}

    /**
     * {@code compare [--dir DIR] [--threshold PCT] (A.jsonl B.jsonl | NAME)}: prints the table and a verdict;
     * returns 0, {@link #REGRESSED}, or 2 for bad arguments or unreadable runs.
     */
    public static int run(String[] argv, PrintStream out, PrintStream err) {
        Path dir = defaultDir();
        double threshold = DEFAULT_THRESHOLD_PCT;
        List<String> names = new ArrayList<>();
        try {
            for (int i = 0; i < argv.length; i++) {
                switch (argv[i]) {
                    case "--dir" -> dir = Path.of(value(argv, ++i, "--dir"));
                    case "--threshold" -> {
                        threshold = Double.parseDouble(value(argv, ++i, "--threshold").replace("%", ""));
                        if (!(threshold >= 0)) {
                            throw new IllegalArgumentException("--threshold must be a percentage >= 0");
                        }
                    }
                    default -> {
                        if (argv[i].startsWith("--")) {
                            throw new IllegalArgumentException("unknown option " + argv[i]
                                    + "; valid options: --dir, --threshold");
                        }
                        names.add(argv[i]);
                    }
                }
            }
            Path a;
            Path b;
            if (names.size() == 2) {
                a = Path.of(names.get(0));
                b = Path.of(names.get(1));
            } else if (names.size() == 1) {
                List<Path> runs = savedRuns(dir, names.get(0));
                if (runs.size() < 2) {
                    throw new IllegalArgumentException("need two saved runs of '" + names.get(0) + "' in " + dir
                            + ", found " + runs.size() + " (run ./lab bench " + names.get(0) + " --save)");
                }
                a = runs.get(runs.size() - 2);
                b = runs.get(runs.size() - 1);
            } else {
                throw new IllegalArgumentException(
                        "usage: bench compare [--threshold PCT] (A.jsonl B.jsonl | NAME)");
            }
            return compare(read(a), read(b), threshold, out);
        } catch (IllegalArgumentException | UncheckedIOException e) {
            err.println("bench compare: " + e.getMessage());
            return USAGE;
        }
    }

    private static String value(String[] argv, int i, String option) {
        if (i >= argv.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return argv[i];
    }

    /** {@code $jlens.root/bench/results}, else {@code bench/results} under the working directory. */
    static Path defaultDir() {
        String root = System.getProperty("jlens.root");
        return (root != null ? Path.of(root) : Path.of("")).resolve("bench/results");
    }

    /** The saved runs of bench {@code name} in {@code dir} (by their header), oldest first. */
    static List<Path> savedRuns(Path dir, String name) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".jsonl"))
                    .filter(p -> name.equals(read(p).header().path("name").asText(null)))
                    .sorted() // names start with the UTC time, so this is oldest first
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Reads a saved run; lines that are not JSON objects (a bench's stray output) are skipped. */
    static Run read(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
        JsonNode header = JSON.createObjectNode();
        Map<String, JsonNode> records = new LinkedHashMap<>();
        for (String line : lines) {
            JsonNode node;
            try {
                node = line.isBlank() ? null : JSON.readTree(line);
            } catch (IOException e) {
                node = null;
            }
            if (node == null || !node.isObject()) {
                continue;
            }
            if ("header".equals(node.path("record").asText())) {
                header = node;
                continue;
            }
            String key = key(node);
            String unique = key;
            for (int n = 2; records.containsKey(unique); n++) {
                unique = key + " #" + n; // the same record twice in one run: match by occurrence
            }
            records.put(unique, node);
        }
        return new Run(file, header, records);
    }

    /** The record's identifying fields, e.g. {@code model forward_djl_threads batch=1 threads=2}. */
    static String key(JsonNode record) {
        StringBuilder sb = new StringBuilder();
        for (String field : KEY_FIELDS) {
            JsonNode v = record.get(field);
            if (v == null || v.isNull() || v.isContainerNode()) {
                continue;
            }
            if (!sb.isEmpty()) {
                sb.append(' ');
            }
            sb.append(field.equals("bench") || field.equals("metric") ? "" : field + "=").append(v.asText());
        }
        return sb.toString();
    }

    /** Which way is better for a value in {@code unit}. */
    static Direction direction(String unit) {
        String u = unit == null ? "" : unit.toLowerCase(Locale.ROOT);
        if (u.contains("/s")) {
            return Direction.HIGHER_IS_BETTER;
        }
        return switch (u) {
            case "ns", "us", "µs", "ms", "s" -> Direction.LOWER_IS_BETTER;
            default -> Direction.NOT_JUDGED;
        };
    }

    /** The rows of the comparison of {@code a} (before) and {@code b} (after). */
    static List<Row> rows(Run a, Run b, double thresholdPct) {
        List<Row> rows = new ArrayList<>();
        for (Map.Entry<String, JsonNode> e : a.records().entrySet()) {
            JsonNode ra = e.getValue();
            JsonNode rb = b.records().get(e.getKey());
            String unit = ra.path("unit").asText("");
            Double va = number(ra.get("value"));
            if (rb == null) {
                rows.add(new Row(e.getKey(), unit, va, null, direction(unit), "only in A"));
                continue;
            }
            Double vb = number(rb.get("value"));
            Direction d = direction(unit);
            rows.add(new Row(e.getKey(), unit, va, vb, d, verdict(va, vb, d, thresholdPct)));
        }
        for (Map.Entry<String, JsonNode> e : b.records().entrySet()) {
            if (!a.records().containsKey(e.getKey())) {
                String unit = e.getValue().path("unit").asText("");
                rows.add(new Row(e.getKey(), unit, null, number(e.getValue().get("value")), direction(unit),
                        "only in B"));
            }
        }
        return rows;
    }

    private static Double number(JsonNode v) {
        return v != null && v.isNumber() ? v.asDouble() : null;
    }

    /** Change of {@code b} against {@code a} in percent, or null where it is not defined. */
    static Double changePct(Double a, Double b) {
        return a == null || b == null || a == 0 ? null : (b - a) / Math.abs(a) * 100;
    }

    private static String verdict(Double a, Double b, Direction d, double thresholdPct) {
        Double change = changePct(a, b);
        if (d == Direction.NOT_JUDGED || change == null) {
            return "";
        }
        double worse = d == Direction.LOWER_IS_BETTER ? change : -change;
        if (worse > thresholdPct) {
            return "REGRESSED";
        }
        return worse < -thresholdPct ? "improved" : "same";
    }

    /** Prints the table and the verdict; returns {@link #REGRESSED} if any row regressed, else 0. */
    static int compare(Run a, Run b, double thresholdPct, PrintStream out) {
        List<Row> rows = rows(a, b, thresholdPct);
        out.println("A: " + describe(a));
        out.println("B: " + describe(b));
        int keyWidth = Math.max(6, rows.stream().mapToInt(r -> r.key().length()).max().orElse(0));
        String format = "%-" + keyWidth + "s  %-8s %12s %12s %9s  %s%n";
        out.printf(format, "record", "unit", "A", "B", "change", "");
        int regressed = 0;
        int improved = 0;
        int same = 0;
        int notJudged = 0;
        int missing = 0;
        for (Row r : rows) {
            Double change = changePct(r.a(), r.b());
            out.printf(format, r.key(), r.unit(), show(r.a()), show(r.b()),
                    change == null ? "" : String.format(Locale.ROOT, "%+.1f%%", change), r.verdict());
            switch (r.verdict()) {
                case "REGRESSED" -> regressed++;
                case "improved" -> improved++;
                case "same" -> same++;
                case "only in A", "only in B" -> missing++;
                default -> notJudged++;
            }
        }
        String threshold = String.format(Locale.ROOT, "%.4g%%", thresholdPct).replaceAll("\\.?0+%$", "%");
        out.printf("verdict: %s (threshold %s): %d regressed, %d improved, %d within the threshold, "
                        + "%d not timings, %d in one run only%n",
                regressed > 0 ? "REGRESSION" : "no regression", threshold, regressed, improved, same, notJudged,
                missing);
        return regressed > 0 ? REGRESSED : OK;
    }

    private static String show(Double v) {
        return v == null ? "-" : String.format(Locale.ROOT, "%.5g", v);
    }

    private static String describe(Run run) {
        JsonNode h = run.header();
        StringBuilder sb = new StringBuilder(run.file().toString());
        List<String> facts = new ArrayList<>();
        for (String f : List.of("timestamp", "commit", "cores", "java", "host")) {
            JsonNode v = h.get(f);
            if (v != null && !v.isNull() && !v.asText().isEmpty()) {
                facts.add(f + " " + v.asText() + (f.equals("commit") && h.path("dirty").asBoolean() ? "+dirty" : ""));
            }
        }
        if (!facts.isEmpty()) {
            sb.append(" (").append(String.join(", ", facts)).append(')');
        }
        return sb.toString();
    }
}
