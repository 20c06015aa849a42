package dev.jlens.store;

import dev.jlens.io.CheckpointException;
import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import dev.jlens.io.TensorInfo;
import dev.jlens.store.CacheManifest.ShardEntry;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.zip.CRC32C;

/**
 * A complete activation cache on disk, read row by row: {@code shard_00000.safetensors}, ... each holding one F32
 * tensor {@code activations [rows, width]}, listed with their size and CRC32C in {@code manifest.json}. Each shard is
 * mapped, and checked against its manifest entry, the first time one of its rows is read; a shard that is missing,
 * truncated or corrupt is never served. {@link CacheBuild} writes caches.
 */
final class ShardCache implements AutoCloseable {
    static final String TENSOR = "activations";
    static final Pattern SHARD_NAME = Pattern.compile("shard_(\\d{5,})\\.safetensors");

    /** A shard being read: mapped and verified on first use. */
    private static final class Shard {
        final ShardEntry entry;
        final Path file;
        final long firstRow;
        FloatBuffer data; // mapped on the first read

        Shard(ShardEntry entry, Path file, long firstRow) {
            this.entry = entry;
            this.file = file;
            this.firstRow = firstRow;
        }
    }

    private final Path dir;
    private final CacheManifest manifest;
    private final Shard[] shards;
    private final long[] firstRows;
    private final long rows;

    private ShardCache(Path dir, CacheManifest manifest) {
        this.dir = dir;
        this.manifest = manifest;
        this.shards = new Shard[manifest.shards().size()];
        this.firstRows = new long[shards.length];
        long at = 0;
        for (int i = 0; i < shards.length; i++) {
            ShardEntry e = manifest.shards().get(i);
            shards[i] = new Shard(e, shardFile(dir, e.file()), at);
            firstRows[i] = at;
            at += e.rows();
        }
        this.rows = at;
    }

    /** Opens a complete cache for reading. */
    static ShardCache open(Path dir) {
        CacheManifest m = CacheManifest.read(dir);
        Path file = dir.resolve(CacheManifest.FILE);
        if (!m.complete()) {
            throw new CheckpointException(file, "the cache is incomplete (" + m.shards().size() + " shards, "
                    + m.rows() + " of " + m.targetRows() + " rows): its build was interrupted; resume it with the same"
                    + " store's cache(dir, " + m.targetRows() + ")");
        }
        if (m.rows() == 0) {
            throw new CheckpointException(file, "the cache holds no rows");
        }
        return new ShardCache(dir, m);
    }

    CacheManifest manifest() {
        return manifest;
    }

    Path dir() {
        return dir;
    }

    long rows() {
        return rows;
    }

    int shardCount() {
        return shards.length;
    }

    long bytes() {
        return manifest.shards().stream().mapToLong(ShardEntry::bytes).sum();
    }

    /** Copies row {@code index} into {@code dst} at row {@code dstRow}. */
    void copyRow(long index, float[] dst, int dstRow) {
        int s = Arrays.binarySearch(firstRows, index);
        if (s < 0) s = -s - 2;
        Shard shard = shards[s];
        FloatBuffer data = shard.data != null ? shard.data : map(shard);
        int w = manifest.width();
        data.get((int) ((index - shard.firstRow) * w), dst, dstRow * w, w);
    }

    private synchronized FloatBuffer map(Shard shard) {
        if (shard.data != null) return shard.data;
        problem(shard.file, shard.entry).ifPresent(p -> {
            throw new CheckpointException(shard.file, p + "; delete it and re-run the store's cache(dir, "
                    + manifest.targetRows() + ") to regenerate it (the other shards are kept)");
        });
        try (Safetensors st = Safetensors.open(shard.file)) {
            TensorInfo info = st.info(TENSOR);
            long[] expected = {shard.entry.rows(), manifest.width()};
            if (info.dtype() != DType.F32 || !Arrays.equals(info.shape(), expected)) {
                throw new CheckpointException(shard.file, "holds " + info + " but the manifest expects F32 "
                        + Arrays.toString(expected) + "; delete it and re-run cache(dir, " + manifest.targetRows()
                        + ") to regenerate it");
            }
        }
        try (FileChannel ch = FileChannel.open(shard.file, StandardOpenOption.READ)) {
            ByteBuffer len = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            while (len.hasRemaining() && ch.read(len, len.position()) >= 0) { /* 8 bytes */ }
            long dataStart = Long.BYTES + len.getLong(0);
            long dataBytes = (long) shard.entry.rows() * manifest.width() * Float.BYTES;
            if (dataBytes > Integer.MAX_VALUE) {
                throw new CheckpointException(shard.file, "shard data of " + dataBytes + " bytes is over the 2 GiB a "
                        + "mapping holds; rebuild the cache with a smaller rowsPerShard");
            }
            // The mapping outlives the channel; the JVM unmaps it when the buffer is collected.
            shard.data = ch.map(FileChannel.MapMode.READ_ONLY, dataStart, dataBytes).order(ByteOrder.LITTLE_ENDIAN)
                    .asFloatBuffer();
            return shard.data;
        } catch (IOException e) {
            throw new CheckpointException(shard.file, "cannot map shard: " + e, e);
        }
    }

    /** What is wrong with a shard file against its manifest entry (missing, wrong size, checksum), if anything. */
    static Optional<String> problem(Path file, ShardEntry e) {
        if (!Files.isRegularFile(file)) {
            return Optional.of("shard listed in " + CacheManifest.FILE + " is missing");
        }
        long size = size(file);
        if (size != e.bytes()) {
            return Optional.of("shard is " + (size < e.bytes() ? "truncated" : "longer than recorded") + ": " + size
                    + " bytes, the manifest records " + e.bytes());
        }
        String crc = crc32c(file);
        if (!crc.equals(e.crc32c())) {
            return Optional.of("shard is corrupt: CRC32C " + crc + ", the manifest records " + e.crc32c());
        }
        return Optional.empty();
    }

    /** Drops the mappings (the JVM unmaps them when collected). */
    @Override
    public void close() {
        for (Shard s : shards) s.data = null;
    }

    /** The file of a shard the manifest lists; refuses names that are not {@code shard_NNNNN.safetensors}. */
    static Path shardFile(Path dir, String name) {
        if (!SHARD_NAME.matcher(Objects.requireNonNull(name, "shard file")).matches()) {
            throw new CheckpointException(dir.resolve(CacheManifest.FILE), "lists shard '" + name + "', not a "
                    + "shard_NNNNN.safetensors name; delete the directory to rebuild the cache");
        }
        return dir.resolve(name);
    }

    static long size(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot stat " + file, e);
        }
    }

    /** CRC32C of a whole file, as 8 hex digits. */
    static String crc32c(Path file) {
        CRC32C crc = new CRC32C();
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (ch.read(buf) >= 0) {
                buf.flip();
                crc.update(buf);
                buf.clear();
            }
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read to checksum: " + e, e);
        }
        return String.format(Locale.ROOT, "%08x", crc.getValue());
    }
}
