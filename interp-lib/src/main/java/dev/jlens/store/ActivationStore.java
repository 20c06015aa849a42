package dev.jlens.store;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Task;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.util.Tensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Collectors;
import java.util.zip.CRC32;

/**
 * Activation vectors of one or more (model, hook point) sources over a token dataset, served as step-addressed
 * batches for training sparse dictionaries. One source is an SAE's input; two models at one hook (base and
 * finetuned) a crosscoder's, concatenated source-major ({@code width = nSources * d_model}); several hooks of one
 * model come from one forward pass, and {@link #view(int)} serves each as its own {@link ActivationSource}.
 *
 * <pre>{@code
 * try (ActivationStore store = ActivationStore.builder()
 *         .source(model, "blocks.2.hook_resid_post")
 *         .tokens(TinyLang.defaults(), 32)
 *         .build()) {
 *     ActivationStore cached = store.cache(dir, 2_000_000);   // optional: resumable, step-addressed
 * }
 * }</pre>
 *
 * <p>Rows skip padding and, by default, the first token of each sequence (BOS, whose residual norm dwarfs the
 * others). Each model runs only as far as its deepest needed hook.
 *
 * <p><b>Streaming</b> (a store from {@link #builder()}): rows pass through a shuffling buffer of
 * {@link Options#bufferRows()} rows, filled from many contexts and topped up when half empty; batch {@code step}
 * holds rows {@code step * B .. (step + 1) * B - 1} of that shuffled stream, which is deterministic in the seed. Asking
 * for the next step is cheap; asking for a later step draws and discards the rows in between, and an earlier one
 * replays the stream from the start, so a resumed run gets exactly the batches it would have had, at the cost of
 * recomputing the activations before it. For cheap resumes use the on-disk cache.
 *
 * <p><b>Cached</b> ({@link #cache(Path, long)}, {@link #open(Path)}): batch {@code step} reads rows
 * {@code perm(step * B + k)} of the cache through a seeded permutation of all its rows (a new one each epoch), a
 * pure function of (seed, step) that costs nothing to jump to.
 *
 * <p>Batches are raw activations; multiply by {@link #normalizationScale()} for unit mean squared norm. The scale is
 * estimated from the first {@link Options#normSamples()} rows of the data, so a streaming store and its cache agree.
 * Returned arrays belong to the caller's manager; the store holds no native memory between calls.
 */
public final class ActivationStore implements ActivationSource, AutoCloseable {

    /** One (model, hook point) pair; {@code label} names the model in the cache manifest and in toString. */
    public record Source(String label, HookedTransformer model, String hook) {
        /** Checks the model has the hook point (the error suggests the nearest names). */
        public Source {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(hook, "hook");
            if (label == null || label.isBlank()) throw new IllegalArgumentException("a source needs a label");
            model.hook(hook);
        }

        @Override
        public String toString() {
            return label + ":" + hook;
        }
    }

    /**
     * Settings: shuffle buffer size in rows; whether to drop each sequence's first token; the seed of the shuffle and
     * of the cache's permutation; how many rows estimate the normalisation scale; rows per cache shard (0 = about
     * 64 MiB per shard).
     */
    public record Options(int bufferRows, boolean excludeBos, long seed, int normSamples, int rowsPerShard) {
        /** Validates the sizes. */
        public Options {
            if (bufferRows < 2) throw new IllegalArgumentException("bufferRows must be >= 2, got " + bufferRows);
            if (normSamples < 1) throw new IllegalArgumentException("normSamples must be >= 1, got " + normSamples);
            if (rowsPerShard < 0) {
                throw new IllegalArgumentException("rowsPerShard must be >= 1, or 0 for about 64 MiB shards; got "
                        + rowsPerShard);
            }
        }

        /** 65,536-row buffer, BOS excluded, seed 0, scale from 16,384 rows, ~64 MiB shards. */
        public static Options defaults() {
            return new Options(1 << 16, true, 0, 1 << 14, 0);
        }

        int shardRows(int width) {
            return rowsPerShard > 0 ? rowsPerShard : Math.max(1, (16 << 20) / width);
        }
    }

    /** Collects sources, tokens and options: {@code ActivationStore.builder().source(m, hook).tokens(task, 32).build()}. */
    public static final class Builder {
        private final List<Source> sources = new ArrayList<>();
        private final Map<HookedTransformer, String> labels = new IdentityHashMap<>();
        private TokenBatches tokens;
        private Options options = Options.defaults();

        private Builder() {}

