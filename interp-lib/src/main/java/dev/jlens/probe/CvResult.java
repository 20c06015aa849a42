package dev.jlens.probe;

import java.util.Arrays;
import java.util.OptionalDouble;

/**
 * Cross-validated accuracy: one held-out accuracy per fold, their mean and sample standard deviation, and for binary
 * tasks the AUROC of the pooled out-of-fold scores.
 *
 * @param foldAccuracies held-out accuracy of each fold
 * @param auroc          AUROC of every row's out-of-fold score (binary tasks)
 */
public record CvResult(double[] foldAccuracies, OptionalDouble auroc) {

    /** Mean held-out accuracy. */
    public double mean() {
        return Arrays.stream(foldAccuracies).average().orElse(Double.NaN);
    }

    /** Sample standard deviation of the fold accuracies (0 for one fold). */
    public double sd() {
        int k = foldAccuracies.length;
        if (k < 2) return 0;
        double m = mean(), s = 0;
        for (double a : foldAccuracies) s += (a - m) * (a - m);
        return Math.sqrt(s / (k - 1));
    }

    @Override
    public String toString() {
        return String.format("%.3f ± %.3f over %d folds%s", mean(), sd(), foldAccuracies.length,
                auroc.isPresent() ? String.format(", AUROC %.3f", auroc.getAsDouble()) : "");
    }
}
