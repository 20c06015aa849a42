package dev.jlens.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.io.Checkpoints;
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
 * A training run's directory:
 *
 * <pre>
 *   RUN/checkpoints/step-00000100/   config.json, model.safetensors   (Hugging Face layout: HookedTransformer.load)
 *                                    tokenizer.json                   (when the model has a tokenizer)
 *                                    optimizer.safetensors            (AdamW moments and step count)
 *                                    trainer_state.json               (step, seed, tokens, train config)
 *                                    metrics.json                     (every step's metrics so far)
 * </pre>
 *
 * Checkpoints are written and pruned crash-safely by {@link Checkpoints}: a process killed mid-write leaves at worst
 * a temporary directory (ignored and removed on resume), never a half-written {@code step-N}.
 */
final class RunDir {
    static final String CHECKPOINTS = "checkpoints";
    static final String OPTIMIZER = "optimizer.safetensors";
    static final String STATE = "trainer_state.json";
    static final String METRICS = "metrics.json";
    private static final List<String> REQUIRED = List.of("config.json", "model.safetensors", OPTIMIZER, STATE, METRICS);
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** A complete checkpoint on disk. */
    record Checkpoint(Path dir, int step) {}

    /** What trainer_state.json and metrics.json hold. */
    record State(int step, long tokensSeen, double trainSeconds, TrainConfig config, List<StepMetrics> history) {}

    private final Path root;

    RunDir(Path root) {
        this.root = root.toAbsolutePath().normalize();
    }

    Path root() {
        return root;
    }

    Path checkpointsDir() {
        return root.resolve(CHECKPOINTS);
    }

    /** Complete checkpoints, oldest first. */
    List<Checkpoint> checkpoints() {
        return Checkpoints.steps(checkpointsDir(), RunDir::complete).stream()
                .map(c -> new Checkpoint(c.dir(), c.step())).toList();
    }

    private static boolean complete(Path dir) {
        return REQUIRED.stream().allMatch(f -> Files.isRegularFile(dir.resolve(f)));
    }

    /** The newest complete checkpoint. */
    Optional<Checkpoint> latest() {
        List<Checkpoint> all = checkpoints();
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** Removes what an interrupted write or delete left behind. */
    void cleanLeftovers() {
        Checkpoints.cleanLeftovers(checkpointsDir());
    }

    /**
     * Writes a checkpoint of {@code state} atomically and deletes all but the newest {@code keep}; returns its
     * directory. {@code beforeCommit} runs after every file is written and before the rename (tests use it to
     * simulate a crash).
     */
    Path save(State state, HookedTransformer model, AdamW optimizer, int keep, Runnable beforeCommit) {
        Path target = Checkpoints.commitStep(checkpointsDir(), state.step(), tmp -> {
            model.save(tmp);
            Optional<Tokenizer> tok = model.tokenizer();
            if (tok.isPresent()) copyTokenizer(tok.get().file(), tmp);
            optimizer.save(tmp.resolve(OPTIMIZER));
            JSON.writeValue(tmp.resolve(METRICS).toFile(), metricsJson(state.history()));
            JSON.writeValue(tmp.resolve(STATE).toFile(), stateJson(state));  // written last: marks the set complete
        }, beforeCommit);
        Checkpoints.prune(checkpointsDir(), RunDir::complete, keep);
        return target;
    }

    /**
     * Copies a checkpoint's tokenizer files to {@code runDir/tokenizer/}, which pruning never touches, and returns the
     * copy's {@code tokenizer.json}: a resumed model must not read its tokenizer from a checkpoint that a later save
     * deletes.
     */
    Path keepTokenizer(Path tokenizerJson) {
        Path dir = root.resolve("tokenizer");
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

    /** Reads the state of a checkpoint. */
    State read(Checkpoint c) {
        try {
            JsonNode s = JSON.readTree(c.dir().resolve(STATE).toFile());
            if (!"jlens-train".equals(s.path("format").asText())) {
                throw new IllegalArgumentException(c.dir().resolve(STATE) + " is not a JLens trainer state (format '"
                        + s.path("format").asText() + "')");
            }
            int step = s.path("step").asInt(-1);
            if (step != c.step()) {
                throw new IllegalArgumentException(c.dir() + " is named for step " + c.step() + " but its state says " + step);
            }
            TrainConfig cfg = TrainConfig.fromJson(s.path("train_config"));
            List<StepMetrics> history = parseMetrics(JSON.readTree(c.dir().resolve(METRICS).toFile()));
            if (history.size() != step) {
                throw new IllegalArgumentException(c.dir().resolve(METRICS) + " has " + history.size()
                        + " rows for " + step + " steps");
            }
            return new State(step, s.path("tokens_seen").asLong(), s.path("train_seconds").asDouble(), cfg, history);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read checkpoint " + c.dir(), e);
        }
    }

    private static ObjectNode stateJson(State st) {
        ObjectNode o = JSON.createObjectNode();
        o.put("format", "jlens-train");
        o.put("version", 1);
        o.put("step", st.step());
        o.put("tokens_seen", st.tokensSeen());
        o.put("train_seconds", st.trainSeconds());
        // Every random choice of a run (which batch each step sees) is a pure function of (seed, step), so this
        // pair is the whole random state; the model's initial weights are in the first checkpoint's ancestry.
        ObjectNode rng = o.putObject("rng");
        rng.put("seed", st.config().seed());
        rng.put("next_step", st.step());
        o.set("train_config", st.config().toJson());
        return o;
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
