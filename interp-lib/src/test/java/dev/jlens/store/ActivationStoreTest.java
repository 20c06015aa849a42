package dev.jlens.store;

import dev.jlens.model.ActivationCache;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import dev.jlens.data.TinyLang;
import dev.jlens.hook.NameFilter;
import dev.jlens.io.CheckpointException;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.notebook.Display;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ActivationStoreTest {
    private static final int VOCAB = 20, D = 32, LEN = 12;
    private static final ModelConfig GPT2 = ModelConfig.gpt2(D, 2, 2, 64, VOCAB, 32);
    private static final String RESID1 = "blocks.1.hook_resid_post";
    private static final String MLP0 = "blocks.0.hook_mlp_out";

    private static HookedTransformer base, other;
    private static NDManager root;

    @BeforeAll
    static void models() {
        base = HookedTransformer.random(GPT2, 1);
        other = HookedTransformer.random(GPT2, 2);
        root = NDManager.newBaseManager();
    }

    @AfterAll
    static void free() {
        base.close();
        other.close();
        root.close();
    }

    /** Endless batches of 4 random sequences, the last two right-padded at different lengths. */
    private static TokenBatches padded(long seed) {
        return index -> {
            SplittableRandom r = new SplittableRandom(seed * 1_000_003 + index);
            long[][] ids = new long[4][LEN];
            boolean[][] mask = new boolean[4][LEN];
            for (int b = 0; b < 4; b++) {
                int len = b < 2 ? LEN : LEN - 3 * (b - 1);
                ids[b][0] = 1; // BOS
                for (int p = 1; p < LEN; p++) ids[b][p] = p < len ? 3 + r.nextInt(VOCAB - 3) : 0;
                for (int p = 0; p < len; p++) mask[b][p] = true;
            }
            return Batch.of(ids, mask);
        };
    }

    /** The first {@code n} batches of a source, then nothing. */
    private static TokenBatches first(TokenBatches src, long n) {
        return index -> index < n ? src.get(index) : null;
    }

    private static ActivationStore.Builder store(TokenBatches tokens) {
        return ActivationStore.builder().source(base, RESID1).tokens(tokens).bufferRows(64).normSamples(100);
    }

    /** The activation of {@code hook} at every kept position of {@code batch}, in row-major order, from runWithCache. */
    private static List<float[]> reference(HookedTransformer model, String hook, Batch batch, boolean excludeBos) {
        List<float[]> rows = new ArrayList<>();
        try (ActivationCache c = model.runWithCache(batch, NameFilter.of(hook))) {
            NDArray act = c.get(hook);
            for (int b = 0; b < batch.size(); b++) {
                boolean first = true;
                for (int p = 0; p < batch.length(); p++) {
                    if (!batch.mask()[b][p]) continue;
                    if (first && excludeBos) {
                        first = false;
                        continue;
                    }
                    first = false;
                    try (NDArray v = act.get(new NDIndex("{}, {}", b, p))) {
                        rows.add(v.toFloatArray());
                    }
                }
            }
        }
        return rows;
    }

    private static float[] row(float[] rows, int width, int i) {
        return Arrays.copyOfRange(rows, i * width, (i + 1) * width);
    }

    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], tol, what + " [" + i + "]");
        }
    }

    // ------------------------------------------------------------------ what the rows are

    /** Records what a notebook would show: the bundles of each display, in order. */
    private static final class BarRecorder implements Display.Sink {
        final Map<String, List<Map<String, String>>> displays = new LinkedHashMap<>();

        @Override
        public synchronized String show(Map<String, String> bundle) {
            String id = "display-" + displays.size();
            displays.computeIfAbsent(id, k -> new ArrayList<>()).add(bundle);
            return id;
        }

        @Override
        public synchronized void update(String displayId, Map<String, String> bundle) {
            assertTrue(displays.containsKey(displayId), displayId);
            displays.get(displayId).add(bundle);
        }

        /** The last bundle of the only display so far. */
        synchronized Map<String, String> lastOfOnlyDisplay() {
            assertEquals(1, displays.size(), displays.keySet()::toString);
            List<Map<String, String>> renders = displays.values().iterator().next();
            return renders.get(renders.size() - 1);
        }
    }

    @Test
    void cacheBuildBarEndsInItsTrueFinalState(@TempDir Path dir) {
        BarRecorder full = new BarRecorder();
        BarRecorder cut = new BarRecorder();
        try {
            Display.installSink(full);
            try (StreamingStore s = store(padded(21)).rowsPerShard(300).build();
                 ActivationStore cached = s.cache(dir.resolve("full"), 700)) {
                assertEquals(700, cached.rows().getAsLong());
            }
            // The token source ends inside the first shard, far below the rows asked for (as with a short corpus).
            Display.installSink(cut);
            try (StreamingStore s = store(first(padded(22), 2)).build();
                 ActivationStore cached = s.cache(dir.resolve("cut"), 20_000)) {
                assertEquals(70, cached.rows().getAsLong());
            }
        } finally {
            Display.installSink(null);
        }
        String fullText = full.lastOfOnlyDisplay().get(Display.TEXT);
        assertTrue(fullText.startsWith("cache full |") && fullText.contains("700/700 100%")
                && fullText.endsWith(" 3 shards"), fullText);
        assertTrue(full.lastOfOnlyDisplay().get(Display.HTML).contains("<progress value=\"700\" max=\"700\""),
                full.lastOfOnlyDisplay().get(Display.HTML));
        String cutText = cut.lastOfOnlyDisplay().get(Display.TEXT);
        assertTrue(cutText.contains("70/70 100%")
                && cutText.endsWith(" 1 shard, the token source ended at 70 of the 20000 rows asked for"), cutText);
        assertTrue(cut.lastOfOnlyDisplay().get(Display.HTML).contains("<progress value=\"70\" max=\"70\""),
                cut.lastOfOnlyDisplay().get(Display.HTML));
    }

    @Test
    void rowsAreTheModelsActivationsAtKeptPositions() {
        TokenBatches tokens = padded(7);
        List<float[]> expected = new ArrayList<>();
        for (int i = 0; i < 2; i++) expected.addAll(reference(base, RESID1, tokens.get(i), true));
        // 4 sequences of lengths 12, 12, 9, 6 per batch, minus one BOS each: 35 rows per batch
        assertEquals(70, expected.size());
        try (StreamingStore s = store(first(tokens, 2)).build()) {
            assertEquals(D, s.width());
            assertEquals(1, s.nSources());
            assertEquals(RESID1, s.hookName());
            float[] raw = s.rawRows(1000);
            assertEquals(70 * D, raw.length, "rows: no padding, no BOS");
            for (int i = 0; i < 70; i++) assertClose(expected.get(i), row(raw, D, i), 1e-5, "row " + i);
        }
        try (StreamingStore s = store(first(tokens, 2)).excludeBos(false).build()) {
            float[] raw = s.rawRows(1000);
            assertEquals(2 * (12 + 12 + 9 + 6) * D, raw.length, "with BOS kept only padding is dropped");
            List<float[]> withBos = reference(base, RESID1, tokens.get(0), false);
            assertClose(withBos.get(0), row(raw, D, 0), 1e-5, "BOS row");
            assertClose(withBos.get(13), row(raw, D, 13), 1e-5, "row 13 (second sequence's BOS)");
        }
    }

    @Test
    void leftPaddedTextsDropTheirPaddingToo() {
        // Left padding: the BOS to drop is the first unmasked position, not position 0.
        long[][] ids = {{0, 0, 1, 5, 6}, {1, 7, 8, 9, 10}};
        boolean[][] mask = {{false, false, true, true, true}, {true, true, true, true, true}};
        Batch batch = Batch.of(ids, mask);
        List<float[]> expected = reference(base, MLP0, batch, true);
        assertEquals(2 + 4, expected.size());
        try (StreamingStore s = ActivationStore.builder().source(base, MLP0)
                .tokens(i -> i == 0 ? batch : null).normSamples(10).build()) {
            float[] raw = s.rawRows(100);
            assertEquals(6 * D, raw.length);
            for (int i = 0; i < 6; i++) assertClose(expected.get(i), row(raw, D, i), 1e-5, "row " + i);
        }
    }

    @Test
    void twoModelsConcatenateSourceMajorAndViewsSliceThem() {
        TokenBatches tokens = first(padded(3), 1);
        List<float[]> a = reference(base, RESID1, tokens.get(0), true);
        List<float[]> b = reference(other, RESID1, tokens.get(0), true);
        try (StreamingStore s = ActivationStore.builder().source("base", base, RESID1).source("ft", other, RESID1)
                .tokens(tokens).bufferRows(16).normSamples(35).build()) {
            assertEquals(2, s.nSources());
            assertEquals(2 * D, s.width());
            assertEquals(RESID1, s.hookName());
            assertEquals(List.of("base", "ft"), s.labels());
            String text = s.toString();
            assertTrue(text.contains("2 sources [base:" + RESID1 + ", ft:" + RESID1 + "]") && text.contains("width 64")
                    && text.contains("scale not estimated yet"), text);
            System.out.println("ActivationStoreTest: " + text);
            float[] raw = s.rawRows(100);
            assertEquals(35 * 2 * D, raw.length);
            for (int i = 0; i < 35; i++) {
                float[] r = row(raw, 2 * D, i);
                assertClose(a.get(i), Arrays.copyOfRange(r, 0, D), 1e-5, "base half of row " + i);
                assertClose(b.get(i), Arrays.copyOfRange(r, D, 2 * D), 1e-5, "finetuned half of row " + i);
            }
            try (NDManager m = root.newSubManager()) {
                float[] full = s.batch(3, 8, m).toFloatArray();
                ActivationSource v1 = s.view(1);
                assertEquals(D, v1.width());
                float[] ft = v1.batch(3, 8, m).toFloatArray();
                for (int r = 0; r < 8; r++) {
                    assertArrayEquals(Arrays.copyOfRange(full, r * 2 * D + D, (r + 1) * 2 * D),
                            Arrays.copyOfRange(ft, r * D, (r + 1) * D), "view 1 of row " + r);
                }
            }
            // Each source's scale normalises its own half; the joint one the whole row.
            double ja = 1 / (s.sourceScale(0) * s.sourceScale(0)), jb = 1 / (s.sourceScale(1) * s.sourceScale(1));
            assertEquals(1 / Math.sqrt(ja + jb), s.normalizationScale(), 1e-9);
            assertNotEquals(s.sourceScale(0), s.sourceScale(1), "two different models have different norms");
            System.out.println("ActivationStoreTest: " + s);
        }
    }

    @Test
    void severalHooksOfOneModelComeFromOnePassThatStopsAfterTheDeepest() {
        TokenBatches tokens = first(padded(5), 1);
        List<float[]> mlp = reference(base, MLP0, tokens.get(0), true);
        List<float[]> resid = reference(base, RESID1, tokens.get(0), true);
        String last = base.hookNames().get(base.hookNames().size() - 1);
        AtomicInteger laterCalls = new AtomicInteger();
        try (StreamingStore s = ActivationStore.builder().hooks(base, MLP0, RESID1).tokens(tokens).normSamples(35)
                .build();
             var counter = base.hook(last, (act, hp) -> {
                 laterCalls.incrementAndGet();
                 return null;
             })) {
            assertEquals(MLP0 + "," + RESID1, s.hookName());
            float[] raw = s.rawRows(100);
            assertEquals(35 * 2 * D, raw.length);
            for (int i = 0; i < 35; i++) {
                float[] r = row(raw, 2 * D, i);
                assertClose(mlp.get(i), Arrays.copyOfRange(r, 0, D), 1e-5, "mlp_out of row " + i);
                assertClose(resid.get(i), Arrays.copyOfRange(r, D, 2 * D), 1e-5, "resid_post of row " + i);
            }
            assertEquals(0, laterCalls.get(), "the forward pass went on past " + RESID1 + " to " + last);
        }
    }

    @Test
    void badSourcesFailNamingTheProblem() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> ActivationStore.builder().source(base, "blocks.1.hook_resid_pots"));
        assertTrue(unknown.getMessage().contains("blocks.1.hook_resid_post"), unknown.getMessage());
        IllegalArgumentException pattern = assertThrows(IllegalArgumentException.class,
                () -> ActivationStore.builder().source(base, "blocks.0.attn.hook_pattern").tokens(padded(1)).build());
        assertTrue(pattern.getMessage().contains("one vector per token"), pattern.getMessage());
        assertThrows(IllegalStateException.class, () -> ActivationStore.builder().tokens(padded(1)).build());
        assertThrows(IllegalStateException.class, () -> ActivationStore.builder().source(base, RESID1).build());
    }

    // ------------------------------------------------------------------ streaming

    @Test
    void streamingBatchesAreAPureFunctionOfSeedAndStep() {
        TokenBatches tokens = padded(11);
        List<float[]> run = new ArrayList<>();
        try (ActivationStore s = store(tokens).seed(4).build(); NDManager m = root.newSubManager()) {
            for (int step = 0; step < 8; step++) run.add(s.batch(step, 16, m).toFloatArray());
            assertArrayEquals(run.get(7), s.batch(7, 16, m).toFloatArray(), "asking again");
            assertArrayEquals(run.get(2), s.batch(2, 16, m).toFloatArray(), "rewinding replays the stream");
            assertArrayEquals(run.get(3), s.batch(3, 16, m).toFloatArray(), "and goes on from there");
        }
        try (ActivationStore s = store(tokens).seed(4).build(); NDManager m = root.newSubManager()) {
            assertArrayEquals(run.get(5), s.batch(5, 16, m).toFloatArray(), "a fresh store jumping to step 5");
            assertArrayEquals(run.get(6), s.batch(6, 16, m).toFloatArray());
        }
        try (ActivationStore s = store(tokens).seed(5).build(); NDManager m = root.newSubManager()) {
            assertFalse(Arrays.equals(run.get(0), s.batch(0, 16, m).toFloatArray()), "another seed, another order");
        }
    }

    @Test
    void shuffleBufferServesStreamRowsMixedAcrossContexts() {
        // 3 batches of 35 rows; the buffer holds 64 rows and tops up when half empty.
        TokenBatches tokens = first(padded(13), 3);
        try (StreamingStore s = store(tokens).build(); NDManager m = root.newSubManager()) {
            float[] raw = s.rawRows(1000);
            assertEquals(105 * D, raw.length);
            List<String> rawRows = new ArrayList<>();
            for (int i = 0; i < 105; i++) rawRows.add(Arrays.toString(row(raw, D, i)));
            List<String> served = new ArrayList<>();
            for (int step = 0; step < 30; step++) {
                float[] b = s.batch(step, 4, m).toFloatArray();
                for (int r = 0; r < 4; r++) served.add(Arrays.toString(row(b, D, r)));
            }
            // The first 32 rows are drawn from the first fill (raw rows 0..63), each at most as often as it is there.
            List<String> firstFill = new ArrayList<>(rawRows.subList(0, 64));
            for (String r : served.subList(0, 32)) assertTrue(firstFill.remove(r), "a row served twice from one fill");
            Set<String> secondBatchOnly = new HashSet<>(rawRows.subList(35, 64));
            rawRows.subList(0, 35).forEach(secondBatchOnly::remove);
            long fromSecond = served.subList(0, 32).stream().filter(secondBatchOnly::contains).count();
            assertTrue(fromSecond >= 5, "only " + fromSecond + " of the first 32 rows come from the second context batch");
            assertNotEquals(rawRows.subList(0, 10), served.subList(0, 10), "rows are shuffled");
            // Past the end of the (finite) source the stream starts over: every served row is a stream row.
            Set<String> all = new HashSet<>(rawRows);
            for (int i = 0; i < served.size(); i++) assertTrue(all.contains(served.get(i)), "served row " + i);
        }
    }

    @Test
    void normalisationGivesUnitMeanSquaredNormOnHeldOutBatches() {
        try (HookedTransformer tiny = Zoo.load("tinylang-4l");
             ActivationStore s = ActivationStore.builder().source(tiny, "blocks.2.hook_resid_post")
                     .tokens(TinyLang.defaults(), 16).bufferRows(4096).normSamples(2048).build();
             NDManager m = root.newSubManager()) {
            double scale = s.normalizationScale();
            assertTrue(scale > 0 && Double.isFinite(scale), "scale " + scale);
            // Steps 20..24 of 256 rows lie past the 2048 rows the scale was estimated from.
            double sum = 0;
            int n = 0;
            for (int step = 20; step < 25; step++) {
                float[] b = s.batch(step, 256, m).toFloatArray();
                for (int r = 0; r < 256; r++) {
                    double sq = 0;
                    for (int i = 0; i < 128; i++) sq += Math.pow(b[r * 128 + i] * scale, 2);
                    sum += sq;
                    n++;
                }
            }
            double meanSq = sum / n;
            System.out.printf("ActivationStoreTest: scale %.5f, held-out mean squared norm %.4f over %d rows%n",
                    scale, meanSq, n);
            assertEquals(1.0, meanSq, 0.1, "held-out mean squared norm after scaling");
            assertTrue(s.toString().contains("scale"), s.toString());
        }
    }

    @Test
    void textsAreTokenizedByTheModelWithBosDropped() {
        List<String> texts = List.of("Alice sees the dog .", "Bob runs .", "the big cat sleeps .");
        try (HookedTransformer tiny = Zoo.load("tinylang-4l");
             StreamingStore s = ActivationStore.builder().source(tiny, "blocks.0.hook_resid_post").texts(texts, 2)
                     .normSamples(10).build()) {
            int tokens = 0;
            for (String t : texts) tokens += tiny.toTokens(t).length;
            float[] raw = s.rawRows(100);
            assertEquals((tokens - texts.size()) * 128, raw.length, "one row per token but BOS, none for padding");
            // The third text sits alone in the second batch: its rows are the last ones.
            List<float[]> expected = reference(tiny, "blocks.0.hook_resid_post", tiny.toBatch(texts.subList(2, 3)), true);
            int rows = tokens - texts.size(), third = expected.size();
            assertEquals(tiny.toTokens(texts.get(2)).length - 1, third);
            for (int i = 0; i < third; i++) {
                assertClose(expected.get(i), row(raw, 128, rows - third + i), 1e-4, "row " + i + " of the third text");
            }
        }
    }

    @Test
    void tenThousandBatchesDoNotGrowNativeMemory(@TempDir Path dir) {
        try (ActivationStore s = store(first(padded(17), 20)).rowsPerShard(300).build().cache(dir, 700)) {
            for (int i = 0; i < 500; i++) batchSum(s, i);
            System.gc();
            long before = rssKb();
            for (int i = 500; i < 10_500; i++) batchSum(s, i);
            System.gc();
            long grownMb = (rssKb() - before) / 1024;
            System.out.println("ActivationStoreTest: resident memory grew " + grownMb + " MB over 10k batches");
            // 10k leaked [256, 32] batches would be 320 MB
            assertTrue(grownMb < 64, "resident memory grew by " + grownMb + " MB over 10k batches");
        }
    }

    private static void batchSum(ActivationStore s, int step) {
        try (NDManager m = root.newSubManager()) {
            NDArray b = s.batch(step, 256, m);
            assertEquals(256, b.getShape().get(0));
        }
    }

    private static long rssKb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("\\D", ""));
            }
        } catch (IOException e) {
            throw new AssertionError("cannot read /proc/self/status", e);
        }
        throw new AssertionError("no VmRSS in /proc/self/status");
    }

    // ------------------------------------------------------------------ the on-disk cache

    @Test
    void cacheHoldsTheStreamsRowsAndServesEveryRowOncePerEpoch(@TempDir Path dir) throws IOException {
        try (StreamingStore stream = store(padded(19)).rowsPerShard(100).build();
             CachedStore cached = stream.cache(dir, 350);
             NDManager m = root.newSubManager()) {
            assertTrue(cached.isCached());
            assertEquals(350, cached.rows().getAsLong());
            assertEquals(List.of(RESID1), cached.hookNames());
            assertEquals(stream.normalizationScale(), cached.normalizationScale(), 1e-9, "scale kept in the manifest");
            float[] raw = stream.rawRows(350);
            for (int i = 0; i < 350; i++) assertArrayEquals(row(raw, D, i), cached.cachedRow(i), "row " + i);
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(List.of("manifest.json", "shard_00000.safetensors", "shard_00001.safetensors",
                        "shard_00002.safetensors", "shard_00003.safetensors"),
                        files.map(p -> p.getFileName().toString()).sorted().toList());
            }
            CacheManifest manifest = CacheManifest.read(dir);
            assertEquals(List.of(100, 100, 100, 50), manifest.shards().stream().map(CacheManifest.ShardEntry::rows).toList());
            assertTrue(manifest.complete());
            // 350 rows in batches of 7: steps 0..49 are one epoch, each row exactly once (as a multiset: two
            // sequences that share their first two tokens give equal rows)
            List<String> seen = new ArrayList<>(), stored = new ArrayList<>();
            for (int step = 0; step < 50; step++) {
                float[] b = cached.batch(step, 7, m).toFloatArray();
                for (int r = 0; r < 7; r++) seen.add(Arrays.toString(row(b, D, r)));
            }
            for (int i = 0; i < 350; i++) stored.add(Arrays.toString(row(raw, D, i)));
            assertNotEquals(stored, seen, "the epoch is shuffled");
            seen.sort(null);
            stored.sort(null);
            assertTrue(stored.equals(seen), "one epoch of batches is a permutation of the cached rows");
            String text = cached.toString();
            System.out.println("ActivationStoreTest: " + text);
            assertTrue(text.contains("350 rows") && text.contains(RESID1) && text.contains("width 32"), text);
        }
    }

    @Test
    void sameSeedAndStepGiveTheSameBatchAfterReopening(@TempDir Path dir) {
        float[] step9, step80;
        try (StreamingStore stream = store(padded(23)).rowsPerShard(64).seed(3).build();
             ActivationStore cached = stream.cache(dir, 200);
             NDManager m = root.newSubManager()) {
            step9 = cached.batch(9, 16, m).toFloatArray();
            step80 = cached.batch(80, 16, m).toFloatArray(); // epoch 6
            cached.batch(2, 16, m);
            assertArrayEquals(step9, cached.batch(9, 16, m).toFloatArray());
        }
        try (ActivationStore reopened = ActivationStore.open(dir, 3); NDManager m = root.newSubManager()) {
            assertArrayEquals(step80, reopened.batch(80, 16, m).toFloatArray(), "step 80 after reopening");
            assertArrayEquals(step9, reopened.batch(9, 16, m).toFloatArray(), "step 9 after reopening");
        }
        try (ActivationStore otherSeed = ActivationStore.open(dir, 4); NDManager m = root.newSubManager()) {
            assertFalse(Arrays.equals(step9, otherSeed.batch(9, 16, m).toFloatArray()));
        }
    }

    @Test
    void interruptedBuildResumesFromItsLastShardAndEndsIdentical(@TempDir Path tmp) throws IOException {
        Path reference = tmp.resolve("reference"), dir = tmp.resolve("interrupted");
        TokenBatches tokens = padded(29);
        try (StreamingStore s = store(tokens).rowsPerShard(50).build()) {
            s.cache(reference, 200).close();
        }
        // The token source dies in batch 3 (rows 105..139): shards 0 and 1 (rows 0..99) are complete.
        TokenBatches dying = index -> {
            if (index >= 3) throw new IllegalStateException("simulated crash");
            return tokens.get(index);
        };
        try (StreamingStore s = store(dying).rowsPerShard(50).build()) {
            IllegalStateException crash = assertThrows(IllegalStateException.class, () -> s.cache(dir, 200));
            assertEquals("simulated crash", crash.getMessage());
        }
        CacheManifest partial = CacheManifest.read(dir);
        assertEquals(2, partial.shards().size());
        assertFalse(partial.complete());
        CheckpointException incomplete = assertThrows(CheckpointException.class, () -> ActivationStore.open(dir));
        assertTrue(incomplete.getMessage().contains("incomplete"), incomplete.getMessage());
        // What a kill can leave: a temporary file mid-write, and a renamed shard the manifest does not list yet.
        Files.write(dir.resolve(".shard_00002.safetensors.1234.tmp"), new byte[100]);
        Files.write(dir.resolve("shard_00002.safetensors"), new byte[] {1, 2, 3});

        try (StreamingStore s = store(tokens).rowsPerShard(50).build(); ActivationStore done = s.cache(dir, 200)) {
            assertEquals(200, done.rows().getAsLong());
        }
        CacheManifest resumed = CacheManifest.read(dir), full = CacheManifest.read(reference);
        assertEquals(full.shards(), resumed.shards(), "same shards, sizes, checksums and cursors");
        for (CacheManifest.ShardEntry e : full.shards()) {
            assertArrayEquals(Files.readAllBytes(reference.resolve(e.file())), Files.readAllBytes(dir.resolve(e.file())));
        }
        assertFalse(Files.exists(dir.resolve(".shard_00002.safetensors.1234.tmp")), "temporary file left behind");
    }

    @Test
    void aCorruptOrTruncatedShardIsNeverServedAndRebuildingFixesIt(@TempDir Path dir) throws IOException {
        float[] expected;
        try (StreamingStore s = store(padded(31)).rowsPerShard(60).build();
             ActivationStore cached = s.cache(dir, 240);
             NDManager m = root.newSubManager()) {
            expected = cached.batch(0, 240, m).toFloatArray(); // touches every shard
        }
        Path flipped = dir.resolve("shard_00001.safetensors"), cut = dir.resolve("shard_00002.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(flipped.toFile(), "rw")) {
            long at = f.length() - 37;
            f.seek(at);
            int b = f.read();
            f.seek(at);
            f.write(b ^ 0x5A);
        }
        try (RandomAccessFile f = new RandomAccessFile(cut.toFile(), "rw")) {
            f.setLength(f.length() - 128);
        }
        try (CachedStore cached = ActivationStore.open(dir); NDManager m = root.newSubManager()) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> cached.batch(0, 240, m));
            String msg = e.getMessage();
            assertTrue(msg.contains("shard_0000") && msg.contains("delete it and re-run"), msg);
            assertTrue(msg.contains("corrupt: CRC32C") || msg.contains("truncated"), msg);
            CheckpointException c = assertThrows(CheckpointException.class, () -> cached.cachedRow(60));
            assertTrue(c.getMessage().contains("shard_00001.safetensors") && c.getMessage().contains("CRC32C"),
                    c.getMessage());
            CheckpointException t = assertThrows(CheckpointException.class, () -> cached.cachedRow(120));
            assertTrue(t.getMessage().contains("shard_00002.safetensors") && t.getMessage().contains("truncated"),
                    t.getMessage());
            assertEquals(D, cached.cachedRow(0).length, "intact shards still serve");
        }
        // Re-running the build regenerates the bad shards in place.
        try (StreamingStore s = store(padded(31)).rowsPerShard(60).build();
             ActivationStore cached = s.cache(dir, 240);
             NDManager m = root.newSubManager()) {
            assertArrayEquals(expected, cached.batch(0, 240, m).toFloatArray());
        }
    }

    @Test
    void cacheRefusesToResumeWithOtherModelsOrHooks(@TempDir Path dir) {
        try (StreamingStore s = store(padded(37)).rowsPerShard(50).build()) {
            s.cache(dir, 100).close();
        }
        try (StreamingStore s = ActivationStore.builder().source(other, RESID1).tokens(padded(37)).normSamples(50)
                .rowsPerShard(50).build()) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.cache(dir, 100));
            assertTrue(e.getMessage().contains("other models") && e.getMessage().contains("Delete the directory"),
                    e.getMessage());
        }
        try (StreamingStore s = store(padded(37)).rowsPerShard(50).build();
             CachedStore more = s.cache(dir, 180)) {
            assertEquals(180, more.rows().getAsLong(), "a larger nRows extends the cache");
            float[] raw = s.rawRows(180);
            assertArrayEquals(row(raw, D, 170), more.cachedRow(170));
        }
    }

    @Test
    void closedStoreRefusesBatches() {
        ActivationStore s = store(padded(41)).build();
        s.close();
        try (NDScope scope = new NDScope(); NDManager m = root.newSubManager()) {
            assertThrows(IllegalStateException.class, () -> s.batch(0, 4, m));
        }
        s.close(); // twice is harmless
    }
}
