package dev.jlens.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Consumer;

/**
 * The training loop under both trainers ({@link Trainer} for language models, {@code sae.SaeTrainer} for sparse
 * dictionaries): it counts steps up to the configured total, reports progress, saves periodic atomic checkpoints in a
 * run directory, turns a thread interrupt into a checkpoint and an {@link Interrupted} exception, and resumes from the
 * newest checkpoint. A trainer supplies only what one step does and what its checkpoint holds ({@link Steps}).
 *
 * <p>A run directory holds {@code checkpoints/step-N/} directories written by {@link dev.jlens.io.Checkpoints}: every
 * file goes into a temporary directory that is renamed into place in one step, {@value #STATE} last, so a process
 * killed mid-write never leaves a half-written {@code step-N}. {@value #STATE} names the trainer's {@link Format}
 * ({@code "format"}), its {@code "step"} and whatever else the trainer records.
 */
public final class TrainingLoop {
    /** Every checkpoint's state file, written last: its presence marks the checkpoint complete. */
    public static final String STATE = "trainer_state.json";

    /**
     * How long a run is and how often the loop saves and reports.
     *
     * @param steps           total optimizer steps of the run
     * @param checkpointEvery save a checkpoint every this many steps (with a run directory; the last step always saves)
     * @param keepCheckpoints how many of the newest checkpoints stay on disk
     * @param logEvery        update the progress line every this many steps
     */
    public record Cadence(int steps, OptionalInt checkpointEvery, int keepCheckpoints, int logEvery) {
        public Cadence {
            checkpointEvery = checkpointEvery == null ? OptionalInt.empty() : checkpointEvery;
            if (steps < 1 || keepCheckpoints < 1 || logEvery < 1 || checkpointEvery.orElse(1) < 1) {
                throw new IllegalArgumentException("steps, keepCheckpoints, logEvery and checkpointEvery must be >= 1; got "
                        + steps + ", " + keepCheckpoints + ", " + logEvery + ", " + checkpointEvery);
            }
        }
    }

    /**
     * A trainer's checkpoint format.
     *
     * @param name       the {@code "format"} written in {@value #STATE}
     * @param version    its {@code "version"}
     * @param files      the files a complete checkpoint holds besides {@value #STATE}
     * @param resumeCall how a user continues a saved run, for messages (e.g. {@code Trainer.resume(runDir, source)})
     */
    public record Format(String name, int version, List<String> files, String resumeCall) {
        public Format {
            files = List.copyOf(files);
        }
    }

    /** What a trainer does each step and what its checkpoints hold; the loop decides when. */
    public interface Steps {
        /** Called before the first step of each training call (e.g. to let the parameters record gradients). */
        void begin();

        /**
         * Runs the update with 0-based index {@code index} ({@code index} steps are done before it). Returns true when
         * the progress line should show this step even off its cadence (e.g. an eval loss was computed).
         */
        boolean step(int index);

        /** Called after the last step of each training call, also when it failed. Throws nothing. */
        void end();

        /** The progress line's status text now (e.g. {@code loss 1.2345 | lr 1.00e-03}); empty before any step. */
        String status();

        /**
         * Writes the trainer's files into {@code dir} (an empty temporary directory) and its fields into
         * {@code state}, which already holds the format, version and step and is written to {@value #STATE} last.
         */
        void save(Path dir, ObjectNode state) throws IOException;

        /** The exception to throw after an interrupt; {@code checkpoint} is null without a run directory. */
        Interrupted interrupted(Path checkpoint);
    }

    /**
     * A complete checkpoint on disk.
     *
     * @param dir   its {@code step-N} directory
     * @param step  the steps done when it was saved
     * @param state its {@value #STATE}, already checked for the format and step
     */
    public record Checkpoint(Path dir, int step, JsonNode state) {

        /** Fails, naming both numbers, when this checkpoint is beyond a run of {@code steps} steps. */
        public void requireWithin(int steps) {
            if (step > steps) {
                throw new IllegalArgumentException("checkpoint " + dir + " is at step " + step + ", beyond the config's "
                        + steps + " steps; pass a config with steps >= " + step);
            }
        }

