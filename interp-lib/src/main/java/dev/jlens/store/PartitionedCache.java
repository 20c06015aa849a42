package dev.jlens.store;

import dev.jlens.model.Batch;
import dev.jlens.store.CacheManifest.ShardEntry;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * A cache build ({@link StreamingStore#cache(Path, long)}) cut into parts that run independently, on other threads
 * or other machines (the harvest module runs them as a Spark job), and give the same cache byte for byte: the same
 * shards, rows, checksums and manifest.
 *
 * <ol>
 *   <li>{@link #plan} (once, where the job starts) counts the rows each token batch gives, without running a model,
 *   and hands each part a run of whole shards with the row-stream cursor where its first shard starts;</li>
 *   <li>{@link #write} (once per part, anywhere the model, tokens and directory are) runs the model from that cursor
 *   and writes the part's shards, each to a temporary file, flushed and renamed, so a failed or retried part never
 *   leaves half a shard under a shard's name; a token batch cut by a part boundary is run by both parts, so every
 *   forward pass sees the batch the single-process build sees;</li>
 *   <li>{@link #finish} (once, after every part succeeded) checks the shards and the cursors between parts, computes
 *   the normalisation scales from the squared row norms the parts returned, summed in data order as the store sums
 *   them, and writes the one manifest atomically. Until then the directory holds no manifest and opens as no cache.</li>
 * </ol>
 */
public final class PartitionedCache {

    private PartitionedCache() {}

    /**
     * One part: shards {@code firstShard .. firstShard + shards - 1}, holding rows {@code firstRow ..
     * firstRow + rows - 1} of the cache, whose row stream starts at row {@code startRow} of token batch
     * {@code startBatch}.
     */
    public record Part(int index, int firstShard, int shards, long firstRow, long rows, long startBatch, int startRow,
            long targetRows, int rowsPerShard, int normSamples) implements Serializable {
        private static final long serialVersionUID = 1L;
    }

    /**
     * What a build will write: {@code rows} rows (the first {@code targetRows} of the token source, or all it has
     * when {@code sourceExhausted}) in {@code shards} shards, cut into {@code parts}; {@code tokenBatches} token
     * batches were counted.
     */
    public record Plan(long targetRows, long rows, boolean sourceExhausted, int shards, long tokenBatches,
            List<Part> parts) implements Serializable {
        private static final long serialVersionUID = 1L;

        /** Copies the parts. */
        public Plan {
            parts = List.copyOf(parts);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "PartitionedCache.Plan(%,d rows in %d shards of %,d rows, %d parts, "
                    + "from %,d token batches%s)", rows, shards, parts.get(0).rowsPerShard(), parts.size(),
                    tokenBatches, sourceExhausted ? "; the token source ends before the " + targetRows + " rows asked"
                    : "");
        }
    }

    /** A shard a part wrote: its file, rows, size, CRC32C and the row-stream cursor after it. */
    public record WrittenShard(String file, int rows, long bytes, String crc32c, long endBatch, int endRow)
            implements Serializable {
        private static final long serialVersionUID = 1L;
    }

    /**
     * What a part reports: its shards; per source the squared norm of each of its rows among the cache's first
     * {@code normSamples}; the token positions it fed the model and the seconds it took.
     */
    public record PartResult(int part, List<WrittenShard> shards, double[][] squaredNorms, long tokens,
            double seconds) implements Serializable {
        private static final long serialVersionUID = 1L;

        /** Copies the shard list. */
        public PartResult {
            shards = List.copyOf(shards);
        }

        /** Rows written. */
        public long rows() {
            return shards.stream().mapToLong(WrittenShard::rows).sum();
        }
    }

    /** A plan for every row of the store's token source (which must end), in at most {@code parts} parts. */
    public static Plan plan(StreamingStore store, int parts) {
        return plan(store, Long.MAX_VALUE, parts, true);
    }

    /** A plan for the first {@code nRows} rows, as {@code store.cache(dir, nRows)} builds them, in at most {@code parts} parts. */
    public static Plan plan(StreamingStore store, long nRows, int parts) {
        return plan(store, nRows, parts, false);
    }

    private static Plan plan(StreamingStore store, long nRows, int parts, boolean all) {
        Objects.requireNonNull(store, "store");
        if (nRows <= 0) throw new IllegalArgumentException("nRows must be >= 1, got " + nRows);
        if (parts < 1) throw new IllegalArgumentException("parts must be >= 1, got " + parts);
        ActivationStore.Options options = store.options().orElseThrow();
        int perShard = options.shardRows(store.width());
        // Rows after each token batch: the positions that give rows are known from the tokens alone.
        long[] ends = new long[16];
        long batches = 0, total = 0;
        while (total < nRows) {
            Batch batch = store.tokens().get(batches);
            if (batch == null) break;
            for (boolean[] row : RowStream.keptPositions(batch, options.excludeBos())) {
                for (boolean k : row) if (k) total++;
            }
            if (batches == ends.length) ends = Arrays.copyOf(ends, ends.length * 2);
            ends[(int) batches++] = total;
            if (all && batches == Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("the token source has more than " + batches + " batches: give a "
                        + "row count to plan(store, nRows, parts)");
            }
        }
        long rows = Math.min(total, nRows);
        if (rows == 0) {
            throw new IllegalStateException("the token source gives no activation rows: it is empty, or every position "
                    + "is padding or BOS");
        }
        long target = all ? rows : nRows;
        long shards = (rows + perShard - 1) / perShard;
        if (shards > 99_999) {
            throw new IllegalArgumentException(shards + " shards of " + perShard + " rows: more than shard_99999; use "
                    + "larger shards (rowsPerShard)");
        }
        int n = (int) Math.min(parts, shards);
        List<Part> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int first = (int) (shards * i / n), end = (int) (shards * (i + 1) / n);
            long firstRow = (long) first * perShard;
            long partRows = Math.min((long) end * perShard, rows) - firstRow;
            long[] cursor = cursorAt(firstRow, ends, (int) batches);
            out.add(new Part(i, first, end - first, firstRow, partRows, cursor[0], (int) cursor[1], target, perShard,
                    options.normSamples()));
        }
        return new Plan(target, rows, total < target, (int) shards, batches, out);
    }

    /**
     * The cursor of a row stream that has read {@code g} rows and stopped: inside the batch holding row {@code g - 1},
     * or at the start of the next batch when that row ends its batch (as {@link RowStream#cursor()} reports it).
     */
    private static long[] cursorAt(long g, long[] ends, int batches) {
        if (g == 0) return new long[] {0, 0};
        int lo = 0, hi = batches - 1; // the first batch whose cumulative end reaches g
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (ends[mid] >= g) hi = mid; else lo = mid + 1;
        }
        if (ends[lo] == g) return new long[] {lo + 1L, 0};
        long before = lo == 0 ? 0 : ends[lo - 1];
        return new long[] {lo, g - before};
    }

    /**
     * Writes one part's shards into {@code dir} from {@code store} (built with the same model, hooks, tokens and
     * options as the planning store) and reports them.
     */
    public static PartResult write(StreamingStore store, Path dir, Part part) {
        Objects.requireNonNull(store, "store");
        Objects.requireNonNull(dir, "dir");
        Objects.requireNonNull(part, "part");
        int perShard = store.options().orElseThrow().shardRows(store.width());
        if (perShard != part.rowsPerShard()) {
            throw new IllegalArgumentException("this store writes shards of " + perShard + " rows but the plan has "
                    + part.rowsPerShard() + ": build the part's store with the planning store's options");
        }
        long start = System.nanoTime();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the cache directory " + dir, e);
        }
        int width = store.width(), nSources = store.nSources();
        int[] dims = store.sourceWidths().stream().mapToInt(Integer::intValue).toArray();
        RowStream stream = store.stream(new RowStream.Cursor(part.startBatch(), part.startRow()));
        float[] buf = new float[Math.multiplyExact(perShard, width)];
        int normRows = (int) Math.max(0, Math.min(part.normSamples(), part.firstRow() + part.rows()) - part.firstRow());
        double[][] squared = new double[nSources][normRows];
        List<WrittenShard> shards = new ArrayList<>();
        long row = part.firstRow();
        for (int s = 0; s < part.shards(); s++) {
            // Asked for as the single-process build asks (up to the target), so the last shard of a source that
            // ends reads to its end and records the same cursor.
            int want = (int) Math.min(perShard, part.targetRows() - row);
            int expect = (int) Math.min(perShard, part.firstRow() + part.rows() - row);
            int got = CacheBuild.readFully(stream, buf, want);
            if (got != expect) {
                throw new IllegalStateException("part " + part.index() + ": shard " + (part.firstShard() + s) + " got "
                        + got + " rows where the plan counted " + expect + "; did the token source change since the "
                        + "plan?");
            }
            for (int r = 0; r < got && row + r - part.firstRow() < normRows; r++) {
                int at = r * width;
                for (int src = 0; src < nSources; src++) {
                    squared[src][(int) (row + r - part.firstRow())] = StreamingStore.squaredNorm(buf, at, dims[src]);
                    at += dims[src];
                }
            }
            ShardEntry e = CacheBuild.writeShard(dir, CacheBuild.shardName(part.firstShard() + s), buf, got, width,
                    stream.cursor());
            shards.add(new WrittenShard(e.file(), e.rows(), e.bytes(), e.crc32c(), e.endBatch(), e.endRow()));
            row += got;
        }
        return new PartResult(part.index(), shards, squared, stream.tokensRead(), (System.nanoTime() - start) / 1e9);
    }

    /**
     * Checks that every part of {@code plan} reported and its shards are on disk with their recorded sizes, then
     * writes the manifest (atomically) and opens the cache with the store's seed. {@code store} is the planning store.
     */
    public static CachedStore finish(StreamingStore store, Path dir, Plan plan, List<PartResult> results) {
        Objects.requireNonNull(store, "store");
        Objects.requireNonNull(dir, "dir");
        Objects.requireNonNull(plan, "plan");
        if (Files.isRegularFile(dir.resolve(CacheManifest.FILE))) {
            throw new IllegalStateException(dir + " already holds a cache manifest: finish writes a new cache's one "
                    + "manifest; harvest into an empty directory");
        }
        List<PartResult> sorted = new ArrayList<>(results);
        sorted.sort(Comparator.comparingInt(PartResult::part));
        List<Integer> got = sorted.stream().map(PartResult::part).toList();
        List<Integer> want = plan.parts().stream().map(Part::index).toList();
        if (!got.equals(want)) {
            throw new IllegalStateException("the parts that reported, " + got + ", are not the plan's " + want
                    + "; the manifest is written only when every part succeeded once");
        }
        List<ShardEntry> entries = new ArrayList<>();
        for (int i = 0; i < sorted.size(); i++) {
            Part part = plan.parts().get(i);
            PartResult r = sorted.get(i);
            if (r.shards().size() != part.shards() || r.rows() != part.rows()) {
                throw new IllegalStateException("part " + i + " wrote " + r.shards().size() + " shards of " + r.rows()
                        + " rows; the plan has " + part.shards() + " shards of " + part.rows());
            }
            if (i > 0 && !entries.get(entries.size() - 1).end().equals(
                    new RowStream.Cursor(part.startBatch(), part.startRow()))) {
                throw new IllegalStateException("part " + (i - 1) + " ended at " + entries.get(entries.size() - 1).end()
                        + " but part " + i + " started at batch " + part.startBatch() + ", row " + part.startRow());
            }
            for (int s = 0; s < r.shards().size(); s++) {
                WrittenShard w = r.shards().get(s);
                String name = CacheBuild.shardName(part.firstShard() + s);
                if (!w.file().equals(name)) {
                    throw new IllegalStateException("part " + i + " reported " + w.file() + " where " + name + " was due");
                }
                Path file = ShardCache.shardFile(dir, name);
                if (!Files.isRegularFile(file) || ShardCache.size(file) != w.bytes()) {
                    throw new IllegalStateException("shard " + file + " is missing or not the " + w.bytes() + " bytes "
                            + "part " + i + " wrote (is " + dir + " on a file system every executor and the driver see?)");
                }
                entries.add(new ShardEntry(w.file(), w.rows(), w.bytes(), w.crc32c(), w.endBatch(), w.endRow()));
            }
        }
        int normSamples = plan.parts().get(0).normSamples();
        if (plan.rows() >= normSamples || plan.sourceExhausted()) {
            // The scale's rows are all in the cache: sum the parts' squared norms in data order.
            long count = Math.min(normSamples, plan.rows());
            double[] sums = new double[store.nSources()];
            long seen = 0;
            for (PartResult r : sorted) {
                int n = r.squaredNorms()[0].length;
                for (int k = 0; k < n && seen < count; k++, seen++) {
                    for (int src = 0; src < sums.length; src++) sums[src] += r.squaredNorms()[src][k];
                }
            }
            if (seen != count) {
                throw new IllegalStateException("the parts returned " + seen + " squared norms; the scale needs " + count);
            }
            store.adoptSquaredNormSums(sums, count);
        } // else the scale's rows run past the cache: the store estimates them itself, as cache(dir, n) does
        try {
            CacheBuild.deleteTemporaries(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot clean the cache directory " + dir, e);
        }
        store.header(plan.targetRows()).with(entries, plan.targetRows(), true, plan.sourceExhausted()).write(dir);
        return ActivationStore.open(dir, store.seed);
    }
}
