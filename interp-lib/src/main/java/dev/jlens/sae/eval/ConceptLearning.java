package dev.jlens.sae.eval;

import dev.jlens.data.Example;
import dev.jlens.data.TinyLang;
import dev.jlens.geometry.FastIca;
import dev.jlens.geometry.KMeans;
import dev.jlens.geometry.Nmf;
import dev.jlens.geometry.Pca;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.ProbeData;
import dev.jlens.sae.LatentMatch;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.util.Numbers;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Which concepts get a dedicated latent (issue 14, item 6): a concept is learned when its best single latent's firing
 * ({@code act > 0}) predicts it with F1 at least {@link Options#threshold()} ({@link LatentMatch#best}), measured
 * against dictionary size (dictionaries of several widths trained in one {@link SaeTrainer} on the same batches) and
 * against the concept's token frequency. Concepts are tinylang's label values ({@code pos=NOUN}, {@code tense=PAST},
 * ...) and, for a wide spread of frequencies, every word ({@code word=dog}): the generator draws words from Zipf
 * distributions, so word frequencies span more than two decades. Here the frequencies are the natural ones; they are
 * varied causally by {@link ConceptFrequency}, which subsamples (or repeats) the training rows on which one concept
 * holds, keeps every other row, retrains the same dictionary recipe and scores it on the unchanged held-out rows.
 *
 * <p>Other decompositions of the same activations are scored the same way, each giving "latent activations" per
 * held-out token: PCA (projections on the top components, each as two latents {@code +p} and {@code -p}, since a
 * direction has no sign), ICA ({@link FastIca} sources, also both signs), NMF ({@link Nmf} of the positive part of the
 * centred activations, codes by non-negative least squares), k-means directions ({@link KMeans} on the centred
 * activations: projections on each unit centroid direction) and k-means assignments (one-hot: the vector-quantisation
 * code, a dictionary with L0 = 1). Dense projections fire on about half the tokens, which caps their F1 on rare
 * concepts; the best single latent's AUROC ({@link RandomControl#conceptRecovery}) is the threshold-free reading.
 *
 * <pre>{@code
 * var r = ConceptLearning.run(model, "blocks.1.hook_resid_post", lang.examples(Split.TRAIN, 0, 256),
 *         lang.examples(Split.TEST, 0, 128), List.of(64, 128, 256, 512), new SaeConfig.BatchTopK(8),
 *         SaeTrainConfig.builder().steps(600).batchSize(512).lr(4e-3).build(), ConceptLearning.Options.defaults());
 * display(r.toTable());        // concept x size: F1
 * display(r.chart());          // learned fraction against frequency bucket, one line per size
 * display(r.methodTable());    // SAEs, PCA, ICA, NMF, k-means: mean best F1, concepts learned, mean best AUROC
 * }</pre>
 */
public final class ConceptLearning {

    /** A decomposition set beside the dictionaries. */
    public enum Method {
        /** Principal components; each as a {@code +} and a {@code -} latent. */
        PCA,
        /** FastICA sources; each as a {@code +} and a {@code -} latent. */
        ICA,
        /** NMF codes of {@code max(0, x - mean)}. */
        NMF,
        /** Projections on the unit directions of k-means centroids of the centred activations. */
        KMEANS,
        /** One-hot k-means assignments. */
        KMEANS_ASSIGNMENT;

        /** The name in tables. */
        public String label() {
            return switch (this) {
                case PCA -> "pca";
                case ICA -> "ica";
                case NMF -> "nmf";
                case KMEANS -> "kmeans-directions";
                case KMEANS_ASSIGNMENT -> "kmeans-assignment";
            };
        }
    }

    /** Frequency bucket edges (share of tokens): below 0.3%, 0.3 to 1%, ..., 30% and above. */
    public static final List<Double> BUCKET_EDGES = List.of(0.003, 0.01, 0.03, 0.1, 0.3);

    private ConceptLearning() {}

    /**
     * @param threshold     a concept is learned when its best single latent's F1 reaches this
     * @param minTokens     a concept must hold on at least this many held-out tokens (and not on all)
     * @param labels        label columns read as concepts ({@code pos}, ...)
     * @param words         whether every word is a concept too ({@code word=dog})
     * @param components    components (PCA, ICA, NMF) and clusters (k-means) of each decomposition
     * @param methods       the decompositions to run (none: dictionaries only)
     * @param fitRows       at most this many training rows (evenly spaced) fit the decompositions
     * @param iterations    iterations of NMF's multiplicative updates and the most of FastICA and Lloyd
     * @param seed          seed of the decompositions
     * @param harvestBatch  sequences per forward pass when harvesting
     */
    public record Options(double threshold, int minTokens, List<String> labels, boolean words, int components,
                          List<Method> methods, int fitRows, int iterations, long seed, int harvestBatch) {
        /** Validates and copies. */
        public Options {
            labels = List.copyOf(labels);
            methods = List.copyOf(methods);
            if (!(threshold > 0 && threshold <= 1)) throw new IllegalArgumentException("threshold must be in (0, 1], got " + threshold);
            if (minTokens < 1) throw new IllegalArgumentException("minTokens must be >= 1, got " + minTokens);
            if (components < 1) throw new IllegalArgumentException("components must be >= 1, got " + components);
            if (fitRows < 2) throw new IllegalArgumentException("fitRows must be >= 2, got " + fitRows);
            if (iterations < 1) throw new IllegalArgumentException("iterations must be >= 1, got " + iterations);
            if (harvestBatch < 1) throw new IllegalArgumentException("harvestBatch must be >= 1, got " + harvestBatch);
            if (labels.isEmpty() && !words) throw new IllegalArgumentException("no concepts: give labels or words");
        }

        /** F1 0.8; 10 tokens; {@link RandomControl#LABELS} and words; 64 components; every method on 8192 rows, 200 iterations. */
        public static Options defaults() {
            return new Options(0.8, 10, RandomControl.LABELS, true, 64, List.of(Method.values()), 8192, 200, 0, 16);
        }

        /** These options with other decompositions. */
        public Options withMethods(List<Method> m) {
            return new Options(threshold, minTokens, labels, words, components, m, fitRows, iterations, seed, harvestBatch);
        }

        /** These options with {@code c} components and clusters, fitted on at most {@code rows} rows. */
        public Options withComponents(int c, int rows) {
            return new Options(threshold, minTokens, labels, words, c, methods, rows, iterations, seed, harvestBatch);
        }

        /** These options with another learned-F1 threshold. */
        public Options withThreshold(double t) {
            return new Options(t, minTokens, labels, words, components, methods, fitRows, iterations, seed, harvestBatch);
        }
    }

    /** A concept: its name ({@code pos=NOUN}, {@code word=dog}), column ({@code pos}, {@code word}) and held-out frequency. */
    public record Concept(String name, String column, int tokens, double frequency) {}

    /**
     * One set of latents scored on every concept (in {@link Result#concepts()}'s order).
     *
     * @param method  {@code sae-256}, {@code pca}, ...
     * @param latents how many latents it has
     * @param alive   how many of them fire ({@code > 0}) on at least one held-out token
     * @param f1      best single latent's F1 per concept
     * @param auroc   best single latent's AUROC per concept
     */
    public record Scores(String method, int latents, int alive, double[] f1, double[] auroc) {
        /** The mean best F1 over concepts. */
        public double meanF1() {
            return Arrays.stream(f1).average().orElse(Double.NaN);
        }

        /** The mean best AUROC over concepts. */
        public double meanAuroc() {
            return Arrays.stream(auroc).average().orElse(Double.NaN);
        }

        /** How many concepts reach F1 {@code threshold}. */
        public int learned(double threshold) {
            return (int) Arrays.stream(f1).filter(v -> v >= threshold).count();
        }
    }

    /**
     * The sweep and the decompositions.
     *
     * @param hook           the hook
     * @param concepts       the concepts, by column then frequency (most frequent first)
     * @param sizes          dictionary sizes, in {@link #dictionaries()}' order
     * @param dictionaries   one per size
     * @param decompositions one per method
     * @param threshold      the learned-F1 threshold
     */
    public record Result(String hook, List<Concept> concepts, List<Integer> sizes, List<Scores> dictionaries,
                         List<Scores> decompositions, double threshold) {
        /** Copies the lists. */
        public Result {
            concepts = List.copyOf(concepts);
            sizes = List.copyOf(sizes);
            dictionaries = List.copyOf(dictionaries);
            decompositions = List.copyOf(decompositions);
        }

        /** One row per concept: column, tokens, frequency, and best-latent F1 at each dictionary size. */
        public Table toTable() {
            StringColumn name = StringColumn.create("concept"), column = StringColumn.create("column");
            IntColumn tokens = IntColumn.create("tokens");
            DoubleColumn freq = DoubleColumn.create("frequency");
            Table t = Table.create("best-latent F1 by dictionary size (" + hook + ")", name, column, tokens, freq);
            for (Concept c : concepts) {
                name.append(c.name());
                column.append(c.column());
                tokens.append(c.tokens());
                freq.append(Numbers.significant(c.frequency(), 3));
            }
            for (int s = 0; s < sizes.size(); s++) {
                DoubleColumn f1 = DoubleColumn.create("F1@" + sizes.get(s));
                for (double v : dictionaries.get(s).f1()) f1.append(Numbers.significant(v, 3));
                t.addColumns(f1);
            }
            return t;
        }

        /** The concepts learned (F1 at least the threshold) by the dictionary of {@code size} latents. */
        public List<String> learned(int size) {
            Scores s = dictionary(size);
            List<String> out = new ArrayList<>();
            for (int c = 0; c < concepts.size(); c++) if (s.f1()[c] >= threshold) out.add(concepts.get(c).name());
            return out;
        }

        /** The scores of the dictionary of {@code size} latents. */
        public Scores dictionary(int size) {
            int i = sizes.indexOf(size);
            if (i < 0) throw new IllegalArgumentException("no dictionary of " + size + " latents; sizes: " + sizes);
            return dictionaries.get(i);
        }

        /** The frequency bucket ({@link #BUCKET_EDGES}) of each concept. */
        int[] buckets() {
            int[] b = new int[concepts.size()];
            for (int c = 0; c < b.length; c++) {
                double f = concepts.get(c).frequency();
                int k = 0;
                while (k < BUCKET_EDGES.size() && f >= BUCKET_EDGES.get(k)) k++;
                b[c] = k;
            }
            return b;
        }

        static String bucketLabel(int k) {
            List<Double> e = BUCKET_EDGES;
            if (k == 0) return "<" + pct(e.get(0));
            if (k == e.size()) return ">=" + pct(e.get(k - 1));
            return pct(e.get(k - 1)) + "-" + pct(e.get(k));
        }

        private static String pct(double v) {
            return new java.math.BigDecimal(100 * v).round(new java.math.MathContext(2)).stripTrailingZeros()
                    .toPlainString() + "%";
        }

        /** One row per frequency bucket that holds a concept: its concepts and the fraction learned at each size. */
        public Table bucketTable() {
            int[] b = buckets();
            StringColumn bucket = StringColumn.create("frequency");
            IntColumn count = IntColumn.create("concepts");
            Table t = Table.create("learned fraction (F1 >= " + threshold + ") by frequency", bucket, count);
            List<Integer> used = usedBuckets(b);
            for (int k : used) {
                bucket.append(bucketLabel(k));
                count.append((int) Arrays.stream(b).filter(x -> x == k).count());
            }
            for (int s = 0; s < sizes.size(); s++) {
                double[] frac = learnedFraction(b, used, dictionaries.get(s));
                DoubleColumn col = DoubleColumn.create("learned@" + sizes.get(s));
                for (double v : frac) col.append(Numbers.significant(v, 3));
                t.addColumns(col);
            }
            return t;
        }

        /** The learned fraction against the frequency bucket, one line per dictionary size. */
        public CategoryChart chart() {
            int[] b = buckets();
            List<Integer> used = usedBuckets(b);
            Map<String, double[]> series = new LinkedHashMap<>();
            for (int s = 0; s < sizes.size(); s++) {
                series.put(sizes.get(s) + " latents", learnedFraction(b, used, dictionaries.get(s)));
            }
            return Plots.line("concepts learned (F1 >= " + threshold + ") by token frequency",
                    used.stream().map(Result::bucketLabel).toList(), series);
        }

        private static List<Integer> usedBuckets(int[] b) {
            return Arrays.stream(b).distinct().sorted().boxed().toList();
        }

        private double[] learnedFraction(int[] b, List<Integer> used, Scores s) {
            double[] out = new double[used.size()];
            for (int i = 0; i < used.size(); i++) {
                int k = used.get(i), n = 0, hit = 0;
                for (int c = 0; c < b.length; c++) {
                    if (b[c] != k) continue;
                    n++;
                    if (s.f1()[c] >= threshold) hit++;
                }
                out[i] = (double) hit / n;
            }
            return out;
        }

        /**
         * One row per dictionary and decomposition: latents, those firing on a held-out token, mean best F1 over concepts, concepts learned, mean best
         * F1 over label concepts and over words, mean best AUROC.
         */
        public Table methodTable() {
            StringColumn method = StringColumn.create("method");
            IntColumn latents = IntColumn.create("latents"), alive = IntColumn.create("alive"),
                    learned = IntColumn.create("learned");
            DoubleColumn f1 = DoubleColumn.create("mean best F1"), labelF1 = DoubleColumn.create("labels F1"),
                    wordF1 = DoubleColumn.create("words F1"), auroc = DoubleColumn.create("mean best AUROC");
            List<Scores> all = new ArrayList<>(dictionaries);
            all.addAll(decompositions);
            for (Scores s : all) {
                method.append(s.method());
                latents.append(s.latents());
                alive.append(s.alive());
                f1.append(Numbers.significant(s.meanF1(), 3));
                learned.append(s.learned(threshold));
                labelF1.append(Numbers.significant(mean(s.f1(), false), 3));
                wordF1.append(Numbers.significant(mean(s.f1(), true), 3));
                auroc.append(Numbers.significant(s.meanAuroc(), 3));
            }
            return Table.create("concept recovery by method (" + concepts.size() + " concepts, learned: F1 >= "
                    + threshold + ")", method, latents, alive, f1, learned, labelF1, wordF1, auroc);
        }

        /** A method's scores by name ({@code sae-256}, {@code pca}, ...). */
        public Scores scores(String method) {
            List<Scores> all = new ArrayList<>(dictionaries);
            all.addAll(decompositions);
            return all.stream().filter(s -> s.method().equals(method)).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("no method '" + method + "'; methods: "
                            + all.stream().map(Scores::method).toList()));
        }

        private double mean(double[] v, boolean words) {
            double s = 0;
            int n = 0;
            for (int c = 0; c < concepts.size(); c++) {
                if (concepts.get(c).column().equals("word") == words) {
                    s += v[c];
                    n++;
                }
            }
            return n == 0 ? Double.NaN : s / n;
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("ConceptLearning(" + concepts.size() + " concepts; learned (F1 >= "
                    + threshold + "):");
            for (int s = 0; s < sizes.size(); s++) {
                sb.append(' ').append(sizes.get(s)).append(" latents ").append(dictionaries.get(s).learned(threshold));
            }
            for (Scores d : decompositions) sb.append(", ").append(d.method()).append(' ').append(d.learned(threshold));
            return sb.append(')').toString();
        }
    }

    /**
     * Harvests {@code hook} over the tokens after BOS of both example sets, trains one dictionary of kind {@code kind}
     * per size on the training rows (all on the same batches) and fits the decompositions on them, and scores
     * everything on the held-out rows.
     */
    public static Result run(HookedTransformer model, String hook, List<Example<TinyLang.Meta>> trainExamples,
                             List<Example<TinyLang.Meta>> evalExamples, List<Integer> sizes, SaeConfig.Kind kind,
                             SaeTrainConfig train, Options options) {
        ProbeData trainRows = TinyLangConcepts.harvest(model, hook, trainExamples, options.harvestBatch());
        ProbeData evalRows = TinyLangConcepts.harvest(model, hook, evalExamples, options.harvestBatch());
        return run(hook, trainRows.x(), evalRows.x(), concepts(evalExamples, options), sizes, kind, train, options);
    }

    /**
     * The concepts of {@code examples}' tokens after BOS, in order: every value of {@code options.labels()} and, when
     * {@code options.words()}, every word, on at least {@code minTokens} tokens and not on all. Keys are concept names,
     * the column is the part before {@code =}.
     */
    public static Map<String, boolean[]> concepts(List<? extends Example<?>> examples, Options options) {
        Map<String, boolean[]> out = new LinkedHashMap<>();
        if (!options.labels().isEmpty()) {
            out.putAll(LatentMatch.concepts(examples, options.labels(), new LatentMatch.ConceptOptions(true, 0)));
        }
        if (options.words()) {
            int n = 0;
            for (Example<?> e : examples) n += e.length() - 1;
            java.util.SortedSet<String> vocab = new java.util.TreeSet<>();
            for (Example<?> e : examples) vocab.addAll(e.tokens().subList(1, e.length()));
            Map<String, boolean[]> words = new TreeMap<>();
            for (String w : vocab) words.put("word=" + w, new boolean[n]);
            int row = 0;
            for (Example<?> e : examples) {
                for (int i = 1; i < e.length(); i++, row++) words.get("word=" + e.tokens().get(i))[row] = true;
            }
            out.putAll(words);
        }
        Map<String, boolean[]> kept = new LinkedHashMap<>();
        for (var e : out.entrySet()) {
            int c = count(e.getValue());
            if (c >= options.minTokens() && c < e.getValue().length) kept.put(e.getKey(), e.getValue());
        }
        if (kept.isEmpty()) {
            throw new IllegalArgumentException("no concept holds on " + options.minTokens() + " held-out tokens; give "
                    + "more examples or lower minTokens");
        }
        return kept;
    }

    /** The sweep and decompositions on given rows; {@code concepts} are over {@code evalRows}, in order. */
    public static Result run(String hook, float[][] trainRows, float[][] evalRows, Map<String, boolean[]> concepts,
                             List<Integer> sizes, SaeConfig.Kind kind, SaeTrainConfig train, Options options) {
        if (trainRows.length == 0 || evalRows.length == 0) throw new IllegalArgumentException("no rows");
        for (var e : concepts.entrySet()) {
            if (e.getValue().length != evalRows.length) {
                throw new IllegalArgumentException("concept '" + e.getKey() + "' has " + e.getValue().length
                        + " tokens, the held-out rows " + evalRows.length);
            }
        }
        // concepts by column (first appearance), then by frequency, most frequent first
        List<String> names = new ArrayList<>(concepts.keySet());
        List<String> columns = names.stream().map(ConceptLearning::column).distinct().toList();
        names.sort((a, b) -> {
            int ca = columns.indexOf(column(a)), cb = columns.indexOf(column(b));
            if (ca != cb) return Integer.compare(ca, cb);
            int c = Integer.compare(count(concepts.get(b)), count(concepts.get(a)));
            return c != 0 ? c : a.compareTo(b);
        });
        Map<String, boolean[]> ordered = new LinkedHashMap<>();
        List<Concept> list = new ArrayList<>();
        for (String n : names) {
            ordered.put(n, concepts.get(n));
            int c = count(concepts.get(n));
            list.add(new Concept(n, column(n), c, (double) c / evalRows.length));
        }
        List<Scores> dicts = dictionaries(hook, trainRows, evalRows, ordered, sizes, kind, train);
        List<Scores> decomps = decompositions(trainRows, evalRows, ordered, options);
        return new Result(hook, list, sizes, dicts, decomps, options.threshold());
    }

    /** One dictionary of {@code kind} per size, trained in one trainer on the same batches, scored on the concepts. */
    static List<Scores> dictionaries(String hook, float[][] trainRows, float[][] evalRows,
                                     Map<String, boolean[]> concepts, List<Integer> sizes, SaeConfig.Kind kind,
                                     SaeTrainConfig train) {
        if (sizes.isEmpty()) return List.of();
        int dIn = trainRows[0].length;
        List<SparseCoder> dicts = new ArrayList<>();
        try {
            SaeTrainer trainer = SaeTrainer.of(RowSource.of(trainRows, 0).withHookPoint(hook), train);
            for (int size : sizes) {
                SparseCoder d = SparseCoder.create(SaeConfig.of(dIn, size, kind), train.seed());
                dicts.add(d);
                trainer.add("sae-" + size, d);
            }
            try (trainer) {
                trainer.progress(ProgressSink.none());
                trainer.train();
            }
            List<Scores> out = new ArrayList<>();
            for (int i = 0; i < sizes.size(); i++) {
                out.add(score("sae-" + sizes.get(i), Latents.encode(dicts.get(i), evalRows), concepts));
            }
            return out;
        } finally {
            dicts.forEach(SparseCoder::close);
        }
    }

    /** Each of {@code options.methods()} fitted on (at most {@code fitRows} of) the training rows, scored on the concepts. */
    public static List<Scores> decompositions(float[][] trainRows, float[][] evalRows, Map<String, boolean[]> concepts,
                                              Options options) {
        List<Scores> out = new ArrayList<>();
        if (options.methods().isEmpty()) return out;
        double[][] fit = Pca.toDouble(subsample(trainRows, options.fitRows()));
        double[][] eval = Pca.toDouble(evalRows);
        for (Method m : options.methods()) {
            out.add(score(m.label(), latents(m, fit, eval, options), concepts));
        }
        return out;
    }

    /** A method's latent activations {@code [eval rows][latents]} after fitting on {@code fit}. */
    static float[][] latents(Method method, double[][] fit, double[][] eval, Options options) {
        int c = options.components(), d = fit[0].length;
        if ((method == Method.PCA || method == Method.ICA || method == Method.NMF) && c > d) {
            throw new IllegalArgumentException(method.label() + " has at most " + d + " components (the width of the "
                    + "activations), asked for " + c);
        }
        return switch (method) {
            case PCA -> signed(Pca.fit(fit, c).project(eval));
            case ICA -> signed(FastIca.fit(fit, c, options.seed(), options.iterations(), 1e-4).sources(eval));
            case NMF -> {
                double[] mean = Nmf.columnMeans(fit);
                Nmf nmf = Nmf.fit(Nmf.positivePart(fit, mean), c, options.seed(), options.iterations());
                yield toFloat(nmf.encode(Nmf.positivePart(eval, mean)));
            }
            case KMEANS, KMEANS_ASSIGNMENT -> {
                double[] mean = Nmf.columnMeans(fit);
                KMeans km = KMeans.fit(centre(fit, mean), c, options.seed(), options.iterations());
                double[][] centred = centre(eval, mean);
                float[][] out = new float[eval.length][c];
                if (method == Method.KMEANS_ASSIGNMENT) {
                    int[] a = km.assign(centred);
                    for (int i = 0; i < a.length; i++) out[i][a[i]] = 1f;
                } else {
                    double[][] dirs = new double[c][];
                    for (int k = 0; k < c; k++) {
                        double[] v = km.centroids()[k];
                        double norm = Math.sqrt(Arrays.stream(v).map(x -> x * x).sum());
                        dirs[k] = Arrays.stream(v).map(x -> norm > 0 ? x / norm : 0).toArray();
                    }
                    for (int i = 0; i < eval.length; i++) {
                        for (int k = 0; k < c; k++) {
                            double s = 0;
                            for (int j = 0; j < d; j++) s += centred[i][j] * dirs[k][j];
                            out[i][k] = (float) s;
                        }
                    }
                }
                yield out;
            }
        };
    }

    /** Best single latent per concept by F1 of its firing and AUROC of its activation. */
    static Scores score(String method, float[][] latents, Map<String, boolean[]> concepts) {
        List<RandomControl.Recovery> rec = RandomControl.conceptRecovery(latents, concepts);
        boolean[] fires = new boolean[latents[0].length];
        for (float[] row : latents) for (int j = 0; j < row.length; j++) if (row[j] > 0) fires[j] = true;
        int alive = 0;
        for (boolean f : fires) if (f) alive++;
        return new Scores(method, latents[0].length, alive, rec.stream().mapToDouble(RandomControl.Recovery::f1).toArray(),
                rec.stream().mapToDouble(RandomControl.Recovery::auroc).toArray());
    }

    /** Each projection {@code p} as two latents, {@code p} and {@code -p}. */
    static float[][] signed(double[][] p) {
        float[][] out = new float[p.length][];
        for (int i = 0; i < p.length; i++) {
            int k = p[i].length;
            out[i] = new float[2 * k];
            for (int c = 0; c < k; c++) {
                out[i][2 * c] = (float) p[i][c];
                out[i][2 * c + 1] = (float) -p[i][c];
            }
        }
        return out;
    }

    private static float[][] toFloat(double[][] a) {
        float[][] out = new float[a.length][];
        for (int i = 0; i < a.length; i++) {
            out[i] = new float[a[i].length];
            for (int j = 0; j < a[i].length; j++) out[i][j] = (float) a[i][j];
        }
        return out;
    }

    private static double[][] centre(double[][] x, double[] mean) {
        double[][] out = new double[x.length][mean.length];
        for (int i = 0; i < x.length; i++) for (int j = 0; j < mean.length; j++) out[i][j] = x[i][j] - mean[j];
        return out;
    }

    private static float[][] subsample(float[][] rows, int max) {
        if (rows.length <= max) return rows;
        float[][] out = new float[max][];
        for (int i = 0; i < max; i++) out[i] = rows[(int) ((long) i * rows.length / max)];
        return out;
    }

    private static String column(String concept) {
        int i = concept.indexOf('=');
        return i < 0 ? concept : concept.substring(0, i);
    }

    private static int count(boolean[] v) {
        int c = 0;
        for (boolean b : v) if (b) c++;
        return c;
    }
}
