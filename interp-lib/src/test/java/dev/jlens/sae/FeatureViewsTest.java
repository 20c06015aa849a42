package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.model.ActivationCache;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;
import dev.jlens.testing.Models;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.Table;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Feature views against statistics computed the slow way from a full activation cache. */
class FeatureViewsTest {
    private static final String HOOK = "blocks.1.hook_resid_post";
    private static HookedTransformer model;
    private static SparseCoder sae;
    private static long[][] data;
    private static FeatureViews views;

    @BeforeAll
    static void setUp(@TempDir Path dir) {
        model = Models.gpt2();   // d_model 64, vocab 96
        // a word-level tokenizer over the 96 ids, with HTML-hostile words to check escaping
        List<String> words = new ArrayList<>();
        for (int i = 0; i < 96; i++) words.add(i == 5 ? "<b>" : i == 6 ? "a&b" : i == 7 ? "\"q\"" : "w" + i);
        model.setTokenizer(Tokenizer.load(Tokenizer.buildWordLevel(words, Map.of(), dir)));
        sae = SparseCoder.create(SaeConfig.of(64, 128, new SaeConfig.TopK(6)).withHook(HOOK), 3);
        data = new long[11][];
        for (int i = 0; i < data.length; i++) data[i] = Models.tokens(24, 96, 100 + i);
        views = FeatureViews.collect(model, sae, data, new FeatureViews.Options(5, 4, 2, 4096, 4, 8));
    }

    @AfterAll
    static void tearDown() {
        sae.close();
        model.close();
    }

    /** Dense latents [tokens, dSae] computed from a cache of the whole dataset in one batch. */
    private static float[][] denseLatents() {
        try (NDScope scope = new NDScope(); ActivationCache c = model.runWithCache(data, NameFilter.of(HOOK))) {
            NDArray f = sae.encode(c.get(HOOK)).reshape(-1, 128);
            float[] flat = f.toFloatArray();
            float[][] out = new float[flat.length / 128][];
            for (int i = 0; i < out.length; i++) out[i] = Arrays.copyOfRange(flat, i * 128, (i + 1) * 128);
            return out;
        }
    }

    @Test
    void statisticsMatchABruteForcePass() {
        float[][] f = denseLatents();
        assertEquals(11 * 24, views.tokens());
        int checkedFiring = 0;
        for (int j = 0; j < 128; j++) {
            List<Float> vals = new ArrayList<>();
            for (float[] row : f) if (row[j] > 0) vals.add(row[j]);
            assertEquals((double) vals.size() / f.length, views.density(j), 1e-12, "density of " + j);
            double mean = vals.stream().mapToDouble(Float::doubleValue).average().orElse(0);
            assertEquals(mean, views.meanActivation(j), 1e-4 * Math.max(1, mean), "mean of " + j);
            vals.sort((a, b) -> Float.compare(b, a));
            List<FeatureViews.Context> top = views.topContexts(j);
            assertEquals(Math.min(5, vals.size()), top.size(), "contexts of " + j);
            for (int i = 0; i < top.size(); i++) {
                assertEquals(vals.get(i), top.get(i).value(), 1e-4, "context " + i + " of " + j);
                FeatureViews.Context c = top.get(i);
                // the context's token and activation at the focus are the dataset's
                assertEquals(data[c.sequence()][c.position()], c.tokens()[c.focus()]);
                assertEquals(c.value(), c.acts()[c.focus()], 1e-6);
                assertEquals(f[c.sequence() * 24 + c.position()][j], c.value(), 1e-4);
            }
            if (!vals.isEmpty()) {
                checkedFiring++;
                assertEquals(vals.get(0), views.maxActivation(j), 1e-4);
                FeatureViews.Histogram h = views.histogram(j, 10);
                assertEquals(vals.size(), Arrays.stream(h.counts()).sum(), "histogram total of " + j);
            }
        }
        assertTrue(checkedFiring > 20, "too few latents fire to test anything: " + checkedFiring);
    }

