package dev.jlens.analysis;

import dev.jlens.viz.Plots;
import org.knowm.xchart.HeatMapChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.IntStream;

/**
 * The result of a patching sweep or of an attribution method that estimates one: for each patched index (layer
 * with position, head, or both) the metric of the patched run, beside the normalised effect
 * {@code (M - M_corrupt) / (M_clean - M_corrupt)}. Attribution results hold estimates of the same quantity, so the
 * two compare directly ({@link #compare}).
 *
 * <pre>{@code
 * PatchResult r = patching.sweep(PatchSite.RESID_PRE, Direction.DENOISE);
 * r.toTable();      // layer, pos, token, value, normalized
 * r.heatmap();      // layer x position (tokens on the axis), normalised effect
 * }</pre>
 *
 * @param method {@code patching}, {@code atp}, {@code atp*}, ...
 * @param site the patched site
 * @param direction denoise or noise
 * @param metric the metric's name
 * @param replacement what replaced the activation
 * @param indices the patched indices, layer-major
 * @param values the metric of each patched run (or its estimate)
 * @param metricClean the metric of the clean run
 * @param metricCorrupt the metric of the corrupt run
 * @param tokens the first prompt's tokens as strings (position labels), from the run that was patched
 * @param nLayers layers of the model
 * @param nHeads heads of the site (kv heads for {@code k} and {@code v} with grouped-query attention); 0 for
 *     position sites
 * @param scores a ranking score per index where the method has one apart from the estimate (AtP*'s GradDrop
 *     magnitude), else empty
 */
