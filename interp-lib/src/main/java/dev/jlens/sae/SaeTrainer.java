package dev.jlens.sae;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.store.ActivationSource;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import dev.jlens.train.AdamW;
import dev.jlens.train.ProgressSink;
import dev.jlens.util.Tensors;
import dev.jlens.viz.Plots;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * The one trainer for every sparse-dictionary architecture: Adam (no weight decay) on each dictionary's
 * {@link SparseCoder#trainableParameters()}, the variant's own loss ({@link SparseCoder#trainForward}), dead- and
 * dense-latent bookkeeping, optional resampling of dead latents, atomic checkpoints with resume, and a live progress
 * line. Several dictionaries can train on one activation stream: each batch is read once and fed to all of them.
 *
 * <pre>{@code
 * SaeTrainer.train(sae, source, SaeTrainConfig.builder().steps(2000).build());     // one dictionary, in place
 *
 * try (SaeTrainer t = SaeTrainer.of(source, cfg).add("topk", topk).add("relu", relu).runDir(Path.of("runs/sweep"))) {
 *     SaeTrainer.Result r = t.train();
 *     r.table();                         // per-step loss, mse, L0, FVU, dead and dense fractions, lr
 * }
 * // after a crash or an interrupt: SaeTrainer.resume(Path.of("runs/sweep"), source).train()
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
    static final String STATE = "trainer_state.json";
    static final String CHECKPOINTS = "checkpoints";
    private static final String FORMAT = "jlens-sae-train";
    private static final String WEIGHTS_SUFFIX = ".safetensors", OPTIMIZER_SUFFIX = ".optimizer.safetensors";
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    /** A latent firing on more than this fraction of tokens is dense. */
    public static final double DENSE_FRACTION = 0.1;
    private static final double ADAM_EPS = 1e-8;
    private static final ObjectMapper JSON = new ObjectMapper();

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
            StringColumn dict = StringColumn.create("dictionary");
            IntColumn step = IntColumn.create("step");
            DoubleColumn loss = DoubleColumn.create("loss"), mse = DoubleColumn.create("mse"), l0 = DoubleColumn.create("l0");
            DoubleColumn fvu = DoubleColumn.create("fvu"), dead = DoubleColumn.create("dead"), dense = DoubleColumn.create("dense");
            DoubleColumn lr = DoubleColumn.create("lr");
            history.forEach((name, rows) -> {
                for (StepStats s : rows) {
                    dict.append(name);
                    step.append(s.step());
                    loss.append(s.loss());
                    mse.append(s.mse());
                    l0.append(s.l0());
                    fvu.append(s.fvu());
                    dead.append(s.deadFraction());
                    dense.append(s.denseFraction());
                    lr.append(s.lr());
                }
            });
            return Table.create("SAE training", dict, step, loss, mse, l0, fvu, dead, dense, lr);
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
            Map<String, double[]> series = new LinkedHashMap<>();
            history.forEach((name, rows) -> {
                if (!rows.isEmpty()) series.put(name, rows.stream().mapToDouble(s -> metric(s, metric)).toArray());
            });
            XYChart chart = Plots.line(metric, "step", metric, series);
            if (Set.of("loss", "mse", "fvu").contains(metric)
                    && series.values().stream().flatMapToDouble(java.util.Arrays::stream).allMatch(v -> v > 0)) {
                chart.getStyler().setYAxisLogarithmic(true);   // these fall by orders of magnitude
            }
            return chart;
        }

        private static double metric(StepStats s, String m) {
            return switch (m) {
                case "loss" -> s.loss();
                case "mse" -> s.mse();
                case "l0" -> s.l0();
                case "fvu" -> s.fvu();
                case "dead" -> s.deadFraction();
                case "dense" -> s.denseFraction();
                case "lr" -> s.lr();
                default -> throw new IllegalArgumentException("unknown metric '" + m + "'; valid: loss, mse, l0, fvu, dead, dense, lr");
            };
        }

        @Override
        public String toString() {
            StringBuilder s = new StringBuilder("SaeTrainer.Result[");
            history.forEach((name, rows) -> s.append("\n  ").append(name).append(": ")
                    .append(rows.isEmpty() ? "no steps" : "step " + rows.get(rows.size() - 1).step() + " "
                            + statusText(rows.get(rows.size() - 1))));
            return s.append(history.isEmpty() ? "]" : "\n]").toString();
        }
    }

    /**
     * Thrown by {@link #train} when its thread is interrupted: training stopped between steps; with a run directory, a
     * checkpoint of that exact state was saved ({@link #checkpoint()}). The interrupt flag is set again.
     */
    public static final class Interrupted extends RuntimeException {
        private final transient Result result;
        private final transient Path checkpoint;

        Interrupted(int step, Result result, Path checkpoint) {
            super("SAE training interrupted after step " + step + "; " + (checkpoint != null
                    ? "saved checkpoint " + checkpoint + ": continue with SaeTrainer.resume(runDir, source)"
                    : "no run directory, so nothing was saved: call train() on the same trainer to continue"));
            this.result = result;
            this.checkpoint = checkpoint;
        }

        /** Metrics up to the interruption. */
        public Result result() {
            return result;
        }

        /** The checkpoint holding the state at the interruption, if the trainer has a run directory. */
        public Optional<Path> checkpoint() {
            return Optional.ofNullable(checkpoint);
        }
    }

    /** One dictionary with its optimizer and latent bookkeeping. */
    private static final class Slot {
        final String name;
        final SparseCoder sae;
        final boolean owned;
        final AdamW opt;
        final long[] sinceFired;       // tokens since each latent last fired
        final long[] windowCounts;     // firings in the current density window
        long windowTokens;
        double[] density;              // firing rate per latent over the last complete window (null before one)
        final List<StepStats> history = new ArrayList<>();

        Slot(String name, SparseCoder sae, boolean owned, SaeTrainConfig cfg) {
            this.name = name;
            this.sae = sae;
            this.owned = owned;
            this.opt = new AdamW(sae.trainableParameters(), Set.of(), cfg.beta1(), cfg.beta2(), ADAM_EPS, 0.0);
            int n = sae.cfg().dSae();
            sinceFired = new long[n];
            windowCounts = new long[n];
        }
    }

    private final ActivationSource source;
    private final SaeTrainConfig cfg;
    private final Map<String, Slot> slots = new LinkedHashMap<>();
    private ProgressSink progress = ProgressSink.bar();
    private Path root;
    private Path lastCheckpoint;
    private int lastCheckpointStep = -1;
    private int step;
    private boolean closed;
    private boolean sparseTopK = true;

    private SaeTrainer(ActivationSource source, SaeTrainConfig cfg) {
        if (source == null) throw new IllegalArgumentException("source must not be null: an ActivationSource gives each step's batch");
        if (cfg == null) throw new IllegalArgumentException("cfg must not be null (SaeTrainConfig.builder()...build())");
        this.source = source;
        this.cfg = cfg;
    }

    /** Turns the sparse TopK step off (tests compare it with the general path). */
    SaeTrainer sparseTopK(boolean on) {
        sparseTopK = on;
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
        SparseCoder sae = SparseCoder.create(config, cfg.seed());
        try {
            addSlot(name, sae, true);
        } catch (RuntimeException e) {
            sae.close();
            throw e;
        }
        return this;
    }

    private void addSlot(String name, SparseCoder sae, boolean owned) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("dictionary name '" + name + "' must be letters, digits, '.', '_' or '-'");
        }
        if (slots.containsKey(name)) throw new IllegalArgumentException("a dictionary named '" + name + "' was already added");
        if (sae == null) throw new IllegalArgumentException("dictionary '" + name + "' is null");
        if (step > 0) throw new IllegalStateException("cannot add dictionary '" + name + "' after training started (step " + step + ")");
        for (Slot s : slots.values()) {
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
                    + " but the source's normalization scale is " + scale + "; its weights live in other units");
        }
        AbstractSae a = (AbstractSae) sae;
        a.setInputScale(scale);
        if (c.hookName().isEmpty() && !source.hookName().isEmpty()) a.setHookName(source.hookName());
        slots.put(name, new Slot(name, sae, owned, cfg));
    }

    /**
     * Saves checkpoints under {@code dir} (created if missing). A directory that already holds checkpoints is
     * refused: continue that run with {@link #resume} or pick a new directory.
     */
    public SaeTrainer runDir(Path dir) {
        ensureOpen();
        Path r = dir.toAbsolutePath().normalize();
        if (r.equals(root)) return this;
        Optional<Path> existing = latest(r);
        if (existing.isPresent()) {
            throw new IllegalArgumentException("run directory " + r + " already holds checkpoints (newest: "
                    + existing.get().getFileName() + "); continue it with SaeTrainer.resume(dir, source) or choose an empty directory");
        }
        try {
            Files.createDirectories(r.resolve(CHECKPOINTS));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create run directory " + r, e);
        }
        root = r;
        return this;
    }

    /** Where progress goes (default {@link ProgressSink#bar()}; {@link ProgressSink#none()} for silence). */
    public SaeTrainer progress(ProgressSink sink) {
        if (sink == null) throw new IllegalArgumentException("sink must not be null; use ProgressSink.none() for silence");
        this.progress = sink;
        return this;
    }

    // ---------------------------------------------------------------- accessors

    /** The run's config. */
    public SaeTrainConfig config() {
        return cfg;
    }

    /** Steps done. */
    public int step() {
        return step;
    }

    /** The dictionary added as {@code name}. */
    public SparseCoder dictionary(String name) {
        Slot s = slots.get(name);
        if (s == null) throw new IllegalArgumentException("no dictionary '" + name + "'; dictionaries: " + slots.keySet());
        return s.sae;
    }

    /** Every dictionary by name, in the order added. */
    public Map<String, SparseCoder> dictionaries() {
        Map<String, SparseCoder> out = new LinkedHashMap<>();
        slots.forEach((k, v) -> out.put(k, v.sae));
        return Collections.unmodifiableMap(out);
    }

    /** The optimizer of dictionary {@code name} (its moments are live arrays). */
    public AdamW optimizer(String name) {
        dictionary(name);
        return slots.get(name).opt;
    }

    /** Each latent's tokens since it last fired, for dictionary {@code name} (a copy). */
    public long[] tokensSinceFired(String name) {
        dictionary(name);
        return slots.get(name).sinceFired.clone();
    }

    /** The run directory, if checkpoints are saved. */
    public Optional<Path> runDirectory() {
        return Optional.ofNullable(root);
    }

    /** Metrics so far. */
    public Result result() {
        Map<String, List<StepStats>> h = new LinkedHashMap<>();
        slots.forEach((k, v) -> h.put(k, v.history));
        return new Result(h, Optional.ofNullable(lastCheckpoint));
    }

    // ---------------------------------------------------------------- training

    /** Trains until every configured step is done; returns the histories. */
    public Result train() {
        return trainUntil(cfg.steps());
    }

    /** Trains until {@code untilStep} steps are done (checkpoints follow {@code checkpointEvery} and the run's end). */
    public Result trainUntil(int untilStep) {
        ensureOpen();
        if (slots.isEmpty()) throw new IllegalStateException("no dictionaries: add one with add(name, sae)");
        if (untilStep < step || untilStep > cfg.steps()) {
            throw new IllegalArgumentException("untilStep " + untilStep + " must be in [" + step + " (steps done), "
                    + cfg.steps() + " (configured)]");
        }
        for (Slot s : slots.values()) {
            s.opt.parameters().values().forEach(p -> p.setRequiresGradient(true));
            s.opt.zeroGrad();   // gradients left by other code would otherwise join the first step's
        }
        progress.start(cfg.steps(), slots.size() == 1 ? "train SAE" : "train " + slots.size() + " SAEs");
        if (step > 0) progress.update(step, progressText());
        try {
            while (step < untilStep) {
                if (Thread.interrupted()) throw interrupted();
                runStep();
                if (root != null && (step == cfg.steps()
                        || cfg.checkpointEvery().isPresent() && step % cfg.checkpointEvery().getAsInt() == 0)) {
                    checkpoint();
                }
                if (step % cfg.logEvery() == 0 || step == untilStep) progress.update(step, progressText());
            }
        } finally {
            progress.close();
            for (Slot s : slots.values()) s.opt.parameters().values().forEach(p -> p.setRequiresGradient(false));
        }
        return result();
    }

    private void runStep() {
        int i = step;
        int b = cfg.batchSize();
        double lr = cfg.lrAt(i);
        float sparsity = cfg.sparsityScaleAt(i);
        List<Slot> all = new ArrayList<>(slots.values());
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
            SparseCoder.Output[] out = new SparseCoder.Output[n];
            SparseDecode.TopKStep[] sparse = new SparseDecode.TopKStep[n];
            // Everything the backward passes read stays alive until they have run: the scope spans both.
            try (GradientCollector gc = openCollector()) {
                for (int k = 0; k < n; k++) {
                    ctx[k] = new SparseCoder.Context(i, sparsity, deadMask(all.get(k), mgr), mgr);
                    if (sparseTopK && all.get(k).sae instanceof TopKSae && ctx[k].deadMask() == null) {
                        // Same loss and gradients without a dense [B, dSae] tensor on the tape (~2x faster at d_sae
                        // 8192); AuxK needs the dense pre-activations, so steps with dead latents take the general path.
                        sparse[k] = SparseDecode.trainTopK(all.get(k).sae, x, gc, SparseDecode.DEFAULT_CHUNK);
                        continue;
                    }
                    out[k] = all.get(k).sae.trainForward(x, ctx[k]);
                    if (out[k].loss().getShape().size() != 1) {
                        throw new IllegalStateException("dictionary '" + all.get(k).name + "' returned a loss of shape "
                                + out[k].loss().getShape() + "; a scalar is needed");
                    }
                    gc.backward(out[k].loss());
                }
            }
            // Measure everything before updating anything, so a diverged dictionary leaves every one untouched.
            NDArray centredSq = x.sub(x.mean(new int[]{0}, true)).square().sum();
            float[][] scalars = new float[n][];
            float[][] fired = new float[n][];
            for (int k = 0; k < n; k++) {
                if (sparse[k] != null) {
                    float l = sparse[k].loss();
                    scalars[k] = new float[]{l, l, l * b, centredSq.getFloat()};   // loss = sum sq. error / B
                    fired[k] = sparse[k].fired();
                    if (!Float.isFinite(l)) throw diverged(all, k, i, l, lr);
                    continue;
                }
                SparseCoder.Output o = out[k];
                NDArray mse = o.parts().containsKey("mse") ? o.parts().get("mse") : Losses.sumSquares(x.sub(o.recon()));
                NDArray errSq = x.sub(o.recon()).square().sum();
                scalars[k] = NDArrays.stack(new NDList(o.loss().stopGradient(), mse.stopGradient(), errSq.stopGradient(),
                        centredSq)).toFloatArray();
                if (!Float.isFinite(scalars[k][0])) throw diverged(all, k, i, scalars[k][0], lr);
                fired[k] = o.acts().gt(0).sum(new int[]{0}).toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
            }
            for (int k = 0; k < n; k++) {
                Slot s = all.get(k);
                s.sae.beforeStep(ctx[k]);
                s.opt.step(lr, 1.0);
                s.sae.afterStep(ctx[k], out[k]);
                s.history.add(record(s, i + 1, scalars[k], fired[k], lr));
            }
            if (cfg.resampleEvery().isPresent() && (i + 1) % cfg.resampleEvery().getAsInt() == 0) {
                for (Slot s : all) resample(s, raw, x, i);
            }
        }
        step++;
    }

    private static IllegalStateException diverged(List<Slot> all, int k, int i, float loss, double lr) {
        for (Slot s : all) s.opt.zeroGrad();
        return new IllegalStateException(String.format(Locale.ROOT, "dictionary '%s' diverged at step %d: loss %s "
                + "(lr %.3g); no dictionary was updated. Lower the learning rate or add warm-up, then resume from the "
                + "last checkpoint", all.get(k).name, i + 1, loss, lr));
    }

    /** Updates the latent counters with one step's firings and returns the step's measurements. */
    private StepStats record(Slot s, int stepDone, float[] sc, float[] fired, double lr) {
        int b = cfg.batchSize();
        int dSae = fired.length;
        long total = 0;
        int dead = 0;
        for (int j = 0; j < dSae; j++) {
            long c = (long) fired[j];
            total += c;
            s.sinceFired[j] = c > 0 ? 0 : s.sinceFired[j] + b;
            s.windowCounts[j] += c;
            if (s.sinceFired[j] >= cfg.deadAfterTokens()) dead++;
        }
        s.windowTokens += b;
        double[] rate = s.density;
        if (s.windowTokens >= (long) cfg.densityWindowSteps() * b) {
            s.density = new double[dSae];
            for (int j = 0; j < dSae; j++) s.density[j] = (double) s.windowCounts[j] / s.windowTokens;
            java.util.Arrays.fill(s.windowCounts, 0);
            s.windowTokens = 0;
            rate = s.density;
        }
        int dense = 0;
        for (int j = 0; j < dSae; j++) {
            double r = rate != null ? rate[j] : (double) s.windowCounts[j] / s.windowTokens;
            if (r > DENSE_FRACTION) dense++;
        }
        double fvu = sc[3] > 0 ? sc[2] / sc[3] : Double.NaN;
        return new StepStats(stepDone, sc[0], sc[1], (double) total / b, fvu, (double) dead / dSae, (double) dense / dSae, lr);
    }

    private NDArray deadMask(Slot s, NDManager mgr) {
        boolean[] dead = new boolean[s.sinceFired.length];
        boolean any = false;
        for (int j = 0; j < dead.length; j++) {
            dead[j] = s.sinceFired[j] >= cfg.deadAfterTokens();
            any |= dead[j];
        }
        return any ? Tensors.owned(mgr.create(dead)) : null;
    }

    /**
     * Anthropic-style resampling (Towards Monosemanticity): each dead latent gets, as its decoder row, the direction
     * of an input of this batch drawn with probability proportional to its squared reconstruction error (minus
     * {@code b_dec}); its encoder column is that direction scaled to 0.2 times the mean encoder norm of the live
     * latents; its encoder bias and its Adam moments are reset.
     */
    private void resample(Slot s, NDArray raw, NDArray x, int i) {
        int dSae = s.sae.cfg().dSae(), dIn = s.sae.cfg().dIn();
        List<Integer> dead = new ArrayList<>();
        for (int j = 0; j < dSae; j++) if (s.sinceFired[j] >= cfg.deadAfterTokens()) dead.add(j);
        if (dead.isEmpty()) return;
        SaeWeights w = s.sae.weights();
        NDManager mgr = x.getManager();
        try (NDScope scope = new NDScope()) {
            float[] err = raw.sub(s.sae.reconstruct(raw)).square().sum(new int[]{1}).toFloatArray();
            float[] xs = x.toFloatArray();
            float[] bDec = w.get(SaeWeights.B_DEC).toFloatArray();
            double[] cum = new double[err.length];
            double acc = 0;
            for (int r = 0; r < err.length; r++) cum[r] = acc += err[r];
            SplittableRandom rng = new SplittableRandom(cfg.seed() * 0x9E3779B97F4A7C15L + i);
            float[] dirs = new float[dSae * dIn];
            float[] keep = new float[dSae];
            java.util.Arrays.fill(keep, 1f);
            for (int j : dead) {
                int row = pick(cum, acc, rng);
                double ss = 0;
                for (int d = 0; d < dIn; d++) {
                    float v = xs[row * dIn + d] - bDec[d];
                    dirs[j * dIn + d] = v;
                    ss += (double) v * v;
                }
                float inv = (float) (1 / Math.sqrt(Math.max(ss, 1e-24)));
                for (int d = 0; d < dIn; d++) dirs[j * dIn + d] *= inv;
                keep[j] = 0f;
                s.sinceFired[j] = 0;
            }
            NDArray keepF = Tensors.owned(mgr.create(keep));
            NDArray dirsFD = Tensors.owned(mgr.create(dirs, new Shape(dSae, dIn)));
            NDArray wEnc = w.get(SaeWeights.W_ENC);
            NDArray encNorms = wEnc.norm(new int[]{0});
            float alive = keepF.sum().getFloat();
            float encScale = alive > 0 ? 0.2f * encNorms.mul(keepF).sum().getFloat() / alive : 0.2f;
            w.get(SaeWeights.W_DEC).muli(keepF.expandDims(1)).addi(dirsFD);
            wEnc.muli(keepF.expandDims(0)).addi(dirsFD.transpose().mul(encScale));
            w.get(SaeWeights.B_ENC).muli(keepF);
            for (String name : List.of(SaeWeights.W_DEC, SaeWeights.W_ENC, SaeWeights.B_ENC)) {
                NDArray mask = name.equals(SaeWeights.W_DEC) ? keepF.expandDims(1)
                        : name.equals(SaeWeights.W_ENC) ? keepF.expandDims(0) : keepF;
                s.opt.expAvg(name).muli(mask);
                s.opt.expAvgSq(name).muli(mask);
            }
        }
    }

    private static int pick(double[] cum, double total, SplittableRandom rng) {
        if (!(total > 0)) return rng.nextInt(cum.length);
        double u = rng.nextDouble() * total;
        int lo = 0, hi = cum.length - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (cum[mid] > u) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    private static GradientCollector openCollector() {
        try {
            return Engine.getInstance().newGradientCollector();
        } catch (IllegalStateException e) {
            throw new IllegalStateException("cannot record gradients: another GradientCollector is open in this JVM "
                    + "(DJL allows one at a time); close it before training", e);
        }
    }

    private Interrupted interrupted() {
        Path saved = null;
        try {
            if (root != null) saved = checkpoint();
        } finally {
            Thread.currentThread().interrupt();
        }
        return new Interrupted(step, result(), saved);
    }

    private String progressText() {
        if (slots.size() == 1) {
            Slot s = slots.values().iterator().next();
            return s.history.isEmpty() ? "" : statusText(s.history.get(s.history.size() - 1));
        }
        StringBuilder sb = new StringBuilder();
        for (Slot s : slots.values()) {
            if (s.history.isEmpty()) continue;
            if (sb.length() > 0) sb.append("  ·  ");
            sb.append(s.name).append(": ").append(statusText(s.history.get(s.history.size() - 1)));
        }
        return sb.toString();
    }

    private static String statusText(StepStats s) {
        return String.format(Locale.ROOT, "loss %.4g | L0 %.1f | FVU %.3f | dead %.1f%% | dense %.1f%%",
                s.loss(), s.l0(), s.fvu(), 100 * s.deadFraction(), 100 * s.denseFraction());
    }

    // ---------------------------------------------------------------- checkpoints

    /**
     * Saves a checkpoint of the current state now and returns its directory: {@code RUN/checkpoints/step-N/} with each
     * dictionary's weights ({@code NAME.safetensors}, SAELens tensor names), its Adam moments
     * ({@code NAME.optimizer.safetensors}) and {@code trainer_state.json} (configs, latent counters, history). Written
     * to a temporary directory, flushed and renamed into place atomically.
     */
    public Path checkpoint() {
        ensureOpen();
        if (root == null) throw new IllegalStateException("no run directory: set one with runDir(path) to save checkpoints");
        if (lastCheckpoint != null && lastCheckpointStep == step) return lastCheckpoint;
        Path dir = root.resolve(CHECKPOINTS);
        Path target = Checkpoints.commitStep(dir, step, tmp -> {
            for (Slot s : slots.values()) {
                Safetensors.write(tmp.resolve(s.name + WEIGHTS_SUFFIX), s.sae.weights().params(),
                        Map.of("format", "jlens-sae"), DType.F32);
                s.opt.save(tmp.resolve(s.name + OPTIMIZER_SUFFIX));
            }
            JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve(STATE).toFile(), stateJson());   // last: marks it complete
        }, null);
        Checkpoints.prune(dir, SaeTrainer::complete, cfg.keepCheckpoints());
        lastCheckpoint = target;
        lastCheckpointStep = step;
        return target;
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
        Path r = runDir.toAbsolutePath().normalize();
        Path c = latest(r).orElseThrow(() -> new IllegalArgumentException("no complete checkpoint in " + r.resolve(CHECKPOINTS)
                + " (looked for step-N directories holding " + STATE + ")"));
        Checkpoints.cleanLeftovers(r.resolve(CHECKPOINTS));
        JsonNode st;
        try {
            st = JSON.readTree(c.resolve(STATE).toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + c.resolve(STATE), e);
        }
        if (!FORMAT.equals(st.path("format").asText())) {
            throw new IllegalArgumentException(c.resolve(STATE) + " is not a JLens SAE trainer state (format '"
                    + st.path("format").asText() + "')");
        }
        int savedStep = st.path("step").asInt(-1);
        SaeTrainConfig cfg = config != null ? config : SaeTrainConfig.fromJson(st.path("train_config"));
        if (savedStep > cfg.steps()) {
            throw new IllegalArgumentException("checkpoint " + c + " is at step " + savedStep + ", beyond the config's "
                    + cfg.steps() + " steps; pass a config with steps >= " + savedStep);
        }
        SaeTrainer t = new SaeTrainer(source, cfg);
        try {
            for (JsonNode d : st.path("dictionaries")) {
                String name = d.path("name").asText();
                SaeConfig sc = SaeConfigJson.read(d.path("config"));
                SaeWeights w;
                try (Safetensors f = Safetensors.open(c.resolve(name + WEIGHTS_SUFFIX)); NDManager tmp = NDManager.newBaseManager()) {
                    Map<String, NDArray> tensors = new LinkedHashMap<>();
                    for (String tn : f.names()) tensors.put(tn, f.load(tn, tmp));
                    w = new SaeWeights(sc, tensors);
                }
                SparseCoder sae = SparseCoder.wrap(sc, w);
                try {
                    t.addSlot(name, sae, true);
                } catch (RuntimeException e) {
                    sae.close();
                    throw e;
                }
                Slot s = t.slots.get(name);
                s.opt.load(c.resolve(name + OPTIMIZER_SUFFIX));
                if (s.opt.stepCount() != savedStep) {
                    throw new IllegalArgumentException(c + ": the optimizer of '" + name + "' is at step " + s.opt.stepCount()
                            + " but the trainer state at step " + savedStep);
                }
                readLongs(d.path("since_fired"), s.sinceFired, name);
                readLongs(d.path("window_counts"), s.windowCounts, name);
                s.windowTokens = d.path("window_tokens").asLong();
                if (d.hasNonNull("density")) {
                    s.density = new double[s.sinceFired.length];
                    for (int j = 0; j < s.density.length; j++) s.density[j] = d.get("density").get(j).asDouble();
                }
                for (JsonNode h : d.path("history")) {
                    s.history.add(new StepStats(h.path("step").asInt(), h.path("loss").asDouble(), h.path("mse").asDouble(),
                            h.path("l0").asDouble(), h.path("fvu").asDouble(), h.path("dead").asDouble(),
                            h.path("dense").asDouble(), h.path("lr").asDouble()));
                }
                if (s.history.size() != savedStep) {
                    throw new IllegalArgumentException(c.resolve(STATE) + " has " + s.history.size() + " history rows for '"
                            + name + "' at step " + savedStep);
                }
            }
            t.step = savedStep;
            t.root = r;
            t.lastCheckpoint = c;
            t.lastCheckpointStep = savedStep;
            return t;
        } catch (RuntimeException | Error e) {
            t.close();
            throw e;
        }
    }

    private static void readLongs(JsonNode a, long[] into, String name) {
        if (a.size() != into.length) {
            throw new IllegalArgumentException("trainer state of '" + name + "' has " + a.size() + " latent counters for "
                    + into.length + " latents");
        }
        for (int j = 0; j < into.length; j++) into[j] = a.get(j).asLong();
    }

    private ObjectNode stateJson() {
        ObjectNode o = JSON.createObjectNode();
        o.put("format", FORMAT);
        o.put("version", 1);
        o.put("step", step);
        o.put("normalization_scale", source.normalizationScale());
        o.set("train_config", cfg.toJson());
        ArrayNode ds = o.putArray("dictionaries");
        for (Slot s : slots.values()) {
            ObjectNode d = ds.addObject();
            d.put("name", s.name);
            d.set("config", SaeConfigJson.write(s.sae.cfg()));
            ArrayNode since = d.putArray("since_fired");
            for (long v : s.sinceFired) since.add(v);
            ArrayNode wc = d.putArray("window_counts");
            for (long v : s.windowCounts) wc.add(v);
            d.put("window_tokens", s.windowTokens);
            if (s.density == null) {
                d.putNull("density");
            } else {
                ArrayNode dn = d.putArray("density");
                for (double v : s.density) dn.add(v);
            }
            ArrayNode h = d.putArray("history");
            for (StepStats m : s.history) {
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
        return o;
    }

    /** The newest complete checkpoint directory of a run. */
    private static Optional<Path> latest(Path root) {
        return Checkpoints.latest(root.resolve(CHECKPOINTS), SaeTrainer::complete).map(Checkpoints.Step::dir);
    }

    private static boolean complete(Path stepDir) {
        return Files.isRegularFile(stepDir.resolve(STATE));
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("this SAE trainer is closed");
    }

    /** Frees the optimizer states and the dictionaries this trainer created or loaded (not those passed to add). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (Slot s : slots.values()) {
            s.opt.close();
            if (s.owned) s.sae.close();
        }
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("SaeTrainer(step ").append(step).append('/').append(cfg.steps())
                .append(", ").append(slots.keySet());
        if (root != null) s.append(", run ").append(root);
        return s.append(')').toString();
    }
}
