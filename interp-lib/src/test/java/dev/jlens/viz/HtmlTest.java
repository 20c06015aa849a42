package dev.jlens.viz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class HtmlTest {
    private static final List<String> TOKENS = List.of("<bos>", "a", "b&c");

    private static int count(String html, String regex) {
        Matcher m = Pattern.compile(regex).matcher(html);
        int n = 0;
        while (m.find()) n++;
        return n;
    }

    @Test
    void onePatternIsATableWithTokenLabelsAndOneCellPerPair() {
        float[][] p = {{1, 0, 0}, {0.25f, 0.75f, 0}, {0.5f, 0.25f, 0.25f}};
        String html = Html.attentionPattern(p, TOKENS, "L1H4").toHtml();
        assertEquals(1, count(html, "<table"));
        assertEquals(9, count(html, "<td "));
        assertEquals(8, count(html, "&lt;bos&gt;"), "escaped: 2 labels, 6 hover titles (row 0 and column 0)");
        assertFalse(html.contains("<bos>"));
        assertTrue(html.contains("b&amp;c"));
        assertTrue(html.contains("1 a &#8594; 1 a: 0.75"), "hover title of cell (1, 1)");
        assertTrue(html.contains("L1H4"));
        assertFalse(html.contains("<script"));
    }

    @Test
    void coloursRunFromWhiteToDarkBlueAndClamp() {
        assertEquals("#ffffff", Html.colour(0));
        assertEquals("#08306b", Html.colour(1));
        assertEquals("#08306b", Html.colour(3));
        assertEquals("#ffffff", Html.colour(Float.NaN));
        assertTrue(Html.colour(0.5f).compareTo("#ffffff") < 0);
    }

    @Test
    void headsOfAnNDArrayGoSideBySide() {
        try (NDManager nd = NDManager.newBaseManager()) {
            NDArray pattern = nd.ones(new ai.djl.ndarray.types.Shape(1, 2, 3, 3)).div(3f);
            Html.View v = Html.attentionPattern(pattern, TOKENS, "L0");
            assertEquals(2, count(v.toHtml(), "<table"));
            assertTrue(v.toHtml().contains("L0 0") && v.toHtml().contains("L0 1"));
            assertTrue(v.toString().startsWith("attention patterns (2) 3x3 over 3 tokens"), v.toString());
            assertEquals(1, count(Html.attentionPattern(pattern.get(0).get(1), TOKENS).toHtml(), "<table"));
            String titled = Html.attentionPattern(pattern, TOKENS, "previous token", "induction").toHtml();
            assertTrue(titled.contains(">previous token<") && titled.contains(">induction<"), titled);
            assertThrows(IllegalArgumentException.class, () -> Html.attentionPattern(pattern, TOKENS, "a", "b", "c"));
        }
    }

    @Test
    void mismatchedShapesNameTheProblem() {
        float[][] p = {{1, 0}, {0.5f, 0.5f}};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Html.attentionPattern(p, TOKENS, ""));
        assertTrue(e.getMessage().contains("2x2") && e.getMessage().contains("3 tokens"), e.getMessage());
        try (NDManager nd = NDManager.newBaseManager()) {
            IllegalArgumentException f = assertThrows(IllegalArgumentException.class,
                    () -> Html.attentionPattern(nd.ones(new ai.djl.ndarray.types.Shape(2, 2, 3, 3)), TOKENS));
            assertTrue(f.getMessage().contains("pattern.get(b)"), f.getMessage());
        }
    }

    @Test
    void tokensAreShadedByTheirValueWithTheValueOnHover() {
        Html.View v = Html.tokens(List.of(List.of("a", "<b>", "c"), List.of("d")),
                List.of(new double[] {0, 2, Double.NaN}, new double[] {1}), List.of("#0", "#1"), 0, "kl");
        String h = v.toHtml();
        assertTrue(h.contains("title=\"a: 0.000\""), h);
        assertTrue(h.contains("&lt;b&gt;: 2.000"), "tokens are escaped: " + h);
        assertTrue(h.contains("c: n/a"), h);
        assertTrue(h.contains("background:" + Html.colour(1f)), "the largest value gets the darkest shade");
        assertTrue(h.contains("background:" + Html.colour(0.5f)), "1 of max 2 is half way");
        assertTrue(h.contains(">#1<"), "row labels are shown");
        assertTrue(v.toString().contains("2 row(s)"), v.toString());
        assertTrue(Html.tokens(List.of(List.of("x")), List.<double[]>of(new double[] {1}), List.of(), 4, "")
                .toHtml().contains("background:" + Html.colour(0.25f)), "an explicit max sets the scale");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Html.tokens(
                List.of(List.of("a", "b")), List.<double[]>of(new double[] {1}), List.of(), 0, ""));
        assertTrue(e.getMessage().contains("2 tokens but 1 values"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Html.tokens(List.of(List.of("a")),
                List.<double[]>of(new double[] {1}), List.of("x", "y"), 0, ""));
    }
}
