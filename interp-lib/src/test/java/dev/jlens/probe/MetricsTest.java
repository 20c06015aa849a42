package dev.jlens.probe;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class MetricsTest {

    @Test
    void aurocMatchesAHandCountWithTies() {
        // positives 0.9, 0.5, 0.5; negatives 0.5, 0.1. Pairs (pos > neg counts 1, tie 1/2):
        // 0.9: 1 + 1; 0.5: 0.5 + 1; 0.5: 0.5 + 1  ->  5 of 6
        double[] pos = {0.9, 0.5, 0.5}, neg = {0.5, 0.1};
        assertEquals(5.0 / 6, Metrics.auroc(pos, neg), 1e-12);
        assertEquals(5.0 / 6, Metrics.auroc(new double[] {0.5, 0.9, 0.1, 0.5, 0.5}, new int[] {0, 1, 0, 1, 1}), 1e-12);
        assertEquals(0.5, Metrics.auroc(new double[] {1, 1, 1, 1}, new int[] {0, 1, 0, 1}), 1e-12);   // all tied
        assertEquals(0.0, Metrics.auroc(new double[] {0}, new double[] {1}), 1e-12);
        LinearProbeTest.assertMessage(null, "needs both classes", () -> Metrics.auroc(new double[] {1, 2}, new int[] {1, 1}));
    }

    @Test
    void recallAtFprSetsItsThresholdOnTheNegativeControlCorpus() {
        double[] neg = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
        // FPR 0.1 of 10 negatives allows 1 above the threshold: t = 0.9 (second highest), only 1.0 is above it
        assertEquals(0.9, Metrics.thresholdAtFpr(neg, 0.1), 0);
        assertEquals(1.0, Metrics.thresholdAtFpr(neg, 0.0), 0);
        assertEquals(Double.NEGATIVE_INFINITY, Metrics.thresholdAtFpr(neg, 1.0), 0);
        double[] pos = {0.5, 0.95, 1.2, 0.9};
        assertEquals(0.5, Metrics.recallAtFpr(pos, neg, 0.1), 0);   // 0.95 and 1.2 are above 0.9
        assertEquals(0.25, Metrics.recallAtFpr(pos, neg, 0.0), 0);  // only 1.2 is above 1.0
        assertEquals(0.25, Metrics.recallAtFpr(pos, neg, 0.05), 0); // floor(0.5) = 0 negatives allowed
        LinearProbeTest.assertMessage(null, "fpr must be in [0, 1]", () -> Metrics.recallAtFpr(pos, neg, 1.5));
    }

    @Test
    void accuracyCountsMatches() {
        assertEquals(0.75, Metrics.accuracy(new int[] {0, 1, 2, 2}, new int[] {0, 1, 2, 0}), 0);
        LinearProbeTest.assertMessage(null, "mismatched lengths", () -> Metrics.accuracy(new int[] {0}, new int[] {0, 1}));
    }
}
