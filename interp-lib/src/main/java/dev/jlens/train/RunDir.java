package dev.jlens.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.io.Checkpoints;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A training run's directory, whichever trainer writes it: {@code RUN/checkpoints/step-00000100/} holding the
 * trainer's files and {@value TrainingLoop#STATE}, written and pruned crash-safely by {@link Checkpoints}.
 */
final class RunDir {
    static final String CHECKPOINTS = "checkpoints";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** What a trainer writes into a checkpoint's temporary directory. */
    @FunctionalInterface
    interface Writer {
        void write(Path dir, ObjectNode state) throws IOException;
    }

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

    void create() {
        try {
            Files.createDirectories(checkpointsDir());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create run directory " + root, e);
        }
    }

    private static boolean complete(Path dir, TrainingLoop.Format format) {
        return Files.isRegularFile(dir.resolve(TrainingLoop.STATE))
                && format.files().stream().allMatch(f -> Files.isRegularFile(dir.resolve(f)));
    }

    /** The newest checkpoint of any trainer (any step directory with a state file). */
    Optional<Checkpoints.Step> newestOfAnyFormat() {
        return Checkpoints.latest(checkpointsDir(), d -> Files.isRegularFile(d.resolve(TrainingLoop.STATE)));
    }

    /** The newest complete checkpoint of {@code format}; another trainer's checkpoints are refused by name. */
    Optional<TrainingLoop.Checkpoint> newest(TrainingLoop.Format format) {
        Optional<Checkpoints.Step> mine = Checkpoints.latest(checkpointsDir(), d -> complete(d, format));
        if (mine.isEmpty()) {
            // nothing of ours: if another trainer's run is here, say so rather than "no checkpoint"
            newestOfAnyFormat().ifPresent(s -> read(s, format));
            return Optional.empty();
        }
        return Optional.of(read(mine.get(), format));
    }

    /** Reads and checks a checkpoint's state file. */
    private TrainingLoop.Checkpoint read(Checkpoints.Step s, TrainingLoop.Format format) {
        Path file = s.dir().resolve(TrainingLoop.STATE);
        JsonNode state;
        try {
            state = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read checkpoint " + s.dir(), e);
        }
        String found = state.path("format").asText();
        if (!format.name().equals(found)) {
            throw new IllegalArgumentException("run directory " + root + " holds checkpoints of another trainer: " + file
                    + " has format '" + found + "', not '" + format.name() + "'; choose another run directory");
        }
        int step = state.path("step").asInt(-1);
        if (step != s.step()) {
            throw new IllegalArgumentException(s.dir() + " is named for step " + s.step() + " but its state says " + step);
        }
        return new TrainingLoop.Checkpoint(s.dir(), step, state);
    }

    /** Removes what an interrupted write or delete left behind. */
    void cleanLeftovers() {
        Checkpoints.cleanLeftovers(checkpointsDir());
    }

    /**
     * Writes the checkpoint of step {@code step} atomically (the trainer's files, then the state file) and deletes all
     * but the newest {@code keep}; returns its directory. {@code beforeCommit} runs after every file is
     * written and before the rename (tests use it to simulate a crash).
     */
    Path save(int step, TrainingLoop.Format format, Writer writer, int keep, Runnable beforeCommit) {
        Path target = Checkpoints.commitStep(checkpointsDir(), step, tmp -> {
            ObjectNode state = JSON.createObjectNode();
            state.put("format", format.name());
            state.put("version", format.version());
            state.put("step", step);
            writer.write(tmp, state);
            JSON.writeValue(tmp.resolve(TrainingLoop.STATE).toFile(), state);   // written last: marks the set complete
        }, beforeCommit);
        Checkpoints.prune(checkpointsDir(), d -> complete(d, format), keep);
        return target;
    }
}
