package dev.jlens.sae;

import dev.jlens.viz.Plots;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** How a {@link SaeTrainer.Result} shows its per-dictionary histories: a table, a chart per metric, a status line. */
final class SaeHistory {
    private SaeHistory() {}

    /** Every dictionary's history in one table: dictionary, step, loss, mse, l0, fvu, dead, dense, lr. */
    static Table table(Map<String, List<SaeTrainer.StepStats>> history) {
        StringColumn dict = StringColumn.create("dictionary");
        IntColumn step = IntColumn.create("step");
        DoubleColumn loss = DoubleColumn.create("loss"), mse = DoubleColumn.create("mse"), l0 = DoubleColumn.create("l0");
        DoubleColumn fvu = DoubleColumn.create("fvu"), dead = DoubleColumn.create("dead"), dense = DoubleColumn.create("dense");
        DoubleColumn lr = DoubleColumn.create("lr");
        history.forEach((name, rows) -> {
            for (SaeTrainer.StepStats s : rows) {
                dict.append(name);
                step.append(s.step());
                loss.append(s.loss());
                mse.append(s.mse());
                l0.append(s.l0());
                fvu.append(s.fvu());
                dead.append(s.deadFraction());
                dense.append(s.denseFraction());
                lr.append(s.lr());
            }
        });
        return Table.create("SAE training", dict, step, loss, mse, l0, fvu, dead, dense, lr);
    }

    /** A line chart of one metric per dictionary; loss, mse and fvu on a log scale (they fall by orders of magnitude). */
    static XYChart curve(Map<String, List<SaeTrainer.StepStats>> history, String metric) {
        Map<String, double[]> series = new LinkedHashMap<>();
        history.forEach((name, rows) -> {
            if (!rows.isEmpty()) series.put(name, rows.stream().mapToDouble(s -> metric(s, metric)).toArray());
        });
        XYChart chart = Plots.line(metric, "step", metric, series);
        if (Set.of("loss", "mse", "fvu").contains(metric)
                && series.values().stream().flatMapToDouble(Arrays::stream).allMatch(v -> v > 0)) {
            chart.getStyler().setYAxisLogarithmic(true);
        }
        return chart;
    }

    private static double metric(SaeTrainer.StepStats s, String m) {
        return switch (m) {
            case "loss" -> s.loss();
            case "mse" -> s.mse();
            case "l0" -> s.l0();
            case "fvu" -> s.fvu();
            case "dead" -> s.deadFraction();
            case "dense" -> s.denseFraction();
            case "lr" -> s.lr();
            default -> throw new IllegalArgumentException("unknown metric '" + m + "'; valid: loss, mse, l0, fvu, dead, dense, lr");
        };
    }

    /** One step's measurements as a short status: loss, L0, FVU, dead and dense percentages. */
    static String status(SaeTrainer.StepStats s) {
        return String.format(Locale.ROOT, "loss %.4g | L0 %.1f | FVU %.3f | dead %.1f%% | dense %.1f%%",
                s.loss(), s.l0(), s.fvu(), 100 * s.deadFraction(), 100 * s.denseFraction());
    }

    /** The progress line: the one dictionary's status, or each dictionary's after its name. */
    static String status(Map<String, List<SaeTrainer.StepStats>> history) {
        if (history.size() == 1) {
            List<SaeTrainer.StepStats> h = history.values().iterator().next();
            return h.isEmpty() ? "" : status(h.get(h.size() - 1));
        }
        StringBuilder sb = new StringBuilder();
        history.forEach((name, h) -> {
            if (h.isEmpty()) return;
            if (sb.length() > 0) sb.append("  ·  ");
            sb.append(name).append(": ").append(status(h.get(h.size() - 1)));
        });
        return sb.toString();
    }

    /** The result's {@code toString}: the last step of each dictionary. */
    static String summary(Map<String, List<SaeTrainer.StepStats>> history) {
        StringBuilder s = new StringBuilder("SaeTrainer.Result[");
        history.forEach((name, rows) -> s.append("\n  ").append(name).append(": ")
                .append(rows.isEmpty() ? "no steps" : "step " + rows.get(rows.size() - 1).step() + " "
                        + status(rows.get(rows.size() - 1))));
        return s.append(history.isEmpty() ? "]" : "\n]").toString();
    }
}
