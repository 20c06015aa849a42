package dev.jlens.io;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Dataset repos through {@link HfHub}, against {@link HfHubFake} on 127.0.0.1. */
class HfHubDatasetTest {

    private static final String TOKEN = "hf_DatasetTokenW3pR8sLq1";
    private static final String README = "---\nlicense: mit\n---\n# A tiny corpus\n";

    @TempDir
    Path tmp;

    private HfHubFake fake;
    private Path cache;
    private byte[] train0;
    private byte[] train1;
    private byte[] test0;

    @BeforeEach
    void startFake() throws IOException {
        fake = HfHubFake.start();
        cache = tmp.resolve("cache");
        train0 = randomBytes(120_000, 1);
        train1 = randomBytes(80_000, 2);
        test0 = randomBytes(30_000, 3);
    }

    @AfterEach
    void stopFake() {
        fake.close();
    }

    private HfHubFake.Repo corpus() {
        return fake.dataset("org/corpus")
                .file("README.md", README)
                .lfs("data/train-00000-of-00002.parquet", train0)
                .lfs("data/train-00001-of-00002.parquet", train1)
                .lfs("data/test-00000-of-00001.parquet", test0)
                .file("en/meta.json", "{\"lang\": \"en\"}");
    }

    private HfHub hub(String... extraEnv) {
        Map<String, String> env = new HashMap<>();
        env.put("HF_HUB_CACHE", cache.toString());
        env.put("HF_ENDPOINT", fake.endpoint());
        for (int i = 0; i < extraEnv.length; i += 2) {
            env.put(extraEnv[i], extraEnv[i + 1]);
        }
        return HfHub.builder().env(env).userHome(tmp.resolve("home")).build();
    }

    private Path datasetDir(String repoId) {
        return cache.resolve("datasets--" + repoId.replace("/", "--"));
    }

    private static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static HubException assertHubException(HubException.Reason reason, Runnable call) {
        HubException e = assertThrows(HubException.class, call::run);
        assertEquals(reason, e.reason(), () -> "message: " + e.getMessage());
        return e;
    }

