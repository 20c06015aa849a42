package dev.jlens.io;

import dev.jlens.io.HubHttp.FileMetadata;

import java.io.IOException;
import java.io.InputStream;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Flow;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One blob download: streams the file into {@code blobs/<etag>.incomplete}, resuming with a {@code Range} request
 * from what an earlier, interrupted download left there, checks the size and (for LFS files, whose etag is their
 * SHA-256) the content against what the Hub announced, then renames it to {@code blobs/<etag>}. A transfer that
 * stops part-way keeps its partial file; a corrupt one is discarded. A server that stops sending in the middle of
 * the body for longer than the read timeout is asked again for the rest (a {@code Range} request), a bounded number
 * of times.
 */
final class BlobDownload {

    private static final System.Logger LOG = System.getLogger(HfHub.class.getName());
    private static final Pattern SHA256_HEX = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern CONTENT_RANGE_START = Pattern.compile("bytes (\\d+)-\\d+/(\\d+|\\*)");
    private static final int BUFFER_BYTES = 1 << 20;
    private static final long PROGRESS_STEP_BYTES = 1L << 20;

    private final HubSettings settings;
    private final HubHttp http;
    private final HubRepo repo;
    private final String filename;
    private final FileMetadata meta;
    private final Path incomplete;
    private final MessageDigest sha; // null when the etag is not a SHA-256 (plain git files): size check only
    private long done;

    private BlobDownload(HubSettings settings, HubHttp http, HubRepo repo, String filename, FileMetadata meta,
                         Path incomplete) {
        this.settings = settings;
        this.http = http;
        this.repo = repo;
        this.filename = filename;
        this.meta = meta;
        this.incomplete = incomplete;
        this.sha = SHA256_HEX.matcher(meta.etag()).matches() ? sha256() : null;
    }

