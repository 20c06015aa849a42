package dev.jlens.io;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * What a {@link HfHub} is configured with, resolved as Python's {@code huggingface_hub} does: a builder option, else
 * an environment variable ({@code HF_HUB_CACHE}, {@code HF_HOME}, {@code HF_ENDPOINT}, {@code HF_TOKEN},
 * {@code HF_HUB_OFFLINE}, ...), else the default. Holds the access token and never shows it: it is added only to
 * requests through {@link #authorize}, and every error message is built through {@link #fail}, which masks it.
 */
final class HubSettings {

    static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);
    /** How long a download may receive nothing in the middle of a body before it resumes from where it stopped. */
    static final Duration DEFAULT_READ_TIMEOUT = Duration.ofSeconds(30);
    /** How many times one download resumes after such a stall before it fails. */
    static final int DEFAULT_STALL_RESUMES = 5;

    private static final System.Logger LOG = System.getLogger(HfHub.class.getName());
    private static final Set<String> TRUE_VALUES = Set.of("1", "ON", "YES", "TRUE");

    final Path cacheDir;
    final String endpoint;
    final URI endpointUri;
    final boolean offline;
    final Duration metadataTimeout;
    final Duration downloadTimeout;
    final Duration readTimeout;
    final int stallResumes;
    final HttpClient http;
    final HubProgressListener progress;
    private final Optional<String> token;

    private HubSettings(HfHub.Builder b) {
        Map<String, String> env = b.env;
        Path userHome = b.userHome;
        Path hfHome = envPath(env, "HF_HOME", userHome)
                .orElseGet(() -> envPath(env, "XDG_CACHE_HOME", userHome).orElse(userHome.resolve(".cache"))
                        .resolve("huggingface"));
        Path cache = b.cacheDir != null ? b.cacheDir
                : envPath(env, "HF_HUB_CACHE", userHome)
                        .or(() -> envPath(env, "HUGGINGFACE_HUB_CACHE", userHome))
                        .orElse(hfHome.resolve("hub"));
        this.cacheDir = cache.toAbsolutePath().normalize();

        String ep = b.endpoint != null ? b.endpoint : envValue(env, "HF_ENDPOINT").orElse(HfHub.DEFAULT_ENDPOINT);
        ep = ep.strip();
        while (ep.endsWith("/")) {
            ep = ep.substring(0, ep.length() - 1);
        }
        this.endpointUri = parseEndpoint(ep);
        this.endpoint = ep;

        Optional<String> tok = b.token != null ? Optional.of(b.token)
                : envValue(env, "HF_TOKEN")
                        .or(() -> envValue(env, "HUGGING_FACE_HUB_TOKEN"))
                        .or(() -> readTokenFile(envPath(env, "HF_TOKEN_PATH", userHome).orElse(hfHome.resolve("token"))));
        this.token = tok.flatMap(HubSettings::checkToken);

        this.offline = b.offline != null ? b.offline
                : isTrue(env.get("HF_HUB_OFFLINE")) || isTrue(env.get("TRANSFORMERS_OFFLINE"));
        this.metadataTimeout = b.metadataTimeout != null ? b.metadataTimeout
                : envSeconds(env, "HF_HUB_ETAG_TIMEOUT").orElse(DEFAULT_TIMEOUT);
        this.downloadTimeout = b.downloadTimeout != null ? b.downloadTimeout
                : envSeconds(env, "HF_HUB_DOWNLOAD_TIMEOUT").orElse(DEFAULT_TIMEOUT);
        this.readTimeout = b.readTimeout != null ? b.readTimeout
                : envSeconds(env, "JLENS_HUB_READ_TIMEOUT").orElse(DEFAULT_READ_TIMEOUT);
        this.stallResumes = b.stallResumes;
        // Redirects are followed by hand: the token must not travel to a CDN on another host.
        this.http = b.httpClient != null ? b.httpClient
                : b.connectTimeout.equals(DEFAULT_TIMEOUT) ? DefaultClient.INSTANCE
                : newClient(b.connectTimeout);
        this.progress = b.progress;
    }

    /** The builder's options over the environment over the defaults. */
    static HubSettings resolve(HfHub.Builder b) {
        return new HubSettings(b);
    }

    private static HttpClient newClient(Duration connectTimeout) {
        return HttpClient.newBuilder()
                .connectTimeout(connectTimeout)
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
    }

    /** One shared client for the default settings: each HttpClient keeps its own selector thread alive. */
    private static final class DefaultClient {
        static final HttpClient INSTANCE = newClient(DEFAULT_TIMEOUT);
    }

    boolean hasToken() {
        return token.isPresent();
    }

    /** Adds {@code Authorization: Bearer} when a token is configured; only for requests to Hub hosts. */
    HttpRequest.Builder authorize(HttpRequest.Builder request) {
        token.ifPresent(t -> request.header("Authorization", "Bearer " + t));
        return request;
    }

    /** Builds the exception with every occurrence of the token masked, so no message can leak it. */
    HubException fail(HubException.Reason reason, String message, Throwable cause) {
        return new HubException(reason, redact(message), cause);
    }

    private String redact(String message) {
        return token.isEmpty() || message == null ? message : message.replace(token.get(), "<redacted>");
    }

    @Override
    public String toString() {
        return "HfHub[endpoint=" + endpoint + ", cacheDir=" + cacheDir + ", offline=" + offline
                + ", token=" + (token.isPresent() ? "set" : "not set") + "]";
    }

    // ---------------------------------------------------------------------------------------------------------
    // Reading the environment.

    private static URI parseEndpoint(String endpoint) {
        try {
            URI uri = new URI(endpoint);
            if (uri.getHost() == null || !("http".equalsIgnoreCase(uri.getScheme())
                    || "https".equalsIgnoreCase(uri.getScheme()))) {
                throw new URISyntaxException(endpoint, "not an http(s) URL with a host");
            }
            return uri;
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("Invalid Hub endpoint '" + endpoint + "' (HF_ENDPOINT): expected an"
                    + " http(s) URL such as " + HfHub.DEFAULT_ENDPOINT + ".", e);
        }
    }

    private static Optional<String> checkToken(String token) {
        if (token.isBlank()) {
            return Optional.empty();
        }
        String t = token.strip();
        // Never echo the value: it is a secret, even when malformed.
        if (t.chars().anyMatch(c -> c < 0x21 || c > 0x7e)) {
            throw new IllegalArgumentException("The Hugging Face token (HF_TOKEN or the token file) contains"
                    + " spaces or non-ASCII characters; it must be a single token such as the one shown on"
                    + " https://huggingface.co/settings/tokens.");
        }
        return Optional.of(t);
    }

    private static Optional<String> readTokenFile(Path file) {
        try {
            return Files.isRegularFile(file) ? Optional.of(Files.readString(file, StandardCharsets.UTF_8))
                    : Optional.empty();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, "Could not read the token file {0}: {1}", file, e.getClass());
            return Optional.empty();
        }
    }

    private static Optional<String> envValue(Map<String, String> env, String name) {
        String v = env.get(name);
        return v == null || v.isBlank() ? Optional.empty() : Optional.of(v.strip());
    }

    private static Optional<Path> envPath(Map<String, String> env, String name, Path userHome) {
        return envValue(env, name).map(v -> {
            if (v.equals("~")) {
                return userHome;
            }
            return v.startsWith("~/") ? userHome.resolve(v.substring(2)) : Path.of(v);
        });
    }

    private static Optional<Duration> envSeconds(Map<String, String> env, String name) {
        return envValue(env, name).map(v -> {
            try {
                long seconds = Long.parseLong(v);
                if (seconds <= 0) {
                    throw new NumberFormatException();
                }
                return Duration.ofSeconds(seconds);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(name + "='" + v + "' is not a positive whole number of"
                        + " seconds.");
            }
        });
    }

    private static boolean isTrue(String value) {
        return value != null && TRUE_VALUES.contains(value.strip().toUpperCase(Locale.ROOT));
    }
}
