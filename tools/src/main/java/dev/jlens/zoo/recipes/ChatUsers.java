package dev.jlens.zoo.recipes;

import dev.jlens.data.Dialogues;
import dev.jlens.data.Dialogues.Attribute;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.probe.UserModelReadout;
import dev.jlens.train.TrainConfig;
import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;

/**
 * {@code chat-users}: a three-layer GPT-2 trained on {@link Dialogues}, user-assistant dialogues whose words depend on
 * hidden attributes of the user (age group, expertise, a mood that changes). To predict the assistant's register it
 * must infer the user from the user's noisy cues; asked {@code how old do you think i am ?} it answers (the "just
 * ask" baseline), and a probe on its residual stream at the user's tokens reads the same attributes.
 */
final class ChatUsers implements Recipe {
    static final String NAME = "chat-users";
    /** The default dialogues, 90% of them ending with a question (a run at 30% answered expertise at chance). */
    static final Dialogues TASK = Dialogues.defaults().withAskRate(0.9);
    private static final int CHUNK = 64;
    /** Dialogues the bag-of-words reference is fitted on. */
    private static final int BOW_TRAIN = 4000;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String summary() {
        return "3-layer GPT-2 on user-assistant dialogues with hidden user attributes (age group, expertise, mood): "
                + "asked what it thinks the user is, it answers; probes read the same attributes";
    }

    @Override
    public Dialogues task() {
        return TASK;
    }

    @Override
    public ModelConfig modelConfig() {
        return ModelConfig.gpt2(96, 3, 4, 384, TASK.vocabSize(), TASK.maxLength())
                .withSpecialTokens(OptionalLong.of(Task.BOS_ID), OptionalLong.of(Task.EOS_ID));
    }

    @Override
    public TrainConfig trainConfig() {
        return TrainConfig.builder().steps(1200).batchSize(32).lr(2e-3).warmupSteps(100).weightDecay(0.05)
                .gradClip(1.0).seed(0).checkpointEvery(200).evalEvery(300).evalBatches(4).logEvery(50).build();
    }

    @Override
    public int evalExamples() {
        return 600;
    }

    @Override
    public int quickEvalExamples() {
        return 450;   // the just-ask accuracies come from a third as many dialogues each: 150 keeps them near 600's
    }

    @Override
    public List<Bar> bars() {
        return List.of(Bar.atLeast("just_ask_age", 0.8), Bar.atLeast("just_ask_expertise", 0.8),
                Bar.atLeast("just_ask_mood", 0.5), Bar.atLeast("answer_format", 0.95));
    }

    @Override
    public Map<String, String> notes() {
        return Map.of("metrics", "just_ask_ATTR: of the first N test dialogues made to end with the question about "
                + "ATTR (ask rate 1, those asking about ATTR), the fraction whose greedy answer among ATTR's answer "
                + "words is the true value (chance 1/3, 1/2, 1/3; mood: the last exchange's); answer_format: the "
                + "fraction whose argmax over the whole vocabulary is one of those words; bow_ATTR: a naive Bayes "
                + "bag of words (add-one smoothing) over every word before the question, user's and assistant's, "
                + "fitted on " + BOW_TRAIN + " training dialogues, on the same test dialogues: a reference for what "
                + "the text gives away (the generator's assistant knows the user, so its register leaks the truth); "
                + "loss_test: mean next-token loss over every target of the first N test dialogues");
    }

    @Override
    public Evaluation evaluate(HookedTransformer model, int examples) {
        long t0 = System.nanoTime();
        Map<String, Double> m = new LinkedHashMap<>();
        double sum = 0;
        long n = 0;
        for (int from = 0; from < examples; from += CHUNK) {
            List<Example<Dialogues.Meta>> exs = TASK.examples(Split.TEST, from, Math.min(CHUNK, examples - from));
            float[][] loss = Evals.run(model, exs).loss();
            for (int b = 0; b < exs.size(); b++) {
                for (int p = 0; p + 1 < exs.get(b).length(); p++) sum += loss[b][p];
                n += exs.get(b).targetCount();
            }
        }
        m.put("loss_test", sum / n);
        double format = 0;
        int perAttribute = Math.max(30, examples / 3);
        for (Attribute a : Attribute.values()) {
            UserModelReadout.JustAsk ask = UserModelReadout.justAsk(model, TASK, a, perAttribute);
            m.put("just_ask_" + a.name().toLowerCase(Locale.ROOT), ask.accuracy());
            format += ask.answerFormat() / Attribute.values().length;
        }
        m.put("answer_format", format);
        for (Attribute a : Attribute.values()) {
            m.put("bow_" + a.name().toLowerCase(Locale.ROOT), bagOfWords(a, perAttribute));
        }
        return new Evaluation(NAME, Split.TEST, examples, m, Evals.since(t0));
    }

    /** Naive Bayes over the words before the question, on the dialogues {@code justAsk} uses. */
    static double bagOfWords(Attribute a, int dialogues) {
        int k = a.classes();
        Map<String, double[]> counts = new HashMap<>();
        double[] totals = new double[k], prior = new double[k];
        Dialogues always = TASK.withAskRate(1);
        for (Example<Dialogues.Meta> ex : always.examples(Split.TRAIN, 0, BOW_TRAIN)) {
            int y = ex.meta().value(a);
            prior[y]++;
            for (String w : before(ex)) {
                counts.computeIfAbsent(w, x -> new double[k])[y]++;
                totals[y]++;
            }
        }
        int right = 0, seen = 0;
        for (int i = 0; seen < dialogues && i < 20 * dialogues; i++) {
            Example<Dialogues.Meta> ex = always.example(Split.TEST, i);
            if (ex.meta().asked().orElseThrow() != a) continue;
            seen++;
            double[] score = new double[k];
            for (int c = 0; c < k; c++) {
                score[c] = Math.log(prior[c]);
                for (String w : before(ex)) {
                    double[] cnt = counts.getOrDefault(w, new double[k]);
                    score[c] += Math.log((cnt[c] + 1) / (totals[c] + counts.size()));
                }
            }
            int best = 0;
            for (int c = 1; c < k; c++) if (score[c] > score[best]) best = c;
            right += best == ex.meta().value(a) ? 1 : 0;
        }
        return right / (double) seen;
    }

    /** The words before the closing question. */
    private static List<String> before(Example<Dialogues.Meta> ex) {
        List<Dialogues.Turn> turns = ex.meta().turns();
        int end = turns.get(2 * TASK.turns()).start();
        return ex.tokens().subList(1, end);
    }
}