        /** Adds a source, labelling the model {@code model0}, {@code model1}, ... in order of first use. */
        public Builder source(HookedTransformer model, String hook) {
            Objects.requireNonNull(model, "model");
            return source(labels.computeIfAbsent(model, m -> "model" + labels.size()), model, hook);
        }

        /** Adds a source with a label for its model (e.g. {@code "base"}, {@code "chat"}). */
        public Builder source(String label, HookedTransformer model, String hook) {
            labels.putIfAbsent(model, label);
            sources.add(new Source(label, model, hook));
            return this;
        }

        /** Adds several hook points of one model, read in one forward pass (e.g. one dictionary per layer). */
        public Builder hooks(HookedTransformer model, String... hooks) {
            for (String h : hooks) source(model, h);
            return this;
        }

        /** The token batches to run the models on. */
        public Builder tokens(TokenBatches batches) {
            this.tokens = Objects.requireNonNull(batches, "batches");
            return this;
        }

        /** A synthetic task's training contexts, {@code contextsPerBatch} per forward pass. */
        public Builder tokens(Task<?> task, int contextsPerBatch) {
            return tokens(TokenBatches.of(task, contextsPerBatch));
        }

        /** Texts tokenized by the first source's model, {@code textsPerBatch} per forward pass. */
        public Builder texts(List<String> texts, int textsPerBatch) {
            if (sources.isEmpty()) throw new IllegalStateException("add a source before texts(...): its tokenizer is used");
            return tokens(TokenBatches.texts(sources.get(0).model(), texts, textsPerBatch));
        }

        /** All options at once. */
        public Builder options(Options o) {
            this.options = Objects.requireNonNull(o, "options");
            return this;
        }

        /** Rows in the shuffling buffer (default 65,536). */
        public Builder bufferRows(int rows) {
            return options(new Options(rows, options.excludeBos(), options.seed(), options.normSamples(),
                    options.rowsPerShard()));
        }

        /** Whether to drop the first token of each sequence (default true). */
        public Builder excludeBos(boolean exclude) {
            return options(new Options(options.bufferRows(), exclude, options.seed(), options.normSamples(),
                    options.rowsPerShard()));
        }

        /** Seed of the shuffle and of the cache's permutation (default 0). */
        public Builder seed(long seed) {
            return options(new Options(options.bufferRows(), options.excludeBos(), seed, options.normSamples(),
                    options.rowsPerShard()));
        }

        /** Rows the normalisation scale is estimated from (default 16,384). */
        public Builder normSamples(int rows) {
            return options(new Options(options.bufferRows(), options.excludeBos(), options.seed(), rows,
                    options.rowsPerShard()));
        }

        /** Rows per cache shard (default: about 64 MiB per shard). */
        public Builder rowsPerShard(int rows) {
            return options(new Options(options.bufferRows(), options.excludeBos(), options.seed(),
                    options.normSamples(), rows));
        }

        /** A streaming store; runs the models once on a three-token probe to learn each source's width. */
        public ActivationStore build() {
            if (sources.isEmpty()) {
                throw new IllegalStateException("an ActivationStore needs at least one source: .source(model, hook)");
            }
            if (tokens == null) {
                throw new IllegalStateException("an ActivationStore needs tokens: .tokens(task, contextsPerBatch), "
                        + ".texts(texts, n) or .tokens(TokenBatches)");
            }
            int vocab = sources.get(0).model().cfg().dVocab();
            for (Source s : sources) {
                if (s.model().cfg().dVocab() != vocab) {
                    throw new IllegalArgumentException("the sources' models share token ids, but " + s.label()
                            + " has d_vocab " + s.model().cfg().dVocab() + " and " + sources.get(0).label() + " has "
                            + vocab);
                }
            }
            return new ActivationStore(List.copyOf(sources), tokens, options, vocab);
        }
    }

    /** Starts a streaming store. */
    public static Builder builder() {
        return new Builder();
    }

    /** Opens a cache built by {@link #cache(Path, long)}, served with seed 0. */
    public static ActivationStore open(Path dir) {
        return open(dir, 0);
    }

    /** Opens a cache built by {@link #cache(Path, long)}, its rows permuted by {@code seed}. */
    public static ActivationStore open(Path dir, long seed) {
        return new ActivationStore(ShardCache.open(dir), seed);
    }

    private static final int MANIFEST_VERSION = 1;
    private static final int PROBE_VALUES = 8;

    // What the store serves
    private final List<String> labels;
    private final List<String> hooks;
    private final int[] dims;
    private final int width;
    private final long seed;

    // Streaming mode
    private final List<Source> sources;
    private final TokenBatches tokens;
    private final Options options;
    private final double[] probe;
    private ShuffleBuffer buffer;

