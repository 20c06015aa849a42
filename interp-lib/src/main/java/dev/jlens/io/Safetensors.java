package dev.jlens.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jlens.io.SafetensorsHeader.Entry;
import dev.jlens.io.SafetensorsHeader.Parsed;
import dev.jlens.util.Names;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Reads and writes the safetensors checkpoint format: an 8-byte little-endian header length, a JSON header
 * ({@code name -> {dtype, shape, data_offsets}} plus an optional {@code __metadata__} string map), then the tensor
 * bytes. Opens single files and sharded Hugging Face checkpoints ({@code model.safetensors.index.json}).
 *
 * <p>Reading validates the whole header up front, as the reference implementation does: every tensor's byte range
 * must match its shape and dtype, lie inside the file, and the ranges must tile the data region exactly (no
 * overlaps, no gaps, no trailing bytes). Any problem with a file is a {@link CheckpointException} naming the file
 * and what is wrong; a bad argument (unknown tensor name, unsupported write dtype) is an
 * {@link IllegalArgumentException}.
 *
 * <p>Memory: nothing is kept mapped or cached. On the CPU, {@link #load} reads a tensor straight into the memory of
 * the NDArray it returns (DJL exposes it as a direct buffer), widening F16/BF16/F64 from one reused 4 MiB chunk
 * buffer, so loading a model costs its F32 weights plus at most one chunk. On other devices each chunk is wrapped
 * and copied in natively. Instances are thread-safe; loads are serialized.
 *
 * <p>The work is split by job: {@link SafetensorsHeader} parses and validates a file's header,
 * {@link SafetensorsIndex} opens sharded checkpoints, {@link TensorReader} reads tensors as F32 (widening in
 * {@link FloatCodec}), and {@link SafetensorsWriter} writes files atomically. This class is the front door.
 */
public final class Safetensors implements AutoCloseable {

    /** How tensor bytes come off the disk. */
    public enum ReadMode {
        /** Positional {@code FileChannel.read}, straight into the result for F32 (the default: measured fastest). */
        CHANNEL,
        /** {@code FileChannel.map} of one chunk at a time, copied out and unmapped at once (never left mapped). */
        MMAP
    }

    static final int DEFAULT_CHUNK_BYTES = 4 << 20;

    private final Path source;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;
    private final TensorReader reader;

    private Safetensors(Path source, Map<String, Entry> entries, Map<String, String> metadata, TensorReader reader) {
        this.source = source;
        this.entries = Collections.unmodifiableMap(new TreeMap<>(entries));
        this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        this.reader = reader;
    }

    // ---------------------------------------------------------------------------------------------- opening

    /** Opens a .safetensors file, or a directory holding model.safetensors or a sharded checkpoint. */
    public static Safetensors open(Path fileOrDir) {
        return open(fileOrDir, ReadMode.CHANNEL);
    }

    /** Opens a file or checkpoint directory, reading tensor bytes with the given {@link ReadMode}. */
    public static Safetensors open(Path fileOrDir, ReadMode mode) {
        return open(fileOrDir, mode, DEFAULT_CHUNK_BYTES);
    }

    static Safetensors open(Path fileOrDir, ReadMode mode, int chunkBytes) {
        return open(fileOrDir, mode, chunkBytes, true);
    }

    /** Package-private knobs for tests: chunk size, and whether CPU loads may write into the result's memory. */
    static Safetensors open(Path fileOrDir, ReadMode mode, int chunkBytes, boolean writeIntoViews) {
        Objects.requireNonNull(fileOrDir, "fileOrDir");
        Objects.requireNonNull(mode, "mode");
        if (chunkBytes < Float.BYTES) {
            throw new IllegalArgumentException("chunkBytes must be at least 4, got " + chunkBytes);
        }
        Path file = checkpointFile(fileOrDir);
        if (file.getFileName().toString().endsWith(".index.json")) {
            SafetensorsIndex.Opened opened = SafetensorsIndex.open(file);
            return new Safetensors(file, opened.entries(), opened.metadata(),
                    new TensorReader(file, opened.shards(), mode, chunkBytes, writeIntoViews));
        }
        Parsed parsed = SafetensorsHeader.parse(file);
        return new Safetensors(file, parsed.entries(), parsed.metadata(),
                new TensorReader(file, List.of(parsed.shard()), mode, chunkBytes, writeIntoViews));
    }

    /** The file to open: the path itself, or in a directory model.safetensors, else its index. */
    private static Path checkpointFile(Path fileOrDir) {
        if (Files.isDirectory(fileOrDir)) {
            // model.safetensors first, as Hugging Face transformers does when both are present.
            for (String name : List.of(SafetensorsIndex.SINGLE_FILE, SafetensorsIndex.INDEX_FILE)) {
                if (Files.isRegularFile(fileOrDir.resolve(name))) {
                    return fileOrDir.resolve(name);
                }
            }
            List<String> found = safetensorsFilesIn(fileOrDir);
            throw new CheckpointException(fileOrDir, "no " + SafetensorsIndex.SINGLE_FILE + " or "
                    + SafetensorsIndex.INDEX_FILE + " in this directory"
                    + (found.isEmpty() ? "" : "; it holds " + found + ", open one of those files directly"));
        }
        if (!Files.exists(fileOrDir)) {
            throw new CheckpointException(fileOrDir, "no such file or directory");
        }
        return fileOrDir;
    }

    private static List<String> safetensorsFilesIn(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".safetensors") || n.endsWith(".safetensors.index.json"))
                    .sorted().limit(10).collect(Collectors.toList());
        } catch (IOException e) {
            return List.of();
        }
    }

    // ---------------------------------------------------------------------------------------------- queries

    /** All tensor names, sorted. */
    public Set<String> names() {
        return entries.keySet();
    }

    /** Whether a tensor of this name exists. */
    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    /** Name, dtype and shape of a tensor; throws naming the nearest names if there is none. */
    public TensorInfo info(String name) {
        return entry(name).info();
    }

    /** Name, dtype and shape of every tensor, in name order. */
    public List<TensorInfo> infos() {
        return entries.values().stream().map(Entry::info).collect(Collectors.toUnmodifiableList());
    }

    /** The header's __metadata__ (for shards: merged, first shard wins); may be empty. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The file or index this was opened from. */
    public Path source() {
        return source;
    }

    @Override
    public String toString() {
        long bytes = entries.values().stream().mapToLong(e -> e.info().byteSize()).sum();
        Map<DType, Long> dtypes = entries.values().stream()
                .collect(Collectors.groupingBy(e -> e.info().dtype(), TreeMap::new, Collectors.counting()));
        int shards = reader.shardCount();
        return "Safetensors(" + source.getFileName() + ", " + entries.size() + " tensors, " + dtypes.keySet()
                + ", " + String.format(Locale.ROOT, "%.1f MB", bytes / 1e6) + (shards > 1 ? ", " + shards + " shards" : "")
                + ")";
    }

    private Entry entry(String name) {
        Objects.requireNonNull(name, "name");
        Entry e = entries.get(name);
        if (e == null) {
            throw new IllegalArgumentException("no tensor '" + name + "' in " + source + " (" + entries.size()
                    + " tensors); nearest: " + Names.nearest(name, entries.keySet(), 5));
        }
        return e;
    }

    // ---------------------------------------------------------------------------------------------- loading

    /** Loads a tensor as FLOAT32 on the manager's device (F16/BF16/F64 converted in Java). */
    public NDArray load(String name, NDManager manager) {
        Objects.requireNonNull(manager, "manager");
        return reader.load(loadable(name), manager);
    }

    /** Loads a tensor into a Java float array (F16/BF16/F64 converted); at most ~2^31 elements. */
    public float[] loadFloats(String name) {
        Entry e = loadable(name);
        long n = e.info().numel();
        if (n > TensorReader.MAX_JAVA_ARRAY) {
            throw new CheckpointException(e.shard().file(), "tensor '" + name + "' has " + n
                    + " elements, more than a Java array holds; use load(name, manager)");
        }
        return reader.loadFloats(e);
    }

    /** Loads an integer tensor (I64, or I32 widened) into a Java long array, e.g. token ids; at most ~2^31 elements. */
    public long[] loadLongs(String name) {
        Entry e = entry(name);
        DType dtype = e.info().dtype();
        if (dtype != DType.I64 && dtype != DType.I32) {
            throw new CheckpointException(e.shard().file(), "tensor '" + name + "' has dtype " + dtype
                    + "; loadLongs reads I64 and I32 tensors");
        }
        if (e.info().numel() > TensorReader.MAX_JAVA_ARRAY) {
            throw new CheckpointException(e.shard().file(), "tensor '" + name + "' has " + e.info().numel()
                    + " elements, more than a Java array holds");
        }
        return reader.loadLongs(e);
    }

    private Entry loadable(String name) {
        Entry e = entry(name);
        DType dtype = e.info().dtype();
        if (!dtype.isLoadableAsF32()) {
            throw new CheckpointException(e.shard().file(), "tensor '" + name + "' has dtype " + dtype
                    + "; only F32, F16, BF16 and F64 tensors can be loaded as float32");
        }
        return e;
    }

    /** Closes the files and frees the staging buffers; never throws. */
    @Override
    public void close() {
        reader.close();
    }

    // ---------------------------------------------------------------------------------------------- writing

    /** Writes tensors as F32 without metadata. */
    public static void write(Path file, Map<String, NDArray> tensors) {
        write(file, tensors, Map.of(), DType.F32);
    }

    /** Writes tensors (in map order) as F32, F16 or BF16, narrowing in Java with round-to-nearest-even. */
    public static void write(Path file, Map<String, NDArray> tensors, Map<String, String> metadata, DType dtype) {
        SafetensorsWriter.write(file, tensors, metadata, dtype);
    }

    /** Writes long arrays (token ids, ...) with the given shapes (in map order) as I64, atomically like the rest. */
    public static void writeLongs(Path file, Map<String, long[]> tensors, Map<String, long[]> shapes,
            Map<String, String> metadata) {
        SafetensorsWriter.writeLongs(file, tensors, shapes, metadata);
    }

    /** Writes float arrays with the given shapes (in map order) as F32, F16 or BF16, without NDArrays. */
    public static void writeFloats(Path file, Map<String, float[]> tensors, Map<String, long[]> shapes,
            Map<String, String> metadata, DType dtype) {
        SafetensorsWriter.writeFloats(file, tensors, shapes, metadata, dtype);
    }
}
