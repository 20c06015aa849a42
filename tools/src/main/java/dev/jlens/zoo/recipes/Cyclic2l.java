package dev.jlens.zoo.recipes;

import dev.jlens.data.CyclicArith;
import dev.jlens.data.CyclicArith.Cycle;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.geometry.CycleProbe;
import dev.jlens.geometry.Pca;
import dev.jlens.geometry.Reducibility;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.train.TrainConfig;
import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * {@code cyclic-2l}: a two-layer GPT-2 trained on {@link CyclicArith} ({@code Tuesday plus 3 days is Friday},
 * {@code March minus 5 months is October}, and a quarter nearness questions, {@code Tuesday near Wednesday is yes}).
 * At the weekday token, where block 0 reads it, the 7 weekdays lie on a circle in the residual stream's top principal
 * plane, in the order Monday..Sunday, and rotating the weekday in that plane by k sevenths of a turn moves the answer
 * by k days in about a third of the questions (chance: a seventh; one fixed translation: less than chance). Engels et
 * al. 2024 found such circles, and such rotations, in large models. The model memorises more than it generalises:
 * test questions are answered about 60% right, every day question of both splits about 97%.
 */
final class Cyclic2l implements Recipe {
    static final String NAME = "cyclic-2l";
    static final CyclicArith TASK = CyclicArith.defaults();
    /** Where the weekday's representation is read and rotated. */
    static final String HOOK = "blocks.0.hook_resid_pre";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String summary() {
        return "2-layer GPT-2 on weekday and month arithmetic in words: the weekdays sit on a circle in order, and "
                + "rotating one by k sevenths of a turn moves a third of the answers by k days";
    }

    @Override
    public CyclicArith task() {
        return TASK;
    }

    @Override
    public ModelConfig modelConfig() {
        // untied: with the unembedding tied to the embedding, runs sat at the loss of guessing any name of the cycle
        return ModelConfig.gpt2(64, 2, 4, 256, TASK.vocabSize(), TASK.maxLength()).withTiedEmbeddings(false)
                .withSpecialTokens(OptionalLong.of(Task.BOS_ID), OptionalLong.of(Task.EOS_ID));
    }

    @Override
    public TrainConfig trainConfig() {
        return TrainConfig.builder().steps(8000).batchSize(128).lr(3e-3).warmupSteps(200).weightDecay(1.0)
                .gradClip(1.0).seed(0).checkpointEvery(500).evalEvery(500).evalBatches(4).logEvery(100).build();
    }

    @Override
    public int evalExamples() {
        return 1024;
    }

    @Override
    public int quickEvalExamples() {
        return 256;
    }

    @Override
    public List<Bar> bars() {
        return List.of(Bar.atLeast("accuracy_test", 0.55), Bar.atLeast("days_accuracy_all_questions", 0.9),
                Bar.atLeast("days_in_cyclic_order", 1), Bar.atMost("days_spacing_error", 0.75),
                Bar.atLeast("days_rotation_moved", 0.3));
    }

    /**
     * Every day question (7 starts x plus/minus x offsets 1..13, both splits: the circle is a property of the
     * representation, not of held-out questions), each after a filler chosen by its index so that the weekday sits at
     * every position.
     */
    static List<Example<CyclicArith.Meta>> dayPrompts() {
        return prompts(Cycle.DAYS);
    }

    static List<Example<CyclicArith.Meta>> prompts(Cycle cycle) {
        List<Example<CyclicArith.Meta>> out = new ArrayList<>();
        int i = 0;
        for (Split split : Split.values()) {
            for (CyclicArith.Problem p : TASK.problems(cycle, split)) {
                List<String> filler = new ArrayList<>();
                for (int f = 0; f < i % (TASK.maxFiller() + 1); f++) {
                    filler.add(CyclicArith.FILLERS.get((i + f) % CyclicArith.FILLERS.size()));
                }
                out.add(TASK.example(p, filler));
                i++;
            }
        }
        return out;
    }

