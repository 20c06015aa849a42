package dev.jlens.probe;

import org.apache.commons.math3.stat.ranking.NaNStrategy;
import org.apache.commons.math3.stat.ranking.NaturalRanking;
import org.apache.commons.math3.stat.ranking.TiesStrategy;

import java.util.Arrays;

/**
 * Probe metrics: accuracy, AUROC (rank-based, ties counted half), and recall at a false-positive rate whose
 * threshold is set on a separate negative corpus. Ranks come from Commons Math's {@link NaturalRanking} with
 * average ranks for ties.
 */
public final class Metrics {
    private Metrics() {}

    /** Fraction of rows where {@code predicted} equals {@code labels}. */
    public static double accuracy(int[] predicted, int[] labels) {
        sameLength(predicted.length, labels.length, "predictions", "labels");
        if (labels.length == 0) throw new IllegalArgumentException("accuracy of no rows is undefined");
        int ok = 0;
        for (int i = 0; i < labels.length; i++) if (predicted[i] == labels[i]) ok++;
        return (double) ok / labels.length;
    }

    /**
     * Area under the ROC curve of binary {@code labels} (0 or 1) by {@code scores}: the probability that a random
     * positive scores above a random negative, a tie counting one half (the Mann-Whitney U statistic over
     * {@code n1 * n0}).
     */
    public static double auroc(double[] scores, int[] labels) {
        sameLength(scores.length, labels.length, "scores", "labels");
        int pos = 0;
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] != 0 && labels[i] != 1) {
                throw new IllegalArgumentException("AUROC needs binary labels 0/1; label " + labels[i] + " at row " + i);
            }
            pos += labels[i];
        }
        int neg = labels.length - pos;
        if (pos == 0 || neg == 0) {
            throw new IllegalArgumentException("AUROC needs both classes; got " + pos + " positives and " + neg
                    + " negatives");
        }
        double[] ranks = new NaturalRanking(NaNStrategy.FAILED, TiesStrategy.AVERAGE).rank(scores);
        double sum = 0;
        for (int i = 0; i < labels.length; i++) if (labels[i] == 1) sum += ranks[i];
        return (sum - pos * (pos + 1.0) / 2) / ((double) pos * neg);
    }

    /** AUROC of positive scores against negative scores. */
    public static double auroc(double[] positives, double[] negatives) {
        double[] s = new double[positives.length + negatives.length];
        int[] y = new int[s.length];
        System.arraycopy(positives, 0, s, 0, positives.length);
        System.arraycopy(negatives, 0, s, positives.length, negatives.length);
        Arrays.fill(y, 0, positives.length, 1);
        return auroc(s, y);
    }

    /**
     * The lowest threshold {@code t} such that at most {@code fpr} of the negative control scores are above it
     * (strictly): {@code t} is the {@code (floor(fpr * n) + 1)}-th highest negative score, or negative infinity when
     * {@code fpr} allows every negative.
     */
    public static double thresholdAtFpr(double[] negativeControl, double fpr) {
        if (!(fpr >= 0 && fpr <= 1)) throw new IllegalArgumentException("fpr must be in [0, 1], got " + fpr);
        if (negativeControl.length == 0) throw new IllegalArgumentException("the negative control corpus is empty");
        double[] sorted = negativeControl.clone();
        Arrays.sort(sorted);
        int allowed = (int) Math.floor(fpr * sorted.length + 1e-9);
        if (allowed >= sorted.length) return Double.NEGATIVE_INFINITY;
        return sorted[sorted.length - 1 - allowed];
    }

    /**
     * Recall at a fixed false-positive rate: the threshold comes from the negative control corpus
     * ({@link #thresholdAtFpr}), recall is the fraction of positive scores strictly above it. E.g.
     * {@code recallAtFpr(scoresOnConcept, scoresOnNeutralText, 0.01)}.
     */
    public static double recallAtFpr(double[] positives, double[] negativeControl, double fpr) {
        if (positives.length == 0) throw new IllegalArgumentException("no positive scores");
        double t = thresholdAtFpr(negativeControl, fpr);
        int hit = 0;
        for (double s : positives) if (s > t) hit++;
        return (double) hit / positives.length;
    }

    private static void sameLength(int a, int b, String an, String bn) {
        if (a != b) throw new IllegalArgumentException("mismatched lengths: " + a + " " + an + ", " + b + " " + bn);
    }
}
