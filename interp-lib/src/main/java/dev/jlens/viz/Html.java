package dev.jlens.viz;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import dev.jlens.notebook.Display;
import dev.jlens.notebook.HtmlRenderable;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Small self-contained HTML views for notebooks (inline styles, no scripts): they render as a cell's result.
 *
 * <pre>{@code
 * try (ActivationCache cache = model.runWithCache(ids, NameFilter.of("pattern"))) {
 *     Html.attentionPattern(cache.get("pattern", 1).get(0), tokens, "L1");        // every head, side by side
 *     Html.attentionPattern(cache.get("pattern", 1).get(0, 4), tokens, "L1H4");   // one head
 * }
 * }</pre>
 */
public final class Html {

    /** Cell size in pixels of the attention heatmaps. */
    static final int CELL = 11;

    private Html() {}

    /** An HTML fragment that renders in a notebook; its {@code toString()} is a short text description. */
    public record View(String html, String text) implements HtmlRenderable {
        public View {
            Objects.requireNonNull(html, "html");
            text = text == null ? "" : text;
        }

        @Override
        public String toHtml() {
            return html;
        }

        @Override
        public String toString() {
            return text;
        }
    }

    /**
     * Attention patterns as heatmaps over the tokens: a {@code [q, k]} pattern gives one heatmap, a
     * {@code [head, q, k]} pattern (or {@code [1, head, q, k]}) one per head, side by side. Rows are query
     * positions, columns key positions, both labelled with their tokens; darker is more attention, and hovering a
     * cell shows its query, key and weight. {@code titles}: one per heatmap, or one prefix for all
     * ({@code "L1"} gives {@code L1 0}, {@code L1 1}, ...), or none.
     */
    public static View attentionPattern(NDArray pattern, List<String> tokens, String... titles) {
        Objects.requireNonNull(pattern, "pattern");
        long[] s = pattern.getShape().getShape();
        if (s.length == 4 && s[0] == 1) s = new long[] {s[1], s[2], s[3]};
        if (s.length != 2 && s.length != 3) {
            throw new IllegalArgumentException("an attention pattern is [q, k], [head, q, k] or [1, head, q, k]; got "
                    + pattern.getShape() + " (pick one batch row with pattern.get(b))");
        }
        float[] flat;
        if (pattern.getDataType() == DataType.FLOAT32) {
            flat = pattern.toFloatArray();
        } else {
            try (NDArray f = pattern.toType(DataType.FLOAT32, true)) {
                flat = f.toFloatArray();
            }
        }
        int heads = s.length == 3 ? (int) s[0] : 1;
        int q = (int) s[s.length - 2], k = (int) s[s.length - 1];
        if (titles.length > 1 && titles.length != heads) {
            throw new IllegalArgumentException(titles.length + " titles for " + heads + " heatmaps; pass one per head, "
                    + "one prefix, or none");
        }
        List<float[][]> maps = new ArrayList<>(heads);
        List<String> names = new ArrayList<>(heads);
        for (int h = 0; h < heads; h++) {
            float[][] m = new float[q][k];
            for (int i = 0; i < q; i++) System.arraycopy(flat, (h * q + i) * k, m[i], 0, k);
            maps.add(m);
            String name;
            if (titles.length == heads) name = titles[h];
            else if (titles.length == 1) name = titles[0] + " " + h;
            else name = heads == 1 ? "" : "head " + h;
            names.add(name == null ? "" : name);
        }
        return attentionPatterns(maps, tokens, names);
    }

    /** One attention pattern {@code [q][k]} as a heatmap over the tokens. */
    public static View attentionPattern(float[][] patternQK, List<String> tokens, String title) {
        return attentionPatterns(List.<float[][]>of(patternQK), tokens, List.of(title == null ? "" : title));
    }

    /** Several attention patterns {@code [q][k]} side by side, each with its title. */
    public static View attentionPatterns(List<float[][]> patterns, List<String> tokens, List<String> titles) {
        Objects.requireNonNull(patterns, "patterns");
        Objects.requireNonNull(tokens, "tokens");
        if (patterns.isEmpty()) throw new IllegalArgumentException("no attention patterns to show");
        if (titles.size() != patterns.size()) {
            throw new IllegalArgumentException(patterns.size() + " patterns but " + titles.size() + " titles");
        }
        StringBuilder html = new StringBuilder(4096);
        html.append("<div style=\"display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start\">");
        for (int i = 0; i < patterns.size(); i++) table(html, patterns.get(i), tokens, titles.get(i));
        html.append("</div>");
        float[][] first = patterns.get(0);
        String text = String.format(Locale.ROOT, "attention pattern%s %dx%d over %d tokens%s",
                patterns.size() > 1 ? "s (" + patterns.size() + ")" : "", first.length,
                first.length == 0 ? 0 : first[0].length, tokens.size(),
                titles.get(0).isEmpty() ? "" : ": " + String.join(", ", titles));
        return new View(html.toString(), text);
    }

