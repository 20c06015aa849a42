package dev.jlens.model.arch;

import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.testing.Models;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static dev.jlens.testing.Models.maxAbsDiff;
import static dev.jlens.testing.Models.tokens;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The TransformerLens-named weights reproduce the forward pass's cached activations: each view is checked against
 * the activation it maps (q from {@code ln1.hook_normalized}, {@code hook_result} from {@code hook_z}, the logits
 * from {@code ln_final.hook_normalized}, ...) on GPT-2 (gpt2-tiny-random) and Llama with grouped-query attention
 * (stories260K).
 */
class TlWeightsTest {
    // float32 sums of 64-256 products: observed differences are ~1e-7 to ~1e-6
    static final double TOL = 1e-5;

    static HookedTransformer gpt2;
    static HookedTransformer llama;

    @BeforeAll
    static void load() {
        gpt2 = Models.gpt2();
        llama = Models.stories();
    }

    @AfterAll
    static void close() {
        gpt2.close();
        llama.close();
    }

    /** {@code x [1, pos, d_in] @ w[h] [d_in, d_out] + b[h]} for every head: {@code [1, pos, head, d_out]}. */
    static NDArray perHead(NDArray x, NDArray wHIO, NDArray bHO) {
        long heads = wHIO.getShape().get(0);
        NDArray[] outs = new NDArray[(int) heads];
        for (int h = 0; h < heads; h++) outs[h] = x.matMul(wHIO.get(h)).add(bHO.get(h)).expandDims(2);
        return ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(outs), 2);
    }

    /** The input of block {@code l}'s attention as the projections see it (RMSNorm's weight comes after the hook). */
    static NDArray attnInput(HookedTransformer m, ActivationCache c, int l) {
        NDArray normed = c.get("blocks." + l + ".ln1.hook_normalized");
        return m.cfg().family() == ModelConfig.Family.LLAMA
                ? normed.mul(m.tlWeights().get("blocks." + l + ".ln1.w")) : normed;
    }

    static NDArray mlpInput(HookedTransformer m, ActivationCache c, int l) {
        NDArray normed = c.get("blocks." + l + ".ln2.hook_normalized");
        return m.cfg().family() == ModelConfig.Family.LLAMA
                ? normed.mul(m.tlWeights().get("blocks." + l + ".ln2.w")) : normed;
    }

    static double report(String what, double diff) {
        System.out.printf("TlWeightsTest %-40s max |diff| %.3g%n", what, diff);
        assertTrue(diff < TOL, what + ": max |diff| " + diff);
        return diff;
    }

    @Test
    void queryKeyValueWeightsReproduceHookQkv() {
        for (HookedTransformer m : List.of(gpt2, llama)) {
            ModelConfig cfg = m.cfg();
            try (NDScope scope = new NDScope();
                 ActivationCache c = m.runWithCache(tokens(7, cfg.dVocab(), 21), NameFilter.all())) {
                for (int l = 0; l < cfg.nLayers(); l++) {
                    NDArray x = attnInput(m, c, l);
                    String a = "blocks." + l + ".attn.";
                    String kv = cfg.nKvHeads() != cfg.nHeads() ? "_" : "";
                    report(cfg.modelType() + " L" + l + " hook_q", maxAbsDiff(c.get(a + "hook_q"),
                            perHead(x, m.W_Q(l), m.b_Q(l))));
                    report(cfg.modelType() + " L" + l + " hook_k", maxAbsDiff(c.get(a + "hook_k"),
                            perHead(x, m.tlWeights().get(a + kv + "W_K"), m.tlWeights().get(a + kv + "b_K"))));
                    report(cfg.modelType() + " L" + l + " hook_v", maxAbsDiff(c.get(a + "hook_v"),
                            perHead(x, m.tlWeights().get(a + kv + "W_V"), m.tlWeights().get(a + kv + "b_V"))));
                    // repeated W_K / W_V: query head h reads key/value head h / group, as the attention does
                    NDArray kPerQueryHead = perHead(x, m.W_K(l), m.b_K(l));
                    NDArray vPerQueryHead = perHead(x, m.W_V(l), m.b_V(l));
                    assertEquals(new Shape(cfg.nHeads(), cfg.dModel(), cfg.dHead()), m.W_K(l).getShape());
                    for (int h = 0; h < cfg.nHeads(); h++) {
                        NDIndex qh = new NDIndex(":, :, {}", h), kvh = new NDIndex(":, :, {}", h / cfg.groupSize());
                        report(cfg.modelType() + " L" + l + " W_K head " + h, maxAbsDiff(kPerQueryHead.get(qh),
                                c.get(a + "hook_k").get(kvh)));
                        report(cfg.modelType() + " L" + l + " W_V head " + h, maxAbsDiff(vPerQueryHead.get(qh),
                                c.get(a + "hook_v").get(kvh)));
                    }
                }
            }
        }
    }

    @Test
    void groupedKeysAreReadAsTheAttentionScoresRead() {
        // attn_scores[h, q, k] = rot_q[q, h] . rot_k[k, h / group] / sqrt(d_head) for k <= q: the grouping that W_K's
        // repetition claims is the forward pass's
        ModelConfig cfg = llama.cfg();
        try (NDScope scope = new NDScope();
             ActivationCache c = llama.runWithCache(tokens(6, cfg.dVocab(), 22), NameFilter.all())) {
            NDArray q = c.get("rot_q", 2), k = c.get("rot_k", 2), scores = c.get("attn_scores", 2);
            double worst = 0;
            for (int h = 0; h < cfg.nHeads(); h++) {
                NDArray qh = q.get(new NDIndex("0, :, {}", h));                          // [q, d_head]
                NDArray kh = k.get(new NDIndex("0, :, {}", h / cfg.groupSize()));       // [k, d_head]
                float[] want = qh.matMul(kh.transpose()).div(Math.sqrt(cfg.dHead())).toFloatArray();
                float[] got = scores.get(new NDIndex("0, {}", h)).toFloatArray();
                for (int i = 0; i < 6; i++) {
                    for (int j = 0; j <= i; j++) worst = Math.max(worst, Math.abs(want[i * 6 + j] - got[i * 6 + j]));
                }
            }
            report("llama L2 scores from grouped keys", worst);
        }
    }

    @Test
    void outputWeightsReproduceResultAndAttnOut() {
        for (HookedTransformer m : List.of(gpt2, llama)) {
            ModelConfig cfg = m.cfg();
            try (NDScope scope = new NDScope();
                 ActivationCache c = m.runWithCache(tokens(8, cfg.dVocab(), 23), NameFilter.all())) {
                for (int l = 0; l < cfg.nLayers(); l++) {
                    NDArray z = c.get("z", l);                                   // [1, pos, head, d_head]
                    NDArray wO = m.W_O(l);                                       // [head, d_head, d_model]
                    assertEquals(new Shape(cfg.nHeads(), cfg.dHead(), cfg.dModel()), wO.getShape());
                    NDArray[] heads = new NDArray[cfg.nHeads()];
                    for (int h = 0; h < heads.length; h++) {
                        heads[h] = z.get(new NDIndex(":, :, {}", h)).matMul(wO.get(h)).expandDims(2);
                    }
                    NDArray result = ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(heads), 2);
                    report(cfg.modelType() + " L" + l + " hook_result", maxAbsDiff(c.get("result", l), result));
                    report(cfg.modelType() + " L" + l + " hook_attn_out", maxAbsDiff(c.get("attn_out", l),
                            result.sum(new int[] {2}).add(m.b_O(l))));
                }
            }
        }
    }

    @Test
    void mlpWeightsReproduceTheMlpHooks() {
        for (HookedTransformer m : List.of(gpt2, llama)) {
            ModelConfig cfg = m.cfg();
            boolean gated = cfg.family() == ModelConfig.Family.LLAMA;
            try (NDScope scope = new NDScope();
                 ActivationCache c = m.runWithCache(tokens(5, cfg.dVocab(), 24), NameFilter.all())) {
                for (int l = 0; l < cfg.nLayers(); l++) {
                    NDArray x = mlpInput(m, c, l);
                    String p = cfg.modelType() + " L" + l + " ";
                    if (gated) {
                        report(p + "hook_pre (gate)", maxAbsDiff(c.get("mlp.hook_pre", l), x.matMul(m.W_gate(l))));
                        report(p + "hook_pre_linear", maxAbsDiff(c.get("mlp.hook_pre_linear", l),
                                x.matMul(m.W_in(l)).add(m.b_in(l))));
                    } else {
                        report(p + "hook_pre", maxAbsDiff(c.get("mlp.hook_pre", l),
                                x.matMul(m.W_in(l)).add(m.b_in(l))));
                    }
                    report(p + "hook_mlp_out", maxAbsDiff(c.get("mlp_out", l),
                            c.get("mlp.hook_post", l).matMul(m.W_out(l)).add(m.b_out(l))));
                }
            }
        }
    }

    @Test
    void embeddingsAndUnembeddingReproduceTheirHooksAndTheLogits() {
        for (HookedTransformer m : List.of(gpt2, llama)) {
            ModelConfig cfg = m.cfg();
            long[] t = tokens(9, cfg.dVocab(), 25);
            try (NDScope scope = new NDScope(); ActivationCache c = m.runWithCache(t, NameFilter.all())) {
                NDArray ids = m.manager().create(t);
                report(cfg.modelType() + " hook_embed", maxAbsDiff(c.get("hook_embed"),
                        m.W_E().get(ids).expandDims(0)));
                NDArray normed = c.get("ln_final.hook_normalized");
                if (cfg.family() == ModelConfig.Family.LLAMA) normed = normed.mul(m.tlWeights().get("ln_final.w"));
                NDArray wU = m.W_U();
                assertEquals(new Shape(cfg.dModel(), cfg.dVocab()), wU.getShape());
                report(cfg.modelType() + " logits", maxAbsDiff(c.logits(), normed.matMul(wU).add(m.b_U())));
                assertEquals(0.0, maxAbsDiff(wU, m.unembedWeight().transpose()), "W_U is the unembedding, transposed");
            }
        }
        try (NDScope scope = new NDScope();
             ActivationCache c = gpt2.runWithCache(tokens(9, 96, 26), NameFilter.all())) {
            report("gpt2 hook_pos_embed", maxAbsDiff(c.get("hook_pos_embed"), gpt2.W_pos().get("0:9").expandDims(0)));
        }
    }

    @Test
    void namesAreTransformerLensStateDictNames() {
        Set<String> gpt2Names = new TreeSet<>(gpt2.tlWeights().names());
        Set<String> want = new TreeSet<>(List.of("embed.W_E", "pos_embed.W_pos", "ln_final.w", "ln_final.b",
                "unembed.W_U", "unembed.b_U"));
        for (int l = 0; l < 3; l++) {
            for (String s : List.of("ln1.w", "ln1.b", "ln2.w", "ln2.b", "attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O",
                    "attn.b_Q", "attn.b_K", "attn.b_V", "attn.b_O", "mlp.W_in", "mlp.b_in", "mlp.W_out", "mlp.b_out")) {
                want.add("blocks." + l + "." + s);
            }
        }
        assertEquals(want, gpt2Names);
        Set<String> llamaLayer0 = new TreeSet<>();
        for (String n : llama.tlWeights().names()) if (n.startsWith("blocks.0.")) llamaLayer0.add(n.substring(9));
        // grouped-query attention: the unrepeated key/value weights carry TransformerLens's leading underscore
        assertEquals(new TreeSet<>(List.of("ln1.w", "ln2.w", "attn.W_Q", "attn._W_K", "attn._W_V", "attn.W_O",
                "attn.b_Q", "attn._b_K", "attn._b_V", "attn.b_O", "mlp.W_in", "mlp.W_gate", "mlp.W_out", "mlp.b_in",
                "mlp.b_out")), llamaLayer0);
        for (HookedTransformer m : List.of(gpt2, llama)) {
            try (NDScope scope = new NDScope()) {
                for (String n : m.tlWeights().names()) {
                    assertEquals(m.tlWeights().shape(n), m.tlWeights().get(n).getShape(), n);
                }
            }
        }
        try (NDScope scope = new NDScope()) {
            assertEquals(new Shape(4, 64, 8), llama.tlWeights().get("blocks.1.attn._W_K").getShape());
            assertEquals(0f, llama.b_Q(0).abs().max().getFloat(), "no query bias: zeros, as in TransformerLens");
        }
    }

    @Test
    void unknownNamesAndLayersSayWhatExists() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpt2.tlWeights().get("blocks.0.attn.W_q"));
        assertTrue(e.getMessage().contains("blocks.0.attn.W_Q"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> llama.tlWeights().get("blocks.0.attn.W_K"));
        assertTrue(e.getMessage().contains("blocks.0.attn._W_K") && e.getMessage().contains("W_K(layer)"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpt2.W_gate(0));
        assertTrue(e.getMessage().contains("blocks.0.mlp.W_in"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> llama.W_pos());
        assertTrue(e.getMessage().contains("embed.W_E"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpt2.W_Q(3));
        assertTrue(e.getMessage().contains("layer 3 out of range [0, 3)"), e.getMessage());
    }

    @Test
    void returnedArraysAreCopiesFreedWithTheCallersScope() {
        BaseNDManager gpt2Arrays = (BaseNDManager) gpt2.manager(), llamaArrays = (BaseNDManager) llama.manager();
        long[] t = tokens(6, 96, 27);
        try (NDScope scope = new NDScope()) {
            float[] before = gpt2.forward(t).toFloatArray();
            NDArray wQ = gpt2.W_Q(0);
            wQ.set(new NDIndex("0"), 100f);               // scribbling on the copy ...
            NDArray wE = gpt2.W_E();
            wE.set(new NDIndex("0"), 100f);
            assertArrayEquals(before, gpt2.forward(t).toFloatArray());   // ... leaves the model alone
        }
        Runnable touchAll = () -> {
            try (NDScope scope = new NDScope()) {
                for (String n : gpt2.tlWeights().names()) gpt2.tlWeights().get(n);
                gpt2.W_K(1);
                llama.W_K(1);
                llama.b_V(2);
            }
        };
        touchAll.run();
        int arrays = gpt2Arrays.getManagedArrays().size() + llamaArrays.getManagedArrays().size();
        for (int i = 0; i < 20; i++) touchAll.run();
        assertEquals(arrays, gpt2Arrays.getManagedArrays().size() + llamaArrays.getManagedArrays().size(),
                "arrays left behind by 20 scoped loops");
    }
}