        /**
         * Fails, naming every difference, unless {@code saved} (as this checkpoint recorded it) and {@code here} (as
         * the trainer that wants to continue has it) agree on every key but {@code free}. {@code what} says what
         * they describe (e.g. {@code "train config"}).
         */
        public void requireMatch(String what, JsonNode saved, JsonNode here, Collection<String> free) {
            List<String> diffs = new ArrayList<>();
            List<String> keys = new ArrayList<>();
            saved.fieldNames().forEachRemaining(keys::add);
            for (Iterator<String> it = here.fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (!keys.contains(k)) keys.add(k);
            }
            for (String k : keys) {
                if (free.contains(k)) continue;
                JsonNode a = saved.path(k), b = here.path(k);
                if (!a.equals(SAME_VALUE, b)) diffs.add(k + " (" + show(a) + " in the run directory, " + show(b) + " here)");
            }
            if (!diffs.isEmpty()) {
                throw new IllegalArgumentException("the run in " + dir.getParent().getParent() + " has another " + what
                        + ": " + String.join(", ", diffs) + ". Use the same settings to continue it, or choose another "
                        + "run directory");
            }
        }

        /** Equal nodes, numbers by value: a parsed 128 is an int node, one put as a long a long node. */
        private static final java.util.Comparator<JsonNode> SAME_VALUE = (x, y) ->
                x.isNumber() && y.isNumber() ? x.decimalValue().compareTo(y.decimalValue()) : x.equals(y) ? 0 : 1;

        private static String show(JsonNode v) {
            return v.isMissingNode() ? "absent" : v.isTextual() ? "'" + v.asText() + "'" : v.toString();
        }
    }

    /**
     * Thrown by a trainer's {@code train} when its thread is interrupted. Training stops between steps, so the
     * trainer holds a consistent state: with a run directory, a checkpoint of that exact state was saved
     * ({@link #checkpoint()}). The thread's interrupt flag is set again before this is thrown.
     */
    public abstract static class Interrupted extends RuntimeException {
        private final int step;
        private final transient Path checkpoint;

        /** {@code what} names the training ("SAE training"); {@code resumeCall} how to continue from a checkpoint. */
        protected Interrupted(String what, int step, int steps, Path checkpoint, String resumeCall) {
            super(what + " interrupted after step " + step + " of " + steps + "; " + (checkpoint != null
                    ? "saved checkpoint " + checkpoint + ": continue with " + resumeCall
                    + ", or trainOrResume(runDir) on a trainer set up as this one"
                    : "no run directory, so nothing was saved: call train() on the same trainer to continue"));
            this.step = step;
            this.checkpoint = checkpoint;
        }

        /** Steps done when training stopped. */
        public int step() {
            return step;
        }

        /** The checkpoint holding the state at the interruption, if the trainer has a run directory. */
        public Optional<Path> checkpoint() {
            return Optional.ofNullable(checkpoint);
        }
    }

    private final Cadence cadence;
    private final Format format;
    private final Steps steps;
    private final String description;
    private ProgressSink progress = ProgressSink.bar();
    private Runnable beforeCommit = () -> { };   // test hook: runs before a checkpoint's rename
    private RunDir run;
    private int step;
    private Path lastCheckpoint;
    private int lastCheckpointStep = -1;

    /** A loop at step 0 driving {@code steps}; {@code description} labels the progress bar ("train"). */
    public TrainingLoop(Cadence cadence, Format format, Steps steps, String description) {
        if (cadence == null || format == null || steps == null) {
            throw new IllegalArgumentException("cadence, format and steps must not be null");
        }
        this.cadence = cadence;
        this.format = format;
        this.steps = steps;
        this.description = description == null ? "" : description;
    }

    // ---------------------------------------------------------------- finding checkpoints

    /**
     * The checkpoint to resume from in {@code runDir}: its newest complete one, after the leftovers of an interrupted
     * write were removed. Fails, naming what it looked for, when there is none.
     */
    public static Checkpoint resumable(Path runDir, Format format) {
        RunDir rd = new RunDir(runDir);
        Checkpoint c = rd.newest(format).orElseThrow(() -> new IllegalArgumentException("no complete checkpoint in "
                + rd.checkpointsDir() + " (looked for step-N directories holding " + String.join(", ", format.files())
                + (format.files().isEmpty() ? "" : " and ") + STATE + ")"));
        rd.cleanLeftovers();
        return c;
    }

    // ---------------------------------------------------------------- options

    /** Where progress goes (default {@link ProgressSink#bar()}). */
    public void progress(ProgressSink sink) {
        if (sink == null) throw new IllegalArgumentException("sink must not be null; use ProgressSink.none() for silence");
        this.progress = sink;
    }

    /** Test hook: runs after a checkpoint's files are written and before its atomic rename. */
    void beforeCommit(Runnable hook) {
        this.beforeCommit = java.util.Objects.requireNonNull(hook, "hook");
    }

