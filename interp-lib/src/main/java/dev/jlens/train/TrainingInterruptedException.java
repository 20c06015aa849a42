package dev.jlens.train;

import java.nio.file.Path;

/**
 * Thrown by {@link Trainer#train} when its thread is interrupted. Training stops between steps, so the model and
 * optimizer hold a consistent state: the step count, {@link #result()} and, with a run directory, a checkpoint of
 * that exact state ({@link #checkpoint()}), from which {@link Trainer#resume} or {@link Trainer#trainOrResume}
 * continues. The thread's interrupt flag is set again before this is thrown.
 */
public final class TrainingInterruptedException extends TrainingLoop.Interrupted {
    private final transient TrainResult result;

    TrainingInterruptedException(TrainResult result, Path checkpoint) {
        super("training", result.steps(), result.config().steps(), checkpoint, TrainerCheckpoint.FORMAT.resumeCall());
        this.result = result;
    }

    /** Metrics up to the interruption. */
    public TrainResult result() {
        return result;
    }
}
