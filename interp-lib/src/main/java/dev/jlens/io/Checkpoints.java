package dev.jlens.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Crash-safe checkpoint directories: {@code CHECKPOINTS/step-00000100/} written into a hidden temporary directory
 * next to the final one, flushed to disk and renamed into place in one atomic step, so a process killed mid-write
 * leaves at worst a temporary directory (removed by {@link #cleanLeftovers}), never a half-written {@code step-N}.
 * Old checkpoints are renamed away before being deleted, for the same reason. Also atomic single-file writes.
 */
public final class Checkpoints {
    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d+)");
    private static final String TMP_PREFIX = ".tmp-";
    private static final String TRASH_PREFIX = ".trash-";

    /** A complete {@code step-N} directory. */
    public record Step(Path dir, int step) {}

    /** Writes a checkpoint's files into the (empty, existing) temporary directory it is given. */
    @FunctionalInterface
    public interface Writer {
        /** Writes every file of the checkpoint into {@code dir}. */
        void write(Path dir) throws IOException;
    }

    private Checkpoints() {}

    /** The directory name of step {@code step}: {@code step-%08d}, zero-padded so names sort by step. */
    public static String stepName(int step) {
        return String.format(Locale.ROOT, "step-%08d", step);
    }

    /**
     * Writes {@code CHECKPOINTS/step-N/} atomically with {@code writer} and returns it. {@code beforeCommit}
     * runs after every file is flushed and before the rename (tests use it to simulate a crash). A step saved
     * before keeps its directory: its content is the same state.
     */
    public static Path commitStep(Path checkpointsDir, int step, Writer writer, Runnable beforeCommit) {
        java.util.Objects.requireNonNull(beforeCommit, "beforeCommit (use () -> { } for none)");
        Path target = checkpointsDir.resolve(stepName(step));
        Path tmp = checkpointsDir.resolve(TMP_PREFIX + target.getFileName() + "-" + ProcessHandle.current().pid()
                + "-" + System.nanoTime());
        try {
            Files.createDirectories(tmp);
            writer.write(tmp);
            try (Stream<Path> files = Files.list(tmp)) {
                for (Path f : (Iterable<Path>) files::iterator) fsync(f, false);
            }
            fsync(tmp, true);
            beforeCommit.run();
            if (Files.exists(target)) {
                // The same step was saved before (a resumed run interrupted at once): its content is this state.
                deleteTree(tmp);
            } else {
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    throw new UncheckedIOException("the file system of " + checkpointsDir + " cannot rename directories "
                            + "atomically; choose a run directory on a local disk", e);
                }
                fsync(checkpointsDir, true);
            }
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new UncheckedIOException("cannot write checkpoint " + target + ": " + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            deleteQuietly(tmp);
            throw e;
        }
        return target;
    }

    /** The {@code step-N} directories under {@code checkpointsDir} that {@code complete} accepts, oldest first. */
    public static List<Step> steps(Path checkpointsDir, Predicate<Path> complete) {
        if (!Files.isDirectory(checkpointsDir)) return List.of();
        List<Step> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(checkpointsDir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Matcher m = STEP_DIR.matcher(p.getFileName().toString());
                if (m.matches() && Files.isDirectory(p) && complete.test(p)) {
                    out.add(new Step(p, Integer.parseInt(m.group(1))));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list checkpoints in " + checkpointsDir, e);
        }
        out.sort(Comparator.comparingInt(Step::step));
        return out;
    }

    /** The newest complete {@code step-N} directory under {@code checkpointsDir}. */
    public static Optional<Step> latest(Path checkpointsDir, Predicate<Path> complete) {
        List<Step> all = steps(checkpointsDir, complete);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** Deletes all but the newest {@code keep} complete checkpoints, each renamed away first. */
    public static void prune(Path checkpointsDir, Predicate<Path> complete, int keep) {
        List<Step> all = steps(checkpointsDir, complete);
        for (int i = 0; i < all.size() - keep; i++) {
            Path old = all.get(i).dir();
            Path trash = old.resolveSibling(TRASH_PREFIX + old.getFileName() + "-" + System.nanoTime());
            try {
                Files.move(old, trash, StandardCopyOption.ATOMIC_MOVE);
                deleteTree(trash);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot delete old checkpoint " + old, e);
            }
        }
    }

    /** Removes the temporary and trash directories that an interrupted write or prune left behind. */
    public static void cleanLeftovers(Path checkpointsDir) {
        if (!Files.isDirectory(checkpointsDir)) return;
        try (Stream<Path> s = Files.list(checkpointsDir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String n = p.getFileName().toString();
                if (n.startsWith(TMP_PREFIX) || n.startsWith(TRASH_PREFIX)) deleteTree(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot clean " + checkpointsDir, e);
        }
    }

    /**
     * Replaces {@code file} with {@code bytes} atomically: written to a hidden {@code .NAME.tmp} beside it, flushed,
     * renamed over it (a plain replace where the file system cannot rename atomically).
     */
    public static void writeAtomically(Path file, byte[] bytes) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.write(tmp, bytes);
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        try {
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Flushes a file (or a directory's entries) to disk; a directory that cannot be synced is let pass. */
    public static void fsync(Path p, boolean directory) {
        try (FileChannel ch = FileChannel.open(p, directory ? StandardOpenOption.READ : StandardOpenOption.WRITE)) {
            ch.force(true);
        } catch (IOException e) {
            // Some file systems cannot sync a directory; the rename is still atomic against a killed process.
            if (!directory) throw new UncheckedIOException("cannot flush " + p, e);
        }
    }

    /** Deletes a file or a directory tree; nothing if it is missing. */
    public static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path q : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) Files.deleteIfExists(q);
        }
    }

    /** As {@link #deleteTree}, ignoring failures (best effort: leftovers are removed by {@link #cleanLeftovers}). */
    public static void deleteQuietly(Path p) {
        try {
            deleteTree(p);
        } catch (IOException | UncheckedIOException ignored) {
            // best effort: a leftover temporary directory is removed on the next resume
        }
    }
}
