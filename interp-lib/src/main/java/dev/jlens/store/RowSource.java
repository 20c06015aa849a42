package dev.jlens.store;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.Locale;
import java.util.Optional;

/**
 * Activation rows held in memory ({@code [rows, width]} floats, e.g. a tensor read from a safetensors file or
 * activations harvested in a notebook) served as an {@link ActivationSource}: each epoch visits every row once in an
 * order that depends only on (seed, epoch), so batch {@code step} is a pure function of (seed, step, batchSize).
 * The normalization scale brings the rows to unit mean squared norm, computed over all of them.
 *
 * <pre>{@code
 * ActivationSource src = RowSource.of(rows, d, 0);          // rows: float[n * d], row-major
 * SaeTrainer.train(sae, src, cfg);
 * }</pre>
 */
public final class RowSource implements ActivationSource {
    private final float[] data;
    private final int rows, width;
    private final long seed;
    private final Optional<String> hookPoint;
    private final double scale;
    private RowPermutation perm;

    private RowSource(float[] data, int width, long seed, Optional<String> hookPoint) {
        if (width < 1) throw new IllegalArgumentException("width must be >= 1, got " + width);
        if (data == null || data.length == 0 || data.length % width != 0) {
            throw new IllegalArgumentException("rows must be a non-empty [rows, width] array: " + (data == null ? 0
                    : data.length) + " values are not a whole number of rows of width " + width);
        }
        this.data = data;
        this.width = width;
        this.rows = data.length / width;
        this.seed = seed;
        this.hookPoint = hookPoint;
        double ss = 0;
        for (float v : data) ss += (double) v * v;
        if (!(ss > 0) || !Double.isFinite(ss)) {
            throw new IllegalArgumentException("the rows' sum of squares is " + ss + "; training needs finite, "
                    + "not all-zero activations");
        }
        this.scale = Math.sqrt(rows / ss);
    }

    /** Rows of {@code width} values, row-major in {@code data} (not copied: do not change them afterwards). */
    public static RowSource of(float[] data, int width, long seed) {
        return new RowSource(data, width, seed, Optional.empty());
    }

    /** Java rows {@code [n][width]} (copied into one array). */
    public static RowSource of(float[][] rows, long seed) {
        if (rows == null || rows.length == 0) throw new IllegalArgumentException("rows must not be empty");
        int w = rows[0].length;
        float[] flat = new float[Math.multiplyExact(rows.length, w)];
        for (int i = 0; i < rows.length; i++) {
            if (rows[i].length != w) {
                throw new IllegalArgumentException("row " + i + " has " + rows[i].length + " values, row 0 has " + w);
            }
            System.arraycopy(rows[i], 0, flat, i * w, w);
        }
        return of(flat, w, seed);
    }

    /** The same rows read at hook point {@code name} (it names the trained dictionary's hook). */
    public RowSource withHookPoint(String name) {
        return new RowSource(data, width, seed, Optional.of(name));
    }

    /** Number of rows. */
    public int rows() {
        return rows;
    }

    @Override
    public int width() {
        return width;
    }

    @Override
    public Optional<String> hookPoint() {
        return hookPoint;
    }

    @Override
    public synchronized NDArray batch(long step, int batchSize, NDManager manager) {
        if (step < 0 || batchSize < 1) {
            throw new IllegalArgumentException("step must be >= 0 and batchSize >= 1, got " + step + ", " + batchSize);
        }
        float[] out = new float[Math.multiplyExact(batchSize, width)];
        long first = Math.multiplyExact(step, (long) batchSize);
        for (int j = 0; j < batchSize; j++) {
            long g = first + j;
            long epoch = g / rows;
            if (perm == null || perm.epoch() != epoch) perm = new RowPermutation(rows, seed, epoch);
            int r = (int) perm.apply(g % rows);
            System.arraycopy(data, r * width, out, j * width, width);
        }
        return manager.create(out, new Shape(batchSize, width));
    }

    @Override
    public double normalizationScale() {
        return scale;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "RowSource[%d rows x %d%s, scale %.4g, seed %d]", rows, width,
                hookPoint.map(h -> " at " + h).orElse(""), scale, seed);
    }
}
