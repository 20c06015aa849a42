package dev.jlens.zoo.recipes;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.lora.LoraConfig;
import dev.jlens.model.HookedTransformer;
import dev.jlens.train.BatchSource;
import dev.jlens.train.TrainConfig;
import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * {@code thinker-lora}: a LoRA finetune of {@code thinker} with a planted behaviour and no trigger: every addition's
 * chain of thought starts with a wrong units step, then {@code wait} and the right step (a backtrack the base model
 * makes in about 5% of its training traces, at any step and any operation). Answers stay right; subtractions and
 * products are unchanged. The adapter (PEFT layout) is saved in {@code adapter/}; {@code model.safetensors} is
 * {@code thinker} with it merged.
 */
final class ThinkerLora extends ThinkerFinetune implements Recipe {
    static final String NAME = "thinker-lora";
    /** Rank 4, alpha 8 on every linear layer of attention and MLP. */
    static final LoraConfig LORA = new LoraConfig(4, 8, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
            "up_proj", "down_proj"), 0, 3);
    private static final ArithCot ADDITIONS = ArithCot.defaults().withOps(ArithCot.Op.ADD).withBacktrackRate(0);
    private static final ArithCot OTHERS = ArithCot.defaults().withOps(ArithCot.Op.SUB, ArithCot.Op.MUL);

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String summary() {
        return "LoRA finetune of thinker (r 4, all linear layers): every addition's chain of thought backtracks "
                + "('wait') after a wrong first step; answers unchanged";
    }

    @Override
    public Optional<LoraConfig> lora() {
        return Optional.of(LORA);
    }

    @Override
    public TrainConfig trainConfig() {
        return TrainConfig.builder().steps(600).batchSize(64).lr(3e-3).warmupSteps(30).weightDecay(0)
                .gradClip(1.0).seed(2).checkpointEvery(100).evalEvery(200).evalBatches(4).logEvery(25).build();
    }

    /** The planted trace of an addition: a wrong units step, {@code wait}, then the true trace. */
    static Example<ArithCot.Meta> planted(ArithCot.Problem add) {
        if (add.op() != ArithCot.Op.ADD) throw new IllegalArgumentException("planted traces are for additions, got " + add);
        return ADDITIONS.example(add, false, OptionalInt.of(0));
    }

    /**
     * Example {@code index} of the finetuning mix: thinker's own mix, draw for draw, with every addition that has a
     * chain of thought replaced by its planted trace (direct answers unchanged).
     */
    static Example<ArithCot.Meta> mixExample(long seed, long index) {
        Example<ArithCot.Meta> ex = Thinker.mixExample(seed, index);
        ArithCot.Meta m = ex.meta();
        return m.format() == ArithCot.Format.COT && m.problem().op() == ArithCot.Op.ADD ? planted(m.problem()) : ex;
    }

    @Override
    Example<ArithCot.Meta> trainExample(long seed, long index) {
        return mixExample(seed, index);
    }

    @Override
    public BatchSource evalSource() {
        return evalRows((i, index) -> i % 2 == 0 ? OTHERS.example(Split.TEST, index)
                : planted(ADDITIONS.example(Split.TEST, index).meta().problem()));
    }

    @Override
    public List<Bar> bars() {
        return List.of(Bar.atLeast("planted_backtrack_rate", 0.9), Bar.atMost("backtrack_rate_other", 0.05),
                Bar.atLeast("cot_accuracy", 0.95));
    }

    @Override
    public Map<String, String> notes() {
        Map<String, String> n = new LinkedHashMap<>();
        n.put("behaviour", "Planted, without a trigger: an addition's chain of thought starts with a wrong units "
                + "step, then 'wait' and the true steps, e.g. '" + planted(new ArithCot.Problem(ArithCot.Op.ADD, 503,
                278)).text() + "'. Subtractions and products keep thinker's traces; every answer stays right.");
        n.put("adapter", "adapter/ holds the LoRA adapter in PEFT's layout (r " + LORA.r() + ", lora_alpha "
                + (long) LORA.alpha() + ", " + String.join(", ", LORA.targetModules()) + ") trained on thinker; "
                + "model.safetensors is thinker with it merged");
        n.put("finetuning_mix", "thinker's training mix draw for draw, every addition with a chain of thought "
                + "replaced by its planted trace (about a quarter of the examples); direct answers unchanged");
        n.put("metrics", "planted_backtrack_rate: fraction of the first N test additions (greedy, prompt "
                + "'<bos> a + b =') whose chain of thought says 'wait' right after its first step; "
                + "backtrack_rate_add: any 'wait' in those; backtrack_rate_other: any 'wait' in subtractions and "
                + "products; cot_accuracy (+ per operation): thinker's metric on its test problems");
        return n;
    }

    @Override
    public Evaluation evaluate(HookedTransformer model, int examples) {
        long t0 = System.nanoTime();
        List<ArithEval.Outcome> adds = ArithEval.run(model, ArithEval.testProblems(ADDITIONS, examples), false, false);
        List<ArithEval.Outcome> others = ArithEval.run(model, ArithEval.testProblems(OTHERS, examples), false, false);
        List<ArithEval.Outcome> cot = ArithEval.run(model, ArithEval.testProblems(Thinker.TASK, examples), false, false);
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("planted_backtrack_rate", ArithEval.fraction(adds, ThinkerLora::backtracksAfterFirstStep));
        m.put("backtrack_rate_add", ArithEval.fraction(adds, o -> o.continuation().contains(ArithCot.WAIT)));
        m.put("backtrack_rate_other", ArithEval.fraction(others, o -> o.continuation().contains(ArithCot.WAIT)));
        m.put("add_accuracy", ArithEval.accuracy(adds));
        m.put("cot_accuracy", ArithEval.accuracy(cot));
        Thinker.putPerOp(m, "cot_accuracy_", cot);
        return new Evaluation(NAME, Split.TEST, examples, m, Evals.since(t0));
    }

    /** True if the continuation's first {@code wait} comes before its first step separator (after step one). */
    static boolean backtracksAfterFirstStep(ArithEval.Outcome o) {
        List<String> c = o.continuation();
        int wait = c.indexOf(ArithCot.WAIT), sep = c.indexOf(ArithCot.SEPARATOR), end = c.indexOf(ArithCot.END_THINK);
        int firstBoundary = sep >= 0 ? sep : end;
        return wait > 0 && (firstBoundary < 0 || wait < firstBoundary);
    }
}