    /**
     * Saves checkpoints under {@code dir} (created if missing). A directory that already holds checkpoints, of this
     * run or any other, is refused: continue that run or pick a new directory.
     */
    public void runDir(Path dir) {
        RunDir rd = new RunDir(dir);
        if (run != null && run.root().equals(rd.root())) return;
        rd.newestOfAnyFormat().ifPresent(c -> {
            throw new IllegalArgumentException("run directory " + rd.root() + " already holds checkpoints (newest: step "
                    + c.step() + "); continue it with " + format.resumeCall() + " or trainOrResume(dir), or choose an "
                    + "empty directory");
        });
        rd.create();
        this.run = rd;
    }

    /**
     * Uses {@code dir} for checkpoints, first continuing from its newest checkpoint when it holds one:
     * {@code restore} checks that the checkpoint is of a compatible run (failing with the difference) and loads it
     * into the trainer. Without a checkpoint this is {@link #runDir}.
     */
    public void resumeOrStart(Path dir, Consumer<Checkpoint> restore) {
        RunDir rd = new RunDir(dir);
        if (run != null && run.root().equals(rd.root())) return;   // already this trainer's run directory
        Optional<Checkpoint> c = rd.newest(format);
        if (c.isEmpty()) {
            runDir(dir);
            return;
        }
        if (step > 0) {
            throw new IllegalStateException("this trainer has already trained " + step + " steps, so it cannot continue "
                    + "the run in " + rd.root() + "; set it up afresh and call trainOrResume(dir) first");
        }
        c.get().requireWithin(cadence.steps());
        rd.cleanLeftovers();
        restore.accept(c.get());
        resumedFrom(rd.root(), c.get());
    }

    /** Records that the trainer's state was restored from {@code c}, a checkpoint in run directory {@code dir}. */
    public void resumedFrom(Path dir, Checkpoint c) {
        this.run = new RunDir(dir);
        this.step = c.step();
        this.lastCheckpoint = c.dir();
        this.lastCheckpointStep = c.step();
    }

    // ---------------------------------------------------------------- accessors

    /** Steps done. */
    public int step() {
        return step;
    }

    /** The run directory, if checkpoints are saved. */
    public Optional<Path> runDirectory() {
        return run == null ? Optional.empty() : Optional.of(run.root());
    }

    /** The newest checkpoint this loop wrote or resumed from. */
    public Optional<Path> lastCheckpoint() {
        return Optional.ofNullable(lastCheckpoint);
    }

    // ---------------------------------------------------------------- the loop

    /**
     * Steps until {@code untilStep} steps are done (at most the run's total). Checkpoints follow
     * {@code checkpointEvery} and the run's last step, not the end of this call.
     */
    public void trainUntil(int untilStep) {
        if (untilStep < step || untilStep > cadence.steps()) {
            throw new IllegalArgumentException("untilStep " + untilStep + " must be in [" + step + " (steps done), "
                    + cadence.steps() + " (configured)]");
        }
        steps.begin();
        try {
            progress.start(cadence.steps(), description);
            progress.update(step, steps.status());
            while (step < untilStep) {
                if (Thread.interrupted()) throw interrupted();
                boolean notable = steps.step(step);
                step++;
                if (run != null && (step == cadence.steps()
                        || cadence.checkpointEvery().isPresent() && step % cadence.checkpointEvery().getAsInt() == 0)) {
                    checkpoint();
                }
                if (step % cadence.logEvery() == 0 || step == untilStep || notable) progress.update(step, steps.status());
            }
        } finally {
            progress.close();
            steps.end();
        }
    }

    /** Saves a checkpoint of the current state now (once per step); returns its directory. Needs a run directory. */
    public Path checkpoint() {
        if (run == null) throw new IllegalStateException("no run directory: set one with runDir(path) to save checkpoints");
        if (lastCheckpoint != null && lastCheckpointStep == step) return lastCheckpoint;
        lastCheckpoint = run.save(step, format, steps::save, cadence.keepCheckpoints(), beforeCommit);
        lastCheckpointStep = step;
        return lastCheckpoint;
    }

    private Interrupted interrupted() {
        Path saved = null;
        try {
            if (run != null) saved = checkpoint();
        } finally {
            Thread.currentThread().interrupt();
        }
        return steps.interrupted(saved);
    }

    @Override
    public String toString() {
        return "TrainingLoop(step " + step + "/" + cadence.steps() + (run == null ? "" : ", run " + run.root()) + ")";
    }
}