    @Test
    void snapshotWithAPatternFetchesOnlyMatchingFilesIntoTheDatasetsCacheLayout() throws IOException {
        HfHubFake.Repo repo = corpus();
        HfHub hub = hub();

        Path snapshot = hub.snapshotForDataset("org/corpus", "main", List.of("data/train-*.parquet"));

        Path dir = datasetDir("org/corpus");
        assertEquals(dir, hub.datasetCacheDir("org/corpus"));
        assertEquals(dir.resolve("snapshots").resolve(repo.commit()), snapshot);
        Path shard0 = snapshot.resolve("data/train-00000-of-00002.parquet");
        assertArrayEquals(train0, Files.readAllBytes(shard0));
        assertArrayEquals(train1, Files.readAllBytes(snapshot.resolve("data/train-00001-of-00002.parquet")));
        assertEquals(Path.of("../../../blobs/" + HfHubFake.sha256Hex(train0)), Files.readSymbolicLink(shard0));
        assertFalse(Files.exists(snapshot.resolve("data/test-00000-of-00001.parquet"), LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(snapshot.resolve("README.md"), LinkOption.NOFOLLOW_LINKS));
        assertEquals(repo.commit(), Files.readString(dir.resolve("refs/main")));
        assertFalse(Files.exists(cache.resolve("models--org--corpus")), "a dataset is not cached as a model");

        List<HfHubFake.Request> requests = fake.requests();
        assertEquals("/api/datasets/org/corpus/revision/main", requests.get(0).path());
        assertTrue(requests.stream().filter(r -> r.server().equals("hub") && r.method().equals("HEAD"))
                .allMatch(r -> r.path().startsWith("/datasets/org/corpus/resolve/" + repo.commit() + "/data/train-")),
                requests::toString);
        assertEquals(2, requests.stream().filter(r -> r.server().equals("cdn")).count(), requests::toString);

        // Again: one listing request, no file downloaded twice.
        int hits = fake.hits();
        assertEquals(snapshot, hub.snapshotForDataset("org/corpus", "main", List.of("data/train-*.parquet")));
        assertEquals(hits + 1, fake.hits(), () -> fake.requests().toString());
    }

    @Test
    void fileListComesFromTheApiAndPatternsSelectAsHuggingFaceHubDoes() {
        corpus();
        HfHub hub = hub();

        assertEquals(List.of("README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet", "en/meta.json"), hub.datasetFiles("org/corpus", null));
        assertEquals(List.of("data/test-00000-of-00001.parquet", "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet"), hub.datasetFiles("org/corpus", "main", List.of("*.parquet")));
        assertEquals(List.of("data/test-00000-of-00001.parquet", "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet"), hub.datasetFiles("org/corpus", "main", List.of("data/")));
        assertEquals(List.of("README.md", "en/meta.json"),
                hub.datasetFiles("org/corpus", "main", List.of("README.md", "en/*.json")));
        assertEquals(List.of("data/train-00001-of-00002.parquet"),
                hub.datasetFiles("org/corpus", "main", List.of("data/train-0000[!0]-*")));
        assertTrue(fake.requests().stream().allMatch(r -> r.path().startsWith("/api/datasets/org/corpus/revision/")));
    }

    @Test
    void globMatchingFollowsFnmatch() {
        assertTrue(HubNames.matches("*.parquet", "a/b/c.parquet"), "'*' crosses folders as in fnmatch");
        assertTrue(HubNames.matches("data/", "data/x/y.json"));
        assertFalse(HubNames.matches("data/", "database.json"));
        assertTrue(HubNames.matches("train-?.json", "train-7.json"));
        assertFalse(HubNames.matches("train-?.json", "train-17.json"));
        assertTrue(HubNames.matches("[ab].txt", "b.txt"));
        assertFalse(HubNames.matches("[!ab].txt", "b.txt"));
        assertTrue(HubNames.matches("a+b(1).txt", "a+b(1).txt"), "regex characters are literal");
        assertFalse(HubNames.matches("a.txt", "abtxt"));
    }

    @Test
    void singleFileAtATagAndAtACommit() throws IOException {
        HfHubFake.Repo repo = corpus().tag("v1.0");
        HfHub hub = hub();

        Path byTag = hub.datasetFile("org/corpus", "README.md", "v1.0");
        Path byCommit = hub.datasetFile("org/corpus", "data/test-00000-of-00001.parquet", repo.commit());

        assertEquals(README, Files.readString(byTag));
        assertEquals(datasetDir("org/corpus").resolve("snapshots").resolve(repo.commit()).resolve("README.md"), byTag);
        assertEquals(repo.commit(), Files.readString(datasetDir("org/corpus").resolve("refs/v1.0")));
        assertArrayEquals(test0, Files.readAllBytes(byCommit));
        assertTrue(fake.requests().stream().filter(r -> r.server().equals("hub"))
                .anyMatch(r -> r.path().equals("/datasets/org/corpus/resolve/v1.0/README.md")), fake.requests()::toString);
        int hits = fake.hits();
        assertEquals(byTag, hub.datasetFile("org/corpus", "README.md", "v1.0"));
        assertEquals(hits, fake.hits(), "a cached dataset file needs no request");
    }

    @Test
    void modelAndDatasetWithTheSameIdAreSeparateRepos() throws IOException {
        fake.repo("org/same").file("config.json", "{\"model\": true}");
        fake.dataset("org/same").file("config.json", "{\"dataset\": true}");
        HfHub hub = hub();

        Path model = hub.download("org/same", "config.json", "main");
        Path dataset = hub.datasetFile("org/same", "config.json", "main");

        assertNotEquals(model, dataset);
        assertEquals("{\"model\": true}", Files.readString(model));
        assertEquals("{\"dataset\": true}", Files.readString(dataset));
        assertTrue(model.startsWith(cache.resolve("models--org--same")), model.toString());
        assertTrue(dataset.startsWith(cache.resolve("datasets--org--same")), dataset.toString());
    }

    @Test
    void missingFileNamesTheMostSimilarFiles() {
        corpus();
        HfHub hub = hub();

        HubException e = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub.datasetFile("org/corpus", "data/train-00000-of-00003.parquet", "main"));

        String m = e.getMessage();
        assertTrue(m.contains("'data/train-00000-of-00003.parquet'") && m.contains("dataset repo 'org/corpus'")
                && m.contains("'main'"), m);
        assertTrue(m.contains("Similar files: 'data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet'"),
                m);
        assertFalse(m.contains("en/meta.json"), "only close names are suggested: " + m);
        assertTrue(m.contains("5 files") && m.contains("datasetFiles(\"org/corpus\", \"main\")"), m);

        HubException exact = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub.snapshotForDataset("org/corpus", "main", List.of("readme.md")));
        assertTrue(exact.getMessage().contains("'readme.md'") && exact.getMessage().contains("'README.md'"),
                exact.getMessage());
    }

    @Test
    void patternsMatchingNothingShowWhatTheRepoHas() {
        corpus();

        HubException e = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub().snapshotForDataset("org/corpus", "main", List.of("train/*.parquet")));

        String m = e.getMessage();
        assertTrue(m.contains("'train/*.parquet'") && m.contains("'README.md', 'data/', 'en/'")
                && m.contains("dataset repo 'org/corpus'"), m);
        assertFalse(Files.exists(datasetDir("org/corpus").resolve("blobs")), "nothing downloaded");
    }

    @Test
    void missingRepoAndRevisionAreNamed() {
        corpus();
        fake.repo("org/a-model").file("config.json", "{}");
        HfHub hub = hub();

        HubException repo = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub.datasetFiles("org/nothing", "main"));
        HubException model = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub.snapshotForDataset("org/a-model", "main"));
        HubException revision = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub.datasetFile("org/corpus", "README.md", "v9.9"));

        assertTrue(repo.getMessage().startsWith("Dataset repo 'org/nothing' was not found")
                && repo.getMessage().contains("RepoNotFound") && repo.getMessage().contains("without the 'datasets/'"),
                repo.getMessage());
        assertTrue(model.getMessage().contains("a model repo is not a dataset repo"), model.getMessage());
        assertTrue(revision.getMessage().contains("'v9.9'") && revision.getMessage().contains("'org/corpus'")
                && revision.getMessage().contains(fake.endpoint() + "/datasets/org/corpus"), revision.getMessage());
    }

    @Test
    void gatedDatasetNeedsTheTokenWhichNeverReachesTheCdn() throws IOException {
        corpus().gated(TOKEN);

        HubException denied = assertHubException(HubException.Reason.ACCESS_DENIED,
                () -> hub().datasetFiles("org/corpus", "main"));
        assertTrue(denied.getMessage().contains("HF_TOKEN") && denied.getMessage().contains("gated dataset")
                && denied.getMessage().contains("the file list of dataset repo 'org/corpus'"), denied.getMessage());

        Path snapshot = hub("HF_TOKEN", TOKEN).snapshotForDataset("org/corpus", "main", List.of("data/test-*"));

        assertArrayEquals(test0, Files.readAllBytes(snapshot.resolve("data/test-00000-of-00001.parquet")));
        List<HfHubFake.Request> ok = fake.requests().subList(1, fake.hits());
        assertTrue(ok.stream().filter(r -> r.server().equals("hub")).allMatch(r -> ("Bearer " + TOKEN)
                .equals(r.authorization())), ok::toString);
        assertTrue(ok.stream().filter(r -> r.server().equals("cdn")).allMatch(r -> r.authorization() == null));
        assertTrue(ok.stream().anyMatch(r -> r.server().equals("cdn")), ok::toString);
    }

    @Test
    void aFileListThatStallsFailsPromptlyAsANetworkError() {
        corpus();
        fake.stallNextListing();
        HfHub hub = HfHub.builder().env(Map.of("HF_HUB_CACHE", cache.toString(), "HF_ENDPOINT", fake.endpoint()))
                .userHome(tmp).readTimeout(java.time.Duration.ofMillis(300)).build();

        long start = System.nanoTime();
        HubException e = assertHubException(HubException.Reason.NETWORK,
                () -> hub.datasetFiles("org/corpus", "main"));
        double seconds = (System.nanoTime() - start) / 1e9;

        assertTrue(seconds < 8, "took " + seconds + " s");
        assertTrue(e.getMessage().contains("file list of dataset repo 'org/corpus'")
                && e.getMessage().contains("no data received for 300 ms"), e.getMessage());
        assertEquals(5, hub.datasetFiles("org/corpus", "main").size(), "the next listing is answered in full");
    }

    @Test
    void offlineUsesTheCachedSnapshotWithoutAnyRequest() throws IOException {
        HfHubFake.Repo repo = corpus();
        Path online = hub().snapshotForDataset("org/corpus", "main", List.of("data/train-*", "README.md"));
        int hits = fake.hits();

        HfHub offline = hub("HF_HUB_OFFLINE", "1");
        Path snapshot = offline.snapshotForDataset("org/corpus", "main", List.of("data/train-*"));
        List<String> cached = offline.datasetFiles("org/corpus", "main");
        Path readme = offline.datasetFile("org/corpus", "README.md", repo.commit());

        assertEquals(online, snapshot);
        assertEquals(List.of("README.md", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"),
                cached);
        assertEquals(README, Files.readString(readme));
        assertEquals(hits, fake.hits(), () -> "offline mode made requests: " + fake.requests());

        HubException notCached = assertHubException(HubException.Reason.NOT_CACHED,
                () -> offline.snapshotForDataset("org/corpus", "main", List.of("data/test-*")));
        assertTrue(notCached.getMessage().contains("'data/test-*'") && notCached.getMessage().contains("HF_HUB_OFFLINE")
                && notCached.getMessage().contains("only cached files"), notCached.getMessage());
        assertEquals(hits, fake.hits());
    }

    @Test
    void offlineWithNothingCachedNamesTheCacheAndTheRepo() {
        corpus();
        HfHub offline = hub("HF_HUB_OFFLINE", "1");

        HubException list = assertHubException(HubException.Reason.NOT_CACHED,
                () -> offline.snapshotForDataset("org/corpus", "main", List.of("data/")));
        HubException file = assertHubException(HubException.Reason.NOT_CACHED,
                () -> offline.datasetFile("org/corpus", "README.md", "main"));
        HubException byCommit = assertHubException(HubException.Reason.NOT_CACHED,
                () -> offline.snapshotForDataset("org/corpus", "0123456789abcdef0123456789abcdef01234567"));

        assertFalse(Files.exists(datasetDir("org/corpus")), "offline lookups create nothing in the cache");
        for (HubException e : List.of(list, file, byCommit)) {
            assertTrue(e.getMessage().contains(cache.toString()) && e.getMessage().contains("dataset repo 'org/corpus'")
                    && e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());
        }
        assertEquals(0, fake.hits());
    }
}
