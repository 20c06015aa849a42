package dev.jlens.io;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfHubTest {

    private static final String CONFIG = "{\"model_type\": \"gpt2\", \"n_layer\": 2}";
    private static final String TOKEN = "hf_TestTokenQ7zX9vLm2Kd4";

    @TempDir
    Path tmp;

    private HfHubFake fake;
    private Path cache;

    @BeforeEach
    void startFake() throws IOException {
        fake = HfHubFake.start();
        cache = tmp.resolve("cache");
    }

    @AfterEach
    void stopFake() {
        fake.close();
    }

    /** Environment pointing at the fake hub and the temp cache; extra entries as key, value pairs. */
    private Map<String, String> env(String... extra) {
        Map<String, String> env = new HashMap<>();
        env.put("HF_HUB_CACHE", cache.toString());
        env.put("HF_ENDPOINT", fake.endpoint());
        for (int i = 0; i < extra.length; i += 2) {
            env.put(extra[i], extra[i + 1]);
        }
        return env;
    }

    private HfHub hub(String... extraEnv) {
        return HfHub.builder().env(env(extraEnv)).userHome(tmp.resolve("home")).build();
    }

    private static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private Path repoDir(String repoId) {
        return cache.resolve("models--" + repoId.replace("/", "--"));
    }

    private static HubException assertHubException(HubException.Reason reason, Runnable call) {
        HubException e = assertThrows(HubException.class, call::run);
        assertEquals(reason, e.reason(), () -> "message: " + e.getMessage());
        return e;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Normal downloads and the cache layout shared with huggingface_hub.

    @Test
    void downloadsGitFileIntoHuggingFaceCacheLayout() throws IOException {
        HfHubFake.Repo repo = fake.repo("org/tiny").file("config.json", CONFIG);
        String etag = HfHubFake.gitBlobSha1(CONFIG.getBytes(StandardCharsets.UTF_8));

        Path path = hub().download("org/tiny", "config.json", "main");

        Path repoDir = repoDir("org/tiny");
        assertEquals(repoDir.resolve("snapshots").resolve(repo.commit()).resolve("config.json"), path);
        assertEquals(CONFIG, Files.readString(path));
        assertTrue(Files.isSymbolicLink(path), "snapshot entry must be a symlink into blobs/");
        assertEquals(Path.of("../../blobs/" + etag), Files.readSymbolicLink(path));
        assertTrue(Files.isRegularFile(repoDir.resolve("blobs").resolve(etag), LinkOption.NOFOLLOW_LINKS));
        // refs/main holds the bare commit hash, no newline, as Python writes and reads it.
        assertEquals(repo.commit(), Files.readString(repoDir.resolve("refs/main")));
        assertEquals(List.of(), listIncomplete(repoDir));
        assertEquals(List.of("HEAD", "GET"), fake.requests().stream().map(HfHubFake.Request::method).toList());
    }

    @Test
    void downloadsLfsFileFromCdnWithoutSendingItTheToken() throws IOException {
        byte[] weights = randomBytes(300_000, 1);
        HfHubFake.Repo repo = fake.repo("org/lfs").file("config.json", CONFIG).lfs("model.safetensors", weights);

        Path path = hub("HF_TOKEN", TOKEN).download("org/lfs", "model.safetensors", "main");

        String sha = HfHubFake.sha256Hex(weights);
        assertArrayEquals(weights, Files.readAllBytes(path));
        assertEquals(Path.of("../../blobs/" + sha), Files.readSymbolicLink(path));
        assertEquals(repoDir("org/lfs").resolve("snapshots").resolve(repo.commit()).resolve("model.safetensors"), path);
        List<HfHubFake.Request> requests = fake.requests();
        assertEquals(2, requests.size(), requests::toString);
        assertEquals("hub", requests.get(0).server());
        assertEquals("HEAD", requests.get(0).method());
        assertEquals("Bearer " + TOKEN, requests.get(0).authorization());
        assertEquals("cdn", requests.get(1).server());
        assertEquals("GET", requests.get(1).method());
        assertEquals(null, requests.get(1).authorization(), "the token must not be sent to the CDN");
        assertEquals(200, requests.get(1).status());
    }

    @Test
    void fileInSubfolderLinksOneLevelFurtherUp() throws IOException {
        byte[] onnx = randomBytes(5_000, 2);
        fake.repo("org/sub").lfs("onnx/model.onnx", onnx);

        Path path = hub().download("org/sub", "onnx/model.onnx", "main");

        assertArrayEquals(onnx, Files.readAllBytes(path));
        assertEquals(Path.of("../../../blobs/" + HfHubFake.sha256Hex(onnx)), Files.readSymbolicLink(path));
        assertEquals("onnx", path.getParent().getFileName().toString());
    }

    @Test
    void secondCallIsServedFromTheCacheWithoutAnyRequest() {
        fake.repo("org/tiny").file("config.json", CONFIG).lfs("model.safetensors", randomBytes(50_000, 3));
        HfHub hub = hub();
        Path config = hub.download("org/tiny", "config.json", "main");
        Path weights = hub.download("org/tiny", "model.safetensors", "main");
        int hitsAfterFirst = fake.hits();
        assertEquals(4, hitsAfterFirst, () -> fake.requests().toString());

        assertEquals(config, hub.download("org/tiny", "config.json", "main"));
        assertEquals(weights, hub().download("org/tiny", "model.safetensors", null));

        assertEquals(hitsAfterFirst, fake.hits(), () -> "cached files must not hit the network: " + fake.requests());
    }

    @Test
    void commitHashRevisionIsUsedDirectly() {
        HfHubFake.Repo repo = fake.repo("org/tiny").file("config.json", CONFIG);
        HfHub hub = hub();

        Path path = hub.download("org/tiny", "config.json", repo.commit());

        assertEquals(repoDir("org/tiny").resolve("snapshots").resolve(repo.commit()).resolve("config.json"), path);
        assertTrue(fake.requests().stream().allMatch(r -> r.path().contains("/resolve/" + repo.commit() + "/")),
                () -> fake.requests().toString());
        assertFalse(Files.exists(repoDir("org/tiny").resolve("refs").resolve(repo.commit())),
                "a commit hash needs no ref");
        int hits = fake.hits();
        assertEquals(path, hub.download("org/tiny", "config.json", repo.commit()));
        assertEquals(hits, fake.hits());
    }

    @Test
    void relativeRedirectOfRenamedRepoIsFollowedOnTheHub() throws IOException {
        fake.repo("new-org/model").file("config.json", CONFIG);
        fake.rename("old-org/model", "new-org/model");

        Path path = hub("HF_TOKEN", TOKEN).download("old-org/model", "config.json", "main");

        assertEquals(CONFIG, Files.readString(path));
        assertTrue(path.startsWith(repoDir("old-org/model")), "cached under the id that was asked for");
        List<HfHubFake.Request> requests = fake.requests();
        assertEquals(307, requests.get(0).status());
        assertTrue(requests.stream().allMatch(r -> ("Bearer " + TOKEN).equals(r.authorization())),
                "a same-host redirect keeps the token: " + requests);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Resume and failures mid-download.

    @Test
    void resumesAnIncompleteBlobWithARangeRequest() throws IOException {
        byte[] weights = randomBytes(3_000_000, 4);
        HfHubFake.Repo repo = fake.repo("org/big").lfs("model.safetensors", weights);
        String sha = HfHubFake.sha256Hex(weights);
        Path blobs = Files.createDirectories(repoDir("org/big").resolve("blobs"));
        Path incomplete = blobs.resolve(sha + ".incomplete");
        Files.write(incomplete, Arrays.copyOf(weights, 1_000_000));
        List<long[]> events = new CopyOnWriteArrayList<>();

        Path path = HfHub.builder().env(env()).userHome(tmp)
                .progressListener((r, f, done, total) -> events.add(new long[] {done, total}))
                .build()
                .download("org/big", "model.safetensors", "main");

        assertEquals(sha, HfHubFake.sha256Hex(Files.readAllBytes(path)));
        assertEquals(repoDir("org/big").resolve("snapshots").resolve(repo.commit()).resolve("model.safetensors"), path);
        HfHubFake.Request get = fake.requests().stream().filter(r -> r.method().equals("GET")).findFirst().orElseThrow();
        assertEquals("bytes=1000000-", get.range());
        assertEquals(206, get.status());
        assertFalse(Files.exists(incomplete), ".incomplete must be renamed to the blob");
        assertEquals(1_000_000, events.get(0)[0], "progress starts at the bytes already on disk");
        assertEquals(3_000_000, events.get(events.size() - 1)[0]);
    }

    @Test
    void droppedConnectionLeavesOnlyTheIncompleteBlobAndTheNextCallResumesIt() throws IOException {
        byte[] weights = randomBytes(2_000_000, 5);
        HfHubFake.Repo repo = fake.repo("org/flaky").file("config.json", CONFIG).lfs("model.safetensors", weights);
        String sha = HfHubFake.sha256Hex(weights);
        fake.failNextGet("model.safetensors", HfHubFake.Fault.DROP_HALF);
        HfHub hub = hub();

        HubException e = assertHubException(HubException.Reason.INTERRUPTED,
                () -> hub.download("org/flaky", "model.safetensors", "main"));

        Path repoDir = repoDir("org/flaky");
        Path pointer = repoDir.resolve("snapshots").resolve(repo.commit()).resolve("model.safetensors");
        Path incomplete = repoDir.resolve("blobs").resolve(sha + ".incomplete");
        assertFalse(Files.exists(pointer, LinkOption.NOFOLLOW_LINKS), "nothing half-written in snapshots/");
        assertFalse(Files.exists(repoDir.resolve("blobs").resolve(sha)), "no finished blob from a partial download");
        long partial = Files.size(incomplete);
        assertTrue(partial > 0 && partial < weights.length, "partial size " + partial);
        assertTrue(e.getMessage().contains(incomplete.toString()) && e.getMessage().contains("resumes"),
                e.getMessage());
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("org/flaky"));

        Path path = hub.download("org/flaky", "model.safetensors", "main");

        assertEquals(pointer, path);
        assertArrayEquals(weights, Files.readAllBytes(path));
        HfHubFake.Request resumed = fake.requests().get(fake.hits() - 1);
        assertEquals("bytes=" + partial + "-", resumed.range());
        assertEquals(206, resumed.status());
        assertFalse(Files.exists(incomplete));
    }

    @Test
    void shortBodyIsReportedAndKeptOnlyAsIncomplete() throws IOException {
        byte[] content = randomBytes(100_000, 6);
        HfHubFake.Repo repo = fake.repo("org/short").file("tokenizer.json", content);
        fake.failNextGet("tokenizer.json", HfHubFake.Fault.SHORT_BODY);
        String etag = HfHubFake.gitBlobSha1(content);

        HubException e = assertHubException(HubException.Reason.INTERRUPTED,
                () -> hub().download("org/short", "tokenizer.json", "main"));

        Path blobs = repoDir("org/short").resolve("blobs");
        assertTrue(e.getMessage().contains("50000 of 100000 bytes"), e.getMessage());
        assertFalse(Files.exists(blobs.resolve(etag)));
        assertEquals(50_000, Files.size(blobs.resolve(etag + ".incomplete")));
        assertFalse(Files.exists(repoDir("org/short").resolve("snapshots").resolve(repo.commit())
                .resolve("tokenizer.json"), LinkOption.NOFOLLOW_LINKS));
        assertArrayEquals(content, Files.readAllBytes(hub().download("org/short", "tokenizer.json", "main")));
    }

    @Test
    void corruptLfsBytesFailTheSha256CheckAndAreDiscarded() throws IOException {
        byte[] weights = randomBytes(200_000, 7);
        HfHubFake.Repo repo = fake.repo("org/corrupt").lfs("model.safetensors", weights);
        fake.failNextGet("model.safetensors", HfHubFake.Fault.CORRUPT);
        String sha = HfHubFake.sha256Hex(weights);

        HubException e = assertHubException(HubException.Reason.INTEGRITY,
                () -> hub().download("org/corrupt", "model.safetensors", "main"));

        assertTrue(e.getMessage().contains("SHA-256") && e.getMessage().contains(sha), e.getMessage());
        Path blobs = repoDir("org/corrupt").resolve("blobs");
        assertFalse(Files.exists(blobs.resolve(sha)));
        assertFalse(Files.exists(blobs.resolve(sha + ".incomplete")), "corrupt data must not be resumed");
        assertFalse(Files.exists(repoDir("org/corrupt").resolve("snapshots").resolve(repo.commit())
                .resolve("model.safetensors"), LinkOption.NOFOLLOW_LINKS));
        assertArrayEquals(weights, Files.readAllBytes(hub().download("org/corrupt", "model.safetensors", "main")));
    }

    @Test
    void serverIgnoringRangeRestartsFromTheStart() throws IOException {
        byte[] weights = randomBytes(400_000, 8);
        fake.repo("org/norange").lfs("model.safetensors", weights);
        String sha = HfHubFake.sha256Hex(weights);
        Path blobs = Files.createDirectories(repoDir("org/norange").resolve("blobs"));
        Files.write(blobs.resolve(sha + ".incomplete"), Arrays.copyOf(weights, 100_000));
        fake.ignoreRange(true);

        Path path = hub().download("org/norange", "model.safetensors", "main");

        assertArrayEquals(weights, Files.readAllBytes(path));
        assertEquals(200, fake.requests().get(fake.hits() - 1).status());
    }

    @Test
    void rangeNotSatisfiableRestartsFromTheStart() throws IOException {
        byte[] weights = randomBytes(300_000, 18);
        fake.repo("org/416").lfs("model.safetensors", weights);
        String sha = HfHubFake.sha256Hex(weights);
        Path blobs = Files.createDirectories(repoDir("org/416").resolve("blobs"));
        Files.write(blobs.resolve(sha + ".incomplete"), Arrays.copyOf(weights, 1_000));
        fake.failNextGet("model.safetensors", HfHubFake.Fault.REFUSE_RANGE);

        Path path = hub().download("org/416", "model.safetensors", "main");

        assertArrayEquals(weights, Files.readAllBytes(path));
        List<Integer> getStatuses = fake.requests().stream().filter(r -> r.method().equals("GET"))
                .map(HfHubFake.Request::status).toList();
        assertEquals(List.of(416, 200), getStatuses);
    }

    @Test
    void bodyThatStallsHalfWayIsResumedWithARangeRequest() throws IOException {
        byte[] weights = randomBytes(2_000_000, 19);
        HfHubFake.Repo repo = fake.repo("org/stall").lfs("model.safetensors", weights);
        fake.failNextGet("model.safetensors", HfHubFake.Fault.STALL_HALF);
        HfHub hub = HfHub.builder().env(env()).userHome(tmp).readTimeout(Duration.ofMillis(400)).build();

        long start = System.nanoTime();
        Path path = hub.download("org/stall", "model.safetensors", "main");
        double seconds = (System.nanoTime() - start) / 1e9;

        assertTrue(seconds < 8, "a stalled body must not hang the download; took " + seconds + " s");
        assertEquals(HfHubFake.sha256Hex(weights), HfHubFake.sha256Hex(Files.readAllBytes(path)));
        assertArrayEquals(weights, Files.readAllBytes(path));
        assertEquals(repoDir("org/stall").resolve("snapshots").resolve(repo.commit()).resolve("model.safetensors"),
                path);
        List<HfHubFake.Request> gets = fake.requests().stream().filter(r -> r.method().equals("GET")).toList();
        assertEquals(2, gets.size(), gets::toString);
        assertEquals(200, gets.get(0).status());
        assertEquals(null, gets.get(0).range());
        // The stalled response had sent half the body; the second request asks for exactly the rest.
        assertEquals("bytes=" + weights.length / 2 + "-", gets.get(1).range());
        assertEquals(206, gets.get(1).status());
        assertEquals(List.of(), listIncomplete(repoDir("org/stall")));
    }

    @Test
    void bodyThatKeepsStallingFailsAfterTheAllowedResumesAndKeepsWhatArrived() throws IOException {
        byte[] content = randomBytes(400_000, 20);
        fake.repo("org/stuck").file("tokenizer.json", content);
        for (int i = 0; i < 3; i++) {
            fake.failNextGet("tokenizer.json", HfHubFake.Fault.STALL_HALF);
        }
        HfHub hub = HfHub.builder().env(env()).userHome(tmp).readTimeout(Duration.ofMillis(250)).stallResumes(2)
                .build();

        HubException e = assertHubException(HubException.Reason.INTERRUPTED,
                () -> hub.download("org/stuck", "tokenizer.json", "main"));

        String m = e.getMessage();
        assertTrue(m.contains("no data for 250 ms, 3 times") && m.contains("readTimeout") && m.contains("tokenizer.json")
                && m.contains("org/stuck"), m);
        List<HfHubFake.Request> gets = fake.requests().stream().filter(r -> r.method().equals("GET")).toList();
        assertEquals(3, gets.size(), gets::toString);
        // Each try got half of what was left: 200000, then 100000, then 50000 bytes.
        assertEquals(Arrays.asList(null, "bytes=200000-", "bytes=300000-"),
                gets.stream().map(HfHubFake.Request::range).toList());
        Path incomplete = repoDir("org/stuck").resolve("blobs").resolve(HfHubFake.gitBlobSha1(content) + ".incomplete");
        assertEquals(350_000, Files.size(incomplete));
        assertTrue(m.contains("350000 of 400000 bytes"), m);
        // The queued stalls are used up: the next call resumes the kept bytes and completes.
        assertArrayEquals(content, Files.readAllBytes(hub.download("org/stuck", "tokenizer.json", "main")));
        assertEquals("bytes=350000-", fake.requests().get(fake.hits() - 1).range());
    }

    @Test
    void readTimeoutComesFromTheEnvironmentToo() throws IOException {
        byte[] content = randomBytes(100_000, 21);
        fake.repo("org/envstall").file("tokenizer.json", content);
        fake.failNextGet("tokenizer.json", HfHubFake.Fault.STALL_HALF);

        long start = System.nanoTime();
        Path path = hub("JLENS_HUB_READ_TIMEOUT", "1").download("org/envstall", "tokenizer.json", "main");
        double seconds = (System.nanoTime() - start) / 1e9;

        assertArrayEquals(content, Files.readAllBytes(path));
        assertTrue(seconds >= 0.9 && seconds < 8, "one stall of about 1 s, took " + seconds + " s");
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> hub("JLENS_HUB_READ_TIMEOUT", "soon"));
        assertTrue(bad.getMessage().contains("JLENS_HUB_READ_TIMEOUT"), bad.getMessage());
    }

    @Test
    void progressReportsGrowingBytesEndingAtTheTotal() {
        fake.repo("org/progress").lfs("model.safetensors", randomBytes(3_500_000, 9));
        List<long[]> events = new ArrayList<>();
        HfHub hub = HfHub.builder().env(env()).userHome(tmp)
                .progressListener((repo, file, done, total) -> {
                    assertEquals("org/progress", repo);
                    assertEquals("model.safetensors", file);
                    events.add(new long[] {done, total});
                })
                .build();

        hub.download("org/progress", "model.safetensors", "main");

        assertTrue(events.size() >= 4, "about one event per MiB, got " + events.size());
        for (int i = 1; i < events.size(); i++) {
            assertTrue(events.get(i)[0] >= events.get(i - 1)[0], "bytes done must not go backwards");
        }
        assertTrue(events.stream().allMatch(ev -> ev[1] == 3_500_000));
        assertEquals(0, events.get(0)[0]);
        assertEquals(3_500_000, events.get(events.size() - 1)[0]);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Access, not-found, offline and network errors.

    @Test
    void gatedRepoWithoutTokenTellsToSetHfTokenAndAcceptTheLicence() {
        fake.repo("meta/gated").file("config.json", CONFIG).gated(TOKEN);

        HubException e = assertHubException(HubException.Reason.ACCESS_DENIED,
                () -> hub().download("meta/gated", "config.json", "main"));

        String m = e.getMessage();
        assertTrue(m.contains("HF_TOKEN") && m.contains("licence") && m.contains("meta/gated") && m.contains("401"), m);
        assertTrue(m.contains(fake.endpoint() + "/meta/gated"), "names the model page: " + m);
        assertFalse(Files.exists(repoDir("meta/gated").resolve("snapshots")));
    }

    @Test
    void gatedRepoWithAWrongTokenSaysTheTokenLacksAccess() {
        fake.repo("meta/gated").file("config.json", CONFIG).gated(TOKEN);

        HubException e = assertHubException(HubException.Reason.ACCESS_DENIED,
                () -> hub("HF_TOKEN", "hf_SomeOtherToken").download("meta/gated", "config.json", "main"));

        assertTrue(e.getMessage().contains("403") && e.getMessage().contains("token was sent"), e.getMessage());
    }

    @Test
    void gatedRepoWorksWithTheTokenFromTheEnvironment() throws IOException {
        fake.repo("meta/gated").file("config.json", CONFIG).lfs("model.safetensors", randomBytes(10_000, 10))
                .gated(TOKEN);

        HfHub hub = hub("HF_TOKEN", TOKEN);

        assertEquals(CONFIG, Files.readString(hub.download("meta/gated", "config.json", "main")));
        assertEquals(10_000, Files.size(hub.download("meta/gated", "model.safetensors", "main")));
        assertTrue(fake.requests().stream().filter(r -> r.server().equals("hub"))
                .allMatch(r -> ("Bearer " + TOKEN).equals(r.authorization())));
    }

    @Test
    void tokenIsReadFromTheTokenFileUnderHfHome() throws IOException {
        fake.repo("meta/gated").file("config.json", CONFIG).gated(TOKEN);
        Path hfHome = Files.createDirectories(tmp.resolve("hf-home"));
        Files.writeString(hfHome.resolve("token"), TOKEN + "\n");
        HfHub hub = HfHub.builder().env(Map.of("HF_HOME", hfHome.toString(), "HF_ENDPOINT", fake.endpoint()))
                .userHome(tmp).build();

        assertTrue(hub.hasToken());
        assertEquals(hfHome.resolve("hub"), hub.cacheDir());
        assertEquals(CONFIG, Files.readString(hub.download("meta/gated", "config.json", "main")));
    }

    @Test
    void tokenNeverAppearsInMessagesLogsOrToString() throws IOException {
        fake.repo("meta/gated").file("config.json", CONFIG).gated("hf_TheRightToken");
        fake.repo("org/flaky").lfs("model.safetensors", randomBytes(500_000, 11));
        fake.failNextGet("model.safetensors", HfHubFake.Fault.DROP_HALF);
        fake.echoAuthorizationInErrors(true);
        List<String> logged = new CopyOnWriteArrayList<>();
        Handler capture = new Handler() {
            private final SimpleFormatter formatter = new SimpleFormatter();

            @Override
            public void publish(LogRecord record) {
                logged.add(formatter.format(record));
            }

            @Override
            public void flush() { }

            @Override
            public void close() { }
        };
        Logger root = Logger.getLogger("");
        Logger hubLogger = Logger.getLogger(HfHub.class.getName());
        Level oldLevel = hubLogger.getLevel();
        hubLogger.setLevel(Level.ALL);
        root.addHandler(capture);
        PrintStream oldErr = System.err;
        PrintStream oldOut = System.out;
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        List<Throwable> failures = new ArrayList<>();
        HfHub hub = hub("HF_TOKEN", TOKEN);
        try (PrintStream tee = new PrintStream(console, true, StandardCharsets.UTF_8)) {
            System.setErr(tee);
            System.setOut(tee);
            failures.add(assertThrows(HubException.class, () -> hub.download("meta/gated", "config.json", "main")));
            failures.add(assertThrows(HubException.class, () -> hub.download("org/flaky", "nope.json", "main")));
            failures.add(assertThrows(HubException.class, () -> hub.download("org/flaky", "model.safetensors", "main")));
            failures.add(assertThrows(HubException.class, () -> hub.download("org/missing", "config.json", "main")));
            HfHub unreachable = HfHub.builder().env(env("HF_TOKEN", TOKEN, "HF_ENDPOINT", closedPortEndpoint()))
                    .userHome(tmp).build();
            failures.add(assertThrows(HubException.class,
                    () -> unreachable.download("org/flaky", "config.json", "main")));
            failures.add(assertThrows(IllegalArgumentException.class,
                    () -> HfHub.builder().env(Map.of("HF_TOKEN", TOKEN + " " + TOKEN)).userHome(tmp).build()));
            hub.download("org/flaky", "model.safetensors", "main"); // resumes, logs at INFO
        } finally {
            System.setErr(oldErr);
            System.setOut(oldOut);
            root.removeHandler(capture);
            hubLogger.setLevel(oldLevel);
        }

        List<String> texts = new ArrayList<>();
        for (Throwable f : failures) {
            for (Throwable t = f; t != null; t = t.getCause()) {
                texts.add(String.valueOf(t.getMessage()));
                texts.add(t.toString());
            }
        }
        assertTrue(failures.get(0).getMessage().contains("<redacted>"),
                "a server message quoting the token must be masked: " + failures.get(0).getMessage());
        texts.addAll(logged);
        texts.add(console.toString(StandardCharsets.UTF_8));
        texts.add(hub.toString());
        assertTrue(hub.toString().contains("token=set"), hub.toString());
        assertTrue(logged.stream().anyMatch(l -> l.contains("model.safetensors")), "logging was captured: " + logged);
        for (String text : texts) {
            assertFalse(text.contains(TOKEN) || text.contains("TestTokenQ7zX9"), "token leaked in: " + text);
        }
    }

    @Test
    void missingFileRepoAndRevisionAreNamed() {
        fake.repo("org/tiny").file("config.json", CONFIG);
        HfHub hub = hub();

        HubException file = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub.download("org/tiny", "model.safetensors", "main"));
        HubException repo = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub.download("org/nothing", "config.json", "main"));
        HubException revision = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub.download("org/tiny", "config.json", "v9.9"));

        for (HubException e : List.of(file, repo, revision)) {
            assertTrue(e.getMessage().contains("404"), e.getMessage());
        }
        assertTrue(file.getMessage().contains("'model.safetensors'") && file.getMessage().contains("'org/tiny'")
                && file.getMessage().contains("'main'"), file.getMessage());
        assertTrue(repo.getMessage().contains("'org/nothing'") && repo.getMessage().contains("'config.json'")
                && repo.getMessage().contains("'main'") && repo.getMessage().contains("RepoNotFound"), repo.getMessage());
        assertTrue(revision.getMessage().contains("'v9.9'") && revision.getMessage().contains("'org/tiny'")
                && revision.getMessage().contains("'config.json'"), revision.getMessage());
    }

    @Test
    void offlineWithNothingCachedNamesTheCacheDirAndRepoWithoutAnyRequest() {
        fake.repo("org/tiny").file("config.json", CONFIG);
        HfHub hub = hub("HF_HUB_OFFLINE", "1");
        assertTrue(hub.isOffline());

        HubException file = assertHubException(HubException.Reason.NOT_CACHED,
                () -> hub.download("org/tiny", "config.json", "main"));
        HubException model = assertHubException(HubException.Reason.NOT_CACHED,
                () -> hub.snapshotForModel("org/tiny", "main"));

        for (HubException e : List.of(file, model)) {
            assertTrue(e.getMessage().contains(cache.toString()) && e.getMessage().contains("org/tiny")
                    && e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());
        }
        assertEquals(0, fake.hits());
    }

    @Test
    void offlineUsesTheCacheWithoutAnyRequest() throws IOException {
        fake.repo("org/tiny").file("config.json", CONFIG).lfs("model.safetensors", randomBytes(20_000, 12))
                .file("tokenizer.json", "{}");
        Path online = hub().snapshotForModel("org/tiny", "main");
        int hits = fake.hits();

        HfHub offline = hub("HF_HUB_OFFLINE", "true");
        Path snapshot = offline.snapshotForModel("org/tiny", "main");
        Path config = offline.download("org/tiny", "config.json", "main");

        assertEquals(online, snapshot);
        assertEquals(CONFIG, Files.readString(config));
        assertTrue(Files.exists(snapshot.resolve("model.safetensors")));
        assertEquals(hits, fake.hits(), () -> "offline mode made requests: " + fake.requests());
    }

    @Test
    void unreachableHubIsANetworkErrorThatMentionsOfflineMode() throws IOException {
        HfHub hub = HfHub.builder().env(env("HF_ENDPOINT", closedPortEndpoint())).userHome(tmp).build();

        HubException e = assertHubException(HubException.Reason.NETWORK,
                () -> hub.download("org/tiny", "config.json", "main"));

        assertTrue(e.getMessage().contains("HF_HUB_OFFLINE") && e.getMessage().contains("org/tiny"), e.getMessage());
    }

    // ---------------------------------------------------------------------------------------------------------
    // snapshotForModel.

    @Test
    void snapshotForModelFetchesEveryShardNamedInTheIndex() throws IOException {
        byte[] shard1 = randomBytes(120_000, 13);
        byte[] shard2 = randomBytes(90_000, 14);
        byte[] shard3 = randomBytes(30_000, 15);
        String index = "{\"metadata\": {\"total_size\": 240000}, \"weight_map\": {"
                + "\"model.embed_tokens.weight\": \"model-00001-of-00003.safetensors\","
                + "\"model.layers.0.mlp.up_proj.weight\": \"model-00002-of-00003.safetensors\","
                + "\"model.layers.0.self_attn.q_proj.weight\": \"model-00001-of-00003.safetensors\","
                + "\"lm_head.weight\": \"model-00003-of-00003.safetensors\"}}";
        HfHubFake.Repo repo = fake.repo("Qwen/Tiny-Sharded")
                .file("config.json", CONFIG)
                .file("model.safetensors.index.json", index)
                .lfs("model-00001-of-00003.safetensors", shard1)
                .lfs("model-00002-of-00003.safetensors", shard2)
                .lfs("model-00003-of-00003.safetensors", shard3)
                .file("tokenizer.json", "{\"model\": {}}")
                .file("tokenizer_config.json", "{}");
        HfHub hub = hub();

        Path snapshot = hub.snapshotForModel("Qwen/Tiny-Sharded", "main");

        assertEquals(repoDir("Qwen/Tiny-Sharded").resolve("snapshots").resolve(repo.commit()), snapshot);
        assertArrayEquals(shard1, Files.readAllBytes(snapshot.resolve("model-00001-of-00003.safetensors")));
        assertArrayEquals(shard2, Files.readAllBytes(snapshot.resolve("model-00002-of-00003.safetensors")));
        assertArrayEquals(shard3, Files.readAllBytes(snapshot.resolve("model-00003-of-00003.safetensors")));
        assertEquals(index, Files.readString(snapshot.resolve("model.safetensors.index.json")));
        assertTrue(Files.exists(snapshot.resolve("tokenizer.json")) && Files.exists(snapshot.resolve("tokenizer_config.json")));
        assertFalse(Files.exists(snapshot.resolve("generation_config.json"), LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(snapshot.resolve("model.safetensors"), LinkOption.NOFOLLOW_LINKS));
        long shardGets = fake.requests().stream()
                .filter(r -> r.server().equals("cdn") && r.method().equals("GET")).count();
        assertEquals(3, shardGets, "each shard downloaded exactly once");
        // The Hub's "no such file" answers are remembered like huggingface_hub does.
        Path noExist = repoDir("Qwen/Tiny-Sharded").resolve(".no_exist").resolve(repo.commit());
        assertTrue(Files.exists(noExist.resolve("model.safetensors")));
        assertTrue(Files.exists(noExist.resolve("generation_config.json")));

        int hits = fake.hits();
        assertEquals(snapshot, hub.snapshotForModel("Qwen/Tiny-Sharded", "main"));
        assertEquals(hits, fake.hits(), () -> "cached model made requests: " + fake.requests());
    }

    @Test
    void snapshotForModelWithSingleSafetensorsFileSkipsTheIndex() throws IOException {
        byte[] weights = randomBytes(64_000, 16);
        HfHubFake.Repo repo = fake.repo("gpt2").file("config.json", CONFIG).lfs("model.safetensors", weights)
                .file("generation_config.json", "{}");

        Path snapshot = hub().snapshotForModel("gpt2", null);

        assertEquals(repoDir("gpt2").resolve("snapshots").resolve(repo.commit()), snapshot);
        assertArrayEquals(weights, Files.readAllBytes(snapshot.resolve("model.safetensors")));
        assertTrue(Files.exists(snapshot.resolve("generation_config.json")));
        assertTrue(fake.requests().stream().noneMatch(r -> r.path().endsWith("model.safetensors.index.json")));
    }

    @Test
    void snapshotForModelWithoutSafetensorsSaysWhatIsMissing() {
        fake.repo("org/binonly").file("config.json", CONFIG).lfs("pytorch_model.bin", randomBytes(1000, 17));

        HubException e = assertHubException(HubException.Reason.NOT_FOUND,
                () -> hub().snapshotForModel("org/binonly", "main"));

        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("org/binonly"),
                e.getMessage());
    }

    @Test
    void localDirectoryIsUsedAsIs() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("my-model"));
        Files.writeString(dir.resolve("config.json"), CONFIG);

        assertTrue(HfHub.isLocalDir(dir.toString()));
        assertFalse(HfHub.isLocalDir("gpt2"));
        assertFalse(HfHub.isLocalDir(dir.resolve("config.json").toString()));
        assertFalse(HfHub.isLocalDir(""));
        assertEquals(dir, hub().snapshotForModel(dir.toString(), "main"));
        assertEquals(0, fake.hits());
    }

    // ---------------------------------------------------------------------------------------------------------
    // Configuration.

    @Test
    void cacheDirFollowsHuggingFaceHubPrecedence() {
        Path home = tmp.resolve("home");
        assertEquals(tmp.resolve("a"), HfHub.builder().userHome(home)
                .env(Map.of("HF_HUB_CACHE", tmp.resolve("a").toString(), "HF_HOME", tmp.resolve("b").toString()))
                .build().cacheDir());
        assertEquals(tmp.resolve("legacy"), HfHub.builder().userHome(home)
                .env(Map.of("HUGGINGFACE_HUB_CACHE", tmp.resolve("legacy").toString())).build().cacheDir());
        assertEquals(tmp.resolve("b/hub"), HfHub.builder().userHome(home)
                .env(Map.of("HF_HOME", tmp.resolve("b").toString())).build().cacheDir());
        assertEquals(tmp.resolve("xdg/huggingface/hub"), HfHub.builder().userHome(home)
                .env(Map.of("XDG_CACHE_HOME", tmp.resolve("xdg").toString())).build().cacheDir());
        assertEquals(home.resolve(".cache/huggingface/hub"),
                HfHub.builder().userHome(home).env(Map.of()).build().cacheDir());
        assertEquals(home.resolve("hf/hub"),
                HfHub.builder().userHome(home).env(Map.of("HF_HOME", "~/hf")).build().cacheDir());
        assertEquals(tmp.resolve("explicit"), HfHub.builder().userHome(home)
                .env(Map.of("HF_HUB_CACHE", tmp.resolve("a").toString())).cacheDir(tmp.resolve("explicit"))
                .build().cacheDir());
    }

    @Test
    void endpointOfflineAndTokenComeFromTheEnvironment() {
        HfHub defaults = HfHub.builder().userHome(tmp).env(Map.of()).build();
        assertEquals(HfHub.DEFAULT_ENDPOINT, defaults.endpoint());
        assertFalse(defaults.isOffline());
        assertFalse(defaults.hasToken());
        assertTrue(defaults.toString().contains("token=not set"), defaults.toString());

        assertEquals("http://mirror.example:8080", HfHub.builder().userHome(tmp)
                .env(Map.of("HF_ENDPOINT", "http://mirror.example:8080/")).build().endpoint());
        for (String on : List.of("1", "true", "YES", "On")) {
            assertTrue(HfHub.builder().userHome(tmp).env(Map.of("HF_HUB_OFFLINE", on)).build().isOffline(), on);
        }
        for (String off : List.of("0", "false", "", "no")) {
            assertFalse(HfHub.builder().userHome(tmp).env(Map.of("HF_HUB_OFFLINE", off)).build().isOffline(), off);
        }
        assertTrue(HfHub.builder().userHome(tmp).env(Map.of("TRANSFORMERS_OFFLINE", "1")).build().isOffline());
        assertFalse(HfHub.builder().userHome(tmp).env(Map.of("HF_HUB_OFFLINE", "1")).offline(false).build()
                .isOffline());
        assertTrue(HfHub.builder().userHome(tmp).env(Map.of("HF_TOKEN", TOKEN)).build().hasToken());
        assertTrue(HfHub.builder().userHome(tmp).env(Map.of("HUGGING_FACE_HUB_TOKEN", TOKEN)).build().hasToken());
        assertThrows(IllegalArgumentException.class,
                () -> HfHub.builder().userHome(tmp).env(Map.of("HF_ENDPOINT", "ftp://x")).build());
    }

    @Test
    void invalidArgumentsNameTheExpectedForm() {
        HfHub hub = hub();
        IllegalArgumentException repo = assertThrows(IllegalArgumentException.class,
                () -> hub.download("a/b/c", "config.json", "main"));
        assertTrue(repo.getMessage().contains("'org/name'"), repo.getMessage());
        assertThrows(IllegalArgumentException.class, () -> hub.download("org/x", "../../etc/passwd", "main"));
        assertThrows(IllegalArgumentException.class, () -> hub.download("org/x", "/abs", "main"));
        assertThrows(IllegalArgumentException.class, () -> hub.download("org--x", "config.json", "main"));
        assertThrows(IllegalArgumentException.class, () -> hub.download("org/x", "config.json", "../main"));
        IllegalArgumentException model = assertThrows(IllegalArgumentException.class,
                () -> hub.snapshotForModel("no/such/dir", "main"));
        assertTrue(model.getMessage().contains("neither an existing local directory"), model.getMessage());
        assertEquals(0, fake.hits());
    }

    // ---------------------------------------------------------------------------------------------------------

    private static List<Path> listIncomplete(Path repoDir) throws IOException {
        try (Stream<Path> files = Files.walk(repoDir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".incomplete")).collect(Collectors.toList());
        }
    }

    /** An endpoint on a loopback port nobody listens on. */
    private static String closedPortEndpoint() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        return "http://127.0.0.1:" + port;
    }
}