    // Cached mode
    private final ShardCache cache;
    private RowPermutation permutation;
    private long permutationEpoch = -1;

    private double[] sourceMeanSq; // per source, E||x_s||^2 over the first normSamples rows; null until estimated
    private long lastStep = -1;
    private int lastBatchSize;
    private float[] lastRows;
    private ByteBuffer staging;
    private boolean closed;

    private ActivationStore(List<Source> sources, TokenBatches tokens, Options options, int vocab) {
        this.sources = sources;
        this.tokens = tokens;
        this.options = options;
        this.seed = options.seed();
        this.cache = null;
        this.labels = sources.stream().map(Source::label).toList();
        this.hooks = sources.stream().map(Source::hook).toList();
        // A three-token probe gives each source's width, and a few values that fingerprint models and hooks.
        long[] probeIds = {0, Math.min(1, vocab - 1), Math.min(2, vocab - 1)};
        float[][] acts = RowStream.capture(sources, Batch.of(new long[][] {probeIds}));
        this.dims = new int[sources.size()];
        List<Double> values = new ArrayList<>();
        for (int s = 0; s < dims.length; s++) {
            dims[s] = acts[s].length / probeIds.length;
            for (int i = 0; i < Math.min(PROBE_VALUES, dims[s]); i++) values.add((double) acts[s][2 * dims[s] + i]);
        }
        this.probe = values.stream().mapToDouble(Double::doubleValue).toArray();
        this.width = Arrays.stream(dims).sum();
    }

    private ActivationStore(ShardCache cache, long seed) {
        ShardCache.Manifest m = cache.manifest();
        this.cache = cache;
        this.seed = seed;
        this.sources = List.of();
        this.tokens = null;
        this.options = null;
        this.probe = null;
        this.labels = List.copyOf(m.models());
        this.hooks = List.copyOf(m.hooks());
        this.dims = m.dims().stream().mapToInt(Integer::intValue).toArray();
        this.width = m.width();
        this.sourceMeanSq = new double[dims.length];
        for (int s = 0; s < dims.length; s++) {
            double scale = m.sourceScales().get(s);
            sourceMeanSq[s] = 1 / (scale * scale);
        }
    }

    // ------------------------------------------------------------------------------------------ ActivationSource

    /** Width of a row: the sum of the sources' widths. */
    @Override
    public int width() {
        return width;
    }

    /** Number of (model, hook) sources concatenated in a row. */
    @Override
    public int nSources() {
        return dims.length;
    }

    /** The hook point, or the sources' hook points joined with commas when they differ. */
    @Override
    public String hookName() {
        return hooks.stream().distinct().collect(Collectors.joining(","));
    }

    /** Batch {@code step} of raw activations {@code [batchSize, width]}, attached to {@code manager}. */
    @Override
    public synchronized NDArray batch(long step, int batchSize, NDManager manager) {
        return toArray(rows(step, batchSize), batchSize, 0, width, manager);
    }

    /** The factor that gives the rows unit mean squared norm: {@code 1 / sqrt(E||x||^2)} over the first rows. */
    @Override
    public synchronized double normalizationScale() {
        double sum = 0;
        for (double m : meanSquares()) sum += m;
        return 1 / Math.sqrt(sum);
    }

    // ------------------------------------------------------------------------------------------ more

    /** The normalisation scale of source {@code s} alone (what a dictionary on that source's {@link #view} uses). */
    public synchronized double sourceScale(int s) {
        checkSource(s);
        return 1 / Math.sqrt(meanSquares()[s]);
    }

    /** Source {@code s} alone, as its own source over the same rows: one dictionary per hook from one pass. */
    public ActivationSource view(int s) {
        checkSource(s);
        int from = Arrays.stream(dims, 0, s).sum();
        return new ActivationSource() {
            @Override
            public int width() {
                return dims[s];
            }

            @Override
            public String hookName() {
                return hooks.get(s);
            }

            @Override
            public NDArray batch(long step, int batchSize, NDManager manager) {
                synchronized (ActivationStore.this) {
                    return toArray(rows(step, batchSize), batchSize, from, dims[s], manager);
                }
            }

            @Override
            public double normalizationScale() {
                return sourceScale(s);
            }

            @Override
            public String toString() {
                return "ActivationStore.view(" + labels.get(s) + ":" + hooks.get(s) + ", width " + dims[s] + ")";
            }
        };
    }

    /** Hook point of each source, in concatenation order. */
    public List<String> hookNames() {
        return hooks;
    }

