package dev.jlens.analysis;

import dev.jlens.viz.Plots;
import org.knowm.xchart.HeatMapChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Per-edge values: the metric when one edge is patched (exact edge patching), or its estimate (EAP, EAP-IG:
 * {@code M(base) + score}).
 *
 * @param method {@code edge patching}, {@code eap}, {@code eap-ig(m)}
 * @param direction denoise or noise
 * @param metric the metric's name
 * @param edges the edges
 * @param values the metric with each edge patched (or its estimate)
 * @param metricClean the clean run's metric
 * @param metricCorrupt the corrupt run's metric
 */
public record EdgeResult(String method, Direction direction, String metric, List<Edge> edges, double[] values,
                         double metricClean, double metricCorrupt) {

    /** Copies. */
    public EdgeResult {
        edges = List.copyOf(edges);
        if (values.length != edges.size()) {
            throw new IllegalArgumentException(values.length + " values for " + edges.size() + " edges");
        }
        values = values.clone();
    }

    /** The metric of the run that was patched. */
    public double metricBase() {
        return direction == Direction.DENOISE ? metricCorrupt : metricClean;
    }

    /** {@code value - metricBase()} per edge: the edge's effect (its score, for the estimates). */
    public double[] effects() {
        double b = metricBase();
        return Arrays.stream(values).map(v -> v - b).toArray();
    }

    /** {@code (value - M_corrupt) / (M_clean - M_corrupt)}. */
    public double[] normalized() {
        double span = metricClean - metricCorrupt;
        return Arrays.stream(values).map(v -> (v - metricCorrupt) / span).toArray();
    }

    /** The effect of one edge. */
    public double effect(Edge e) {
        int i = edges.indexOf(e);
        if (i < 0) throw new IllegalArgumentException("edge " + e.label() + " is not in this result");
        return values[i] - metricBase();
    }

    /** Edges by |effect|, largest first. */
    public List<Edge> top(int k) {
        double[] eff = effects();
        return IntStream.range(0, edges.size()).boxed()
                .sorted(Comparator.comparingDouble((Integer i) -> -Math.abs(eff[i])))
                .limit(Math.max(0, k)).map(edges::get).toList();
    }

    /** The edges' scores for circuit building: |effect| by edge. */
    public Map<Edge, Double> importance() {
        Map<Edge, Double> m = new LinkedHashMap<>();
        double[] eff = effects();
        for (int i = 0; i < edges.size(); i++) m.put(edges.get(i), Math.abs(eff[i]));
        return m;
    }

    /** One row per edge, sorted by |effect|: edge, from, to, input, value, effect, normalized. */
    public Table toTable() {
        double[] eff = effects(), norm = normalized();
        Integer[] order = IntStream.range(0, edges.size()).boxed()
                .sorted(Comparator.comparingDouble((Integer i) -> -Math.abs(eff[i]))).toArray(Integer[]::new);
        StringColumn edge = StringColumn.create("edge"), from = StringColumn.create("from"),
                to = StringColumn.create("to"), input = StringColumn.create("input");
        DoubleColumn value = DoubleColumn.create("value"), effect = DoubleColumn.create("effect"),
                normalized = DoubleColumn.create("normalized");
        for (int i : order) {
            Edge e = edges.get(i);
            edge.append(e.label());
            from.append(e.from().label());
            to.append(e.to().label());
            input.append(e.input());
            value.append(values[i]);
            effect.append(eff[i]);
            normalized.append(norm[i]);
        }
        return Table.create(method + " edges (" + direction + ", " + metric + ")")
                .addColumns(edge, from, to, input, value, effect, normalized);
    }

    /** A heatmap of effects: source nodes by target inputs (blank where there is no edge). */
    public HeatMapChart heatmap() {
        List<String> rows = new ArrayList<>(), cols = new ArrayList<>();
        for (Edge e : edges) {
            if (!rows.contains(e.from().label())) rows.add(e.from().label());
            String c = e.to().label() + (e.input().isEmpty() ? "" : "." + e.input());
            if (!cols.contains(c)) cols.add(c);
        }
        double[][] m = new double[rows.size()][cols.size()];
        for (double[] r : m) Arrays.fill(r, Double.NaN);
        double[] eff = effects();
        for (int i = 0; i < edges.size(); i++) {
            Edge e = edges.get(i);
            m[rows.indexOf(e.from().label())][cols.indexOf(e.to().label() + (e.input().isEmpty() ? "" : "."
                    + e.input()))] = eff[i];
        }
        return Plots.heatmap(method + " edge effects (" + direction + ")", m, rows, cols, "target", "source");
    }

    /** Spearman's ρ against exact edge patching and recall of its top {@code k}. */
    public Validation compare(EdgeResult exact, int k) {
        if (!exact.edges.equals(edges)) {
            throw new IllegalArgumentException("the results hold different edges (" + edges.size() + " vs "
                    + exact.edges.size() + ")");
        }
        double[] a = exact.effects(), b = effects();
        return Validation.of(method, a, b, Arrays.stream(a).map(Math::abs).toArray(),
                Arrays.stream(b).map(Math::abs).toArray(), k);
    }

    @Override
    public String toString() {
        return "EdgeResult(" + method + " " + direction + ", " + edges.size() + " edges)";
    }
}
