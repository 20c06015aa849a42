package dev.jlens.zoo.recipes;

import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;
import dev.jlens.model.ActivationCache;
import dev.jlens.data.Example;
import dev.jlens.data.Induction;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Losses;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.train.BatchSource;
import dev.jlens.train.TrainConfig;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.SplittableRandom;

/**
 * {@code attn-only-2l}: a two-layer, attention-only GPT-2 trained on repeated random tokens ({@code induction}).
 * It learns the classic two-head circuit: a previous-token head in layer 0 and an induction head in layer 1 that
 * attends to the token after the current token's earlier occurrence and copies it.
 */
final class AttnOnly2l implements Recipe {
    static final String NAME = "attn-only-2l";
    private static final Induction TASK = Induction.defaults();
    private static final int CHUNK = 64;
    /** Shortest repeated block in training. */
    static final int MIN_HALF = 8;
    /** A repeat length never fixed in training, to check that the heads copy by content. */
    static final Induction SHORT = new Induction(TASK.alphabet(), 12, 0);

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String summary() {
        return "2-layer attention-only GPT-2 on repeated random tokens: a previous-token head in layer 0 and an "
                + "induction head in layer 1";
    }

    @Override
    public Induction task() {
        return TASK;
    }

    @Override
    public ModelConfig modelConfig() {
        return ModelConfig.gpt2(128, 2, 8, 512, TASK.vocabSize(), TASK.maxLength()).withAttnOnly(true)
                .withSpecialTokens(OptionalLong.of(Task.BOS_ID), OptionalLong.of(Task.EOS_ID));
    }

    @Override
    public TrainConfig trainConfig() {
        return TrainConfig.builder().steps(3000).batchSize(32).lr(2e-3).warmupSteps(100).weightDecay(0.01)
                .gradClip(1.0).seed(0).checkpointEvery(250).evalEvery(250).evalBatches(4).logEvery(50).build();
    }