    @Test
    void logitEffectIsTheDecoderRowThroughTheUnembedding() {
        float[] wu = model.unembedWeight().toFloatArray();     // [96, 64]
        float[] wd = sae.weights().get(SaeWeights.W_DEC).toFloatArray();
        for (int j : new int[] {0, 17, 127}) {
            double best = Double.NEGATIVE_INFINITY, worst = Double.POSITIVE_INFINITY;
            int bestId = -1, worstId = -1;
            for (int v = 0; v < 96; v++) {
                double dot = 0;
                for (int d = 0; d < 64; d++) dot += wd[j * 64 + d] * wu[v * 64 + d];
                if (dot > best) { best = dot; bestId = v; }
                if (dot < worst) { worst = dot; worstId = v; }
            }
            FeatureViews.LogitEffect e = views.logitEffect(j);
            assertEquals(8, e.boosted().size());
            assertEquals(bestId, e.boosted().get(0).id());
            assertEquals(best, e.boosted().get(0).value(), 1e-4);
            assertEquals(worstId, e.suppressed().get(0).id());
            assertEquals(model.requireTokenizer().decodeToken(bestId), e.boosted().get(0).text());
        }
    }

    @Test
    void cardShowsTheLatentEscapedWithAHistogram() throws IOException {
        int j = busiest();
        String html = views.card(j).toHtml();
        assertTrue(html.contains("Latent " + j), html.substring(0, 300));
        // the strongest context's value is printed, its focus token bold
        assertTrue(html.contains(String.format(java.util.Locale.ROOT, "%.3g", views.topContexts(j).get(0).value())));
        assertTrue(html.contains("font-weight:700"));
        // tokens are escaped: the raw words never appear as markup
        assertFalse(html.contains("<b>"), "unescaped token in card");
        assertFalse(html.contains("a&b"), "unescaped ampersand in card");
        Matcher m = Pattern.compile("data:image/png;base64,([A-Za-z0-9+/=]+)").matcher(html);
        assertTrue(m.find(), "no inline PNG histogram");
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(m.group(1))));
        assertEquals(360, img.getWidth());
        assertEquals(200, img.getHeight());
        assertTrue(html.contains("boosted") && html.contains("suppressed"));
    }

    @Test
    void escapedTokensAppearInContexts() {
        // find a latent whose contexts include token 5 ("<b>") and check it is shown escaped
        for (int j = 0; j < 128; j++) {
            for (FeatureViews.Context c : views.topContexts(j)) {
                if (Arrays.stream(c.tokens()).anyMatch(t -> t == 5)) {
                    assertTrue(views.card(j).toHtml().contains("&lt;b&gt;"));
                    return;
                }
            }
        }
        throw new AssertionError("no context shows token 5; choose other data");
    }

    @Test
    void tableHasOneRowPerLatent() {
        Table t = views.table();
        assertEquals(128, t.rowCount());
        assertEquals(List.of("latent", "density", "log10_density", "mean_act", "max_act", "top_tokens", "top_boosted"),
                t.columnNames());
        int j = busiest();
        assertEquals(views.density(j), t.doubleColumn("density").get(j), 5e-4 * views.density(j), "4 significant digits");
        assertEquals(Math.log10(views.density(j)), t.doubleColumn("log10_density").get(j), 5e-4 * Math.abs(Math.log10(views.density(j))), "4 significant digits");
        FeatureViews.TokenValue top = views.topTokens(j, 1).get(0);
        assertTrue(t.stringColumn("top_tokens").get(j).startsWith("'" + top.text() + "' (" + (long) top.value() + ")"),
                t.stringColumn("top_tokens").get(j));
        assertFalse(t.stringColumn("top_boosted").get(j).isEmpty());
    }

    @Test
    void offResidualHooksHaveNoLogitEffectAndBadInputsFail() {
        try (SparseCoder mlp = SparseCoder.create(SaeConfig.of(256, 64, new SaeConfig.TopK(4))
                .withHook("blocks.0.mlp.hook_post"), 1)) {
            FeatureViews v = FeatureViews.collect(model, mlp, Arrays.copyOf(data, 2));
            assertFalse(v.residualHook());
            assertTrue(v.logitEffect(0).boosted().isEmpty());
            assertTrue(v.card(0).toHtml().contains("not a residual-stream hook"));
        }
        try (SparseCoder bad = SparseCoder.create(SaeConfig.of(64, 32, new SaeConfig.TopK(4)).withHook("blocks.9.nope"), 1)) {
            assertThrows(IllegalArgumentException.class, () -> FeatureViews.collect(model, bad, data));
        }
        try (SparseCoder wide = SparseCoder.create(SaeConfig.of(32, 32, new SaeConfig.TopK(4)).withHook(HOOK), 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> FeatureViews.collect(model, wide, data));
            assertTrue(e.getMessage().contains("[..., 32]"), e.getMessage());
        }
        assertThrows(IndexOutOfBoundsException.class, () -> views.card(128));
    }

    private static int busiest() {
        int best = 0;
        for (int j = 1; j < 128; j++) if (views.fires(j) > views.fires(best)) best = j;
        return best;
    }
}
