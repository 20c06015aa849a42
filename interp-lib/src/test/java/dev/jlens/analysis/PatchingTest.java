package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import dev.jlens.data.Agreement;
import dev.jlens.hook.Hook;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PatchingTest {
    static HookedTransformer model;
    static Patching patching;

    @BeforeAll
    static void load() {
        model = Zoo.load("tinylang-4l");
        patching = AgreementPatching.of(model, Agreement.Template.OBJECT_GAP, 8);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void theModelAgreesAcrossTheRelativeClause() {
        // the planted behaviour the sweeps study: singular subject -> singular verb preferred, plural -> plural
        System.out.printf("agreement: clean %.3f corrupt %.3f%n", patching.metricClean(), patching.metricCorrupt());
        assertTrue(patching.metricClean() > 1, "clean logit diff " + patching.metricClean());
        assertTrue(patching.metricCorrupt() < -1, "corrupt logit diff " + patching.metricCorrupt());
    }

    /** The sweep a user would write by hand: one forward pass per [layer, pos] with a hook that copies one slice. */
    private double[] handLoop(String shortName, boolean denoise) {
        long[][] base = denoise ? patching.corrupt() : patching.clean();
        long[][] src = denoise ? patching.clean() : patching.corrupt();
        Metric m = patching.metric();
        int layers = model.nLayers(), len = base[0].length;
        double[] out = new double[layers * len];
        for (int l = 0; l < layers; l++) {
            String name = model.actName(shortName, l);
            try (ActivationCache source = model.runWithCache(src, dev.jlens.hook.NameFilter.of(name))) {
                NDArray s = source.get(name);
                for (int p = 0; p < len; p++) {
                    int pos = p;
                    try (NDScope scope = new NDScope()) {
                        NDArray logits = model.runWithHooks(base, Hook.fwd(name, (act, hp) -> {
                            NDArray copy = act.duplicate();
                            copy.set(new NDIndex(":, {}", pos), s.get(new NDIndex(":, {}", pos)));
                            return copy;
                        }));
                        float[] v = m.perRow(logits, base.length).toFloatArray();
                        double sum = 0;
                        for (float x : v) sum += x;
                        out[l * len + p] = sum / v.length;
                    }
                }
            }
        }
        return out;
    }

    @Test
    void onePatchPerPassEqualsAHandWrittenHookLoopBitForBit() {
        double[] hand = handLoop("resid_pre", true);
        Patching loop = patching.rowsPerPass(patching.prompts()).resume(false);
        PatchResult r = loop.sweep(PatchSite.RESID_PRE, Direction.DENOISE);
        assertArrayEquals(hand, r.values(), 0.0);
        double[] handNoise = handLoop("attn_out", false);
        assertArrayEquals(handNoise, loop.sweep(PatchSite.ATTN_OUT, Direction.NOISE).values(), 0.0);
    }

    @Test
    void shortcutsAgreeWithTheHandWrittenLoop() {
        // the default resumes at the patched layer and position and skips patches that replace nothing that differs
        for (boolean denoise : new boolean[] {true, false}) {
            double[] hand = handLoop("resid_pre", denoise);
            PatchResult r = patching.sweep(PatchSite.RESID_PRE, denoise ? Direction.DENOISE : Direction.NOISE);
            assertArrayEquals(hand, r.values(), 1e-4);
            // clean and corrupt share positions 0 .. SUBJECT_POS - 1: patching them is the base run exactly
            double base = denoise ? patching.metricCorrupt() : patching.metricClean();
            for (int l = 0; l < model.nLayers(); l++) {
                for (int p = 0; p < Agreement.SUBJECT_POS; p++) {
                    assertEquals(base, r.values()[l * patching.length() + p], 0.0, "layer " + l + " position " + p);
                }
            }
        }
        // a metric of every position (loss) takes no position shortcut, and still agrees
        Patching loss = patching.with(Metric.loss(patching.corrupt()));
        assertArrayEquals(loss.rowsPerPass(patching.prompts()).resume(false)
                .sweepByPosition(PatchSite.Z, Direction.DENOISE).values(),
                loss.sweepByPosition(PatchSite.Z, Direction.DENOISE).values(), 1e-4);
        // per head and position, with q, k, v and the pattern (whose positions are the queries)
        for (PatchSite site : List.of(PatchSite.Z, PatchSite.Q, PatchSite.K, PatchSite.V, PatchSite.PATTERN)) {
            double[] slow = patching.rowsPerPass(patching.prompts()).resume(false)
                    .sweepByPosition(site, Direction.DENOISE).values();
            double[] fast = patching.sweepByPosition(site, Direction.DENOISE).values();
            assertArrayEquals(slow, fast, 1e-4, site.toString());
        }
    }

    @Test
    void batchedPatchesAgreeWithOnePerPass() {
        double[] one = patching.rowsPerPass(patching.prompts()).sweep(PatchSite.RESID_PRE, Direction.DENOISE).values();
        double[] many = patching.sweep(PatchSite.RESID_PRE, Direction.DENOISE).values();
        double maxDiff = 0;
        for (int i = 0; i < one.length; i++) maxDiff = Math.max(maxDiff, Math.abs(one[i] - many[i]));
        System.out.println("batched vs one per pass: max |diff| " + maxDiff);
        assertArrayEquals(one, many, 1e-4);
    }

    @Test
    void residualPatchingFollowsThePlantedPath() {
        PatchResult r = patching.sweep(PatchSite.RESID_PRE, Direction.DENOISE);
        double[] norm = r.normalized();
        int len = patching.length();
        // layer 0, before any mixing: only the subject's position carries number; patching it restores everything
        // (the embedding of the clean prompt differs from the corrupt one only there)
        assertEquals(1.0, norm[Agreement.SUBJECT_POS], 1e-4);
        for (int p = 0; p < len; p++) {
            if (p != Agreement.SUBJECT_POS) assertEquals(0.0, norm[p], 1e-4, "layer 0 position " + p);
        }
        // after the last block reads it, the number sits at the last position: patching there restores it all
        int last = (model.nLayers() - 1) * len + len - 1;
        assertTrue(norm[last] > 0.5, "last layer, last position: " + norm[last]);
    }

    @Test
    void headSweepsHaveOneValuePerHeadAndPatchingEveryHeadEqualsAttnOut() {
        PatchResult z = patching.sweep(PatchSite.Z, Direction.DENOISE);
        assertEquals(model.nLayers() * model.cfg().nHeads(), z.values().length);
        PatchResult byPos = patching.sweepByPosition(PatchSite.Z, Direction.DENOISE);
        assertEquals(model.nLayers() * model.cfg().nHeads() * patching.length(), byPos.values().length);
        // all heads of a layer at every position = the whole attn_out of that layer (b_O is the same in both runs)
        PatchResult layers = patching.sweepLayers(PatchSite.ATTN_OUT, Direction.DENOISE);
        List<PatchIndex> allHeads = List.of(new PatchIndex(1, java.util.OptionalInt.empty(),
                java.util.OptionalInt.empty()));
        double zAll = patching.run(PatchSite.Z, Direction.DENOISE, allHeads).values()[0];
        assertEquals(layers.values()[1], zAll, 1e-4);
        assertTrue(z.toTable().rowCount() == z.values().length);
        z.heatmap();
        byPos.heatmap();
    }

    @Test
    void patternAndQkvSitesRun() {
        for (PatchSite s : List.of(PatchSite.Q, PatchSite.K, PatchSite.V, PatchSite.PATTERN)) {
            PatchResult r = patching.sweep(s, Direction.NOISE);
            for (double v : r.values()) assertTrue(Double.isFinite(v), s + " " + v);
        }
    }

    @Test
    void replacementsZeroMeanAndResample() {
        long[][] data = new long[16][];
        var lang = dev.jlens.data.TinyLang.defaults();
        for (int i = 0; i < data.length; i++) {
            data[i] = lang.example(dev.jlens.data.Split.TEST, i).ids();
        }
        for (Replacement r : List.of(Replacement.zero(), Replacement.mean(data), Replacement.meanPerPosition(data),
                Replacement.resample(data, 1))) {
            PatchResult res = patching.with(r).sweep(PatchSite.MLP_OUT, Direction.NOISE);
            for (double v : res.values()) assertTrue(Double.isFinite(v), r.label() + " " + v);
        }
        // zero ablation of layer 0's MLP at the subject must change the prediction
        PatchResult zero = patching.with(Replacement.zero()).sweep(PatchSite.MLP_OUT, Direction.NOISE);
        assertTrue(Math.abs(zero.effects()[Agreement.SUBJECT_POS]) > 0.01);
    }

    @Test
    void badInputIsNamed() {
        long[][] c = patching.clean(), x = patching.corrupt();
        var e = assertThrows(IllegalArgumentException.class, () -> PatchSite.parse("resid"));
        assertTrue(e.getMessage().contains("resid_pre"), e.getMessage());
        long[][] shorter = {java.util.Arrays.copyOf(x[0], 3)};
        e = assertThrows(IllegalArgumentException.class,
                () -> Patching.of(model, new long[][] {c[0]}, shorter, patching.metric()));
        assertTrue(e.getMessage().contains("lengths must match"), e.getMessage());
        long[][] bad = {c[0].clone()};
        bad[0][2] = 99_999;
        e = assertThrows(IllegalArgumentException.class,
                () -> Patching.of(model, bad, new long[][] {x[0]}, patching.metric()));
        assertTrue(e.getMessage().contains("token id 99999") && e.getMessage().contains("0..204"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Patching.of(model, c, x, Metric.logitDiff(5000, 3)));
        assertTrue(e.getMessage().contains("metric token 5000"), e.getMessage());
        try (HookedTransformer attnOnly = Zoo.load("attn-only-2l")) {
            long[][] t = {{1, 5, 6, 7}};
            e = assertThrows(IllegalArgumentException.class,
                    () -> Patching.of(attnOnly, t, t, Metric.logitDiff(5, 6)).sweep(PatchSite.MLP_OUT,
                            Direction.DENOISE));
            assertTrue(e.getMessage().contains("attention-only") && e.getMessage().contains("resid_pre"),
                    e.getMessage());
        }
        e = assertThrows(IllegalArgumentException.class, () -> patching.run(PatchSite.Z, Direction.NOISE,
                List.of(PatchIndex.head(0, 9))));
        assertTrue(e.getMessage().contains("valid heads are 0..3"), e.getMessage());
    }

    @Test
    void passesAreSplitByTheirCostAndCoverEveryPatchOnce() {
        // 4 layers x 5 first-changed positions x 4 heads, sorted by layer then position, 8 prompts, 7 tokens
        int[] start = new int[80], from = new int[80];
        for (int i = 0; i < 80; i++) {
            start[i] = i / 20;
            from[i] = 2 + (i % 20) / 4;
        }
        var tiny = dev.jlens.model.arch.ModelConfig.gpt2(128, 4, 4, 512, 205, 64);
        var wide = dev.jlens.model.arch.ModelConfig.gpt2(768, 4, 12, 3072, 50257, 1024);
        for (var cfg : List.of(tiny, wide)) {
            List<int[]> chunks = Patching.costChunks(start, from, 8, 32, 7, cfg);
            int next = 0;
            for (int[] c : chunks) {
                assertEquals(next, c[0], "chunks must be consecutive and cover every patch once");
                assertTrue(c[1] >= 1 && c[1] <= 32, "a pass holds 1..32 patches, got " + c[1]);
                next = c[0] + c[1];
            }
            assertEquals(80, next);
        }
        // where arithmetic is cheap the fixed cost of a pass dominates: fewer, larger passes than on a wide model,
        // where starting each pass at its own first changed position saves more than a pass costs
        int tinyPasses = Patching.costChunks(start, from, 8, 32, 7, tiny).size();
        int widePasses = Patching.costChunks(start, from, 8, 32, 7, wide).size();
        assertTrue(tinyPasses < widePasses, tinyPasses + " passes on the small model, " + widePasses + " on the wide one");
        assertEquals(20, widePasses, "one pass per layer and position on the wide model");
        assertThrows(IllegalStateException.class, () -> Patching.costChunks(new int[] {1, 0}, new int[] {0, 0}, 8, 32, 7, tiny));
    }
}
