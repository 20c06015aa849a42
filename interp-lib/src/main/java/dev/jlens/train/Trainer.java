package dev.jlens.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.training.GradientCollector;
import dev.jlens.util.Tensors;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;
import dev.jlens.model.arch.ModelConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;

/**
 * Trains a {@link HookedTransformer} on a {@link BatchSource} with AdamW, a warm-up + cosine (or constant) learning
 * rate, global-norm gradient clipping, periodic eval, atomic checkpoints and a live progress line. The steps,
 * checkpoints, interrupts and resumption are the {@link TrainingLoop}'s; this class says what one step does.
 *
 * <pre>{@code
 * try (HookedTransformer model = HookedTransformer.random(ModelConfig.gpt2(64, 2, 4, 256, 32, 64), 0);
 *      Trainer trainer = new Trainer(model, TrainConfig.builder().steps(500).lr(3e-3).checkpointEvery(100).build(),
 *              (seed, step, n) -> Batch.of(myTask(seed, step, n)))) {
 *     TrainResult r = trainer.trainOrResume(Path.of("runs/copy-task"));   // continues the run if it was stopped
 *     r.lossCurve();   // XChart; r.table() for the metrics
 * }
 * // or load the model from the run directory: Trainer.resume(Path.of("runs/copy-task"), source).train()
 * }</pre>
 *
 * <p>Each step runs inside its own {@link NDScope}: the forward pass, the loss, the backward pass and the optimizer's
 * temporaries are freed when the step ends, so native memory stays flat however long the run. Gradients are
 * recorded with one DJL {@link GradientCollector} per step (only one may be open in a JVM at a time: do not train
 * inside another collector); the parameters ({@link HookedTransformer#parameters()}) require gradients while
 * {@link #train} runs, so they receive them, and not afterwards, so interpretability calls on the model stay
 * gradient-free.
 *
 * <p>Reproducibility: batches are a pure function of {@code (seed, step)}, the optimizer state is saved with every
 * checkpoint, and so a run resumed from its last checkpoint produces the same losses, bit for bit on the same
 * machine and thread count, as one that was never stopped. Threads: PyTorch's intra-op thread count is read from
 * the system property {@code ai.djl.pytorch.num_threads} when the engine starts (before the first NDArray is made);
 * the trainer leaves it to the caller. On a machine shared with other busy processes, fewer threads than cores is
 * often faster; results are only bit-for-bit repeatable at one thread count.
 *
 * <p>Interrupting the training thread stops it between steps: the trainer saves a checkpoint of that exact state
 * (with a run directory), sets the interrupt flag again and throws {@link TrainingInterruptedException}.
 */
public final class Trainer implements AutoCloseable {
    /** Salt for the eval batches' seed, so an eval source equal to the training source yields held-out batches. */
    private static final long EVAL_SALT = 0x5EEDE7A1L;
    /** Train-config keys that may differ when continuing a run: they change neither the weights nor the batches. */
    private static final List<String> FREE_SETTINGS = List.of("steps", "checkpoint_every", "keep_checkpoints",
            "eval_every", "eval_batches", "log_every");

    private final HookedTransformer model;
    /** The tensors trained: the model's parameters, or a subset or other tensors (a LoRA adapter's A and B). */
    private final Map<String, NDArray> trainable;
    private final boolean trainsModel;
    private final boolean ownsModel;
    private final TrainConfig config;
    private final BatchSource source;
    private final AdamW optimizer;
    private final TrainingLoop loop;
    private final List<StepMetrics> history = new ArrayList<>();
    private BatchSource evalSource;
    private LossFn lossFn = LossFn.nextToken();
    private long tokensSeen;
    private double trainSeconds;
    private long windowTokens;     // since the progress line's last update, for its throughput
    private double windowSeconds;
    private boolean closed;

    /** A trainer for {@code model} (which the caller keeps owning) from step 0. */
    public Trainer(HookedTransformer model, TrainConfig config, BatchSource source) {
        this(model, null, false, config, source);
    }

