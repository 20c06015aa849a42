package dev.jlens.store;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.jlens.io.CheckpointException;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import dev.jlens.io.TensorInfo;
import dev.jlens.notebook.Progress;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * Activation rows on disk: {@code shard_00000.safetensors}, ... each holding one F32 tensor {@code activations
 * [rows, width]}, and a {@code manifest.json} listing the complete shards with their size and CRC32C. Writing is
 * crash-safe: a shard is written under a temporary name, flushed and renamed, and only then recorded in the manifest
 * (itself replaced atomically), so an interrupted build resumes after the last recorded shard and a reader never
 * sees a half-written one. Reading maps each shard and checks its size and checksum the first time it is touched.
 */
final class ShardCache implements AutoCloseable {
    static final String MANIFEST = "manifest.json";
    static final String TENSOR = "activations";
    static final String FORMAT = "jlens-activations";
    private static final Pattern SHARD_NAME = Pattern.compile("shard_(\\d{5,})\\.safetensors");
    private static final ObjectMapper JSON = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    /** One complete shard, and where the row stream stood after it (a rebuild of the next shard starts there). */
    record ShardEntry(String file, int rows, long bytes, String crc32c, long endBatch, int endRow) {}

    /**
     * The cache's description. {@code probe} holds a few activation values of a fixed three-token input and
     * {@code tokensCrc} a checksum of the first token batch: a resume with other models, hooks or data is refused.
     */
    record Manifest(String format, int version, List<String> models, List<String> hooks, List<Integer> dims,
            int width, boolean excludeBos, int rowsPerShard, long targetRows, boolean complete, boolean sourceExhausted,
            double normalizationScale, List<Double> sourceScales, int normSamples, List<Double> probe, long tokensCrc,
            List<ShardEntry> shards) {

        Manifest {
            shards = List.copyOf(shards);
        }

        long rows() {
            return shards.stream().mapToLong(ShardEntry::rows).sum();
        }

        Manifest with(List<ShardEntry> newShards, long newTarget, boolean newComplete, boolean exhausted) {
            return new Manifest(format, version, models, hooks, dims, width, excludeBos, rowsPerShard, newTarget,
                    newComplete, exhausted, normalizationScale, sourceScales, normSamples, probe, tokensCrc, newShards);
        }
    }

    /** A shard being read: mapped and verified on first use. */
    private static final class Shard {
        final ShardEntry entry;
        final Path file;
        final long firstRow;
        FloatBuffer data;

        Shard(ShardEntry entry, Path file, long firstRow) {
            this.entry = entry;
            this.file = file;
            this.firstRow = firstRow;
        }
    }

    private final Path dir;
    private final Manifest manifest;
    private final Shard[] shards;
    private final long[] firstRows;
    private final long rows;

