package dev.jlens.zoo.recipes;

import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.data.TinyLang;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.train.TrainConfig;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * {@code tinylang-4l}: a four-layer GPT-2 trained on the synthetic language {@code tinylang}; its test loss is
 * reported next to the grammar's exact entropy rate, the loss a perfect model would reach.
 */
final class TinyLang4l implements Recipe {
    static final String NAME = "tinylang-4l";
    private static final TinyLang TASK = TinyLang.defaults();
    private static final int CHUNK = 64;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String summary() {
        return "4-layer GPT-2 on the synthetic language tinylang (agreement, tense, relative clauses), loss next to "
                + "the grammar's entropy rate";
    }

    @Override
    public TinyLang task() {
        return TASK;
    }

    @Override
    public ModelConfig modelConfig() {
        return ModelConfig.gpt2(128, 4, 4, 512, TASK.vocabSize(), TASK.maxLength())
                .withSpecialTokens(OptionalLong.of(Task.BOS_ID), OptionalLong.of(Task.EOS_ID));
    }

    @Override
    public TrainConfig trainConfig() {
        return TrainConfig.builder().steps(1500).batchSize(32).lr(2e-3).warmupSteps(100).weightDecay(0.05)
                .gradClip(1.0).seed(0).checkpointEvery(200).evalEvery(500).evalBatches(4).logEvery(50).build();
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
        return List.of(Bar.atMost("loss_over_bound", 1.10));
    }

    @Override
    public Map<String, String> notes() {
        return Map.of("metrics", "loss_test: mean next-token loss (nats) over every target of the first N test "
                + "sequences; entropy_bound: TinyLang.entropyPerToken(), the grammar's exact entropy rate, the "
                + "floor of any model's loss; loss_over_bound = loss_test / entropy_bound");
    }

    @Override
    public Evaluation evaluate(HookedTransformer model, int examples) {
        long t0 = System.nanoTime();
        double sum = 0;
        long n = 0;
        for (int from = 0; from < examples; from += CHUNK) {
            int count = Math.min(CHUNK, examples - from);
            List<Example<TinyLang.Meta>> exs = TASK.examples(Split.TEST, from, count);
            Batch batch = Batch.of(exs.stream().map(Example::ids).toArray(long[][]::new));
            for (float[] row : Evals.lossPerToken(model, batch)) {
                for (float v : row) {
                    sum += v;
                    n++;
                }
            }
        }
        double loss = sum / n, bound = TASK.entropyPerToken();
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("loss_test", loss);
        m.put("entropy_bound", bound);
        m.put("loss_over_bound", loss / bound);
        return new Evaluation(NAME, Split.TEST, examples, m, Evals.since(t0));
    }
}
