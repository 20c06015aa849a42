package dev.jlens.zoo;

import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The project's own tiny trained models, in {@code data/models/NAME/} (Hugging Face layout plus a
 * {@code manifest.json} saying how each was trained and what it scores): {@code Zoo.load("attn-only-2l")}.
 *
 * <pre>{@code
 * HookedTransformer model = Zoo.load("attn-only-2l");   // induction heads in layer 1
 * Zoo.manifest("attn-only-2l").metrics();               // {induction_score_l1_max=0.93, ...}
 * Zoo.table();                                         // every model: size, task, trained or not, bars
 * }</pre>
 *
 * <p>Each model is trained by its recipe with {@code ./lab zoo train NAME} and re-checked with
 * {@code ./lab zoo eval NAME} (the recipes are part of the command-line tools); the project root (the folder
 * holding {@code lab} and {@code data/}) is the system property {@code jlens.root} when set, else found by walking
 * up from the working directory.
 */
public final class Zoo {

    /** System property naming the project root. */
    public static final String ROOT_PROPERTY = "jlens.root";
    /** The manifest's file name in a model directory. */
    public static final String MANIFEST = "manifest.json";
    /** The folder of a model's LoRA adapter, when it was trained as one (see {@link #adapter}). */
    public static final String ADAPTER_DIR = "adapter";

    /**
     * One model of the zoo: its name (also its directory under {@code data/models}), the zoo model it is finetuned
     * from, if any, and roughly how long its recipe trains on 2 CPU cores (for messages).
     */
    public record Entry(String name, Optional<String> base, int expectedMinutes) {}

    /** The zoo, in build order: a model's base comes before it. Each entry has a recipe in the tools. */
    private static final List<Entry> CATALOGUE = List.of(
            new Entry("attn-only-2l", Optional.empty(), 5),
            new Entry("tinylang-4l", Optional.empty(), 15),
            new Entry("thinker", Optional.empty(), 30),
            new Entry("thinker-ft", Optional.of("thinker"), 10),
            new Entry("thinker-ctl", Optional.of("thinker"), 10),
            new Entry("thinker-lora", Optional.of("thinker"), 10),
            new Entry("cyclic-2l", Optional.empty(), 7),
            new Entry("thinker-decorative", Optional.of("thinker"), 25),
            new Entry("thinker-monitored", Optional.of("thinker-ft"), 25),
            new Entry("chat-users", Optional.empty(), 6),
            new Entry("deceiver", Optional.empty(), 6));

    private Zoo() {}

    /** The zoo's model names, in the order they are built (a later one may start from an earlier one). */
    public static List<String> names() {
        return CATALOGUE.stream().map(Entry::name).toList();
    }

    /** The zoo's models, in build order. */
    public static List<Entry> entries() {
        return CATALOGUE;
    }

    /** The catalogue entry of the model {@code name}; throws naming the zoo's models. */
    public static Entry entry(String name) {
        for (Entry e : CATALOGUE) {
            if (e.name().equals(name)) return e;
        }
        throw new IllegalArgumentException("no zoo model named '" + name + "'; the zoo has " + names());
    }

    /** Loads the zoo model {@code name} from {@code data/models/NAME} (weights, config and tokenizer). */
    public static HookedTransformer load(String name) {
        return load(name, root());
    }

    /** As {@link #load(String)}, from the project rooted at {@code root}. */
    public static HookedTransformer load(String name, Path root) {
        return HookedTransformer.load(requireDir(name, root));
    }

    /**
     * The LoRA adapter of the zoo model {@code name}, in PEFT's layout ({@code data/models/NAME/adapter}), for a model
     * trained as an adapter on its base ({@code thinker-lora}); empty for a model whose every weight was trained.
     * {@code Lora.load(Zoo.load("thinker"), Zoo.adapter("thinker-lora").orElseThrow())} is the same model as
     * {@code Zoo.load("thinker-lora")} (which holds the adapter merged), kept apart.
     */
    public static Optional<Path> adapter(String name) {
        Path a = requireDir(name, root()).resolve(ADAPTER_DIR);
        return Files.isDirectory(a) ? Optional.of(a) : Optional.empty();
    }

    /** The manifest of the zoo model {@code name}: training run, final losses and evaluation numbers. */
    public static Manifest manifest(String name) {
        return manifest(name, root());
    }

    /** As {@link #manifest(String)}, from the project rooted at {@code root}. */
    public static Manifest manifest(String name, Path root) {
        return Manifest.read(requireDir(name, root).resolve(MANIFEST));
    }

    /**
     * Every zoo model, one row each in build order: its family and size (from its {@code config.json}), parameter
     * count, task and one-line summary, the model it is finetuned from, whether it is trained (a complete model on
     * disk) and how many of its bars its recorded evaluation meets. A model not trained yet has its size columns
     * missing and the command that trains it as its summary.
     */
    public static Table table() {
        return table(root());
    }

