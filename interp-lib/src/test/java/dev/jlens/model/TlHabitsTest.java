package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookNames;
import dev.jlens.hook.NameFilter;
import dev.jlens.testing.Models;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

import static dev.jlens.testing.Models.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** TransformerLens one-liners on the model: string tokens of ids, text overloads, test_prompt, act names. */
class TlHabitsTest {
    static HookedTransformer tiny;    // tinylang-4l: GPT-2 with a word-level tokenizer
    static HookedTransformer gpt2;
    static HookedTransformer llama;

    static final String TEXT = "the big dog near the barn runs .";

    @BeforeAll
    static void load() {
        tiny = Zoo.load("tinylang-4l");
        gpt2 = Models.gpt2();
        llama = Models.stories();
    }

    @AfterAll
    static void close() {
        tiny.close();
        gpt2.close();
        llama.close();
    }

    @Test
    void strTokensOfIdsMatchThoseOfTheText() {
        long[] ids = tiny.toTokens(TEXT);
        List<String> fromText = tiny.toStrTokens(TEXT);
        assertEquals(List.of("<bos>", "the", "big", "dog", "near", "the", "barn", "runs", "."), fromText);
        assertEquals(fromText, tiny.toStrTokens(ids));
        assertEquals(fromText, tiny.requireTokenizer().toStrTokens(ids));
        assertEquals(List.of(), tiny.toStrTokens(new long[0]));
        for (int i = 0; i < ids.length; i++) {
            assertEquals(tiny.requireTokenizer().decodeToken(ids[i]), tiny.toStrTokens(ids).get(i));
        }
        assertThrows(IllegalArgumentException.class, () -> tiny.toStrTokens(new long[] {1, 10_000}));
    }

    @Test
    void textAndIdOverloadsEqualTheBatchForms() {
        long[] ids = tiny.toTokens(TEXT);
        Batch batch = Batch.of(new long[][] {ids});
        Hook ablate = Hook.fwd("blocks.1.hook_attn_out", (a, h) -> a.zerosLike());
        try (NDScope scope = new NDScope()) {
            NDArray hooked = tiny.runWithHooks(batch, ablate);
            assertEquals(0.0, maxAbsDiff(hooked, tiny.runWithHooks(TEXT, ablate)));
            assertEquals(0.0, maxAbsDiff(hooked, tiny.runWithHooks(ids, ablate)));
            assertTrue(maxAbsDiff(hooked, tiny.forward(batch)) > 1e-3, "the hook was applied");

            NDArray loss = tiny.lossPerToken(batch);
            assertEquals(new Shape(1, ids.length - 1), loss.getShape());
            assertEquals(0.0, maxAbsDiff(loss, tiny.lossPerToken(TEXT)));
            assertEquals(0.0, maxAbsDiff(loss, tiny.lossPerToken(ids)));
            assertEquals(0.0, maxAbsDiff(loss, tiny.lossPerToken(new long[][] {ids})));

            for (int l : new int[] {0, 3}) {
                NDArray r = tiny.residualAt(batch, l);
                assertEquals(0.0, maxAbsDiff(r, tiny.residualAt(TEXT, l)));
                assertEquals(0.0, maxAbsDiff(r, tiny.residualAt(ids, l)));
                assertEquals(0.0, maxAbsDiff(r, tiny.residualAt(new long[][] {ids}, l)));
            }

            NameFilter filter = NameFilter.of("resid_post", "pattern");
            try (ActivationCache a = tiny.runWithCache(batch, filter);
                 ActivationCache b = tiny.runWithCache(TEXT, filter);
                 ActivationCache all = tiny.runWithCache(ids);
                 ActivationCache allBatch = tiny.runWithCache(batch)) {
                assertEquals(a.names(), b.names());
                assertEquals(8, a.size());
                for (String n : a.names()) assertEquals(0.0, maxAbsDiff(a.get(n), b.get(n)), n);
                assertEquals(tiny.hookNames().size(), all.size());
                assertEquals(all.names(), allBatch.names());
                assertEquals(0.0, maxAbsDiff(all.get("resid_post", 2), a.get("resid_post", 2)));
            }

            Function<NDArray, NDArray> lossFn = logits -> logits.get(":, -1, 5").sum();
            NameFilter grads = NameFilter.of("resid_pre");
            try (ActivationCache g1 = tiny.runWithGradients(batch, grads, lossFn);
                 ActivationCache g2 = tiny.runWithGradients(TEXT, grads, lossFn);
                 ActivationCache g3 = tiny.runWithGradients(ids, grads, lossFn)) {
                for (String n : g1.names()) {
                    assertEquals(0.0, maxAbsDiff(g1.get(n), g2.get(n)), n);
                    assertEquals(0.0, maxAbsDiff(g1.get(n), g3.get(n)), n);
                }
                assertTrue(g1.get("resid_pre", 0).abs().sum().getFloat() > 0, "gradients are not all zero");
            }
        }
        try (Generation.Result one = tiny.generate(ids, Generation.Config.greedy(4));
             Generation.Result many = tiny.generate(new long[][] {ids}, Generation.Config.greedy(4))) {
            assertArrayEquals(many.first(), one.first());
        }
    }

