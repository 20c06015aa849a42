package dev.jlens.io;

import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * Resolves Hugging Face Hub model repos to local directories, downloading into the cache that Python's
 * {@code huggingface_hub} uses, so both share one copy of every file.
 *
 * <p>Cache layout under {@link #cacheDir()}: {@code models--{org}--{name}/blobs/<etag>} holds the bytes,
 * {@code snapshots/<commit>/<filename>} are relative symlinks into {@code ../../blobs} (copies where symlinks
 * are not allowed), {@code refs/<revision>} holds the commit a branch or tag pointed to, and
 * {@code .no_exist/<commit>/<filename>} records files the Hub said are absent. A file already in a snapshot is
 * returned without any request; for a branch or tag the cached {@code refs/} entry is trusted (unlike Python,
 * which asks the Hub for a newer commit each time), so pass a commit hash or clear the ref to move to a newer one.
 *
 * <p>The access token is sent only to the Hub endpoint as {@code Authorization: Bearer}, never to a CDN it
 * redirects to, and never appears in messages, logs or {@link #toString()}.
 *
 * <p>This class is the front door; the jobs behind it are {@link HubSettings} (options and environment, the token),
 * {@link HubCache} (the cache layout), {@link HubHttp} (requests, errors, metadata), {@link BlobDownload} (resumable,
 * checked downloads) and {@link HubResolver} (cache first, then the Hub). All of them log to this class's logger.
 */
public final class HfHub {

    /** The public Hub, used when {@code HF_ENDPOINT} is not set. */
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";
    /** The revision used when none is given. */
    public static final String DEFAULT_REVISION = "main";
    /** Files {@link #snapshotForModel} fetches when the repo has them. */
    public static final List<String> OPTIONAL_MODEL_FILES =
            List.of("tokenizer.json", "tokenizer_config.json", "generation_config.json");

    static final String CONFIG_FILE = "config.json";
    private static final String SAFETENSORS_FILE = SafetensorsIndex.SINGLE_FILE;
    private static final String SAFETENSORS_INDEX_FILE = SafetensorsIndex.INDEX_FILE;

    private final HubSettings settings;
    private final HubCache cache;
    private final HubResolver resolver;

    private HfHub(HubSettings settings) {
        this.settings = settings;
        this.cache = new HubCache(settings);
        this.resolver = new HubResolver(settings, cache, new HubHttp(settings));
    }

    /** A hub configured from the process environment ({@code HF_HUB_CACHE}, {@code HF_HOME}, {@code HF_ENDPOINT},
     *  {@code HF_TOKEN}, {@code HF_HUB_OFFLINE}, ...). */
    public static HfHub fromEnvironment() {
        return builder().build();
    }

    /** A builder whose unset options fall back to the environment, as in {@link #fromEnvironment()}. */
    public static Builder builder() {
        return new Builder();
    }

    /** True if {@code repoIdOrDir} names an existing local directory, which is then used as the model as is. */
    public static boolean isLocalDir(String repoIdOrDir) {
        if (repoIdOrDir == null || repoIdOrDir.isBlank()) {
            return false;
        }
        try {
            return Files.isDirectory(Path.of(repoIdOrDir));
        } catch (InvalidPathException e) {
            return false;
        }
    }

    /** Local path of {@code filename} of {@code repoId} at revision {@code main}; downloads it if missing. */
    public Path download(String repoId, String filename) {
        return download(repoId, filename, DEFAULT_REVISION);
    }

    /** Local path of one file of a repo at a revision (branch, tag or commit); downloads it into the cache if
     *  missing. */
    public Path download(String repoId, String filename, String revision) {
        return resolver.resolve(repoId, filename, revision, true).orElseThrow();
    }

    /** Snapshot directory of {@code repoIdOrDir} at revision {@code main}; see {@link #snapshotForModel(String, String)}. */
    public Path snapshotForModel(String repoIdOrDir) {
        return snapshotForModel(repoIdOrDir, DEFAULT_REVISION);
    }

    /**
     * Snapshot directory holding a model's files: {@code config.json}, {@code model.safetensors} or its index and
     * every shard the index names, and {@code tokenizer.json}, {@code tokenizer_config.json},
     * {@code generation_config.json} where the repo has them. A local directory is returned as is.
     */
    public Path snapshotForModel(String repoIdOrDir, String revision) {
        Objects.requireNonNull(repoIdOrDir, "repoIdOrDir");
        if (isLocalDir(repoIdOrDir)) {
            return Path.of(repoIdOrDir).toAbsolutePath().normalize();
        }
        if (!HubNames.isValidRepoId(repoIdOrDir)) {
            throw new IllegalArgumentException("'" + repoIdOrDir + "' is neither an existing local directory nor a"
                    + " Hub repo id like 'gpt2' or 'Qwen/Qwen2.5-0.5B' (letters, digits, '-', '_', '.').");
        }
        String repoId = repoIdOrDir;
        Path snapshot = download(repoId, CONFIG_FILE, revision).getParent();
        // Every further file comes from the commit config.json came from, even if the branch moves meanwhile.
        String commit = snapshot.getFileName().toString();
        if (resolver.resolve(repoId, SAFETENSORS_FILE, commit, false).isEmpty()) {
            Path index = resolver.resolve(repoId, SAFETENSORS_INDEX_FILE, commit, false).orElseThrow(() -> settings.fail(
                    settings.offline ? HubException.Reason.NOT_CACHED : HubException.Reason.NOT_FOUND,
                    "Repo '" + repoId + "' at revision '" + (revision == null ? DEFAULT_REVISION : revision)
                            + "' (commit " + commit + ") has neither '" + SAFETENSORS_FILE + "' nor '"
                            + SAFETENSORS_INDEX_FILE + "'"
                            + (settings.offline ? " in the cache " + settings.cacheDir
                                    + " (offline mode, HF_HUB_OFFLINE is set)" : " on " + settings.endpoint)
                            + ". Only safetensors checkpoints are supported.", null));
            for (String shard : shardsOf(repoId, index)) {
                download(repoId, shard, commit);
            }
        }
        for (String optional : OPTIONAL_MODEL_FILES) {
            resolver.resolve(repoId, optional, commit, false);
        }
        return snapshot;
    }

    /** The shard files a downloaded index names, each once, sorted. */
    private List<String> shardsOf(String repoId, Path index) {
        Map<String, List<String>> byShard;
        try {
            byShard = SafetensorsIndex.weightMap(index);
        } catch (CheckpointException e) {
            throw settings.fail(HubException.Reason.INTEGRITY, "Could not read " + SAFETENSORS_INDEX_FILE
                    + " of repo '" + repoId + "': " + e.getMessage(), e);
        }
        if (byShard.isEmpty()) {
            throw settings.fail(HubException.Reason.INTEGRITY, SAFETENSORS_INDEX_FILE + " of repo '" + repoId + "' ("
                    + index + ") has no non-empty \"weight_map\" object naming the shard files.", null);
        }
        SortedSet<String> shards = new TreeSet<>();
        for (String shard : byShard.keySet()) {
            shards.add(HubNames.checkFilename(shard));
        }
        return new ArrayList<>(shards);
    }

    /** The cache root ({@code HF_HUB_CACHE}, else {@code $HF_HOME/hub}, else {@code ~/.cache/huggingface/hub}). */
    public Path cacheDir() {
        return settings.cacheDir;
    }

    /** Folder of one model repo inside the cache: {@code models--{org}--{name}}. */
    public Path repoCacheDir(String repoId) {
        return cache.repoDir(repoId);
    }

    /** The Hub base URL ({@code HF_ENDPOINT}, default {@value #DEFAULT_ENDPOINT}). */
    public String endpoint() {
        return settings.endpoint;
    }

    /** True when only the cache is used ({@code HF_HUB_OFFLINE=1}). */
    public boolean isOffline() {
        return settings.offline;
    }

    /** True when an access token is configured; the token itself is never exposed. */
    public boolean hasToken() {
        return settings.hasToken();
    }

    @Override
    public String toString() {
        return settings.toString();
    }

    /** Options for {@link HfHub}; anything not set falls back to the environment, then to the defaults. */
    public static final class Builder {
        // Read by HubSettings, which resolves what is not set here from the environment.
        Map<String, String> env = System.getenv();
        Path userHome = Path.of(System.getProperty("user.home"));
        Path cacheDir;
        String endpoint;
        String token;
        Boolean offline;
        HttpClient httpClient;
        Duration connectTimeout = HubSettings.DEFAULT_TIMEOUT;
        Duration metadataTimeout;
        Duration downloadTimeout;
        HubProgressListener progress = HubProgressListener.none();

        private Builder() { }

        /** Environment variables to read instead of the process environment (tests, notebooks). */
        public Builder env(Map<String, String> env) {
            this.env = Map.copyOf(Objects.requireNonNull(env, "env"));
            return this;
        }

        /** Home directory that {@code ~} and the default cache are relative to (default: {@code user.home}). */
        public Builder userHome(Path userHome) {
            this.userHome = Objects.requireNonNull(userHome, "userHome");
            return this;
        }

        /** Cache root, overriding {@code HF_HUB_CACHE} and {@code HF_HOME}. */
        public Builder cacheDir(Path cacheDir) {
            this.cacheDir = Objects.requireNonNull(cacheDir, "cacheDir");
            return this;
        }

        /** Hub base URL, overriding {@code HF_ENDPOINT}. */
        public Builder endpoint(String endpoint) {
            this.endpoint = Objects.requireNonNull(endpoint, "endpoint");
            return this;
        }

        /** Access token, overriding {@code HF_TOKEN} and the token file; null goes back to those. */
        public Builder token(String token) {
            this.token = token;
            return this;
        }

        /** Use only the cache, overriding {@code HF_HUB_OFFLINE}. */
        public Builder offline(boolean offline) {
            this.offline = offline;
            return this;
        }

        /** HTTP client to use; it should not follow redirects itself, so the token stays off CDN hosts. */
        public Builder httpClient(HttpClient httpClient) {
            this.httpClient = Objects.requireNonNull(httpClient, "httpClient");
            return this;
        }

        /** Connect timeout of the default HTTP client (default 10 s). */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = positive(timeout, "connectTimeout");
            return this;
        }

        /** Time to wait for the metadata (HEAD) answer, overriding {@code HF_HUB_ETAG_TIMEOUT} (default 10 s). */
        public Builder metadataTimeout(Duration timeout) {
            this.metadataTimeout = positive(timeout, "metadataTimeout");
            return this;
        }

        /** Time to wait for a download to start answering, overriding {@code HF_HUB_DOWNLOAD_TIMEOUT} (default 10 s). */
        public Builder downloadTimeout(Duration timeout) {
            this.downloadTimeout = positive(timeout, "downloadTimeout");
            return this;
        }

        /** Receives bytes-done / total events while files download. */
        public Builder progressListener(HubProgressListener listener) {
            this.progress = Objects.requireNonNull(listener, "listener");
            return this;
        }

        /** The configured hub. */
        public HfHub build() {
            return new HfHub(HubSettings.resolve(this));
        }

        private static Duration positive(Duration d, String name) {
            Objects.requireNonNull(d, name);
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException(name + " must be positive, got " + d + ".");
            }
            return d;
        }
    }
}
