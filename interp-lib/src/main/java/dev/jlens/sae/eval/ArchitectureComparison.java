package dev.jlens.sae.eval;

import dev.jlens.probe.ProbeTask;

import dev.jlens.data.Example;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.ProbeData;
import dev.jlens.sae.LatentMatch;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.sae.SpliceEval;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.util.Numbers;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Dictionary architectures side by side (issue 14, item 5: Matryoshka against BatchTopK): every architecture of one
 * width and one L0 target trained in one {@link SaeTrainer} on the same batches of one hook's activations, with the
 * same steps and seed, then measured on held-out tokens: reconstruction ({@link dev.jlens.sae.SaeMetrics} FVU and L0,
 * and the next-token loss with the reconstruction spliced in, {@link SpliceEval}), absorption on first letters and
 * word classes ({@link Absorption}, {@link TinyLangConcepts}), k-sparse probing on word classes
 * ({@link SparseProbing}) and concept recovery (best single latent by F1 and AUROC over tinylang's concepts,
 * {@link RandomControl#conceptRecovery}). Several seeds give each metric's spread ({@link Seeds}).
 *
 * <pre>{@code
 * var archs = ArchitectureComparison.matryoshkaVsBatchTopK(128, 256, 8);
 * var r = ArchitectureComparison.run(model, "blocks.1.hook_resid_post", lang.examples(Split.TRAIN, 0, 256),
 *         lang.examples(Split.TEST, 0, 64), archs, SaeTrainConfig.builder().steps(300).batchSize(512).lr(4e-3).build(),
 *         List.of(0L, 1L, 2L), ArchitectureComparison.Options.defaults());
 * display(r.toTable()); display(r.conceptTable()); display(r.chart());
 * }</pre>
 */
public final class ArchitectureComparison {

    /** The metric names, in table order (lower is better for the first five and the absorption ones). */
    public static final List<String> METRICS = List.of("l0", "fvu", "dead_fraction", "ce_loss_delta",
            "loss_recovered", "absorption_first_letter", "full_absorption_first_letter", "absorption_word_class",
            "probe_llm_accuracy", "sae_top_1_accuracy", "sae_top_5_accuracy", "concept_f1", "concept_auroc",
            "concept_f1_word_class", "concepts_f1_above_0.9");

    private ArchitectureComparison() {}

    /**
     * @param control         labels, absorption and probing settings and the harvest batch ({@link RandomControl})
     * @param letterMinWords  a first letter is a parent when at least this many distinct words start with it
     * @param letterMinRows   ... and it holds on at least this many held-out rows
     * @param spliceSequences held-out sequences the reconstruction is spliced into (0: no loss metrics, NaN)
     */
    public record Options(RandomControl.Options control, int letterMinWords, int letterMinRows, int spliceSequences) {
        /** Validates the settings. */
        public Options {
            if (letterMinWords < 1) throw new IllegalArgumentException("letterMinWords must be >= 1, got " + letterMinWords);
            if (letterMinRows < 1) throw new IllegalArgumentException("letterMinRows must be >= 1, got " + letterMinRows);
            if (spliceSequences < 0) {
                throw new IllegalArgumentException("spliceSequences must be >= 0, got " + spliceSequences);
            }
        }

        /** {@link RandomControl.Options#defaults()}; letters of 3 or more words on 40 or more rows; 32 sequences spliced. */
        public static Options defaults() {
            return new Options(RandomControl.Options.defaults(), 3, 40, 32);
        }
    }

    /** One trained dictionary's measurements: {@link #METRICS} by name and its concept recovery per concept. */
    public record Run(String architecture, long seed, Map<String, Double> metrics, List<RandomControl.Recovery> concepts) {
        /** Copies the collections. */
        public Run {
            metrics = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(metrics));
            concepts = List.copyOf(concepts);
        }
    }

    /** Every architecture's runs, one per seed. */
    public record Result(String hook, Map<String, SaeConfig> architectures, List<Run> runs) {
        /** Copies the collections. */
        public Result {
            architectures = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(architectures));
            runs = List.copyOf(runs);
        }

        /** The architectures' names, in the order given. */
        public List<String> names() {
            return List.copyOf(architectures.keySet());
        }

        /** One architecture's runs over seeds. */
        public List<Run> runs(String architecture) {
            List<Run> r = runs.stream().filter(x -> x.architecture().equals(architecture)).toList();
            if (r.isEmpty()) {
                throw new IllegalArgumentException("no architecture '" + architecture + "'; architectures: " + names());
            }
            return r;
        }

        /** One architecture's metrics over its seeds, as {@link Seeds} reads them (mean, sd, min, max). */
        public Seeds.Result seeds(String architecture) {
            List<Run> r = runs(architecture);
            return new Seeds.Result(r.stream().map(Run::seed).toList(), r.stream().map(Run::metrics).toList());
        }

        /** A metric's mean over an architecture's seeds. */
        public double mean(String architecture, String metric) {
            if (!METRICS.contains(metric)) throw new IllegalArgumentException("no metric '" + metric + "'; " + METRICS);
            return seeds(architecture).mean(metric);
        }

        /** A metric's sample standard deviation over an architecture's seeds (0 for one seed). */
        public double sd(String architecture, String metric) {
            if (!METRICS.contains(metric)) throw new IllegalArgumentException("no metric '" + metric + "'; " + METRICS);
            return seeds(architecture).sd(metric);
        }

        /** One row per metric, each architecture's mean (and sd over seeds when there are several). */
        public Table toTable() {
            boolean spread = runs(names().get(0)).size() > 1;
            StringColumn metric = StringColumn.create("metric");
            Table t = Table.create("architectures on " + hook + " (" + runs(names().get(0)).size() + " seeds)", metric);
            METRICS.forEach(metric::append);
            for (String a : names()) {
                DoubleColumn mean = DoubleColumn.create(a), sd = DoubleColumn.create(a + "_sd");
                for (String m : METRICS) {
                    mean.append(Numbers.significant(mean(a, m), 3));
                    double v = sd(a, m);
                    // equal values over seeds (the raw probe) differ by rounding only
                    sd.append(v <= 1e-12 * Math.abs(mean(a, m)) ? 0 : Numbers.significant(v, 2));
                }
                t.addColumns(mean);
                if (spread) t.addColumns(sd);
            }
            return t;
        }

        /** One row per concept: its frequency and each architecture's best single-latent F1 and AUROC (seed means). */
        public Table conceptTable() {
            List<RandomControl.Recovery> first = runs.get(0).concepts();
            StringColumn concept = StringColumn.create("concept");
            DoubleColumn freq = DoubleColumn.create("frequency");
            Table t = Table.create("concept recovery by architecture (best single latent)", concept, freq);
            for (RandomControl.Recovery r : first) {
                concept.append(r.concept());
                freq.append(Numbers.significant(r.frequency(), 3));
            }
            for (String a : names()) {
                DoubleColumn f1 = DoubleColumn.create(a + "_f1"), auroc = DoubleColumn.create(a + "_auroc");
                for (int c = 0; c < first.size(); c++) {
                    final int ci = c;
                    f1.append(Numbers.significant(runs(a).stream().mapToDouble(r -> r.concepts().get(ci).f1())
                            .average().orElse(Double.NaN), 3));
                    auroc.append(Numbers.significant(runs(a).stream().mapToDouble(r -> r.concepts().get(ci).auroc())
                            .average().orElse(Double.NaN), 3));
                }
                t.addColumns(f1, auroc);
            }
            return t;
        }

        /** The metrics on a common scale ([0, 1]: FVU, absorption, accuracies, F1, AUROC) as grouped bars. */
        public CategoryChart chart() {
            List<String> shown = List.of("fvu", "absorption_first_letter", "absorption_word_class",
                    "sae_top_1_accuracy", "sae_top_5_accuracy", "concept_f1", "concept_auroc");
            Map<String, double[]> series = new LinkedHashMap<>();
            for (String a : names()) series.put(a, shown.stream().mapToDouble(m -> mean(a, m)).toArray());
            return Plots.bar("architectures on " + hook, shown, series);
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("ArchitectureComparison(" + hook);
            for (String a : names()) {
                sb.append(String.format(java.util.Locale.ROOT, "; %s: L0 %.1f, FVU %.3f, first-letter absorption %.3f,"
                        + " concept F1 %.3f", a, mean(a, "l0"), mean(a, "fvu"), mean(a, "absorption_first_letter"),
                        mean(a, "concept_f1")));
            }
            return sb.append(")").toString();
        }
    }

    /**
     * BatchTopK and Matryoshka (BatchTopK with nested groups) of {@code dSae} latents at {@code k} per token; the
     * Matryoshka groups double in size: {@code dSae/8, dSae/8, dSae/4, dSae/2} (for {@code dSae} a multiple of 8).
     */
    public static Map<String, SaeConfig> matryoshkaVsBatchTopK(int dIn, int dSae, int k) {
        if (dSae % 8 != 0) throw new IllegalArgumentException("dSae must be a multiple of 8, got " + dSae);
        Map<String, SaeConfig> m = new LinkedHashMap<>();
        m.put("batchtopk", SaeConfig.of(dIn, dSae, new SaeConfig.BatchTopK(k)));
        m.put("matryoshka", SaeConfig.of(dIn, dSae,
                new SaeConfig.Matryoshka(k, List.of(dSae / 8, dSae / 8, dSae / 4, dSae / 2))));
        return m;
    }

    /**
     * Harvests {@code hook} over the tokens after BOS of both example sets; for each seed trains every architecture
     * on the same batches ({@code train}, its seed replaced) and measures each on the held-out examples.
     */
    public static Result run(HookedTransformer model, String hook, List<Example<TinyLang.Meta>> trainExamples,
                             List<Example<TinyLang.Meta>> evalExamples, Map<String, SaeConfig> architectures,
                             SaeTrainConfig train, List<Long> seeds, Options options) {
        if (architectures.isEmpty()) throw new IllegalArgumentException("no architectures to compare");
        if (seeds.isEmpty()) throw new IllegalArgumentException("no seeds");
        int dIn = architectures.values().iterator().next().dIn();
        for (var e : architectures.entrySet()) {
            if (e.getValue().dIn() != dIn) {
                throw new IllegalArgumentException("architecture '" + e.getKey() + "' reads " + e.getValue().dIn()
                        + " values, the first " + dIn);
            }
        }
        int batch = options.control().harvestBatch();
        ProbeData trainRows = TinyLangConcepts.harvest(model, hook, trainExamples, batch);
        ProbeData evalRows = TinyLangConcepts.harvest(model, hook, evalExamples, batch);
        List<ProbeTask> classes = TinyLangConcepts.wordClasses(evalRows);
        List<ProbeTask> letters = TinyLangConcepts.firstLetters(evalRows, options.letterMinWords(), options.letterMinRows());
        if (letters.isEmpty()) {
            throw new IllegalArgumentException("no first letter holds on " + options.letterMinRows() + " held-out rows; "
                    + "give more eval examples or lower letterMinRows");
        }
        Map<String, boolean[]> concepts = LatentMatch.concepts(evalExamples, options.control().labels());
        List<Example<TinyLang.Meta>> spliced = evalExamples.subList(0, Math.min(options.spliceSequences(),
                evalExamples.size()));
        RowSource source = RowSource.of(trainRows.x(), 0).withHookPoint(hook);
        List<Run> runs = new ArrayList<>();
        for (long seed : seeds) {
            SaeTrainConfig cfg = train.toBuilder().seed(seed).build();
            List<SparseCoder> dicts = new ArrayList<>();
            try {
                SaeTrainer trainer = SaeTrainer.of(source, cfg);
                for (var e : architectures.entrySet()) {
                    SparseCoder d = SparseCoder.create(e.getValue(), seed);
                    dicts.add(d);
                    trainer.add(e.getKey(), d);
                }
                try (trainer) {
                    trainer.progress(ProgressSink.none());
                    trainer.train();
                }
                int i = 0;
                for (String name : architectures.keySet()) {
                    runs.add(measure(name, seed, dicts.get(i++), model, evalRows, classes, letters, concepts, spliced,
                            options));
                }
            } finally {
                dicts.forEach(SparseCoder::close);
            }
        }
        return new Result(hook, architectures, runs);
    }

    /** One dictionary's {@link #METRICS} on held-out rows, their word-class and first-letter parents and concepts. */
    static Run measure(String name, long seed, SparseCoder sae, HookedTransformer model, ProbeData evalRows,
                       List<ProbeTask> classes, List<ProbeTask> letters, Map<String, boolean[]> concepts,
                       List<Example<TinyLang.Meta>> spliced, Options options) {
        RandomControl.Run base = RandomControl.measure(name, seed, sae, evalRows, classes, concepts, options.control());
        Map<String, Double> b = base.metrics();
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("l0", b.get("l0"));
        m.put("fvu", b.get("fvu"));
        m.put("dead_fraction", b.get("dead_fraction"));
        double ceDelta = Double.NaN, recovered = Double.NaN;
        if (!spliced.isEmpty()) {
            long bos = spliced.get(0).ids()[0];
            SpliceEval s = SpliceEval.run(model, sae, TinyLangConcepts.batches(spliced, options.control().harvestBatch()),
                    Set.of(bos));
            ceDelta = s.splicedLoss() - s.cleanLoss();
            recovered = s.lossRecovered();
        }
        m.put("ce_loss_delta", ceDelta);
        m.put("loss_recovered", recovered);
        Absorption.Result a = Absorption.run(sae, letters, options.control().absorption());
        m.put("absorption_first_letter", a.meanAbsorptionFraction());
        m.put("full_absorption_first_letter", a.meanFullAbsorption());
        m.put("absorption_word_class", b.get("absorption_fraction"));
        m.put("probe_llm_accuracy", b.get("probe_llm_accuracy"));
        m.put("sae_top_1_accuracy", b.get("sae_top_1_accuracy"));
        m.put("sae_top_5_accuracy", b.get("sae_top_5_accuracy"));
        m.put("concept_f1", base.concepts().stream().mapToDouble(RandomControl.Recovery::f1).average().orElse(Double.NaN));
        m.put("concept_auroc", base.concepts().stream().mapToDouble(RandomControl.Recovery::auroc).average()
                .orElse(Double.NaN));
        m.put("concept_f1_word_class", b.get("concept_f1_word_class"));
        m.put("concepts_f1_above_0.9", b.get("concepts_f1_above_0.9"));
        if (!m.keySet().equals(new java.util.LinkedHashSet<>(METRICS))) {
            throw new IllegalStateException("metrics " + m.keySet() + " differ from " + METRICS);
        }
        return new Run(name, seed, m, base.concepts());
    }
}
