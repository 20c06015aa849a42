package dev.jlens.probe;

import java.util.List;
import java.util.OptionalDouble;

/**
 * Grouped k-fold cross-validation of a probe method: fit on the training folds, score the held-out fold, never a
 * group on both sides ({@link GroupKFold}).
 *
 * <pre>{@code
 * CvResult r = CrossValidation.run(data, ProbeMethod.logistic(), 5, 0);   // "0.912 ± 0.014 over 5 folds"
 * ProbeReport rep = ProbeReport.evaluate(data.withTypes(tokenIds), ProbeMethod.logistic(), 5, 0);
 * }</pre>
 */
public final class CrossValidation {
    private CrossValidation() {}

    /** Held-out accuracy on {@code folds} grouped folds, split with {@code seed}. */
    public static CvResult run(ProbeData data, ProbeMethod method, int folds, long seed) {
        return run(data, method, GroupKFold.split(data.groups(), folds, seed));
    }

    /** Held-out accuracy on the given folds (e.g. the same folds for a task and its control). */
    public static CvResult run(ProbeData data, ProbeMethod method, List<GroupKFold.Fold> folds) {
        double[] acc = new double[folds.size()];
        double[] oof = data.nClasses() == 2 ? new double[data.size()] : null;
        for (GroupKFold.Fold f : folds) {
            LinearProbe p;
            try {
                p = method.fit(data.subset(f.train()));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("fold " + f.index() + " of " + folds.size() + ": " + e.getMessage()
                        + " (with grouped folds a class can fall entirely in one fold: use fewer folds or more groups)",
                        e);
            }
            ProbeData test = data.subset(f.test());
            acc[f.index()] = p.accuracy(test);
            if (oof != null) {
                double[] s = p.scores(test.x());
                for (int i = 0; i < s.length; i++) oof[f.test()[i]] = s[i];
            }
        }
        return new CvResult(acc, oof == null ? OptionalDouble.empty() : OptionalDouble.of(Metrics.auroc(oof, data.labels())));
    }

    /**
     * Every row's out-of-fold predicted class: each fold's probe, fitted on the other folds, predicts its held-out
     * rows (for accuracy on a subset of rows, e.g. one kind of speaker).
     */
    public static int[] predictions(ProbeData data, ProbeMethod method, List<GroupKFold.Fold> folds) {
        int[] out = new int[data.size()];
        for (GroupKFold.Fold f : folds) {
            int[] p = method.fit(data.subset(f.train())).predict(data.subset(f.test()).x());
            for (int i = 0; i < p.length; i++) out[f.test()[i]] = p[i];
        }
        return out;
    }
}
