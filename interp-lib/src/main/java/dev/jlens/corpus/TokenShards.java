package dev.jlens.corpus;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.io.CheckpointException;
import dev.jlens.io.Safetensors;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Pretokenized, packed windows on disk: {@code DIR/shard-00000.safetensors}, ... (names sort in order), each an int64
 * tensor {@code input_ids [windows, contextSize]}, and {@code DIR/manifest.json} with each shard's window count,
 * size and SHA-256, the tokenizer's hash, the packing settings and the counts (rows, tokens, windows). Written by
 * {@link Pretokenize} ({@code ./lab pretokenize}); read back window by window, each shard checked against its
 * checksum when it is loaded.
 */
public final class TokenShards {

    /** The manifest's format tag. */
    public static final String FORMAT = "jlens-token-shards/1";
    /** The manifest file in a shard directory. */
    public static final String MANIFEST = "manifest.json";
    /** The tensor each shard holds. */
    public static final String TENSOR = "input_ids";

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Pattern SHARD_NAME = Pattern.compile("shard-\\d{5,}\\.safetensors");

    /** One shard as the manifest lists it. */
    public record Shard(String file, int windows, long bytes, String sha256) {}

    private final Path dir;
    private final JsonNode manifest;
    private final int contextSize;
    private final List<Shard> shards;
    private final long[] firstWindow; // index of each shard's first window; last entry = total
    private int loadedShard = -1;
    private long[] loaded;

    private TokenShards(Path dir, JsonNode manifest, int contextSize, List<Shard> shards) {
        this.dir = dir;
        this.manifest = manifest;
        this.contextSize = contextSize;
        this.shards = List.copyOf(shards);
        this.firstWindow = new long[shards.size() + 1];
        for (int i = 0; i < shards.size(); i++) firstWindow[i + 1] = firstWindow[i] + shards.get(i).windows();
    }

    /** Opens a shard directory: reads its manifest and checks that every listed shard is there with its size. */
    public static TokenShards open(Path dir) {
        Objects.requireNonNull(dir, "dir");
        Path m = dir.resolve(MANIFEST);
        if (!Files.isRegularFile(m)) {
            throw new CorpusException("no " + MANIFEST + " in " + dir + ": not a token shard directory (write one with "
                    + "./lab pretokenize or Pretokenize.run)");
        }
        JsonNode root;
        try {
            root = JSON.readTree(m.toFile());
        } catch (IOException e) {
            throw new CorpusException("cannot read " + m + ": " + e.getMessage(), e);
        }
        if (!FORMAT.equals(root.path("format").asText())) {
            throw new CorpusException(m + " has format '" + root.path("format").asText() + "', expected " + FORMAT);
        }
        int n = root.path("context_size").asInt(0);
        if (n < 1) throw new CorpusException(m + " has no valid context_size");
        List<Shard> shards = new ArrayList<>();
        for (JsonNode s : root.path("shards")) {
            Shard shard = new Shard(s.path("file").asText(), s.path("windows").asInt(), s.path("bytes").asLong(),
                    s.path("sha256").asText());
            if (!SHARD_NAME.matcher(shard.file()).matches()) {
                throw new CorpusException(m + " lists '" + shard.file() + "', which is not a shard file name");
            }
            Path f = dir.resolve(shard.file());
            if (!Files.isRegularFile(f)) {
                throw new CorpusException("shard " + f + " is missing (listed in " + m + "); run ./lab pretokenize again");
            }
            long size = size(f);
            if (size != shard.bytes()) {
                throw new CorpusException("shard " + f + " is corrupt: " + size + " bytes, the manifest says "
                        + shard.bytes() + "; run ./lab pretokenize again");
            }
            shards.add(shard);
        }
        return new TokenShards(dir, root, n, shards);
    }

    /** Tokens per window. */
    public int contextSize() {
        return contextSize;
    }

    /** Number of windows in all shards. */
    public long windows() {
        return firstWindow[shards.size()];
    }

    /** The shards, in order. */
    public List<Shard> shards() {
        return shards;
    }

    /** The directory. */
    public Path dir() {
        return dir;
    }

    /** The manifest as read (settings, tokenizer hash, counts). */
    public JsonNode manifest() {
        return manifest.deepCopy();
    }

    /** Windows {@code [from, from + count)} (fewer past the end), loading (and checking) shards as needed. */
    public synchronized long[][] windows(long from, int count) {
        if (from < 0) throw new IllegalArgumentException("from must be >= 0, got " + from);
        long end = Math.min(windows(), from + count);
        List<long[]> out = new ArrayList<>();
        for (long w = from; w < end; w++) out.add(window(w));
        return out.toArray(long[][]::new);
    }

    /** Window {@code index} (0-based over all shards). */
    public synchronized long[] window(long index) {
        if (index < 0 || index >= windows()) {
            throw new IndexOutOfBoundsException("window " + index + " of " + windows() + " in " + dir);
        }
        int s = Arrays.binarySearch(firstWindow, index);
        s = s >= 0 ? s : -s - 2;
        while (shards.get(s).windows() == 0 || index >= firstWindow[s + 1]) s++;
        if (s != loadedShard) {
            loaded = load(s);
            loadedShard = s;
        }
        int row = (int) (index - firstWindow[s]);
        return Arrays.copyOfRange(loaded, row * contextSize, (row + 1) * contextSize);
    }

