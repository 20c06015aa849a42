package dev.jlens.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.Flow;
import java.util.regex.Pattern;

/**
 * Talks HTTP to the Hub: builds requests (the token only for Hub hosts, never for a CDN a download is redirected
 * to), sends them with the configured timeouts, turns failures into {@link HubException}s that say what to do, and
 * asks for a file's metadata with a {@code HEAD} on its resolve URL, following redirects by hand.
 */
final class HubHttp {

    static final int MAX_REDIRECTS = 5;

    private static final System.Logger LOG = System.getLogger(HfHub.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();

    private static final String USER_AGENT = "jlens/0.1; java/" + Runtime.version().feature();
    // The etag becomes a file name in blobs/, so only plain characters are accepted from the server.
    private static final Pattern SAFE_ETAG = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    private static final Set<String> HUB_HOSTS = Set.of("huggingface.co", "hf.co", "hub-ci.huggingface.co");
    private static final int MAX_SERVER_MESSAGE_CHARS = 300;

    /** A revision's commit and the files in it, sorted. */
    record RepoFiles(String commit, List<String> files) {}

    /** What a HEAD on the resolve URL tells: the commit, the blob's etag and size, and where to GET it. */
    record FileMetadata(String commit, String etag, long size, URI location) {}

    /** The answer to a HEAD: the file's metadata, or (optional files only) that the Hub has no such file. */
    sealed interface Head permits Found, Absent {}

    /** The file exists. */
    record Found(FileMetadata meta) implements Head {}

    /** The Hub has no such file; {@code commit} is the commit it looked at, when it said. */
    record Absent(Optional<String> commit) implements Head {}

    private final HubSettings settings;

    HubHttp(HubSettings settings) {
        this.settings = settings;
    }

    /** Metadata of a file; {@link Absent} only when {@code required} is false and the file (not the repo) is missing. */
    Head head(HubRepo repo, String filename, String rev, boolean required) {
        URI current = resolveUri(repo, rev, filename);
        for (int redirects = 0; ; redirects++) {
            HttpRequest request = request(current, settings.metadataTimeout, true)
                    .method("HEAD", HttpRequest.BodyPublishers.noBody())
                    .header("Accept-Encoding", "identity")
                    .build();
            HttpResponse<Void> response = send(request, HttpResponse.BodyHandlers.discarding(), repo, filename, rev);
            int status = response.statusCode();
            if (status >= 300 && status < 400) {
                String location = response.headers().firstValue("Location").orElseThrow(() -> settings.fail(
                        HubException.Reason.PROTOCOL, "The Hub answered HTTP " + status + " without a Location header"
                                + " for '" + filename + "' of " + repo + " at revision '" + rev + "'.", null));
                URI target = resolveLocation(current, location, repo, filename, rev);
                // A redirect that stays on the Hub (a renamed repo) is followed with the token. One to another
                // host is the CDN: the file's metadata is on this response and only the GET goes there.
                if (isHubHost(target)) {
                    if (redirects >= MAX_REDIRECTS) {
                        throw settings.fail(HubException.Reason.PROTOCOL, "Too many redirects resolving '" + filename
                                + "' of " + repo + " at revision '" + rev + "'.", null);
                    }
                    current = target;
                    continue;
                }
                return new Found(metadata(response, target, repo, filename, rev));
            }
            if (status >= 400) {
                if (!required && isMissingEntry(response)) {
                    return new Absent(commitHeader(response).filter(HubNames::isCommitHash));
                }
                throw httpError(response, repo, filename, rev);
            }
            return new Found(metadata(response, current, repo, filename, rev));
        }
    }

    /**
     * The commit a revision points to and every file in it, sorted, from the Hub API
     * ({@code /api/models/{id}/revision/{rev}} or {@code /api/datasets/{id}/revision/{rev}}, its {@code sha} and
     * {@code siblings}).
     */
    RepoFiles listFiles(HubRepo repo, String rev) {
        URI current = URI.create(settings.endpoint + "/api/" + repo.type().plural + "/" + repo.id() + "/revision/"
                + encode(rev));
        for (int redirects = 0; ; redirects++) {
            HttpRequest request = request(current, settings.metadataTimeout, true)
                    .GET()
                    .header("Accept", "application/json")
                    .build();
            HttpResponse<Flow.Publisher<List<ByteBuffer>>> response = send(request,
                    HttpResponse.BodyHandlers.ofPublisher(), repo, null, rev);
            // The body is read with the read timeout too: a stalled answer must not hang the caller.
            try (IdleTimeoutBody body = IdleTimeoutBody.of(response.body(), settings.readTimeout)) {
                int status = response.statusCode();
                if (status >= 300 && status < 400) {
                    String location = response.headers().firstValue("Location").orElse(null);
                    URI target = location == null ? null
                            : resolveLocation(current, location, repo, "the file list", rev);
                    if (target == null || !isHubHost(target) || redirects >= MAX_REDIRECTS) {
                        throw settings.fail(HubException.Reason.PROTOCOL, "Bad or too many redirects (HTTP " + status
                                + ") listing the files of " + repo + " at revision '" + rev + "'.", null);
                    }
                    current = target;
                    continue;
                }
                if (status >= 400) {
                    throw httpError(response, repo, null, rev);
                }
                byte[] json;
                try {
                    json = body.readAllBytes();
                } catch (IOException e) {
                    throw settings.fail(HubException.Reason.NETWORK, "Reading the file list of " + repo
                            + " at revision '" + rev + "' from " + settings.endpoint + " failed (" + e.getMessage()
                            + "). Check the connection and try again, or set HF_HUB_OFFLINE=1 to use only the cache.",
                            e);
                }
                return parseListing(json, repo, rev);
            }
        }
    }

    private RepoFiles parseListing(byte[] body, HubRepo repo, String rev) {
        String where = "The file list of " + repo + " at revision '" + rev + "' from " + settings.endpoint;
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (IOException e) {
            throw settings.fail(HubException.Reason.PROTOCOL, where + " is not valid JSON (" + e.getMessage()
                    + "); is HF_ENDPOINT a Hugging Face Hub?", e);
        }
        String commit = root == null ? null : root.path("sha").asText(null);
        JsonNode siblings = root == null ? null : root.get("siblings");
        if (commit == null || !HubNames.isCommitHash(commit) || siblings == null || !siblings.isArray()) {
            throw settings.fail(HubException.Reason.PROTOCOL, where + " lacks a commit hash (\"sha\") or the"
                    + " \"siblings\" array of files; is HF_ENDPOINT a Hugging Face Hub?", null);
        }
        SortedSet<String> files = new TreeSet<>();
        for (JsonNode sibling : siblings) {
            String name = sibling.path("rfilename").asText("");
            try {
                files.add(HubNames.checkFilename(name));
            } catch (IllegalArgumentException e) {
                LOG.log(System.Logger.Level.WARNING, "Skipping the file name {0} listed for {1}: {2}", name, repo,
                        e.getMessage());
            }
        }
        return new RepoFiles(commit, List.copyOf(files));
    }

    private FileMetadata metadata(HttpResponse<?> response, URI location, HubRepo repo, String filename, String rev) {
        String where = "'" + filename + "' of " + repo + " at revision '" + rev + "'";
        Optional<String> commit = commitHeader(response);
        if (commit.filter(HubNames::isCommitHash).isEmpty()) {
            throw settings.fail(HubException.Reason.PROTOCOL, "The answer from " + settings.endpoint + " for " + where
                    + " has " + (commit.isEmpty() ? "no" : "an invalid") + " X-Repo-Commit header; is HF_ENDPOINT a"
                    + " Hugging Face Hub (or a proxy that drops its headers)?", null);
        }
        Optional<String> etag = normalizeEtag(response.headers().firstValue("X-Linked-Etag")
                .or(() -> response.headers().firstValue("ETag")));
        if (etag.filter(e -> SAFE_ETAG.matcher(e).matches()).isEmpty()) {
            throw settings.fail(HubException.Reason.PROTOCOL, "The answer from " + settings.endpoint + " for " + where
                    + " has " + (etag.isEmpty() ? "no ETag / X-Linked-Etag header" : "an ETag that is not a plain hash")
                    + ", so the download cannot be cached reliably.", null);
        }
        OptionalLong size = parseSize(response.headers().firstValue("X-Linked-Size")
                .or(() -> response.headers().firstValue("Content-Length")));
        if (size.isEmpty()) {
            throw settings.fail(HubException.Reason.PROTOCOL, "The answer from " + settings.endpoint + " for " + where
                    + " has no valid X-Linked-Size / Content-Length header, so the download cannot be checked.", null);
        }
        return new FileMetadata(commit.get(), etag.get(), size.getAsLong(), location);
    }

    private static Optional<String> commitHeader(HttpResponse<?> response) {
        return response.headers().firstValue("X-Repo-Commit").map(String::strip);
    }

    private static OptionalLong parseSize(Optional<String> raw) {
        if (raw.isEmpty()) {
            return OptionalLong.empty();
        }
        try {
            long size = Long.parseLong(raw.get().strip());
            return size < 0 ? OptionalLong.empty() : OptionalLong.of(size);
        } catch (NumberFormatException e) {
            return OptionalLong.empty();
        }
    }

    /** A 404 that means "no such file" rather than "no such repo/revision". */
    private static boolean isMissingEntry(HttpResponse<?> response) {
        if (response.statusCode() != 404) {
            return false;
        }
        String code = response.headers().firstValue("X-Error-Code").orElse("");
        return !code.equals("RepoNotFound") && !code.equals("RevisionNotFound");
    }

    // ---------------------------------------------------------------------------------------------------------
    // Requests and errors.

    /** A request with the user agent and timeout; {@code withToken} adds the token (Hub hosts only). */
    HttpRequest.Builder request(URI uri, Duration timeout, boolean withToken) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(timeout).header("User-Agent", USER_AGENT);
        return withToken ? settings.authorize(b) : b;
    }

