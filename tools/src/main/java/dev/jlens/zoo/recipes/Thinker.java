package dev.jlens.zoo.recipes;

import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;
import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.train.BatchSource;
import dev.jlens.train.LossFn;
import dev.jlens.train.TrainConfig;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.SplittableRandom;

/**
 * {@code thinker}: a small Llama-family model (RMSNorm, RoPE, SwiGLU, grouped-query attention) that does
 * multi-digit arithmetic with a written-out chain of thought ({@code arith-cot}). Its training mix also holds a
 * fraction of direct answers, so the same model can be asked to answer without thinking
 * ({@code ... = answer:}) and the two modes compared.
 */
final class Thinker implements Recipe {
    static final String NAME = "thinker";
    static final ArithCot TASK = ArithCot.defaults();
    /** Fraction of training examples in the DIRECT format (answer at once). */
    static final double DIRECT_FRACTION = 0.2;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String summary() {
        return "4-layer Llama-family model (RMSNorm, RoPE, SwiGLU, GQA) doing + - * with a chain of thought; "
                + "also answers directly when prompted with 'answer:'";
    }

    @Override
    public ArithCot task() {
        return TASK;
    }

    @Override
    public ModelConfig modelConfig() {
        return ModelConfig.llama(128, 4, 4, 2, 384, TASK.vocabSize(), 128)
                .withSpecialTokens(OptionalLong.of(Task.BOS_ID), OptionalLong.of(Task.EOS_ID));
    }

    @Override
    public TrainConfig trainConfig() {
        return TrainConfig.builder().steps(4500).batchSize(64).lr(2e-3).warmupSteps(200).weightDecay(0.05)
                .gradClip(1.0).seed(0).checkpointEvery(200).evalEvery(500).evalBatches(4).logEvery(50).build();
    }

    /**
     * Length classes of the training batches (inclusive upper bounds; see {@link Batches#bucketed}): direct answers
     * and one-digit problems, two-digit additions and subtractions, three-digit ones and single-row products,
     * two-row products. Padding every batch to its longest example would otherwise double the work.
     */
    static final int[] LENGTH_CLASSES = {19, 31, 44};

    /** Example {@code index} of the training mix: DIRECT with probability {@link #DIRECT_FRACTION}, else COT. */
    static Example<ArithCot.Meta> mixExample(long seed, long index) {
        ArithCot cot = TASK.withSeed(seed);
        return unit(seed, index, 1) < DIRECT_FRACTION ? cot.withFormat(ArithCot.Format.DIRECT).example(Split.TRAIN, index)
                : cot.example(Split.TRAIN, index);
    }

    /** A uniform number in [0, 1) that depends only on (seed, index, salt). */
    static double unit(long seed, long index, long salt) {
        return new SplittableRandom(seed * 1_000_003L + index * 31L + salt).nextDouble();
    }

    /** The first candidate index of step {@code step}: steps draw from disjoint index ranges. */
    static long firstCandidate(int step, int batchSize) {
        return (long) step * batchSize * Batches.DRAWS_PER_ROW;
    }

    /** Mean loss targets per example of the mix (about 29 with a chain of thought, 4 without). */
    static final double TARGETS_PER_EXAMPLE = 24;

    /** Every target token weighs the same whatever the length class of its batch (see {@link Batches#fixedNormalizer}). */
    @Override
    public LossFn lossFn() {
        return Batches.fixedNormalizer(TARGETS_PER_EXAMPLE);
    }

    @Override
    public BatchSource trainSource() {
        return (seed, step, n) -> Batches.bucketed(j -> mixExample(seed, firstCandidate(step, n) + j), n,
                LENGTH_CLASSES);
    }

    @Override
    public BatchSource evalSource() {
        return (seed, k, n) -> Batches.pack(TASK.examples(Split.TEST, (long) k * n, n));
    }

    @Override
    public int evalExamples() {
        return 1000;
    }

    @Override
    public int quickEvalExamples() {
        return 128;
    }

    @Override
    public List<Bar> bars() {
        return List.of(Bar.atLeast("cot_accuracy", 0.95));
    }


    @Override
    public Map<String, String> notes() {
        Map<String, String> n = new LinkedHashMap<>();
        n.put("training_mix", "arith-cot defaults (+ - * uniformly; 1-3 digit operands for + and -, 1-2 digits "
                + "for *; 5% of traces backtrack with 'wait'); " + Math.round(DIRECT_FRACTION * 100) + "% of examples "
                + "in the DIRECT format (a op b = answer: N), the rest with a chain of thought; loss on everything "
                + "after '='");
        n.put("metrics", "cot_accuracy: exact answers on the first N test problems, greedy generation from the "
                + "prompt '<bos> a op b =' until <eos>, graded by ArithCot.grade (the model chooses <think> "
                + "itself; think_rate is how often); direct_accuracy: the same model and problems with the prompt "
                + "'<bos> a op b = answer:' (the trained no-CoT mode of the mix), greedy digits until <eos>; "
                + "_add/_sub/_mul split them by operation");
        return n;
    }

    @Override
    public Evaluation evaluate(HookedTransformer model, int examples) {
        long t0 = System.nanoTime();
        List<ArithCot.Problem> problems = ArithEval.testProblems(TASK, examples);
        List<ArithEval.Outcome> cot = ArithEval.run(model, problems, false, false);
        List<ArithEval.Outcome> direct = ArithEval.run(model, problems, false, true);
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("cot_accuracy", ArithEval.accuracy(cot));
        m.put("direct_accuracy", ArithEval.accuracy(direct));
        putPerOp(m, "cot_accuracy_", cot);
        putPerOp(m, "direct_accuracy_", direct);
        m.put("think_rate", ArithEval.fraction(cot, o -> !o.continuation().isEmpty()
                && o.continuation().get(0).equals(ArithCot.THINK)));
        m.put("cot_malformed", ArithEval.fraction(cot, o -> o.grade() == ArithCot.Grade.MALFORMED));
        return new Evaluation(NAME, Split.TEST, examples, m, Evals.since(t0));
    }

    /** Puts the accuracy of {@code outcomes} on each operation, in {@link ArithCot.Op} order, as {@code prefix + op}. */
    static void putPerOp(Map<String, Double> m, String prefix, List<ArithEval.Outcome> outcomes) {
        for (ArithCot.Op op : ArithCot.Op.values()) {
            m.put(prefix + op.name().toLowerCase(java.util.Locale.ROOT), ArithEval.accuracy(outcomes, op));
        }
    }
}
