package dev.jlens.viz;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.awt.Color;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * One-call XChart plots for notebooks; every chart renders inline as a PNG when it is a cell's result.
 *
 * <pre>{@code
 * Plots.line("loss", losses);                                        // y against its index
 * Plots.line("logit diff", List.of("clean", "L0", "L1"), Map.of("patched", diffs));   // named x positions
 * Plots.scatter("DLA vs ablation", dla, ablationEffect);
 * Plots.histogram("neuron 17", cache.get("post", 2), 40);
 * Plots.bar("head scores", List.of("0.1", "1.4"), scores);
 * Plots.heatmap("L1", pattern, tokens, tokens, "key", "query");
 * }</pre>
 */
public final class Plots {

    /** Default chart size in pixels. */
    public static final int WIDTH = 640;
    public static final int HEIGHT = 360;
    /** Most points a scatter plot labels one by one. */
    public static final int MAX_POINT_LABELS = 200;

    private Plots() {}

    /** A line chart of {@code y[i]} against {@code i}. */
    public static XYChart line(String title, double[] y) {
        return line(title, "step", "", Map.of(title == null || title.isEmpty() ? "y" : title, y));
    }

    /** A line chart of several named series, each plotted against its index. */
    public static XYChart line(String title, String xLabel, String yLabel, Map<String, double[]> series) {
        Objects.requireNonNull(series, "series");
        if (series.isEmpty()) {
            throw new IllegalArgumentException("line chart needs at least one series");
        }
        XYChart chart = new XYChartBuilder().width(widthFor(title)).height(HEIGHT)
                .title(title == null ? "" : title).xAxisTitle(xLabel).yAxisTitle(yLabel).build();
        chart.getStyler().setLegendVisible(series.size() > 1);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setXAxisTickMarkSpacingHint(90);   // the default packs 4-digit step numbers edge to edge
        for (Map.Entry<String, double[]> e : new LinkedHashMap<>(series).entrySet()) {
            double[] y = e.getValue();
            if (y == null || y.length == 0) {
                throw new IllegalArgumentException("series '" + e.getKey() + "' is empty");
            }
            double[] x = new double[y.length];
            for (int i = 0; i < x.length; i++) {
                x[i] = i;
            }
            chart.addSeries(e.getKey(), x, y).setMarker(SeriesMarkers.NONE);
        }
        return chart;
    }

    /**
     * A line chart over named x positions (layers, tokens, components): each series has one value per label, in
     * order, drawn as a line with markers.
     */
    public static CategoryChart line(String title, List<String> xLabels, Map<String, double[]> series) {
        Objects.requireNonNull(xLabels, "xLabels");
        CategoryChart chart = categoryChart(title, "", "", checkSeries("line chart", xLabels, series));
        chart.getStyler().setDefaultSeriesRenderStyle(CategorySeries.CategorySeriesRenderStyle.Line);
        chart.getStyler().setOverlapped(true);   // every series' point at its label, not offset as grouped bars
        rotateIfCrowded(chart, xLabels);
        for (Map.Entry<String, double[]> e : new LinkedHashMap<>(series).entrySet()) {
            chart.addSeries(e.getKey(), xLabels, boxed(e.getValue()));
        }
        return chart;
    }

    /** A scatter plot of the points {@code (x[i], y[i])}. */
    public static XYChart scatter(String title, double[] x, double[] y) {
        return scatter(title, "", "", x, y, null);
    }

    /** A scatter plot of {@code (x[i], y[i])} from two arrays of the same size (flattened). */
    public static XYChart scatter(String title, NDArray x, NDArray y) {
        return scatter(title, toDoubles(x, "x"), toDoubles(y, "y"));
    }

