package dev.jlens.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * What a {@link Trainer} checkpoint holds:
 *
 * <pre>
 *   RUN/checkpoints/step-00000100/   config.json, model.safetensors   (Hugging Face layout: HookedTransformer.load)
 *                                    tokenizer.json                   (when the model has a tokenizer)
 *                                    optimizer.safetensors            (AdamW moments and step count)
 *                                    trainer_state.json               (step, seed, tokens, train config)
 *                                    metrics.json                     (every step's metrics so far)
 * </pre>
 */
final class TrainerCheckpoint {
    static final String OPTIMIZER = "optimizer.safetensors";
    static final String METRICS = "metrics.json";
    /** The trained tensors of a run that trains other tensors than the model's parameters (a LoRA adapter). */
    static final String TRAINABLE = "trainable.safetensors";
    static final TrainingLoop.Format FORMAT = new TrainingLoop.Format("jlens-train", 1,
            List.of("config.json", "model.safetensors", OPTIMIZER, METRICS), "Trainer.resume(runDir, source)");
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** What trainer_state.json and metrics.json hold besides the step. */
    record State(long tokensSeen, double trainSeconds, TrainConfig config, List<StepMetrics> history) {}

    private TrainerCheckpoint() {}

    /** Writes the model, its tokenizer, the optimizer and the metrics into {@code dir}, and the rest into {@code state}. */
    static void write(Path dir, ObjectNode state, State st, HookedTransformer model, AdamW optimizer) throws IOException {
        model.save(dir);
        Optional<Tokenizer> tok = model.tokenizer();
        if (tok.isPresent()) copyTokenizer(tok.get().file(), dir);
        optimizer.save(dir.resolve(OPTIMIZER));
        JSON.writeValue(dir.resolve(METRICS).toFile(), metricsJson(st.history()));
        state.put("tokens_seen", st.tokensSeen());
        state.put("train_seconds", st.trainSeconds());
        // Every random choice of a run (which batch each step sees) is a pure function of (seed, step), so this
        // pair is the whole random state; the model's initial weights are in the first checkpoint's ancestry.
        ObjectNode rng = state.putObject("rng");
        rng.put("seed", st.config().seed());
        rng.put("next_step", state.path("step").asInt());
        state.set("train_config", st.config().toJson());
    }

    /** Writes the trained tensors of a run that trains a subset (see {@link Trainer}). */
    static void writeTrainable(Path dir, java.util.Map<String, ai.djl.ndarray.NDArray> trainable) {
        dev.jlens.io.Safetensors.write(dir.resolve(TRAINABLE), trainable);
    }

    /** Copies a checkpoint's trained tensors into {@code into}, checking names and shapes. */
    static void readTrainable(Path dir, java.util.Map<String, ai.djl.ndarray.NDArray> into) {
        Path f = dir.resolve(TRAINABLE);
        if (!Files.isRegularFile(f)) throw new IllegalArgumentException(dir + " has no " + TRAINABLE
                + ": it is not a checkpoint of a run that trains these tensors " + into.keySet());
        try (dev.jlens.io.Safetensors st = dev.jlens.io.Safetensors.open(f);
             ai.djl.ndarray.NDManager scratch = ai.djl.ndarray.NDManager.newBaseManager()) {
            if (!st.names().equals(into.keySet())) {
                throw new IllegalArgumentException(f + " holds " + st.names() + " but the trainer trains "
                        + into.keySet());
            }
            for (var e : into.entrySet()) {
                ai.djl.ndarray.NDArray saved = st.load(e.getKey(), scratch);
                if (!saved.getShape().equals(e.getValue().getShape())) {
                    throw new IllegalArgumentException(f + ": '" + e.getKey() + "' has shape " + saved.getShape()
                            + " but the trainer's tensor has " + e.getValue().getShape());
                }
                e.getValue().set(new ai.djl.ndarray.index.NDIndex(":"), saved);
            }
        }
    }

    /** The saved train config of a checkpoint. */
    static TrainConfig config(TrainingLoop.Checkpoint c) {
        return TrainConfig.fromJson(c.state().path("train_config"));
    }

    /** Reads the state and metrics of a checkpoint. */
    static State read(TrainingLoop.Checkpoint c) {
        try {
            JsonNode s = c.state();
            List<StepMetrics> history = parseMetrics(JSON.readTree(c.dir().resolve(METRICS).toFile()));
            if (history.size() != c.step()) {
                throw new IllegalArgumentException(c.dir().resolve(METRICS) + " has " + history.size()
                        + " rows for " + c.step() + " steps");
            }
            return new State(s.path("tokens_seen").asLong(), s.path("train_seconds").asDouble(), config(c), history);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read checkpoint " + c.dir(), e);
        }
    }

    /**
     * Copies a checkpoint's tokenizer files to {@code runDir/tokenizer/}, which pruning never touches, and returns the
     * copy's {@code tokenizer.json}: a resumed model must not read its tokenizer from a checkpoint that a later save
     * deletes.
     */
    static Path keepTokenizer(Path runDir, Path tokenizerJson) {
        Path dir = runDir.toAbsolutePath().normalize().resolve("tokenizer");
        try {
            Files.createDirectories(dir);
            if (!tokenizerJson.getParent().equals(dir)) copyTokenizer(tokenizerJson, dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot copy the tokenizer into " + dir, e);
        }
        return dir.resolve("tokenizer.json");
    }

    private static void copyTokenizer(Path tokenizerJson, Path into) throws IOException {
        Files.copy(tokenizerJson, into.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
        for (String sibling : List.of("tokenizer_config.json", "special_tokens_map.json")) {
            Path s = tokenizerJson.resolveSibling(sibling);
            if (Files.isRegularFile(s)) Files.copy(s, into.resolve(sibling), StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static ArrayNode metricsJson(List<StepMetrics> history) {
        ArrayNode a = JSON.createArrayNode();
        for (StepMetrics m : history) {
            ObjectNode r = a.addObject();
            r.put("step", m.step());
            r.put("loss", m.loss());
            r.put("lr", m.lr());
            r.put("grad_norm", m.gradNorm());
            r.put("tokens_per_s", m.tokensPerSec());
            if (m.evalLoss().isPresent()) r.put("eval_loss", m.evalLoss().getAsDouble()); else r.putNull("eval_loss");
        }
        return a;
    }

    private static List<StepMetrics> parseMetrics(JsonNode a) {
        List<StepMetrics> out = new ArrayList<>();
        for (JsonNode r : a) {
            out.add(new StepMetrics(r.path("step").asInt(), r.path("loss").asDouble(), r.path("lr").asDouble(),
                    r.path("grad_norm").asDouble(), r.path("tokens_per_s").asDouble(),
                    r.hasNonNull("eval_loss") ? OptionalDouble.of(r.get("eval_loss").asDouble()) : OptionalDouble.empty()));
        }
        return out;
    }
}
