package dev.jlens.viz;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.font.FontRenderContext;
import java.awt.font.TextLayout;
import java.awt.geom.Rectangle2D;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.HeatMapSeries;
import org.knowm.xchart.style.HeatMapStyler;

/**
 * A heatmap whose cell values stay readable: XChart prints every value in one colour, which vanishes on the dark
 * end of the scale, so when the styler's {@code showValue} is on this chart paints the values itself, black on
 * light cells and white on dark ones ({@link #valueTextColor}). The cell geometry follows XChart 3.8's
 * {@code PlotContent_HeatMap}.
 */
final class ValueHeatMapChart extends HeatMapChart {

    ValueHeatMapChart(HeatMapChartBuilder builder) {
        super(builder);
    }

    @Override
    public void paint(Graphics2D g, int width, int height) {
        HeatMapStyler st = getStyler();
        if (!st.isShowValue()) {
            super.paint(g, width, height);
            return;
        }
        st.setShowValue(false);   // XChart would print every value in one colour over ours
        try {
            super.paint(g, width, height);
        } finally {
            st.setShowValue(true);
        }
        paintValues(g);
    }

    private void paintValues(Graphics2D g) {
        HeatMapStyler st = getStyler();
        HeatMapSeries series = getHeatMapSeries();
        if (series == null || !series.isEnabled()) return;
        List<?> xs = series.getXData();
        List<?> ys = series.getYData();
        Rectangle2D b = plot.getBounds();
        double contentW = st.getPlotContentSize() * b.getWidth();
        double xOff = ((int) b.getWidth() - contentW) / 2;
        double contentH = st.getPlotContentSize() * b.getHeight();
        double yOff = ((int) b.getHeight() - contentH) / 2;
        double cellW = (b.getWidth() - 2 * xOff) / xs.size();
        double cellH = (b.getHeight() - 2 * yOff) / ys.size();
        Function<Double, String> format = valueFormat(st);
        Font font = st.getValueFont();
        FontRenderContext frc = new FontRenderContext(null, true, false);
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        double min = series.getMin(), max = series.getMax();
        for (Number[] cell : series.getHeatData()) {
            if (cell == null || cell[2] == null) continue;
            int xi = cell[0].intValue(), yi = cell[1].intValue();
            if (xi >= xs.size() || yi >= ys.size()) continue;
            double v = cell[2].doubleValue();
            double cx = b.getX() + xOff + cellW * xi + cellW / 2;
            double cy = b.getY() + yOff + cellH * (ys.size() - 1 - yi) + cellH / 2;
            TextLayout text = new TextLayout(format.apply(v), font, frc);
            Rectangle2D tb = text.getBounds();
            g.setColor(valueTextColor(cellColor(st.getRangeColors(), min, max, v)));
            g.fill(text.getOutline(java.awt.geom.AffineTransform.getTranslateInstance(cx - tb.getWidth() / 2,
                    cy + tb.getHeight() / 2)));
        }
    }

    private static Function<Double, String> valueFormat(HeatMapStyler st) {
        if (st.getHeatMapDecimalValueFormatter() != null) return st.getHeatMapDecimalValueFormatter();
        String pattern = st.getHeatMapValueDecimalPattern() == null ? "#.###" : st.getHeatMapValueDecimalPattern();
        DecimalFormat df = new DecimalFormat(pattern, DecimalFormatSymbols.getInstance(Locale.ROOT));
        return df::format;
    }

    /**
     * The colour XChart fills a cell of value {@code v} with on a gradient through {@code range} from {@code min}
     * to {@code max} (values outside are clamped to the ends).
     */
    static Color cellColor(Color[] range, double min, double max, double v) {
        if (range == null || range.length == 0) return Color.WHITE;
        if (range.length == 1 || !(max > min) || v <= min) return range[0];
        if (v >= max) return range[range.length - 1];
        double scaled = (v - min) / (max - min) * (range.length - 1);
        int i = Math.min((int) scaled, range.length - 2);
        double f = scaled - i;
        Color a = range[i], c = range[i + 1];
        return new Color((int) Math.round(a.getRed() + (c.getRed() - a.getRed()) * f),
                (int) Math.round(a.getGreen() + (c.getGreen() - a.getGreen()) * f),
                (int) Math.round(a.getBlue() + (c.getBlue() - a.getBlue()) * f));
    }

    /**
     * Black or white, whichever contrasts more with {@code background} by the WCAG contrast ratio of relative
     * luminances: black on light cells, white on dark ones.
     */
    static Color valueTextColor(Color background) {
        double l = luminance(background);
        double onBlack = (l + 0.05) / 0.05;      // contrast of black text
        double onWhite = 1.05 / (l + 0.05);      // contrast of white text
        return onBlack >= onWhite ? Color.BLACK : Color.WHITE;
    }

    /** WCAG relative luminance of an sRGB colour, 0 (black) to 1 (white). */
    static double luminance(Color c) {
        return 0.2126 * linear(c.getRed()) + 0.7152 * linear(c.getGreen()) + 0.0722 * linear(c.getBlue());
    }

    private static double linear(int channel) {
        double s = channel / 255.0;
        return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    }
}
