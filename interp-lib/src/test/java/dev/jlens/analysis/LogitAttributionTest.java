package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import dev.jlens.analysis.LogitAttribution.Direction;
import dev.jlens.analysis.LogitAttribution.Kind;
import dev.jlens.analysis.LogitAttribution.Order;
import dev.jlens.analysis.LogitAttribution.Result;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.Tasks;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LogitAttributionTest {
    private static HookedTransformer tiny;       // tinylang-4l: LayerNorm, MLPs
    private static HookedTransformer attnOnly;   // attn-only-2l
    private static long[][] sentences;           // 3 tinylang test sentences, 20 tokens each
    private static long[][] repeats;             // 2 repeated-token sequences

    @BeforeAll
    static void load() {
        tiny = Zoo.load("tinylang-4l");
        attnOnly = Zoo.load("attn-only-2l");
        sentences = Tasks.tinyLang().examples(Split.TEST, 0, 3).stream()
                .map(e -> Arrays.copyOf(e.ids(), 20)).toArray(long[][]::new);
        repeats = HeadDetectors.repeatedTokens(attnOnly, 16, 2, 3);
    }

    @AfterAll
    static void close() {
        tiny.close();
        attnOnly.close();
    }

    /** The model's logit difference at {@code pos}, mean over rows, from its own forward pass. */
    private static double modelLogitDiff(HookedTransformer m, long[][] ids, int pos, long[] plus, long[] minus) {
        try (NDScope scope = new NDScope()) {
            float[] l = m.forward(ids).get(new NDIndex(":, {}, :", pos)).toFloatArray();
            int v = m.cfg().dVocab();
            double sum = 0;
            for (int b = 0; b < ids.length; b++) {
                int i = plus.length == 1 ? 0 : b;
                sum += l[b * v + (int) plus[i]] - (minus.length == 0 ? 0 : l[b * v + (int) minus[i]]);
            }
            return sum / ids.length;
        }
    }

    @Test
    void componentsAddUpToTheLogitDifference() {
        // the decomposition identity with the final norm's scale frozen: measured relative error at most 7.4e-7
        // (tinylang-4l) and 1.3e-7 (attn-only-2l) over plain logits and differences, one or per-row tokens, 2 positions
        for (HookedTransformer m : List.of(tiny, attnOnly)) {
            long[][] ids = m == tiny ? sentences : repeats;
            int last = ids[0].length - 1;
            long[] correct = new long[ids.length], wrong = new long[ids.length];
            for (int b = 0; b < ids.length; b++) {
                correct[b] = ids[b][m == tiny ? 5 : 9];          // some token of the row
                wrong[b] = (correct[b] + 7) % m.cfg().dVocab();
            }
            for (Direction d : List.of(Direction.difference(correct, wrong), Direction.difference(correct[0], wrong[0]),
                    Direction.logit(correct))) {
                for (int pos : new int[] {-1, 4}) {
                    try (ActivationCache cache = m.runWithCache(ids)) {
                        Result r = LogitAttribution.components(m, cache, d, pos);
                        double expected = modelLogitDiff(m, ids, pos < 0 ? last + 1 + pos : pos, d.tokens(),
                                d.against());
                        double rel = Math.abs(r.total() - expected) / Math.max(1, Math.abs(expected));
                        assertTrue(rel < 1e-4, m + " " + d + ": " + r.total() + " vs " + expected);
                        assertEquals(expected, r.logit().getAsDouble(), 1e-4 * Math.max(1, Math.abs(expected)));
                        assertEquals(cache.decomposeResidLabels(), r.labels());
                    }
                }
            }
        }
    }

    @Test
    void headsAddUpToTheirLayersAttentionOutputLessTheBias() {
        for (HookedTransformer m : List.of(tiny, attnOnly)) {
            long[][] ids = m == tiny ? sentences : repeats;
            Direction d = Direction.difference(ids[0][3], ids[0][4]);
            try (NDScope scope = new NDScope(); ActivationCache cache = m.runWithCache(ids)) {
                Result heads = LogitAttribution.heads(m, cache, d);
                Result comps = LogitAttribution.components(m, cache, d);
                assertEquals(cache.stackHeadResultsLabels(), heads.labels());
                for (int l = 0; l < m.nLayers(); l++) {
                    int layer = l;
                    double sum = heads.entries().stream().filter(e -> e.layer().getAsInt() == layer)
                            .mapToDouble(LogitAttribution.Entry::value).sum();
                    double bias = biasShare(m, cache, m.b_O(l), d);
                    assertEquals(comps.value(l + "_attn_out"), sum + bias, 1e-4, m + " layer " + l);
                }
            }
        }
    }

    /** The DLA of a bias written at every position, via the cache's own logitAttribution. */
    private static double biasShare(HookedTransformer m, ActivationCache cache, NDArray bias, Direction d) {
        NDArray scale = cache.get("ln_final.hook_scale");
        long b = scale.getShape().get(0), p = scale.getShape().get(1);
        NDArray stack = bias.reshape(1, 1, 1, -1).repeat(1, b).repeat(2, p);
        NDArray plus = cache.logitAttribution(stack, -1, d.tokens());
        NDArray minus = cache.logitAttribution(stack, -1, d.against());
        return plus.sub(minus).mean().getFloat();
    }

    @Test
    void neuronsAreHookPostTimesRowsOfWOutScaledLikeTheRest() {
        Direction d = Direction.difference(new long[] {sentences[0][6], sentences[1][6], sentences[2][6]},
                new long[] {sentences[0][2], sentences[1][2], sentences[2][2]});
        try (NDScope scope = new NDScope(); ActivationCache cache = tiny.runWithCache(sentences)) {
            Result comps = LogitAttribution.components(tiny, cache, d);
            Result all = LogitAttribution.neurons(tiny, cache, d);
            assertEquals(4 * 512, all.entries().size());
            for (int l = 0; l < 4; l++) {
                Result layer = LogitAttribution.neurons(tiny, cache, l, d);
                assertEquals("L" + l + "N117", layer.entries().get(117).label());
                double bias = biasShare(tiny, cache, tiny.b_out(l), d);
                assertEquals(comps.value(l + "_mlp_out"), layer.sum() + bias, 1e-4, "layer " + l);
            }
            // one layer against the cache's logitAttribution on the explicit stack post[n] * W_out[n]
            NDArray post = cache.get("post", 2);                                        // [3, 20, 512]
            NDArray wOut = tiny.W_out(2);                                                // [512, 128]
            NDArray stack = post.transpose(2, 0, 1).expandDims(3).mul(wOut.expandDims(1).expandDims(1));
            NDArray plus = cache.logitAttribution(stack, -1, d.tokens());
            NDArray minus = cache.logitAttribution(stack, -1, d.against());
            float[] expected = plus.sub(minus).mean(new int[] {1}).toFloatArray();
            Result layer2 = LogitAttribution.neurons(tiny, cache, -2, d);
            for (int n = 0; n < 512; n++) assertEquals(expected[n], layer2.entries().get(n).value(), 1e-5, "N" + n);
        }
    }

    @Test
    void resultsSortTopKTabulateAndPlot() {
        try (ActivationCache cache = attnOnly.runWithCache(repeats)) {
            Direction d = Direction.logit(attnOnly, "t5");
            Result heads = LogitAttribution.heads(attnOnly, cache, d);
            assertEquals(16, heads.entries().size());
            assertEquals("L1H3", heads.entries().get(11).label());
            assertEquals(Kind.HEAD, heads.entries().get(11).kind());
            Result top = heads.top(3);
            assertEquals(3, top.entries().size());
            double[] mags = heads.sorted(Order.MAGNITUDE).values();
            assertEquals(Math.abs(mags[0]), Math.abs(top.values()[0]), 0);
            double[] desc = heads.sorted(Order.DESCENDING).values();
            for (int i = 1; i < desc.length; i++) assertTrue(desc[i - 1] >= desc[i]);
            assertEquals(heads.labels(), heads.sorted(Order.DESCENDING).sorted(Order.MODEL).labels());
            Table t = heads.toTable(Order.ASCENDING);
            assertEquals(List.of("label", "layer", "index", "dla"), t.columnNames());
            assertEquals(heads.sorted(Order.ASCENDING).values()[0], t.doubleColumn("dla").get(0), 0);
            assertNotNull(heads.heatmap());
            assertNotNull(heads.bar());
            assertTrue(heads.plot() instanceof org.knowm.xchart.HeatMapChart);
            assertTrue(top.plot() instanceof org.knowm.xchart.CategoryChart);
            Result comps = LogitAttribution.components(attnOnly, cache, d);
            assertEquals(List.of("embed", "pos_embed", "0_attn_out", "1_attn_out"), comps.labels());
            IllegalStateException notHeads = assertThrows(IllegalStateException.class, comps::heatmap);
            assertTrue(notHeads.getMessage().contains("bar()"), notHeads.getMessage());
            assertTrue(comps.toHtml().contains("pos_embed"));
            IllegalArgumentException label = assertThrows(IllegalArgumentException.class,
                    () -> comps.value("1_atn_out"));
            assertTrue(label.getMessage().contains("1_attn_out"), label.getMessage());
            assertTrue(comps.toString().contains("model:"), comps.toString());
        }
    }

    @Test
    void badInputNamesTheProblemAndTheValidRange() {
        try (ActivationCache cache = tiny.runWithCache(sentences)) {
            Direction d = Direction.logit(3);
            IllegalArgumentException layer = assertThrows(IllegalArgumentException.class,
                    () -> LogitAttribution.neurons(tiny, cache, 4, d));
            assertTrue(layer.getMessage().contains("layer 4") && layer.getMessage().contains("[-4, 4)"),
                    layer.getMessage());
            IllegalArgumentException id = assertThrows(IllegalArgumentException.class,
                    () -> LogitAttribution.heads(tiny, cache, Direction.difference(3, 205)));
            assertTrue(id.getMessage().contains("token id 205") && id.getMessage().contains("0..204"),
                    id.getMessage());
            IllegalArgumentException word = assertThrows(IllegalArgumentException.class,
                    () -> Direction.difference(tiny, "cat", "zzyzx"));
            assertTrue(word.getMessage().contains("zzyzx") && word.getMessage().contains("0..204"),
                    word.getMessage());
            IllegalArgumentException pos = assertThrows(IllegalArgumentException.class,
                    () -> LogitAttribution.components(tiny, cache, d, 20));
            assertTrue(pos.getMessage().contains("position 20") && pos.getMessage().contains("[-20, 20)"),
                    pos.getMessage());
            IllegalArgumentException rows = assertThrows(IllegalArgumentException.class,
                    () -> LogitAttribution.components(tiny, cache, Direction.logit(3, 4)));
            assertTrue(rows.getMessage().contains("one per batch row (3)"), rows.getMessage());
        }
        try (ActivationCache cache = attnOnly.runWithCache(repeats)) {
            IllegalArgumentException noMlp = assertThrows(IllegalArgumentException.class,
                    () -> LogitAttribution.neurons(attnOnly, cache, Direction.logit(3)));
            assertTrue(noMlp.getMessage().contains("attention-only"), noMlp.getMessage());
        }
    }
}