    /**
     * A trainer that updates only {@code trainable} (live leaf arrays by name, e.g. a LoRA adapter's A and B, which
     * the model's forward pass reads); the model's own parameters stay frozen. Matrices get weight decay unless the
     * config's decay groups are {@code ALL}. Checkpoints also hold these tensors ({@code trainable.safetensors}), and
     * {@link #resumeOrStart} loads them back into the same arrays.
     */
    public Trainer(HookedTransformer model, Map<String, NDArray> trainable, TrainConfig config, BatchSource source) {
        this(model, requireTensors(trainable), false, config, source);
    }

    private static Map<String, NDArray> requireTensors(Map<String, NDArray> trainable) {
        if (trainable == null || trainable.isEmpty()) {
            throw new IllegalArgumentException("trainable must name at least one tensor");
        }
        return java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(trainable));
    }

    private Trainer(HookedTransformer model, Map<String, NDArray> trainable, boolean ownsModel, TrainConfig config,
                    BatchSource source) {
        if (model == null) throw new IllegalArgumentException("model must not be null");
        if (config == null) throw new IllegalArgumentException("config must not be null (TrainConfig.builder()...build())");
        if (source == null) throw new IllegalArgumentException("source must not be null: a BatchSource gives each step's batch");
        this.model = model;
        this.trainsModel = trainable == null;
        this.trainable = trainsModel ? model.parameters() : trainable;
        this.ownsModel = ownsModel;
        this.config = config;
        this.source = source;
        Set<String> decayed = trainsModel ? decayedTensors(model, config.decayGroups()) : decayedSubset(this.trainable,
                config.decayGroups());
        this.optimizer = new AdamW(this.trainable, decayed, config.beta1(), config.beta2(), config.eps(),
                config.weightDecay());
        this.loop = new TrainingLoop(new TrainingLoop.Cadence(config.steps(), config.checkpointEvery(),
                config.keepCheckpoints(), config.logEvery()), TrainerCheckpoint.FORMAT, new LoopSteps(), "train");
    }

    /**
     * Continues the run saved in {@code runDir} from its newest complete checkpoint, with the config stored there.
     * The trainer loads (and owns) the model: get it with {@link #model()}; {@link #close()} frees it.
     */
    public static Trainer resume(Path runDir, BatchSource source) {
        return resume(runDir, source, null);
    }

    /**
     * As {@link #resume(Path, BatchSource)} with a different config (e.g. more steps:
     * {@code saved.toBuilder().steps(2000).build()}); the learning-rate schedule follows the new config from here.
     * A null config keeps the saved one.
     */
    public static Trainer resume(Path runDir, BatchSource source, TrainConfig config) {
        TrainingLoop.Checkpoint c = TrainingLoop.resumable(runDir, TrainerCheckpoint.FORMAT);
        TrainerCheckpoint.State st = TrainerCheckpoint.read(c);
        TrainConfig cfg = config != null ? config : st.config();
        c.requireWithin(cfg.steps());
        HookedTransformer model = HookedTransformer.load(c.dir());
        try {
            Optional<Tokenizer> tok = model.tokenizer();
            if (tok.isPresent()) model.setTokenizer(Tokenizer.load(TrainerCheckpoint.keepTokenizer(runDir, tok.get().file())));
            if (java.nio.file.Files.exists(c.dir().resolve(TrainerCheckpoint.TRAINABLE))) {
                throw new IllegalArgumentException(c.dir() + " is a run that trained a subset of tensors (" 
                        + TrainerCheckpoint.TRAINABLE + ", e.g. a LoRA adapter): continue it with resumeOrStart on a "
                        + "trainer built the same way");
            }
            Trainer t = new Trainer(model, null, true, cfg, source);
            t.restore(c, st);
            t.loop.resumedFrom(runDir, c);
            return t;
        } catch (RuntimeException | Error e) {
            model.close();
            throw e;
        }
    }

    /** Loads the optimizer state and the trainer's counters and metrics of {@code c} (the model is already loaded). */
    private void restore(TrainingLoop.Checkpoint c, TrainerCheckpoint.State st) {
        optimizer.load(c.dir().resolve(TrainerCheckpoint.OPTIMIZER));
        if (optimizer.stepCount() != c.step()) {
            throw new IllegalArgumentException(c.dir() + ": optimizer state is at step " + optimizer.stepCount()
                    + " but the trainer state at step " + c.step());
        }
        tokensSeen = st.tokensSeen();
        trainSeconds = st.trainSeconds();
        history.clear();
        history.addAll(st.history());
    }

    /**
     * Names of the tensors that get weight decay under {@code groups}: see {@link TrainConfig.DecayGroups}. The token
     * embedding is recognised as {@link HookedTransformer#embedWeight()}, a learned positional table by its
     * checkpoint name ({@code wpe.weight}, {@code embed_positions.weight}).
     */
    public static Set<String> decayedTensors(HookedTransformer model, TrainConfig.DecayGroups groups) {
        Set<String> out = new LinkedHashSet<>();
        NDArray tokenEmbed = model.embedWeight();
        for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
            String n = e.getKey();
            NDArray p = e.getValue();
            boolean matrix = p.getShape().dimension() >= 2;
            boolean embedding = p == tokenEmbed || n.endsWith("wpe.weight") || n.endsWith("embed_positions.weight");
            boolean decay = switch (groups) {
                case ALL -> true;
                case MATRICES_AND_EMBEDDINGS -> matrix;
                case MATRICES -> matrix && !embedding;
            };
            if (decay) out.add(n);
        }
        return out;
    }

    /** Matrices of a trainable subset get decay, everything with {@code ALL}. */
    private static Set<String> decayedSubset(Map<String, NDArray> trainable, TrainConfig.DecayGroups groups) {
        Set<String> out = new LinkedHashSet<>();
        trainable.forEach((n, p) -> {
            if (groups == TrainConfig.DecayGroups.ALL || p.getShape().dimension() >= 2) out.add(n);
        });
        return out;
    }

    // ---------------------------------------------------------------- options (fluent)

    /**
     * Saves checkpoints under {@code dir} (created if missing). A directory that already holds checkpoints of another
     * run is refused: continue that run with {@link #trainOrResume} or {@link #resume}, or pick a new directory.
     */
    public Trainer runDir(Path dir) {
        ensureOpen();
        loop.runDir(dir);
        return this;
    }

    /**
     * Saves checkpoints under {@code dir}, first continuing the run saved there when it has a checkpoint: the model's
     * weights, the optimizer state, the step and the metrics are loaded from the newest one, into this trainer's model.
     * The saved run must be of the same model configuration and train config; only {@code steps} (at least the steps
     * done), the checkpoint, eval and log cadences may differ. Otherwise this fails naming the difference.
     */
    public Trainer resumeOrStart(Path dir) {
        ensureOpen();
        loop.resumeOrStart(dir, c -> {
            TrainerCheckpoint.State st = TrainerCheckpoint.read(c);
            c.requireMatch("model config", ModelConfig.load(c.dir()).toHf(), model.cfg().toHf(), List.of());
            c.requireMatch("train config", st.config().toJson(), config.toJson(), FREE_SETTINGS);
            try (HookedTransformer saved = HookedTransformer.load(c.dir())) {
                Map<String, NDArray> into = model.parameters();
                saved.parameters().forEach((name, w) -> into.get(name).set(new NDIndex(":"), w));
                if (!trainsModel) TrainerCheckpoint.readTrainable(c.dir(), trainable);
                Optional<Tokenizer> tok = saved.tokenizer();
                if (model.tokenizer().isEmpty() && tok.isPresent()) {
                    model.setTokenizer(Tokenizer.load(TrainerCheckpoint.keepTokenizer(dir, tok.get().file())));
                }
            }
            restore(c, st);
        });
        return this;
    }

    /**
     * Trains to the end, continuing the run in {@code dir} if it was stopped ({@link #resumeOrStart}) or starting it
     * there: one call for a notebook cell that may be run again.
     */
    public TrainResult trainOrResume(Path dir) {
        return resumeOrStart(dir).train();
    }

    /**
     * Eval data: every {@code evalEvery} steps and at the end, the mean loss over {@code evalBatches} batches
     * {@code evalSource.batch(evalSeed, k, batchSize)}, with a seed derived from the run's seed so that passing the
     * training source itself gives batches the run does not train on (for a generator of random examples).
     */
    public Trainer evalSource(BatchSource evalSource) {
        this.evalSource = evalSource;
        return this;
    }

    /** The training objective (default {@link LossFn#nextToken()}). */
    public Trainer loss(LossFn lossFn) {
        if (lossFn == null) throw new IllegalArgumentException("lossFn must not be null");
        this.lossFn = lossFn;
        return this;
    }

    /** Where progress goes (default {@link ProgressSink#bar()}, live in a notebook; {@link ProgressSink#none()} for silence). */
    public Trainer progress(ProgressSink sink) {
        loop.progress(sink);
        return this;
    }

    /** Test hook: runs after a checkpoint's files are written and before its atomic rename. */
    Trainer beforeCheckpointCommit(Runnable hook) {
        loop.beforeCommit(hook);
        return this;
    }

    // ---------------------------------------------------------------- accessors

    /** The model being trained. */
    public HookedTransformer model() {
        return model;
    }

    /** The run's config. */
    public TrainConfig config() {
        return config;
    }

    /** The tensors this trainer updates (the model's parameters unless it was given others). */
    public Map<String, NDArray> trainable() {
        return trainable;
    }

    /** The optimizer (its moments are live arrays). */
    public AdamW optimizer() {
        return optimizer;
    }

    /** Steps done. */
    public int step() {
        return loop.step();
    }

    /** The run directory, if checkpoints are saved. */
    public Optional<Path> runDirectory() {
        return loop.runDirectory();
    }

    /** The newest checkpoint this trainer wrote or resumed from. */
    public Optional<Path> lastCheckpoint() {
        return loop.lastCheckpoint();
    }

    /** Metrics so far. */
    public TrainResult result() {
        return new TrainResult(config, history, loop.lastCheckpoint(), trainSeconds, tokensSeen);
    }

    // ---------------------------------------------------------------- training

    /** Trains until every configured step is done; returns the metric history. */
    public TrainResult train() {
        return trainUntil(config.steps());
    }

    /**
     * Trains until {@code untilStep} steps are done (at most the configured total), e.g. to look at the model part-way
     * in a notebook and then continue with another call. Checkpoints follow {@code checkpointEvery} and the end of
     * the run, not the end of this call.
     */
    public TrainResult trainUntil(int untilStep) {
        ensureOpen();
        loop.trainUntil(untilStep);
        return result();
    }

    /** What the loop runs: one step of this trainer, its progress text and its checkpoint files. */
    private final class LoopSteps implements TrainingLoop.Steps {
        @Override
        public void begin() {
            trainable.values().forEach(p -> p.setRequiresGradient(true));
            optimizer.zeroGrad();  // gradients left by other code would otherwise be added to the first step's
            windowTokens = 0;
            windowSeconds = 0;
        }

        @Override
        public boolean step(int index) {
            StepMetrics m = runStep(index);
            if (evalSource != null && (m.step() == config.steps()
                    || config.evalEvery().isPresent() && m.step() % config.evalEvery().getAsInt() == 0)) {
                history.set(history.size() - 1, m.withEvalLoss(evalLoss()));
                return true;
            }
            return false;
        }

        @Override
        public void end() {
            trainable.values().forEach(p -> p.setRequiresGradient(false));
        }

        @Override
        public String status() {
            if (history.isEmpty()) return "";
            // throughput of the training steps only, over the steps since the last update
            String s = statusText(history.get(history.size() - 1), windowTokens / Math.max(1e-9, windowSeconds));
            windowTokens = 0;
            windowSeconds = 0;
            return s;
        }

        @Override
        public void save(Path dir, ObjectNode state) throws IOException {
            TrainerCheckpoint.write(dir, state, new TrainerCheckpoint.State(tokensSeen, trainSeconds, config,
                    List.copyOf(history)), model, optimizer);
            if (!trainsModel) TrainerCheckpoint.writeTrainable(dir, trainable);
        }

        @Override
        public TrainingInterruptedException interrupted(Path checkpoint) {
            return new TrainingInterruptedException(result(), checkpoint);
        }
    }

    /** One optimizer step: batch, forward and backward under a gradient collector, clip, AdamW, metrics. */
    private StepMetrics runStep(int i) {
        long t0 = System.nanoTime();
        Batch tb = source.batch(config.seed(), i, config.batchSize());
        if (tb == null) throw new IllegalStateException("the batch source returned null for step " + i);
        tb.requireTargets();
        if (tb.size() != config.batchSize()) {
            throw new IllegalStateException("the batch source returned " + tb.size() + " sequences for step " + i
                    + " but the config's batchSize is " + config.batchSize());
        }
        double lr = config.lrAt(i);
        float loss;
        // Everything the backward pass reads must stay alive until it has run: one scope spans forward and backward.
        try (NDScope scope = new NDScope()) {
            try (GradientCollector gc = Tensors.gradientCollector()) {
                NDArray l = lossFn.loss(model.forward(tb), tb);
                if (l.getShape().size() != 1) {
                    throw new IllegalStateException("the loss function must return a scalar, got shape " + l.getShape());
                }
                gc.backward(l);   // the parameters require gradients, so they receive them
                loss = l.getFloat();
            }
        }
        double norm = optimizer.gradNorm();
        if (!Float.isFinite(loss) || !Double.isFinite(norm)) {
            optimizer.zeroGrad();
            throw new IllegalStateException(String.format(Locale.ROOT, "training diverged at step %d: loss %s, gradient "
                    + "norm %s (lr %.3g); the model was not updated. Lower the learning rate, add warm-up or enable "
                    + "gradient clipping, then resume from the last checkpoint", i + 1, loss, norm, lr));
        }
        double scale = 1.0;
        if (config.gradClip().isPresent()) {
            // torch.nn.utils.clip_grad_norm_: coefficient max / (norm + 1e-6), capped at 1
            scale = Math.min(1.0, config.gradClip().getAsDouble() / (norm + 1e-6));
        }
        optimizer.step(lr, scale);
        double seconds = (System.nanoTime() - t0) / 1e9;
        windowTokens += tb.tokenCount();
        windowSeconds += seconds;
        tokensSeen += tb.tokenCount();
        trainSeconds += seconds;
        StepMetrics m = new StepMetrics(i + 1, loss, lr, norm, tb.tokenCount() / Math.max(seconds, 1e-9), OptionalDouble.empty());
        history.add(m);
        return m;
    }

    /** The mean eval loss now (see {@link #evalSource}). */
    public double evalLoss() {
        ensureOpen();
        if (evalSource == null) throw new IllegalStateException("no eval source: set one with evalSource(...)");
        long evalSeed = config.seed() ^ EVAL_SALT;
        double sum = 0;
        for (int k = 0; k < config.evalBatches(); k++) {
            Batch tb = evalSource.batch(evalSeed, k, config.batchSize());
            try (NDScope scope = new NDScope()) {
                sum += lossFn.loss(model.forward(tb), tb).getFloat();
            }
        }
        return sum / config.evalBatches();
    }

    /** Saves a checkpoint of the current state now; returns its directory. Needs a run directory. */
    public Path checkpoint() {
        ensureOpen();
        return loop.checkpoint();
    }

    private static String statusText(StepMetrics m, double tokensPerSec) {
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "loss %.4f | lr %.2e", m.loss(), m.lr()));
        if (tokensPerSec > 0) s.append(" | ").append(humanRate(tokensPerSec)).append(" tok/s");
        if (m.evalLoss().isPresent()) s.append(String.format(Locale.ROOT, " | eval %.4f", m.evalLoss().getAsDouble()));
        return s.toString();
    }

    private static String humanRate(double r) {
        if (r >= 1e6) return String.format(Locale.ROOT, "%.2fM", r / 1e6);
        if (r >= 1e3) return String.format(Locale.ROOT, "%.1fk", r / 1e3);
        return String.format(Locale.ROOT, "%.0f", r);
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("this trainer is closed");
    }

    /** Frees the optimizer state, and the model if this trainer loaded it ({@link #resume}). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        optimizer.close();
        if (ownsModel) model.close();
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("Trainer(step ").append(step()).append('/').append(config.steps());
        if (!history.isEmpty()) s.append(String.format(Locale.ROOT, ", loss %.4f", history.get(history.size() - 1).loss()));
        loop.runDirectory().ifPresent(r -> s.append(", run ").append(r));
        return s.append(')').toString();
    }
}
