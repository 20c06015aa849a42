package dev.jlens.useful;

import dev.jlens.data.ArithCot;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.Backtracking;
import dev.jlens.sae.SparseCoder;
import dev.jlens.sae.eval.SparseProbing;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Task (a): predict, from the prompt alone and before it writes a step, whether zoo model {@code thinker} will answer
 * a two-digit by two-digit multiplication wrongly (greedy chain of thought, graded by {@link ArithCot#grade}; a
 * malformed answer counts as wrong). Problems are drawn without replacement from all 8100 such products (seeded) and
 * split at random into train, validation and test. Views of each problem:
 * <ul>
 * <li>{@code resid_L}: {@code blocks.L.hook_resid_post} at the prompt's last token ({@code =}), per layer;</li>
 * <li>{@code sae}: latents of a TopK dictionary trained on layer {@code saeLayer}'s residual stream over every position
 *     of the training problems' prompts and generated traces (validation and test rows never), at the prompt's last
 *     token;</li>
 * <li>{@code confidence}: thinker's own output confidence, also from the prompt alone: largest probability and entropy
 *     of each of the first {@code confidenceTokens} greedy chain-of-thought tokens, of each of the first 4 tokens of the
 *     direct-answer mode ({@code <bos> a * b = answer:}), and their minima / maxima (the last 4 columns: least
 *     chain-of-thought max-probability, greatest chain-of-thought entropy, least direct max-probability, greatest
 *     direct entropy);</li>
 * <li>{@code problem}: features of the problem itself: the operands, their digits, the product and its digit count,
 *     the digit products that carry, the sum and largest of those carries, the carries of summing the partial
 *     products, and zero digits.</li>
 * </ul>
 *
 * <p>Measured (seed 0, test AUROC with 95% bootstrap interval): thinker is wrong on 17.8% of 3000 products; probes at
 * the four layers reach 0.686 to 0.696 and the SAE k-sparse probe 0.685, against 0.757 [0.711, 0.802] for KNN and
 * 0.745 to 0.747 for trees and logistic regression on the problem features, 0.664 to 0.671 on output confidence and
 * 0.521 for the direct answer's max-probability alone: every interpretability method ties the best baseline by
 * overlapping intervals, each lower in its estimate. With the default 1500 problems: probes 0.686 to 0.706, SAE 0.685,
 * trees on problem features 0.761 [0.709, 0.820]; ties again.
 */
public final class ThinkerErrors {
    private ThinkerErrors() {}

    /** Names of the {@code problem} view's columns. */
    public static final List<String> PROBLEM_FEATURES = List.of("a", "b", "a_tens", "a_units", "b_tens", "b_units",
            "product", "product_digits", "digit_products_carrying", "carry_sum", "carry_max", "sum_carries",
            "zero_digits", "a_times_b_units_carry");

    /**
     * Settings.
     *
     * @param problems         problems drawn (of 8100)
     * @param trainFraction    fraction for training
     * @param validationFraction fraction for validation (the rest is test)
     * @param saeLayer         the layer whose residual stream the dictionary reads
     * @param dSae             dictionary width
     * @param saeK             TopK's k
     * @param saeSteps         training steps of 512 rows
     * @param confidenceTokens chain-of-thought tokens whose confidence is read
     * @param seed             seed of the draw, the split and the dictionary
     */
    public record Options(int problems, double trainFraction, double validationFraction, int saeLayer, int dSae,
            int saeK, int saeSteps, int confidenceTokens, long seed) {
        /** Validates the settings. */
        public Options {
            if (problems < 100 || problems > 8100) throw new IllegalArgumentException("problems must be 100..8100, got " + problems);
            if (!(trainFraction > 0 && validationFraction > 0 && trainFraction + validationFraction < 1)) {
                throw new IllegalArgumentException("fractions must be positive with train + validation < 1, got "
                        + trainFraction + " and " + validationFraction);
            }
            if (saeK < 1 || saeK > dSae || saeSteps < 1 || confidenceTokens < 1) {
                throw new IllegalArgumentException("need 1 <= saeK <= dSae, saeSteps >= 1, confidenceTokens >= 1");
            }
        }

        /**
         * 1500 problems split 50/20/30, a 512-latent TopK-16 dictionary on layer 2 (300 steps), 8 tokens, seed 0: about
         * 40 s on two cores, most of it greedy generation ({@code withProblems(3000)} halves the intervals' width
         * squared and takes twice as long).
         */
        public static Options defaults() {
            return new Options(1500, 0.5, 0.2, 2, 512, 16, 300, 8, 0);
        }

        /** The same with another number of problems. */
        public Options withProblems(int n) {
            return new Options(n, trainFraction, validationFraction, saeLayer, dSae, saeK, saeSteps, confidenceTokens, seed);
        }

        /** The same with another dictionary layer. */
        public Options withSaeLayer(int layer) {
            return new Options(problems, trainFraction, validationFraction, layer, dSae, saeK, saeSteps, confidenceTokens, seed);
        }

        /** The same with another seed. */
        public Options withSeed(long s) {
            return new Options(problems, trainFraction, validationFraction, saeLayer, dSae, saeK, saeSteps, confidenceTokens, s);
        }
    }

    /** Builds the task on {@code thinker} ({@code Zoo.load("thinker")}). */
    public static UsefulTask build(HookedTransformer thinker, Options o) {
        if (o.saeLayer() < 0 || o.saeLayer() >= thinker.nLayers()) {
            throw new IllegalArgumentException("saeLayer must be 0.." + (thinker.nLayers() - 1) + ", got " + o.saeLayer());
        }
        ArithCot task = ArithCot.defaults().withBacktrackRate(0);
        List<ArithCot.Problem> all = new ArrayList<>();
        for (int a = 10; a < 100; a++) for (int b = 10; b < 100; b++) all.add(new ArithCot.Problem(ArithCot.Op.MUL, a, b));
        int[] perm = Runs.permutation(all.size(), o.seed());
        int n = o.problems();
        List<ArithCot.Problem> problems = new ArrayList<>();
        for (int i = 0; i < n; i++) problems.add(all.get(perm[i]));
        long eos = task.tokenId("<eos>");
        long answerMark = task.tokenId(ArithCot.ANSWER);
        long[][] prompts = problems.stream().map(p -> Backtracking.prompt(task, p)).toArray(long[][]::new);

        // the answer and the chain of thought's first tokens' confidence
        long t0 = System.nanoTime();
        Runs.Continuations cot = Runs.greedy(thinker, prompts, 60, eos);
        long[][] direct = Arrays.stream(prompts).map(p -> {
            long[] q = Arrays.copyOf(p, p.length + 1);
            q[p.length] = answerMark;
            return q;
        }).toArray(long[][]::new);
        Runs.Continuations dir = Runs.greedy(thinker, direct, 4, eos);
        List<String> vocab = task.vocab();
        int[] wrong = new int[n];
        int k = o.confidenceTokens(), dk = 4;
        float[][] conf = new float[n][2 * k + 2 * dk + 4];
        for (int i = 0; i < n; i++) {
            StringBuilder text = new StringBuilder();
            for (long t : cot.tokens()[i]) text.append(vocab.get((int) t)).append(' ');
            wrong[i] = ArithCot.grade(problems.get(i), text.toString()) == ArithCot.Grade.CORRECT ? 0 : 1;
            double minP = 1, maxH = 0, minPd = 1, maxHd = 0;
            for (int t = 0; t < k; t++) {
                float[][] lg = cot.logits()[i];
                double[] ph = t < lg.length ? Runs.maxProbEntropy(lg[t]) : new double[] {1, 0};
                conf[i][2 * t] = (float) ph[0];
                conf[i][2 * t + 1] = (float) ph[1];
                minP = Math.min(minP, ph[0]);
                maxH = Math.max(maxH, ph[1]);
            }
            for (int t = 0; t < dk; t++) {
                float[][] lg = dir.logits()[i];
                double[] ph = t < lg.length ? Runs.maxProbEntropy(lg[t]) : new double[] {1, 0};
                conf[i][2 * k + 2 * t] = (float) ph[0];
                conf[i][2 * k + 2 * t + 1] = (float) ph[1];
                minPd = Math.min(minPd, ph[0]);
                maxHd = Math.max(maxHd, ph[1]);
            }
            int c = 2 * k + 2 * dk;
            conf[i][c] = (float) minP;
            conf[i][c + 1] = (float) maxH;
            conf[i][c + 2] = (float) minPd;
            conf[i][c + 3] = (float) maxHd;
        }

        int nTrain = (int) Math.round(n * o.trainFraction()), nVal = (int) Math.round(n * o.validationFraction());
        int[][] parts = {range(0, nTrain), range(nTrain, nTrain + nVal), range(nTrain + nVal, n)};

        double generationSeconds = (System.nanoTime() - t0) / 1e9;
        Map<String, UsefulTask.View> views = new LinkedHashMap<>();
        float[][][] resid = Runs.lastTokenResid(thinker, prompts);
        for (int l = 0; l < resid.length; l++) views.put("resid_" + l, Runs.view(resid[l], parts));

        // the dictionary sees every position of the training problems' prompts and traces, nothing else
        String hook = "blocks." + o.saeLayer() + ".hook_resid_post";
        long[][] trainSeqs = new long[nTrain][];
        for (int i = 0; i < nTrain; i++) {
            trainSeqs[i] = Arrays.copyOf(prompts[i], prompts[i].length + cot.tokens()[i].length);
            System.arraycopy(cot.tokens()[i], 0, trainSeqs[i], prompts[i].length, cot.tokens()[i].length);
        }
        float[][] saeRows = Runs.allPositions(thinker, hook, trainSeqs);
        long t1 = System.nanoTime();
        float[][] latents;
        try (SparseCoder sae = Runs.trainSae(saeRows, hook, o.dSae(), o.saeK(), o.saeSteps(), o.seed())) {
            latents = SparseProbing.latents(sae, resid[o.saeLayer()]);
        }
        double saeSeconds = (System.nanoTime() - t1) / 1e9;
        views.put("sae", Runs.view(latents, parts));
        views.put("confidence", Runs.view(conf, parts));
        float[][] feats = problems.stream().map(ThinkerErrors::features).toArray(float[][]::new);
        views.put("problem", Runs.view(feats, parts));

        double errorRate = Arrays.stream(wrong).average().orElse(0);
        UsefulTask t = new UsefulTask("thinker-errors", Runs.labels(wrong, parts[0]), Runs.labels(wrong, parts[1]),
                Runs.labels(wrong, parts[2]), views, Runs.notes("problems", n + " two-digit x two-digit products",
                        "error_rate", String.format(java.util.Locale.ROOT, "%.3f", errorRate),
                        "sae", o.dSae() + " latents, TopK " + o.saeK() + ", " + o.saeSteps() + " steps on " + hook
                                + " (" + saeRows.length + " training-problem positions)",
                        "seconds", String.format(java.util.Locale.ROOT, "generation %.1f, dictionary %.1f, total %.1f",
                                generationSeconds, saeSeconds, (System.nanoTime() - t0) / 1e9),
                        "seed", o.seed()));
        return t;
    }

    /**
     * The methods of task (a): a logistic probe per layer and a k-sparse probe on the dictionary latents
     * (interpretability) against logistic regression, KNN and gradient-boosted trees on the problem features,
     * logistic regression and trees on the output confidence, and the least direct-answer max-probability alone.
     */
    public static List<Comparison.Entry> entries(int layers, int confidenceTokens) {
        List<Comparison.Entry> e = new ArrayList<>();
        for (int l = 0; l < layers; l++) e.add(Comparison.interpretability("probe resid_" + l, "resid_" + l, l2Grid()));
        e.add(Comparison.interpretability("sae k-sparse probe", "sae", Baselines.sparseProbe(1, 1e-3),
                Baselines.sparseProbe(4, 1e-3), Baselines.sparseProbe(16, 1e-3), Baselines.sparseProbe(64, 1e-3)));
        e.add(Comparison.baseline("logistic on problem features", "problem", l2Grid()));
        e.add(Comparison.baseline("knn on problem features", "problem", Baselines.knn(5), Baselines.knn(15),
                Baselines.knn(45)));
        e.add(Comparison.baseline("gbt on problem features", "problem", gbtGrid()));
        e.add(Comparison.baseline("logistic on confidence", "confidence", l2Grid()));
        e.add(Comparison.baseline("gbt on confidence", "confidence", gbtGrid()));
        e.add(Comparison.baseline("direct-answer max-probability", "confidence",
                Baselines.orientedColumn(2 * confidenceTokens + 8 + 2)));
        return e;
    }

    /** {@link #entries(int, int)} for thinker's 4 layers and the default options. */
    public static List<Comparison.Entry> entries() {
        return entries(4, Options.defaults().confidenceTokens());
    }

    static Method[] l2Grid() {
        return new Method[] {Baselines.logistic(1e-3), Baselines.logistic(1e-2), Baselines.logistic(1e-1),
                Baselines.logistic(1)};
    }

    static Method[] gbtGrid() {
        return new Method[] {Baselines.gbt(100, 2, 0.1), Baselines.gbt(100, 4, 0.1)};
    }

    /** The {@code problem} view of one product (see {@link #PROBLEM_FEATURES}). */
    public static float[] features(ArithCot.Problem p) {
        long a = p.a(), b = p.b();
        int[] ad = {(int) (a % 10), (int) (a / 10 % 10)}, bd = {(int) (b % 10), (int) (b / 10 % 10)};
        int carrying = 0, carrySum = 0, carryMax = 0, firstCarry = 0;
        long[] partial = new long[2];
        for (int j = 0; j < 2; j++) {
            int c = 0;
            for (int i = 0; i < 2; i++) {
                int v = ad[i] * bd[j] + c;
                c = v / 10;
                if (c > 0) carrying++;
                carrySum += c;
                carryMax = Math.max(carryMax, c);
                if (i == 0 && j == 0) firstCarry = c;
            }
            partial[j] = a * bd[j];
        }
        // carries of adding partial[0] and partial[1] * 10, column by column
        long x = partial[0], y = partial[1] * 10;
        int sumCarries = 0, c = 0;
        while (x > 0 || y > 0) {
            int v = (int) (x % 10 + y % 10) + c;
            c = v / 10;
            sumCarries += c;
            x /= 10;
            y /= 10;
        }
        long prod = a * b;
        int zeros = (ad[0] == 0 ? 1 : 0) + (ad[1] == 0 ? 1 : 0) + (bd[0] == 0 ? 1 : 0) + (bd[1] == 0 ? 1 : 0);
        return new float[] {a, b, ad[1], ad[0], bd[1], bd[0], prod, Long.toString(prod).length(), carrying, carrySum,
                carryMax, sumCarries, zeros, firstCarry};
    }

    private static int[] range(int from, int to) {
        int[] r = new int[to - from];
        for (int i = 0; i < r.length; i++) r[i] = from + i;
        return r;
    }
}
