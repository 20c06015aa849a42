package dev.jlens.zoo.recipes;

import dev.jlens.zoo.Evaluation;
import dev.jlens.zoo.Manifest;
import dev.jlens.zoo.Zoo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.jlens.lora.Lora;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;
import dev.jlens.train.TrainConfig;
import dev.jlens.train.TrainResult;
import dev.jlens.train.Trainer;
import dev.jlens.train.TrainingInterruptedException;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Runs a {@link Recipe}: trains with checkpoints under {@code build/zoo/NAME/} (resuming from the newest one if a
 * previous run of the same recipe was stopped: {@link Trainer#resumeOrStart}), evaluates on the test split, and
 * writes {@code data/models/NAME/} (config.json, model.safetensors, tokenizer.json, manifest.json), replacing the old
 * directory in one rename.
 */
public final class ZooTrainer {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Command-line choices: start over, a shorter trial run, how many examples to evaluate. */
    public record Options(boolean fresh, OptionalInt steps, OptionalInt evalExamples) {
        public Options {
            steps = steps == null ? OptionalInt.empty() : steps;
            evalExamples = evalExamples == null ? OptionalInt.empty() : evalExamples;
        }
    }

    private ZooTrainer() {}

    /** The run directory of a recipe (a trial run with fewer steps gets its own). */
    public static Path runDir(Path root, Recipe r, Options o) {
        String dir = r.name() + (o.steps().isPresent() ? "-steps-" + o.steps().getAsInt() : "");
        return root.resolve("build").resolve("zoo").resolve(dir);
    }

    /** Trains, evaluates and writes the model; returns its manifest. */
    public static Manifest train(Recipe r, Path root, Options o, PrintStream log) {
        long t0 = System.nanoTime();
        Path run = runDir(root, r, o);
        Path out = o.steps().isPresent() ? run.resolve("model") : Zoo.dir(r.name(), root);
        TrainConfig cfg = r.trainConfig();
        if (o.steps().isPresent()) {
            int s = o.steps().getAsInt();
            cfg = cfg.toBuilder().steps(s).warmupSteps(Math.min(cfg.warmupSteps(), s / 10))
                    .checkpointEvery(Math.max(1, Math.min(cfg.checkpointEvery().orElse(s), s))).build();
        }
        if (o.fresh()) deleteTree(run);
        Path tokDir = run.resolve("tokenizer");
        HookedTransformer model = r.base().isPresent() ? Zoo.load(r.base().get(), root)
                : HookedTransformer.random(r.modelConfig(), cfg.seed());
        Trainer trainer;
        Lora lora = null;
        try {
            if (!model.cfg().toHf().equals(r.modelConfig().toHf())) {
                throw new IllegalStateException("base model " + r.base().orElse("") + " is " + model.cfg()
                        + ", but " + r.name() + " expects " + r.modelConfig());
            }
            Files.createDirectories(tokDir);
            if (r.base().isPresent()) {
                Files.copy(Zoo.dir(r.base().get(), root).resolve("tokenizer.json"), tokDir.resolve("tokenizer.json"),
                        StandardCopyOption.REPLACE_EXISTING);
            } else {
                r.task().writeTokenizer(tokDir);
            }
            model.setTokenizer(Tokenizer.load(tokDir.resolve("tokenizer.json")));
            if (r.lora().isPresent()) {
                lora = Lora.attach(model, r.lora().get());
                trainer = lora.trainer(cfg, r.trainSource());
            } else {
                trainer = new Trainer(model, cfg, r.trainSource());
            }
        } catch (IOException e) {
            if (lora != null) lora.close();
            model.close();
            throw new UncheckedIOException("cannot prepare " + run, e);
        } catch (RuntimeException e) {
            if (lora != null) lora.close();
            model.close();
            throw e;
        }
        try {
            trainer.resumeOrStart(run);   // continues a stopped run: its weights replace the fresh ones
        } catch (RuntimeException e) {
            trainer.close();
            if (lora != null) lora.close();
            model.close();
            if (e instanceof IllegalArgumentException) {   // the run directory holds another architecture or config
                throw new IllegalStateException(e.getMessage() + " (start over with --fresh)", e);
            }
            throw e;
        }
        if (trainer.step() > 0) {
            log.printf(Locale.ROOT, "[%s] resuming %s at step %d of %d%n", r.name(), run, trainer.step(), cfg.steps());
        } else {
            log.printf(Locale.ROOT, "[%s] training %s%s from step 0: %s, %s%n", r.name(),
                    lora != null ? lora : model.cfg(), r.base().map(b -> " (from " + b + ")").orElse(""), cfg,
                    r.task());
        }
        int fromStep = trainer.step();
        CountDownLatch finished = new CountDownLatch(1);
        Thread worker = Thread.currentThread();
        // kill PID (SIGTERM) interrupts the run between steps; the trainer then saves an exact checkpoint
        Thread hook = new Thread(() -> {
            worker.interrupt();
            try {
                finished.await(120, TimeUnit.SECONDS);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }, "zoo-train-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            trainer.loss(r.lossFn()).evalSource(r.evalSource()).progress(new LineProgress(log, r.name()));
            TrainResult result = trainer.train();
            log.printf(Locale.ROOT, "[%s] trained: %s%n", r.name(), result);
            int n = o.evalExamples().orElse(r.evalExamples());
            Evaluation ev = r.evaluate(model, n);
            log.printf(Locale.ROOT, "[%s] %s%n", r.name(), ev);
            Map<String, Double> baseMetrics = Map.of();
            if (r.base().isPresent()) {
                try (HookedTransformer b = Zoo.load(r.base().get(), root)) {
                    Evaluation bev = r.evaluate(b, n);
                    log.printf(Locale.ROOT, "[%s] base %s: %s%n", r.name(), r.base().get(), bev);
                    baseMetrics = bev.metrics();
                }
            }
            double wall = recordSession(run, fromStep, trainer.step(), Evals.since(t0));
            String command = "./lab zoo train " + r.name()
                    + (o.steps().isPresent() ? " --steps " + o.steps().getAsInt() : "");
            Manifest m = new Manifest(r.name(), r.summary(), r.task().name(), r.task().toString(), r.base(),
                    model.cfg().toString(), model.cfg().parameterCount(), cfg.seed(), result.steps(), cfg.batchSize(),
                    result.tokensSeen(), result.trainSeconds(), wall, threads(), result.meanLoss(50),
                    result.finalEvalLoss(), ev, baseMetrics, r.bars(), r.notes(), cfg.toJson(), command);
            writeModel(model, lora, r.base(), m, out);
            log.printf(Locale.ROOT, "[%s] wrote %s (%.1f min in all sessions)%n", r.name(), out, wall / 60);
            if (!m.barsMet()) log.printf(Locale.ROOT, "[%s] MISSED its bars: %s%n", r.name(), ev.missed(r.bars()));
            return m;
        } catch (TrainingInterruptedException e) {
            recordSession(run, fromStep, trainer.step(), Evals.since(t0));
            log.printf(Locale.ROOT, "[%s] interrupted: %s. Run the same command to resume.%n", r.name(), e.getMessage());
            throw e;
        } finally {
            finished.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // the JVM is already shutting down
            }
            trainer.close();
            if (lora != null) lora.close();
            model.close();
        }
    }

    /** PyTorch's intra-op thread count as configured for this JVM (what the run used). */
    static int threads() {
        String t = System.getProperty("ai.djl.pytorch.num_threads");
        if (t != null) {
            try {
                return Integer.parseInt(t.trim());
            } catch (NumberFormatException ignored) {
                // fall through to the engine's default
            }
        }
        return Runtime.getRuntime().availableProcessors();
    }

    /** Appends a session to {@code RUN/sessions.json}; returns the wall seconds of every session so far. */
    private static double recordSession(Path run, int fromStep, int toStep, double seconds) {
        Path f = run.resolve("sessions.json");
        try {
            ArrayNode a = Files.isRegularFile(f) ? (ArrayNode) JSON.readTree(f.toFile()) : JSON.createArrayNode();
            a.addObject().put("from_step", fromStep).put("to_step", toStep).put("seconds", seconds);
            JSON.writerWithDefaultPrettyPrinter().writeValue(f.toFile(), a);
            double total = 0;
            for (JsonNode s : a) total += s.path("seconds").asDouble();
            return total;
        } catch (IOException | ClassCastException e) {
            throw new IllegalStateException("cannot update " + f + ": " + e.getMessage(), e);
        }
    }

    /**
     * Writes config, weights, tokenizer and manifest into a temporary sibling, then renames it into place. A model
     * trained as a LoRA adapter also gets the adapter in {@code adapter/}, and its weights are saved with the adapter
     * merged.
     */
    private static void writeModel(HookedTransformer model, Lora lora, java.util.Optional<String> base, Manifest m,
                                   Path out) {
        Path parent = out.toAbsolutePath().getParent();
        Path tmp = parent.resolve(".tmp-" + out.getFileName() + "-" + System.nanoTime());
        Path trash = parent.resolve(".trash-" + out.getFileName() + "-" + System.nanoTime());
        try {
            Files.createDirectories(tmp);
            if (lora != null) {
                lora.save(tmp.resolve(Zoo.ADAPTER_DIR), base.orElse(model.name()));
                lora.merge();
            }
            model.save(tmp);
            Files.copy(model.requireTokenizer().file(), tmp.resolve("tokenizer.json"));
            m.write(tmp.resolve(Zoo.MANIFEST));
            if (Files.exists(out)) Files.move(out, trash);
            Files.move(tmp, out);
            deleteTree(trash);
        } catch (IOException e) {
            deleteTree(tmp);
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
    }

    static void deleteTree(Path p) {
        if (!Files.exists(p)) return;
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path q : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) Files.deleteIfExists(q);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + p, e);
        }
    }
}
