package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import dev.jlens.train.TrainingLoop;

import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * What a {@link SaeTrainer} checkpoint holds, in {@code RUN/checkpoints/step-N/}: each dictionary's weights
 * ({@code NAME.safetensors}, SAELens tensor names) and Adam moments ({@code NAME.optimizer.safetensors}), and in
 * {@code trainer_state.json} the train config, the source's normalisation scale and, per dictionary, its config,
 * latent counters and history.
 */
final class SaeCheckpoint {
    static final TrainingLoop.Format FORMAT = new TrainingLoop.Format("jlens-sae-train", 1, List.of(),
            "SaeTrainer.resume(runDir, source)");
    private static final String WEIGHTS_SUFFIX = ".safetensors", OPTIMIZER_SUFFIX = ".optimizer.safetensors";
    /** Train-config keys that may differ when continuing a run: they change neither the weights nor the batches. */
    private static final List<String> FREE_SETTINGS = List.of("steps", "checkpoint_every", "keep_checkpoints", "log_every");

    private SaeCheckpoint() {}

    /** Writes every dictionary's files into {@code dir} and the rest into {@code state}. */
    static void write(Path dir, ObjectNode state, double normalizationScale, SaeTrainConfig cfg,
                      Collection<DictionarySlot> slots) {
        state.put("normalization_scale", normalizationScale);
        state.set("train_config", cfg.toJson());
        ArrayNode ds = state.putArray("dictionaries");
        for (DictionarySlot s : slots) {
            Safetensors.write(dir.resolve(s.name + WEIGHTS_SUFFIX), s.sae.weights().params(), Map.of("format", "jlens-sae"),
                    DType.F32);
            s.opt.save(dir.resolve(s.name + OPTIMIZER_SUFFIX));
            ObjectNode d = ds.addObject();
            d.put("name", s.name);
            d.set("config", SaeConfigJson.write(s.sae.cfg()));
            s.latents.write(d);
            ArrayNode h = d.putArray("history");
            for (SaeTrainer.StepStats m : s.history) {
                ObjectNode r = h.addObject();
                r.put("step", m.step());
                r.put("loss", m.loss());
                r.put("mse", m.mse());
                r.put("l0", m.l0());
                r.put("fvu", m.fvu());
                r.put("dead", m.deadFraction());
                r.put("dense", m.denseFraction());
                r.put("lr", m.lr());
            }
        }
    }

    /** The train config a checkpoint was saved with. */
    static SaeTrainConfig config(TrainingLoop.Checkpoint c) {
        return SaeTrainConfig.fromJson(c.state().path("train_config"));
    }

    /** The dictionaries' entries of a checkpoint, by name, in the order they were added. */
    static Map<String, JsonNode> dictionaries(TrainingLoop.Checkpoint c) {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        for (JsonNode d : c.state().path("dictionaries")) out.put(d.path("name").asText(), d);
        return out;
    }

    /** A dictionary as saved: its architecture over its saved weights (the caller owns it). */
    static SparseCoder load(TrainingLoop.Checkpoint c, JsonNode entry) {
        SaeConfig sc = SaeConfigJson.read(entry.path("config"));
        return withWeights(c, entry, tensors -> SparseCoder.wrap(sc, new SaeWeights(sc, tensors)));
    }

    /** Overwrites {@code sae}'s weights, in place, with the ones saved in {@code c} under {@code entry}'s name. */
    static void loadInto(SparseCoder sae, TrainingLoop.Checkpoint c, JsonNode entry) {
        withWeights(c, entry, tensors -> {
            ((AbstractSae) sae).loadWeights(tensors);
            return sae;
        });
    }

    private static SparseCoder withWeights(TrainingLoop.Checkpoint c, JsonNode entry,
                                           Function<Map<String, NDArray>, SparseCoder> use) {
        Path file = c.dir().resolve(entry.path("name").asText() + WEIGHTS_SUFFIX);
        try (Safetensors f = Safetensors.open(file); NDManager tmp = NDManager.newBaseManager()) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            for (String tn : f.names()) tensors.put(tn, f.load(tn, tmp));
            return use.apply(tensors);
        }
    }

    /** Loads a slot's Adam state, latent counters and history from its entry in {@code c}. */
    static void restore(DictionarySlot s, TrainingLoop.Checkpoint c, JsonNode entry) {
        s.opt.load(c.dir().resolve(s.name + OPTIMIZER_SUFFIX));
        if (s.opt.stepCount() != c.step()) {
            throw new IllegalArgumentException(c.dir() + ": the optimizer of '" + s.name + "' is at step "
                    + s.opt.stepCount() + " but the trainer state at step " + c.step());
        }
        s.latents.read(entry, s.name);
        s.history.clear();
        for (JsonNode h : entry.path("history")) {
            s.history.add(new SaeTrainer.StepStats(h.path("step").asInt(), h.path("loss").asDouble(),
                    h.path("mse").asDouble(), h.path("l0").asDouble(), h.path("fvu").asDouble(),
                    h.path("dead").asDouble(), h.path("dense").asDouble(), h.path("lr").asDouble()));
        }
        if (s.history.size() != c.step()) {
            throw new IllegalArgumentException(c.dir().resolve(TrainingLoop.STATE) + " has " + s.history.size()
                    + " history rows for '" + s.name + "' at step " + c.step());
        }
    }

    /**
     * Fails, naming the difference, unless {@code c} is a run of the same dictionaries (names and configs) with the
     * same train config as {@code cfg} (but for the steps and the checkpoint and log cadence).
     */
    static void requireCompatible(TrainingLoop.Checkpoint c, SaeTrainConfig cfg, Map<String, DictionarySlot> slots) {
        Map<String, JsonNode> saved = dictionaries(c);
        if (!saved.keySet().equals(slots.keySet())) {
            throw new IllegalArgumentException("the run in " + c.dir().getParent().getParent() + " trains the "
                    + "dictionaries " + saved.keySet() + ", this trainer " + slots.keySet() + ". Add the same "
                    + "dictionaries to continue it, or choose another run directory");
        }
        c.requireMatch("train config", c.state().path("train_config"), cfg.toJson(), FREE_SETTINGS);
        for (DictionarySlot s : slots.values()) {
            ObjectNode was = ((ObjectNode) saved.get(s.name).path("config")).deepCopy();
            ObjectNode now = SaeConfigJson.write(s.sae.cfg());
            // the same source gives the same scale, up to the rounding of its estimate
            double a = was.path("input_scale").asDouble(), b = now.path("input_scale").asDouble();
            if (Math.abs(a - b) <= 1e-6 * b) was.put("input_scale", b);
            c.requireMatch("config of dictionary '" + s.name + "'", was, now, List.of());
        }
    }
}
