package dev.jlens.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The on-disk cache layout Python's {@code huggingface_hub} uses, so both share one copy of every file. Under the
 * cache root, {@code models--{org}--{name}} (model repos) or {@code datasets--{org}--{name}} (dataset repos) holds
 * {@code blobs/<etag>} with the bytes, {@code snapshots/<commit>/<filename>} are
 * relative symlinks into {@code ../../blobs} (copies where symlinks are not allowed), {@code refs/<revision>} holds
 * the commit a branch or tag pointed to, and {@code .no_exist/<commit>/<filename>} records files the Hub said are
 * absent. Download locks live in {@code .locks/<repo folder>/<etag>.lock}.
 */
final class HubCache {

    private static final System.Logger LOG = System.getLogger(HfHub.class.getName());

    private final Path root;
    private final HubSettings settings;

    HubCache(HubSettings settings) {
        this.root = settings.cacheDir;
        this.settings = settings;
    }

    /** Folder of one model repo: {@code models--{org}--{name}}. */
    Path repoDir(String repoId) {
        return repoDir(HubRepo.model(repoId));
    }

    /** Folder of one repo: {@code models--{org}--{name}} or {@code datasets--{org}--{name}}. */
    Path repoDir(HubRepo repo) {
        return root.resolve(repo.cacheFolderName());
    }

    /** Where a file of a commit appears: {@code snapshots/<commit>/<filename>}. */
    static Path pointer(Path repoDir, String commit, String filename) {
        Path snapshot = repoDir.resolve("snapshots").resolve(commit);
        Path pointer = snapshot.resolve(filename).normalize();
        if (!pointer.startsWith(snapshot)) {
            throw new IllegalArgumentException("File name '" + filename + "' leaves the snapshot folder.");
        }
        return pointer;
    }

    static Path blob(Path repoDir, String etag) {
        return repoDir.resolve("blobs").resolve(etag);
    }

    /** The lock file processes take before writing a blob, as huggingface_hub does. */
    Path lockFile(Path repoDir, String etag) {
        return root.resolve(".locks").resolve(repoDir.getFileName()).resolve(etag + ".lock");
    }

    /** The commit a revision resolves to without asking the Hub: a commit hash itself, or a cached ref. */
    static Optional<String> knownCommit(Path repoDir, String revision) {
        return HubNames.isCommitHash(revision) ? Optional.of(revision) : readRef(repoDir, revision);
    }

    /** The files of a commit's snapshot that are in the cache (links whose blob is there, or copies), sorted,
     *  with '/' between folders; empty when the snapshot folder does not exist. */
    static List<String> snapshotFiles(Path repoDir, String commit) {
        Path snapshot = repoDir.resolve("snapshots").resolve(commit);
        if (!Files.isDirectory(snapshot)) {
            return List.of();
        }
        List<String> files = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(snapshot)) {
            walk.filter(p -> !Files.isDirectory(p) && Files.exists(p))
                    .forEach(p -> files.add(snapshot.relativize(p).toString().replace('\\', '/')));
        } catch (IOException | UncheckedIOException e) {
            LOG.log(System.Logger.Level.DEBUG, "Could not list {0}: {1}", snapshot, e.toString());
        }
        Collections.sort(files);
        return files;
    }

    /** Whether the Hub said, at this commit, that the file does not exist. */
    static boolean knownAbsent(Path repoDir, String commit, String filename) {
        return Files.exists(noExistPath(repoDir, commit, filename));
    }

    private static Path noExistPath(Path repoDir, String commit, String filename) {
        return repoDir.resolve(".no_exist").resolve(commit).resolve(filename).normalize();
    }

    private static Optional<String> readRef(Path repoDir, String revision) {
        Path ref = repoDir.resolve("refs").resolve(revision);
        if (!Files.isRegularFile(ref)) {
            return Optional.empty();
        }
        try {
            String commit = Files.readString(ref, StandardCharsets.UTF_8).strip();
            return HubNames.isCommitHash(commit) ? Optional.of(commit) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** refs/<revision> holds the commit, without a newline, exactly as huggingface_hub writes it. */
    void writeRef(Path repoDir, String revision, String commit) {
        if (revision.equals(commit) || readRef(repoDir, revision).filter(commit::equals).isPresent()) {
            return;
        }
        Path ref = repoDir.resolve("refs").resolve(revision);
        try {
            Files.createDirectories(ref.getParent());
            Path tmp = Files.createTempFile(ref.getParent(), ".ref-", ".tmp");
            Files.writeString(tmp, commit, StandardCharsets.UTF_8);
            try {
                Files.move(tmp, ref, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, ref, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw settings.fail(HubException.Reason.CACHE_IO, "Could not write " + ref + ": " + e, e);
        }
    }

    /** Records an absent file under .no_exist/<commit>/ as huggingface_hub does, so later calls skip the request. */
    void rememberMissing(Path repoDir, String revision, String filename, String commit) {
        try {
            Path marker = noExistPath(repoDir, commit, filename);
            Files.createDirectories(marker.getParent());
            if (!Files.exists(marker)) {
                Files.createFile(marker);
            }
            writeRef(repoDir, revision, commit);
        } catch (IOException | HubException e) {
            // Only an optimisation: the next call asks the Hub again.
            LOG.log(System.Logger.Level.DEBUG, "Could not record that {0} is absent from {1}: {2}",
                    filename, repoDir, e.toString());
        }
    }

    /** Points snapshots/<commit>/<file> at the blob with a relative symlink, or a copy where symlinks fail. */
    static void link(Path blob, Path pointer, boolean newBlob) throws IOException {
        Files.createDirectories(pointer.getParent());
        Files.deleteIfExists(pointer); // a dangling link left after its blob was deleted
        Path target = pointer.getParent().relativize(blob);
        try {
            Files.createSymbolicLink(pointer, target);
            return;
        } catch (FileAlreadyExistsException e) {
            if (Files.isSymbolicLink(pointer) && Files.readSymbolicLink(pointer).equals(target)) {
                return;
            }
            throw e;
        } catch (UnsupportedOperationException | IOException e) {
            LOG.log(System.Logger.Level.WARNING, "Symlinks are not supported in {0} ({1}); storing a copy of the"
                    + " file in the snapshot instead", pointer.getParent(), e.toString());
        }
        if (newBlob) {
            // As huggingface_hub does: a blob nobody else references moves into the snapshot.
            Files.move(blob, pointer, StandardCopyOption.REPLACE_EXISTING);
        } else {
            Path tmp = pointer.resolveSibling(pointer.getFileName() + ".copying");
            Files.copy(blob, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, pointer, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
