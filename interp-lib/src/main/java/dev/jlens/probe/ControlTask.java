package dev.jlens.probe;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Control tasks (Hewitt and Liang, 2019, "Designing and Interpreting Probes with Control Tasks"): every token type
 * gets one random label, drawn from the task's label distribution over rows, and every row of that type carries it.
 * A probe that does well on the control task is memorising types, not reading the property; selectivity is task
 * accuracy minus control accuracy.
 */
public final class ControlTask {
    private ControlTask() {}

    /**
     * Control labels for rows of the given types: consistent per type, drawn with the seed from the empirical
     * distribution of {@code labels}. Types are visited in ascending order, so the result does not depend on the order
     * of the rows. If a draw leaves a class without rows (few types) the next seed is tried, up to 100 times.
     */
    public static int[] labels(int[] types, int[] labels, int nClasses, long seed) {
        if (types == null || labels == null || types.length != labels.length) {
            throw new IllegalArgumentException("mismatched lengths: " + (types == null ? "no" : types.length)
                    + " types for " + (labels == null ? "no" : labels.length) + " labels; give one type per row");
        }
        double[] cumulative = new double[nClasses];
        for (int y : labels) {
            if (y < 0 || y >= nClasses) {
                throw new IllegalArgumentException("label " + y + " is out of range: valid labels are 0.."
                        + (nClasses - 1));
            }
            cumulative[y]++;
        }
        for (int c = 1; c < nClasses; c++) cumulative[c] += cumulative[c - 1];
        TreeMap<Integer, Integer> ofType = new TreeMap<>();
        for (int t : types) ofType.put(t, 0);
        int[] out = new int[types.length];
        for (int attempt = 0; attempt < 100; attempt++) {
            SplittableRandom rnd = new SplittableRandom(seed + attempt);
            for (var e : ofType.entrySet()) {
                double u = rnd.nextDouble() * labels.length;
                int c = 0;
                while (c < nClasses - 1 && u >= cumulative[c]) c++;
                e.setValue(c);
            }
            boolean[] seen = new boolean[nClasses];
            for (int i = 0; i < types.length; i++) seen[out[i] = ofType.get(types[i])] = true;
            boolean all = true;
            for (boolean s : seen) all &= s;
            if (all) return out;
        }
        throw new IllegalArgumentException("the control task leaves a class without rows in 100 draws: "
                + ofType.size() + " token type(s) for " + nClasses + " classes (label counts "
                + Arrays.toString(counts(labels, nClasses)) + "); control tasks need many types");
    }

    /** {@link #labels(int[], int[], int, long)} for a dataset with types. */
    public static ProbeData of(ProbeData data, long seed) {
        return data.withLabels(labels(data.requireTypes(), data.labels(), data.nClasses(), seed));
    }

    private static int[] counts(int[] labels, int k) {
        int[] c = new int[k];
        for (int y : labels) c[y]++;
        return c;
    }
}
