package dev.jlens.store;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Task;
import dev.jlens.model.HookedTransformer;
import dev.jlens.util.Tensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.stream.Collectors;

/**
 * Activation vectors of one or more (model, hook point) sources over a token dataset, served as step-addressed
 * batches for training sparse dictionaries. One source is an SAE's input; two models at one hook (base and
 * finetuned) a crosscoder's, concatenated source-major ({@code width = nSources * d_model}); several hooks of one
 * model come from one forward pass, and {@link #view(int)} serves each as its own {@link ActivationSource}.
 *
 * <pre>{@code
 * try (StreamingStore store = ActivationStore.builder()
 *         .source(model, "blocks.2.hook_resid_post")
 *         .tokens(TinyLang.defaults(), 32)
 *         .build()) {
 *     CachedStore cached = store.cache(dir, 2_000_000);   // optional: resumable, step-addressed
 * }
 * }</pre>
 *
 * <p>Rows skip padding and, by default, the first token of each sequence (BOS, whose residual norm dwarfs the
 * others). Each model runs only as far as its deepest needed hook.
 *
 * <p>A store is one of two kinds. A {@link StreamingStore} ({@link #builder()}) runs the models as batches are asked
 * for, through a shuffling buffer; a {@link CachedStore} ({@link StreamingStore#cache(Path, long)},
 * {@link #open(Path)}) reads rows written to disk, through a seeded permutation. Both serve batch {@code step} as a
 * pure function of (seed, step), so a resumed run gets exactly the batches it would have had.
 *
 * <p>Batches are raw activations; multiply by {@link #normalizationScale()} for unit mean squared norm. The scale is
 * estimated from the first {@link Options#normSamples()} rows of the data, so a streaming store and its cache agree.
 * Returned arrays belong to the caller's manager; the store holds no native memory between calls.
 */
public abstract sealed class ActivationStore implements ActivationSource, AutoCloseable
        permits StreamingStore, CachedStore {

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
        public StreamingStore build() {
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
            return StreamingStore.create(List.copyOf(sources), tokens, options, vocab);
        }
    }

    /** Starts a streaming store. */
    public static Builder builder() {
        return new Builder();
    }

    /** Opens a cache built by {@link StreamingStore#cache(Path, long)}, served with seed 0. */
    public static CachedStore open(Path dir) {
        return open(dir, 0);
    }

    /** Opens a cache built by {@link StreamingStore#cache(Path, long)}, its rows permuted by {@code seed}. */
    public static CachedStore open(Path dir, long seed) {
        return new CachedStore(ShardCache.open(dir), seed);
    }

    /** A batch already drawn: its step and size. */
    private record BatchKey(long step, int batchSize) {}

    final List<String> labels;
    final List<String> hooks;
    final int[] dims;
    final int width;
    final long seed;

    // The rows of the last batch, kept so that views of one step share one draw; reused while the size stays.
    private Optional<BatchKey> lastKey = Optional.empty();
    private float[] lastRows = new float[0];
    private ByteBuffer staging = ByteBuffer.allocateDirect(0);
    private boolean closed;

    ActivationStore(List<String> labels, List<String> hooks, int[] dims, long seed) {
        this.labels = List.copyOf(labels);
        this.hooks = List.copyOf(hooks);
        this.dims = dims.clone();
        this.width = Arrays.stream(dims).sum();
        this.seed = seed;
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
    public String hookName() {
        return hooks.stream().distinct().collect(Collectors.joining(","));
    }

    /** {@link #hookName()}: a store always reads a model's hook points. */
    @Override
    public Optional<String> hookPoint() {
        return Optional.of(hookName());
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
            public Optional<String> hookPoint() {
                return Optional.of(hooks.get(s));
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
        return Optional.empty();
    }

    /** Whether batches come from an on-disk cache. */
    public boolean isCached() {
        return this instanceof CachedStore;
    }

    /** Rows held in an on-disk cache; empty for a streaming store, which has no fixed number of rows. */
    public abstract OptionalLong rows();

    /** The cache directory, if this store reads one. */
    public Optional<Path> cacheDir() {
        return Optional.empty();
    }

    /** Frees the buffers; further batches throw. Never throws. */
    @Override
    public final synchronized void close() {
        closed = true;
        lastKey = Optional.empty();
        lastRows = new float[0];
        staging = ByteBuffer.allocateDirect(0);
        release();
    }

    // ------------------------------------------------------------------------------------------ for the two kinds

    /** Fills {@code out} with rows {@code first .. first + count - 1} of the order this store serves them in. */
    abstract void fill(long first, int count, float[] out);

    /** Per-source mean squared norms over the first normSamples rows. */
    abstract double[] meanSquares();

    /** Frees what the kind holds; called once by {@link #close()}. */
    abstract void release();

    void ensureOpen() {
        if (closed) throw new IllegalStateException("this ActivationStore is closed");
    }

    /** {@code label:hook} of the one source, or {@code N sources [label:hook, ...]}. */
    String describeSources() {
        return dims.length == 1 ? labels.get(0) + ":" + hooks.get(0) : dims.length + " sources " + sourceList();
    }

    private String sourceList() {
        List<String> parts = new ArrayList<>();
        for (int s = 0; s < dims.length; s++) parts.add(labels.get(s) + ":" + hooks.get(s));
        return parts.toString();
    }

    /** Rows of batch (step, batchSize), kept so that views of one step share one draw. */
    private float[] rows(long step, int batchSize) {
        ensureOpen();
        if (step < 0 || batchSize < 1) {
            throw new IllegalArgumentException("need step >= 0 and batchSize >= 1, got step " + step + ", batchSize "
                    + batchSize);
        }
        BatchKey key = new BatchKey(step, batchSize);
        if (lastKey.filter(key::equals).isPresent()) return lastRows;
        // One array reused while the batch size stays the same: a training loop makes no garbage here.
        float[] out = lastRows.length == batchSize * width ? lastRows : new float[Math.multiplyExact(batchSize, width)];
        lastKey = Optional.empty(); // until the rows are all there
        fill(Math.multiplyExact(step, (long) batchSize), batchSize, out);
        lastKey = Optional.of(key);
        lastRows = out;
        return out;
    }

    /** Columns {@code [from, from + cols)} of the rows as an engine-owned {@code [batchSize, cols]} array. */
    private NDArray toArray(float[] rows, int batchSize, int from, int cols, NDManager manager) {
        int n = batchSize * cols;
        if (staging.capacity() < n * Float.BYTES) {
            staging = ByteBuffer.allocateDirect(n * Float.BYTES).order(ByteOrder.nativeOrder());
        }
        ByteBuffer buf = staging.duplicate().order(ByteOrder.nativeOrder());
        buf.clear();
        if (cols == width) {
            buf.asFloatBuffer().put(rows, 0, n);
        } else {
            FloatBuffer f = buf.asFloatBuffer();
            for (int r = 0; r < batchSize; r++) f.put(rows, r * width + from, cols);
        }
        buf.limit(n * Float.BYTES);
        // The engine wraps the staging buffer without copying; the owned copy lets the buffer be reused next call.
        return Tensors.owned(manager.create(buf, new Shape(batchSize, cols), DataType.FLOAT32));
    }

    private void checkSource(int s) {
        if (s < 0 || s >= dims.length) {
            throw new IndexOutOfBoundsException("source " + s + " out of range: this store has " + dims.length
                    + " sources " + sourceList());
        }
    }
}
