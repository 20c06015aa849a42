package dev.jlens.store;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * An activation store that reads rows from an on-disk cache ({@link StreamingStore#cache(Path, long)},
 * {@link ActivationStore#open(Path)}). Batch {@code step} reads rows {@code perm(step * B + k)} of the cache through
 * a seeded permutation of all its rows (a new one each epoch), a pure function of (seed, step) that costs nothing to
 * jump to. The normalisation scales are the ones the cache was built with.
 */
public final class CachedStore extends ActivationStore {

    private final ShardCache cache;
    private final double[] meanSquares;
    private RowPermutation permutation; // of the epoch read last

    CachedStore(ShardCache cache, long seed) {
        super(cache.manifest().models(), cache.manifest().hooks(),
                cache.manifest().dims().stream().mapToInt(Integer::intValue).toArray(), seed);
        this.cache = cache;
        this.meanSquares = new double[dims.length];
        for (int s = 0; s < dims.length; s++) {
            double scale = cache.manifest().sourceScales().get(s);
            meanSquares[s] = 1 / (scale * scale);
        }
        this.permutation = new RowPermutation(cache.rows(), seed, 0);
    }

    /** Rows in the cache. */
    @Override
    public OptionalLong rows() {
        return OptionalLong.of(cache.rows());
    }

    /** The cache directory. */
    @Override
    public Optional<Path> cacheDir() {
        return Optional.of(cache.dir());
    }

    @Override
    void fill(long first, int count, float[] out) {
        long n = cache.rows();
        for (int k = 0; k < count; k++) {
            long g = first + k;
            long epoch = g / n;
            if (epoch != permutation.epoch()) permutation = new RowPermutation(n, seed, epoch);
            cache.copyRow(permutation.apply(g % n), out, k);
        }
    }

    @Override
    double[] meanSquares() {
        return meanSquares;
    }

    @Override
    void release() {
        cache.close();
    }

    @Override
    public String toString() {
        long bytes = cache.bytes();
        String size = bytes < 1_000_000 ? String.format(Locale.ROOT, "%.1f kB", bytes / 1e3)
                : String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
        return String.format(Locale.ROOT, "ActivationStore(cache %s: %,d rows in %d shards, %s; %s, width %d, "
                + "scale %.4g, seed %d)", cache.dir().getFileName(), cache.rows(), cache.shardCount(), size,
                describeSources(), width, normalizationScale(), seed);
    }

    /** Row {@code index} of the cache, in data order (for tests). */
    float[] cachedRow(long index) {
        float[] out = new float[width];
        cache.copyRow(index, out, 0);
        return out;
    }
}
