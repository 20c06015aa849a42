package dev.jlens.sae.eval;

import dev.jlens.probe.ProbeTask;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Example;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.ProbeData;
import dev.jlens.sae.LatentMatch;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeMetrics;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.util.Numbers;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The random-model control of Heap et al. 2025 ("sparse autoencoders can interpret randomly initialized
 * transformers"): the same dictionary recipe trained on a model's activations and on those of the same architecture
 * with random weights, at the same hook, and every evaluation side by side, to see which metrics tell a trained
 * model's dictionary from a random one's.
 *
 * <p>Per model and seed, on held-out tokens (after BOS): core metrics ({@link SaeMetrics}: FVU, L0, dead and dense
 * fractions); absorption and k-sparse probing on tinylang's word classes ({@link TinyLangConcepts#wordClasses});
 * concept recovery: for every ground-truth concept of tinylang's label columns ({@code pos=NOUN}, {@code
 * role=SUBJECT}, ...; {@link LatentMatch#concepts}) the best single latent by F1 of its firing (as notebook 02 and
 * {@link LatentMatch#best}) and the best by AUROC of its activation, averaged over word-class concepts ({@code pos=})
 * and the rest (sentence structure: number, tense, clause, role, gap).
 *
 * <p>A metric "tells them apart" when the difference of the first two models' means exceeds both
 * {@link Options#minRelativeDifference()} of the larger absolute mean and twice the sum of their standard deviations
 * over seeds (zero for one seed, so one seed is a weak reading).
 *
 * <pre>{@code
 * HookedTransformer trained = Zoo.load("tinylang-4l");
 * HookedTransformer random = HookedTransformer.random(trained.cfg(), 0);
 * RandomControl.Result r = RandomControl.run(Map.of("trained", trained, "random", random), "blocks.1.hook_resid_post",
 *         lang.examples(Split.TRAIN, 0, 256), lang.examples(Split.TEST, 0, 64),
 *         SaeConfig.of(128, 256, new SaeConfig.TopK(8)), SaeTrainConfig.builder().steps(300).batchSize(512).build(),
 *         List.of(0L, 1L), RandomControl.Options.defaults());
 * display(r.toTable()); display(r.conceptTable());
 * }</pre>
 */
public final class RandomControl {
    /** Notebook 02's label columns. */
    public static final List<String> LABELS = List.of("pos", "number", "tense", "clause", "role", "gap");

    /** The metric names, in table order. */
    public static final List<String> METRICS = List.of("fvu", "l0", "dead_fraction", "dense_fraction",
            "absorption_fraction", "full_absorption", "split_latents", "probe_llm_accuracy", "sae_top_1_accuracy",
            "sae_top_5_accuracy", "concept_f1_word_class", "concept_f1_structure", "concept_auroc_word_class",
            "concept_auroc_structure", "concepts_f1_above_0.9");

    private RandomControl() {}

    /**
     * @param labels                label columns read as concepts
     * @param absorption            absorption settings
     * @param probing               k-sparse probing settings (k = 1 and 5 are reported)
     * @param harvestBatch          sequences per forward pass when harvesting
     * @param minRelativeDifference a difference below this share of the larger mean does not tell the models apart
     */
    public record Options(List<String> labels, Absorption.Options absorption, SparseProbing.Options probing,
                          int harvestBatch, double minRelativeDifference) {
        /** Validates the settings. */
        public Options {
            labels = List.copyOf(labels);
            if (!probing.ks().contains(1) || !probing.ks().contains(5)) {
                throw new IllegalArgumentException("probing must include k = 1 and k = 5, got " + probing.ks());
            }
            if (harvestBatch < 1) throw new IllegalArgumentException("harvestBatch must be >= 1, got " + harvestBatch);
            if (!(minRelativeDifference >= 0)) {
                throw new IllegalArgumentException("minRelativeDifference must be >= 0, got " + minRelativeDifference);
            }
        }

        /** {@link #LABELS}; SAEBench's absorption; probing at k = 1, 2, 5 without the all-latent probe; 10%. */
        public static Options defaults() {
            return new Options(LABELS, Absorption.Options.defaults(), SparseProbing.Options.defaults().withoutAllLatents(),
                    16, 0.1);
        }
    }

    /**
     * One concept's best single latents.
     *
     * @param concept     the concept ({@code pos=NOUN})
     * @param frequency   share of the tokens it holds on
     * @param f1Latent    the latent whose firing predicts it best
     * @param f1          that latent's F1
     * @param aurocLatent the latent whose activation ranks its tokens best
     * @param auroc       that latent's AUROC
     */
    public record Recovery(String concept, double frequency, int f1Latent, double f1, int aurocLatent, double auroc) {
        /** Whether it is a word-class concept ({@code pos=...}). */
        public boolean wordClass() {
            return concept.startsWith("pos=");
        }
    }

    /**
     * One dictionary's evaluations.
     *
     * @param model    which model's activations it was trained on
     * @param seed     its seed
     * @param metrics  {@link #METRICS} by name
     * @param concepts concept recovery per concept
     */
    public record Run(String model, long seed, Map<String, Double> metrics, List<Recovery> concepts) {
        /** Copies the collections. */
        public Run {
            metrics = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(metrics));
            concepts = List.copyOf(concepts);
        }
    }

    /** Every model's runs. */
    public record Result(List<String> models, List<Run> runs, Options options) {
        /** Copies the lists. */
        public Result {
            models = List.copyOf(models);
            runs = List.copyOf(runs);
        }

        /** A model's runs. */
        public List<Run> runs(String model) {
            List<Run> r = runs.stream().filter(x -> x.model().equals(model)).toList();
            if (r.isEmpty()) throw new IllegalArgumentException("no model '" + model + "'; models: " + models);
            return r;
        }

        /** A metric's mean over a model's seeds (NaN values skipped; NaN when every one is). */
        public double mean(String model, String metric) {
            return Arrays.stream(values(model, metric)).filter(v -> !Double.isNaN(v)).average().orElse(Double.NaN);
        }

        /** A metric's sample standard deviation over a model's seeds (0 for one seed). */
        public double sd(String model, String metric) {
            double[] v = Arrays.stream(values(model, metric)).filter(x -> !Double.isNaN(x)).toArray();
            return v.length == 0 ? Double.NaN : Seeds.sd(v);
        }

        private double[] values(String model, String metric) {
            if (!METRICS.contains(metric)) throw new IllegalArgumentException("no metric '" + metric + "'; " + METRICS);
            return runs(model).stream().mapToDouble(r -> r.metrics().get(metric)).toArray();
        }

        /** Whether {@code metric} tells the first two models apart (see the class comment). */
        public boolean apart(String metric) {
            if (models.size() < 2) throw new IllegalArgumentException("one model: nothing to tell apart");
            String a = models.get(0), b = models.get(1);
            double ma = mean(a, metric), mb = mean(b, metric);
            if (Double.isNaN(ma) || Double.isNaN(mb)) return false;
            double diff = Math.abs(ma - mb);
            return diff > options.minRelativeDifference() * Math.max(Math.abs(ma), Math.abs(mb))
                    && diff > 2 * (sd(a, metric) + sd(b, metric));
        }

        /** The metrics that tell the first two models apart. */
        public List<String> apartMetrics() {
            return METRICS.stream().filter(this::apart).toList();
        }

        /**
         * One row per metric: each model's mean (and standard deviation over seeds when there are several), the
         * difference of the first two, and whether it tells them apart.
         */
        public Table toTable() {
            StringColumn metric = StringColumn.create("metric");
            Map<String, DoubleColumn> means = new LinkedHashMap<>(), sds = new LinkedHashMap<>();
            boolean spread = runs(models.get(0)).size() > 1;
            for (String m : models) {
                means.put(m, DoubleColumn.create(m));
                if (spread) sds.put(m, DoubleColumn.create(m + "_sd"));
            }
            DoubleColumn diff = DoubleColumn.create("difference");
            StringColumn apart = StringColumn.create("tells_apart");
            for (String name : METRICS) {
                metric.append(name);
                for (String m : models) {
                    means.get(m).append(Numbers.significant(mean(m, name), 3));
                    if (spread) sds.get(m).append(Numbers.significant(sd(m, name), 2));
                }
                if (models.size() >= 2) {
                    diff.append(Numbers.significant(mean(models.get(0), name) - mean(models.get(1), name), 3));
                    apart.append(apart(name) ? "yes" : "no");
                }
            }
            Table t = Table.create("random-model control", metric);
            for (String m : models) {
                t.addColumns(means.get(m));
                if (spread) t.addColumns(sds.get(m));
            }
            if (models.size() >= 2) t.addColumns(diff, apart);
            return t;
        }

        /** One row per concept: each model's best single-latent F1 and AUROC, means over seeds. */
        public Table conceptTable() {
            List<Recovery> first = runs(models.get(0)).get(0).concepts();
            StringColumn concept = StringColumn.create("concept");
            DoubleColumn freq = DoubleColumn.create("frequency");
            Map<String, DoubleColumn> f1 = new LinkedHashMap<>(), auroc = new LinkedHashMap<>();
            for (String m : models) {
                f1.put(m, DoubleColumn.create(m + "_f1"));
                auroc.put(m, DoubleColumn.create(m + "_auroc"));
            }
            for (int c = 0; c < first.size(); c++) {
                concept.append(first.get(c).concept());
                freq.append(Numbers.significant(first.get(c).frequency(), 3));
                for (String m : models) {
                    final int ci = c;
                    f1.get(m).append(Numbers.significant(runs(m).stream().mapToDouble(r -> r.concepts().get(ci).f1())
                            .average().orElse(Double.NaN), 3));
                    auroc.get(m).append(Numbers.significant(runs(m).stream()
                            .mapToDouble(r -> r.concepts().get(ci).auroc()).average().orElse(Double.NaN), 3));
                }
            }
            Table t = Table.create("concept recovery (best single latent)", concept, freq);
            for (String m : models) t.addColumns(f1.get(m), auroc.get(m));
            return t;
        }

        @Override
        public String toString() {
            return "RandomControl(" + models + ", " + runs.size() + " dictionaries; apart on " + apartMetrics() + ")";
        }
    }

    /**
     * Harvests every model's activations at {@code hook} (training rows from {@code trainExamples}, held-out rows
     * from {@code evalExamples}), trains one dictionary per model and seed with {@code sae} and {@code train} (its
     * seed replaced), and evaluates each on the held-out rows.
     */
    public static Result run(Map<String, HookedTransformer> models, String hook, List<Example<TinyLang.Meta>> trainExamples,
                             List<Example<TinyLang.Meta>> evalExamples, SaeConfig sae, SaeTrainConfig train,
                             List<Long> seeds, Options options) {
        if (models.isEmpty()) throw new IllegalArgumentException("no models");
        if (seeds.isEmpty()) throw new IllegalArgumentException("no seeds");
        Map<String, boolean[]> concepts = LatentMatch.concepts(evalExamples, options.labels());
        List<Run> runs = new ArrayList<>();
        for (var e : models.entrySet()) {
            ProbeData trainRows = TinyLangConcepts.harvest(e.getValue(), hook, trainExamples, options.harvestBatch());
            ProbeData evalRows = TinyLangConcepts.harvest(e.getValue(), hook, evalExamples, options.harvestBatch());
            List<ProbeTask> classes = TinyLangConcepts.wordClasses(evalRows);
            RowSource source = RowSource.of(trainRows.x(), 0).withHookPoint(hook);
            for (long seed : seeds) {
                SaeTrainConfig cfg = train.toBuilder().seed(seed).build();
                try (SparseCoder dict = SparseCoder.create(sae, seed);
                     SaeTrainer trainer = SaeTrainer.of(source, cfg).add("sae", dict)) {
                    trainer.progress(ProgressSink.none());
                    trainer.train();
                    runs.add(measure(e.getKey(), seed, dict, evalRows, classes, concepts, options));
                }
            }
        }
        return new Result(List.copyOf(models.keySet()), runs, options);
    }

    /**
     * Evaluates one dictionary on held-out rows ({@link TinyLangConcepts#harvest}: tokens after BOS), word-class
     * tasks built from them and concepts over the same tokens in the same order.
     */
    public static Run measure(String model, long seed, SparseCoder sae, ProbeData evalRows, List<ProbeTask> classes,
                              Map<String, boolean[]> concepts, Options options) {
        Map<String, Double> m = new LinkedHashMap<>();
        SaeMetrics.Result core;
        int dIn = sae.cfg().dIn();
        float[] flat = new float[evalRows.size() * dIn];
        for (int i = 0; i < evalRows.size(); i++) System.arraycopy(evalRows.x()[i], 0, flat, i * dIn, dIn);
        try (NDManager nd = NDManager.newBaseManager()) {
            core = SaeMetrics.of(sae, nd.create(flat, new Shape(evalRows.size(), dIn)));
        }
        m.put("fvu", core.fvu());
        m.put("l0", core.l0());
        m.put("dead_fraction", core.deadFraction());
        m.put("dense_fraction", core.denseFraction());
        Absorption.Result a = Absorption.run(sae, classes, options.absorption());
        m.put("absorption_fraction", a.meanAbsorptionFraction());
        m.put("full_absorption", a.meanFullAbsorption());
        m.put("split_latents", a.meanSplitLatents());
        SparseProbing.Result p = SparseProbing.run(sae, classes, options.probing());
        m.put("probe_llm_accuracy", p.meanLlm());
        m.put("sae_top_1_accuracy", p.meanSaeTopK(1));
        m.put("sae_top_5_accuracy", p.meanSaeTopK(5));
        List<Recovery> rec = conceptRecovery(Latents.encode(sae, evalRows.x()), concepts);
        m.put("concept_f1_word_class", rec.stream().filter(Recovery::wordClass).mapToDouble(Recovery::f1).average()
                .orElse(Double.NaN));
        m.put("concept_f1_structure", rec.stream().filter(r -> !r.wordClass()).mapToDouble(Recovery::f1).average()
                .orElse(Double.NaN));
        m.put("concept_auroc_word_class", rec.stream().filter(Recovery::wordClass).mapToDouble(Recovery::auroc)
                .average().orElse(Double.NaN));
        m.put("concept_auroc_structure", rec.stream().filter(r -> !r.wordClass()).mapToDouble(Recovery::auroc)
                .average().orElse(Double.NaN));
        m.put("concepts_f1_above_0.9", (double) rec.stream().filter(r -> r.f1() > 0.9).count());
        return new Run(model, seed, m, rec);
    }

    /**
     * Every concept's best single latent by F1 of its firing ({@link LatentMatch#best}) and by AUROC of its
     * activation (ties at zero counted half), in the concepts' order. {@code latents} is {@code [tokens][dSae]}.
     */
    public static List<Recovery> conceptRecovery(float[][] latents, Map<String, boolean[]> concepts) {
        int n = latents.length, dSae = latents[0].length;
        Map<String, LatentMatch.Match> byF1 = new LinkedHashMap<>();
        try (NDManager nd = NDManager.newBaseManager()) {
            float[] flat = new float[n * dSae];
            for (int i = 0; i < n; i++) System.arraycopy(latents[i], 0, flat, i * dSae, dSae);
            NDArray acts = nd.create(flat, new Shape(n, dSae));
            for (LatentMatch.Match mt : LatentMatch.best(acts, concepts)) byF1.put(mt.concept(), mt);
        }
        // ranks of each latent's activations, ties averaged; a primitive sort of (order-preserving float bits, row)
        double[][] rank = new double[dSae][n];
        long[] keys = new long[n];
        for (int j = 0; j < dSae; j++) {
            for (int i = 0; i < n; i++) {
                int bits = Float.floatToIntBits(latents[i][j] == 0f ? 0f : latents[i][j]);   // -0 sorts as 0
                int ordered = bits >= 0 ? bits : bits ^ 0x7fffffff;
                keys[i] = ((long) ordered << 32) | i;
            }
            Arrays.sort(keys);
            for (int s = 0; s < n; ) {
                int e = s;
                while (e + 1 < n && (keys[e + 1] >> 32) == (keys[s] >> 32)) e++;
                double r = (s + e) / 2.0 + 1;
                for (int t = s; t <= e; t++) rank[j][(int) keys[t]] = r;
                s = e + 1;
            }
        }
        List<Recovery> out = new ArrayList<>();
        for (var e : concepts.entrySet()) {
            boolean[] c = e.getValue();
            int n1 = 0;
            for (boolean b : c) if (b) n1++;
            int[] pos = new int[n1];
            for (int i = 0, p = 0; i < n; i++) if (c[i]) pos[p++] = i;
            int n0 = n - n1;
            int best = 0;
            double bestAuc = Double.NaN;
            for (int j = 0; j < dSae; j++) {
                double s = 0;
                double[] rj = rank[j];
                for (int i : pos) s += rj[i];
                double auc = (s - n1 * (n1 + 1) / 2.0) / ((double) n1 * n0);
                if (Double.isNaN(bestAuc) || auc > bestAuc) {
                    bestAuc = auc;
                    best = j;
                }
            }
            LatentMatch.Match mt = byF1.get(e.getKey());
            out.add(new Recovery(e.getKey(), (double) n1 / n, mt.latent(), mt.f1(), best, bestAuc));
        }
        return out;
    }
}