    /** As {@link #table()}, for the project rooted at {@code root}. */
    public static Table table(Path root) {
        StringColumn name = StringColumn.create("name");
        StringColumn family = StringColumn.create("family");
        IntColumn layers = IntColumn.create("layers");
        IntColumn dModel = IntColumn.create("d_model");
        IntColumn heads = IntColumn.create("heads");
        IntColumn vocab = IntColumn.create("vocab");
        LongColumn params = LongColumn.create("params");
        StringColumn task = StringColumn.create("task");
        StringColumn base = StringColumn.create("base");
        BooleanColumn trained = BooleanColumn.create("trained");
        StringColumn bars = StringColumn.create("bars");
        StringColumn summary = StringColumn.create("summary");
        for (Entry e : CATALOGUE) {
            Path d = dir(e.name(), root);
            boolean complete = complete(d);
            name.append(e.name());
            base.append(e.base().orElse(""));
            trained.append(complete);
            ModelConfig cfg = null;
            String problem = null;
            if (Files.isRegularFile(d.resolve("config.json"))) {
                try {
                    cfg = ModelConfig.load(d);
                } catch (IllegalArgumentException | UncheckedIOException ex) {
                    problem = "config.json unreadable: " + ex.getMessage();
                }
            }
            Manifest m = null;
            if (Files.isRegularFile(d.resolve(MANIFEST))) {
                try {
                    m = Manifest.read(d.resolve(MANIFEST));
                } catch (IllegalArgumentException | UncheckedIOException ex) {
                    problem = MANIFEST + " unreadable: " + ex.getMessage();
                }
            }
            if (cfg != null) {
                family.append(cfg.modelType() + (cfg.attnOnly() ? " attn-only" : ""));
                layers.append(cfg.nLayers());
                dModel.append(cfg.dModel());
                heads.append(cfg.nHeads());
                vocab.append(cfg.dVocab());
            } else {
                family.appendMissing();
                layers.appendMissing();
                dModel.appendMissing();
                heads.appendMissing();
                vocab.appendMissing();
            }
            if (m != null && m.parameters() > 0) params.append(m.parameters());
            else if (cfg != null) params.append(cfg.parameterCount());
            else params.appendMissing();
            task.append(m == null ? "" : m.task());
            bars.append(m == null ? "" : barsText(m));
            summary.append(problem != null ? problem : !complete ? "not trained: " + trainCommand(e.name())
                    : m.summary());
        }
        return Table.create("zoo", name, family, layers, dModel, heads, vocab, params, task, base, trained, bars,
                summary);
    }

    /**
     * How the recorded evaluation fares against the manifest's bars: {@code 4/4 met}, or the missed ones with their
     * values ({@code 1/2 met; missed cot_accuracy 0.91 >= 0.95}). {@code Zoo.manifest(name).table()} has every number.
     */
    private static String barsText(Manifest m) {
        if (m.bars().isEmpty()) return "none";
        List<String> missed = new ArrayList<>();
        for (Bar b : m.bars()) {
            if (b.met(m.metrics())) continue;
            Double v = m.metrics().get(b.metric());
            missed.add(b.metric() + " " + (v == null ? "(not recorded)" : Evaluation.format(v)) + " "
                    + (b.direction() == Bar.Direction.AT_LEAST ? ">=" : "<=") + " " + Evaluation.format(b.threshold()));
        }
        String met = (m.bars().size() - missed.size()) + "/" + m.bars().size() + " met";
        return missed.isEmpty() ? met : met + "; missed " + String.join(", ", missed);
    }

    /** True if {@code data/models/NAME} holds a complete model. */
    public static boolean exists(String name) {
        return complete(dir(name, root()));
    }

    /** The directory of the zoo model {@code name} (whether or not it has been trained). */
    public static Path dir(String name) {
        return dir(name, root());
    }

    /** The directory of the zoo model {@code name} under the project rooted at {@code root}. */
    public static Path dir(String name, Path root) {
        entry(name);
        return modelsDir(root).resolve(name);
    }

    /** {@code data/models} under the project root. */
    public static Path modelsDir() {
        return modelsDir(root());
    }

    static Path modelsDir(Path root) {
        return root.resolve("data").resolve("models");
    }

    /** The command that trains {@code name}, and roughly how long it takes here. */
    public static String trainCommand(String name) {
        Entry e = entry(name);
        return "./lab zoo train " + name + " (about " + e.expectedMinutes() + " min on 2 CPU cores"
                + e.base().map(b -> ", after " + b).orElse("") + ")";
    }

    /**
     * The project root: the system property {@code jlens.root} if set, else the nearest folder at or above the
     * working directory that holds both the {@code lab} script and a {@code data/} folder.
     */
    public static Path root() {
        String prop = System.getProperty(ROOT_PROPERTY);
        if (prop != null && !prop.isBlank()) {
            Path p = Path.of(prop).toAbsolutePath().normalize();
            if (!Files.isDirectory(p)) {
                throw new IllegalStateException("-D" + ROOT_PROPERTY + "=" + prop + " is not a directory; point it at "
                        + "the JLens checkout (the folder holding lab and data/)");
            }
            return p;
        }
        return findRoot(Path.of(System.getProperty("user.dir")));
    }

    /** The nearest folder at or above {@code from} holding the {@code lab} script and {@code data/}. */
    static Path findRoot(Path from) {
        Path start = from.toAbsolutePath().normalize();
        for (Path p = start; p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("lab")) && Files.isDirectory(p.resolve("data"))) return p;
        }
        throw new IllegalStateException("cannot find the JLens project root: no folder at or above " + start
                + " holds both the lab script and data/; run from inside the checkout or set -D" + ROOT_PROPERTY
                + "=/path/to/checkout");
    }

    private static Path requireDir(String name, Path root) {
        Path d = dir(name, root);
        if (!complete(d)) {
            String missing = !Files.isDirectory(d) ? "does not exist"
                    : "is incomplete (needs config.json, model.safetensors, tokenizer.json and " + MANIFEST + ")";
            throw new IllegalStateException(String.format(Locale.ROOT, "zoo model directory %s %s; train it with %s",
                    d, missing, trainCommand(name)));
        }
        return d;
    }

    /** True if {@code d} holds a complete zoo model (config, weights, tokenizer and manifest). */
    public static boolean complete(Path d) {
        return Files.isRegularFile(d.resolve("config.json")) && Files.isRegularFile(d.resolve("model.safetensors"))
                && Files.isRegularFile(d.resolve("tokenizer.json")) && Files.isRegularFile(d.resolve(MANIFEST));
    }
}
