package dev.jlens.viz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import java.awt.image.BufferedImage;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import java.awt.Color;
import java.util.ArrayList;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;

class PlotsTest {

    @Test
    void lineChartHasOneSeriesPerName() {
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("train", new double[] {3, 2, 1});
        series.put("eval", new double[] {3.5, 2.5});
        XYChart chart = Plots.line("loss", "step", "loss", series);
        assertEquals(List.of("train", "eval"), List.copyOf(chart.getSeriesMap().keySet()));
        assertEquals(2.0, chart.getSeriesMap().get("train").getXMax());
        assertEquals(1.0, chart.getSeriesMap().get("train").getYMin());
        assertEquals(1, Plots.line("y", new double[] {1, 2}).getSeriesMap().size());
        assertThrows(IllegalArgumentException.class, () -> Plots.line("e", "x", "y", Map.of("s", new double[0])));
    }

    @Test
    void heatmapPutsRowZeroOnTopAndDrawsColour() {
        HeatMapChart chart = Plots.heatmap("m", new double[][] {{0, 1, 2}, {3, 4, 5}});
        var series = chart.getHeatMapSeries();
        // XChart's y index 0 is the bottom row, so matrix row 0 (value 0 at column 0) sits at y = 1.
        boolean found = false;
        for (Number[] cell : series.getHeatData()) {
            if (cell[0].intValue() == 0 && cell[1].intValue() == 1) {
                assertEquals(0.0, cell[2].doubleValue());
                found = true;
            }
        }
        assertTrue(found);
        BufferedImage img = BitmapEncoder.getBufferedImage(chart);
        assertTrue(img.getWidth() > 0 && img.getHeight() > 0);
    }

    @Test
    void signedValuesGetAScaleCentredOnZero() {
        HeatMapChart signed = Plots.heatmap("s", new double[][] {{-1, 2}});
        assertEquals(-2.0, signed.getStyler().getMin());
        assertEquals(2.0, signed.getStyler().getMax());
        HeatMapChart positive = Plots.heatmap("p", new double[][] {{0.25, 0.75}});
        assertEquals(0.0, positive.getStyler().getMin());
        assertEquals(0.75, positive.getStyler().getMax());
        // legend ends are rounded up to two significant digits so they print as short decimals
        HeatMapChart ragged = Plots.heatmap("q", new double[][] {{7.6e-4, 0.9419220606050658}});
        assertEquals("0.95", String.valueOf(ragged.getStyler().getMax()));
        assertEquals("-0.0013", String.valueOf(-Plots.niceCeil(0.00123)));
    }

