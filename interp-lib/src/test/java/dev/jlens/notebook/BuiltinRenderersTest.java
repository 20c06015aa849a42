package dev.jlens.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.util.Base64;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.QuickChart;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

class BuiltinRenderersTest {

    @Test
    void smallTableRendersEveryRowEscaped() {
        Table t = Table.create("tokens", IntColumn.create("pos", 0, 1),
                StringColumn.create("tok", "<b>", "a&b"), DoubleColumn.create("p", 0.25, 0.75));
        Map<String, String> bundle = Display.render(t);
        String html = bundle.get(Display.HTML);
        assertTrue(html.contains("<table") && html.contains("<th"), html);
        assertTrue(html.contains("&lt;b&gt;") && html.contains("a&amp;b"), html);
        assertTrue(html.contains("tokens · 2 rows × 3 columns"), html);
        assertEquals(2, count(html, "<tr><td"), html);
        assertTrue(bundle.get(Display.TEXT).contains("tokens") && bundle.get(Display.TEXT).contains("0.75"));
    }

    @Test
    void captionSitsUnderTheTableOnOneLine() {
        // one narrow column and a long caption: a <caption> would be as narrow as the column and wrap word by word
        Table t = Table.create("induction scores by head", DoubleColumn.create("s", 0.9, 0.1));
        String html = Display.render(t).get(Display.HTML);
        assertFalse(html.contains("<caption"), html);
        int tableEnd = html.indexOf("</table>");
        int caption = html.indexOf("class=\"jlens-table-caption\"");
        assertTrue(tableEnd > 0 && caption > tableEnd, "the caption follows the table: " + html);
        String captionTag = html.substring(html.lastIndexOf('<', caption), html.indexOf('>', caption));
        assertTrue(captionTag.contains("white-space:nowrap"), captionTag);
        assertTrue(html.substring(caption).contains(">induction scores by head · 2 rows × 1 column</div>"), html);
        // short cells keep to one line, long text may wrap
        Table names = Table.create("zoo", StringColumn.create("name", "attn-only-2l", "x".repeat(60)));
        String namesHtml = Display.render(names).get(Display.HTML);
        assertTrue(namesHtml.contains("white-space:nowrap\">attn-only-2l</td>"), namesHtml);
        assertTrue(namesHtml.contains("padding:2px 8px\">" + "x".repeat(60) + "</td>"), namesHtml);
        // the wrapper shrinks to its content, so the caption is not squeezed and the table keeps its own width
        assertTrue(html.startsWith("<div class=\"jlens-table\" style=\"display:inline-block"), html);
        assertTrue(html.endsWith("</div></div>"), html);
    }

    @Test
    void longTableShowsHeadAndTail() {
        int[] values = new int[100];
        for (int i = 0; i < values.length; i++) {
            values[i] = i * 10;
        }
        String html = Display.render(Table.create("long", IntColumn.create("v", values))).get(Display.HTML);
        assertEquals(BuiltinRenderers.TABLE_HEAD_ROWS + BuiltinRenderers.TABLE_TAIL_ROWS,
                count(html, "<td style=\"text-align:right;padding:2px 8px"), html);
        assertTrue(html.contains(">90<") && html.contains(">990<") && !html.contains(">500<"), html);
        assertTrue(html.contains("…") && html.contains("100 rows"), html);
    }

