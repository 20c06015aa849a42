package dev.jlens.store;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;

import java.util.Arrays;
import java.util.Optional;
import java.util.function.UnaryOperator;

/** Views of a multi-source {@link ActivationSource}: some of its sources, or the difference of two. */
final class SourceViews {
    /** Rows of the first batch that estimate a view's normalization scale. */
    static final int SCALE_ROWS = 4096;

    private SourceViews() {}

    static ActivationSource select(ActivationSource src, int... sources) {
        int n = src.nSources();
        if (sources == null || sources.length == 0) {
            throw new IllegalArgumentException("select at least one source of " + n);
        }
        for (int s : sources) {
            if (s < 0 || s >= n) throw new IllegalArgumentException("source " + s + " does not exist: this source "
                    + "concatenates " + n + " (0.." + (n - 1) + ")");
        }
        if (Arrays.stream(sources).distinct().count() != sources.length) {
            throw new IllegalArgumentException("select names a source twice: " + Arrays.toString(sources));
        }
        int d = src.width() / n;
        int[] picked = sources.clone();
        return new View(src, picked.length * d, picked.length, x -> {
            NDList parts = new NDList();
            for (int s : picked) parts.add(x.get(new NDIndex(":, {}:{}", s * d, (s + 1) * d)));
            return parts.size() == 1 ? parts.get(0) : ai.djl.ndarray.NDArrays.concat(parts, -1);
        }, "select" + Arrays.toString(picked));
    }

    static ActivationSource difference(ActivationSource src, int minuend, int subtrahend) {
        int n = src.nSources();
        for (int s : new int[] {minuend, subtrahend}) {
            if (s < 0 || s >= n) throw new IllegalArgumentException("source " + s + " does not exist: this source "
                    + "concatenates " + n + " (0.." + (n - 1) + ")");
        }
        if (minuend == subtrahend) throw new IllegalArgumentException("the difference of source " + minuend
                + " with itself is zero");
        int d = src.width() / n;
        return new View(src, d, 1, x -> x.get(new NDIndex(":, {}:{}", minuend * d, (minuend + 1) * d))
                .sub(x.get(new NDIndex(":, {}:{}", subtrahend * d, (subtrahend + 1) * d))),
                "difference(" + minuend + " - " + subtrahend + ")");
    }

    static ActivationSource withScale(ActivationSource src, double scale) {
        if (!(scale > 0) || Double.isInfinite(scale)) {
            throw new IllegalArgumentException("a normalization scale is positive and finite, got " + scale);
        }
        View v = new View(src, src.width(), src.nSources(), x -> x, String.format(java.util.Locale.ROOT,
                "scale %.6g", scale));
        v.scale = scale;
        return v;
    }

    /** A column transform of another source's batches, with its own normalization scale. */
    private static final class View implements ActivationSource {
        private final ActivationSource src;
        private final int width, nSources;
        private final UnaryOperator<NDArray> f;
        private final String label;
        private double scale = Double.NaN;

        View(ActivationSource src, int width, int nSources, UnaryOperator<NDArray> f, String label) {
            this.src = src;
            this.width = width;
            this.nSources = nSources;
            this.f = f;
            this.label = label;
        }

        @Override
        public int width() {
            return width;
        }

        @Override
        public int nSources() {
            return nSources;
        }

        @Override
        public Optional<String> hookPoint() {
            return src.hookPoint();
        }

        @Override
        public NDArray batch(long step, int batchSize, NDManager manager) {
            try (NDManager tmp = manager.newSubManager()) {
                NDArray out = f.apply(src.batch(step, batchSize, tmp)).duplicate();
                out.attach(manager);
                return out;
            }
        }

        @Override
        public synchronized double normalizationScale() {
            if (!Double.isNaN(scale)) return scale;
            if (src.normalizationScale() == 1.0) return scale = 1.0;   // the source estimates none
            try (NDManager m = NDManager.newBaseManager()) {
                NDArray x = batch(0, SCALE_ROWS, m);
                double meanSq = x.square().sum(new int[] {1}).mean().getFloat();
                if (!(meanSq > 0) || Double.isInfinite(meanSq)) {
                    throw new IllegalStateException("the " + label + " view's first " + SCALE_ROWS + " rows have mean "
                            + "squared norm " + meanSq + "; cannot normalise it");
                }
                return scale = 1 / Math.sqrt(meanSq);
            }
        }

        @Override
        public String toString() {
            return label + " of " + src;
        }
    }
}
