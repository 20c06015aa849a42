package dev.jlens.analysis;

import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * How well an attribution method's estimates agree with exact patching: Spearman's rank correlation of the
 * effects, Pearson's correlation, and the recall of the exact top {@code k} (by importance) among the estimate's top
 * {@code k}.
 *
 * @param method the estimating method
 * @param spearman Spearman's ρ between exact and estimated effects
 * @param pearson Pearson's r between them
 * @param k how many top indices were compared
 * @param recallAtK |top-k(exact) ∩ top-k(estimate)| / k
 * @param n how many indices
 */
public record Validation(String method, double spearman, double pearson, int k, double recallAtK, int n) {

    /** Compares {@code estimate} with {@code exact} (effects) and their importances. */
    public static Validation of(String method, double[] exact, double[] estimate, double[] exactImportance,
                                double[] estimateImportance, int k) {
        if (exact.length != estimate.length) {
            throw new IllegalArgumentException("exact has " + exact.length + " values, the estimate " + estimate.length);
        }
        int kk = Math.max(1, Math.min(k, exact.length));
        Set<Integer> a = topK(exactImportance, kk);
        Set<Integer> b = topK(estimateImportance, kk);
        a.retainAll(b);
        return new Validation(method, spearman(exact, estimate), pearson(exact, estimate), kk,
                (double) a.size() / kk, exact.length);
    }

    /** Spearman's ρ: Pearson's r of the ranks (ties get their average rank). */
    public static double spearman(double[] x, double[] y) {
        return pearson(ranks(x), ranks(y));
    }

    /** Pearson's r (NaN if either input is constant). */
    public static double pearson(double[] x, double[] y) {
        int n = x.length;
        double mx = Arrays.stream(x).average().orElse(0), my = Arrays.stream(y).average().orElse(0);
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++) {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxy / Math.sqrt(sxx * syy);
    }

    /** Average ranks (1-based). */
    static double[] ranks(double[] x) {
        Integer[] order = IntStream.range(0, x.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble(i -> x[i]));
        double[] r = new double[x.length];
        int i = 0;
        while (i < x.length) {
            int j = i;
            while (j + 1 < x.length && x[order[j + 1]] == x[order[i]]) j++;
            double avg = (i + j) / 2.0 + 1;
            for (int t = i; t <= j; t++) r[order[t]] = avg;
            i = j + 1;
        }
        return r;
    }

    private static Set<Integer> topK(double[] v, int k) {
        Set<Integer> s = new HashSet<>();
        IntStream.range(0, v.length).boxed().sorted(Comparator.comparingDouble(i -> -v[i])).limit(k).forEach(s::add);
        return s;
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "%s vs exact: Spearman %.3f, Pearson %.3f, recall@%d %.2f (%d indices)",
                method, spearman, pearson, k, recallAtK, n);
    }
}