    <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler,
                             HubRepo repo, String filename, String rev) {
        String what = (filename == null ? "the file list" : "'" + filename + "'") + " of " + repo
                + " at revision '" + rev + "'";
        try {
            return settings.http.send(request, handler);
        } catch (HttpTimeoutException e) {
            throw settings.fail(HubException.Reason.NETWORK, "Timed out waiting for " + request.uri().getHost()
                    + " while fetching " + what + ". Check the connection, raise HF_HUB_ETAG_TIMEOUT /"
                    + " HF_HUB_DOWNLOAD_TIMEOUT, or set HF_HUB_OFFLINE=1 to use only the cache.", e);
        } catch (IOException e) {
            throw settings.fail(HubException.Reason.NETWORK, "Could not reach " + request.uri().getScheme() + "://"
                    + request.uri().getAuthority() + " while fetching " + what + " (" + e + "). Check the"
                    + " connection and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache.", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw settings.fail(HubException.Reason.INTERRUPTED, "Interrupted while fetching " + what + ".", e);
        }
    }

    /** The exception for an HTTP error status, with the advice that fits it (token, licence, repo id, ...);
     *  {@code filename} null means the request was for the repo's file list. */
    HubException httpError(HttpResponse<?> response, HubRepo repo, String filename, String rev) {
        int status = response.statusCode();
        String endpoint = settings.endpoint;
        String code = response.headers().firstValue("X-Error-Code").orElse(null);
        String serverMessage = response.headers().firstValue("X-Error-Message")
                .map(m -> m.length() > MAX_SERVER_MESSAGE_CHARS ? m.substring(0, MAX_SERVER_MESSAGE_CHARS) + "..." : m)
                .map(m -> " The Hub said: " + m)
                .orElse("");
        String item = filename == null ? "the file list" : "'" + filename + "'";
        String what = item + " of " + repo + " at revision '" + rev + "'";
        String page = repo.page(endpoint);
        String kind = repo.isDataset() ? "dataset" : "model";
        String httpPart = "HTTP " + status + (code != null ? " " + code : "");
        if (status == 401 || status == 403 || "GatedRepo".equals(code)) {
            String advice = !settings.hasToken()
                    ? " The repo is gated or private (or does not exist). Set HF_TOKEN to a Hugging Face access"
                            + " token (create one at https://huggingface.co/settings/tokens), or store it in"
                            + " $HF_HOME/token; for a gated " + kind + " also accept its licence on " + page
                            + " while logged in."
                    : " A token was sent (from HF_TOKEN or the token file) but it does not grant access: accept the"
                            + " " + kind + "'s licence on " + page + " with the account that owns the token, or use"
                            + " a token with read access to this repo.";
            return settings.fail(HubException.Reason.ACCESS_DENIED, "Access denied (" + httpPart + ") to " + what
                    + " on " + endpoint + "." + advice + serverMessage, null);
        }
        if (status == 404) {
            String detail;
            if ("RepoNotFound".equals(code)) {
                detail = capitalize(repo.describe()) + " was not found on " + endpoint + " (fetching " + item
                        + " at revision '" + rev + "'). Check the repo id"
                        + (repo.isDataset() ? " (a dataset id as shown on " + endpoint + "/datasets, 'org/name'"
                                + " without the 'datasets/' prefix; a model repo is not a dataset repo)" : "")
                        + "; a private repo also looks missing without a token that can read it (HF_TOKEN).";
            } else if ("RevisionNotFound".equals(code)) {
                detail = "Revision '" + rev + "' was not found in " + repo + " (fetching " + item
                        + "). Use a branch, tag or full commit hash that exists on " + page + ".";
            } else {
                detail = capitalize(item) + " was not found in " + repo + " at revision '" + rev
                        + "' on " + endpoint + ".";
            }
            return settings.fail(HubException.Reason.NOT_FOUND, detail + " (" + httpPart + ")" + serverMessage, null);
        }
        if (status == 429 || status >= 500) {
            return settings.fail(HubException.Reason.NETWORK, "The Hub at " + endpoint + " answered " + httpPart
                    + " for " + what + "; try again later, or set HF_HUB_OFFLINE=1 to use only the cache."
                    + serverMessage, null);
        }
        return settings.fail(HubException.Reason.PROTOCOL, "Unexpected " + httpPart + " from " + endpoint + " for "
                + what + "." + serverMessage, null);
    }

    private static String capitalize(String s) {
        return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Addresses.

    private URI resolveUri(HubRepo repo, String rev, String filename) {
        StringBuilder path = new StringBuilder();
        for (String part : filename.split("/")) {
            if (path.length() > 0) {
                path.append('/');
            }
            path.append(encode(part));
        }
        // The revision is one path segment even when it contains '/' (e.g. refs/pr/1), as in huggingface_hub.
        return URI.create(settings.endpoint + "/" + repo.urlPath() + "/resolve/" + encode(rev) + "/" + path);
    }

    /** The target of a {@code Location} header, relative to the URI that answered with it. */
    URI resolveLocation(URI base, String location, HubRepo repo, String filename, String rev) {
        try {
            return base.resolve(new URI(location.strip()));
        } catch (URISyntaxException | IllegalArgumentException e) {
            throw settings.fail(HubException.Reason.PROTOCOL, "The Hub redirected '" + filename + "' of "
                    + repo + " at revision '" + rev + "' to an invalid address.", e);
        }
    }

    /** Hosts trusted with the token, as in huggingface_hub: the endpoint's host and the Hub's own domains. */
    boolean isHubHost(URI uri) {
        String host = uri.getHost();
        if (host == null) {
            return false;
        }
        return host.equalsIgnoreCase(settings.endpointUri.getHost()) || HUB_HOSTS.contains(host.toLowerCase(Locale.ROOT));
    }

    private static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static Optional<String> normalizeEtag(Optional<String> etag) {
        return etag.map(raw -> {
            String e = raw.strip();
            if (e.startsWith("W/")) {
                e = e.substring(2);
            }
            if (e.length() >= 2 && e.startsWith("\"") && e.endsWith("\"")) {
                e = e.substring(1, e.length() - 1);
            }
            return e;
        }).filter(e -> !e.isEmpty());
    }
}
