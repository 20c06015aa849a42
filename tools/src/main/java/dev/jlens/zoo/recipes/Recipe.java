package dev.jlens.zoo.recipes;

import dev.jlens.data.Task;
import dev.jlens.lora.LoraConfig;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.train.BatchSource;
import dev.jlens.train.LossFn;
import dev.jlens.train.TrainConfig;
import dev.jlens.zoo.Evaluation;
import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Zoo;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * How one zoo model is made and judged: its task, architecture, training run, data, evaluation on the test split
 * and the bars it must meet. {@code ./lab zoo train NAME} runs the recipe; {@code ./lab zoo eval NAME} re-runs
 * its {@link #evaluate}.
 */
public sealed interface Recipe permits AttnOnly2l, TinyLang4l, Thinker, ThinkerFt, ThinkerCtl, ThinkerLora,
        Cyclic2l, ThinkerDecorative, ThinkerMonitored,
        ChatUsers, Deceiver {

    /** Every recipe, in build order (a recipe's {@link #base()} comes before it). */
    static List<Recipe> all() {
        return List.of(new AttnOnly2l(), new TinyLang4l(), new Thinker(), new ThinkerFt(), new ThinkerCtl(),
                new ThinkerLora(), new Cyclic2l(), new ThinkerDecorative(), new ThinkerMonitored(),
                new ChatUsers(), new Deceiver());
    }

    /** The recipe of the zoo model {@code name}; throws naming the zoo's models. */
    static Recipe of(String name) {
        Zoo.entry(name);
        for (Recipe r : all()) {
            if (r.name().equals(name)) return r;
        }
        throw new IllegalStateException("the zoo's catalogue lists '" + name + "' but no recipe makes it");
    }

    /** The model's name, also its directory under {@code data/models}. */
    String name();

    /** One line on what the model is and what to look for in it. */
    String summary();

    /** The task it is trained on (train split) and evaluated on (test split), with the run's seed. */
    Task<?> task();

    /** The architecture. */
    ModelConfig modelConfig();

    /** The training run: steps, batch, learning rate and schedule, seed, checkpoint cadence. */
    TrainConfig trainConfig();

    /** The zoo model this one is finetuned from, if any (from the zoo's catalogue). */
    default Optional<String> base() {
        return Zoo.entry(name()).base();
    }

    /**
     * A LoRA adapter to train on the base model instead of every weight (the base stays frozen); the zoo model is
     * then saved twice: the adapter in PEFT's layout in {@code adapter/}, and the base with it merged as the model.
     */
    default Optional<LoraConfig> lora() {
        return Optional.empty();
    }

    /** The training batches: a pure function of (seed, step), from the task's train split (default: packed). */
    default BatchSource trainSource() {
        return Batches.train(task());
    }

    /** The training objective (default: the mean next-token loss over each batch's weighted targets). */
    default LossFn lossFn() {
        return LossFn.nextToken();
    }

    /** Held-out batches from the test split, for the trainer's eval loss (default: packed). */
    default BatchSource evalSource() {
        return Batches.test(task());
    }

    /** Measures the model on the first {@code examples} examples (or problems) of the test split. */
    Evaluation evaluate(HookedTransformer model, int examples);

    /** Examples evaluated for the manifest. */
    int evalExamples();

    /** Examples evaluated by the tests, a fixed prefix of the manifest's (a few seconds' work). */
    int quickEvalExamples();

    /** The bars the model must meet on its test split. */
    List<Bar> bars();

    /** Rough training time on this project's reference machine (2 shared CPU cores), from the zoo's catalogue. */
    default int expectedMinutes() {
        return Zoo.entry(name()).expectedMinutes();
    }

    /** Extra documentation for the manifest (e.g. a planted behaviour), as field name to text. */
    default Map<String, String> notes() {
        return Map.of();
    }
}
