package dev.jlens.sae;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Locale;
import java.util.OptionalInt;

/**
 * How {@link SaeTrainer} trains sparse dictionaries: steps and batch size, Adam (no weight decay) with a linear
 * warm-up and a linear decay to zero over the last {@code decayFraction} of the steps, a warm-up of the sparsity
 * coefficient, dead-latent bookkeeping (and optional resampling), checkpoints, seed and progress cadence. Build one with
 * {@code SaeTrainConfig.builder().steps(2000).batchSize(1024).lr(1e-3).build()}.
 *
 * <p>The update with 0-based index {@code i} reads {@code source.batch(i, batchSize)} and uses {@link #lrAt lrAt(i)}
 * and {@link #sparsityScaleAt sparsityScaleAt(i)}; after it {@code i + 1} steps are done.
 *
 * @param steps               total optimizer steps
 * @param batchSize           activation vectors (tokens) per step
 * @param lr                  peak learning rate
 * @param beta1               Adam first-moment decay
 * @param beta2               Adam second-moment decay
 * @param warmupSteps         linear learning-rate warm-up from {@code lr / warmupSteps} (0: none)
 * @param decayFraction       the learning rate decays linearly to zero over this last fraction of the steps (0: none)
 * @param sparsityWarmupSteps the sparsity coefficient ramps linearly from 0 to its full value over these steps
 * @param deadAfterTokens     a latent that has not fired in this many tokens is dead (AuxK, resampling, metrics)
 * @param densityWindowSteps  a latent is dense when it fired on more than 10% of the tokens of the last window of this
 *                            many steps
 * @param resampleEvery       every this many steps, re-initialise dead latents towards badly reconstructed inputs and
 *                            reset their Adam moments (empty: never)
 * @param checkpointEvery     save a checkpoint every this many steps when the trainer has a run directory (a final
 *                            one is always written); empty: only the final one
 * @param keepCheckpoints     newest checkpoints kept on disk
 * @param seed                the run's seed (resampling draws; the activation source has its own)
 * @param logEvery            progress-line cadence in steps
 */
