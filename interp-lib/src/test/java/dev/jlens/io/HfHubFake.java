package dev.jlens.io;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Hugging Face Hub on 127.0.0.1 for tests: {@code HEAD/GET /{repo}/resolve/{revision}/{file}} with the Hub's
 * headers (X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size, X-Error-Code), LFS files redirected to a separate
 * "CDN" server (another port, addressed as {@code localhost} so it is another host than the hub's
 * {@code 127.0.0.1}), Range requests, gated repos, renamed repos, and injected faults. Dataset repos are served
 * under {@code /datasets/{repo}/resolve/...}, and {@code GET /api/{models|datasets}/{repo}/revision/{rev}} lists a
 * repo's files ({@code sha}, {@code siblings}) as the Hub API does.
 */
public final class HfHubFake implements AutoCloseable {

    /** One request as the fake saw it. */
    record Request(String server, String method, String path, String authorization, String range, int status) { }

    /** How the next GET of a file misbehaves. */
    enum Fault {
        /** Announces the full length, sends half, then drops the connection. */
        DROP_HALF,
        /** Announces and sends only half the bytes: a clean but short response. */
        SHORT_BODY,
        /** Sends the right number of bytes with some of them changed. */
        CORRUPT,
        /** Answers a Range request with 416 Range Not Satisfiable. */
        REFUSE_RANGE,
        /** Announces the full length, sends half, then sends nothing more and keeps the connection open. */
        STALL_HALF
    }

    /** A file in a fake repo; LFS files are served from the CDN and identified by their SHA-256. */
    record FakeFile(byte[] content, boolean lfs, String sha256, String gitSha1) { }

    /** A fake model or dataset repo with one commit, reachable as {@code main}, its tags or its commit hash. */
    public final class Repo {
        final String id;
        final String commit;
        final Map<String, FakeFile> files = new ConcurrentHashMap<>();
        final Set<String> revisions = ConcurrentHashMap.newKeySet();
        volatile String requiredToken;

        Repo(String key) {
            this.id = key.substring(key.indexOf(':') + 1);
            this.commit = hex(digest("SHA-1", ("commit of " + key).getBytes(StandardCharsets.UTF_8)));
            revisions.add("main");
            revisions.add(commit);
        }

        /** Makes the commit reachable under another branch or tag name too. */
        Repo tag(String name) {
            revisions.add(name);
            return this;
        }

        /** Adds a regular git file (ETag = git blob SHA-1, served by the hub itself). */
        public Repo file(String name, byte[] content) {
            files.put(name, new FakeFile(content, false, hex(digest("SHA-256", content)), gitBlobSha1(content)));
            return this;
        }

        /** Adds a text file. */
        public Repo file(String name, String content) {
            return file(name, content.getBytes(StandardCharsets.UTF_8));
        }

        /** Adds an LFS file (ETag = SHA-256, redirected to the CDN). */
        public Repo lfs(String name, byte[] content) {
            files.put(name, new FakeFile(content, true, hex(digest("SHA-256", content)), gitBlobSha1(content)));
            return this;
        }

        /** Makes the repo gated: only {@code Authorization: Bearer <token>} gets through. */
        Repo gated(String token) {
            this.requiredToken = token;
            return this;
        }

        public String commit() {
            return commit;
        }

        FakeFile get(String name) {
            return files.get(name);
        }
    }

    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-");
    private static final Pattern API_REVISION = Pattern.compile("/api/(models|datasets)/(.+)/revision/([^/]+)");

    private static final long STALL_MILLIS = 120_000;

