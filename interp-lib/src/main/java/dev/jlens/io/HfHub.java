package dev.jlens.io;

import dev.jlens.util.Names;

import java.io.IOException;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Resolves Hugging Face Hub model and dataset repos to local directories, downloading into the cache that Python's
 * {@code huggingface_hub} uses, so both share one copy of every file.
 *
 * <p>Models: {@link #download}, {@link #snapshotForModel}. Datasets: {@link #datasetFiles} lists a revision's files
 * (optionally by glob, e.g. {@code "data/train-*.parquet"}), {@link #datasetFile} fetches one,
 * {@link #snapshotForDataset} fetches the ones matching patterns; they live under {@code datasets--{org}--{name}}.
 *
 * <p>Cache layout under {@link #cacheDir()}: {@code models--{org}--{name}/blobs/<etag>} (for datasets
 * {@code datasets--{org}--{name}/blobs/<etag>}) holds the bytes,
 * {@code snapshots/<commit>/<filename>} are relative symlinks into {@code ../../blobs} (copies where symlinks
 * are not allowed), {@code refs/<revision>} holds the commit a branch or tag pointed to, and
 * {@code .no_exist/<commit>/<filename>} records files the Hub said are absent. A file already in a snapshot is
 * returned without any request; for a branch or tag the cached {@code refs/} entry is trusted (unlike Python,
 * which asks the Hub for a newer commit each time), so pass a commit hash or clear the ref to move to a newer one.
 *
 * <p>The access token is sent only to the Hub endpoint as {@code Authorization: Bearer}, never to a CDN it
 * redirects to, and never appears in messages, logs or {@link #toString()}.
 *
 * <p>A download whose server stops sending in the middle of a file for longer than the read timeout (default 30 s,
 * {@link Builder#readTimeout}) resumes from where it stopped with a {@code Range} request, up to
 * {@link Builder#stallResumes} times, then fails with {@link HubException.Reason#INTERRUPTED}, keeping what arrived.
 *
 * <p>This class is the front door; the jobs behind it are {@link HubSettings} (options and environment, the token),
 * {@link HubCache} (the cache layout), {@link HubRepo} (model or dataset: cache folder,
 * URLs), {@link HubHttp} (requests, errors, metadata, file lists), {@link BlobDownload} (resumable, checked downloads,
 * with {@link IdleTimeoutBody} as the read timeout) and {@link HubResolver} (cache first, then the Hub). All of them log to this class's logger.
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
    private static final int MAX_NAMES_SHOWN = 8;
    private static final String SAFETENSORS_FILE = SafetensorsIndex.SINGLE_FILE;
    private static final String SAFETENSORS_INDEX_FILE = SafetensorsIndex.INDEX_FILE;

    private final HubSettings settings;
    private final HubCache cache;
    private final HubHttp http;
    private final HubResolver resolver;

    private HfHub(HubSettings settings) {
        this.settings = settings;
        this.cache = new HubCache(settings);
        this.http = new HubHttp(settings);
        this.resolver = new HubResolver(settings, cache, http);
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
        return resolver.resolve(HubRepo.model(repoId), filename, revision, true).orElseThrow();
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
        HubRepo repo = HubRepo.model(repoId);
        Path snapshot = download(repoId, CONFIG_FILE, revision).getParent();
        // Every further file comes from the commit config.json came from, even if the branch moves meanwhile.
        String commit = snapshot.getFileName().toString();
        if (resolver.resolve(repo, SAFETENSORS_FILE, commit, false).isEmpty()) {
            Path index = resolver.resolve(repo, SAFETENSORS_INDEX_FILE, commit, false).orElseThrow(() -> settings.fail(
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
            resolver.resolve(repo, optional, commit, false);
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

    // ---------------------------------------------------------------------------------------------------------
    // Dataset repos: the same cache, under datasets--{org}--{name}.

    /**
     * Local path of one file of a dataset repo at a revision (branch, tag or commit; null means {@code main}),
     * downloaded into the cache ({@code datasets--{org}--{name}}) if missing. A file the revision does not have
     * fails with {@link HubException.Reason#NOT_FOUND}, naming the files with the most similar names.
     */
    public Path datasetFile(String repoId, String filename, String revision) {
        HubRepo repo = HubRepo.dataset(repoId);
        String rev = revision == null ? DEFAULT_REVISION : HubNames.checkRevision(revision);
        if (settings.offline) {
            return resolver.resolve(repo, filename, rev, true).orElseThrow();
        }
        Optional<Path> path = resolver.resolve(repo, filename, rev, false);
        if (path.isPresent()) {
            return path.get();
        }
        HubHttp.RepoFiles listing = http.listFiles(repo, rev);
        throw settings.fail(HubException.Reason.NOT_FOUND, "File '" + filename + "' was not found in " + repo
                + " at revision '" + rev + "' (commit " + listing.commit() + ") on " + settings.endpoint + ". "
                + similarFiles(filename, listing.files()) + " The revision has " + listing.files().size() + " file"
                + (listing.files().size() == 1 ? "" : "s") + "; datasetFiles(\"" + repoId + "\", \"" + rev
                + "\") lists them.", null);
    }

    /**
     * Every file of a dataset repo at a revision, sorted, with '/' between folders ({@code data/train-00000.parquet}).
     * Online this asks the Hub (one request) and records the commit the revision points to; offline
     * ({@code HF_HUB_OFFLINE}) it lists the files of that revision already in the cache.
     */
    public List<String> datasetFiles(String repoId, String revision) {
        return listing(HubRepo.dataset(repoId), revision).files();
    }

    /**
     * The files of a dataset repo at a revision that match any of {@code patterns}, sorted. Patterns follow
     * {@code huggingface_hub}'s {@code allow_patterns}: {@code *} matches any characters including '/',
     * {@code ?} one character, a pattern ending in '/' a whole folder ({@code "data/*.parquet"},
     * {@code "en/"}, {@code "README.md"}). An empty list selects every file.
     */
    public List<String> datasetFiles(String repoId, String revision, List<String> patterns) {
        HubRepo repo = HubRepo.dataset(repoId);
        String rev = revision == null ? DEFAULT_REVISION : HubNames.checkRevision(revision);
        HubHttp.RepoFiles listing = listing(repo, rev);
        return select(repo, rev, listing, patterns);
    }

    /** Snapshot directory of a whole dataset repo at a revision; see {@link #snapshotForDataset(String, String, List)}. */
    public Path snapshotForDataset(String repoId, String revision) {
        return snapshotForDataset(repoId, revision, List.of());
    }

    /**
     * Downloads the files of a dataset repo that match {@code patterns} (as in {@link #datasetFiles(String, String,
     * List)}; empty means every file) at one commit, and returns the snapshot directory
     * {@code datasets--{org}--{name}/snapshots/<commit>} that holds them. Files already cached are not downloaded
     * again. Fails with {@link HubException.Reason#NOT_FOUND} (offline: {@link HubException.Reason#NOT_CACHED})
     * when nothing matches, or when a pattern without wildcards names a file the revision does not have, listing
     * the nearest names.
     */
    public Path snapshotForDataset(String repoId, String revision, List<String> patterns) {
        HubRepo repo = HubRepo.dataset(repoId);
        String rev = revision == null ? DEFAULT_REVISION : HubNames.checkRevision(revision);
        HubHttp.RepoFiles listing = listing(repo, rev);
        // Every file comes from the commit the listing named, even if the branch moves meanwhile.
        for (String file : select(repo, rev, listing, patterns)) {
            resolver.resolve(repo, file, listing.commit(), true);
        }
        Path snapshot = cache.repoDir(repo).resolve("snapshots").resolve(listing.commit());
        try {
            Files.createDirectories(snapshot);
        } catch (IOException e) {
            throw settings.fail(HubException.Reason.CACHE_IO, "Could not create " + snapshot + ": " + e, e);
        }
        return snapshot;
    }

    /** Folder of one dataset repo inside the cache: {@code datasets--{org}--{name}}. */
    public Path datasetCacheDir(String repoId) {
        return cache.repoDir(HubRepo.dataset(repoId));
    }

    /** The commit and files of a revision: from the Hub, or offline from the cache. */
    private HubHttp.RepoFiles listing(HubRepo repo, String revision) {
        String rev = revision == null ? DEFAULT_REVISION : HubNames.checkRevision(revision);
        Path repoDir = cache.repoDir(repo);
        if (settings.offline) {
            String commit = HubCache.knownCommit(repoDir, rev)
                    .filter(c -> Files.isDirectory(repoDir.resolve("snapshots").resolve(c)))
                    .orElseThrow(() -> settings.fail(HubException.Reason.NOT_CACHED, "Offline mode (HF_HUB_OFFLINE is"
                            + " set): " + repo + " at revision '" + rev + "' is not in the Hugging Face cache "
                            + settings.cacheDir + " (looked in " + repoDir + "). Download it once with the network on"
                            + " (unset HF_HUB_OFFLINE), point HF_HUB_CACHE at a cache that has it, or pass the commit"
                            + " hash of a cached snapshot.", null));
            return new HubHttp.RepoFiles(commit, HubCache.snapshotFiles(repoDir, commit));
        }
        HubHttp.RepoFiles listing = http.listFiles(repo, rev);
        cache.writeRef(repoDir, rev, listing.commit());
        return listing;
    }

    /** The listed files matching any pattern (all for none); fails on an unmatched exact name or no match at all. */
    private List<String> select(HubRepo repo, String rev, HubHttp.RepoFiles listing, List<String> patterns) {
        Objects.requireNonNull(patterns, "patterns");
        if (patterns.isEmpty()) {
            return listing.files();
        }
        List<Pattern> regexes = new ArrayList<>();
        for (String pattern : patterns) {
            regexes.add(HubNames.globRegex(pattern));
        }
        String where = repo + " at revision '" + rev + "' (commit " + listing.commit() + ")"
                + (settings.offline ? " in the cache " + settings.cacheDir + " (offline mode, HF_HUB_OFFLINE is set,"
                        + " so only cached files are known)" : " on " + settings.endpoint);
        HubException.Reason reason = settings.offline ? HubException.Reason.NOT_CACHED : HubException.Reason.NOT_FOUND;
        for (String pattern : patterns) {
            if (!HubNames.isGlob(pattern) && !listing.files().contains(pattern)) {
                throw settings.fail(reason, "File '" + pattern + "' is not in " + where + ". "
                        + similarFiles(pattern, listing.files()), null);
            }
        }
        List<String> chosen = new ArrayList<>();
        for (String file : listing.files()) {
            if (regexes.stream().anyMatch(r -> r.matcher(file).matches())) {
                chosen.add(file);
            }
        }
        if (chosen.isEmpty()) {
            throw settings.fail(reason, "No file of " + where + " matches " + quoted(patterns) + ". "
                    + overview(listing.files()) + " Patterns are globs: '*' matches any characters including '/',"
                    + " e.g. 'data/*.parquet', or 'data/' for a whole folder.", null);
        }
        return chosen;
    }

    /** "Similar files: ..." naming the closest names (the same file name in another folder first), or a short
     *  overview when none is close. */
    private static String similarFiles(String wanted, List<String> files) {
        String base = wanted.substring(wanted.lastIndexOf('/') + 1);
        int limit = Math.max(2, wanted.length() / 3);
        List<String> close = files.stream()
                .map(f -> Map.entry(f, f.substring(f.lastIndexOf('/') + 1).equals(base) ? 0
                        : Names.editDistance(wanted, f, limit)))
                .filter(e -> e.getValue() <= limit)
                .sorted(Map.Entry.<String, Integer>comparingByValue().thenComparing(Map.Entry.comparingByKey()))
                .limit(MAX_NAMES_SHOWN)
                .map(Map.Entry::getKey)
                .toList();
        return close.isEmpty() ? overview(files) : "Similar files: " + quoted(close) + ".";
    }

    /** The top-level entries of a file list (folders end in '/'), a few of them. */
    private static String overview(List<String> files) {
        if (files.isEmpty()) {
            return "It has no files.";
        }
        SortedSet<String> top = new TreeSet<>();
        for (String f : files) {
            int slash = f.indexOf('/');
            top.add(slash < 0 ? f : f.substring(0, slash + 1));
        }
        List<String> shown = top.stream().limit(MAX_NAMES_SHOWN).toList();
        return "Its top-level files and folders: " + quoted(shown) + (top.size() > shown.size() ? ", ..." : "") + ".";
    }

    private static String quoted(List<String> names) {
        StringBuilder sb = new StringBuilder();
        for (String n : names) {
            if (sb.length() > 0) {
                sb.append(", ");
            }
            sb.append('\'').append(n).append('\'');
        }
        return sb.toString();
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
        Duration readTimeout;
        int stallResumes = HubSettings.DEFAULT_STALL_RESUMES;
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

        /**
         * How long a download may receive no bytes in the middle of a file before it gives up on that connection and
         * resumes from where it stopped with a {@code Range} request, overriding {@code JLENS_HUB_READ_TIMEOUT}
         * (seconds; default 30 s).
         */
        public Builder readTimeout(Duration timeout) {
            this.readTimeout = positive(timeout, "readTimeout");
            return this;
        }

        /** How many times one download resumes after a stall before it fails (default 5; 0 fails at once). */
        public Builder stallResumes(int resumes) {
            if (resumes < 0) {
                throw new IllegalArgumentException("stallResumes must be >= 0, got " + resumes + ".");
            }
            this.stallResumes = resumes;
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
