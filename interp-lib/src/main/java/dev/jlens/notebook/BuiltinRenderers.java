package dev.jlens.notebook;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.awt.image.RenderedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Base64;
import java.util.Locale;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.internal.chartpart.Chart;
import tech.tablesaw.api.ColumnType;
import tech.tablesaw.api.Table;
import tech.tablesaw.columns.Column;

/** The renderers {@link Display} starts with: tables, charts, images, NDArrays and {@link HtmlRenderable}. */
final class BuiltinRenderers {

    /** Tables longer than this show their head and tail only. */
    static final int TABLE_MAX_ROWS = 20;
    static final int TABLE_HEAD_ROWS = 10;
    static final int TABLE_TAIL_ROWS = 5;
    /** Table cells up to this many characters do not wrap; longer text wraps to keep the table in the window. */
    static final int TABLE_NOWRAP_CHARS = 24;
    /**
     * NDArrays with more elements than this are summarized: along each axis longer than {@code 2 *}
     * {@link #ARRAY_EDGE_ITEMS} the preview shows the first and the last {@code ARRAY_EDGE_ITEMS} entries with
     * {@code ...} between (as numpy and PyTorch print), so the last position is always in view.
     */
    static final int ARRAY_FULL_PREVIEW = 200;
    static final int ARRAY_EDGE_ITEMS = 3;

    private BuiltinRenderers() {}

    static void registerAll() {
        Display.register(HtmlRenderable.class, Display.HTML, HtmlRenderable::toHtml);
        Display.register(RenderedImage.class, Display.PNG, Display::png);
        Display.register(RenderedImage.class, Display.TEXT,
                img -> img.getClass().getSimpleName() + " " + img.getWidth() + "x" + img.getHeight());
        Display.register(Table.class, Display.HTML, BuiltinRenderers::tableHtml);
        Display.register(Table.class, Display.TEXT, BuiltinRenderers::tableText);
        Display.register(Chart.class, Display.PNG, BuiltinRenderers::chartPng);
        Display.register(Chart.class, Display.TEXT, BuiltinRenderers::chartText);
        Display.register(NDArray.class, Display.TEXT, BuiltinRenderers::arrayText);
        Display.register(NDArray.class, Display.HTML, BuiltinRenderers::arrayHtml);
    }

    // ---- Tablesaw -------------------------------------------------------------------------------------------

    static String tableText(Table t) {
        return t.rowCount() > TABLE_MAX_ROWS ? t.print(TABLE_MAX_ROWS) : t.printAll();
    }

    static String tableHtml(Table t) {
        int rows = t.rowCount();
        boolean cut = rows > TABLE_MAX_ROWS;
        StringBuilder sb = new StringBuilder(256 + rows * 32);
        // The caption is a line under the table, not a <caption>: a caption is as wide as its table, so under a
        // narrow table it wrapped one word per line, and keeping it on one line (nowrap) stretched the columns. In an
        // inline block the two sit together, the table keeps its own width and the caption runs past it.
        sb.append("<div class=\"jlens-table\" style=\"display:inline-block;max-width:100%\">");
        sb.append("<table style=\"border-collapse:collapse;font-family:monospace;font-size:12px;margin:0\">");
        String caption = (t.name() == null || t.name().isBlank() ? "" : t.name() + " · ")
                + rows + (rows == 1 ? " row × " : " rows × ") + t.columnCount()
                + (t.columnCount() == 1 ? " column" : " columns");
        sb.append("<thead><tr>");
        for (Column<?> c : t.columns()) {
            sb.append("<th style=\"").append(align(c))
                    .append(";border-bottom:1px solid #999;padding:2px 8px;white-space:nowrap\">")
                    .append(Display.escapeHtml(c.name())).append("</th>");
        }
        sb.append("</tr></thead><tbody>");
        if (!cut) {
            appendRows(sb, t, 0, rows);
        } else {
            appendRows(sb, t, 0, TABLE_HEAD_ROWS);
            sb.append("<tr>");
            for (int i = 0; i < t.columnCount(); i++) {
                sb.append("<td style=\"text-align:center;padding:2px 8px;color:#999\">…</td>");
            }
            sb.append("</tr>");
            appendRows(sb, t, rows - TABLE_TAIL_ROWS, rows);
        }
        sb.append("</tbody></table>");
        sb.append("<div class=\"jlens-table-caption\" style=\"white-space:nowrap;text-align:left;color:#666;"
                + "font-family:monospace;font-size:12px;padding-top:2px\">")
                .append(Display.escapeHtml(caption)).append("</div>");
        sb.append("</div>");
        return sb.toString();
    }

    private static void appendRows(StringBuilder sb, Table t, int from, int to) {
        for (int r = from; r < to; r++) {
            sb.append("<tr>");
            for (Column<?> c : t.columns()) {
                String text = c.getString(r);
                // short values (names, numbers) stay on one line; a browser would break "attn-only-2l" at a hyphen
                sb.append("<td style=\"").append(align(c)).append(";padding:2px 8px")
                        .append(text.length() <= TABLE_NOWRAP_CHARS ? ";white-space:nowrap" : "").append("\">")
                        .append(Display.escapeHtml(text)).append("</td>");
            }
            sb.append("</tr>");
        }
    }

