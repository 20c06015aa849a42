package dev.jlens.useful;

import dev.jlens.probe.Metrics;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Percentile bootstrap confidence intervals of AUROC over test rows: each replicate resamples the positives and the
 * negatives with replacement, each class keeping its count (stratified, so every replicate has both classes), and
 * recomputes {@link Metrics#auroc}. Seeded: the same scores give the same interval.
 *
 * @param replicates number of resamples (at least 100)
 * @param level      coverage of the interval, e.g. 0.95
 * @param seed       seed of the resampling
 */
public record Bootstrap(int replicates, double level, long seed) {

    /** Validates the settings. */
    public Bootstrap {
        if (replicates < 100) throw new IllegalArgumentException("replicates must be >= 100, got " + replicates);
        if (!(level > 0 && level < 1)) throw new IllegalArgumentException("level must be in (0, 1), got " + level);
    }

    /** 1000 replicates, 95% intervals, seed 0. */
    public static Bootstrap defaults() {
        return new Bootstrap(1000, 0.95, 0);
    }

    /** An estimate with its interval and the rows it came from. */
    public record Interval(double estimate, double low, double high, int n, int positives) {
        /** True when the two intervals share a point. */
        public boolean overlaps(Interval other) {
            return low <= other.high && other.low <= high;
        }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "%.3f [%.3f, %.3f] (n=%d, %d positive)", estimate, low, high,
                    n, positives);
        }
    }

    /** AUROC of {@code scores} against binary {@code labels}, with its percentile interval. */
    public Interval auroc(double[] scores, int[] labels) {
        double estimate = Metrics.auroc(scores, labels);   // checks lengths, labels and both classes
        int pos = 0;
        for (int y : labels) pos += y;
        double[] p = new double[pos], q = new double[labels.length - pos];
        for (int i = 0, a = 0, b = 0; i < labels.length; i++) {
            if (labels[i] == 1) p[a++] = scores[i];
            else q[b++] = scores[i];
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] stats = new double[replicates];
        double[] rp = new double[p.length], rq = new double[q.length];
        for (int r = 0; r < replicates; r++) {
            for (int i = 0; i < rp.length; i++) rp[i] = p[rnd.nextInt(p.length)];
            for (int i = 0; i < rq.length; i++) rq[i] = q[rnd.nextInt(q.length)];
            stats[r] = sortedAuroc(rp, rq);
        }
        Arrays.sort(stats);
        double tail = (1 - level) / 2;
        return new Interval(estimate, quantile(stats, tail), quantile(stats, 1 - tail), labels.length, pos);
    }

    /**
     * AUROC of positives against negatives (ties half), sorting both and counting by two pointers: the same value as
     * {@link Metrics#auroc}, without ranking objects, for the thousand replicates. Sorts its arguments in place.
     */
    static double sortedAuroc(double[] pos, double[] neg) {
        Arrays.sort(pos);
        Arrays.sort(neg);
        double sum = 0;
        int below = 0, upTo = 0;   // negatives < x, negatives <= x
        for (double x : pos) {
            while (below < neg.length && neg[below] < x) below++;
            if (upTo < below) upTo = below;
            while (upTo < neg.length && neg[upTo] <= x) upTo++;
            sum += below + 0.5 * (upTo - below);
        }
        return sum / ((double) pos.length * neg.length);
    }

    /** Linear interpolation between order statistics (numpy's default). */
    static double quantile(double[] sorted, double q) {
        double h = (sorted.length - 1) * q;
        int lo = (int) Math.floor(h), hi = Math.min(lo + 1, sorted.length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }
}