    /** Downloads the file described by {@code meta} into {@code blob}, resuming a partial download. */
    static void fetch(HubSettings settings, HubHttp http, HubRepo repo, String filename, FileMetadata meta, Path blob)
            throws IOException {
        Path incomplete = blob.resolveSibling(blob.getFileName() + ".incomplete");
        long have = Files.exists(incomplete) ? Files.size(incomplete) : 0;
        if (have > meta.size()) {
            Files.delete(incomplete);
            have = 0;
        }
        BlobDownload transfer = new BlobDownload(settings, http, repo, filename, meta, incomplete);
        transfer.checkDiskSpace(blob.getParent(), meta.size() - have);
        try {
            try (FileChannel out = FileChannel.open(incomplete, StandardOpenOption.CREATE,
                    StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                transfer.start(out, have);
                if (transfer.done < meta.size()) {
                    LOG.log(System.Logger.Level.DEBUG, "Downloading {0} of {1} ({2} bytes{3})", filename, repo,
                            meta.size(), have > 0 ? ", resuming at byte " + have : "");
                    transfer.runResuming(out);
                } else {
                    settings.progress.onProgress(repo.id(), filename, transfer.done, meta.size());
                }
                out.force(true);
            }
            transfer.verify();
        } catch (HubException e) {
            if (e.reason() == HubException.Reason.INTEGRITY) {
                Files.deleteIfExists(incomplete);
            }
            throw e;
        }
        try {
            Files.move(incomplete, blob, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(incomplete, blob, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Takes the first {@code have} bytes already on disk as done (hashing them) or starts from zero. */
    private void start(FileChannel out, long have) throws IOException {
        done = 0;
        if (have > 0) {
            if (sha != null) {
                ByteBuffer buf = ByteBuffer.allocate(BUFFER_BYTES);
                long pos = 0;
                while (pos < have) {
                    buf.clear().limit((int) Math.min(BUFFER_BYTES, have - pos));
                    int n = out.read(buf, pos);
                    if (n < 0) {
                        throw new IOException("partial download " + incomplete + " shrank while reading it");
                    }
                    sha.update(buf.array(), 0, n);
                    pos += n;
                }
            }
            done = have;
        }
        out.position(have);
    }

    /** Drops what is on disk and starts again from byte 0. */
    private void restart(FileChannel out) throws IOException {
        out.truncate(0);
        out.position(0);
        done = 0;
        if (sha != null) {
            sha.reset();
        }
    }

    /** Runs the transfer; each time the server stalls mid-body, resumes from where it stopped, up to a limit. */
    private void runResuming(FileChannel out) throws IOException {
        for (int stalls = 0; ; ) {
            try {
                run(out);
                return;
            } catch (Stalled e) {
                stalls++;
                if (stalls > settings.stallResumes) {
                    throw interrupted("the server sent no data for " + describe(settings.readTimeout) + ", "
                            + stalls + " time" + (stalls == 1 ? "" : "s") + (stalls > 1 ? "; each time the download"
                            + " resumed from where it stopped" : "") + ". If the connection is just slow, allow"
                            + " longer pauses with HfHub.builder().readTimeout(...) or JLENS_HUB_READ_TIMEOUT"
                            + " (seconds)", e.getCause());
                }
                LOG.log(System.Logger.Level.INFO, "No data for {0} downloading {1} of {2}; resuming at byte {3}"
                        + " (retry {4} of {5})", describe(settings.readTimeout), filename, repo,
                        String.valueOf(done), stalls, settings.stallResumes);
            }
        }
    }

    private static String describe(java.time.Duration d) {
        long ms = d.toMillis();
        return ms % 1000 == 0 ? ms / 1000 + " s" : ms + " ms";
    }

    /** The server stopped sending the body for longer than the read timeout; what arrived is on disk. */
    private static final class Stalled extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Stalled(SocketTimeoutException cause) {
            super(cause.getMessage(), cause, false, false);
        }
    }

    private void run(FileChannel out) throws IOException {
        URI current = meta.location();
        boolean restartedAfter416 = false;
        for (int redirects = 0; ; ) {
            // The token goes only to Hub hosts; a CDN gets a signed URL and no credentials.
            HttpRequest.Builder builder = http.request(current, settings.downloadTimeout, http.isHubHost(current))
                    .GET().header("Accept-Encoding", "identity");
            if (done > 0) {
                builder.header("Range", "bytes=" + done + "-");
            }
            HttpResponse<Flow.Publisher<List<ByteBuffer>>> response = http.send(builder.build(),
                    HttpResponse.BodyHandlers.ofPublisher(), repo, filename, meta.commit());
            IdleTimeoutBody body = IdleTimeoutBody.of(response.body(), settings.readTimeout);
            try {
                int status = response.statusCode();
                if (status >= 300 && status < 400) {
                    String location = response.headers().firstValue("Location").orElse(null);
                    if (location == null || ++redirects > HubHttp.MAX_REDIRECTS) {
                        throw settings.fail(HubException.Reason.PROTOCOL, "Bad or too many redirects (HTTP " + status
                                + ") downloading '" + filename + "' of " + repo + ".", null);
                    }
                    current = http.resolveLocation(current, location, repo, filename, meta.commit());
                    continue;
                }
                if (status == 416 && done > 0 && !restartedAfter416) {
                    // The server cannot serve the rest of what we have: start over rather than fail.
                    restart(out);
                    restartedAfter416 = true;
                    continue;
                }
                if (status >= 400) {
                    throw http.httpError(response, repo, filename, meta.commit());
                }
                if (status == 206) {
                    checkContentRange(response);
                } else if (status == 200) {
                    if (done > 0) {
                        LOG.log(System.Logger.Level.INFO, "Server ignored the Range request for {0}; downloading"
                                + " it from the start", filename);
                        restart(out);
                    }
                } else {
                    throw settings.fail(HubException.Reason.PROTOCOL, "Unexpected HTTP " + status + " downloading '"
                            + filename + "' of " + repo + ".", null);
                }
                stream(body, out);
                return;
            } finally {
                body.close(); // drops the connection on every early exit; no-op after the body was read to its end
            }
        }
    }

    private void checkContentRange(HttpResponse<?> response) {
        String range = response.headers().firstValue("Content-Range").orElse("");
        Matcher m = CONTENT_RANGE_START.matcher(range.strip());
        if (!m.matches() || Long.parseLong(m.group(1)) != done) {
            throw settings.fail(HubException.Reason.PROTOCOL, "Asked to resume '" + filename + "' of " + repo
                    + " at byte " + done + " but the server answered Content-Range '" + range + "'.", null);
        }
    }

    private void stream(InputStream body, FileChannel out) throws IOException {
        long total = meta.size();
        long lastReport = done;
        settings.progress.onProgress(repo.id(), filename, done, total);
        byte[] buf = new byte[BUFFER_BYTES];
        try (InputStream in = body) {
            while (true) {
                int n;
                try {
                    n = in.read(buf);
                } catch (SocketTimeoutException e) {
                    throw new Stalled(e);
                } catch (IOException e) {
                    throw interrupted(e.toString(), e);
                }
                if (n < 0) {
                    break;
                }
                if (done + n > total) {
                    throw settings.fail(HubException.Reason.INTEGRITY, "The server sent more than the " + total
                            + " bytes announced for '" + filename + "' of " + repo + "; the download"
                            + " was discarded. Run again to download it afresh.", null);
                }
                ByteBuffer chunk = ByteBuffer.wrap(buf, 0, n);
                while (chunk.hasRemaining()) {
                    out.write(chunk);
                }
                if (sha != null) {
                    sha.update(buf, 0, n);
                }
                done += n;
                if (done - lastReport >= PROGRESS_STEP_BYTES) {
                    settings.progress.onProgress(repo.id(), filename, done, total);
                    lastReport = done;
                }
            }
        }
        if (done < total) {
            throw interrupted("the connection ended early", null);
        }
        settings.progress.onProgress(repo.id(), filename, done, total);
    }

    private HubException interrupted(String cause, Throwable e) {
        return settings.fail(HubException.Reason.INTERRUPTED, "Download of '" + filename + "' of " + repo
                + " stopped after " + done + " of " + meta.size() + " bytes (" + cause + "). Nothing was put"
                + " in the snapshot; the partial data is kept in " + incomplete + " and the next download"
                + " resumes from there.", e);
    }

    /** Size and, for LFS files whose etag is their SHA-256, content must match what the Hub announced. */
    private void verify() throws IOException {
        long onDisk = Files.size(incomplete);
        if (onDisk != meta.size() || done != meta.size()) {
            throw settings.fail(HubException.Reason.INTEGRITY, "Downloaded '" + filename + "' of " + repo
                    + " has " + onDisk + " bytes but the Hub announced " + meta.size() + "; the download was"
                    + " discarded. Run again to download it afresh.", null);
        }
        if (sha != null) {
            String actual = HexFormat.of().formatHex(sha.digest());
            if (!actual.equals(meta.etag())) {
                throw settings.fail(HubException.Reason.INTEGRITY, "SHA-256 of downloaded '" + filename + "' of "
                        + repo + " is " + actual + " but the Hub announced " + meta.etag() + "; the corrupt"
                        + " download was discarded. Run again to download it afresh.", null);
            }
        }
    }

    private void checkDiskSpace(Path dir, long needed) {
        try {
            long free = Files.getFileStore(dir).getUsableSpace();
            if (free < needed) {
                throw settings.fail(HubException.Reason.CACHE_IO, "Not enough disk space for '" + filename
                        + "' of " + repo + ": " + needed + " more bytes are needed but only " + free
                        + " are free in " + dir + ". Free some space or point HF_HUB_CACHE elsewhere.", null);
            }
        } catch (IOException e) {
            // Unknown free space: let the write itself fail if the disk is full.
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every Java platform", e);
        }
    }
}
