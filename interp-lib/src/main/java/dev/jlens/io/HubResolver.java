package dev.jlens.io;

import dev.jlens.io.HubHttp.Absent;
import dev.jlens.io.HubHttp.FileMetadata;
import dev.jlens.io.HubHttp.Found;
import dev.jlens.io.HubHttp.Head;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Resolves one file of a repo at a revision to its path in a cached snapshot: the cache first, then a {@code HEAD}
 * for the commit and blob, then (under a lock shared with other processes) a download into {@code blobs/} linked into
 * {@code snapshots/}. For a branch or tag the cached {@code refs/} entry is trusted (unlike Python, which asks the Hub
 * for a newer commit each time), so a file already in a snapshot costs no request.
 */
final class HubResolver {

    private static final System.Logger LOG = System.getLogger(HfHub.class.getName());
    // Threads of one JVM must not share a FileLock (it throws), so they queue here first.
    private static final ConcurrentHashMap<Path, Object> JVM_LOCKS = new ConcurrentHashMap<>();

    private final HubSettings settings;
    private final HubCache cache;
    private final HubHttp http;

    HubResolver(HubSettings settings, HubCache cache, HubHttp http) {
        this.settings = settings;
        this.cache = cache;
        this.http = http;
    }

    /** The file's snapshot path; empty only for an optional file the Hub (or the offline cache) does not have. */
    @SuppressWarnings("try") // the FileLock is held for the body of the try, never read
    Optional<Path> resolve(HubRepo repo, String filename, String revision, boolean required) {
        HubNames.checkFilename(filename);
        String rev = revision == null ? HfHub.DEFAULT_REVISION : HubNames.checkRevision(revision);
        Path repoDir = cache.repoDir(repo);

        Optional<String> knownCommit = HubCache.knownCommit(repoDir, rev);
        if (knownCommit.isPresent()) {
            Path pointer = HubCache.pointer(repoDir, knownCommit.get(), filename);
            if (Files.exists(pointer)) {
                LOG.log(System.Logger.Level.DEBUG, "Cache hit: {0} of {1} at {2}", filename, repo, knownCommit.get());
                return Optional.of(pointer);
            }
            if (!required && (settings.offline || HubCache.knownAbsent(repoDir, knownCommit.get(), filename))) {
                return Optional.empty();
            }
        }
        if (settings.offline) {
            if (!required) {
                return Optional.empty();
            }
            throw settings.fail(HubException.Reason.NOT_CACHED, "Offline mode (HF_HUB_OFFLINE is set): '" + filename
                    + "' of " + repo + " at revision '" + rev + "' is not in the Hugging Face cache "
                    + settings.cacheDir + " (looked in " + repoDir + "). Download it once with the network on (unset"
                    + " HF_HUB_OFFLINE), point HF_HUB_CACHE at a cache that has it, or "
                    + (repo.isDataset() ? "read the files from a local directory." : "pass a local model directory."),
                    null);
        }

        Head head = http.head(repo, filename, rev, required);
        if (head instanceof Absent absent) {
            absent.commit().ifPresent(commit -> cache.rememberMissing(repoDir, rev, filename, commit));
            return Optional.empty();
        }
        FileMetadata meta = ((Found) head).meta();
        cache.writeRef(repoDir, rev, meta.commit());
        Path pointer = HubCache.pointer(repoDir, meta.commit(), filename);
        if (Files.exists(pointer)) {
            return Optional.of(pointer);
        }
        Path blob = HubCache.blob(repoDir, meta.etag());
        Path lockFile = cache.lockFile(repoDir, meta.etag());
        synchronized (JVM_LOCKS.computeIfAbsent(blob, k -> new Object())) {
            try {
                Files.createDirectories(blob.getParent());
                Files.createDirectories(lockFile.getParent());
                try (FileChannel lockChannel = FileChannel.open(lockFile, StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE);
                     FileLock ignored = lockChannel.lock()) {
                    // Another process may have finished the same file while we waited for the lock.
                    if (!Files.exists(pointer)) {
                        boolean newBlob = !Files.exists(blob);
                        if (newBlob) {
                            BlobDownload.fetch(settings, http, repo, filename, meta, blob);
                        }
                        HubCache.link(blob, pointer, newBlob);
                    }
                }
            } catch (IOException e) {
                throw settings.fail(HubException.Reason.CACHE_IO, "Could not write '" + filename + "' of "
                        + repo + " into the cache " + settings.cacheDir + ": " + e, e);
            }
        }
        return Optional.of(pointer);
    }
}
