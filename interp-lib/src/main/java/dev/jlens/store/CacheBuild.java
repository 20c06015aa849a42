package dev.jlens.store;

import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import dev.jlens.notebook.Progress;
import dev.jlens.store.CacheManifest.ShardEntry;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.function.IntConsumer;
import java.util.stream.Stream;

/**
 * Writes an activation cache, crash-safe: a shard is written under a temporary name, flushed and renamed, and only
 * then recorded in the manifest (itself replaced atomically), so an interrupted build resumes after the last recorded
 * shard. Calling it again on the same directory with the same models, hooks and data resumes, repairs (a listed
 * shard that went missing or bad is rebuilt from where the previous one ended) or extends the cache.
 */
final class CacheBuild {

    private CacheBuild() {}

    /**
     * Builds the cache in {@code dir} up to {@code nRows} rows, or resumes or extends one built with the same
     * {@code header} (models, hooks, data); rows come from {@code streams}, which start a row stream at a cursor.
     */
    static CacheManifest run(Path dir, long nRows, CacheManifest header, Function<RowStream.Cursor, RowStream> streams) {
        if (nRows <= 0) throw new IllegalArgumentException("nRows must be >= 1, got " + nRows);
        try {
            Files.createDirectories(dir);
            deleteTemporaries(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the cache directory " + dir, e);
        }
        Optional<CacheManifest> existing = CacheManifest.find(dir);
        existing.ifPresent(have -> have.checkResumableBy(header, dir));
        CacheManifest m = existing.orElseGet(() -> header.with(List.of(), nRows, false, false));
        List<ShardEntry> shards = new ArrayList<>(m.shards());
        shards.forEach(e -> ShardCache.shardFile(dir, e.file())); // refuses a manifest naming other files
        deleteUnlisted(dir, shards);
        int width = m.width();
        // Listed shards that went missing or bad are rebuilt from where the previous shard ended.
        for (int i = 0; i < shards.size(); i++) {
            ShardEntry e = shards.get(i);
            if (ShardCache.problem(ShardCache.shardFile(dir, e.file()), e).isEmpty()) continue;
            RowStream stream = streams.apply(i == 0 ? RowStream.Cursor.START : shards.get(i - 1).end());
            float[] buf = new float[e.rows() * width];
            if (readFully(stream, buf, e.rows()) != e.rows()) {
                throw new IllegalStateException("cannot rebuild " + e.file() + ": the token source now ends before its "
                        + e.rows() + " rows; delete the cache directory " + dir + " and build it again");
            }
            shards.set(i, writeShard(dir, e.file(), buf, e.rows(), width, stream.cursor()));
            m = m.with(shards, m.targetRows(), m.complete(), m.sourceExhausted());
            m.write(dir);
        }
        long rows = m.rows();
        if (rows >= nRows || m.sourceExhausted()) {
            if (!m.complete()) {
                m = m.with(shards, m.targetRows(), true, m.sourceExhausted());
                m.write(dir);
            }
            return m;
        }
        // Extend (or finish): from where the last recorded shard ended.
        long target = Math.max(nRows, m.targetRows());
        m = m.with(shards, target, false, false);
        m.write(dir);
        RowStream stream = streams.apply(shards.isEmpty() ? RowStream.Cursor.START : shards.get(shards.size() - 1).end());
        boolean exhausted = false;
        float[] buf = new float[Math.multiplyExact(m.rowsPerShard(), width)];
        try (Progress progress = Progress.start(target, "cache " + dir.getFileName())) {
            progress.update(rows, shardsText(shards.size()));
            while (rows < target) {
                int want = (int) Math.min(m.rowsPerShard(), target - rows);
                long before = rows;
                String writing = shardsText(shards.size()) + ", filling shard " + (shards.size() + 1);
                // A shard can hold the whole cache: the bar moves as its rows arrive, not only when it is written.
                int got = readFully(stream, buf, want, n -> progress.update(before + n, writing));
                if (got > 0) {
                    shards.add(writeShard(dir, shardName(shards.size()), buf, got, width, stream.cursor()));
                    rows += got;
                }
                if (got < want) {
                    exhausted = true;
                    break;
                }
                m = m.with(shards, target, false, false);
                m.write(dir);
                progress.update(rows, shardsText(shards.size()));
            }
            // The last render is the true final state, also when the token source ended before the target.
            progress.finish(rows, shardsText(shards.size()) + (exhausted ? ", the token source ended at " + rows
                    + " of the " + target + " rows asked for" : ""));
        }
        if (rows == 0) {
            throw new IllegalStateException("the token source gives no activation rows: it is empty, or every position "
                    + "is padding or BOS");
        }
        m = m.with(shards, target, true, exhausted);
        m.write(dir);
        return m;
    }

    /** The file name of shard number {@code index}. */
    static String shardName(int index) {
        return String.format(Locale.ROOT, "shard_%05d.safetensors", index);
    }

    /** Reads up to {@code want} rows; fewer only at the end of the token source. */
    static int readFully(RowStream stream, float[] buf, int want) {
        return readFully(stream, buf, want, n -> { });
    }

    /** Reads up to {@code want} rows, telling {@code progress} how many are in after each read. */
    private static int readFully(RowStream stream, float[] buf, int want, IntConsumer progress) {
        int got = 0;
        while (got < want) {
            int n = stream.read(buf, got, want - got);
            if (n == 0) break;
            got += n;
            progress.accept(got);
        }
        return got;
    }

    private static String shardsText(int shards) {
        return shards + (shards == 1 ? " shard" : " shards");
    }

    /**
     * Writes the first {@code rows} rows of {@code buf} as shard {@code name} (temporary file, flushed, renamed) and
     * returns its manifest entry; {@link PartitionedCache} writes its shards through here too.
     */
    static ShardEntry writeShard(Path dir, String name, float[] buf, int rows, int width, RowStream.Cursor end) {
        Path file = dir.resolve(name);
        float[] values = rows * width == buf.length ? buf : Arrays.copyOf(buf, rows * width);
        // writeFloats writes a temporary file, flushes it and renames it over the target.
        Safetensors.writeFloats(file, Map.of(ShardCache.TENSOR, values),
                Map.of(ShardCache.TENSOR, new long[] {rows, width}), Map.of("format", CacheManifest.FORMAT), DType.F32);
        return new ShardEntry(name, rows, ShardCache.size(file), ShardCache.crc32c(file), end.batch(), end.row());
    }

    /** Removes temporary files a killed build left behind (they never hold anything recorded). */
    static void deleteTemporaries(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                String n = f.getFileName().toString();
                if (n.startsWith(".") && n.endsWith(".tmp") && Files.isRegularFile(f)) Files.deleteIfExists(f);
            }
        }
    }

    /** Removes shard files the manifest does not list (written, but the build stopped before recording them). */
    private static void deleteUnlisted(Path dir, List<ShardEntry> listed) {
        Set<String> keep = new HashSet<>();
        for (ShardEntry e : listed) keep.add(e.file());
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                String n = f.getFileName().toString();
                if (ShardCache.SHARD_NAME.matcher(n).matches() && !keep.contains(n)) Files.deleteIfExists(f);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the cache directory " + dir, e);
        }
    }
}