    /** Model label of each source, in concatenation order. */
    public List<String> labels() {
        return labels;
    }

    /** Width of each source, in concatenation order. */
    public List<Integer> sourceWidths() {
        return Arrays.stream(dims).boxed().toList();
    }

    /** The settings of a streaming store (empty for a store opened from a cache). */
    public Optional<Options> options() {
        return Optional.ofNullable(options);
    }

    /** Whether batches come from an on-disk cache. */
    public boolean isCached() {
        return cache != null;
    }

    /** Rows in the cache, or 0 for a streaming store. */
    public long rows() {
        return cache == null ? 0 : cache.rows();
    }

    /** The cache directory, if this store reads one. */
    public Optional<Path> cacheDir() {
        return cache == null ? Optional.empty() : Optional.of(cache.dir());
    }

    /**
     * Writes (or resumes, or extends) an on-disk cache of the first {@code nRows} rows in data order, and returns a
     * store reading it with this store's seed. A finite token source stops the cache early. A build interrupted by a
     * crash or a cell interrupt resumes from its last complete shard when called again.
     */
    public ActivationStore cache(Path dir, long nRows) {
        Objects.requireNonNull(dir, "dir");
        if (cache != null) throw new IllegalStateException("this store already reads a cache (" + cache.dir() + ")");
        ensureOpen();
        double scale = normalizationScale();
        List<Double> scales = new ArrayList<>();
        for (int s = 0; s < dims.length; s++) scales.add(sourceScale(s));
        ShardCache.Manifest header = new ShardCache.Manifest(ShardCache.FORMAT, MANIFEST_VERSION, labels, hooks,
                sourceWidths(), width, options.excludeBos(), options.shardRows(width), nRows, false, false, scale,
                scales, options.normSamples(), Arrays.stream(probe).boxed().toList(), tokensCrc(), List.of());
        ShardCache.build(dir, nRows, header, this::stream);
        return open(dir, seed);
    }

    /** Frees the buffers; further batches throw. Never throws. */
    @Override
    public synchronized void close() {
        closed = true;
        buffer = null;
        lastRows = null;
        staging = null;
        if (cache != null) cache.close();
    }

    @Override
    public String toString() {
        String what = dims.length == 1 ? labels.get(0) + ":" + hooks.get(0)
                : dims.length + " sources " + sources();
        String scale = sourceMeanSq == null ? "scale not estimated yet"
                : String.format(Locale.ROOT, "scale %.4g", normalizationScale());
        if (cache != null) {
            long bytes = cache.bytes();
            String size = bytes < 1_000_000 ? String.format(Locale.ROOT, "%.1f kB", bytes / 1e3)
                    : String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
            return String.format(Locale.ROOT, "ActivationStore(cache %s: %,d rows in %d shards, %s; %s, width %d, "
                    + "%s, seed %d)", cache.dir().getFileName(), cache.rows(), cache.shardCount(), size, what, width,
                    scale, seed);
        }
        return String.format(Locale.ROOT, "ActivationStore(streaming %s, width %d, buffer %,d rows, %s, %s, seed %d%s)",
                what, width, options.bufferRows(), scale, options.excludeBos() ? "BOS excluded" : "BOS kept", seed,
                buffer == null ? "" : String.format(Locale.ROOT, ", %,d rows served", buffer.served()));
    }

    private String sources() {
        List<String> parts = new ArrayList<>();
        for (int s = 0; s < dims.length; s++) parts.add(labels.get(s) + ":" + hooks.get(s));
        return parts.toString();
    }

    // ------------------------------------------------------------------------------------------ internals

    /** Rows of batch (step, batchSize), kept so that views of one step share one draw. */
    private float[] rows(long step, int batchSize) {
        ensureOpen();
        if (step < 0 || batchSize < 1) {
            throw new IllegalArgumentException("need step >= 0 and batchSize >= 1, got step " + step + ", batchSize "
                    + batchSize);
        }
        if (step == lastStep && batchSize == lastBatchSize) return lastRows;
        // One array reused while the batch size stays the same: a training loop makes no garbage here.
        float[] out = lastRows != null && lastRows.length == batchSize * width ? lastRows
                : new float[Math.multiplyExact(batchSize, width)];
        lastStep = -1;
        long first = Math.multiplyExact(step, (long) batchSize);
        if (cache != null) {
            long n = cache.rows();
            for (int k = 0; k < batchSize; k++) {
                long g = first + k;
                long epoch = g / n;
                if (epoch != permutationEpoch) {
                    permutation = new RowPermutation(n, seed, epoch);
                    permutationEpoch = epoch;
                }
                cache.copyRow(permutation.apply(g % n), out, k);
            }
        } else {
            if (buffer == null || buffer.served() > first) {
                buffer = new ShuffleBuffer(() -> stream(RowStream.Cursor.START), width, options.bufferRows(), seed);
            }
            if (buffer.served() < first) buffer.skip(first - buffer.served(), out);
            buffer.next(out, 0, batchSize);
        }
        lastStep = step;
        lastBatchSize = batchSize;
        lastRows = out;
        return out;
    }