    /**
     * Training sequences of the task's length ({@code 2 * 32 + 1}): {@code <bos>}, then a random block of length
     * {@code L} (uniform in {@value #MIN_HALF}..32, from the task's train split) repeated until the sequence is full.
     * With a fixed {@code L} a head attending {@code L - 1} positions back would predict the repeat by position
     * alone; varying {@code L} leaves content-based copying (an induction head) as the solution.
     */
    @Override
    public BatchSource trainSource() {
        return (seed, step, n) -> {
            SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + step);
            int len = TASK.maxLength();
            long[][] ids = new long[n][len];
            for (int b = 0; b < n; b++) {
                int half = MIN_HALF + rnd.nextInt(TASK.halfLength() - MIN_HALF + 1);
                long[] ex = new Induction(TASK.alphabet(), half, seed).example(Split.TRAIN, (long) step * n + b).ids();
                ids[b][0] = Task.BOS_ID;
                for (int i = 1; i < len; i++) ids[b][i] = ex[1 + (i - 1) % half];
            }
            return Batch.of(ids);
        };
    }

    @Override
    public int evalExamples() {
        return 512;
    }

    @Override
    public int quickEvalExamples() {
        return 128;
    }

    @Override
    public List<Bar> bars() {
        return List.of(Bar.atLeast("induction_score_l1_max", 0.7), Bar.atMost("repeated_over_first", 0.2),
                Bar.atLeast("prev_token_score_l0_max", 0.5), Bar.atMost("short_repeated_over_first", 0.2));
    }

    @Override
    public Map<String, String> notes() {
        Map<String, String> n = new LinkedHashMap<>();
        n.put("training_data", "sequences of 65 tokens: <bos>, then a random block of L tokens (L uniform in "
                + MIN_HALF + "..32, from the induction task's train split) repeated until the sequence is full, every "
                + "target weighted; with the task's fixed L = 32 a head attending 31 positions back predicts the "
                + "repeat by position alone, and a first run learned exactly that instead of induction heads");
        n.put("metrics", "induction_score_lLhH: mean attention from each query in the repeated half to the token "
                + "after its earlier occurrence (Induction.inductionScore) on the task's test sequences (L = 32), "
                + "per layer L and head H; prev_token_score_lLhH: mean attention to the previous position; "
                + "loss_first_half: mean loss on the targets of the first block (positions 1..L, unpredictable: "
                + "ln 128 = 4.85 at best); loss_repeated_half: mean loss on the targets L+2..2L (predictable by "
                + "copying; the first token of the repeat is excluded because nothing predicts it); short_*: the "
                + "same on test sequences with L = 12, which training never fixed");
        return n;
    }

    /** Attention scores per layer and head, and mean losses by part of the sequence, over test examples. */
    private record Measured(double[][] induction, double[][] prev, double first, double repeated, double all) {
        int best(int layer) {
            int b = 0;
            for (int h = 0; h < induction[layer].length; h++) if (induction[layer][h] > induction[layer][b]) b = h;
            return b;
        }
    }

    @Override
    public Evaluation evaluate(HookedTransformer model, int examples) {
        long t0 = System.nanoTime();
        Measured full = measure(model, TASK, examples);
        Measured shortRepeats = measure(model, SHORT, examples);
        int layers = model.cfg().nLayers(), heads = model.cfg().nHeads();
        Map<String, Double> m = new LinkedHashMap<>();
        int best = full.best(1);
        int bestPrev = 0;
        for (int h = 0; h < heads; h++) if (full.prev()[0][h] > full.prev()[0][bestPrev]) bestPrev = h;
        m.put("induction_score_l1_max", full.induction()[1][best]);
        m.put("induction_head_l1", (double) best);
        m.put("prev_token_score_l0_max", full.prev()[0][bestPrev]);
        m.put("prev_token_head_l0", (double) bestPrev);
        m.put("loss_first_half", full.first());
        m.put("loss_repeated_half", full.repeated());
        m.put("repeated_over_first", full.repeated() / full.first());
        m.put("loss_test", full.all());
        m.put("short_induction_score_l1_max", shortRepeats.induction()[1][shortRepeats.best(1)]);
        m.put("short_repeated_over_first", shortRepeats.repeated() / shortRepeats.first());
        for (int l = 0; l < layers; l++) {
            for (int h = 0; h < heads; h++) m.put("induction_score_l" + l + "h" + h, full.induction()[l][h]);
        }
        for (int l = 0; l < layers; l++) {
            for (int h = 0; h < heads; h++) m.put("prev_token_score_l" + l + "h" + h, full.prev()[l][h]);
        }
        return new Evaluation(NAME, Split.TEST, examples, m, Evals.since(t0));
    }

    private static Measured measure(HookedTransformer model, Induction task, int examples) {
        int layers = model.cfg().nLayers(), heads = model.cfg().nHeads(), half = task.halfLength();
        double[][] induction = new double[layers][heads];
        double[][] prev = new double[layers][heads];
        double first = 0, repeated = 0, all = 0;
        long nFirst = 0, nRepeated = 0, nAll = 0;
        for (int from = 0; from < examples; from += CHUNK) {
            int count = Math.min(CHUNK, examples - from);
            List<Example<Induction.Meta>> exs = task.examples(Split.TEST, from, count);
            Batch batch = Batch.of(exs.stream().map(Example::ids).toArray(long[][]::new));
            try (ActivationCache cache = model.runWithCache(batch, NameFilter.of("attn.hook_pattern"))) {
                for (int l = 0; l < layers; l++) {
                    float[][][][] p = Evals.pattern(cache.get("pattern", l));
                    double[] s = Induction.inductionScore(p, half);
                    for (int h = 0; h < heads; h++) {
                        induction[l][h] += s[h] * count / examples;
                        prev[l][h] += prevTokenScore(p, h) * count / examples;
                    }
                }
                for (float[] row : Evals.rows(Losses.nextTokenLoss(cache.logits(), batch))) {
                    for (int j = 0; j < row.length; j++) {
                        int target = j + 1;   // row[j] is the loss on token j + 1
                        all += row[j];
                        nAll++;
                        if (target <= half) {
                            first += row[j];
                            nFirst++;
                        } else if (target >= half + 2) {
                            repeated += row[j];
                            nRepeated++;
                        }
                    }
                }
            }
        }
        return new Measured(induction, prev, first / nFirst, repeated / nRepeated, all / nAll);
    }

    /** Mean attention from each query (after BOS) to the position just before it, averaged over the batch. */
    static double prevTokenScore(float[][][][] bhqk, int head) {
        double sum = 0;
        int n = 0;
        for (float[][][] hqk : bhqk) {
            float[][] qk = hqk[head];
            for (int q = 1; q < qk.length; q++) {
                sum += qk[q][q - 1];
                n++;
            }
        }
        return sum / n;
    }
}
