package dev.jlens.store;

import dev.jlens.model.Batch;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.zip.CRC32;

/**
 * An activation store that runs its models as batches are asked for ({@link ActivationStore#builder()}). Rows pass
 * through a shuffling buffer of {@link Options#bufferRows()} rows, filled from many contexts and topped up when half
 * empty; batch {@code step} holds rows {@code step * B .. (step + 1) * B - 1} of that shuffled stream, which is
 * deterministic in the seed. Asking for the next step is cheap; asking for a later step draws and discards the rows
 * in between, and an earlier one replays the stream from the start, so a resumed run gets exactly the batches it would
 * have had, at the cost of recomputing the activations before it. For cheap resumes write a cache with
 * {@link #cache(Path, long)}.
 */
public final class StreamingStore extends ActivationStore {

    private static final int PROBE_VALUES = 8;

    private final List<Source> sources;
    private final TokenBatches tokens;
    private final Options options;
    private final double[] probe;
    private ShuffleBuffer buffer; // made on the first batch, and again to rewind: it holds bufferRows rows
    private Optional<double[]> meanSquares = Optional.empty(); // estimated on first use

    private StreamingStore(List<Source> sources, TokenBatches tokens, Options options, int[] dims, double[] probe) {
        super(sources.stream().map(Source::label).toList(), sources.stream().map(Source::hook).toList(), dims,
                options.seed());
        this.sources = sources;
        this.tokens = tokens;
        this.options = options;
        this.probe = probe;
    }

    /** Runs the models once on a three-token probe, which gives each source's width and values that fingerprint it. */
    static StreamingStore create(List<Source> sources, TokenBatches tokens, Options options, int vocab) {
        long[] probeIds = {0, Math.min(1, vocab - 1), Math.min(2, vocab - 1)};
        float[][] acts = RowStream.capture(sources, Batch.of(new long[][] {probeIds}));
        int[] dims = new int[sources.size()];
        List<Double> values = new ArrayList<>();
        for (int s = 0; s < dims.length; s++) {
            dims[s] = acts[s].length / probeIds.length;
            for (int i = 0; i < Math.min(PROBE_VALUES, dims[s]); i++) values.add((double) acts[s][2 * dims[s] + i]);
        }
        return new StreamingStore(sources, tokens, options, dims, values.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /**
     * Writes (or resumes, or extends) an on-disk cache of the first {@code nRows} rows in data order, and returns a
     * store reading it with this store's seed. A finite token source stops the cache early. A build interrupted by a
     * crash or a cell interrupt resumes from its last complete shard when called again.
     */
    public CachedStore cache(Path dir, long nRows) {
        Objects.requireNonNull(dir, "dir");
        ensureOpen();
        CacheBuild.run(dir, nRows, header(nRows), this::stream);
        return open(dir, seed);
    }

    /** The manifest of a cache of {@code nRows} rows of this store, with no shards yet. */
    CacheManifest header(long nRows) {
        double scale = normalizationScale();
        List<Double> scales = new ArrayList<>();
        for (int s = 0; s < dims.length; s++) scales.add(sourceScale(s));
        return new CacheManifest(CacheManifest.FORMAT, CacheManifest.VERSION, labels, hooks, sourceWidths(), width,
                options.excludeBos(), options.shardRows(width), nRows, false, false, scale, scales,
                options.normSamples(), Arrays.stream(probe).boxed().toList(), tokensCrc(), List.of());
    }

    /** The token batches this store runs its models on. */
    TokenBatches tokens() {
        return tokens;
    }

    /**
     * Takes per-source sums of squared row norms over the first {@code count} rows, summed in data order as
     * {@link #estimateMeanSquares()} sums them, instead of estimating them (a partitioned build has the rows already).
     */
    void adoptSquaredNormSums(double[] sums, long count) {
        meanSquares = Optional.of(meansOf(sums, count));
    }

    /** The settings this store was built with. */
    @Override
    public Optional<Options> options() {
        return Optional.of(options);
    }

    /** Empty: a streaming store reads as many rows as its batches ask for. */
    @Override
    public OptionalLong rows() {
        return OptionalLong.empty();
    }

    @Override
    void fill(long first, int count, float[] out) {
        if (buffer == null || buffer.served() > first) {
            buffer = new ShuffleBuffer(() -> stream(RowStream.Cursor.START), width, options.bufferRows(), seed);
        }
        if (buffer.served() < first) buffer.skip(first - buffer.served(), out);
        buffer.next(out, 0, count);
    }

    @Override
    double[] meanSquares() {
        if (meanSquares.isEmpty()) {
            ensureOpen();
            meanSquares = Optional.of(estimateMeanSquares());
        }
        return meanSquares.get();
    }

    private double[] estimateMeanSquares() {
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
                    sums[src] += squaredNorm(buf, at, dims[src]);
                    at += dims[src];
                }
            }
            count += got;
        }
        return meansOf(sums, count);
    }

    /** The squared norm of {@code buf[at .. at + dim)}, summed in doubles in index order. */
    static double squaredNorm(float[] buf, int at, int dim) {
        double sq = 0;
        for (int i = 0; i < dim; i++) {
            float v = buf[at + i];
            sq += (double) v * v;
        }
        return sq;
    }

    private double[] meansOf(double[] sums, long count) {
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
        return means;
    }

    @Override
    void release() {
        buffer = null;
    }

    @Override
    public String toString() {
        String scale = meanSquares.isEmpty() ? "scale not estimated yet"
                : String.format(Locale.ROOT, "scale %.4g", normalizationScale());
        return String.format(Locale.ROOT, "ActivationStore(streaming %s, width %d, buffer %,d rows, %s, %s, seed %d%s)",
                describeSources(), width, options.bufferRows(), scale,
                options.excludeBos() ? "BOS excluded" : "BOS kept", seed,
                buffer == null ? "" : String.format(Locale.ROOT, ", %,d rows served", buffer.served()));
    }

    RowStream stream(RowStream.Cursor start) {
        return new RowStream(sources, dims, tokens, options.excludeBos(), start);
    }

    /** CRC32 of the first token batch: identifies the data source in the cache manifest. */
    private long tokensCrc() {
        Batch b = tokens.get(0);
        CRC32 crc = new CRC32();
        if (b == null) return crc.getValue(); // no data: the checksum of nothing
        ByteBuffer buf = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < b.size(); r++) {
            for (int p = 0; p < b.length(); p++) {
                buf.clear();
                // A padded position counts as id -1, so padding changes the checksum as a token would.
                buf.putLong(b.mask()[r][p] ? b.ids()[r][p] : -1);
                crc.update(buf.array());
            }
        }
        return crc.getValue();
    }

    /** The first {@code n} rows in data order (no shuffle), fresh from the models (for tests). */
    float[] rawRows(int n) {
        float[] out = new float[n * width];
        int got = stream(RowStream.Cursor.START).read(out, 0, n);
        return got == n ? out : Arrays.copyOf(out, got * width);
    }
}