    /** Checks every shard against its checksum; throws naming the first that does not match. */
    public void verify() {
        for (int s = 0; s < shards.size(); s++) load(s);
    }

    private long[] load(int s) {
        Shard shard = shards.get(s);
        Path f = dir.resolve(shard.file());
        if (!Files.isRegularFile(f)) {
            throw new CorpusException("shard " + f + " is missing (listed in " + dir.resolve(MANIFEST) + ")");
        }
        String sha = sha256(f);
        if (!sha.equals(shard.sha256())) {
            throw new CorpusException("shard " + f + " is corrupt: its SHA-256 is " + sha + ", the manifest says "
                    + shard.sha256() + "; run ./lab pretokenize again");
        }
        try (Safetensors st = Safetensors.open(f)) {
            long[] shape = st.info(TENSOR).shape();
            if (shape.length != 2 || shape[0] != shard.windows() || shape[1] != contextSize) {
                throw new CorpusException("shard " + f + " holds " + TENSOR + " " + Arrays.toString(shape)
                        + ", the manifest says [" + shard.windows() + ", " + contextSize + "]");
            }
            return st.loadLongs(TENSOR);
        } catch (CheckpointException e) {
            throw new CorpusException("shard " + f + " is corrupt: " + e.getMessage(), e);
        }
    }

    @Override
    public String toString() {
        return "TokenShards[" + dir + ", " + windows() + " windows of " + contextSize + " tokens in " + shards.size()
                + (shards.size() == 1 ? " shard]" : " shards]");
    }

    // ------------------------------------------------------------------------------------------------ writing

    /** Writes windows into shards of {@code windowsPerShard}, then the manifest; see {@link Pretokenize}. */
    static final class Writer {
        private final Path dir;
        private final int contextSize;
        private final int windowsPerShard;
        private final long[] buffer;
        private int buffered;
        private final List<Shard> written = new ArrayList<>();

        Writer(Path dir, int contextSize, int windowsPerShard) {
            if (windowsPerShard < 1) throw new IllegalArgumentException("windowsPerShard must be >= 1, got " + windowsPerShard);
            this.dir = dir;
            this.contextSize = contextSize;
            this.windowsPerShard = windowsPerShard;
            this.buffer = new long[Math.multiplyExact(windowsPerShard, contextSize)];
            try {
                Files.createDirectories(dir);
                // Old shards and manifest would mix with the new ones: start clean.
                Files.deleteIfExists(dir.resolve(MANIFEST));
                try (var files = Files.list(dir)) {
                    for (Path f : (Iterable<Path>) files::iterator) {
                        if (SHARD_NAME.matcher(f.getFileName().toString()).matches()) Files.delete(f);
                    }
                }
            } catch (IOException e) {
                throw new CorpusException("cannot prepare " + dir + ": " + e.getMessage(), e);
            }
        }

        void add(long[] window) {
            if (window.length != contextSize) {
                throw new IllegalArgumentException("window of " + window.length + " tokens, shards hold " + contextSize);
            }
            System.arraycopy(window, 0, buffer, buffered * contextSize, contextSize);
            if (++buffered == windowsPerShard) flush();
        }

        /** Writes the windows buffered so far as a shard (none: nothing). */
        void flush() {
            if (buffered == 0) return;
            String name = String.format(Locale.ROOT, "shard-%05d.safetensors", written.size());
            Path f = dir.resolve(name);
            long[] values = buffered == windowsPerShard ? buffer : Arrays.copyOf(buffer, buffered * contextSize);
            Safetensors.writeLongs(f, Map.of(TENSOR, values), Map.of(TENSOR, new long[] {buffered, contextSize}),
                    Map.of("format", FORMAT));
            written.add(new Shard(name, buffered, size(f), sha256(f)));
            buffered = 0;
        }

        List<Shard> shards() {
            return written;
        }

        /** Writes the last shard, then the manifest: {@code fields} with the shard list added. */
        void finish(ObjectNode fields) {
            flush();
            ObjectNode root = JSON.createObjectNode();
            root.put("format", FORMAT);
            root.put("tensor", TENSOR);
            root.put("context_size", contextSize);
            root.setAll(fields);
            ArrayNode list = root.putArray("shards");
            for (Shard s : written) {
                list.addObject().put("file", s.file()).put("windows", s.windows()).put("bytes", s.bytes())
                        .put("sha256", s.sha256());
            }
            Path m = dir.resolve(MANIFEST);
            Path tmp = dir.resolve("." + MANIFEST + ".tmp");
            try {
                JSON.writeValue(tmp.toFile(), root);
                try {
                    Files.move(tmp, m, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, m, StandardCopyOption.REPLACE_EXISTING);
                }
            } catch (IOException e) {
                throw new CorpusException("cannot write " + m + ": " + e.getMessage(), e);
            }
        }
    }

    static long size(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            throw new CorpusException("cannot read " + f + ": " + e.getMessage(), e);
        }
    }

    /** Hex SHA-256 of a file's bytes. */
    public static String sha256(Path f) {
        try (InputStream in = Files.newInputStream(f)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            throw new CorpusException("cannot read " + f + ": " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
