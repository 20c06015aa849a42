package dev.jlens.store;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.jlens.io.CheckpointException;
import dev.jlens.io.Checkpoints;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The {@code manifest.json} of an activation cache: what the rows are (models, hooks, widths, whether BOS is
 * excluded, normalisation scales) and the complete shards with their size, CRC32C and the row-stream cursor after
 * them (a rebuild of the next shard starts there). {@code probe} holds a few activation values of a fixed three-token
 * input and {@code tokensCrc} a checksum of the first token batch: a resume with other models, hooks or data is
 * refused. Written atomically, so a reader never sees a half-written one.
 */
record CacheManifest(String format, int version, List<String> models, List<String> hooks, List<Integer> dims,
        int width, boolean excludeBos, int rowsPerShard, long targetRows, boolean complete, boolean sourceExhausted,
        double normalizationScale, List<Double> sourceScales, int normSamples, List<Double> probe, long tokensCrc,
        List<ShardEntry> shards) {

    static final String FILE = "manifest.json";
    static final String FORMAT = "jlens-activations";
    static final int VERSION = 1;

    private static final ObjectMapper JSON = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    /** One complete shard, and where the row stream stood after it. */
    record ShardEntry(String file, int rows, long bytes, String crc32c, long endBatch, int endRow) {
        RowStream.Cursor end() {
            return new RowStream.Cursor(endBatch, endRow);
        }
    }

    CacheManifest {
        shards = List.copyOf(shards);
    }

    /** Rows in the recorded shards. */
    long rows() {
        return shards.stream().mapToLong(ShardEntry::rows).sum();
    }

    /** The same description with other shards and build state. */
    CacheManifest with(List<ShardEntry> newShards, long newTarget, boolean newComplete, boolean exhausted) {
        return new CacheManifest(format, version, models, hooks, dims, width, excludeBos, rowsPerShard, newTarget,
                newComplete, exhausted, normalizationScale, sourceScales, normSamples, probe, tokensCrc, newShards);
    }

    /** Throws listing every difference unless a cache described by this can be resumed by a build of {@code want}. */
    void checkResumableBy(CacheManifest want, Path dir) {
        List<String> diffs = new ArrayList<>();
        if (!FORMAT.equals(format) || version != want.version()) {
            diffs.add("format " + format + " v" + version + " (expected " + FORMAT + " v" + want.version() + ")");
        }
        if (!hooks.equals(want.hooks())) diffs.add("hooks " + hooks + " vs " + want.hooks());
        if (!dims.equals(want.dims())) diffs.add("source widths " + dims + " vs " + want.dims());
        if (excludeBos != want.excludeBos()) diffs.add("excludeBos " + excludeBos + " vs " + want.excludeBos());
        if (rowsPerShard != want.rowsPerShard()) diffs.add("rowsPerShard " + rowsPerShard + " vs " + want.rowsPerShard());
        if (tokensCrc != want.tokensCrc()) diffs.add("the first token batch differs (another data source)");
        if (!close(probe, want.probe())) diffs.add("the models' activations differ (other models or weights)");
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

    /** The manifest in {@code dir}; throws if there is none. */
    static CacheManifest read(Path dir) {
        return find(dir).orElseThrow(() -> new CheckpointException(dir.resolve(FILE), "no activation cache here (no "
                + FILE + "); build one with ActivationStore.builder()...build().cache(dir, nRows)"));
    }

    /** The manifest in {@code dir}, if a build has started there. */
    static Optional<CacheManifest> find(Path dir) {
        Path file = dir.resolve(FILE);
        if (!Files.isRegularFile(file)) return Optional.empty();
        try {
            CacheManifest m = JSON.readValue(file.toFile(), CacheManifest.class);
            if (m.shards() == null || m.hooks() == null || m.dims() == null) {
                throw new CheckpointException(file, "manifest lacks shards, hooks or dims; delete the directory to "
                        + "rebuild the cache");
            }
            return Optional.of(m);
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read the cache manifest: " + e.getMessage()
                    + "; delete the directory to rebuild the cache", e);
        }
    }

    /** Replaces the manifest in {@code dir} atomically: a temporary file, flushed, renamed over it. */
    void write(Path dir) {
        Path file = dir.resolve(FILE);
        try {
            Checkpoints.writeAtomically(file, JSON.writeValueAsBytes(this));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }
}
