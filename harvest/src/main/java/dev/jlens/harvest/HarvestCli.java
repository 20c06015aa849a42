package dev.jlens.harvest;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code ./lab harvest} and the {@code spark-submit} main class: harvests one hook's activations over pretokenized
 * token shards into an activation cache. Prints one JSON line (rows, shards, seconds, rates) to stdout. Bad arguments
 * exit with 2 and a message naming the valid choices; a failure while running exits with 1.
 */
public final class HarvestCli {
    static final int OK = 0, FAILED = 1, USAGE = 2;
    static final int DEFAULT_NORM_SAMPLES = 1 << 14;

    static final String USAGE_TEXT = """
            usage: harvest --model DIR --tokens DIR --hook NAME --out DIR [--master URL] [--partitions N]
                           [--windows-per-batch N] [--rows N] [--rows-per-shard N] [--keep-bos] [--norm-samples N]
              Runs the model in DIR (config.json, model.safetensors) over the token shards in --tokens
              (./lab pretokenize) as a Spark job and writes the activations at hook NAME
              (e.g. blocks.1.hook_resid_post) into the new activation cache --out: the shards and manifest.json
              that ActivationStore.open(dir) and the SAE trainer read, byte for byte what store.cache(dir, rows)
              writes in one process.
              --master          Spark master (default local[*]; spark-submit's --master when run by it)
              --partitions      Spark tasks (default twice Spark's default parallelism; at most one per shard)
              --windows-per-batch  token windows per forward pass (default 8)
              --rows            rows to harvest (default every row of the tokens)
              --rows-per-shard  rows per cache shard (default about 64 MiB per shard)
              --keep-bos        keep each window's first token (default: excluded, as the store excludes it)
              --norm-samples    rows the normalisation scale is estimated from (default 16384, or --rows if
                                fewer: more than the cache holds makes the driver run the model on them)
              --model, --tokens and --out must be paths that the driver and every executor see.
            """;

    private HarvestCli() {}

    /** Runs and exits with the code. */
    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Parses, checks and runs; returns the exit code. */
    static int run(String[] args, PrintStream out, PrintStream err) {
        Harvest.Request request;
        String master;
        try {
            Map<String, String> a = parse(args);
            if (a.containsKey("help")) {
                out.print(USAGE_TEXT);
                return OK;
            }
            long rows = longOf(a, "rows", 0);
            // A scale from more rows than the cache holds would make the driver run the model on them again.
            int normDefault = rows > 0 ? (int) Math.min(DEFAULT_NORM_SAMPLES, rows) : DEFAULT_NORM_SAMPLES;
            request = new Harvest.Request(Path.of(required(a, "model")), Path.of(required(a, "tokens")),
                    required(a, "hook"), Path.of(required(a, "out")), intOf(a, "windows-per-batch", 8), rows,
                    intOf(a, "rows-per-shard", 0), intOf(a, "partitions", 0), !a.containsKey("keep-bos"),
                    intOf(a, "norm-samples", normDefault));
            master = a.get("master");
            request.check();
        } catch (RuntimeException e) {
            err.println("harvest: " + e.getMessage());
            err.println("(harvest --help for the options)");
            return USAGE;
        }
        SparkConf conf = new SparkConf().setAppName("jlens-harvest");
        if (master != null) conf.setMaster(master);
        conf.setIfMissing("spark.master", "local[*]");
        conf.setIfMissing("spark.ui.enabled", "false");
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            sc.setLogLevel("WARN");
            Harvest.Report report = Harvest.run(sc, request);
            err.println("harvest: " + report);
            out.println(new ObjectMapper().writeValueAsString(report.toMap()));
            return OK;
        } catch (Exception e) {
            // A task's exception arrives wrapped by Spark; its root cause says what went wrong.
            Throwable root = e;
            while (root.getCause() != null && root.getCause() != root) root = root.getCause();
            err.println("harvest: failed: " + root);
            if (System.getenv("JLENS_HARVEST_TRACE") != null) {
                e.printStackTrace(err);
            } else {
                err.println("(JLENS_HARVEST_TRACE=1 prints the whole stack trace)");
            }
            return FAILED;
        }
    }

    private static final List<String> FLAGS = List.of("model", "tokens", "hook", "out", "master", "partitions",
            "windows-per-batch", "rows", "rows-per-shard", "norm-samples");
    private static final List<String> SWITCHES = List.of("keep-bos", "help");

    private static Map<String, String> parse(String[] args) {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("-h")) arg = "--help";
            if (!arg.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + arg + "'; options are --" + String.join(", --", FLAGS)
                        + ", --" + String.join(", --", SWITCHES));
            }
            String name = arg.substring(2), value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (SWITCHES.contains(name)) {
                a.put(name, "true");
            } else if (FLAGS.contains(name)) {
                if (value == null) {
                    if (i + 1 >= args.length) throw new IllegalArgumentException("--" + name + " needs a value");
                    value = args[++i];
                }
                a.put(name, value);
            } else {
                throw new IllegalArgumentException("unknown option --" + name + "; options are --"
                        + String.join(", --", FLAGS) + ", --" + String.join(", --", SWITCHES));
            }
        }
        return a;
    }

    private static String required(Map<String, String> a, String name) {
        String v = a.get(name);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException("--" + name + " is required (--model DIR --tokens DIR --hook NAME --out DIR)");
        }
        return v;
    }

    private static int intOf(Map<String, String> a, String name, int dflt) {
        long v = longOf(a, name, dflt);
        if (v > Integer.MAX_VALUE) throw new IllegalArgumentException("--" + name + " " + v + " is too large");
        return (int) v;
    }

    private static long longOf(Map<String, String> a, String name, long dflt) {
        String v = a.get(name);
        if (v == null) return dflt;
        try {
            return Long.parseLong(v.replace("_", ""));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " needs a whole number, got '" + v + "'");
        }
    }
}