public record PatchResult(String method, PatchSite site, Direction direction, String metric, String replacement,
                          List<PatchIndex> indices, double[] values, double metricClean, double metricCorrupt,
                          List<String> tokens, int nLayers, int nHeads, Optional<double[]> scores) {

    /** Validates and copies. */
    public PatchResult {
        Objects.requireNonNull(method, "method");
        indices = List.copyOf(indices);
        tokens = List.copyOf(tokens);
        if (values.length != indices.size()) {
            throw new IllegalArgumentException(values.length + " values for " + indices.size() + " indices");
        }
        values = values.clone();
        scores = scores.map(double[]::clone);
    }

    /** The metric of the run that was patched: the corrupt run when denoising, the clean one when noising. */
    public double metricBase() {
        return direction == Direction.DENOISE ? metricCorrupt : metricClean;
    }

    /** {@code (value - M_corrupt) / (M_clean - M_corrupt)} per index (NaN if clean and corrupt agree). */
    public double[] normalized() {
        double span = metricClean - metricCorrupt;
        return Arrays.stream(values).map(v -> (v - metricCorrupt) / span).toArray();
    }

    /** {@code value - metricBase()}: the change the patch makes. */
    public double[] effects() {
        double base = metricBase();
        return Arrays.stream(values).map(v -> v - base).toArray();
    }

    /**
     * The score that ranks indices by importance: {@link #scores()} where present, else {@code |effect|}.
     */
    public double[] importance() {
        return scores.orElseGet(() -> Arrays.stream(effects()).map(Math::abs).toArray()).clone();
    }

    /** The value at {@code index}; an index not in this result throws naming the range. */
    public double value(PatchIndex index) {
        int i = indices.indexOf(index);
        if (i < 0) {
            throw new IllegalArgumentException("no value for " + index.label() + " in this " + site + " result: it "
                    + "holds " + indices.get(0).label() + " .. " + indices.get(indices.size() - 1).label());
        }
        return values[i];
    }

    /** The {@code k} most important indices, most important first. */
    public List<PatchIndex> top(int k) {
        double[] imp = importance();
        return IntStream.range(0, indices.size()).boxed()
                .sorted(Comparator.comparingDouble((Integer i) -> -imp[i]))
                .limit(Math.max(0, k)).map(indices::get).toList();
    }

    /** One row per index: layer, head, pos, token, value, normalized, effect (and score where present). */
    public Table toTable() {
        IntColumn layer = IntColumn.create("layer");
        IntColumn head = IntColumn.create("head");
        IntColumn pos = IntColumn.create("pos");
        StringColumn token = StringColumn.create("token");
        boolean hasHead = indices.stream().anyMatch(i -> i.head().isPresent());
        boolean hasPos = indices.stream().anyMatch(i -> i.pos().isPresent());
        for (PatchIndex ix : indices) {
            layer.append(ix.layer());
            if (hasHead) head.append(ix.head().orElse(-1));
            if (hasPos) {
                pos.append(ix.pos().orElse(-1));
                token.append(ix.pos().isPresent() && ix.pos().getAsInt() < tokens.size()
                        ? tokens.get(ix.pos().getAsInt()) : "");
            }
        }
        Table t = Table.create(method + " " + site + " (" + direction + ", " + metric + ")");
        t.addColumns(layer);
        if (hasHead) t.addColumns(head);
        if (hasPos) t.addColumns(pos, token);
        t.addColumns(DoubleColumn.create("value", values), DoubleColumn.create("normalized", normalized()),
                DoubleColumn.create("effect", effects()));
        scores.ifPresent(s -> t.addColumns(DoubleColumn.create("score", s)));
        return t;
    }

    /**
     * The values as a matrix: [layer][pos] for position sites, [layer][head] for heads over every position,
     * [layer * nHeads + head][pos] for heads per position (rows L0H0, L0H1, ...). Missing cells are NaN.
     */
    public double[][] matrix(boolean normalizedValues) {
        double[] v = normalizedValues ? normalized() : values;
        boolean hasHead = indices.stream().anyMatch(i -> i.head().isPresent());
        boolean hasPos = indices.stream().anyMatch(i -> i.pos().isPresent());
        int rows = hasHead && hasPos ? nLayers * nHeads : nLayers;
        int cols = hasPos ? tokens.size() : nHeads;
        double[][] m = new double[rows][cols];
        for (double[] row : m) Arrays.fill(row, Double.NaN);
        for (int i = 0; i < indices.size(); i++) {
            PatchIndex ix = indices.get(i);
            int r = hasHead && hasPos ? ix.layer() * nHeads + ix.head().getAsInt() : ix.layer();
            int c = hasPos ? ix.pos().getAsInt() : ix.head().getAsInt();
            m[r][c] = v[i];
        }
        return m;
    }

    /** {@link #heatmap(boolean)} of the normalised effect. */
    public HeatMapChart heatmap() {
        return heatmap(true);
    }

    /** A heatmap: layer by position (tokens on the axis), layer by head, or head by position. */
    public HeatMapChart heatmap(boolean normalizedValues) {
        boolean hasHead = indices.stream().anyMatch(i -> i.head().isPresent());
        boolean hasPos = indices.stream().anyMatch(i -> i.pos().isPresent());
        List<String> rows = new ArrayList<>();
        if (hasHead && hasPos) {
            for (int l = 0; l < nLayers; l++) for (int h = 0; h < nHeads; h++) rows.add("L" + l + "H" + h);
        } else {
            for (int l = 0; l < nLayers; l++) rows.add("L" + l);
        }
        List<String> cols = new ArrayList<>();
        if (hasPos) {
            for (int p = 0; p < tokens.size(); p++) cols.add(p + " " + tokens.get(p));
        } else {
            for (int h = 0; h < nHeads; h++) cols.add("H" + h);
        }
        String what = normalizedValues ? "normalised effect" : metric;
        return Plots.heatmap(method + " " + site + " (" + direction + "): " + what, matrix(normalizedValues), rows,
                cols, hasPos ? "position" : "head", hasHead && hasPos ? "head" : "layer");
    }

    /**
     * How well this result (an estimate) ranks like {@code exact} (a patching sweep of the same site): Spearman's ρ
     * between the two effects and the recall of exact's top {@code k} among this result's top {@code k} by
     * importance.
     */
    public Validation compare(PatchResult exact, int k) {
        if (!exact.indices.equals(indices)) {
            throw new IllegalArgumentException("the results patch different indices: " + site + " with "
                    + indices.size() + " vs " + exact.site + " with " + exact.indices.size());
        }
        return Validation.of(method, exact.effects(), effects(), exact.importance(), importance(), k);
    }

    @Override
    public String toString() {
        return "PatchResult(" + method + " " + site + " " + direction + ", " + indices.size() + " indices, clean "
                + fmt(metricClean) + ", corrupt " + fmt(metricCorrupt) + ")";
    }

    private static String fmt(double v) {
        return String.format(java.util.Locale.ROOT, "%.4g", v);
    }
}