    @Test
    void heatmapRejectsRaggedOrMislabelledInput() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Plots.heatmap("r", new double[][] {{1, 2}, {3}}));
        assertTrue(e.getMessage().contains("row 1"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> Plots.heatmap("l", new double[][] {{1, 2}}, List.of("a", "b"), List.of("x", "y")));
    }

    @Test
    void heatmapFromNdarray() {
        try (NDManager m = NDManager.newBaseManager()) {
            HeatMapChart chart = Plots.heatmap("a", m.arange(6f).reshape(2, 3));
            assertEquals(6, chart.getHeatMapSeries().getHeatData().size());
            assertThrows(IllegalArgumentException.class, () -> Plots.heatmap("v", m.arange(3f)));
        }
    }

    @Test
    void scatterPlotsThePointsAsGiven() {
        XYChart chart = Plots.scatter("s", new double[] {1, 2, 3}, new double[] {4, -5, 6});
        assertEquals(1, chart.getSeriesMap().size());
        XYSeries series = chart.getSeriesMap().values().iterator().next();
        assertEquals(XYSeries.XYSeriesRenderStyle.Scatter, chart.getStyler().getDefaultSeriesRenderStyle());
        assertArrayEquals(new double[] {1, 2, 3}, series.getXData());
        assertArrayEquals(new double[] {4, -5, 6}, series.getYData());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Plots.scatter("m", new double[] {1, 2}, new double[] {1}));
        assertTrue(e.getMessage().contains("2 x") && e.getMessage().contains("1 y"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Plots.scatter("e", new double[0], new double[0]));
        try (NDManager m = NDManager.newBaseManager()) {
            XYChart nd = Plots.scatter("n", m.arange(4f).reshape(2, 2), m.create(new int[] {3, 1, 4, 1}));
            XYSeries ns = nd.getSeriesMap().values().iterator().next();
            assertArrayEquals(new double[] {0, 1, 2, 3}, ns.getXData());
            assertArrayEquals(new double[] {3, 1, 4, 1}, ns.getYData());
        }
    }

    @Test
    void scatterWithTitlesLabelsAndSeries() {
        double[] x = {0, 1, 2}, y = {0, 1, 0};
        XYChart labelled = Plots.scatter("h", "DLA", "ablation", x, y, List.of("0.1", "1.4", "2.2"));
        assertEquals("DLA", labelled.getXAxisTitle());
        assertEquals("ablation", labelled.getYAxisTitle());
        assertTrue(labelled.getStyler().isXAxisTitleVisible());
        // the labels are drawn: the picture differs from the same plot without them
        XYChart plain = Plots.scatter("h", "DLA", "ablation", x, y, null);
        assertFalse(java.util.Arrays.equals(pixels(labelled), pixels(plain)), "point labels were not drawn");
        assertThrows(IllegalArgumentException.class, () -> Plots.scatter("h", "", "", x, y, List.of("a")));

        Map<String, double[][]> sets = new LinkedHashMap<>();
        sets.put("layer 0", new double[][] {{1, 2}, {3, 4}});
        sets.put("layer 1", new double[][] {{5}, {6}});
        XYChart multi = Plots.scatter("m", "x", "y", sets);
        assertEquals(List.of("layer 0", "layer 1"), List.copyOf(multi.getSeriesMap().keySet()));
        assertArrayEquals(new double[] {6}, multi.getSeriesMap().get("layer 1").getYData());
        assertTrue(multi.getStyler().isLegendVisible());
        assertThrows(IllegalArgumentException.class,
                () -> Plots.scatter("m", "x", "y", Map.of("bad", new double[][] {{1, 2}, {3}})));
        assertThrows(IllegalArgumentException.class,
                () -> Plots.scatter("m", "x", "y", Map.of("bad", new double[][] {{1, 2}})));
    }

    @Test
    void histogramCountsEveryValueOnceInEqualBins() {
        double[] values = {0, 1, 2, 3, 4};
        CategoryChart chart = Plots.histogram("h", values, 2);
        CategorySeries series = chart.getSeriesMap().values().iterator().next();
        // bins [0, 2) and [2, 4]: the largest value falls in the last bin
        assertEquals(List.of(1.0, 3.0), new ArrayList<>(series.getXData()));
        assertEquals(List.of(2L, 3L), new ArrayList<>(series.getYData()));

        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        double[] normal = new double[1000];
        for (int i = 0; i < normal.length; i++) normal[i] = r.nextGaussian();
        for (int bins : new int[] {1, 7, 30}) {
            CategorySeries s = Plots.histogram("n", normal, bins).getSeriesMap().values().iterator().next();
            assertEquals(bins, s.getYData().size());
            assertEquals(normal.length, s.getYData().stream().mapToLong(Number::longValue).sum());
        }
        // an independent count of one bin
        double[] edges = Plots.binEdges(normal, 30);
        long inBin7 = java.util.Arrays.stream(normal).filter(v -> v >= edges[7] && v < edges[8]).count();
        assertEquals(inBin7, Plots.binCounts(normal, edges)[7]);

        // a constant gets one full bin in the middle of [v - 0.5, v + 0.5]
        long[] constant = Plots.binCounts(new double[] {2, 2, 2}, Plots.binEdges(new double[] {2, 2, 2}, 3));
        assertArrayEquals(new long[] {0, 3, 0}, constant);

        try (NDManager m = NDManager.newBaseManager()) {
            CategorySeries nd = Plots.histogram("a", m.arange(100f).reshape(4, 25), 10).getSeriesMap().values()
                    .iterator().next();
            for (Number c : nd.getYData()) assertEquals(10L, c.longValue());
        }
        assertThrows(IllegalArgumentException.class, () -> Plots.histogram("e", new double[0], 5));
        assertThrows(IllegalArgumentException.class, () -> Plots.histogram("b", values, 0));
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> Plots.histogram("nan", new double[] {1, Double.NaN}, 3));
        assertTrue(nan.getMessage().contains("value 1"), nan.getMessage());
    }

    @Test
    void barChartsHaveOneBarPerCategoryPerSeries() {
        CategoryChart one = Plots.bar("scores", List.of("L0H1", "L1H4"), new double[] {0.5, 0.9});
        assertEquals(CategorySeries.CategorySeriesRenderStyle.Bar, one.getStyler().getDefaultSeriesRenderStyle());
        CategorySeries s = one.getSeriesMap().get("scores");
        assertEquals(List.of("L0H1", "L1H4"), new ArrayList<>(s.getXData()));
        assertEquals(List.of(0.5, 0.9), new ArrayList<>(s.getYData()));
        assertFalse(one.getStyler().isLegendVisible());

        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("clean", new double[] {1, 2, 3});
        series.put("ablated", new double[] {0.5, 1, 1.5});
        CategoryChart grouped = Plots.bar("logit diff", List.of("a", "b", "c"), series);
        assertEquals(List.of("clean", "ablated"), List.copyOf(grouped.getSeriesMap().keySet()));
        assertTrue(grouped.getStyler().isLegendVisible());
        assertEquals(List.of(0.5, 1.0, 1.5), new ArrayList<>(grouped.getSeriesMap().get("ablated").getYData()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Plots.bar("x", List.of("a", "b"), new double[] {1}));
        assertTrue(e.getMessage().contains("2 categories") && e.getMessage().contains("1 values"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Plots.bar("x", List.of(), new double[0]));
        assertThrows(IllegalArgumentException.class, () -> Plots.bar("x", List.of("a"), Map.of()));
        try (NDManager m = NDManager.newBaseManager()) {
            CategoryChart nd = Plots.bar("n", List.of("a", "b"), m.create(new float[] {2, 3}));
            assertEquals(List.of(2.0, 3.0), new ArrayList<>(nd.getSeriesMap().get("n").getYData()));
        }
        assertTrue(pixels(grouped).length > 0);
    }

    @Test
    void lineOverNamedPositions() {
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("clean", new double[] {3, 2, 1});
        series.put("patched", new double[] {3, 1, 0});
        CategoryChart chart = Plots.line("logit diff", List.of("embed", "L0", "L1"), series);
        assertEquals(CategorySeries.CategorySeriesRenderStyle.Line, chart.getStyler().getDefaultSeriesRenderStyle());
        assertEquals(List.of("embed", "L0", "L1"), new ArrayList<>(chart.getSeriesMap().get("clean").getXData()));
        assertEquals(List.of(3.0, 1.0, 0.0), new ArrayList<>(chart.getSeriesMap().get("patched").getYData()));
        assertEquals(2, chart.getSeriesMap().size());
        assertThrows(IllegalArgumentException.class,
                () -> Plots.line("x", List.of("a", "b"), Map.of("s", new double[] {1, 2, 3})));
        assertTrue(pixels(chart).length > 0);
    }

    @Test
    void heatmapAxisTitles() {
        HeatMapChart chart = Plots.heatmap("L1H4", new double[][] {{1, 0}, {0.5, 0.5}}, List.of("a", "b"),
                List.of("a", "b"), "key", "query");
        assertEquals("key", chart.getXAxisTitle());
        assertEquals("query", chart.getYAxisTitle());
        assertTrue(chart.getStyler().isXAxisTitleVisible() && chart.getStyler().isYAxisTitleVisible());
        assertFalse(Plots.heatmap("p", new double[][] {{1}}).getStyler().isXAxisTitleVisible());
        try (NDManager m = NDManager.newBaseManager()) {
            HeatMapChart nd = Plots.heatmap("n", m.arange(4f).reshape(2, 2), List.of("0", "1"), List.of("x", "y"),
                    "cols", "rows");
            assertEquals("rows", nd.getYAxisTitle());
        }
    }

    @Test
    void valueTextIsBlackOnLightCellsAndWhiteOnDarkOnes() {
        assertEquals(Color.BLACK, ValueHeatMapChart.valueTextColor(Color.WHITE));
        assertEquals(Color.BLACK, ValueHeatMapChart.valueTextColor(new Color(0xf7fbff)));
        assertEquals(Color.BLACK, ValueHeatMapChart.valueTextColor(new Color(0x6baed6)));
        assertEquals(Color.WHITE, ValueHeatMapChart.valueTextColor(new Color(0x08306b)));
        assertEquals(Color.WHITE, ValueHeatMapChart.valueTextColor(new Color(0x3b4cc0)));
        assertEquals(Color.WHITE, ValueHeatMapChart.valueTextColor(new Color(0xb40426)));
        assertEquals(Color.WHITE, ValueHeatMapChart.valueTextColor(Color.BLACK));
        assertEquals(0.0, ValueHeatMapChart.luminance(Color.BLACK), 1e-12);
        assertEquals(1.0, ValueHeatMapChart.luminance(Color.WHITE), 1e-12);
        Color[] range = {Color.WHITE, new Color(0x808080), Color.BLACK};
        assertEquals(Color.WHITE, ValueHeatMapChart.cellColor(range, 0, 1, -3));
        assertEquals(new Color(0x808080), ValueHeatMapChart.cellColor(range, 0, 1, 0.5));
        assertEquals(Color.BLACK, ValueHeatMapChart.cellColor(range, 0, 1, 1));
        assertEquals(new Color(0x40, 0x40, 0x40), ValueHeatMapChart.cellColor(range, 0, 1, 0.75));
    }

    @Test
    void darkCellsGetWhiteValuesInTheRenderedImage() {
        HeatMapChart chart = Plots.heatmap("m", new double[][] {{0, 0.5}, {0.2, 1}});
        BufferedImage img = BitmapEncoder.getBufferedImage(chart);
        // the cell of the largest value is filled with the scale's darkest colour; the legend bar sits on the right
        int dark = new Color(0x08306b).getRGB(), light = new Color(0xf7fbff).getRGB();
        int[] darkBox = box(img, dark), lightBox = box(img, light);
        assertTrue(darkBox != null && lightBox != null, "cells not found");
        assertTrue(count(img, darkBox, c -> ValueHeatMapChart.luminance(c) > 0.7) > 10,
                "no light text on the dark cell");
        assertTrue(count(img, lightBox, c -> ValueHeatMapChart.luminance(c) < 0.2) > 10,
                "no dark text on the light cell");
        // and XChart's own single-colour values are not painted over them
        assertEquals(0, count(img, darkBox, c -> ValueHeatMapChart.luminance(c) < 0.01 && c.getRGB() != dark));
        assertTrue(chart.getStyler().isShowValue(), "painting must leave the styler's setting as it was");
    }

    @Test
    void valuesArePrintedOnlyInCellsWideEnoughForThem() {
        double[][] narrow = new double[3][25], wide = new double[3][7];
        assertTrue(!Plots.heatmap("patching", narrow).getStyler().isShowValue(), "25 columns: cells too narrow for values");
        assertTrue(Plots.heatmap("patching", wide).getStyler().isShowValue(), "7 columns: values fit");
    }

    /** Bounding box {x0, y0, x1, y1} of the pixels of exactly {@code rgb} in the left 70% of the image. */
    private static int[] box(BufferedImage img, int rgb) {
        int x0 = Integer.MAX_VALUE, y0 = Integer.MAX_VALUE, x1 = -1, y1 = -1;
        for (int y = 0; y < img.getHeight(); y++) for (int x = 0; x < img.getWidth() * 7 / 10; x++) {
            if (img.getRGB(x, y) == rgb) {
                x0 = Math.min(x0, x);
                y0 = Math.min(y0, y);
                x1 = Math.max(x1, x);
                y1 = Math.max(y1, y);
            }
        }
        return x1 < 0 ? null : new int[] {x0, y0, x1, y1};
    }

    private static int count(BufferedImage img, int[] box, java.util.function.Predicate<Color> p) {
        int n = 0;
        for (int y = box[1]; y <= box[3]; y++) for (int x = box[0]; x <= box[2]; x++) {
            if (p.test(new Color(img.getRGB(x, y)))) n++;
        }
        return n;
    }

    private static int[] pixels(org.knowm.xchart.internal.chartpart.Chart<?, ?> chart) {
        BufferedImage img = BitmapEncoder.getBufferedImage(chart);
        return img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
    }

    @Test
    void longTitlesWidenTheChartAndCrowdedColumnLabelsTurn() {
        double[][] v = {{1, 2, 3}, {4, 5, 6}};
        HeatMapChart plain = Plots.heatmap("short", v, java.util.List.of("a", "b"), java.util.List.of("x", "y", "z"));
        assertEquals(Plots.WIDTH, plain.getWidth());
        assertEquals(0, plain.getStyler().getXAxisLabelRotation());
        String longTitle = "a title much longer than the default width of a chart allows to be drawn in one line, really";
        assertTrue(Plots.heatmap(longTitle, v).getWidth() > Plots.WIDTH, "a long title widens the heatmap");
        assertTrue(Plots.bar(longTitle, java.util.List.of("a"), new double[] {1}).getWidth() > Plots.WIDTH);
        assertTrue(Plots.line(longTitle, new double[] {1, 2}).getWidth() > Plots.WIDTH);
        HeatMapChart crowded = Plots.heatmap("t", v, java.util.List.of("a", "b"), java.util.List.of(
                "self_attn.qkv_proj.weight", "post_attention_layernorm.weight", "mlp.gate_up_proj.weight"));
        assertEquals(45, crowded.getStyler().getXAxisLabelRotation());
        assertTrue(crowded.getHeight() > plain.getHeight(), "turned labels get room below the cells");
        double[][] wide = new double[2][30];
        java.util.List<String> cols = new java.util.ArrayList<>();
        for (int i = 0; i < 30; i++) cols.add(Integer.toString(i));
        assertEquals(90, Plots.heatmap("t", wide, java.util.List.of("a", "b"), cols).getStyler().getXAxisLabelRotation());
    }
}