    /** Softmax in doubles, as an independent check of the model's probabilities. */
    static double[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        double[] p = new double[logits.length];
        for (int i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
        for (int i = 0; i < p.length; i++) p[i] /= sum;
        return p;
    }

    @Test
    void testPromptRanksTheAnswerAsTheLogitsDo() {
        String prompt = "the big dog near the barn";
        PromptTestResult r = tiny.testPrompt(prompt, "runs", 5);
        long[] promptIds = tiny.toTokens(prompt);
        long answer = tiny.toSingleToken("runs");
        long[] all = Arrays.copyOf(promptIds, promptIds.length + 1);
        all[promptIds.length] = answer;
        float[] logits;
        try (NDScope scope = new NDScope()) {
            logits = tiny.forward(all).get(0, promptIds.length - 1).toFloatArray();
        }
        double[] p = softmax(logits);
        int rank = 0;
        for (float l : logits) if (l > logits[(int) answer]) rank++;
        assertEquals(List.of("<bos>", "the", "big", "dog", "near", "the", "barn"), r.promptTokens());
        assertEquals(List.of("runs"), r.answerTokens());
        assertEquals(rank, r.answerRank());
        assertEquals(List.of(rank), r.answerRanks());
        assertEquals(p[(int) answer], r.answerProb(), 1e-5);
        assertEquals(logits[(int) answer], r.answerLogit(), 0);
        // the top 5 by the independent probabilities
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingDouble(i -> -p[i]));
        List<PromptTestResult.Candidate> top = r.answers().get(0).top();
        assertEquals(5, top.size());
        for (int k = 0; k < 5; k++) {
            assertEquals(order[k].longValue(), top.get(k).id(), "rank " + k);
            assertEquals(p[order[k]], top.get(k).prob(), 1e-5);
            assertEquals(tiny.requireTokenizer().decodeToken(order[k]), top.get(k).token());
        }
        // a trained model puts the agreeing verb forms above the others
        assertTrue(r.answerProb() > p[(int) tiny.toSingleToken("run")], r.toString());

        Table t = r.toTable();
        assertEquals(List.of("answer", "rank", "token", "logit", "prob", "is_answer"), t.columnNames());
        assertEquals(rank < 5 ? 5 : 6, t.rowCount());
        assertEquals(top.get(0).token(), t.stringColumn("token").get(0).replace("|", ""));
        assertEquals(p[order[0]], t.doubleColumn("prob").get(0), 1e-5);
        assertEquals(1, t.booleanColumn("is_answer").countTrue());

        String s = r.toString();
        assertTrue(s.contains(String.format(Locale.ROOT, "Top 0th token. Logit: %5.2f Prob: %6.2f%% Token: |%s|",
                logits[order[0]], 100 * p[order[0]], top.get(0).token())), s);
        assertTrue(s.contains(String.format(Locale.ROOT, "Performance on answer token:\nRank: %-8d Logit: %5.2f "
                + "Prob: %6.2f%% Token: |runs|", rank, logits[(int) answer], 100 * p[(int) answer])), s);
        assertTrue(s.contains("Ranks of the answer tokens: [('runs', " + rank + ")]"), s);
        String html = r.toHtml();
        assertTrue(html.contains("<table") && html.contains("|runs|"), html);
        assertEquals(10, tiny.testPrompt(prompt, "runs").answers().get(0).top().size());
    }