    private ShardCache(Path dir, Manifest manifest) {
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

    // ------------------------------------------------------------------------------------------ reading

    /** Opens a complete cache for reading. */
    static ShardCache open(Path dir) {
        Manifest m = readManifest(dir);
        if (m == null) {
            throw new CheckpointException(dir.resolve(MANIFEST), "no activation cache here (no " + MANIFEST + "); build "
                    + "one with ActivationStore.builder()...build().cache(dir, nRows)");
        }
        if (!m.complete()) {
            throw new CheckpointException(dir.resolve(MANIFEST), "the cache is incomplete (" + m.shards().size()
                    + " shards, " + m.rows() + " of " + m.targetRows() + " rows): its build was interrupted; resume it "
                    + "with the same store's cache(dir, " + m.targetRows() + ")");
        }
        if (m.rows() == 0) {
            throw new CheckpointException(dir.resolve(MANIFEST), "the cache holds no rows");
        }
        return new ShardCache(dir, m);
    }

    Manifest manifest() {
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
        verify(shard.file, shard.entry, true);
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

    /**
     * Checks a shard's size and CRC32C against its manifest entry; throws (when {@code raise}) a message naming the
     * file, what was expected and found, and how to fix it; returns whether it is intact.
     */
    private boolean verify(Path file, ShardEntry e, boolean raise) {
        String fix = "; delete it and re-run the store's cache(dir, " + manifest.targetRows()
                + ") to regenerate it (the other shards are kept)";
        String problem = null;
        if (!Files.isRegularFile(file)) {
            problem = "shard listed in " + MANIFEST + " is missing";
        } else {
            long size = size(file);
            if (size != e.bytes()) {
                problem = "shard is " + (size < e.bytes() ? "truncated" : "longer than recorded") + ": " + size
                        + " bytes, the manifest records " + e.bytes();
            } else {
                String crc = crc32c(file);
                if (!crc.equals(e.crc32c())) {
                    problem = "shard is corrupt: CRC32C " + crc + ", the manifest records " + e.crc32c();
                }
            }
        }
        if (problem != null && raise) throw new CheckpointException(file, problem + fix);
        return problem == null;
    }

    /** Drops the mappings (the JVM unmaps them when collected). */
    @Override
    public void close() {
        for (Shard s : shards) s.data = null;
    }

    // ------------------------------------------------------------------------------------------ building

    /**
     * Builds the cache in {@code dir} up to {@code nRows} rows, or resumes or extends one built with the same
     * {@code header} (models, hooks, data); rows come from {@code streams}, which start a row stream at a cursor.
     */
    static Manifest build(Path dir, long nRows, Manifest header, Function<RowStream.Cursor, RowStream> streams) {
        if (nRows <= 0) throw new IllegalArgumentException("nRows must be >= 1, got " + nRows);
        try {
            Files.createDirectories(dir);
            deleteTemporaries(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the cache directory " + dir, e);
        }
        Manifest m = readManifest(dir);
        if (m == null) {
            m = header.with(List.of(), nRows, false, false);
        } else {
            checkCompatible(dir, m, header);
        }
        ShardCache existing = new ShardCache(dir, m);
        List<ShardEntry> shards = new ArrayList<>(m.shards());
        deleteUnlisted(dir, shards);
        int width = m.width();
        // Listed shards that went missing or bad are rebuilt from where the previous shard ended.
        for (int i = 0; i < shards.size(); i++) {
            ShardEntry e = shards.get(i);
            if (existing.verify(shardFile(dir, e.file()), e, false)) continue;
            RowStream.Cursor start = i == 0 ? RowStream.Cursor.START
                    : new RowStream.Cursor(shards.get(i - 1).endBatch(), shards.get(i - 1).endRow());
            RowStream stream = streams.apply(start);
            float[] buf = new float[e.rows() * width];
            if (readFully(stream, buf, e.rows()) != e.rows()) {
                throw new IllegalStateException("cannot rebuild " + e.file() + ": the token source now ends before its "
                        + e.rows() + " rows; delete the cache directory " + dir + " and build it again");
            }
            shards.set(i, writeShard(dir, e.file(), buf, e.rows(), width, stream.cursor()));
            m = m.with(shards, m.targetRows(), m.complete(), m.sourceExhausted());
            writeManifest(dir, m);
        }
        long rows = m.rows();
        if (rows >= nRows || m.sourceExhausted()) {
            if (!m.complete()) {
                m = m.with(shards, m.targetRows(), true, m.sourceExhausted());
                writeManifest(dir, m);
            }
            return m;
        }
        // Extend (or finish): from where the last recorded shard ended.
        long target = Math.max(nRows, m.targetRows());
        m = m.with(shards, target, false, false);
        writeManifest(dir, m);
        RowStream.Cursor cursor = shards.isEmpty() ? RowStream.Cursor.START
                : new RowStream.Cursor(shards.get(shards.size() - 1).endBatch(), shards.get(shards.size() - 1).endRow());
        RowStream stream = streams.apply(cursor);
        boolean exhausted = false;
        float[] buf = new float[Math.multiplyExact(m.rowsPerShard(), width)];
        try (Progress progress = Progress.start(target, "cache " + dir.getFileName())) {
            progress.update(rows, shards.size() + " shards");
            while (rows < target) {
                int want = (int) Math.min(m.rowsPerShard(), target - rows);
                int got = readFully(stream, buf, want);
                if (got > 0) {
                    String name = String.format(Locale.ROOT, "shard_%05d.safetensors", shards.size());
                    shards.add(writeShard(dir, name, buf, got, width, stream.cursor()));
                    rows += got;
                }
                if (got < want) {
                    exhausted = true;
                    break;
                }
                m = m.with(shards, target, false, false);
                writeManifest(dir, m);
                progress.update(rows, shards.size() + " shards");
            }
        }
        if (rows == 0) {
            throw new IllegalStateException("the token source gives no activation rows: it is empty, or every position "
                    + "is padding or BOS");
        }
        m = m.with(shards, target, true, exhausted);
        writeManifest(dir, m);
        return m;
    }

    private static int readFully(RowStream stream, float[] buf, int want) {
        int got = 0;
        while (got < want) {
            int n = stream.read(buf, got, want - got);
            if (n == 0) break;
            got += n;
        }
        return got;
    }

    private static ShardEntry writeShard(Path dir, String name, float[] buf, int rows, int width,
            RowStream.Cursor end) {
        Path file = dir.resolve(name);
        float[] values = rows * width == buf.length ? buf : Arrays.copyOf(buf, rows * width);
        // writeFloats writes a temporary file, flushes it and renames it over the target.
        Safetensors.writeFloats(file, Map.of(TENSOR, values), Map.of(TENSOR, new long[] {rows, width}),
                Map.of("format", FORMAT), DType.F32);
        return new ShardEntry(name, rows, size(file), crc32c(file), end.batch(), end.row());
    }

    private static void checkCompatible(Path dir, Manifest have, Manifest want) {
        List<String> diffs = new ArrayList<>();
        if (!FORMAT.equals(have.format()) || have.version() != want.version()) {
            diffs.add("format " + have.format() + " v" + have.version() + " (expected " + FORMAT + " v" + want.version() + ")");
        }
        if (!have.hooks().equals(want.hooks())) diffs.add("hooks " + have.hooks() + " vs " + want.hooks());
        if (!have.dims().equals(want.dims())) diffs.add("source widths " + have.dims() + " vs " + want.dims());
        if (have.excludeBos() != want.excludeBos()) diffs.add("excludeBos " + have.excludeBos() + " vs " + want.excludeBos());
        if (have.rowsPerShard() != want.rowsPerShard()) {
            diffs.add("rowsPerShard " + have.rowsPerShard() + " vs " + want.rowsPerShard());
        }
        if (have.tokensCrc() != want.tokensCrc()) diffs.add("the first token batch differs (another data source)");
        if (!close(have.probe(), want.probe())) diffs.add("the models' activations differ (other models or weights)");
        if (!diffs.isEmpty()) {
            throw new IllegalStateException("the activation cache in " + dir + " was built differently: "
                    + String.join("; ", diffs) + ". Delete the directory to rebuild it, or cache to another directory");
        }
    }

    private static boolean close(List<Double> a, List<Double> b) {
        if (a.size() != b.size()) return false;
        for (int i = 0; i < a.size(); i++) {
            if (Math.abs(a.get(i) - b.get(i)) > 1e-4 * (1 + Math.abs(b.get(i)))) return false;
        }
        return true;
    }

    // ------------------------------------------------------------------------------------------ files

    static Manifest readManifest(Path dir) {
        Path file = dir.resolve(MANIFEST);
        if (!Files.isRegularFile(file)) return null;
        try {
            Manifest m = JSON.readValue(file.toFile(), Manifest.class);
            if (m.shards() == null || m.hooks() == null || m.dims() == null) {
                throw new CheckpointException(file, "manifest lacks shards, hooks or dims; delete the directory to "
                        + "rebuild the cache");
            }
            return m;
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read the cache manifest: " + e.getMessage()
                    + "; delete the directory to rebuild the cache", e);
        }
    }

    /** Replaces the manifest atomically: a temporary file, flushed, renamed over it. */
    static void writeManifest(Path dir, Manifest m) {
        Path file = dir.resolve(MANIFEST);
        try {
            Checkpoints.writeAtomically(file, JSON.writeValueAsBytes(m));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** Removes temporary files a killed build left behind (they never hold anything recorded). */
    private static void deleteTemporaries(Path dir) throws IOException {
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
                if (SHARD_NAME.matcher(n).matches() && !keep.contains(n)) Files.deleteIfExists(f);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the cache directory " + dir, e);
        }
    }

    private static Path shardFile(Path dir, String name) {
        if (!SHARD_NAME.matcher(Objects.requireNonNull(name, "shard file")).matches()) {
            throw new CheckpointException(dir.resolve(MANIFEST), "lists shard '" + name + "', not a shard_NNNNN.safetensors "
                    + "name; delete the directory to rebuild the cache");
        }
        return dir.resolve(name);
    }

    private static long size(Path file) {
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