    /** Columns {@code [from, from + cols)} of the rows as an engine-owned {@code [batchSize, cols]} array. */
    private NDArray toArray(float[] rows, int batchSize, int from, int cols, NDManager manager) {
        int n = batchSize * cols;
        if (staging == null || staging.capacity() < n * Float.BYTES) {
            staging = ByteBuffer.allocateDirect(n * Float.BYTES).order(ByteOrder.nativeOrder());
        }
        ByteBuffer buf = staging.duplicate().order(ByteOrder.nativeOrder());
        buf.clear();
        if (cols == width) {
            buf.asFloatBuffer().put(rows, 0, n);
        } else {
            java.nio.FloatBuffer f = buf.asFloatBuffer();
            for (int r = 0; r < batchSize; r++) f.put(rows, r * width + from, cols);
        }
        buf.limit(n * Float.BYTES);
        // The engine wraps the staging buffer without copying; the owned copy lets the buffer be reused next call.
        return Tensors.owned(manager.create(buf, new Shape(batchSize, cols), DataType.FLOAT32));
    }

    private RowStream stream(RowStream.Cursor start) {
        return new RowStream(sources, dims, tokens, options.excludeBos(), start);
    }

    /** Per-source mean squared norms over the first normSamples rows (estimated on first use). */
    private double[] meanSquares() {
        if (sourceMeanSq == null) {
            ensureOpen();
            RowStream s = stream(RowStream.Cursor.START);
            int chunk = 1024;
            float[] buf = new float[chunk * width];
            double[] sums = new double[dims.length];
            long count = 0;
            while (count < options.normSamples()) {
                int got = s.read(buf, 0, (int) Math.min(chunk, options.normSamples() - count));
                if (got == 0) break;
                for (int r = 0; r < got; r++) {
                    int at = r * width;
                    for (int src = 0; src < dims.length; src++) {
                        double sq = 0;
                        for (int i = 0; i < dims[src]; i++) {
                            float v = buf[at + i];
                            sq += (double) v * v;
                        }
                        sums[src] += sq;
                        at += dims[src];
                    }
                }
                count += got;
            }
            if (count == 0) {
                throw new IllegalStateException("the token source gives no activation rows: it is empty, or every "
                        + "position is padding or BOS");
            }
            double[] means = new double[dims.length];
            for (int src = 0; src < dims.length; src++) {
                means[src] = sums[src] / count;
                if (!(means[src] > 0) || !Double.isFinite(means[src])) {
                    throw new IllegalStateException("source " + labels.get(src) + ":" + hooks.get(src) + " has mean "
                            + "squared norm " + means[src] + " over " + count + " rows; cannot normalise it");
                }
            }
            sourceMeanSq = means;
        }
        return sourceMeanSq;
    }

    /** CRC32 of the first token batch: identifies the data source in the cache manifest. */
    private long tokensCrc() {
        Batch b = tokens.get(0);
        if (b == null) return 0;
        CRC32 crc = new CRC32();
        ByteBuffer buf = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < b.size(); r++) {
            for (int p = 0; p < b.length(); p++) {
                buf.clear();
                buf.putLong(b.mask()[r][p] ? b.ids()[r][p] : -1);
                crc.update(buf.array());
            }
        }
        return crc.getValue();
    }

    private void checkSource(int s) {
        if (s < 0 || s >= dims.length) {
            throw new IndexOutOfBoundsException("source " + s + " out of range: this store has " + dims.length
                    + " sources " + sources());
        }
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("this ActivationStore is closed");
    }

    // Package-private access for tests.

    /** The first {@code n} rows in data order (no shuffle), fresh from the models. */
    float[] rawRows(int n) {
        float[] out = new float[n * width];
        int got = stream(RowStream.Cursor.START).read(out, 0, n);
        return got == n ? out : Arrays.copyOf(out, got * width);
    }

    /** Row {@code index} of the cache, in data order. */
    float[] cachedRow(long index) {
        float[] out = new float[width];
        cache.copyRow(index, out, 0);
        return out;
    }
}
