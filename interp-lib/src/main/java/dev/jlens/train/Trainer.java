package dev.jlens.train;

import dev.jlens.model.Batch;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.training.GradientCollector;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;

import java.nio.file.Files;
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
 * rate, global-norm gradient clipping, periodic eval, atomic checkpoints and a live progress line.
 *
 * <pre>{@code
 * try (HookedTransformer model = HookedTransformer.random(ModelConfig.gpt2(64, 2, 4, 256, 32, 64), 0)) {
 *     Trainer trainer = new Trainer(model, TrainConfig.builder().steps(500).lr(3e-3).checkpointEvery(100).build(),
 *             (seed, step, n) -> Batch.of(myTask(seed, step, n)))
 *             .runDir(Path.of("runs/copy-task"));
 *     TrainResult r = trainer.train();
 *     r.lossCurve();   // XChart; r.table() for the metrics
 * }
 * // after a crash or an interrupt: Trainer.resume(Path.of("runs/copy-task"), source).train()
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

    private final HookedTransformer model;
    private final boolean ownsModel;
    private final TrainConfig config;
    private final BatchSource source;
    private final AdamW optimizer;
    private final List<StepMetrics> history = new ArrayList<>();
    private RunDir run;
    private BatchSource evalSource;
    private LossFn lossFn = LossFn.nextToken();
    private ProgressSink progress = ProgressSink.bar();
    private Runnable beforeCommit;  // test hook: runs before a checkpoint's rename
    private int step;
    private long tokensSeen;
    private double trainSeconds;
    private Path lastCheckpoint;
    private int lastCheckpointStep = -1;
    private long lastTokens;      // of the latest step, for the progress line's rate
    private double lastSeconds;
    private boolean closed;

    /** A trainer for {@code model} (which the caller keeps owning) from step 0. */
    public Trainer(HookedTransformer model, TrainConfig config, BatchSource source) {
        this(model, false, config, source);
    }

    private Trainer(HookedTransformer model, boolean ownsModel, TrainConfig config, BatchSource source) {
        if (model == null) throw new IllegalArgumentException("model must not be null");
        if (config == null) throw new IllegalArgumentException("config must not be null (TrainConfig.builder()...build())");
        if (source == null) throw new IllegalArgumentException("source must not be null: a BatchSource gives each step's batch");
        this.model = model;
        this.ownsModel = ownsModel;
        this.config = config;
        this.source = source;
        Map<String, NDArray> params = model.parameters();
        this.optimizer = new AdamW(params, decayedTensors(model, config.decayGroups()), config.beta1(), config.beta2(),
                config.eps(), config.weightDecay());
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
        RunDir rd = new RunDir(runDir);
        RunDir.Checkpoint c = rd.latest().orElseThrow(() -> new IllegalArgumentException("no complete checkpoint in "
                + rd.checkpointsDir() + " (looked for step-N directories holding config.json, model.safetensors, "
                + RunDir.OPTIMIZER + ", " + RunDir.STATE + " and " + RunDir.METRICS + ")"));
        rd.cleanLeftovers();
        RunDir.State st = rd.read(c);
        TrainConfig cfg = config != null ? config : st.config();
        if (st.step() > cfg.steps()) {
            throw new IllegalArgumentException("checkpoint " + c.dir() + " is at step " + st.step() + ", beyond the config's "
                    + cfg.steps() + " steps; pass a config with steps >= " + st.step());
        }
        HookedTransformer model = HookedTransformer.load(c.dir());
        try {
            Optional<Tokenizer> tok = model.tokenizer();
            if (tok.isPresent()) model.setTokenizer(Tokenizer.load(rd.keepTokenizer(tok.get().file())));
            Trainer t = new Trainer(model, true, cfg, source);
            t.optimizer.load(c.dir().resolve(RunDir.OPTIMIZER));
            if (t.optimizer.stepCount() != st.step()) {
                throw new IllegalArgumentException(c.dir() + ": optimizer state is at step " + t.optimizer.stepCount()
                        + " but the trainer state at step " + st.step());
            }
            t.step = st.step();
            t.tokensSeen = st.tokensSeen();
            t.trainSeconds = st.trainSeconds();
            t.history.addAll(st.history());
            t.run = rd;
            t.lastCheckpoint = c.dir();
            t.lastCheckpointStep = c.step();
            return t;
        } catch (RuntimeException | Error e) {
            model.close();
            throw e;
        }
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

    // ---------------------------------------------------------------- options (fluent)

    /**
     * Saves checkpoints under {@code dir} (created if missing). A directory that already holds checkpoints of another
     * run is refused: continue that run with {@link #resume} or pick a new directory.
     */
    public Trainer runDir(Path dir) {
        RunDir rd = new RunDir(dir);
        if (run != null && run.root().equals(rd.root())) return this;
        Optional<RunDir.Checkpoint> existing = rd.latest();
        if (existing.isPresent()) {
            throw new IllegalArgumentException("run directory " + rd.root() + " already holds checkpoints (newest: step "
                    + existing.get().step() + "); continue it with Trainer.resume(dir, source) or choose an empty directory");
        }
        try {
            Files.createDirectories(rd.checkpointsDir());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot create run directory " + rd.root(), e);
        }
        this.run = rd;
        return this;
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
        if (sink == null) throw new IllegalArgumentException("sink must not be null; use ProgressSink.none() for silence");
        this.progress = sink;
        return this;
    }

    /** Test hook: runs after a checkpoint's files are written and before its atomic rename. */
    Trainer beforeCheckpointCommit(Runnable hook) {
        this.beforeCommit = hook;
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

    /** The optimizer (its moments are live arrays). */
    public AdamW optimizer() {
        return optimizer;
    }

    /** Steps done. */
    public int step() {
        return step;
    }

    /** The run directory, if checkpoints are saved. */
    public Optional<Path> runDirectory() {
        return run == null ? Optional.empty() : Optional.of(run.root());
    }

    /** The newest checkpoint this trainer wrote or resumed from. */
    public Optional<Path> lastCheckpoint() {
        return Optional.ofNullable(lastCheckpoint);
    }

    /** Metrics so far. */
    public TrainResult result() {
        return new TrainResult(config, history, Optional.ofNullable(lastCheckpoint), trainSeconds, tokensSeen);
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
        if (untilStep < step || untilStep > config.steps()) {
            throw new IllegalArgumentException("untilStep " + untilStep + " must be in [" + step + " (steps done), "
                    + config.steps() + " (configured)]");
        }
        Map<String, NDArray> params = model.parameters();
        params.values().forEach(p -> p.setRequiresGradient(true));
        optimizer.zeroGrad();  // gradients left by other code would otherwise be added to the first step's
        progress.start(config.steps(), "train");
        progress.update(step, history.isEmpty() ? "" : statusText(history.get(history.size() - 1), 0));
        long windowTokens = 0;
        double windowSeconds = 0;
        try {
            while (step < untilStep) {
                if (Thread.interrupted()) throw interrupted();
                StepMetrics m = runStep();
                windowTokens += lastTokens;
                windowSeconds += lastSeconds;
                if (evalSource != null && (step == config.steps()
                        || config.evalEvery().isPresent() && step % config.evalEvery().getAsInt() == 0)) {
                    m = m.withEvalLoss(evalLoss());
                    history.set(history.size() - 1, m);
                }
                if (run != null && (step == config.steps()
                        || config.checkpointEvery().isPresent() && step % config.checkpointEvery().getAsInt() == 0)) {
                    checkpoint();
                }
                if (step % config.logEvery() == 0 || step == untilStep || m.evalLoss().isPresent()) {
                    // throughput of the training steps only, over the steps since the last update
                    progress.update(step, statusText(m, windowTokens / Math.max(1e-9, windowSeconds)));
                    windowTokens = 0;
                    windowSeconds = 0;
                }
            }
        } finally {
            progress.close();
            params.values().forEach(p -> p.setRequiresGradient(false));
        }
        return result();
    }

    /** One optimizer step: batch, forward and backward under a gradient collector, clip, AdamW, metrics. */
    private StepMetrics runStep() {
        int i = step;
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
            try (GradientCollector gc = openCollector()) {
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
        step++;
        lastTokens = tb.tokenCount();
        lastSeconds = seconds;
        tokensSeen += tb.tokenCount();
        trainSeconds += seconds;
        StepMetrics m = new StepMetrics(step, loss, lr, norm, tb.tokenCount() / Math.max(seconds, 1e-9), OptionalDouble.empty());
        history.add(m);
        return m;
    }

    private static GradientCollector openCollector() {
        try {
            return Engine.getInstance().newGradientCollector();
        } catch (IllegalStateException e) {
            throw new IllegalStateException("cannot record gradients: another GradientCollector is open in this JVM "
                    + "(DJL allows one at a time); close it before training", e);
        }
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
        if (run == null) throw new IllegalStateException("no run directory: set one with runDir(path) to save checkpoints");
        if (lastCheckpoint != null && lastCheckpointStep == step) return lastCheckpoint;
        RunDir.State st = new RunDir.State(step, tokensSeen, trainSeconds, config, List.copyOf(history));
        lastCheckpoint = run.save(st, model, optimizer, config.keepCheckpoints(), beforeCommit);
        lastCheckpointStep = step;
        return lastCheckpoint;
    }

    private TrainingInterruptedException interrupted() {
        Path saved = null;
        try {
            if (run != null) saved = checkpoint();
        } finally {
            Thread.currentThread().interrupt();
        }
        return new TrainingInterruptedException(result(), saved);
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
        StringBuilder s = new StringBuilder("Trainer(step ").append(step).append('/').append(config.steps());
        if (!history.isEmpty()) s.append(String.format(Locale.ROOT, ", loss %.4f", history.get(history.size() - 1).loss()));
        if (run != null) s.append(", run ").append(run.root());
        return s.append(')').toString();
    }
}
