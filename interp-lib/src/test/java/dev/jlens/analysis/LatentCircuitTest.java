package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import dev.jlens.geometry.Pca;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Comparator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The upstream circuit of a planted readout in tinylang-4l: the direction in which one head of layer 1 varies its
 * output against everything else in {@code blocks.1.hook_resid_mid}; bad input.
 */
class LatentCircuitTest {
    static HookedTransformer model;
    static List<Example<TinyLang.Meta>> examples;
    static List<long[]> sequences;

    @BeforeAll
    static void load() {
        model = Zoo.load("tinylang-4l");
        examples = TinyLang.defaults().examples(Split.TRAIN, 0, 96);
        sequences = examples.stream().map(Example::ids).toList();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /**
     * The direction in which head {@code h} of layer 1 varies its output most against the variation of everything
     * else in {@code blocks.1.hook_resid_mid} (the top generalized eigenvector of the two covariances, positions after
     * BOS): a readout there is written by that head by construction.
     */
    static float[] headDirection(int h) {
        String result = "blocks.1.attn.hook_result", mid = "blocks.1.hook_resid_mid";
        try (ActivationCache c = model.runWithCache(sequences.subList(0, 32).toArray(long[][]::new),
                Patching.filter(List.of(result, mid)))) {
            NDArray res = c.get(result);                                      // [N, P, H, d]
            int n = (int) res.getShape().get(0), len = (int) res.getShape().get(1), heads = (int) res.getShape().get(2),
                    d = (int) res.getShape().get(3);
            float[] f = res.toFloatArray(), m = c.get(mid).toFloatArray();
            int rows = n * (len - 1);
            double[][] head = new double[rows][d], rest = new double[rows][d];
            for (int i = 0, k = 0; i < n; i++) {
                for (int p = 1; p < len; p++, k++) {
                    for (int j = 0; j < d; j++) {
                        head[k][j] = f[((i * len + p) * heads + h) * d + j];
                        rest[k][j] = m[(i * len + p) * d + j] - head[k][j];
                    }
                }
            }
            Pca restPca = Pca.fit(rest, d);
            // whiten by the rest's covariance: y = diag(1 / sqrt(var + ridge)) V^T x; the head's top component there
            double ridge = 1e-3 * restPca.totalVariance() / d;
            double[][] y = restPca.project(head);
            for (double[] row : y) for (int j = 0; j < d; j++) row[j] /= Math.sqrt(restPca.variances()[j] + ridge);
            double[] v = Pca.fit(y, 1).components()[0];
            float[] w = new float[d];
            for (int k = 0; k < d; k++) {
                double scale = v[k] / Math.sqrt(restPca.variances()[k] + ridge);
                for (int j = 0; j < d; j++) w[j] += (float) (scale * restPca.components()[k][j]);
            }
            return w;
        }
    }

    @Test
    void aReadoutAlongOneHeadsOutputIsTracedToThatHead() {
        long t0 = System.nanoTime();
        for (int h : new int[] {0, 2}) {
            var readout = new LatentCircuit.Readout("blocks.1.hook_resid_mid", headDirection(h), 0);
            var firing = LatentCircuit.firing(model, readout, sequences, 8);
            var r = LatentCircuit.trace(model, readout, firing.prompts(), firing.targets(), LatentCircuit.Ablation.MEAN);
            System.out.println(r.toTable().first(6).printAll());
            System.out.println(r.readsTable(4).printAll());
            // among the heads that write to hook_resid_mid directly (layer 1), the planted one moves it most
            List<LatentCircuit.Effect> direct = r.effects(LatentCircuit.Node.Kind.HEAD).stream()
                    .filter(e -> e.node().layer() == 1)
                    .sorted(Comparator.comparingDouble((LatentCircuit.Effect e) -> -Math.abs(e.ablation()))).toList();
            LatentCircuit.Effect top = direct.get(0);
            assertEquals("L1H" + h, top.node().name(), "ablating the planted head moves the readout most: " + direct);
            assertTrue(Math.abs(top.ablation()) > 2 * Math.abs(direct.get(1).ablation()), direct.toString());
            assertTrue(top.ablation() < 0, "at the tokens it fires most, the mean head output is lower: " + top);
            assertTrue(r.topComponents(model.cfg().nHeads() * 2 + 1).contains(top.node()), "attribution ranks it high");
            // nothing after the head reads its output before hook_resid_mid: attribution is exact for layer 1's heads
            for (var e : r.effects(LatentCircuit.Node.Kind.HEAD)) {
                if (e.node().layer() == 1) assertEquals(e.ablation(), e.attribution(), 1e-3 * Math.abs(r.clean()) + 1e-4, e.toString());
            }
            assertTrue(r.correlation(LatentCircuit.Node.Kind.HEAD) > 0.9, "heads: " + r.correlation(LatentCircuit.Node.Kind.HEAD));
            // the head's reads add up to its output at the targets dotted with the readout
            double reads = r.reads(1, h).stream().mapToDouble(LatentCircuit.Read::contribution).sum();
            double attn = r.reads(1, h).stream().mapToDouble(LatentCircuit.Read::attention).sum();
            assertEquals(1.0, attn, 1e-3, "attention over the sources sums to 1");
            assertTrue(reads > 0, "the head's output at the targets points along the readout: " + reads);
            var f = r.faithfulness(1);
            System.out.println(f);
            LatentCircuit.Node first = f.components().get(0);
            double firstAblation = r.effects().stream().filter(e -> e.node().equals(first)).findFirst().orElseThrow().ablation();
            assertEquals(r.clean() + firstAblation, f.without(), 1e-3, "ablating the top component alone is its ablation");
        }
        System.out.printf("planted: %.1f s%n", (System.nanoTime() - t0) / 1e9);
    }

    @Test
    void badInputNamesTheProblem() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> new LatentCircuit.Readout("blocks.1.attn.hook_z", new float[128], 0));
        assertTrue(e.getMessage().contains("hook_resid_post"), e.getMessage());
        var readout = new LatentCircuit.Readout("blocks.1.hook_resid_post", new float[128], 0);
        var t = assertThrows(IllegalArgumentException.class, () -> LatentCircuit.trace(model, readout,
                new long[][] {sequences.get(0)}, new int[] {0}, LatentCircuit.Ablation.ZERO));
        assertTrue(t.getMessage().contains("target"), t.getMessage());
    }
}