    @Override
    public Map<String, String> notes() {
        Map<String, String> n = new LinkedHashMap<>();
        n.put("training_data", "the task's train split: three quarters arithmetic questions (days or months plus or "
                + "minus 1..13), a quarter nearness questions ('Tuesday near Wednesday is yes'); runs on arithmetic "
                + "alone answered well but put the weekdays on circles of other frequencies (the top plane went "
                + "Monday, Thursday, Sunday, ...), since relabelling d -> 2d mod 7 preserves every arithmetic fact; "
                + "nearness does not, and brings the order Monday..Sunday");
        n.put("metrics", "accuracy_test: greedy answer (argmax over the whole vocabulary at 'is') equals the true "
                + "answer, on the first N test examples (test questions are never in training, with any filler); "
                + "accuracy_days/accuracy_months/accuracy_near: the same per kind of question. days_*: the residual stream at the "
                + "weekday token at " + HOOK + " over every day question (both splits, fillers varied): "
                + "days_in_cyclic_order is 1 if the 7 class means in the top-2 PCA plane go once around their centre "
                + "in the order Monday..Sunday (either direction), days_spacing_error the largest deviation of a step "
                + "from 360/7 degrees as a fraction of it, days_plane_variance the fraction of variance in the plane, "
                + "days_separability_bits and days_mixture_index the Engels et al. indices of the points in the plane; "
                + "days_rotation_moved: the fraction of (question, k) pairs, k = 1..6, whose answer (argmax over the "
                + "day names) moves by exactly k days when the weekday representation is rotated by k sevenths of a "
                + "turn in the plane, about the class means' centre; days_rotation_moved_kK per k; days_translation_moved: the "
                + "same with one fixed in-plane vector added instead (Monday's class mean moved to the mean of the day k "
                + "on; a linear shift), averaged over k = 1..6. op_*: the linear "
                + "contrast, the plus/minus token at the same hook: its indices in its own top-2 plane, and "
                + "op_shift_flipped, the fraction of plus questions answered as minus questions after adding "
                + "mean(minus) - mean(plus) there (one direction suffices for a binary feature)");
        return n;
    }

    @Override
    public Evaluation evaluate(HookedTransformer model, int examples) {
        long t0 = System.nanoTime();
        Map<String, Double> m = new LinkedHashMap<>();
        List<Example<CyclicArith.Meta>> test = TASK.examples(Split.TEST, 0, examples);
        int[] got = argmaxAll(model, test);
        int[] right = new int[3], total = new int[3];   // days, months, nearness
        for (int i = 0; i < test.size(); i++) {
            CyclicArith.Meta meta = test.get(i).meta();
            int kind = meta.isArithmetic() ? meta.question().cycle().ordinal() : 2;
            total[kind]++;
            right[kind] += got[i] == (int) TASK.tokenId(meta.question().answerWord()) ? 1 : 0;
        }
        m.put("accuracy_test", (right[0] + right[1] + right[2]) / (double) test.size());
        m.put("accuracy_days", right[0] / (double) Math.max(1, total[0]));
        m.put("accuracy_months", right[1] / (double) Math.max(1, total[1]));
        m.put("accuracy_near", right[2] / (double) Math.max(1, total[2]));

        List<Example<CyclicArith.Meta>> days = dayPrompts();
        CycleProbe probe = CycleProbe.fit(model, days, HOOK);
        double[] ratio = probe.pca().explainedRatio();
        m.put("days_in_cyclic_order", probe.order().inCyclicOrder() ? 1.0 : 0.0);
        m.put("days_spacing_error", probe.order().spacingError());
        m.put("days_radius_ratio", probe.order().radiusRatio());
        m.put("days_plane_variance", ratio[0] + ratio[1]);
        m.put("days_separability_bits", probe.separability().bits());
        m.put("days_mixture_index", probe.mixture().index());
        m.put("days_accuracy_all_questions", probe.rotationTest(model, TASK, days, 0));
        double moved = 0;
        for (int k = 1; k < 7; k++) {
            double f = probe.rotationTest(model, TASK, days, k);
            m.put("days_rotation_moved_k" + k, f);
            moved += f / 6;
        }
        m.put("days_rotation_moved", moved);
        double translated = 0;
        for (int k = 1; k < 7; k++) translated += probe.translationTest(model, TASK, days, k) / 6;
        m.put("days_translation_moved", translated);

        // the linear contrast: plus vs minus at the operation token
        double[][] op = CycleProbe.activations(model, days, HOOK, meta -> meta.startPosition() + 1);
        double[][] opXy = Pca.fit(op, 2).project(op);
        m.put("op_separability_bits", Reducibility.separability(opXy).bits());
        m.put("op_mixture_index", Reducibility.mixture(opXy).index());
        m.put("op_shift_flipped", opShiftFlipped(model, days, op));
        return new Evaluation(NAME, Split.TEST, examples, m, Evals.since(t0));
    }