    /**
     * A scatter plot with axis titles; {@code labels} (or {@code null}) names each point, printed beside it (for up
     * to {@value #MAX_POINT_LABELS} points, e.g. heads or tokens).
     */
    public static XYChart scatter(String title, String xTitle, String yTitle, double[] x, double[] y,
                                  List<String> labels) {
        checkPoints("scatter", x, y);
        if (labels != null && labels.size() != x.length) {
            throw new IllegalArgumentException("scatter has " + x.length + " points but " + labels.size()
                    + " labels; pass one label per point or null");
        }
        if (labels != null && labels.size() > MAX_POINT_LABELS) {
            throw new IllegalArgumentException(labels.size() + " point labels would cover the plot; label at most "
                    + MAX_POINT_LABELS + " points (or plot the rest as another series)");
        }
        XYChart chart = scatterChart(title, xTitle, yTitle);
        chart.getStyler().setLegendVisible(false);
        chart.addSeries(title == null || title.isEmpty() ? "points" : title, x, y);
        if (labels != null) {
            double span = range(y);
            for (int i = 0; i < x.length; i++) {
                String label = labels.get(i);
                if (label == null || label.isEmpty()) continue;
                // just above the marker, in data coordinates
                chart.addAnnotation(new AnnotationText(label, x[i], y[i] + 0.035 * span, false));
            }
        }
        return chart;
    }

    /**
     * A scatter plot of several named point sets, each {@code {x, y}} (two arrays of the same length), in one
     * colour each with a legend.
     */
    public static XYChart scatter(String title, String xTitle, String yTitle, Map<String, double[][]> series) {
        Objects.requireNonNull(series, "series");
        if (series.isEmpty()) throw new IllegalArgumentException("scatter needs at least one series");
        XYChart chart = scatterChart(title, xTitle, yTitle);
        chart.getStyler().setLegendVisible(series.size() > 1);
        for (Map.Entry<String, double[][]> e : new LinkedHashMap<>(series).entrySet()) {
            double[][] xy = e.getValue();
            if (xy == null || xy.length != 2) {
                throw new IllegalArgumentException("scatter series '" + e.getKey() + "' must be {x, y}: two arrays");
            }
            checkPoints("scatter series '" + e.getKey() + "'", xy[0], xy[1]);
            chart.addSeries(e.getKey(), xy[0], xy[1]);
        }
        return chart;
    }