public record SaeTrainConfig(int steps, int batchSize, double lr, double beta1, double beta2, int warmupSteps,
                             double decayFraction, int sparsityWarmupSteps, long deadAfterTokens, int densityWindowSteps,
                             OptionalInt resampleEvery, OptionalInt checkpointEvery, int keepCheckpoints, long seed,
                             int logEvery) {

    public SaeTrainConfig {
        require(steps > 0, "steps must be > 0", steps);
        require(batchSize > 0, "batchSize must be > 0", batchSize);
        require(lr > 0 && Double.isFinite(lr), "lr must be a finite number > 0", lr);
        require(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1)", beta1);
        require(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1)", beta2);
        require(warmupSteps >= 0 && warmupSteps <= steps, "warmupSteps must be in [0, steps=" + steps + "]", warmupSteps);
        require(decayFraction >= 0 && decayFraction <= 1, "decayFraction must be in [0, 1]", decayFraction);
        require(sparsityWarmupSteps >= 0, "sparsityWarmupSteps must be >= 0", sparsityWarmupSteps);
        require(deadAfterTokens > 0, "deadAfterTokens must be > 0", deadAfterTokens);
        require(densityWindowSteps > 0, "densityWindowSteps must be > 0", densityWindowSteps);
        resampleEvery = resampleEvery == null ? OptionalInt.empty() : resampleEvery;
        if (resampleEvery.isPresent()) require(resampleEvery.getAsInt() > 0, "resampleEvery must be > 0 (or empty)", resampleEvery.getAsInt());
        checkpointEvery = checkpointEvery == null ? OptionalInt.empty() : checkpointEvery;
        if (checkpointEvery.isPresent()) {
            require(checkpointEvery.getAsInt() > 0, "checkpointEvery must be > 0 (or empty)", checkpointEvery.getAsInt());
        }
        require(keepCheckpoints >= 1, "keepCheckpoints must be >= 1", keepCheckpoints);
        require(logEvery >= 1, "logEvery must be >= 1", logEvery);
    }

    private static void require(boolean ok, String what, double value) {
        if (!ok) throw new IllegalArgumentException("invalid SAE train config: " + what + ", got " + value);
    }

    /** A builder starting from the defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from this config (e.g. {@code cfg.toBuilder().steps(4000)} to extend a resumed run). */
    public Builder toBuilder() {
        return new Builder(this);
    }

    /** Tokens the whole run trains on. */
    public long totalTokens() {
        return (long) steps * batchSize;
    }

    /** Learning rate of the update with 0-based index {@code step}: warm-up, constant, linear decay to zero. */
    public double lrAt(int step) {
        if (step < 0 || step >= steps) throw new IllegalArgumentException("step " + step + " out of range [0, " + steps + ")");
        double f = 1.0;
        if (step < warmupSteps) f = (step + 1.0) / warmupSteps;
        int decaySteps = (int) Math.round(decayFraction * steps);
        int decayStart = steps - decaySteps;
        if (decaySteps > 0 && step >= decayStart) f = Math.min(f, (double) (steps - step) / decaySteps);
        return lr * f;
    }

    /** The factor on the sparsity coefficient at update {@code step}: {@code min(1, (step + 1) / sparsityWarmupSteps)}. */
    public float sparsityScaleAt(int step) {
        return sparsityWarmupSteps == 0 ? 1f : (float) Math.min(1.0, (step + 1.0) / sparsityWarmupSteps);
    }

    // ---------------------------------------------------------------- JSON (stored with every checkpoint)

    private static final ObjectMapper JSON = new ObjectMapper();

    /** This config as JSON (snake_case keys; absent options are null). */
    public ObjectNode toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.put("steps", steps);
        o.put("batch_size", batchSize);
        o.put("lr", lr);
        o.put("beta1", beta1);
        o.put("beta2", beta2);
        o.put("warmup_steps", warmupSteps);
        o.put("decay_fraction", decayFraction);
        o.put("sparsity_warmup_steps", sparsityWarmupSteps);
        o.put("dead_after_tokens", deadAfterTokens);
        o.put("density_window_steps", densityWindowSteps);
        if (resampleEvery.isPresent()) o.put("resample_every", resampleEvery.getAsInt()); else o.putNull("resample_every");
        if (checkpointEvery.isPresent()) o.put("checkpoint_every", checkpointEvery.getAsInt()); else o.putNull("checkpoint_every");
        o.put("keep_checkpoints", keepCheckpoints);
        o.put("seed", seed);
        o.put("log_every", logEvery);
        return o;
    }

    /** Reads a config written by {@link #toJson}; missing keys take their defaults. */
    public static SaeTrainConfig fromJson(JsonNode o) {
        SaeTrainConfig d = builder().build();
        Builder b = builder()
                .steps(o.path("steps").asInt(d.steps))
                .batchSize(o.path("batch_size").asInt(d.batchSize))
                .lr(o.path("lr").asDouble(d.lr))
                .betas(o.path("beta1").asDouble(d.beta1), o.path("beta2").asDouble(d.beta2))
                .warmupSteps(o.path("warmup_steps").asInt(d.warmupSteps))
                .decayFraction(o.path("decay_fraction").asDouble(d.decayFraction))
                .sparsityWarmupSteps(o.path("sparsity_warmup_steps").asInt(d.sparsityWarmupSteps))
                .deadAfterTokens(o.path("dead_after_tokens").asLong(d.deadAfterTokens))
                .densityWindowSteps(o.path("density_window_steps").asInt(d.densityWindowSteps))
                .keepCheckpoints(o.path("keep_checkpoints").asInt(d.keepCheckpoints))
                .seed(o.path("seed").asLong(d.seed))
                .logEvery(o.path("log_every").asInt(d.logEvery));
        b.resampleEvery = o.hasNonNull("resample_every") ? OptionalInt.of(o.get("resample_every").asInt()) : OptionalInt.empty();
        b.checkpointEvery = o.hasNonNull("checkpoint_every") ? OptionalInt.of(o.get("checkpoint_every").asInt()) : OptionalInt.empty();
        return b.build();
    }

    /** Fluent builder; every setter returns this builder. */
    public static final class Builder {
        private int steps = 1000;
        private int batchSize = 1024;
        private double lr = 1e-3;
        private double beta1 = 0.9, beta2 = 0.999;
        private int warmupSteps = 0;
        private double decayFraction = 0.2;
        private int sparsityWarmupSteps = 0;
        private long deadAfterTokens = 1_000_000;
        private int densityWindowSteps = 100;
        private OptionalInt resampleEvery = OptionalInt.empty();
        private OptionalInt checkpointEvery = OptionalInt.empty();
        private int keepCheckpoints = 2;
        private long seed = 0;
        private int logEvery = 10;
        private long totalTokens = -1;

        private Builder() {}

        private Builder(SaeTrainConfig c) {
            steps = c.steps;
            batchSize = c.batchSize;
            lr = c.lr;
            beta1 = c.beta1;
            beta2 = c.beta2;
            warmupSteps = c.warmupSteps;
            decayFraction = c.decayFraction;
            sparsityWarmupSteps = c.sparsityWarmupSteps;
            deadAfterTokens = c.deadAfterTokens;
            densityWindowSteps = c.densityWindowSteps;
            resampleEvery = c.resampleEvery;
            checkpointEvery = c.checkpointEvery;
            keepCheckpoints = c.keepCheckpoints;
            seed = c.seed;
            logEvery = c.logEvery;
        }

        /** Total optimizer steps. */
        public Builder steps(int v) { steps = v; totalTokens = -1; return this; }

        /** Total tokens instead of steps: {@code steps = ceil(tokens / batchSize)} at {@link #build()}. */
        public Builder totalTokens(long tokens) {
            if (tokens <= 0) throw new IllegalArgumentException("totalTokens must be > 0, got " + tokens);
            totalTokens = tokens;
            return this;
        }

        /** Activation vectors per step. */
        public Builder batchSize(int v) { batchSize = v; return this; }

        /** Peak learning rate. */
        public Builder lr(double v) { lr = v; return this; }

        /** Adam moment decays (default 0.9, 0.999). */
        public Builder betas(double b1, double b2) { beta1 = b1; beta2 = b2; return this; }

        /** Linear learning-rate warm-up steps. */
        public Builder warmupSteps(int v) { warmupSteps = v; return this; }

        /** Fraction of the run, at its end, over which the learning rate decays linearly to zero (default 0.2). */
        public Builder decayFraction(double v) { decayFraction = v; return this; }

        /** Steps over which the sparsity coefficient ramps up from 0. */
        public Builder sparsityWarmupSteps(int v) { sparsityWarmupSteps = v; return this; }

        /** Tokens without firing after which a latent counts as dead (default 1M). */
        public Builder deadAfterTokens(long v) { deadAfterTokens = v; return this; }

        /** Window, in steps, over which latent densities are measured (default 100). */
        public Builder densityWindowSteps(int v) { densityWindowSteps = v; return this; }

        /** Re-initialise dead latents every {@code n} steps. */
        public Builder resampleEvery(int n) { resampleEvery = OptionalInt.of(n); return this; }

        /** Save a checkpoint every {@code n} steps (when the trainer has a run directory). */
        public Builder checkpointEvery(int n) { checkpointEvery = OptionalInt.of(n); return this; }

        /** Newest checkpoints kept on disk (default 2). */
        public Builder keepCheckpoints(int n) { keepCheckpoints = n; return this; }

        /** The run's seed. */
        public Builder seed(long v) { seed = v; return this; }

        /** Progress-line cadence in steps. */
        public Builder logEvery(int n) { logEvery = n; return this; }

        /** The validated config. */
        public SaeTrainConfig build() {
            int s = steps;
            if (totalTokens > 0) {
                long n = (totalTokens + batchSize - 1) / Math.max(1, batchSize);
                if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("totalTokens " + totalTokens + " needs more than 2^31 steps");
                s = (int) n;
            }
            return new SaeTrainConfig(s, batchSize, lr, beta1, beta2, warmupSteps, decayFraction, sparsityWarmupSteps,
                    deadAfterTokens, densityWindowSteps, resampleEvery, checkpointEvery, keepCheckpoints, seed, logEvery);
        }
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "SaeTrainConfig(steps=%d, batch=%d, lr=%s",
                steps, batchSize, lr));
        if (warmupSteps > 0) s.append(", warmup=").append(warmupSteps);
        if (decayFraction > 0) s.append(", decay last ").append(decayFraction);
        if (sparsityWarmupSteps > 0) s.append(", sparsity warmup=").append(sparsityWarmupSteps);
        s.append(", dead after ").append(deadAfterTokens).append(" tokens");
        resampleEvery.ifPresent(n -> s.append(", resample every ").append(n));
        checkpointEvery.ifPresent(n -> s.append(", checkpoint every ").append(n));
        return s.append(", seed=").append(seed).append(')').toString();
    }
}
