package dev.jlens.probe;

import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * A probe's cross-validated accuracy beside its control task's on the same folds, and their difference, the
 * selectivity (Hewitt and Liang, 2019). The control needs token types ({@link ProbeData#withTypes}).
 *
 * @param task    held-out accuracy on the real labels (and AUROC for two classes)
 * @param control held-out accuracy on the control labels, when the data has types
 */
public record ProbeReport(CvResult task, Optional<CvResult> control) {

    /** Task and (if the data has types) control accuracy on the same {@code folds} grouped folds. */
    public static ProbeReport evaluate(ProbeData data, ProbeMethod method, int folds, long seed) {
        List<GroupKFold.Fold> split = GroupKFold.split(data.groups(), folds, seed);
        CvResult task = CrossValidation.run(data, method, split);
        Optional<CvResult> control = data.types().isPresent()
                ? Optional.of(CrossValidation.run(ControlTask.of(data, seed), method, split))
                : Optional.empty();
        return new ProbeReport(task, control);
    }

    /** Task accuracy minus control accuracy (means over folds). */
    public OptionalDouble selectivity() {
        return control.map(c -> OptionalDouble.of(task.mean() - c.mean())).orElse(OptionalDouble.empty());
    }

    @Override
    public String toString() {
        return "accuracy " + task + control.map(c -> String.format("; control %.3f ± %.3f; selectivity %.3f",
                c.mean(), c.sd(), task.mean() - c.mean())).orElse("");
    }
}