    private static void table(StringBuilder html, float[][] qk, List<String> tokens, String title) {
        int q = qk.length;
        int k = q == 0 ? 0 : qk[0].length;
        if (q == 0 || k == 0) throw new IllegalArgumentException("empty attention pattern");
        if (tokens.size() != q || tokens.size() != k) {
            throw new IllegalArgumentException("the pattern is " + q + "x" + k + " (queries x keys) but there are "
                    + tokens.size() + " tokens; pass one label per position");
        }
        String cell = "width:" + CELL + "px;height:" + CELL + "px;padding:0;border:0;";
        html.append("<div style=\"font-family:monospace;font-size:9px;line-height:1\">");
        if (!title.isEmpty()) {
            html.append("<div style=\"font-weight:bold;font-size:12px;margin:0 0 4px 0\">")
                    .append(Display.escapeHtml(title)).append("</div>");
        }
        html.append("<table style=\"border-collapse:collapse;border-spacing:0\">");
        // key labels along the top, written vertically
        html.append("<tr><th style=\"padding:0\"></th>");
        for (int j = 0; j < k; j++) {
            html.append("<th style=\"padding:0 0 2px 0;font-weight:normal;writing-mode:vertical-rl;"
                    + "transform:rotate(180deg);text-align:left;width:").append(CELL).append("px\">")
                    .append(Display.escapeHtml(tokens.get(j))).append("</th>");
        }
        html.append("</tr>");
        for (int i = 0; i < q; i++) {
            if (qk[i].length != k) throw new IllegalArgumentException("pattern row " + i + " has " + qk[i].length
                    + " keys, row 0 has " + k);
            html.append("<tr><th style=\"padding:0 4px 0 0;font-weight:normal;text-align:right;white-space:nowrap\">")
                    .append(Display.escapeHtml(tokens.get(i))).append("</th>");
            for (int j = 0; j < k; j++) {
                float w = qk[i][j];
                html.append("<td style=\"").append(cell).append("background:").append(colour(w)).append("\" title=\"")
                        .append(i).append(' ').append(Display.escapeHtml(tokens.get(i))).append(" &#8594; ").append(j)
                        .append(' ').append(Display.escapeHtml(tokens.get(j)))
                        .append(String.format(Locale.ROOT, ": %.2f", w)).append("\"></td>");
            }
            html.append("</tr>");
        }
        html.append("</table></div>");
    }

    /** White to dark blue by weight in [0, 1] (values outside are clamped); masked (future) cells stay white. */
    static String colour(float w) {
        double a = Float.isFinite(w) ? Math.max(0, Math.min(1, w)) : 0;
        // interpolate #ffffff -> #08306b
        int r = (int) Math.round(255 + (8 - 255) * a), g = (int) Math.round(255 + (48 - 255) * a);
        int b = (int) Math.round(255 + (107 - 255) * a);
        return String.format(Locale.ROOT, "#%02x%02x%02x", r, g, b);
    }

    /**
     * Text as rows of tokens, each token shaded by its value (darker is larger, relative to {@code max}; NaN is not
     * shaded) with the value shown on hover: per-token KL between two models, a latent's activation, a probe's score.
     * {@code rows} and {@code values} pair up row by row (one value per token); {@code labels} (one per row, or empty)
     * head the rows. {@code max} at or below 0, or NaN, shades relative to the largest value shown.
     */
    public static View tokens(List<List<String>> rows, List<double[]> values, List<String> labels, double max,
                              String title) {
        Objects.requireNonNull(rows, "rows");
        Objects.requireNonNull(values, "values");
        Objects.requireNonNull(labels, "labels");
        if (rows.size() != values.size()) {
            throw new IllegalArgumentException(rows.size() + " rows of tokens but " + values.size() + " rows of values");
        }
        if (!labels.isEmpty() && labels.size() != rows.size()) {
            throw new IllegalArgumentException(rows.size() + " rows but " + labels.size() + " labels; pass one per row "
                    + "or none");
        }
        double top = max;
        if (!(top > 0)) {
            top = 0;
            for (double[] v : values) for (double x : v) if (x > top) top = x;
        }
        StringBuilder html = new StringBuilder(4096);
        html.append("<div style=\"font-family:monospace;font-size:12px;line-height:1.9\">");
        if (title != null && !title.isEmpty()) {
            html.append("<div style=\"font-weight:bold;margin:0 0 4px 0\">").append(Display.escapeHtml(title))
                    .append("</div>");
        }
        for (int r = 0; r < rows.size(); r++) {
            List<String> toks = rows.get(r);
            double[] v = values.get(r);
            if (toks.size() != v.length) {
                throw new IllegalArgumentException("row " + r + " has " + toks.size() + " tokens but " + v.length
                        + " values");
            }
            html.append("<div>");
            if (!labels.isEmpty()) {
                html.append("<span style=\"display:inline-block;min-width:3em;color:#666\">")
                        .append(Display.escapeHtml(labels.get(r))).append("</span>");
            }
            for (int i = 0; i < toks.size(); i++) {
                double x = v[i];
                double a = Double.isNaN(x) || top <= 0 ? 0 : Math.max(0, Math.min(1, x / top));
                html.append("<span title=\"").append(Display.escapeHtml(toks.get(i))).append(": ")
                        .append(Double.isNaN(x) ? "n/a" : String.format(Locale.ROOT, "%.4g", x))
                        .append("\" style=\"padding:1px 2px;margin:0 1px;border-radius:2px;background:")
                        .append(colour((float) a)).append(";color:").append(a > 0.55 ? "#fff" : "#000").append("\">")
                        .append(Display.escapeHtml(toks.get(i))).append("</span>");
            }
            html.append("</div>");
        }
        html.append("</div>");
        String text = String.format(Locale.ROOT, "%d row(s) of tokens shaded by value (max %.4g)%s", rows.size(), top,
                title == null || title.isEmpty() ? "" : ": " + title);
        return new View(html.toString(), text);
    }
}