    @Test
    void testPromptScoresSeveralAnswerTokensTeacherForced() {
        String prompt = "Alice sees";
        PromptTestResult r = tiny.testPrompt(prompt, "the big dog", 3, false);
        assertEquals(List.of("the", "big", "dog"), r.answerTokens());
        long[] ids = tiny.toTokens(prompt + " the big dog");
        float[][] rows = new float[3][];
        try (NDScope scope = new NDScope()) {
            NDArray logits = tiny.forward(ids);
            for (int i = 0; i < 3; i++) rows[i] = logits.get(0, 2 + i).toFloatArray();
        }
        for (int i = 0; i < 3; i++) {
            PromptTestResult.AnswerToken a = r.answers().get(i);
            int id = (int) ids[3 + i];
            assertEquals(2 + i, a.position());
            assertEquals(id, a.answer().id());
            assertEquals(softmax(rows[i])[id], a.answer().prob(), 1e-5, "answer token " + i);
            int rank = 0;
            for (float l : rows[i]) if (l > rows[i][id]) rank++;
            assertEquals(rank, a.answer().rank());
        }
        assertEquals(3, r.toString().split("Performance on answer token:", -1).length - 1);
        // the space TransformerLens prepends changes nothing for a word-level tokenizer
        assertEquals(r.answerRanks(), tiny.testPrompt(prompt, "the big dog", 3).answerRanks());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> gpt2.testPrompt("a", "b"));
        assertTrue(e.getMessage().contains("no tokenizer"), e.getMessage());
    }

    @Test
    void residualDirectionsAreColumnsOfWU() {
        try (NDScope scope = new NDScope()) {
            for (HookedTransformer m : List.of(gpt2, llama, tiny)) {
                NDArray wU = m.W_U();
                NDArray one = m.tokensToResidualDirections(7L);
                assertEquals(new Shape(m.cfg().dModel()), one.getShape());
                assertEquals(0.0, maxAbsDiff(one, wU.get(":, 7")));
                NDArray many = m.tokensToResidualDirections(new long[] {3, 0, 7});
                assertEquals(new Shape(3, m.cfg().dModel()), many.getShape());
                assertEquals(0.0, maxAbsDiff(many.get(2), wU.get(":, 7")));
                assertEquals(0.0, maxAbsDiff(many.get(0), wU.get(":, 3")));
                int v = m.cfg().dVocab();
                assertThrows(IllegalArgumentException.class, () -> m.tokensToResidualDirections((long) v));
            }
            assertEquals(12L, tiny.toSingleToken("Alice"));
            assertEquals(0.0, maxAbsDiff(tiny.tokensToResidualDirections("Alice"), tiny.W_U().get(":, 12")));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> tiny.tokensToResidualDirections("big dog"));
            assertTrue(e.getMessage().contains("2 tokens") && e.getMessage().contains("|big|"), e.getMessage());
        }
    }

    @Test
    void actNamesResolveNegativeLayersAndExistInTheModel() {
        assertEquals("blocks.2.hook_resid_pre", gpt2.actName("resid_pre", -1));
        assertEquals("blocks.0.attn.hook_pattern", gpt2.actName("pattern", -3));
        assertEquals("blocks.4.attn.hook_rot_q", llama.actName("rot_q", -1));
        assertEquals("blocks.1.ln2.hook_scale", llama.actName("scale", 1, "ln2"));
        assertEquals("hook_pos_embed", gpt2.actName("pos_embed"));
        assertEquals("ln_final.hook_normalized", llama.actName("normalized"));
        assertEquals("attn.hook_pattern", gpt2.actName("attn"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpt2.actName("rot_q", 0));
        assertTrue(e.getMessage().contains("blocks.0.attn.hook_q"), e.getMessage());   // the nearest point
        assertThrows(IllegalArgumentException.class, () -> llama.actName("pos_embed"));
        e = assertThrows(IllegalArgumentException.class, () -> gpt2.actName("resid_pre", 3));
        assertTrue(e.getMessage().contains("[-3, 3)"), e.getMessage());
        // every name it gives is a hook point of the model, in every layer
        for (HookedTransformer m : List.of(gpt2, llama)) {
            List<String> made = new ArrayList<>();
            for (String n : HookNames.shortNames()) {
                for (int l = -m.nLayers(); l < m.nLayers(); l++) {
                    for (String sub : new String[] {null, "ln1", "ln2"}) {
                        try {
                            made.add(m.actName(n, l, sub));
                        } catch (IllegalArgumentException expected) {
                            // a point this model lacks, or a sublayer that does not fit the name
                        }
                    }
                }
            }
            assertTrue(m.hookNames().containsAll(made), made.toString());
            // and it reaches every block-level point there is
            for (String h : m.hookNames()) {
                if (h.startsWith("blocks.")) assertTrue(made.contains(h), h);
            }
        }
        assertFalse(gpt2.hookNames().contains("blocks.0.attn.hook_rot_q"));
    }

    @Test
    void unknownTransformerLensWeightNamesSuggestTheNearest() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpt2.tlWeights().get("blocks.0.attn.W_q"));
        assertTrue(e.getMessage().contains("blocks.0.attn.W_Q"), e.getMessage());
        try (NDScope scope = new NDScope()) {
            assertEquals(new Shape(4, 64, 16), gpt2.W_Q(0).getShape());
        }
    }
}
