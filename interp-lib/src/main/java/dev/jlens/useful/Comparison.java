package dev.jlens.useful;

import dev.jlens.probe.Metrics;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Methods against each other on {@link UsefulTask}s: each entry names a view and its candidate settings; every
 * candidate is fitted on the training rows, the one with the best validation AUROC is kept (the first, when validation
 * has a single class), and it scores the test rows: AUROC with a bootstrap interval. The test labels are read only
 * to compute the metric.
 *
 * <pre>{@code
 * Comparison c = Comparison.run(task, List.of(
 *         Comparison.interpretability("probe L2", "resid_2", Baselines.logistic(1e-3), Baselines.logistic(1e-1)),
 *         Comparison.baseline("gbt on features", "problem", Baselines.gbt(100, 3, 0.1))), Bootstrap.defaults());
 * c.toTable(); c.chart(task.name()); c.winLoss();
 * }</pre>
 *
 * @param rows one per task and entry, in the order run
 */
public record Comparison(List<Row> rows) {

    /** Whether a method reads the model's internals (interpretability) or not (baseline). */
    public enum Kind { INTERPRETABILITY, BASELINE }

    /** The outcome of an interpretability method against the best baseline of a task. */
    public enum Outcome { WIN, TIE, LOSS }

    /** A method to run: a label, the view it reads, its kind and the candidate settings chosen among on validation. */
    public record Entry(String method, String view, Kind kind, List<Method> candidates) {
        /** Checks that there is at least one candidate. */
        public Entry {
            Objects.requireNonNull(method, "method");
            Objects.requireNonNull(view, "view");
            Objects.requireNonNull(kind, "kind");
            if (candidates == null || candidates.isEmpty()) {
                throw new IllegalArgumentException("entry '" + method + "' needs at least one candidate method");
            }
            candidates = List.copyOf(candidates);
        }
    }

    /** An interpretability method on {@code view}, with candidate settings. */
    public static Entry interpretability(String method, String view, Method... candidates) {
        return new Entry(method, view, Kind.INTERPRETABILITY, List.of(candidates));
    }

    /** A baseline on {@code view}, with candidate settings. */
    public static Entry baseline(String method, String view, Method... candidates) {
        return new Entry(method, view, Kind.BASELINE, List.of(candidates));
    }

    /**
     * One method's result on one task.
     *
     * @param task           the task
     * @param method         the entry's label
     * @param view           the view it read
     * @param kind           interpretability or baseline
     * @param chosen         the candidate kept
     * @param validation     its validation AUROC (NaN when validation has one class)
     * @param test           test AUROC with its bootstrap interval
     * @param nTrain         training rows
     * @param testScores     its score of each test row, in order
     */
    public record Row(String task, String method, String view, Kind kind, String chosen, double validation,
            Bootstrap.Interval test, int nTrain, double[] testScores) {
        @Override
        public String toString() {
            return task + " / " + method + " (" + chosen + " on " + view + "): " + test;
        }
    }

    /** Runs every entry on {@code task}. */
    public static Comparison run(UsefulTask task, List<Entry> entries, Bootstrap bootstrap) {
        if (entries.isEmpty()) throw new IllegalArgumentException("give at least one entry");
        List<Row> rows = new ArrayList<>();
        boolean validationBoth = bothClasses(task.validation());
        for (Entry e : entries) {
            UsefulTask.View v = task.view(e.view());
            boolean select = e.candidates().size() > 1 && validationBoth;
            Method best = null;
            Method.Fitted kept = null;
            double bestValidation = Double.NaN;
            try {
                for (Method m : select ? e.candidates() : e.candidates().subList(0, 1)) {
                    Method.Fitted f = m.fit(v.train(), task.train());
                    double a = validationBoth ? Metrics.auroc(f.score(v.validation()), task.validation()) : Double.NaN;
                    if (best == null || a > bestValidation) {
                        if (kept != null) kept.close();
                        best = m;
                        kept = f;
                        bestValidation = a;
                    } else {
                        f.close();
                    }
                }
                double[] scores = kept.score(v.test());
                rows.add(new Row(task.name(), e.method(), e.view(), e.kind(), best.name(), bestValidation,
                        bootstrap.auroc(scores, task.test()), task.train().length, scores));
            } finally {
                if (kept != null) kept.close();
            }
        }
        return new Comparison(rows);
    }

    /** Runs the same entries on several tasks. */
    public static Comparison run(List<UsefulTask> tasks, List<Entry> entries, Bootstrap bootstrap) {
        List<Row> rows = new ArrayList<>();
        for (UsefulTask t : tasks) rows.addAll(run(t, entries, bootstrap).rows());
        return new Comparison(rows);
    }

    /** This comparison's rows followed by {@code other}'s. */
    public Comparison plus(Comparison other) {
        List<Row> all = new ArrayList<>(rows);
        all.addAll(other.rows());
        return new Comparison(all);
    }

    /** The rows of one task; an unknown task throws naming those there are. */
    public List<Row> rows(String task) {
        List<Row> out = rows.stream().filter(r -> r.task().equals(task)).toList();
        if (out.isEmpty()) throw new IllegalArgumentException("no task '" + task + "'; there are " + tasks());
        return out;
    }

