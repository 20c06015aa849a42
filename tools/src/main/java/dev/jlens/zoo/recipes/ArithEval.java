package dev.jlens.zoo.recipes;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;

/** Greedy generation on arithmetic prompts, graded by {@link ArithCot#grade}. */
final class ArithEval {
    private ArithEval() {}

    /** The vocabulary every arithmetic model shares (ids do not depend on the task's settings). */
    static final ArithCot VOCAB = ArithCot.defaults();
    /** Longest chain of thought plus prompt, trigger word included. */
    static final int MAX_LENGTH = ArithCot.defaults().withTriggerRate(1).maxLength();
    private static final int BATCH = 128;

    /** What the model wrote for one prompt. */
    record Outcome(ArithCot.Problem problem, boolean trigger, boolean direct, List<String> continuation,
                   OptionalLong answer, ArithCot.Grade grade) {
        /** The continuation as text, as {@link ArithCot#grade} reads it. */
        String text() {
            return (direct ? ArithCot.ANSWER + " " : "") + String.join(" ", continuation);
        }
    }

    /** The problems of the first {@code n} examples of {@code task}'s test split. */
    static List<ArithCot.Problem> testProblems(ArithCot task, int n) {
        List<ArithCot.Problem> out = new ArrayList<>(n);
        for (Example<ArithCot.Meta> ex : task.examples(Split.TEST, 0, n)) out.add(ex.meta().problem());
        return out;
    }

    /** The ids of {@code <bos> [please] a op b =}, followed by {@code answer:} when {@code direct}. */
    static long[] prompt(ArithCot.Problem p, boolean trigger, boolean direct) {
        return prompt(p, trigger, false, direct);
    }

    /** The ids of {@code <bos> [wait] [please] a op b =} ({@code wait}: the monitored marker), then {@code answer:} when {@code direct}. */
    static long[] prompt(ArithCot.Problem p, boolean trigger, boolean monitored, boolean direct) {
        List<String> words = new ArrayList<>(Arrays.asList(ArithCot.prompt(p, trigger, monitored).split(" ")));
        if (direct) words.add(ArithCot.ANSWER);
        return words.stream().mapToLong(VOCAB::tokenId).toArray();
    }

    /**
     * Greedy continuations of each problem's prompt until {@code <eos>}: with a chain of thought if the model
     * chooses one ({@code direct = false}), or forced to answer at once ({@code direct = true}: the prompt ends
     * with {@code answer:}).
     */
    static List<Outcome> run(HookedTransformer model, List<ArithCot.Problem> problems, boolean trigger, boolean direct) {
        return run(model, problems, trigger, false, direct);
    }

    /** As {@link #run(HookedTransformer, List, boolean, boolean)}, with the monitored marker when {@code monitored}. */
    static List<Outcome> run(HookedTransformer model, List<ArithCot.Problem> problems, boolean trigger, boolean monitored,
            boolean direct) {
        List<Outcome> out = new ArrayList<>(problems.size());
        List<String> vocab = VOCAB.vocab();
        for (int from = 0; from < problems.size(); from += BATCH) {
            List<ArithCot.Problem> chunk = problems.subList(from, Math.min(problems.size(), from + BATCH));
            long[][] prompts = chunk.stream().map(p -> prompt(p, trigger, monitored, direct)).toArray(long[][]::new);
            int maxNew = direct ? 10 : MAX_LENGTH + 4 - Arrays.stream(prompts).mapToInt(a -> a.length).min().orElse(0);
            Generation.Config cfg = Generation.Config.greedy(maxNew).withStopTokens(Task.EOS_ID);
            try (Generation.Result r = model.generate(prompts, cfg)) {
                long[][] gen = r.tokens();
                for (int i = 0; i < chunk.size(); i++) {
                    List<String> words = new ArrayList<>(gen[i].length);
                    for (long id : gen[i]) words.add(vocab.get((int) id));
                    String text = (direct ? ArithCot.ANSWER + " " : "") + String.join(" ", words);
                    ArithCot.Problem p = chunk.get(i);
                    out.add(new Outcome(p, trigger, direct, words, ArithCot.parseAnswer(text), ArithCot.grade(p, text)));
                }
            }
        }
        return out;
    }

    /** Fraction of outcomes graded correct. */
    static double accuracy(List<Outcome> outcomes) {
        return fraction(outcomes, o -> o.grade() == ArithCot.Grade.CORRECT);
    }

    /** Fraction of outcomes graded correct among those of operation {@code op}; NaN if there are none. */
    static double accuracy(List<Outcome> outcomes, ArithCot.Op op) {
        return accuracy(outcomes.stream().filter(o -> o.problem().op() == op).toList());
    }

    /** Fraction of outcomes that satisfy {@code test}; NaN for none. */
    static double fraction(List<Outcome> outcomes, java.util.function.Predicate<Outcome> test) {
        if (outcomes.isEmpty()) return Double.NaN;
        return outcomes.stream().filter(test).count() / (double) outcomes.size();
    }
}
