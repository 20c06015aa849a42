package dev.jlens.zoo.recipes;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.train.BatchSource;
import dev.jlens.train.LossFn;

import java.util.ArrayList;
import java.util.List;

/**
 * What every finetune of {@code thinker} shares: thinker's task and architecture, its fixed loss normalizer, training
 * batches bucketed by thinker's length classes from the recipe's own finetuning mix, and the evaluation sizes. Each
 * subclass implements {@link Recipe} itself (the interface is sealed) and supplies its mix through
 * {@link #trainExample}.
 */
abstract class ThinkerFinetune {

    /** Example {@code index} of this recipe's finetuning mix (its static {@code mixExample}). */
    abstract Example<ArithCot.Meta> trainExample(long seed, long index);

    public ArithCot task() {
        return Thinker.TASK;
    }

    public ModelConfig modelConfig() {
        return new Thinker().modelConfig();
    }

    public LossFn lossFn() {
        return Batches.fixedNormalizer(Thinker.TARGETS_PER_EXAMPLE);
    }

    public BatchSource trainSource() {
        return (seed, step, n) -> Batches.bucketed(j -> trainExample(seed, Thinker.firstCandidate(step, n) + j), n,
                Thinker.LENGTH_CLASSES);
    }

    public int evalExamples() {
        return 1000;
    }

    public int quickEvalExamples() {
        return 128;
    }

    /** Row {@code i} of a held-out batch, the batch's example {@code index} ({@code k * n + i} in batch {@code k}). */
    @FunctionalInterface
    interface EvalRow {
        Example<ArithCot.Meta> at(int i, long index);
    }

    /** Held-out batches of {@code n} rows, row {@code i} of batch {@code k} being {@code row.at(i, k * n + i)}. */
    static BatchSource evalRows(EvalRow row) {
        return (seed, k, n) -> {
            List<Example<ArithCot.Meta>> exs = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                exs.add(row.at(i, (long) k * n + i));
            }
            return Batches.pack(exs);
        };
    }
}
