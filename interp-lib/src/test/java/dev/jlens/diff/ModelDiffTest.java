package dev.jlens.diff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import dev.jlens.lora.Lora;
import dev.jlens.lora.LoraConfig;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.testing.Models;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.HeatMapChart;
import tech.tablesaw.api.Table;

import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelDiffTest {
    static final ModelConfig GPT2 = ModelConfig.gpt2(32, 2, 4, 64, 50, 16);
    static final ModelConfig LLAMA = ModelConfig.llama(32, 2, 4, 2, 64, 50, 16);
    static final long[][] TOKENS = {Models.tokens(10, 50, 1), Models.tokens(10, 50, 2), Models.tokens(10, 50, 3)};

    @Test
    void klOfAModelWithItselfIsZeroAndPositiveAgainstAnother() {
        for (ModelConfig c : List.of(GPT2, LLAMA)) {
            try (HookedTransformer a = HookedTransformer.random(c, 1); HookedTransformer b = HookedTransformer.random(c, 2)) {
                TokenKl self = ModelDiff.of(a, a).kl(TOKENS);
                assertEquals(30, self.rows().size());
                assertTrue(self.max() <= 1e-6, "KL with itself " + self.max());
                TokenKl other = ModelDiff.of(a, b).kl(TOKENS);
                String shaded = other.highlight(0).toHtml();
                assertTrue(shaded.contains(">#0<") && !shaded.contains(">#1<"), "one prompt asked for, one shown");
                assertEquals(TOKENS[0].length, shaded.split("<span title=").length - 1, "one shaded span per token");
                assertTrue(other.highlight().toHtml().contains(">#1<"), "no argument: every prompt");
                assertThrows(IndexOutOfBoundsException.class, () -> other.highlight(9));
                assertTrue(other.rows().stream().allMatch(r -> r.kl() > 0), "every position differs: " + other);
                Table t = other.table();
                assertEquals(List.of("prompt", "position", "token_id", "token", "kl"), t.columnNames());
                assertEquals(30, t.rowCount());
                assertEquals(TOKENS[1][4], t.longColumn("token_id").getLong(14));
                Table top = other.top(5, 3);
                assertEquals(5, top.rowCount());
                assertEquals(other.max(), top.doubleColumn("kl").getDouble(0), 0);
                for (int i = 1; i < 5; i++) {
                    assertTrue(top.doubleColumn("kl").getDouble(i) <= top.doubleColumn("kl").getDouble(i - 1));
                }
                String ctx = top.stringColumn("context").get(0);
                assertTrue(ctx.endsWith("[" + top.stringColumn("token").get(0) + "]"), ctx);
            }
        }
    }

    /** KL agrees with a direct computation from the two models' probabilities, in double. */
    @Test
    void klMatchesItsDefinition() {
        try (HookedTransformer a = HookedTransformer.random(GPT2, 1); HookedTransformer b = HookedTransformer.random(GPT2, 2)) {
            float[] la = a.forward(TOKENS[0]).toFloatArray(), lb = b.forward(TOKENS[0]).toFloatArray();
            double[] kl = ModelDiff.of(a, b).kl(new long[][] {TOKENS[0]}).of(0);
            int v = 50;
            for (int p = 0; p < TOKENS[0].length; p++) {
                double[] pa = softmax(la, p * v, v), pb = softmax(lb, p * v, v);
                double want = 0;
                for (int i = 0; i < v; i++) want += pa[i] * (Math.log(pa[i]) - Math.log(pb[i]));
                assertEquals(want, kl[p], 1e-5, "position " + p);
            }
        }
    }

    private static double[] softmax(float[] x, int from, int n) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int i = 0; i < n; i++) max = Math.max(max, x[from + i]);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) sum += out[i] = Math.exp(x[from + i] - max);
        for (int i = 0; i < n; i++) out[i] /= sum;
        return out;
    }

    @Test
    void swappingEveryWeightTurnsOneModelIntoTheOther() {
        try (HookedTransformer base = HookedTransformer.random(LLAMA, 1);
             HookedTransformer tuned = HookedTransformer.random(LLAMA, 2)) {
            ModelDiff d = ModelDiff.of(base, tuned);
            Table w = d.weightDiff();
            assertEquals(base.parameters().size(), w.rowCount());
            for (int i = 0; i < w.rowCount(); i++) {
                // two seeds draw different matrices; norms start at 1 in both
                boolean matrix = base.parameters().get(w.stringColumn("parameter").get(i)).getShape().dimension() == 2;
                assertEquals(matrix, w.doubleColumn("diff_norm").getDouble(i) > 0, w.stringColumn("parameter").get(i));
            }
            assertTrue(d.kl(TOKENS).mean() > 1e-4);
            Table acts = d.activationDiff(TOKENS);
            assertEquals(2 * 10, acts.rowCount());
            assertTrue(acts.doubleColumn("diff_norm").min() > 0);
            for (Map.Entry<String, NDArray> e : tuned.parameters().entrySet()) {
                base.parameters().get(e.getKey()).set(new NDIndex(":"), e.getValue());
            }
            assertEquals(0, d.weightDiff().doubleColumn("diff_norm").max(), 0);
            assertTrue(d.kl(TOKENS).max() <= 1e-6, "with every weight swapped the models agree");
            assertEquals(0, d.activationDiff(TOKENS).doubleColumn("diff_norm").max(), 0);
        }
    }

    @Test
    void weightDiffOfItselfIsZeroAndTheTableNamesLayersAndModules() {
        try (HookedTransformer a = HookedTransformer.random(GPT2, 1)) {
            Table w = ModelDiff.of(a, a).weightDiff();
            assertEquals(0, w.doubleColumn("diff_norm").max(), 0);
            assertEquals(0, w.doubleColumn("relative_diff").max(), 0);
            int row = w.stringColumn("parameter").indexOf("transformer.h.1.attn.c_attn.weight");
            assertEquals(1, w.intColumn("layer").getInt(row));
            assertEquals("attn.c_attn.weight", w.stringColumn("module").get(row));
            int wte = w.stringColumn("parameter").indexOf("transformer.wte.weight");
            assertTrue(w.intColumn("layer").isMissing(wte));
            assertEquals(OptionalInt.of(12), ModelDiff.layerOf("model.layers.12.mlp.down_proj.weight"));
        }
    }

    /** A LoRA adapter on one layer shows up in that layer's weights only, in the table and the heatmap. */
    @Test
    void aLoraFinetuneIsDiffedLikeAFullOne() {
        try (HookedTransformer base = HookedTransformer.random(GPT2, 1);
             HookedTransformer tuned = HookedTransformer.random(GPT2, 1);
             Lora lora = Lora.attach(tuned, LoraConfig.of(2, 4, "h.1.mlp.c_fc"))) {
            randomizeB(lora, "transformer.h.1.mlp.c_fc", 3);
            ModelDiff d = ModelDiff.of(base, tuned);
            Table w = d.weightDiff();
            for (int i = 0; i < w.rowCount(); i++) {
                boolean adapted = w.stringColumn("parameter").get(i).equals("transformer.h.1.mlp.c_fc.weight");
                assertEquals(adapted, w.doubleColumn("diff_norm").getDouble(i) > 0, w.stringColumn("parameter").get(i));
            }
            HeatMapChart h = d.weightDiffHeatmap();
            assertFalse(h.getSeriesMap().isEmpty());
            // the change starts in block 1's MLP: block 0's residual stream is the same, block 1's differs
            Table acts = d.activationDiff(Batch.of(TOKENS));
            for (int i = 0; i < acts.rowCount(); i++) {
                int layer = acts.intColumn("layer").getInt(i);
                assertEquals(layer == 1, acts.doubleColumn("diff_norm").getDouble(i) > 0, "layer " + layer);
            }
            assertTrue(d.kl(TOKENS).mean() > 0);
        }
    }

    /**
     * Swapping weights localises a change planted in one place: a LoRA adapter on block 1's MLP moves the metric
     * only when block 1's {@code mlp} part is swapped in, and by all of it; every other part leaves the base's score;
     * the base's weights are back bit for bit afterwards.
     */
    @Test
    void swappingWeightsFindsWhereAPlantedChangeLives() {
        try (HookedTransformer base = HookedTransformer.random(GPT2, 1);
             HookedTransformer tuned = HookedTransformer.random(GPT2, 1);
             Lora lora = Lora.attach(tuned, LoraConfig.of(2, 4, "h.1.mlp.c_fc"))) {
            randomizeB(lora, "transformer.h.1.mlp.c_fc", 5);
            Map<String, float[]> before = new java.util.LinkedHashMap<>();
            base.parameters().forEach((k, w) -> before.put(k, w.toFloatArray()));
            // the metric: mean logit of token 7 at the last position
            java.util.function.ToDoubleFunction<HookedTransformer> metric = m -> {
                try (ai.djl.ndarray.NDScope s = new ai.djl.ndarray.NDScope()) {
                    return m.forward(TOKENS).get(new NDIndex(":, -1, 7")).mean().getFloat();
                }
            };
            ModelDiff d = ModelDiff.of(base, tuned);
            Table t = d.swapWeights("logit 7", metric);
            assertTrue(Math.abs(metric.applyAsDouble(tuned) - metric.applyAsDouble(base)) > 1e-3, "the adapter changes the metric");
            int swappedMlp1 = 0;
            for (int i = 0; i < t.rowCount(); i++) {
                boolean planted = !t.intColumn("layer").isMissing(i) && t.intColumn("layer").getInt(i) == 1
                        && t.stringColumn("part").get(i).equals("mlp");
                double rec = t.doubleColumn("recovered").getDouble(i);
                if (planted) {
                    swappedMlp1++;
                    assertEquals(1.0, rec, 1e-4, "block 1's MLP carries the whole change");
                } else {
                    assertEquals(0.0, rec, 0.0, "row " + i + " (" + t.stringColumn("part").get(i) + ") changes nothing");
                }
            }
            assertEquals(1, swappedMlp1);
            base.parameters().forEach((k, w) -> assertArrayEquals(before.get(k), w.toFloatArray(), 0f, k + " restored"));
            assertFalse(d.swapWeightsHeatmap("logit 7", metric).getSeriesMap().isEmpty());
            assertThrows(IllegalStateException.class, () -> ModelDiff.of(tuned, base).swapWeights("x", metric),
                    "a base with an adapter attached is refused");
        }
    }

    @Test
    void patchingActivationsFindsTheSublayerAPlantedChangeLivesIn() {
        try (HookedTransformer base = HookedTransformer.random(GPT2, 1);
             HookedTransformer tuned = HookedTransformer.random(GPT2, 1);
             Lora lora = Lora.attach(tuned, LoraConfig.of(2, 4, "h.1.mlp.c_fc"))) {
            randomizeB(lora, "transformer.h.1.mlp.c_fc", 5);
            java.util.function.ToDoubleFunction<ai.djl.ndarray.NDArray> logit7 =
                    logits -> logits.get(new NDIndex(":, -1, 7")).mean().getFloat();
            Table t = ModelDiff.of(base, tuned).patchActivations(dev.jlens.model.Batch.of(TOKENS), "logit 7", logit7);
            assertEquals(2 * GPT2.nLayers(), t.rowCount());
            for (int i = 0; i < t.rowCount(); i++) {
                boolean planted = t.intColumn("layer").getInt(i) == 1 && t.stringColumn("site").get(i).equals("mlp_out");
                // below and beside the adapted MLP the two models compute the same activations, so a patch there
                // changes nothing; the adapted MLP's output alone carries the whole change
                assertEquals(planted ? 1.0 : 0.0, t.doubleColumn("recovered").getDouble(i), 1e-4, "row " + i);
            }
            assertTrue(t.name().contains("logit 7"), t.name());
        }
    }

    /**
     * The activation difference lens on a planted finetune: the tuned model adds a fixed vector u, the unembedding
     * direction of token 17, to the output of the last block (its MLP's output bias). The lens recovers u from any
     * text, its logit lens puts token 17 first, and steering the base model with it turns it into the tuned model.
     */
    @Test
    void theActivationDifferenceLensReadsAPlantedObjective() {
        try (HookedTransformer base = HookedTransformer.random(GPT2, 1);
             HookedTransformer tuned = HookedTransformer.random(GPT2, 1)) {
            float[] u = base.unembedWeight().get(17).mul(3f).toFloatArray();
            NDArray bias = tuned.parameters().get("transformer.h.1.mlp.c_proj.bias");
            bias.set(new NDIndex(":"), bias.add(bias.getManager().create(u)));
            ModelDiff d = ModelDiff.of(base, tuned);
            String hook = "blocks.1.hook_resid_post";
            dev.jlens.probe.SteeringVector v = d.activationDifference(Batch.of(TOKENS), hook, 4);
            assertEquals(hook, v.hook());
            assertArrayEquals(u, v.vector(), 1e-4f, "the mean difference is the planted vector");
            Table lens = d.logitLens(v, 5);
            assertEquals(5, lens.rowCount());
            assertEquals("#17", lens.stringColumn("promoted").get(0), "token 17 is promoted first");
            java.util.function.ToDoubleFunction<HookedTransformer> logit17 = m -> {
                try (ai.djl.ndarray.NDScope s = new ai.djl.ndarray.NDScope()) {
                    return m.forward(TOKENS).get(new NDIndex(":, -1, 17")).mean().getFloat();
                }
            };
            double before = logit17.applyAsDouble(base);
            double steered;
            try (var scope = dev.jlens.probe.Steering.of(v).attach(base)) {
                steered = logit17.applyAsDouble(base);
            }
            assertTrue(steered > before, "steering the base with the lens vector raises token 17: " + before + " -> " + steered);
            // the planted change adds u at every position of that hook, so steering there at every position is the
            // tuned model itself
            assertEquals(logit17.applyAsDouble(tuned), steered, 1e-4, "steered base = tuned model");
            assertEquals(before, logit17.applyAsDouble(base), 0, "detached, the base model is as before");
            assertThrows(IllegalArgumentException.class, () -> d.activationDifference(Batch.of(TOKENS), hook, 0));
        }
    }

    @Test
    void mismatchedModelsAreRefusedNamingBoth() {
        try (HookedTransformer g = HookedTransformer.random(GPT2, 1); HookedTransformer l = HookedTransformer.random(LLAMA, 1);
             HookedTransformer wide = HookedTransformer.random(ModelConfig.gpt2(48, 2, 4, 64, 50, 16), 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelDiff.of(g, l));
            assertTrue(e.getMessage().contains("random gpt2") && e.getMessage().contains("random llama")
                    && e.getMessage().contains("architectures"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> ModelDiff.of(g, wide));
            assertTrue(e.getMessage().contains("n_embd") && e.getMessage().contains("32")
                    && e.getMessage().contains("48"), e.getMessage());
        }
    }

    /** Fills an adapter's B (zero at initialisation) with uniform values in [-0.5, 0.5), so that it changes the model. */
    static void randomizeB(Lora lora, String layer, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        NDArray b = lora.parameters().get(Lora.PREFIX + layer + ".lora_B.weight");
        float[] v = new float[(int) b.size()];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextDouble() - 0.5);
        b.set(new NDIndex(":"), b.getManager().create(v, b.getShape()));
    }

    /**
     * PCA of the activation differences: the tuned model's last MLP writes {@code (h . a) u} more (a rank-one edit of
     * its output weight), so every difference at the last residual stream is a multiple of u: the first component is
     * u's direction with all the variance.
     */
    @Test
    void pcaOfTheDifferencesFindsTheDirectionOfARankOneEdit() {
        try (HookedTransformer base = HookedTransformer.random(GPT2, 1);
             HookedTransformer tuned = HookedTransformer.random(GPT2, 1)) {
            NDArray w = tuned.parameters().get("transformer.h.1.mlp.c_proj.weight");     // Conv1D [d_mlp, d_model]
            long dMlp = w.getShape().get(0), dm = w.getShape().get(1);
            java.util.SplittableRandom r = new java.util.SplittableRandom(3);
            float[] a = new float[(int) dMlp], u = new float[(int) dm];
            for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
            for (int i = 0; i < u.length; i++) u[i] = (float) r.nextGaussian();
            NDArray outer = w.getManager().create(a).reshape(dMlp, 1).matMul(w.getManager().create(u).reshape(1, dm));
            w.set(new NDIndex(":"), w.add(outer));
            ModelDiff d = ModelDiff.of(base, tuned);
            String hook = "blocks.1.hook_resid_post";
            ModelDiff.DifferencePca pca = d.activationDifferencePca(Batch.of(TOKENS), hook, 8, 3);
            assertEquals(3, pca.components().size());
            assertTrue(pca.explained()[0] > 0.999, "one direction holds the variance: " + java.util.Arrays.toString(pca.explained()));
            assertTrue(pca.explained()[1] < 1e-3);
            double dot = 0, nu = 0, nv = 0;
            float[] v = pca.components().get(0).vector();
            for (int i = 0; i < u.length; i++) {
                dot += u[i] * v[i];
                nu += u[i] * u[i];
                nv += v[i] * v[i];
            }
            assertEquals(1.0, Math.abs(dot) / Math.sqrt(nu * nv), 1e-4, "the first component is u's direction");
            assertEquals(1.0, Math.sqrt(nv), 1e-5, "unit length");
            // signed so that the mean difference projects positively
            float[] mean = d.activationDifference(Batch.of(TOKENS), hook, 8).vector();
            double proj = 0;
            for (int i = 0; i < v.length; i++) proj += mean[i] * v[i];
            assertTrue(proj >= 0, "sign follows the mean difference: " + proj);
            assertThrows(IllegalArgumentException.class, () -> d.activationDifferencePca(Batch.of(TOKENS), hook, 8, 0));
        }
    }
}