    /** The fraction of plus questions answered as minus questions after adding mean(minus) - mean(plus) at the op. */
    static double opShiftFlipped(HookedTransformer model, List<Example<CyclicArith.Meta>> prompts, double[][] opActs) {
        int d = opActs[0].length;
        double[] plus = new double[d], minus = new double[d];
        int np = 0, nm = 0;
        for (int i = 0; i < prompts.size(); i++) {
            boolean isPlus = prompts.get(i).meta().problem().op() == CyclicArith.Op.PLUS;
            for (int j = 0; j < d; j++) (isPlus ? plus : minus)[j] += opActs[i][j];
            if (isPlus) np++; else nm++;
        }
        double[] delta = new double[d];
        for (int j = 0; j < d; j++) delta[j] = minus[j] / nm - plus[j] / np;
        List<Example<CyclicArith.Meta>> plusPrompts = prompts.stream()
                .filter(e -> e.meta().problem().op() == CyclicArith.Op.PLUS).toList();
        int[] got = CycleProbe.predict(model, TASK, plusPrompts, HOOK, chunk -> CycleProbe.shift(
                chunk.stream().mapToInt(e -> e.meta().startPosition() + 1).toArray(), delta));
        int flipped = 0;
        for (int i = 0; i < plusPrompts.size(); i++) {
            CyclicArith.Problem p = plusPrompts.get(i).meta().problem();
            flipped += got[i] == new CyclicArith.Problem(p.cycle(), p.start(), CyclicArith.Op.MINUS, p.offset()).answer()
                    ? 1 : 0;
        }
        return flipped / (double) plusPrompts.size();
    }

    /** The argmax over the whole vocabulary at {@code is}, per prompt. */
    private static int[] argmaxAll(HookedTransformer model, List<Example<CyclicArith.Meta>> prompts) {
        int[] out = new int[prompts.size()];
        for (int from = 0; from < prompts.size(); from += 256) {
            List<Example<CyclicArith.Meta>> chunk = prompts.subList(from, Math.min(prompts.size(), from + 256));
            try (ai.djl.ndarray.NDScope scope = new ai.djl.ndarray.NDScope()) {
                ai.djl.ndarray.NDArray logits = model.forward(CycleProbe.promptBatch(chunk));
                int p = (int) logits.getShape().get(1), v = (int) logits.getShape().get(2);
                float[] flat = logits.toFloatArray();
                for (int r = 0; r < chunk.size(); r++) {
                    int base = (r * p + chunk.get(r).meta().answerPosition() - 1) * v, best = 0;
                    for (int t = 1; t < v; t++) if (flat[base + t] > flat[base + best]) best = t;
                    out[from + r] = best;
                }
            }
        }
        return out;
    }
}