    private static String align(Column<?> c) {
        ColumnType type = c.type();
        String name = type.name();
        boolean numeric = name.equals("DOUBLE") || name.equals("FLOAT") || name.equals("INTEGER")
                || name.equals("LONG") || name.equals("SHORT");
        return numeric ? "text-align:right" : "text-align:left";
    }

    // ---- XChart ---------------------------------------------------------------------------------------------

    static String chartPng(Chart<?, ?> chart) {
        try {
            return Base64.getEncoder().encodeToString(
                    BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG));
        } catch (IOException e) {
            throw new UncheckedIOException("encoding the chart as PNG failed", e);
        }
    }

    static String chartText(Chart<?, ?> chart) {
        String title = chart.getTitle();
        // name XChart's chart type, not a project subclass of it (Plots' heatmaps paint their own cell values)
        Class<?> type = chart.getClass();
        while (!type.getName().startsWith("org.knowm.xchart.") && type.getSuperclass() != null) {
            type = type.getSuperclass();
        }
        return type.getSimpleName() + (title == null || title.isEmpty() ? "" : " \"" + title + "\"")
                + " (" + chart.getWidth() + "x" + chart.getHeight() + ")";
    }

    // ---- DJL NDArray ----------------------------------------------------------------------------------------

    /** One line: dtype, shape, device, and min/mean/max for floating-point arrays. */
    static String arraySummary(NDArray a) {
        if (a.isReleased()) {
            return "NDArray (closed)";
        }
        StringBuilder sb = new StringBuilder("NDArray ");
        if (a.getName() != null && !a.getName().isEmpty()) {
            sb.append('"').append(a.getName()).append("\" ");
        }
        sb.append(a.getDataType().toString().toLowerCase(Locale.ROOT)).append(' ')
                .append(shapeText(a.getShape())).append(" on ").append(a.getDevice());
        DataType dt = a.getDataType();
        if (dt.isFloating() && a.size() > 0) {
            sb.append(String.format(Locale.ROOT, " · min %.4g mean %.4g max %.4g",
                    scalar(a, "min"), scalar(a, "mean"), scalar(a, "max")));
        }
        return sb.toString();
    }

    private static double scalar(NDArray a, String op) {
        // Each reduction makes a new native array: close it at once so displaying never leaks.
        try (NDArray r = switch (op) {
            case "min" -> a.min();
            case "max" -> a.max();
            default -> a.mean();
        }) {
            // toXxxArray copies out; getFloat() would make (and leak) one more indexed array.
            if (r.getDataType() == DataType.FLOAT64) {
                return r.toDoubleArray()[0];
            }
            if (r.getDataType() == DataType.FLOAT32) {
                return r.toFloatArray()[0];
            }
            try (NDArray f = r.toType(DataType.FLOAT32, true)) {
                return f.toFloatArray()[0];
            }
        }
    }

    static String shapeText(Shape shape) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < shape.dimension(); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(shape.get(i));
        }
        return sb.append(']').toString();
    }

    /**
     * The preview: the whole array when small, otherwise its first and last {@link #ARRAY_EDGE_ITEMS} entries
     * along every axis longer than twice that, with {@code ...} for what is left out.
     */
    static String arrayPreview(NDArray a) {
        if (a.isReleased() || a.size() == 0) {
            return "";
        }
        Shape shape = a.getShape();
        if (a.size() <= ARRAY_FULL_PREVIEW || shape.dimension() == 0) {
            return contentOf(a);
        }
        int nd = shape.dimension();
        long[] full = shape.getShape();
        boolean[] cut = new boolean[nd];
        // Slicing and concatenating make arrays besides the corner pieces: the scope closes all of them.
        try (NDScope scope = new NDScope()) {
            NDArray x = a;
            for (int d = 0; d < nd; d++) {
                if (full[d] <= 2L * ARRAY_EDGE_ITEMS) {
                    continue;
                }
                cut[d] = true;
                x = x.get(axisSlice(nd, d, 0, ARRAY_EDGE_ITEMS))
                        .concat(x.get(axisSlice(nd, d, full[d] - ARRAY_EDGE_ITEMS, full[d])), d);
            }
            String[] cells = cellText(x);
            long[] kept = x.getShape().getShape();
            StringBuilder sb = new StringBuilder();
            sb.append("first and last ").append(ARRAY_EDGE_ITEMS).append(" along each axis longer than ")
                    .append(2 * ARRAY_EDGE_ITEMS).append(":\n");
            int width = 0;
            for (String c : cells) {
                width = Math.max(width, c.length());
            }
            appendNested(sb, cells, width, kept, cut, 0, 0);
            return sb.toString();
        }
    }

    /** An index selecting {@code [from, to)} along axis {@code axis} of an {@code nd}-axis array, all of the others. */
    private static String axisSlice(int nd, int axis, long from, long to) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < nd; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(i == axis ? from + ":" + to : ":");
        }
        return sb.toString();
    }

    /** The elements of a small array as text, row-major, in one format for all of them. */
    private static String[] cellText(NDArray x) {
        DataType dt = x.getDataType();
        int n = (int) x.size();
        String[] out = new String[n];
        if (dt == DataType.BOOLEAN) {
            boolean[] v = x.toBooleanArray();
            for (int i = 0; i < n; i++) {
                out[i] = Boolean.toString(v[i]);
            }
            return out;
        }
        if (!dt.isFloating()) {
            long[] v;
            if (dt == DataType.INT64) {
                v = x.toLongArray();
            } else {
                try (NDArray l = x.toType(DataType.INT64, false)) {
                    v = l.toLongArray();
                }
            }
            for (int i = 0; i < n; i++) {
                out[i] = Long.toString(v[i]);
            }
            return out;
        }
        double[] v = new double[n];
        if (dt == DataType.FLOAT64) {
            v = x.toDoubleArray();
        } else {
            float[] f;
            if (dt == DataType.FLOAT32) {
                f = x.toFloatArray();
            } else {
                try (NDArray c = x.toType(DataType.FLOAT32, false)) {
                    f = c.toFloatArray();
                }
            }
            for (int i = 0; i < n; i++) {
                v[i] = f[i];
            }
        }
        boolean whole = true;
        double maxAbs = 0;
        double minAbs = Double.POSITIVE_INFINITY;
        for (double d : v) {
            if (!Double.isFinite(d)) {
                continue;
            }
            whole &= d == Math.rint(d) && Math.abs(d) < 1e15;
            maxAbs = Math.max(maxAbs, Math.abs(d));
            if (d != 0) {
                minAbs = Math.min(minAbs, Math.abs(d));
            }
        }
        boolean scientific = !whole && (maxAbs >= 1e5 || minAbs < 1e-4);
        for (int i = 0; i < n; i++) {
            double d = v[i];
            if (Double.isNaN(d)) {
                out[i] = "nan";
            } else if (Double.isInfinite(d)) {
                out[i] = d > 0 ? "inf" : "-inf";
            } else if (whole) {
                out[i] = (long) d + ".";
            } else if (scientific) {
                out[i] = String.format(Locale.ROOT, "%.4e", d);
            } else {
                out[i] = String.format(Locale.ROOT, "%.4f", d);
            }
        }
        return out;
    }

    /**
     * Appends the sub-array at {@code axis} starting at flat element {@code base} as nested brackets, one line per
     * innermost row, with {@code ...} where an axis was cut.
     */
    private static void appendNested(StringBuilder sb, String[] cells, int width, long[] kept, boolean[] cut,
                                     int axis, int base) {
        int nd = kept.length;
        int n = (int) kept[axis];
        int stride = 1;
        for (int d = axis + 1; d < nd; d++) {
            stride *= (int) kept[d];
        }
        sb.append('[');
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                if (axis == nd - 1) {
                    sb.append(", ");
                } else {
                    // a blank line between blocks of two or more axes, as numpy prints them
                    sb.append(",\n").append(axis < nd - 2 ? "\n" : "").append(" ".repeat(axis + 1));
                }
            }
            if (cut[axis] && i == ARRAY_EDGE_ITEMS) {
                sb.append(axis == nd - 1 ? "..., " : "...,\n" + (axis < nd - 2 ? "\n" : "")
                        + " ".repeat(axis + 1));
            }
            if (axis == nd - 1) {
                String c = cells[base + i];
                sb.append(" ".repeat(width - c.length())).append(c);
            } else {
                appendNested(sb, cells, width, kept, cut, axis + 1, base + i * stride);
            }
        }
        sb.append(']');
    }

    private static String contentOf(NDArray a) {
        String s = a.toDebugString(Integer.MAX_VALUE, 10, 100, 100, true);
        // toDebugString starts with a header line ("ND: (2, 3) cpu() float32"); the summary already says it.
        int nl = s.indexOf('\n');
        return nl >= 0 && s.startsWith("ND:") ? s.substring(nl + 1) : s;
    }

    static String arrayText(NDArray a) {
        String preview = arrayPreview(a);
        return preview.isEmpty() ? arraySummary(a) : arraySummary(a) + "\n" + preview;
    }

    static String arrayHtml(NDArray a) {
        String preview = arrayPreview(a);
        return "<div class=\"jlens-ndarray\"><div style=\"font-family:monospace;font-size:12px\"><b>"
                + Display.escapeHtml(arraySummary(a)) + "</b></div>"
                + (preview.isEmpty() ? "" : "<pre style=\"font-size:11px;margin:2px 0\">"
                + Display.escapeHtml(preview) + "</pre>")
                + "</div>";
    }
}