    private final HttpServer hub;
    private final HttpServer cdn;
    private final ExecutorService executor = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "hf-hub-fake");
        t.setDaemon(true);
        return t;
    });
    private final Map<String, Repo> repos = new ConcurrentHashMap<>();
    private final Map<String, String> renamed = new ConcurrentHashMap<>();
    private final Map<String, Deque<Fault>> faults = new ConcurrentHashMap<>();
    private final List<Request> requests = new ArrayList<>();
    private final AtomicInteger stallListings = new AtomicInteger();
    private volatile boolean ignoreRange;
    private volatile boolean echoAuthorizationInErrors;

    private HfHubFake() throws IOException {
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        hub = HttpServer.create(loopback, 0);
        cdn = HttpServer.create(loopback, 0);
        hub.createContext("/", this::handleHub);
        cdn.createContext("/", this::handleCdn);
        hub.setExecutor(executor);
        cdn.setExecutor(executor);
        hub.start();
        cdn.start();
    }

    /** Starts both servers on ephemeral loopback ports. */
    public static HfHubFake start() throws IOException {
        return new HfHubFake();
    }

    /** The hub base URL to use as HF_ENDPOINT. */
    public String endpoint() {
        return "http://127.0.0.1:" + hub.getAddress().getPort();
    }

    /** Creates (or returns) the model repo with this id. */
    Repo repo(String id) {
        return repos.computeIfAbsent("model:" + id, Repo::new);
    }

    /** Creates (or returns) the dataset repo with this id. */
    public Repo dataset(String id) {
        return repos.computeIfAbsent("dataset:" + id, Repo::new);
    }

    /** Requests for {@code oldId} get a relative 307 to {@code newId}, as the Hub does for renamed repos. */
    void rename(String oldId, String newId) {
        renamed.put(oldId, newId);
    }

    /** The next GET of {@code filename} (hub or CDN) misbehaves as {@code fault}. */
    void failNextGet(String filename, Fault fault) {
        faults.computeIfAbsent(filename, k -> new ArrayDeque<>()).add(fault);
    }

    /** The next file-list answer sends half its JSON and then stalls. */
    void stallNextListing() {
        stallListings.incrementAndGet();
    }

    /** Makes GETs answer 200 with the whole file even when a Range is asked for. */
    void ignoreRange(boolean ignore) {
        this.ignoreRange = ignore;
    }

    /** Makes 401/403 answers quote the Authorization header they got, to test that clients redact it. */
    void echoAuthorizationInErrors(boolean echo) {
        this.echoAuthorizationInErrors = echo;
    }

    /** Every request so far, in order. */
    List<Request> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    /** Number of requests so far (hub and CDN). */
    int hits() {
        synchronized (requests) {
            return requests.size();
        }
    }

    @Override
    public void close() {
        hub.stop(0);
        cdn.stop(0);
        executor.shutdownNow();
    }

    // ---------------------------------------------------------------------------------------------------------

    private void handleHub(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getRawPath();
            if (path.startsWith("/api/")) {
                handleApi(ex, path);
                return;
            }
            String type = "model";
            if (path.startsWith("/datasets/")) {
                type = "dataset";
                path = path.substring("/datasets".length());
            }
            int at = path.indexOf("/resolve/");
            if (at < 1) {
                respond(ex, "hub", 404, Map.of("X-Error-Code", "RepoNotFound"));
                return;
            }
            String repoId = path.substring(1, at);
            String rest = path.substring(at + "/resolve/".length());
            int slash = rest.indexOf('/');
            String rawRevision = rest.substring(0, slash);
            String revision = URLDecoder.decode(rawRevision, StandardCharsets.UTF_8);
            String filename = URLDecoder.decode(rest.substring(slash + 1).replace("+", "%2B"), StandardCharsets.UTF_8);

            String newId = renamed.get(repoId);
            if (newId != null) {
                respond(ex, "hub", 307, Map.of("Location", "/" + newId + "/resolve/" + rest));
                return;
            }
            Repo repo = repos.get(type + ":" + repoId);
            if (!admitted(ex, repo, repoId, revision)) {
                return;
            }
            FakeFile file = repo.get(filename);
            if (file == null) {
                respond(ex, "hub", 404, Map.of("X-Error-Code", "EntryNotFound", "X-Repo-Commit", repo.commit,
                        "X-Error-Message", "Entry not found"));
                return;
            }
            if (file.lfs()) {
                String cdnUrl = "http://localhost:" + cdn.getAddress().getPort() + "/cdn/" + file.sha256()
                        + "?X-Amz-Signature=fake";
                respond(ex, "hub", 302, Map.of("Location", cdnUrl, "X-Repo-Commit", repo.commit,
                        "X-Linked-Etag", "\"" + file.sha256() + "\"",
                        "X-Linked-Size", Integer.toString(file.content().length),
                        "ETag", "\"" + file.gitSha1() + "\""));
                return;
            }
            ex.getResponseHeaders().set("X-Repo-Commit", repo.commit);
            ex.getResponseHeaders().set("ETag", "\"" + file.gitSha1() + "\"");
            serve(ex, "hub", filename, file.content());
        }
    }

    /** 404s for a missing repo or revision and 401/403 for a gated one; true when the request may go on. */
    private boolean admitted(HttpExchange ex, Repo repo, String repoId, String revision) throws IOException {
        if (repo == null) {
            respond(ex, "hub", 404, Map.of("X-Error-Code", "RepoNotFound",
                    "X-Error-Message", "Repository not found"));
            return false;
        }
        if (repo.requiredToken != null) {
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            if (auth == null || !auth.equals("Bearer " + repo.requiredToken)) {
                int status = auth == null ? 401 : 403;
                String message = "Access to " + repoId + " is restricted."
                        + (echoAuthorizationInErrors && auth != null ? " Rejected credentials: " + auth : "");
                respond(ex, "hub", status, Map.of("X-Error-Code", "GatedRepo", "X-Error-Message", message));
                return false;
            }
        }
        if (!repo.revisions.contains(revision)) {
            respond(ex, "hub", 404, Map.of("X-Error-Code", "RevisionNotFound",
                    "X-Error-Message", "Invalid rev id: " + revision));
            return false;
        }
        return true;
    }

    /** {@code GET /api/{models|datasets}/{repo}/revision/{rev}}: the commit and the files, as JSON. */
    private void handleApi(HttpExchange ex, String path) throws IOException {
        Matcher m = API_REVISION.matcher(path);
        if (!m.matches()) {
            respond(ex, "hub", 404, Map.of());
            return;
        }
        String type = m.group(1).equals("datasets") ? "dataset" : "model";
        String repoId = m.group(2);
        String revision = URLDecoder.decode(m.group(3), StandardCharsets.UTF_8);
        Repo repo = repos.get(type + ":" + repoId);
        if (!admitted(ex, repo, repoId, revision)) {
            return;
        }
        StringBuilder json = new StringBuilder("{\"id\":\"" + repoId + "\",\"sha\":\"" + repo.commit
                + "\",\"private\":false,\"siblings\":[");
        boolean first = true;
        for (String name : new TreeSet<>(repo.files.keySet())) {
            json.append(first ? "" : ",").append("{\"rfilename\":\"").append(name).append("\"}");
            first = false;
        }
        byte[] body = json.append("]}").toString().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        record(ex, "hub", 200);
        ex.sendResponseHeaders(200, body.length);
        if (stallListings.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            ex.getResponseBody().write(body, 0, body.length / 2);
            ex.getResponseBody().flush();
            stall();
            return;
        }
        ex.getResponseBody().write(body);
    }

    private static void stall() {
        try {
            Thread.sleep(STALL_MILLIS); // until the client gives up, or close() interrupts
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void handleCdn(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getRawPath();
            String sha = path.startsWith("/cdn/") ? path.substring("/cdn/".length()) : "";
            Map.Entry<String, FakeFile> found = null;
            for (Repo repo : repos.values()) {
                for (Map.Entry<String, FakeFile> e : repo.files.entrySet()) {
                    if (e.getValue().lfs() && e.getValue().sha256().equals(sha)) {
                        found = e;
                    }
                }
            }
            if (found == null) {
                respond(ex, "cdn", 404, Map.of());
                return;
            }
            // Like a signed S3 URL: a second credential is an error, and the token must never get here.
            if (ex.getRequestHeaders().getFirst("Authorization") != null) {
                respond(ex, "cdn", 400, Map.of());
                return;
            }
            serve(ex, "cdn", found.getKey(), found.getValue().content());
        }
    }

    /** Serves {@code content} for HEAD or GET, honouring Range and any fault queued for this file. */
    private void serve(HttpExchange ex, String server, String filename, byte[] content) throws IOException {
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.getResponseHeaders().set("Content-Length", Integer.toString(content.length));
            record(ex, server, 200);
            ex.sendResponseHeaders(200, -1);
            return;
        }
        Deque<Fault> queued = faults.get(filename);
        Fault fault = queued == null ? null : queued.poll();
        int start = 0;
        String range = ex.getRequestHeaders().getFirst("Range");
        if (range != null && fault == Fault.REFUSE_RANGE) {
            respond(ex, server, 416, Map.of("Content-Range", "bytes */" + content.length));
            return;
        }
        if (range != null && !ignoreRange) {
            Matcher m = RANGE.matcher(range);
            if (m.matches()) {
                start = Integer.parseInt(m.group(1));
                if (start >= content.length) {
                    respond(ex, server, 416, Map.of("Content-Range", "bytes */" + content.length));
                    return;
                }
            }
        }
        byte[] body = Arrays.copyOfRange(content, start, content.length);
        int status = start > 0 ? 206 : 200;
        if (status == 206) {
            ex.getResponseHeaders().set("Content-Range",
                    "bytes " + start + "-" + (content.length - 1) + "/" + content.length);
        }
        record(ex, server, status);
        if (fault == Fault.CORRUPT) {
            body = body.clone();
            for (int i = body.length / 3; i < body.length / 3 + 16 && i < body.length; i++) {
                body[i] ^= 0x5a;
            }
        }
        if (fault == Fault.SHORT_BODY) {
            ex.sendResponseHeaders(status, body.length / 2);
            ex.getResponseBody().write(body, 0, body.length / 2);
            return;
        }
        ex.sendResponseHeaders(status, body.length);
        OutputStream out = ex.getResponseBody();
        if (fault == Fault.STALL_HALF) {
            out.write(body, 0, body.length / 2);
            out.flush();
            stall();
            return;
        }
        if (fault == Fault.DROP_HALF) {
            out.write(body, 0, body.length / 2);
            out.flush();
            // Closing the exchange short of the announced length makes the server drop the connection.
            try {
                ex.close();
            } catch (RuntimeException ignored) {
                // Expected: insufficient bytes written.
            }
            return;
        }
        out.write(body);
    }

    private void respond(HttpExchange ex, String server, int status, Map<String, String> headers) throws IOException {
        headers.forEach((k, v) -> ex.getResponseHeaders().set(k, v));
        record(ex, server, status);
        ex.sendResponseHeaders(status, -1);
    }

    private void record(HttpExchange ex, String server, int status) {
        synchronized (requests) {
            requests.add(new Request(server, ex.getRequestMethod(), ex.getRequestURI().getRawPath(),
                    ex.getRequestHeaders().getFirst("Authorization"), ex.getRequestHeaders().getFirst("Range"),
                    status));
        }
    }

    // ---------------------------------------------------------------------------------------------------------

    static String gitBlobSha1(byte[] content) {
        byte[] header = ("blob " + content.length + "\0").getBytes(StandardCharsets.UTF_8);
        byte[] all = Arrays.copyOf(header, header.length + content.length);
        System.arraycopy(content, 0, all, header.length, content.length);
        return hex(digest("SHA-1", all));
    }

    static String sha256Hex(byte[] content) {
        return hex(digest("SHA-256", content));
    }

    private static byte[] digest(String algorithm, byte[] content) {
        try {
            return MessageDigest.getInstance(algorithm).digest(content);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String hex(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }
}