    @Test
    void chartRendersAsPng() throws Exception {
        XYChart chart = QuickChart.getChart("loss", "step", "loss", "train", new double[] {0, 1, 2},
                new double[] {3, 2, 1});
        Map<String, String> bundle = Display.render(chart);
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(bundle.get(Display.PNG))));
        assertEquals(chart.getWidth(), img.getWidth());
        assertEquals("XYChart \"loss\" (" + chart.getWidth() + "x" + chart.getHeight() + ")", bundle.get(Display.TEXT));
    }

    @Test
    void ndarrayShowsSummaryAndPreviewWithoutLeaking() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray small = m.create(new float[] {1, 2, 3, 4}, new Shape(2, 2));
            int before = m.getManagedArrays().size();
            Map<String, String> bundle = Display.render(small);
            assertEquals(before, m.getManagedArrays().size(), "rendering left native arrays behind");
            String text = bundle.get(Display.TEXT);
            assertTrue(text.startsWith("NDArray float32 [2, 2] on cpu() · min 1.000 mean 2.500 max 4.000"), text);
            assertTrue(text.contains("[[1., 2.]") && text.contains("[3., 4.]"), text);
            assertTrue(bundle.get(Display.HTML).contains("jlens-ndarray"), bundle.get(Display.HTML));

            NDArray big = m.arange(0f, 3 * 40 * 50f).reshape(3, 40, 50);
            before = m.getManagedArrays().size();
            text = Display.render(big).get(Display.TEXT);
            assertEquals(before, m.getManagedArrays().size(), "rendering left native arrays behind");
            assertTrue(text.contains("[3, 40, 50]") && text.contains("..."), text);
            // rows 0-2 and 37-39, columns 0-2 and 47-49 of every block: the last element is there, row 6 is not
            assertTrue(text.contains("5999.") && text.contains("1950.") && !text.contains("300."), text);

            NDArray ints = m.create(new int[] {1, 2, 3});
            String intText = Display.render(ints).get(Display.TEXT);
            assertTrue(intText.startsWith("NDArray int32 [3] on cpu()") && !intText.contains("mean"), intText);
            ints.close();
            assertEquals("NDArray (closed)", Display.render(ints).get(Display.TEXT));
        }
    }

    @Test
    void plotsChartsAreNamedByTheirXChartType() {
        var heatmap = dev.jlens.viz.Plots.heatmap("attn", new double[][] {{1, 0}, {0.5, 0.5}});
        Map<String, String> bundle = Display.render(heatmap);
        assertEquals("HeatMapChart \"attn\" (" + heatmap.getWidth() + "x" + heatmap.getHeight() + ")",
                bundle.get(Display.TEXT));
        assertTrue(bundle.get(Display.PNG).length() > 100);
        assertTrue(Display.render(dev.jlens.viz.Plots.bar("b", java.util.List.of("x"), new double[] {1}))
                .get(Display.TEXT).startsWith("CategoryChart \"b\""));
    }

    @Test
    void arrayPreviewShowsTheFirstAndLastPositionsOfEveryAxis() {
        try (NDManager m = NDManager.newBaseManager()) {
            // element [b, p, d] = (600 b + 30 p + d) / 7: no two alike, none whole
            NDArray a = m.arange(0f, 2 * 20 * 30f).div(7f).reshape(2, 20, 30);
            float[] v = a.toFloatArray();
            String text = Display.render(a).get(Display.TEXT);
            String html = Display.render(a).get(Display.HTML);
            for (int[] shown : new int[][] {{1, 19, 29}, {0, 0, 0}, {0, 19, 0}, {1, 17, 27}, {0, 2, 28}}) {
                String value = String.format(java.util.Locale.ROOT, "%.4f", v[shown[0] * 600 + shown[1] * 30 + shown[2]]);
                assertTrue(text.contains(value), java.util.Arrays.toString(shown) + " = " + value + " in\n" + text);
                assertTrue(html.contains(value), html);
            }
            for (int[] hidden : new int[][] {{0, 10, 16}, {1, 3, 3}, {1, 19, 26}}) {
                String value = String.format(java.util.Locale.ROOT, "%.4f", v[hidden[0] * 600 + hidden[1] * 30 + hidden[2]]);
                assertFalse(text.contains(value), java.util.Arrays.toString(hidden) + " = " + value + " in\n" + text);
            }
            // the last row of the last block, with the gap where columns 3..26 are left out
            String last = java.util.stream.IntStream.of(0, 1, 2, -1, 27, 28, 29)
                    .mapToObj(d -> d < 0 ? "..." : String.format(java.util.Locale.ROOT, "%.4f", v[600 + 19 * 30 + d]))
                    .collect(java.util.stream.Collectors.joining(", ", "[", "]]]"));
            assertTrue(text.endsWith(last), last + " ends\n" + text);
            // 2 blocks x 6 rows x 6 columns are printed; each row has a '...' for the columns, each block one for the rows
            String body = text.substring(text.indexOf('\n', text.indexOf('\n') + 1) + 1);
            assertEquals(2 * 6 * 6, java.util.regex.Pattern.compile("\\d+\\.\\d{4}").matcher(body).results().count(),
                    body);
            assertEquals(2 * 6 + 2, count(body, "..."), body);
        }
    }

    private static int count(String s, String part) {
        int n = 0;
        for (int i = s.indexOf(part); i >= 0; i = s.indexOf(part, i + 1)) {
            n++;
        }
        return n;
    }

    @Test
    void registryKnowsTheBuiltIns() {
        assertTrue(Display.hasRenderer(Table.class));
        assertTrue(Display.hasRenderer(XYChart.class));
        assertTrue(Display.hasRenderer(BufferedImage.class));
        assertFalse(Display.hasRenderer(String.class));
    }
}