    /**
     * Point estimates with intervals, one per labelled category along x: a marker at each estimate, in one colour per
     * group (e.g. interpretability methods and baselines), and a bar from {@code low} to {@code high} (e.g. AUROC with
     * its bootstrap interval per method). The interval is drawn as an error bar of half its width around its midpoint,
     * so an asymmetric interval is shown exactly. Labels must be distinct.
     *
     * @param labels   the category of each point, in x order
     * @param group    the series each point belongs to
     * @param estimate the point estimates
     * @param low      lower ends
     * @param high     upper ends
     */
    public static CategoryChart intervals(String title, String yTitle, List<String> labels, List<String> group,
                                          double[] estimate, double[] low, double[] high) {
        int n = labels.size();
        if (n == 0) throw new IllegalArgumentException("intervals needs at least one point");
        if (group.size() != n || estimate.length != n || low.length != n || high.length != n) {
            throw new IllegalArgumentException("intervals needs one group, estimate, low and high per label: "
                    + n + " labels, " + group.size() + " groups, " + estimate.length + " estimates, " + low.length
                    + " lows, " + high.length + " highs");
        }
        if (labels.stream().distinct().count() != n) {
            throw new IllegalArgumentException("interval labels must be distinct, got " + labels);
        }
        CategoryChart chart = new CategoryChartBuilder().width(widthFor(title)).height(HEIGHT + 80)
                .title(title == null ? "" : title).yAxisTitle(yTitle == null ? "" : yTitle).build();
        chart.getStyler().setDefaultSeriesRenderStyle(CategorySeries.CategorySeriesRenderStyle.Scatter);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setOverlapped(true);
        chart.getStyler().setXAxisLabelRotation(45);
        chart.getStyler().setMarkerSize(8);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setYAxisTitleVisible(yTitle != null && !yTitle.isEmpty());
        List<Double> mid = new ArrayList<>(), half = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            mid.add((low[i] + high[i]) / 2);
            half.add((high[i] - low[i]) / 2);
        }
        CategorySeries bars = chart.addSeries("interval", labels, mid, half);
        bars.setMarker(SeriesMarkers.NONE);
        bars.setShowInLegend(false);
        for (String g : new java.util.LinkedHashSet<>(group)) {
            List<Double> y = new ArrayList<>();
            for (int i = 0; i < n; i++) y.add(group.get(i).equals(g) ? estimate[i] : Double.NaN);
            chart.addSeries(g, labels, y);
        }
        return chart;
    }

    private static XYChart scatterChart(String title, String xTitle, String yTitle) {
        XYChart chart = new XYChartBuilder().width(widthFor(title)).height(HEIGHT).title(title == null ? "" : title)
                .xAxisTitle(xTitle == null ? "" : xTitle).yAxisTitle(yTitle == null ? "" : yTitle).build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.getStyler().setMarkerSize(6);
        chart.getStyler().setXAxisTitleVisible(xTitle != null && !xTitle.isEmpty());
        chart.getStyler().setYAxisTitleVisible(yTitle != null && !yTitle.isEmpty());
        return chart;
    }

    private static void checkPoints(String what, double[] x, double[] y) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(y, "y");
        if (x.length != y.length) {
            throw new IllegalArgumentException(what + " needs as many x as y values, got " + x.length + " x and "
                    + y.length + " y");
        }
        if (x.length == 0) throw new IllegalArgumentException(what + " has no points");
    }

    /**
     * A histogram of {@code values} in {@code bins} equal-width bins from the smallest value to the largest (the
     * last bin includes the largest); each bar is labelled with its bin's centre. Values must be finite.
     */
    public static CategoryChart histogram(String title, double[] values, int bins) {
        Objects.requireNonNull(values, "values");
        double[] edges = binEdges(values, bins);
        long[] counts = binCounts(values, edges);
        List<Double> centres = new ArrayList<>(bins);
        List<Long> ys = new ArrayList<>(bins);
        for (int i = 0; i < bins; i++) {
            centres.add((edges[i] + edges[i + 1]) / 2);
            ys.add(counts[i]);
        }
        CategoryChart chart = new CategoryChartBuilder().width(widthFor(title)).height(HEIGHT).title(title == null ? "" : title)
                .xAxisTitle("value").yAxisTitle("count").build();
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setAvailableSpaceFill(0.96);   // bars nearly touch, as bins of a histogram do
        chart.getStyler().setXAxisMaxLabelCount(12);
        chart.getStyler().setXAxisDecimalPattern(decimalPattern(edges[bins] - edges[0]));
        chart.getStyler().setXAxisLabelRotation(bins > 12 ? 45 : 0);
        chart.addSeries(title == null || title.isEmpty() ? "count" : title, centres, ys);
        return chart;
    }

    /** A histogram of every element of {@code values} (any shape, any numeric dtype). */
    public static CategoryChart histogram(String title, NDArray values, int bins) {
        return histogram(title, toDoubles(values, "values"), bins);
    }

    /**
     * The {@code bins + 1} edges of {@code bins} equal-width bins spanning {@code values} (a single repeated value
     * gets the bins of {@code [v - 0.5, v + 0.5]}).
     */
    static double[] binEdges(double[] values, int bins) {
        if (bins < 1) throw new IllegalArgumentException("a histogram needs at least one bin, got " + bins);
        if (values.length == 0) throw new IllegalArgumentException("histogram of no values");
        double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < values.length; i++) {
            double v = values[i];
            if (!Double.isFinite(v)) {
                throw new IllegalArgumentException("histogram value " + i + " is " + v + "; drop non-finite values "
                        + "first");
            }
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        if (min == max) {
            min -= 0.5;
            max += 0.5;
        }
        double[] edges = new double[bins + 1];
        for (int i = 0; i <= bins; i++) edges[i] = min + (max - min) * i / bins;
        edges[bins] = max;
        return edges;
    }

    /** How many {@code values} fall in each bin {@code [edges[i], edges[i+1])}, the last bin closed. */
    static long[] binCounts(double[] values, double[] edges) {
        int bins = edges.length - 1;
        long[] counts = new long[bins];
        double min = edges[0], width = (edges[bins] - edges[0]) / bins;
        for (double v : values) {
            int b = (int) Math.floor((v - min) / width);
            // rounding can put a value on an edge into the neighbouring bin: settle it against the edges themselves
            if (b > 0 && v < edges[b]) b--;
            if (b < bins - 1 && v >= edges[b + 1]) b++;
            counts[Math.max(0, Math.min(bins - 1, b))]++;
        }
        return counts;
    }

    private static String decimalPattern(double span) {
        if (span >= 100) return "#,##0";
        if (span >= 10) return "0.#";
        if (span >= 1) return "0.##";
        if (span >= 0.01) return "0.####";
        return "0.##E0";
    }

    /** A bar chart of one value per category. */
    public static CategoryChart bar(String title, List<String> categories, double[] values) {
        Objects.requireNonNull(values, "values");
        return bar(title, categories, Map.of(title == null || title.isEmpty() ? "value" : title, values));
    }

    /** A bar chart of one value per category from a 1-D NDArray. */
    public static CategoryChart bar(String title, List<String> categories, NDArray values) {
        return bar(title, categories, toDoubles(values, "values"));
    }

    /** A grouped bar chart: each series has one value per category, bars side by side with a legend. */
    public static CategoryChart bar(String title, List<String> categories, Map<String, double[]> series) {
        Objects.requireNonNull(categories, "categories");
        CategoryChart chart = categoryChart(title, "", "", checkSeries("bar chart", categories, series));
        chart.getStyler().setDefaultSeriesRenderStyle(CategorySeries.CategorySeriesRenderStyle.Bar);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);   // inside, it covers the tallest bars
        rotateIfCrowded(chart, categories);
        for (Map.Entry<String, double[]> e : new LinkedHashMap<>(series).entrySet()) {
            chart.addSeries(e.getKey(), categories, boxed(e.getValue()));
        }
        return chart;
    }

    /** Slants the category labels when they would overlap (more than 12, or longer than the axis fits). */
    private static void rotateIfCrowded(CategoryChart chart, List<String> categories) {
        int chars = categories.stream().mapToInt(c -> c.length() + 2).sum();
        chart.getStyler().setXAxisLabelRotation(categories.size() > 12 || chars * 8 > WIDTH - 80 ? 45 : 0);
    }

    private static int checkSeries(String what, List<String> labels, Map<String, double[]> series) {
        Objects.requireNonNull(series, "series");
        if (labels.isEmpty()) throw new IllegalArgumentException(what + " needs at least one category");
        if (series.isEmpty()) throw new IllegalArgumentException(what + " needs at least one series");
        for (Map.Entry<String, double[]> e : series.entrySet()) {
            double[] v = e.getValue();
            if (v == null || v.length != labels.size()) {
                throw new IllegalArgumentException(what + " has " + labels.size() + " categories but series '"
                        + e.getKey() + "' has " + (v == null ? "no" : Integer.toString(v.length)) + " values");
            }
        }
        return series.size();
    }

    /** The default width, or wider for a title that would not fit in it (XChart cuts a long title off). */
    public static int widthFor(String title) {
        return Math.max(WIDTH, title == null ? 0 : (int) (title.length() * 8.6) + 40);
    }

    private static CategoryChart categoryChart(String title, String xTitle, String yTitle, int seriesCount) {
        CategoryChart chart = new CategoryChartBuilder().width(widthFor(title)).height(HEIGHT).title(title == null ? "" : title)
                .xAxisTitle(xTitle).yAxisTitle(yTitle).build();
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendVisible(seriesCount > 1);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.getStyler().setXAxisTitleVisible(!xTitle.isEmpty());
        chart.getStyler().setYAxisTitleVisible(!yTitle.isEmpty());
        return chart;
    }

    private static List<Double> boxed(double[] v) {
        List<Double> out = new ArrayList<>(v.length);
        for (double d : v) out.add(d);
        return out;
    }

    private static double range(double[] v) {
        double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
        for (double d : v) {
            min = Math.min(min, d);
            max = Math.max(max, d);
        }
        return max > min ? max - min : 1;
    }

    /** Every element of {@code a}, flattened, as doubles. */
    static double[] toDoubles(NDArray a, String what) {
        Objects.requireNonNull(a, what);
        float[] flat;
        if (a.getDataType() == DataType.FLOAT32) {
            flat = a.toFloatArray();
        } else {
            try (NDArray f = a.toType(DataType.FLOAT32, true)) {
                flat = f.toFloatArray();
            }
        }
        double[] out = new double[flat.length];
        for (int i = 0; i < flat.length; i++) out[i] = flat[i];
        return out;
    }

    /**
     * A heatmap of {@code values[row][col]} (row 0 at the top), with a colour scale: sequential for
     * non-negative values, diverging around zero for signed ones.
     */
    public static HeatMapChart heatmap(String title, double[][] values) {
        Objects.requireNonNull(values, "values");
        int rows = values.length;
        int cols = rows == 0 ? 0 : values[0].length;
        List<String> rowLabels = new ArrayList<>();
        List<String> colLabels = new ArrayList<>();
        for (int r = 0; r < rows; r++) {
            rowLabels.add(Integer.toString(r));
        }
        for (int c = 0; c < cols; c++) {
            colLabels.add(Integer.toString(c));
        }
        return heatmap(title, values, rowLabels, colLabels);
    }

    /** A heatmap of {@code values[row][col]} with row and column labels (e.g. tokens for attention patterns). */
    public static HeatMapChart heatmap(String title, double[][] values, List<String> rowLabels,
                                       List<String> colLabels) {
        return heatmap(title, values, rowLabels, colLabels, "", "");
    }

    /**
     * A heatmap with row and column labels and axis titles: {@code xTitle} under the columns, {@code yTitle} beside
     * the rows (e.g. {@code "key position"}, {@code "query position"}). Up to 100 cells print their value, in black
     * on light cells and white on dark ones. NaN cells are left blank.
     */
    public static HeatMapChart heatmap(String title, double[][] values, List<String> rowLabels,
                                       List<String> colLabels, String xTitle, String yTitle) {
        Objects.requireNonNull(values, "values");
        int rows = values.length;
        if (rows == 0 || values[0].length == 0) {
            throw new IllegalArgumentException("heatmap needs a non-empty matrix");
        }
        int cols = values[0].length;
        if (rowLabels.size() != rows || colLabels.size() != cols) {
            throw new IllegalArgumentException("heatmap is " + rows + "x" + cols + " but got " + rowLabels.size()
                    + " row labels and " + colLabels.size() + " column labels");
        }
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        List<Number[]> cells = new ArrayList<>(rows * cols);
        for (int r = 0; r < rows; r++) {
            if (values[r].length != cols) {
                throw new IllegalArgumentException("heatmap rows differ in length: row 0 has " + cols
                        + ", row " + r + " has " + values[r].length);
            }
            for (int c = 0; c < cols; c++) {
                double v = values[r][c];
                if (Double.isNaN(v)) continue;   // a missing cell stays blank
                min = Math.min(min, v);
                max = Math.max(max, v);
                // XChart puts y index 0 at the bottom; flip so row 0 is on top like a matrix.
                cells.add(new Number[] {c, rows - 1 - r, v});
            }
        }
        if (cells.isEmpty()) {
            min = 0;
            max = 0;
        }
        List<String> yLabels = new ArrayList<>(rowLabels);
        java.util.Collections.reverse(yLabels);
        boolean titled = xTitle != null && !xTitle.isEmpty() || yTitle != null && !yTitle.isEmpty();
        // Column labels that would run into each other are turned (45 degrees, 90 for many columns), and the chart
        // grows to keep the cells' height; a long title widens the chart rather than being cut off.
        int labelChars = colLabels.stream().mapToInt(c -> c.length() + 2).sum();
        int longest = colLabels.stream().mapToInt(String::length).max().orElse(0);
        int rotation = cols > 24 ? 90 : labelChars * 8.5 > WIDTH - 160 ? 45 : 0;
        int labelHeight = rotation == 0 ? 0 : (int) Math.round(longest * 8 * (rotation == 90 ? 1.0 : 0.71));
        HeatMapChart chart = new ValueHeatMapChart(new HeatMapChartBuilder().width(widthFor(title))
                .height(Math.max(HEIGHT, 40 + rows * 18 + (titled ? 20 : 0)) + labelHeight).title(title == null ? "" : title)
                .xAxisTitle(xTitle == null ? "" : xTitle).yAxisTitle(yTitle == null ? "" : yTitle));
        chart.getStyler().setXAxisLabelRotation(rotation);
        chart.getStyler().setXAxisTitleVisible(xTitle != null && !xTitle.isEmpty());
        chart.getStyler().setYAxisTitleVisible(yTitle != null && !yTitle.isEmpty());
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        // values are printed in the cells only where a cell is wide enough for "-0.00" (about 36 pixels)
        chart.getStyler().setShowValue(rows * cols <= 100 && (widthFor(title) - 160.0) / cols >= 36);
        chart.getStyler().setHeatMapValueDecimalPattern("0.00");
        if (min >= 0) {
            // Non-negative values (probabilities, attention): a sequential scale from white.
            chart.getStyler().setRangeColors(new Color[] {new Color(0xf7fbff), new Color(0x6baed6),
                new Color(0x08306b)});
            // The legend prints the scale's ends: start at 0 and round the top up to two significant digits.
            chart.getStyler().setMin(0);
            chart.getStyler().setMax(max == 0 ? 1 : niceCeil(max));
        } else {
            // Signed values: a diverging scale centred on zero, so white means 0.
            double extent = niceCeil(Math.max(Math.abs(min), Math.abs(max)));
            chart.getStyler().setRangeColors(new Color[] {new Color(0x3b4cc0), Color.WHITE,
                new Color(0xb40426)});
            chart.getStyler().setMin(-extent);
            chart.getStyler().setMax(extent);
        }
        chart.getStyler().setLegendVisible(true);
        chart.addSeries(title == null || title.isEmpty() ? "values" : title, colLabels, yLabels, cells);
        return chart;
    }

    /** A heatmap of a 2-D NDArray (any numeric dtype). */
    public static HeatMapChart heatmap(String title, NDArray matrix) {
        return heatmap(title, toMatrix(matrix));
    }

    /** A heatmap of a 2-D NDArray with row and column labels, e.g. an attention pattern over tokens. */
    public static HeatMapChart heatmap(String title, NDArray matrix, List<String> rowLabels, List<String> colLabels) {
        return heatmap(title, toMatrix(matrix), rowLabels, colLabels);
    }

    /** A heatmap of a 2-D NDArray with row and column labels and axis titles. */
    public static HeatMapChart heatmap(String title, NDArray matrix, List<String> rowLabels, List<String> colLabels,
                                       String xTitle, String yTitle) {
        return heatmap(title, toMatrix(matrix), rowLabels, colLabels, xTitle, yTitle);
    }

    private static double[][] toMatrix(NDArray matrix) {
        Objects.requireNonNull(matrix, "matrix");
        if (matrix.getShape().dimension() != 2) {
            throw new IllegalArgumentException("heatmap needs a 2-D array, got shape " + matrix.getShape());
        }
        int rows = (int) matrix.getShape().get(0);
        int cols = (int) matrix.getShape().get(1);
        float[] flat;
        if (matrix.getDataType() == DataType.FLOAT32) {
            flat = matrix.toFloatArray();
        } else {
            try (NDArray f = matrix.toType(DataType.FLOAT32, true)) {
                flat = f.toFloatArray();
            }
        }
        double[][] values = new double[rows][cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                values[r][c] = flat[r * cols + c];
            }
        }
        return values;
    }

    /** Moves a chart's legend beside the plot, where it covers no data (inside, it hides lines that reach the top). */
    public static <C extends org.knowm.xchart.internal.chartpart.Chart<?, ?>> C legendOutside(C chart) {
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        return chart;
    }

    /** {@code x > 0} rounded up to two significant digits (0.9419 -> 0.95), exact in decimal so legends print well. */
    static double niceCeil(double x) {
        java.math.BigDecimal step = java.math.BigDecimal.ONE.scaleByPowerOfTen((int) Math.floor(Math.log10(x)) - 1);
        return java.math.BigDecimal.valueOf(Math.ceil(x / step.doubleValue())).multiply(step).doubleValue();
    }
}
