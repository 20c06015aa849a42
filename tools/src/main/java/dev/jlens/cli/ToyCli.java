package dev.jlens.cli;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.toy.ToyModel;
import dev.jlens.toy.ToyResult;
import dev.jlens.toy.ToySuperposition;
import dev.jlens.toy.ToySuperposition.Config;
import dev.jlens.toy.ToySuperposition.Training;
import dev.jlens.train.TerminalProgress;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code lab toy superposition}: trains K instances of the toy model of Toy Models of Superposition with one setting
 * (different initialisations and data from the seed) and prints the lowest-loss instance as exactly one JSON line on
 * standard output; progress goes to standard error. The flags and the line are a contract read by checks outside
 * the project:
 * <pre>
 * lab toy superposition --features N --dims M --sparsity S --importance-decay D --instances K --seed X
 *     [--steps N] [--batch B] [--lr LR] [--correlation independent|correlated|anticorrelated]
 * {"W": [[...], ...] (M rows of N), "b": [...] (N), "loss": ...}
 * </pre>
 * Feature i has importance {@code D^i}; each feature is zero with probability S, otherwise uniform in [0, 1]; the
 * loss is the importance-weighted squared error averaged over a fresh evaluation batch.
 */
final class ToyCli {
    /** Defaults that reach the paper's solutions on up to 20 features (its 10,000 steps at 1e-3 take longer). */
    static final int DEFAULT_STEPS = 5000;
    static final double DEFAULT_LR = 5e-3;
    static final int DEFAULT_BATCH = 1024;

    private static final Set<String> SUBCOMMANDS = Set.of("superposition");

    private ToyCli() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        if (argv.length == 0 || !SUBCOMMANDS.contains(argv[0])) {
            throw new Args.UsageException("toy: " + (argv.length == 0 ? "name a toy model" : "unknown toy model '"
                    + argv[0] + "'") + "; valid: superposition (lab toy superposition --features N --dims M "
                    + "--sparsity S --importance-decay D --instances K --seed X)");
        }
        Args a = Args.parse("toy superposition", Arrays.copyOfRange(argv, 1, argv.length),
                Set.of("features", "dims", "sparsity", "importance-decay", "instances", "seed", "steps", "batch", "lr",
                        "correlation"),
                Set.of());
        if (!a.positional().isEmpty()) throw a.usage("unexpected argument '" + a.positional().get(0) + "'");
        int features = a.requireInt("features", 1, 100_000);
        int dims = a.requireInt("dims", 1, 100_000);
        double sparsity = requireDouble(a, "sparsity");
        if (!(sparsity >= 0 && sparsity < 1)) {
            throw a.usage("--sparsity is the probability that a feature is zero and must be in [0, 1), got "
                    + a.get("sparsity").orElseThrow());
        }
        double decay = requireDouble(a, "importance-decay");
        if (!(decay > 0) || Double.isInfinite(decay)) {
            throw a.usage("--importance-decay must be finite and > 0 (feature i has importance D^i), got "
                    + a.get("importance-decay").orElseThrow());
        }
        int instances = a.intOpt("instances", 1, 1, 100_000);
        long seed = a.longOpt("seed", 0);
        int steps = a.intOpt("steps", DEFAULT_STEPS, 1, 100_000_000);
        int batch = a.intOpt("batch", DEFAULT_BATCH, 1, 1 << 24);
        double lr = a.doubleOpt("lr", DEFAULT_LR, Double.MIN_VALUE, 1e3);
        ToySuperposition.Correlation correlation = a.get("correlation").map(c -> correlation(a, c))
                .orElse(ToySuperposition.Correlation.INDEPENDENT);
        Config config;
        try {
            config = Config.of(features, dims, sparsity, decay).withCorrelation(correlation);
        } catch (IllegalArgumentException e) {
            throw a.usage(e.getMessage());
        }
        Training training = Training.defaults().withSteps(steps).withBatchSize(batch).withLr(lr).withSeed(seed);
        long t0 = System.nanoTime();
        ToyResult r = ToySuperposition.train(training, Arrays.asList(ToySuperposition.repeat(config, instances)),
                new TerminalProgress(err));
        ToyModel best = r.best();
        err.printf(Locale.ROOT, "toy superposition: %d instance%s in %.1f s; best #%d: %s%n", instances,
                instances == 1 ? "" : "s", (System.nanoTime() - t0) / 1e9, best.index(), best);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("W", best.w());
        json.put("b", best.b());
        json.put("loss", best.loss());
        try {
            ObjectMapper mapper = new ObjectMapper().configure(JsonGenerator.Feature.AUTO_CLOSE_TARGET, false);
            out.println(mapper.writeValueAsString(json));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Lab.OK;
    }

    private static double requireDouble(Args a, String name) {
        String v = a.require(name);
        try {
            return Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw a.usage("--" + name + " must be a number, got '" + v + "'");
        }
    }

    private static ToySuperposition.Correlation correlation(Args a, String v) {
        try {
            return ToySuperposition.Correlation.valueOf(v.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw a.usage("--correlation must be independent, correlated or anticorrelated, got '" + v + "'");
        }
    }
}
