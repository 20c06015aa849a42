package dev.jlens.viz;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.awt.Color;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** One-call XChart plots for notebooks; every chart renders inline as a PNG when it is a cell's result. */
public final class Plots {

    /** Default chart size in pixels. */
    public static final int WIDTH = 640;
    public static final int HEIGHT = 360;

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
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT)
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
                min = Math.min(min, v);
                max = Math.max(max, v);
                // XChart puts y index 0 at the bottom; flip so row 0 is on top like a matrix.
                cells.add(new Number[] {c, rows - 1 - r, v});
            }
        }
        List<String> yLabels = new ArrayList<>(rowLabels);
        java.util.Collections.reverse(yLabels);
        HeatMapChart chart = new HeatMapChartBuilder().width(WIDTH).height(Math.max(HEIGHT, 40 + rows * 18))
                .title(title == null ? "" : title).build();
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setShowValue(rows * cols <= 100);
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

    /** {@code x > 0} rounded up to two significant digits (0.9419 -> 0.95), exact in decimal so legends print well. */
    static double niceCeil(double x) {
        java.math.BigDecimal step = java.math.BigDecimal.ONE.scaleByPowerOfTen((int) Math.floor(Math.log10(x)) - 1);
        return java.math.BigDecimal.valueOf(Math.ceil(x / step.doubleValue())).multiply(step).doubleValue();
    }
}