    /** The row of {@code method} on {@code task}. */
    public Row row(String task, String method) {
        return rows(task).stream().filter(r -> r.method().equals(method)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no method '" + method + "' on task '" + task
                        + "'; there are " + rows(task).stream().map(Row::method).toList()));
    }

    /** The tasks, in the order run. */
    public List<String> tasks() {
        return rows.stream().map(Row::task).distinct().toList();
    }

    /** One row per task and method: view, kind, chosen setting, validation AUROC, test AUROC and its interval, n. */
    public Table toTable() {
        StringColumn task = StringColumn.create("task"), method = StringColumn.create("method"),
                view = StringColumn.create("view"), kind = StringColumn.create("kind"),
                chosen = StringColumn.create("chosen");
        DoubleColumn val = DoubleColumn.create("validation_auroc"), auc = DoubleColumn.create("test_auroc"),
                lo = DoubleColumn.create("ci_low"), hi = DoubleColumn.create("ci_high");
        IntColumn nTrain = IntColumn.create("n_train"), nTest = IntColumn.create("n_test"),
                pos = IntColumn.create("test_positives");
        for (Row r : rows) {
            task.append(r.task());
            method.append(r.method());
            view.append(r.view());
            kind.append(r.kind().name().toLowerCase(Locale.ROOT));
            chosen.append(r.chosen());
            val.append(round(r.validation()));
            auc.append(round(r.test().estimate()));
            lo.append(round(r.test().low()));
            hi.append(round(r.test().high()));
            nTrain.append(r.nTrain());
            nTest.append(r.test().n());
            pos.append(r.test().positives());
        }
        return Table.create("methods against baselines (test AUROC, bootstrap interval)", task, method, view, kind,
                chosen, val, auc, lo, hi, nTrain, nTest, pos);
    }

    /**
     * Each interpretability method against the best baseline of its task (the highest test AUROC, which favours the
     * baselines): {@code win} when its interval lies above the baseline's, {@code loss} when below, {@code tie} when
     * the intervals overlap.
     */
    public Table winLoss() {
        StringColumn task = StringColumn.create("task"), method = StringColumn.create("method"),
                baseline = StringColumn.create("best_baseline"), outcome = StringColumn.create("outcome");
        DoubleColumn auc = DoubleColumn.create("auroc"), lo = DoubleColumn.create("ci_low"),
                hi = DoubleColumn.create("ci_high"), bAuc = DoubleColumn.create("baseline_auroc"),
                bLo = DoubleColumn.create("baseline_ci_low"), bHi = DoubleColumn.create("baseline_ci_high");
        for (String t : tasks()) {
            List<Row> rs = rows(t);
            Row best = rs.stream().filter(r -> r.kind() == Kind.BASELINE)
                    .max((a, b) -> Double.compare(a.test().estimate(), b.test().estimate())).orElse(null);
            if (best == null) continue;
            for (Row r : rs) {
                if (r.kind() != Kind.INTERPRETABILITY) continue;
                task.append(t);
                method.append(r.method());
                auc.append(round(r.test().estimate()));
                lo.append(round(r.test().low()));
                hi.append(round(r.test().high()));
                baseline.append(best.method());
                bAuc.append(round(best.test().estimate()));
                bLo.append(round(best.test().low()));
                bHi.append(round(best.test().high()));
                outcome.append(outcome(r, best).name().toLowerCase(Locale.ROOT));
            }
        }
        return Table.create("interpretability against the best baseline (intervals overlapping: tie)", task, method,
                auc, lo, hi, baseline, bAuc, bLo, bHi, outcome);
    }

    /** Wins, ties and losses of each interpretability method over all tasks. */
    public Table winLossSummary() {
        Map<String, int[]> counts = new LinkedHashMap<>();
        Table wl = winLoss();
        for (int i = 0; i < wl.rowCount(); i++) {
            int[] c = counts.computeIfAbsent(wl.stringColumn("method").get(i), k -> new int[3]);
            c[Outcome.valueOf(wl.stringColumn("outcome").get(i).toUpperCase(Locale.ROOT)).ordinal()]++;
        }
        StringColumn method = StringColumn.create("method");
        IntColumn win = IntColumn.create("wins"), tie = IntColumn.create("ties"), loss = IntColumn.create("losses");
        counts.forEach((m, c) -> {
            method.append(m);
            win.append(c[0]);
            tie.append(c[1]);
            loss.append(c[2]);
        });
        return Table.create("wins, ties and losses against the best baseline", method, win, tie, loss);
    }

    /** The outcome of interpretability row {@code r} against baseline row {@code best}. */
    public static Outcome outcome(Row r, Row best) {
        if (r.test().low() > best.test().high()) return Outcome.WIN;
        if (r.test().high() < best.test().low()) return Outcome.LOSS;
        return Outcome.TIE;
    }

    /** Test AUROC with its interval for each method of {@code task}, interpretability and baselines in two colours. */
    public CategoryChart chart(String task) {
        List<Row> rs = rows(task);
        return Plots.intervals(task + ": test AUROC (95% bootstrap interval)", "AUROC",
                rs.stream().map(Row::method).toList(),
                rs.stream().map(r -> r.kind() == Kind.INTERPRETABILITY ? "interpretability" : "baseline").toList(),
                rs.stream().mapToDouble(r -> r.test().estimate()).toArray(),
                rs.stream().mapToDouble(r -> r.test().low()).toArray(),
                rs.stream().mapToDouble(r -> r.test().high()).toArray());
    }

    private static boolean bothClasses(int[] y) {
        int pos = Arrays.stream(y).sum();
        return pos > 0 && pos < y.length;
    }

    private static double round(double v) {
        return Double.isNaN(v) ? v : Math.round(v * 1000) / 1000.0;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Comparison(" + rows.size() + " rows)");
        for (Row r : rows) sb.append("\n  ").append(r);
        return sb.toString();
    }
}
