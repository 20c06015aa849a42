package dev.jlens.cli;

import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;
import dev.jlens.zoo.Manifest;
import dev.jlens.zoo.Zoo;
import dev.jlens.zoo.recipes.Recipe;
import dev.jlens.zoo.recipes.ZooTrainer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.model.HookedTransformer;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalInt;
import java.util.stream.Stream;

/**
 * {@code ./lab zoo ...}: list the zoo, train a model, re-evaluate one.
 *
 * <pre>
 * ./lab zoo list
 * ./lab zoo train NAME [--fresh] [--threads N] [--steps N] [--eval-examples N]
 * ./lab zoo eval NAME [--examples N]
 * </pre>
 */
public final class ZooCli {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ZooCli() {}

    /** Runs {@code java dev.jlens.zoo.ZooCli ARGS} (the same as {@code ./lab zoo ARGS}). */
    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs a zoo subcommand; returns the exit status: 0 ok, 1 an error or a missed bar, 2 a bad command line. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || List.of("help", "-h", "--help").contains(args[0])) {
            usage(args.length == 0 ? err : out);
            return args.length == 0 ? 2 : 0;
        }
        try {
            return switch (args[0]) {
                case "list" -> list(out);
                case "train" -> train(rest(args), out);
                case "eval" -> eval(rest(args), out);
                default -> {
                    err.println("zoo: unknown command '" + args[0] + "'");
                    usage(err);
                    yield 2;
                }
            };
        } catch (UsageException e) {
            err.println("zoo: " + e.getMessage());
            usage(err);
            return 2;
        } catch (RuntimeException e) {
            err.println("zoo: " + e.getMessage());
            return 1;
        }
    }

    private static void usage(PrintStream s) {
        s.println("usage: ./lab zoo list");
        s.println("       ./lab zoo train NAME [--fresh] [--threads N] [--steps N] [--eval-examples N]");
        s.println("       ./lab zoo eval NAME [--examples N]");
        s.println();
        s.println("  list    the zoo's models: trained or not, size, their bars and manifest numbers");
        s.println("  train   trains NAME into data/models/NAME (checkpoints in build/zoo/NAME; a stopped run");
        s.println("          resumes from its newest checkpoint, --fresh starts over). --threads sets PyTorch's");
        s.println("          intra-op threads; --steps N is a trial run written to build/zoo/NAME-steps-N/model");
        s.println("  eval    re-evaluates NAME on its test split; prints one JSON line per metric (with the");
        s.println("          manifest's value) and per bar; exit status 1 if a bar is missed");
        s.println();
        s.println("models: " + String.join(", ", Zoo.names()));
    }

    private static String[] rest(String[] args) {
        String[] r = new String[args.length - 1];
        System.arraycopy(args, 1, r, 0, r.length);
        return r;
    }

    /** Parsed NAME and --flags. */
    private record Args(String name, boolean fresh, OptionalInt threads, OptionalInt steps, OptionalInt examples) {}

    private static Args parse(String[] args, List<String> allowed) {
        String name = null;
        boolean fresh = false;
        OptionalInt threads = OptionalInt.empty(), steps = OptionalInt.empty(), examples = OptionalInt.empty();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("--") && !allowed.contains(a)) {
                throw new UsageException("unknown option " + a + "; valid here: " + allowed);
            }
            switch (a) {
                case "--fresh" -> fresh = true;
                case "--threads" -> threads = OptionalInt.of(positive(args, ++i, a));
                case "--steps" -> steps = OptionalInt.of(positive(args, ++i, a));
                case "--eval-examples", "--examples" -> examples = OptionalInt.of(positive(args, ++i, a));
                default -> {
                    if (name != null) throw new UsageException("one model name expected, got '" + name + "' and '" + a + "'");
                    name = a;
                }
            }
        }
        if (name == null) throw new UsageException("which model? one of " + Zoo.names());
        try {
            Recipe.of(name);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        return new Args(name, fresh, threads, steps, examples);
    }

    private static int positive(String[] args, int i, String flag) {
        if (i >= args.length) throw new UsageException(flag + " needs a number");
        try {
            int v = Integer.parseInt(args[i]);
            if (v < 1) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " needs a positive whole number, got '" + args[i] + "'");
        }
    }

    private static int list(PrintStream out) {
        Path root = Zoo.root();
        out.printf(Locale.ROOT, "%-14s %-9s %8s %8s  %s%n", "model", "status", "size", "trained", "numbers (bars)");
        for (Recipe r : Recipe.all()) {
            Path dir = Zoo.dir(r.name(), root);
            if (!Zoo.complete(dir)) {
                out.printf(Locale.ROOT, "%-14s %-9s %8s %8s  %s%n", r.name(), "missing", "-", "-",
                        "train with " + Zoo.trainCommand(r.name()));
                continue;
            }
            Manifest m = Zoo.manifest(r.name(), root);
            List<String> nums = new ArrayList<>();
            for (Bar b : m.bars()) {
                nums.add(b.metric() + "=" + Evaluation.format(m.metrics().getOrDefault(b.metric(), Double.NaN))
                        + " (" + (b.direction() == Bar.Direction.AT_LEAST ? ">=" : "<=") + Evaluation.format(b.threshold())
                        + ")");
            }
            out.printf(Locale.ROOT, "%-14s %-9s %6.1fMB %6.1fmin  %s%n", r.name(), m.barsMet() ? "ok" : "MISSES",
                    size(dir) / 1e6, m.wallSeconds() / 60, String.join(", ", nums));
            out.printf(Locale.ROOT, "%-14s %s%n", "", r.summary());
        }
        return 0;
    }

    private static long size(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.mapToLong(p -> {
                try {
                    return Files.size(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }).sum();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
    }

    private static int train(String[] args, PrintStream out) {
        Args a = parse(args, List.of("--fresh", "--threads", "--steps", "--eval-examples"));
        if (a.threads().isPresent()) {
            // read when the engine starts, i.e. before the first array of this JVM
            System.setProperty("ai.djl.pytorch.num_threads", String.valueOf(a.threads().getAsInt()));
            System.setProperty("ai.djl.pytorch.num_interop_threads", String.valueOf(a.threads().getAsInt()));
        }
        Manifest m = ZooTrainer.train(Recipe.of(a.name()), Zoo.root(),
                new ZooTrainer.Options(a.fresh(), a.steps(), a.examples()), out);
        out.println(m.toJson().toString());
        return m.barsMet() ? 0 : 1;
    }

    private static int eval(String[] args, PrintStream out) {
        Args a = parse(args, List.of("--examples"));
        Recipe r = Recipe.of(a.name());
        Path root = Zoo.root();
        Manifest m = Zoo.manifest(a.name(), root);
        Evaluation ev;
        try (HookedTransformer model = Zoo.load(a.name(), root)) {
            ev = r.evaluate(model, a.examples().orElse(m.evaluation().examples()));
        }
        for (var e : ev.metrics().entrySet()) {
            ObjectNode line = JSON.createObjectNode().put("model", a.name()).put("metric", e.getKey());
            putNumber(line, "value", e.getValue());
            Double recorded = m.metrics().get(e.getKey());
            if (recorded == null) line.putNull("manifest"); else putNumber(line, "manifest", recorded);
            line.put("examples", ev.examples()).put("split", "test");
            out.println(line);
        }
        boolean all = true;
        for (Bar b : r.bars()) {
            boolean met = b.met(ev.metrics());
            all &= met;
            out.println(JSON.createObjectNode().put("model", a.name()).put("bar", b.toString()).put("met", met));
        }
        out.println(JSON.createObjectNode().put("model", a.name()).put("bars_met", all)
                .put("seconds", Math.round(ev.seconds() * 10) / 10.0));
        return all ? 0 : 1;
    }

    private static void putNumber(ObjectNode o, String field, double v) {
        if (Double.isFinite(v)) o.put(field, Math.round(v * 1e6) / 1e6); else o.putNull(field);
    }

    /** A bad command line (exit status 2, with usage). */
    private static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }
}
