package dev.jlens.store;

import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A cache built in parts, in any order, is the single-process cache byte for byte. */
class PartitionedCacheTest {
    private static final int VOCAB = 20, D = 32, LEN = 12;
    private static final ModelConfig GPT2 = ModelConfig.gpt2(D, 2, 2, 64, VOCAB, 32);
    private static final String RESID1 = "blocks.1.hook_resid_post";
    private static HookedTransformer model;

    @BeforeAll
    static void load() {
        model = HookedTransformer.random(GPT2, 7);
    }

    @AfterAll
    static void free() {
        model.close();
    }

    /**
     * {@code n} batches of 4 right-padded sequences of different lengths; every fifth batch is BOS and padding only,
     * so it gives no rows when BOS is excluded.
     */
    private static TokenBatches tokens(int n) {
        return index -> {
            if (index < 0 || index >= n) return null;
            SplittableRandom r = new SplittableRandom(31 + index);
            long[][] ids = new long[4][LEN];
            boolean[][] mask = new boolean[4][LEN];
            for (int b = 0; b < 4; b++) {
                int len = index % 5 == 4 ? 1 : 2 + r.nextInt(LEN - 1);
                ids[b][0] = 1;
                for (int p = 1; p < LEN; p++) ids[b][p] = p < len ? 3 + r.nextInt(VOCAB - 3) : 0;
                for (int p = 0; p < len; p++) mask[b][p] = true;
            }
            return Batch.of(ids, mask);
        };
    }

    private static StreamingStore store(TokenBatches tokens, int rowsPerShard, int normSamples) {
        return ActivationStore.builder().source(model, RESID1).tokens(tokens).rowsPerShard(rowsPerShard)
                .normSamples(normSamples).build();
    }

    /** Every file of a directory by name, with its bytes. */
    private static TreeMap<String, byte[]> files(Path dir) throws IOException {
        TreeMap<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path f : (Iterable<Path>) s::iterator) out.put(f.getFileName().toString(), Files.readAllBytes(f));
        }
        return out;
    }

    private static void assertSameFiles(Path expected, Path actual) throws IOException {
        TreeMap<String, byte[]> want = files(expected), got = files(actual);
        assertEquals(want.keySet(), got.keySet(), "the same files");
        for (String name : want.keySet()) {
            assertArrayEquals(want.get(name), got.get(name), name + " is byte for byte the single-process one");
        }
    }

    /** Builds in parts, writing the parts last to first, each from its own store, as executors would. */
    private static CachedStore partitioned(TokenBatches tokens, Path dir, long nRows, int parts, int rowsPerShard,
            int normSamples) {
        StreamingStore driver = store(tokens, rowsPerShard, normSamples);
        PartitionedCache.Plan plan = nRows > 0 ? PartitionedCache.plan(driver, nRows, parts)
                : PartitionedCache.plan(driver, parts);
        List<PartitionedCache.Part> order = new ArrayList<>(plan.parts());
        Collections.reverse(order);
        List<PartitionedCache.PartResult> results = new ArrayList<>();
        for (PartitionedCache.Part p : order) {
            try (StreamingStore executor = store(tokens, rowsPerShard, normSamples)) {
                results.add(PartitionedCache.write(executor, dir, p));
            }
        }
        return PartitionedCache.finish(driver, dir, plan, results);
    }

    @Test
    void partsWrittenInAnyOrderGiveTheSingleProcessCacheByteForByte(@TempDir Path tmp) throws IOException {
        TokenBatches tokens = tokens(40);
        long available = 0;
        for (int i = 0; i < 40; i++) {
            for (boolean[] row : RowStream.keptPositions(tokens.get(i), true)) for (boolean k : row) if (k) available++;
        }
        // Cuts inside a batch, a target beyond the source, more parts than shards, a scale from fewer rows than the
        // cache, from more rows than the cache holds, and from all of a source that ends first.
        long[][] cases = {{300, 3, 37, 100}, {available, 4, 50, 100}, {available + 500, 7, 41, 100},
                {250, 50, 60, 100}, {120, 2, 25, 400}, {available, 1, 1000, 5000}, {available + 10, 3, 64, 5000}};
        for (long[] c : cases) {
            String name = c[0] + "-" + c[1] + "-" + c[2] + "-" + c[3];
            Path single = tmp.resolve("single-" + name), parts = tmp.resolve("parts-" + name);
            try (StreamingStore s = store(tokens, (int) c[2], (int) c[3]); CachedStore a = s.cache(single, c[0]);
                 CachedStore b = partitioned(tokens, parts, c[0], (int) c[1], (int) c[2], (int) c[3])) {
                assertEquals(a.rows(), b.rows(), name);
                assertEquals(a.normalizationScale(), b.normalizationScale(), 0.0, name);
            }
            assertSameFiles(single, parts);
        }
        // Every row of the source without a count: the same as a cache of exactly that many rows.
        try (StreamingStore s = store(tokens, 64, 100); CachedStore a = s.cache(tmp.resolve("all-single"), available);
             CachedStore b = partitioned(tokens, tmp.resolve("all-parts"), 0, 3, 64, 100)) {
            assertEquals(available, b.rows().getAsLong());
            assertTrue(available % 64 != 0, "the last shard is partial: " + available);
        }
        assertSameFiles(tmp.resolve("all-single"), tmp.resolve("all-parts"));
    }

    @Test
    void theManifestWaitsForEveryPartAndLeftoversOfFailedTriesAreRemoved(@TempDir Path dir) throws IOException {
        TokenBatches tokens = tokens(12);
        StreamingStore driver = store(tokens, 30, 50);
        PartitionedCache.Plan plan = PartitionedCache.plan(driver, 200, 3);
        assertEquals(3, plan.parts().size());
        List<PartitionedCache.PartResult> results = new ArrayList<>();
        for (PartitionedCache.Part p : plan.parts().subList(0, 2)) results.add(PartitionedCache.write(driver, dir, p));
        IllegalStateException missing = assertThrows(IllegalStateException.class,
                () -> PartitionedCache.finish(driver, dir, plan, results));
        assertTrue(missing.getMessage().contains("[0, 1]") && missing.getMessage().contains("[0, 1, 2]"),
                missing.getMessage());
        assertFalse(Files.exists(dir.resolve(CacheManifest.FILE)), "no manifest while a part is missing");
        // A killed try of part 2 left a temporary file; its retry writes the shard again.
        Files.write(dir.resolve(".shard_00006.safetensors.1234.tmp"), new byte[] {1, 2, 3});
        results.add(PartitionedCache.write(driver, dir, plan.parts().get(2)));
        results.add(PartitionedCache.write(driver, dir, plan.parts().get(2)));
        IllegalStateException twice = assertThrows(IllegalStateException.class,
                () -> PartitionedCache.finish(driver, dir, plan, results));
        assertTrue(twice.getMessage().contains("every part succeeded once"), twice.getMessage());
        results.remove(results.size() - 1);
        try (CachedStore cache = PartitionedCache.finish(driver, dir, plan, results)) {
            assertEquals(200, cache.rows().getAsLong());
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertTrue(s.noneMatch(f -> f.getFileName().toString().endsWith(".tmp")), "temporaries removed");
        }
        IllegalStateException again = assertThrows(IllegalStateException.class,
                () -> PartitionedCache.finish(driver, dir, plan, results));
        assertTrue(again.getMessage().contains("already holds"), again.getMessage());
        driver.close();
    }
}
