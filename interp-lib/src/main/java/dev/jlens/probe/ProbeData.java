package dev.jlens.probe;

import ai.djl.ndarray.NDArray;

import java.util.Arrays;
import java.util.Optional;

/**
 * A probing dataset: one activation row per example {@code x [n, d]}, its class label in {@code [0, nClasses)}, its
 * group (e.g. the sequence it came from: cross-validation never splits a group) and, optionally, its token type (e.g.
 * the token id: control tasks assign labels per type).
 *
 * <pre>{@code
 * var data = ProbeData.of(acts, labels, sequenceIndex).withTypes(tokenIds);
 * }</pre>
 *
 * @param x        activations, one row of {@code d} floats per example (not copied: do not change them afterwards)
 * @param labels   class of each row, {@code 0 <= label < nClasses}
 * @param groups   group of each row (any ints)
 * @param types    token type of each row, for control tasks
 * @param nClasses number of classes (at least 2, every class present)
 */
public record ProbeData(float[][] x, int[] labels, int[] groups, Optional<int[]> types, int nClasses) {

    /** Checks lengths, widths and labels; names the first problem found. */
    public ProbeData {
        if (x == null || labels == null || groups == null || types == null) {
            throw new IllegalArgumentException("x, labels and groups must not be null (types: Optional.empty())");
        }
        int n = x.length;
        if (n == 0) throw new IllegalArgumentException("a probe dataset needs at least one row, got none");
        if (labels.length != n || groups.length != n) {
            throw new IllegalArgumentException("mismatched lengths: x has " + n + " rows, labels " + labels.length
                    + ", groups " + groups.length + "; give one label and one group per row");
        }
        if (types.isPresent() && types.get().length != n) {
            throw new IllegalArgumentException("mismatched lengths: x has " + n + " rows, types "
                    + types.get().length + "; give one type per row");
        }
        int d = x[0] == null ? -1 : x[0].length;
        if (d < 1) throw new IllegalArgumentException("row 0 of x is empty or null; rows need d >= 1 values");
        for (int i = 0; i < n; i++) {
            if (x[i] == null || x[i].length != d) {
                throw new IllegalArgumentException("row " + i + " of x has " + (x[i] == null ? "no" : x[i].length)
                        + " values, row 0 has " + d + "; every row needs the same width");
            }
        }
        if (nClasses < 2) {
            throw new IllegalArgumentException("a probe needs at least 2 classes, got nClasses = " + nClasses);
        }
        int[] counts = new int[nClasses];
        for (int i = 0; i < n; i++) {
            if (labels[i] < 0 || labels[i] >= nClasses) {
                throw new IllegalArgumentException("label " + labels[i] + " at row " + i + " is out of range: valid "
                        + "labels are 0.." + (nClasses - 1) + " (nClasses = " + nClasses + ")");
            }
            counts[labels[i]]++;
        }
        for (int c = 0; c < nClasses; c++) {
            if (counts[c] == 0) {
                int present = 0;
                for (int k : counts) if (k > 0) present++;
                throw new IllegalArgumentException((present == 1 ? "single-class dataset: " : "")
                        + "class " + c + " has no rows; class counts " + Arrays.toString(counts)
                        + ". A probe needs examples of every class (relabel to 0..k-1 or lower nClasses)");
            }
        }
    }

    /** Rows, labels and groups; classes {@code 0..max(label)}. */
    public static ProbeData of(float[][] x, int[] labels, int[] groups) {
        return new ProbeData(x, labels, groups, Optional.empty(), maxPlusOne(labels));
    }

    /** Rows, labels and groups with an explicit number of classes. */
    public static ProbeData of(float[][] x, int[] labels, int[] groups, int nClasses) {
        return new ProbeData(x, labels, groups, Optional.empty(), nClasses);
    }

    /** Activations {@code [n, d]} (any float dtype, copied to Java), labels and groups. */
    public static ProbeData of(NDArray x, int[] labels, int[] groups) {
        return of(rows(x), labels, groups);
    }

    /** Every row its own group (no grouping constraint in cross-validation). */
    public static ProbeData ungrouped(float[][] x, int[] labels) {
        int[] g = new int[labels.length];
        for (int i = 0; i < g.length; i++) g[i] = i;
        return of(x, labels, g);
    }

    /** The same data with a token type per row (for {@link ControlTask}). */
    public ProbeData withTypes(int[] tokenTypes) {
        return new ProbeData(x, labels, groups, Optional.of(tokenTypes), nClasses);
    }

    /** The same rows, groups and types with other labels (e.g. a control task's). */
    public ProbeData withLabels(int[] newLabels) {
        return new ProbeData(x, newLabels, groups, types, nClasses);
    }

    /** The rows at {@code idx}, in that order. */
    public ProbeData subset(int[] idx) {
        float[][] xs = new float[idx.length][];
        int[] ys = new int[idx.length], gs = new int[idx.length];
        int[] ts = types.map(t -> new int[idx.length]).orElse(null);
        for (int i = 0; i < idx.length; i++) {
            xs[i] = x[idx[i]];
            ys[i] = labels[idx[i]];
            gs[i] = groups[idx[i]];
            if (ts != null) ts[i] = types.get()[idx[i]];
        }
        return new ProbeData(xs, ys, gs, Optional.ofNullable(ts), nClasses);
    }

    /** Number of rows. */
    public int size() {
        return x.length;
    }

    /** Width of a row. */
    public int dim() {
        return x[0].length;
    }

    /** Rows per class. */
    public int[] classCounts() {
        int[] c = new int[nClasses];
        for (int y : labels) c[y]++;
        return c;
    }

    /** The token types, or a clear error naming how to add them. */
    int[] requireTypes() {
        return types.orElseThrow(() -> new IllegalArgumentException("this dataset has no token types; a control "
                + "task needs one type per row: data.withTypes(tokenIds)"));
    }

    /** A 2-d array {@code [n, d]} as Java rows. */
    static float[][] rows(NDArray x) {
        if (x.getShape().dimension() != 2) {
            throw new IllegalArgumentException("activations must be [n, d], got shape " + x.getShape()
                    + "; reshape first (e.g. acts.reshape(-1, d_model))");
        }
        int n = (int) x.getShape().get(0), d = (int) x.getShape().get(1);
        float[] flat;
        if (x.getDataType() == ai.djl.ndarray.types.DataType.FLOAT32) {
            flat = x.toFloatArray();
        } else {
            try (NDArray f = x.toType(ai.djl.ndarray.types.DataType.FLOAT32, true)) {
                flat = f.toFloatArray();
            }
        }
        float[][] out = new float[n][];
        for (int i = 0; i < n; i++) out[i] = Arrays.copyOfRange(flat, i * d, (i + 1) * d);
        return out;
    }

    private static int maxPlusOne(int[] labels) {
        if (labels == null) throw new IllegalArgumentException("labels must not be null");
        int m = -1;
        for (int y : labels) {
            if (y < 0) {
                throw new IllegalArgumentException("label " + y + " is out of range: labels must be 0..k-1");
            }
            m = Math.max(m, y);
        }
        return Math.max(m + 1, 2);
    }

    @Override
    public String toString() {
        return "ProbeData(" + size() + " rows x " + dim() + ", classes " + Arrays.toString(classCounts()) + ", "
                + Arrays.stream(groups).distinct().count() + " groups" + (types.isPresent() ? ", typed" : "") + ")";
    }
}
