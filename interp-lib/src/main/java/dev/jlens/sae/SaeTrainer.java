package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.store.ActivationSource;
import dev.jlens.train.AdamW;
import dev.jlens.train.ProgressSink;
import dev.jlens.train.TrainingLoop;
import dev.jlens.util.Tensors;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.Table;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The one trainer for every sparse-dictionary architecture: Adam (no weight decay) on each dictionary's
 * {@link SparseCoder#trainableParameters()}, the variant's own training step ({@link SparseCoder#trainStep}), dead-
 * and dense-latent bookkeeping, optional resampling of dead latents, and, through the {@link TrainingLoop}, atomic
 * checkpoints with resume and a live progress line. Several dictionaries can train on one activation stream: each
 * batch is read once and fed to all of them.
 *
 * <pre>{@code
 * SaeTrainer.train(sae, source, SaeTrainConfig.builder().steps(2000).build());     // one dictionary, in place
 *
 * try (SaeTrainer t = SaeTrainer.of(source, cfg).add("topk", topk).add("relu", relu)) {
 *     SaeTrainer.Result r = t.trainOrResume(Path.of("runs/sweep"));   // continues the run if it was stopped
 *     r.table();                         // per-step loss, mse, L0, FVU, dead and dense fractions, lr
 * }
 * }</pre>
 *
 * <p>Inputs: batch {@code i} is {@code source.batch(i, batchSize)} times {@code source.normalizationScale()}; the
 * dictionaries are trained in place in those normalised units, and their {@link SaeConfig#inputScale()} is set to the
 * source's scale when they are added, so {@link SparseCoder#encode} and {@link SparseCoder#reconstruct} keep taking
 * raw activations.
 *
 * <p>Each step runs inside one {@link NDScope} spanning the forward passes, the backward passes (one DJL
 * {@link GradientCollector} per step; only one may be open in a JVM) and the updates, so native memory stays flat.
 * A run resumed from a checkpoint continues exactly as the uninterrupted run would have (same weights and metrics, bit
 * for bit at the same thread count). Interrupting the training thread stops it between steps: the trainer saves a
 * checkpoint (with a run directory), sets the interrupt flag again and throws {@link Interrupted}.
 */
public final class SaeTrainer implements AutoCloseable {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    /** A latent firing on more than this fraction of tokens is dense. */
    public static final double DENSE_FRACTION = 0.1;

    /** One step's measurements of one dictionary (mse: the loss's squared-error term, in normalised units). */
    public record StepStats(int step, double loss, double mse, double l0, double fvu, double deadFraction,
                            double denseFraction, double lr) {}

    /**
     * The per-step history of every dictionary (a resumed run includes the steps before the resume).
     *
     * @param history        by dictionary name, one row per step done
     * @param lastCheckpoint the newest checkpoint on disk, if the trainer has a run directory
     */
    public record Result(Map<String, List<StepStats>> history, Optional<Path> lastCheckpoint) {
        public Result {
            Map<String, List<StepStats>> copy = new LinkedHashMap<>();
            history.forEach((k, v) -> copy.put(k, List.copyOf(v)));
            history = Collections.unmodifiableMap(copy);
            lastCheckpoint = lastCheckpoint == null ? Optional.empty() : lastCheckpoint;
        }

        /** The history of dictionary {@code name}. */
        public List<StepStats> history(String name) {
            List<StepStats> h = history.get(name);
            if (h == null) throw new IllegalArgumentException("no dictionary '" + name + "'; dictionaries: " + history.keySet());
            return h;
        }

        /** The last step's measurements of {@code name}. */
        public StepStats last(String name) {
            List<StepStats> h = history(name);
            if (h.isEmpty()) throw new IllegalStateException("dictionary '" + name + "' has not trained yet");
            return h.get(h.size() - 1);
        }

        /** Every dictionary's history in one table: dictionary, step, loss, mse, l0, fvu, dead, dense, lr. */
        public Table table() {
            return SaeHistory.table(history);
        }

        /** One dictionary's history as a table. */
        public Table table(String name) {
            history(name);
            Table t = table();
            return t.where(t.stringColumn("dictionary").isEqualTo(name)).setName(name);
        }

        /**
         * A line chart of one metric ({@code loss}, {@code mse}, {@code l0}, {@code fvu}, {@code dead}, ...) per dictionary;
         * loss, mse and fvu on a log scale.
         */
        public XYChart curve(String metric) {
            return SaeHistory.curve(history, metric);
        }

        @Override
        public String toString() {
            return SaeHistory.summary(history);
        }
    }

    /**
     * Thrown by {@link #train} when its thread is interrupted: training stopped between steps; with a run directory, a
     * checkpoint of that exact state was saved ({@link #checkpoint()}). The interrupt flag is set again.
     */
    public static final class Interrupted extends TrainingLoop.Interrupted {
        private final transient Result result;

        Interrupted(int step, int steps, Result result, Path checkpoint) {
            super("SAE training", step, steps, checkpoint, SaeCheckpoint.FORMAT.resumeCall());
            this.result = result;
        }

        /** Metrics up to the interruption. */
        public Result result() {
            return result;
        }
    }

    private final ActivationSource source;
    private final SaeTrainConfig cfg;
    private final TrainingLoop loop;
    private final Map<String, DictionarySlot> slots = new LinkedHashMap<>();
    private boolean closed;
    private boolean fastSteps = true;

    private SaeTrainer(ActivationSource source, SaeTrainConfig cfg) {
        if (source == null) throw new IllegalArgumentException("source must not be null: an ActivationSource gives each step's batch");
        if (cfg == null) throw new IllegalArgumentException("cfg must not be null (SaeTrainConfig.builder()...build())");
        this.source = source;
        this.cfg = cfg;
        this.loop = new TrainingLoop(new TrainingLoop.Cadence(cfg.steps(), cfg.checkpointEvery(), cfg.keepCheckpoints(),
                cfg.logEvery()), SaeCheckpoint.FORMAT, new LoopSteps(), "train SAE");
    }

    /** Lets variants take their own faster training steps (on by default; tests compare them with the general one). */
    SaeTrainer fastSteps(boolean on) {
        fastSteps = on;
        return this;
    }

    /** A trainer reading {@code source}; add dictionaries with {@link #add}. */
    public static SaeTrainer of(ActivationSource source, SaeTrainConfig cfg) {
        return new SaeTrainer(source, cfg);
    }

    /** Trains one dictionary in place on {@code source} with a progress bar; returns its history (name "sae"). */
    public static Result train(SparseCoder sae, ActivationSource source, SaeTrainConfig cfg) {
        try (SaeTrainer t = of(source, cfg).add("sae", sae)) {
            return t.train();
        }
    }

    /**
     * Adds a dictionary under {@code name} (letters, digits, {@code . _ -}; it names its checkpoint files). The caller
     * keeps owning it; its input scale becomes the source's normalisation scale and its hook name the source's when
     * it has none.
     */
    public SaeTrainer add(String name, SparseCoder sae) {
        ensureOpen();
        addSlot(name, sae, false);
        return this;
    }

    /** Adds a fresh dictionary for {@code config} (initialised from the run's seed), owned and closed by this trainer. */
    public SaeTrainer add(String name, SaeConfig config) {
        ensureOpen();
        addOwned(name, SparseCoder.create(config, cfg.seed()));
        return this;
    }

    private DictionarySlot addOwned(String name, SparseCoder sae) {
        try {
            return addSlot(name, sae, true);
        } catch (RuntimeException e) {
            sae.close();
            throw e;
        }
    }

    private DictionarySlot addSlot(String name, SparseCoder sae, boolean owned) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("dictionary name '" + name + "' must be letters, digits, '.', '_' or '-'");
        }
        if (slots.containsKey(name)) throw new IllegalArgumentException("a dictionary named '" + name + "' was already added");
        if (sae == null) throw new IllegalArgumentException("dictionary '" + name + "' is null");
        if (step() > 0) {
            throw new IllegalStateException("cannot add dictionary '" + name + "' after training started (step " + step() + ")");
        }
        for (DictionarySlot s : slots.values()) {
            if (s.sae == sae) throw new IllegalArgumentException("this dictionary was already added as '" + s.name + "'");
        }
        SaeConfig c = sae.cfg();
        if (c.dIn() != source.width()) {
            throw new IllegalArgumentException("dictionary '" + name + "' reads " + c.dIn() + "-wide activations but the "
                    + "source gives " + source.width() + "-wide ones");
        }
        if (c.nSources() != source.nSources()) {
            throw new IllegalArgumentException("dictionary '" + name + "' has " + c.nSources() + " sources but the source "
                    + "concatenates " + source.nSources());
        }
        double scale = source.normalizationScale();
        if (!(scale > 0) || !Double.isFinite(scale)) {
            throw new IllegalArgumentException("the source's normalizationScale() must be positive and finite, got " + scale);
        }
        if (c.inputScale() != 1.0 && Math.abs(c.inputScale() - scale) > 1e-6 * scale) {
            throw new IllegalArgumentException("dictionary '" + name + "' expects inputs scaled by " + c.inputScale()
                    + " but the source's normalization scale is " + scale + "; its weights live in other units (to train it "
                    + "further on new activations in its own units, pass source.withNormalizationScale(" + c.inputScale()
                    + "))");
        }
        AbstractSae a = (AbstractSae) sae;
        a.setInputScale(scale);
        if (c.hookPoint().isEmpty()) source.hookPoint().ifPresent(a::setHookName);
        DictionarySlot s = new DictionarySlot(name, sae, owned, cfg);
        slots.put(name, s);
        return s;
    }

    // ---------------------------------------------------------------- run directory

    /**
     * Saves checkpoints under {@code dir} (created if missing). A directory that already holds checkpoints is
     * refused: continue that run with {@link #trainOrResume} or {@link #resume}, or pick a new directory.
     */
    public SaeTrainer runDir(Path dir) {
        ensureOpen();
        loop.runDir(dir);
        return this;
    }

    /**
     * Saves checkpoints under {@code dir}, first continuing the run saved there when it has a checkpoint: each added
     * dictionary's weights (in place), Adam state, latent counters and history, and the step, are loaded from the
     * newest one. The saved run must train the same dictionaries (names and configs) with the same config; only
     * {@code steps} (at least the steps done) and the checkpoint and log cadences may differ. Otherwise this fails
     * naming the difference.
     */
    public SaeTrainer resumeOrStart(Path dir) {
        ensureOpen();
        if (slots.isEmpty()) {
            throw new IllegalStateException("no dictionaries: add them first, as for a fresh run, then resumeOrStart(dir)");
        }
        loop.resumeOrStart(dir, c -> {
            SaeCheckpoint.requireCompatible(c, cfg, slots);
            Map<String, JsonNode> saved = SaeCheckpoint.dictionaries(c);
            for (DictionarySlot s : slots.values()) {
                SaeCheckpoint.loadInto(s.sae, c, saved.get(s.name));
                SaeCheckpoint.restore(s, c, saved.get(s.name));
            }
        });
        return this;
    }

    /**
     * Trains to the end, continuing the run in {@code dir} if it was stopped ({@link #resumeOrStart}) or starting it
     * there: one call for a notebook cell that may be run again.
     */
    public Result trainOrResume(Path dir) {
        return resumeOrStart(dir).train();
    }

    /** Continues the run saved in {@code runDir} from its newest complete checkpoint, with the config stored there. */
    public static SaeTrainer resume(Path runDir, ActivationSource source) {
        return resume(runDir, source, null);
    }

    /**
     * As {@link #resume(Path, ActivationSource)} with another config (e.g. more steps: {@code saved.toBuilder()
     * .steps(4000).build()}); null keeps the saved one. The trainer owns the dictionaries it loads: get them with
     * {@link #dictionary}; {@link #close()} frees them.
     */
    public static SaeTrainer resume(Path runDir, ActivationSource source, SaeTrainConfig config) {
        TrainingLoop.Checkpoint c = TrainingLoop.resumable(runDir, SaeCheckpoint.FORMAT);
        SaeTrainConfig cfg = config != null ? config : SaeCheckpoint.config(c);
        c.requireWithin(cfg.steps());
        SaeTrainer t = new SaeTrainer(source, cfg);
        try {
            SaeCheckpoint.dictionaries(c).forEach((name, entry) ->
                    SaeCheckpoint.restore(t.addOwned(name, SaeCheckpoint.load(c, entry)), c, entry));
            t.loop.resumedFrom(runDir, c);
            return t;
        } catch (RuntimeException | Error e) {
            t.close();
            throw e;
        }
    }

    /** Where progress goes (default {@link ProgressSink#bar()}; {@link ProgressSink#none()} for silence). */
    public SaeTrainer progress(ProgressSink sink) {
        loop.progress(sink);
        return this;
    }

    // ---------------------------------------------------------------- accessors

    /** The run's config. */
    public SaeTrainConfig config() {
        return cfg;
    }

    /** Steps done. */
    public int step() {
        return loop.step();
    }

    /** The dictionary added as {@code name}. */
    public SparseCoder dictionary(String name) {
        return slot(name).sae;
    }

    private DictionarySlot slot(String name) {
        DictionarySlot s = slots.get(name);
        if (s == null) throw new IllegalArgumentException("no dictionary '" + name + "'; dictionaries: " + slots.keySet());
        return s;
    }

    /** Every dictionary by name, in the order added. */
    public Map<String, SparseCoder> dictionaries() {
        Map<String, SparseCoder> out = new LinkedHashMap<>();
        slots.forEach((k, v) -> out.put(k, v.sae));
        return Collections.unmodifiableMap(out);
    }

    /** The optimizer of dictionary {@code name} (its moments are live arrays). */
    public AdamW optimizer(String name) {
        return slot(name).opt;
    }

    /** Each latent's tokens since it last fired, for dictionary {@code name} (a copy). */
    public long[] tokensSinceFired(String name) {
        return slot(name).latents.tokensSinceFired();
    }

    /** The run directory, if checkpoints are saved. */
    public Optional<Path> runDirectory() {
        return loop.runDirectory();
    }

    /** Metrics so far. */
    public Result result() {
        return new Result(histories(), loop.lastCheckpoint());
    }

    private Map<String, List<StepStats>> histories() {
        Map<String, List<StepStats>> h = new LinkedHashMap<>();
        slots.forEach((k, v) -> h.put(k, v.history));
        return h;
    }

    // ---------------------------------------------------------------- training

    /** Trains until every configured step is done; returns the histories. */
    public Result train() {
        return trainUntil(cfg.steps());
    }

    /** Trains until {@code untilStep} steps are done (checkpoints follow {@code checkpointEvery} and the run's end). */
    public Result trainUntil(int untilStep) {
        ensureOpen();
        loop.trainUntil(untilStep);
        return result();
    }

    /**
     * Saves a checkpoint of the current state now and returns its directory: {@code RUN/checkpoints/step-N/} with each
     * dictionary's weights ({@code NAME.safetensors}, SAELens tensor names), its Adam moments
     * ({@code NAME.optimizer.safetensors}) and {@code trainer_state.json} (configs, latent counters, history). Written
     * to a temporary directory, flushed and renamed into place atomically.
     */
    public Path checkpoint() {
        ensureOpen();
        return loop.checkpoint();
    }

    /** What the loop runs: one step over every dictionary, the progress text and the checkpoint files. */
    private final class LoopSteps implements TrainingLoop.Steps {
        @Override
        public void begin() {
            if (slots.isEmpty()) throw new IllegalStateException("no dictionaries: add one with add(name, sae)");
            for (DictionarySlot s : slots.values()) {
                s.opt.parameters().values().forEach(p -> p.setRequiresGradient(true));
                s.opt.zeroGrad();   // gradients left by other code would otherwise join the first step's
            }
        }

        @Override
        public boolean step(int index) {
            runStep(index);
            return false;
        }

        @Override
        public void end() {
            for (DictionarySlot s : slots.values()) s.opt.parameters().values().forEach(p -> p.setRequiresGradient(false));
        }

        @Override
        public String status() {
            return SaeHistory.status(histories());
        }

        @Override
        public void save(Path dir, ObjectNode state) {
            SaeCheckpoint.write(dir, state, source.normalizationScale(), cfg, slots.values());
        }

        @Override
        public Interrupted interrupted(Path checkpoint) {
            return new Interrupted(loop.step(), cfg.steps(), result(), checkpoint);
        }
    }

    /** One step: read the batch once, each dictionary's forward and backward, then (if none diverged) every update. */
    private void runStep(int i) {
        int b = cfg.batchSize();
        double lr = cfg.lrAt(i);
        float sparsity = cfg.sparsityScaleAt(i);
        List<DictionarySlot> all = new ArrayList<>(slots.values());
        int n = all.size();
        try (NDManager mgr = NDManager.newBaseManager(); NDScope scope = new NDScope()) {
            NDArray raw = source.batch(i, b, mgr);
            if (raw == null || !raw.getShape().equals(new Shape(b, source.width()))) {
                throw new IllegalStateException("the activation source returned " + (raw == null ? "null" : "shape " + raw.getShape())
                        + " for step " + i + "; expected (" + b + ", " + source.width() + ")");
            }
            double scale = source.normalizationScale();
            NDArray x = scale == 1.0 ? raw : raw.mul(Tensors.scalar(mgr, (float) scale));
            SparseCoder.Context[] ctx = new SparseCoder.Context[n];
            SparseCoder.StepResult[] res = new SparseCoder.StepResult[n];
            // Everything the backward passes read stays alive until they have run: the scope spans both.
            try (GradientCollector gc = Tensors.gradientCollector()) {
                for (int k = 0; k < n; k++) {
                    SparseCoder sae = all.get(k).sae;
                    ctx[k] = new SparseCoder.Context(i, sparsity, all.get(k).latents.deadMask(mgr, cfg.deadAfterTokens()), mgr);
                    res[k] = fastSteps ? sae.trainStep(x, ctx[k], gc) : TrainSteps.general(sae, x, ctx[k], gc);
                }
            }
            // Check everything before updating anything, so a diverged dictionary leaves every one untouched.
            for (int k = 0; k < n; k++) {
                if (!Float.isFinite(res[k].loss())) throw diverged(all, k, i, res[k].loss(), lr);
            }
            float centredSq = x.sub(x.mean(new int[]{0}, true)).square().sum().getFloat();
            for (int k = 0; k < n; k++) all.get(k).update(ctx[k], res[k], lr, centredSq, cfg);
            if (cfg.resampleEvery().isPresent() && (i + 1) % cfg.resampleEvery().getAsInt() == 0) {
                for (DictionarySlot s : all) Resampling.resample(s, raw, x, i, cfg);
            }
        }
    }

    private static IllegalStateException diverged(List<DictionarySlot> all, int k, int i, float loss, double lr) {
        for (DictionarySlot s : all) s.opt.zeroGrad();
        return new IllegalStateException(String.format(Locale.ROOT, "dictionary '%s' diverged at step %d: loss %s "
                + "(lr %.3g); no dictionary was updated. Lower the learning rate or add warm-up, then resume from the "
                + "last checkpoint", all.get(k).name, i + 1, loss, lr));
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("this SAE trainer is closed");
    }

    /** Frees the optimizer states and the dictionaries this trainer created or loaded (not those passed to add). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (DictionarySlot s : slots.values()) s.close();
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("SaeTrainer(step ").append(step()).append('/').append(cfg.steps())
                .append(", ").append(slots.keySet());
        loop.runDirectory().ifPresent(r -> s.append(", run ").append(r));
        return s.append(')').toString();
    }
}
