package dev.jlens.analysis;

import dev.jlens.viz.Plots;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.List;
import java.util.Map;

/**
 * Faithfulness against circuit size.
 *
 * @param sizes circuit sizes (numbers of top-ranked nodes)
 * @param fractions the sizes as fractions of all nodes
 * @param faithfulness the faithfulness of each
 * @param order the labels of the nodes or edges, best first
 */
public record FaithfulnessCurve(int[] sizes, double[] fractions, double[] faithfulness, List<String> order) {

    /** Copies. */
    public FaithfulnessCurve {
        sizes = sizes.clone();
        fractions = fractions.clone();
        faithfulness = faithfulness.clone();
        order = List.copyOf(order);
    }

    /** Area under the curve over the fraction of nodes (trapezoids): MIB's CPR, higher is better. */
    public double cpr() {
        return area(false);
    }

    /** Area between the curve and 1: MIB's CMD, lower is better. */
    public double cmd() {
        return area(true);
    }

    private double area(boolean distance) {
        double a = 0;
        for (int i = 1; i < fractions.length; i++) {
            double y0 = distance ? Math.abs(1 - faithfulness[i - 1]) : faithfulness[i - 1];
            double y1 = distance ? Math.abs(1 - faithfulness[i]) : faithfulness[i];
            a += (fractions[i] - fractions[i - 1]) * (y0 + y1) / 2;
        }
        return a;
    }

    /** The smallest circuit reaching {@code target} faithfulness, if any. */
    public java.util.OptionalInt smallestReaching(double target) {
        for (int i = 0; i < sizes.length; i++) if (faithfulness[i] >= target) return java.util.OptionalInt.of(sizes[i]);
        return java.util.OptionalInt.empty();
    }

    /** size, fraction, faithfulness, and the node added at that size. */
    public Table toTable() {
        StringColumn added = StringColumn.create("last added");
        for (int s : sizes) added.append(s == 0 ? "" : order.get(s - 1));
        return Table.create(String.format(java.util.Locale.ROOT, "faithfulness curve (CPR %.3f, CMD %.3f)",
                cpr(), cmd())).addColumns(IntColumn.create("size", sizes),
                DoubleColumn.create("fraction", fractions), DoubleColumn.create("faithfulness", faithfulness),
                added);
    }

    /** The curve against the full model's 1. */
    public XYChart plot() {
        return plot(String.format(java.util.Locale.ROOT, "faithfulness (CPR %.3f, CMD %.3f)", cpr(), cmd()),
                Map.of("circuit", this));
    }

    /** Several curves in one chart, e.g. nodes ranked by exact patching and by an attribution method. */
    public static XYChart plot(String title, Map<String, FaithfulnessCurve> curves) {
        if (curves.isEmpty()) throw new IllegalArgumentException("no curves to plot");
        XYChart c = new org.knowm.xchart.XYChartBuilder().width(Plots.WIDTH).height(Plots.HEIGHT).title(title)
                .xAxisTitle("fraction of the graph in the circuit").yAxisTitle("faithfulness").build();
        c.getStyler().setChartBackgroundColor(java.awt.Color.WHITE);
        c.getStyler().setXAxisDecimalPattern("0.00");
        c.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideSE);
        for (Map.Entry<String, FaithfulnessCurve> e : new java.util.TreeMap<>(curves).entrySet()) {
            FaithfulnessCurve f = e.getValue();
            c.addSeries(String.format(java.util.Locale.ROOT, "%s (CPR %.3f, CMD %.3f)", e.getKey(), f.cpr(),
                    f.cmd()), f.fractions(), f.faithfulness());
        }
        c.addSeries("full model", new double[] {0, 1}, new double[] {1, 1})
                .setMarker(org.knowm.xchart.style.markers.SeriesMarkers.NONE);
        return c;
    }
}
