package dev.jlens.geometry;

import static dev.jlens.util.Vectors.dot;

import dev.jlens.probe.Metrics;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.ProbeTask;
import dev.jlens.util.Vectors;
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
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import java.util.SplittableRandom;

/**
 * Superposition of many binary concepts at one hook: are more concepts linearly readable than the hook has
 * dimensions, how much do their directions interfere, and would a smaller orthogonal set of directions do?
 *
 * <p>For every concept (rows labelled 1 where it holds, with train and held-out rows shared by all concepts):
 * <ul>
 * <li>its <b>write direction</b>, the difference of class means (where the concept moves the activations; for
 * independent sparse features {@code x = Σ s_i f_i} it is {@code E[s_i | on] f_i}), and its <b>probe</b>, linear
 * discriminant analysis {@code w = (Σ + s I)^-1 (μ1 - μ0)} with the training rows' total covariance (for two classes
 * the same direction as with the within-class covariance), scored by held-out AUROC. A concept is <b>represented</b>
 * when that AUROC is at least {@link Options#threshold};</li>
 * <li><b>interference</b>: each represented concept's largest and mean {@code |cos|} with the other represented
 * concepts' write directions, beside the same for as many random Gaussian directions in {@code d} dimensions and
 * the Welch bound {@code sqrt((N - d) / (d (N - 1)))}, the least largest {@code |cos|} any {@code N > d} unit
 * vectors can have;</li>
 * <li><b>an orthogonal basis of r directions</b>: the same probe on the rows projected onto the top {@code r}
 * principal components of the training rows, for each {@code r} of {@link Options#ranks}; a concept needs the
 * least {@code r} whose AUROC is within {@link Options#epsilon} of its full AUROC (at {@code r = d} the projection is
 * a rotation, so the AUROC is the full one).</li>
 * </ul>
 * One eigendecomposition of the training covariance serves every concept and rank: in the principal basis the
 * covariance is diagonal, so each probe is a sum over components.
 *
 * <pre>{@code
 * ProbeData rows = TinyLangConcepts.harvest(model, "blocks.1.hook_resid_post", examples, 16);
 * List<ProbeTask> tasks = TinyLangConcepts.all(rows, examples, 20);
 * ConceptSuperposition.Result r = ConceptSuperposition.measure(tasks, ConceptSuperposition.Options.defaults());
 * r.summary(); r.summaryTable(); r.toTable(); r.rankTable(); r.interferenceChart(); r.rankChart();
 * }</pre>
 */
public final class ConceptSuperposition {
    private ConceptSuperposition() {}

    /**
     * Settings.
     *
     * @param threshold held-out AUROC at which a concept counts as represented
     * @param epsilon   AUROC a projection may lose and still keep a concept
     * @param ranks     subspace sizes to try (clipped to {@code d}; {@code d} itself is always added)
     * @param shrinkage ridge on the covariance, as a fraction of its mean eigenvalue
     * @param seed      seed of the random directions
     */
    public record Options(double threshold, double epsilon, List<Integer> ranks, double shrinkage, long seed) {
        /** Checks the settings. */
        public Options {
            if (!(threshold > 0.5 && threshold <= 1)) {
                throw new IllegalArgumentException("threshold is an AUROC in (0.5, 1], got " + threshold);
            }
            if (!(epsilon >= 0 && epsilon < 0.5)) throw new IllegalArgumentException("epsilon must be in [0, 0.5), got " + epsilon);
            if (ranks == null || ranks.isEmpty()) throw new IllegalArgumentException("give at least one rank, e.g. [8, 16, 32]");
            for (int r : ranks) if (r < 1) throw new IllegalArgumentException("ranks must be >= 1, got " + ranks);
            if (!(shrinkage > 0)) throw new IllegalArgumentException("shrinkage must be > 0, got " + shrinkage);
            ranks = List.copyOf(ranks);
        }

        /** AUROC 0.9, ε 0.02, ranks 8, 16, 32, 64, 128, shrinkage 1e-3, seed 0. */
        public static Options defaults() {
            return new Options(0.9, 0.02, List.of(8, 16, 32, 64, 128), 1e-3, 0);
        }

        /** The same with other ranks. */
        public Options withRanks(List<Integer> r) {
            return new Options(threshold, epsilon, r, shrinkage, seed);
        }

        /** The same with another AUROC threshold and ε. */
        public Options withThreshold(double t, double eps) {
            return new Options(t, eps, ranks, shrinkage, seed);
        }
    }

    /**
     * One concept.
     *
     * @param name        the concept
     * @param trainPositives training rows where it holds
     * @param testPositives held-out rows where it holds
     * @param auroc       held-out AUROC of its probe on all {@code d} dimensions
     * @param aurocAtRank held-out AUROC on the top {@code r} principal components, one per {@link Result#ranks}
     * @param dimsNeeded  the least rank whose AUROC is within ε of {@code auroc}
     * @param maxAbsCos   largest {@code |cos|} of its write direction with another represented concept's
     * @param meanAbsCos  mean {@code |cos|} with the other represented concepts
     * @param nearest     the represented concept of that largest {@code |cos|} ({@code ""} when there is none)
     * @param direction   unit write direction (difference of means) {@code [d]}
     * @param probe       unit probe direction {@code [d]}
     */
    public record Concept(String name, int trainPositives, int testPositives, double auroc, double[] aurocAtRank,
                          OptionalInt dimsNeeded, double maxAbsCos, double meanAbsCos, String nearest,
                          float[] direction, float[] probe) {
        /** Whether the held-out AUROC reaches {@code threshold}. */
        public boolean represented(double threshold) {
            return auroc >= threshold;
        }
    }

    /**
     * The measurement.
     *
     * @param d           dimensions of the hook
     * @param ranks       subspace sizes tried, increasing, the last {@code d}
     * @param options     the settings
     * @param concepts    every concept, in the order given
     * @param randomMaxAbsCos per random direction, its largest {@code |cos|} with the others (as many as represented concepts)
     * @param randomMeanAbsCos per random direction, its mean {@code |cos|}
     * @param conceptPairCos {@code |cos|} of every pair of represented concepts
     * @param randomPairCos  {@code |cos|} of every pair of the random directions
     * @param explained   fraction of the training variance in the top {@code r} components, per rank
     */
    public record Result(int d, int[] ranks, Options options, List<Concept> concepts, double[] randomMaxAbsCos,
                         double[] randomMeanAbsCos, double[] conceptPairCos, double[] randomPairCos,
                         double[] explained) {
        /** Copies the list. */
        public Result {
            concepts = List.copyOf(concepts);
        }

        /** The concepts whose held-out AUROC reaches the threshold. */
        public List<Concept> represented() {
            return concepts.stream().filter(c -> c.represented(options.threshold())).toList();
        }

        /** One concept by name. */
        public Concept concept(String name) {
            for (Concept c : concepts) if (c.name().equals(name)) return c;
            throw new IllegalArgumentException("no concept '" + name + "'; there are " + concepts.size()
                    + ", e.g. " + concepts.stream().limit(8).map(Concept::name).toList());
        }

        /** The Welch bound for as many unit vectors as represented concepts in {@code d} dimensions. */
        public double welchBound() {
            return ConceptSuperposition.welchBound(represented().size(), d);
        }

        /** Mean over represented concepts of their largest {@code |cos|}. */
        public double meanMaxAbsCos() {
            return represented().stream().mapToDouble(Concept::maxAbsCos).average().orElse(Double.NaN);
        }

        /**
         * Mean over represented concepts of their probe direction's largest {@code |cos|} with another represented
         * concept's probe: one-vs-rest write directions share the parts of a hierarchy (a word's and its class's),
         * probes less so.
         */
        public double meanMaxAbsCosProbes() {
            List<Concept> rep = represented();
            double sum = 0;
            for (Concept a : rep) {
                double mx = 0;
                for (Concept b : rep) if (a != b) mx = Math.max(mx, Math.abs(Vectors.cosine(a.probe(), b.probe())));
                sum += mx;
            }
            return rep.size() < 2 ? Double.NaN : sum / rep.size();
        }

        /** Mean over represented concepts of their mean {@code |cos|}. */
        public double meanMeanAbsCos() {
            return represented().stream().mapToDouble(Concept::meanAbsCos).average().orElse(Double.NaN);
        }

        /** The same for the random directions. */
        public double randomMeanMaxAbsCos() {
            return Arrays.stream(randomMaxAbsCos).average().orElse(Double.NaN);
        }

        /** Mean {@code |cos|} of the random directions. */
        public double randomMeanMeanAbsCos() {
            return Arrays.stream(randomMeanAbsCos).average().orElse(Double.NaN);
        }

        /** Of the represented concepts, the fraction whose AUROC on the top {@code ranks[i]} components is within ε. */
        public double[] keptFraction() {
            List<Concept> rep = represented();
            double[] f = new double[ranks.length];
            for (int i = 0; i < ranks.length; i++) {
                int r = ranks[i];
                f[i] = rep.isEmpty() ? Double.NaN
                        : rep.stream().filter(c -> c.dimsNeeded().isPresent() && c.dimsNeeded().getAsInt() <= r).count()
                        / (double) rep.size();
            }
            return f;
        }

        /** The least rank that keeps every represented concept within ε (the last rank, {@code d}, always does). */
        public int dimsForAll() {
            double[] f = keptFraction();
            for (int i = 0; i < ranks.length; i++) if (f[i] >= 1) return ranks[i];
            return d;
        }

        /** Represented concepts per dimension. */
        public double conceptsPerDimension() {
            return represented().size() / (double) d;
        }

        /** The finding in one paragraph, with the numbers. */
        public String summary() {
            int n = represented().size();
            return String.format(Locale.ROOT, "%d of %d concepts represented (held-out AUROC >= %.2f) in d = %d "
                            + "dimensions (%.2f per dimension). Their write directions: mean largest |cos| %.3f, "
                            + "mean |cos| %.3f (probes: largest %.3f); %d random directions in %d dims: %.3f and %.3f; Welch bound %.3f. "
                            + "Top-r principal components keep (AUROC within %.2f) %s of them; all need r = %d.",
                    n, concepts.size(), options.threshold(), d, conceptsPerDimension(), meanMaxAbsCos(),
                    meanMeanAbsCos(), meanMaxAbsCosProbes(), randomMaxAbsCos.length, d, randomMeanMaxAbsCos(), randomMeanMeanAbsCos(),
                    welchBound(), options.epsilon(), keptText(), dimsForAll());
        }

        private String keptText() {
            StringBuilder s = new StringBuilder();
            double[] f = keptFraction();
            for (int i = 0; i < ranks.length; i++) {
                if (i > 0) s.append(", ");
                s.append(String.format(Locale.ROOT, "r=%d: %.0f%%", ranks[i], 100 * f[i]));
            }
            return s.toString();
        }

        /** One row per concept: positives, AUROC (full and per rank), dims needed, interference. */
        public Table toTable() {
            StringColumn name = StringColumn.create("concept"), near = StringColumn.create("nearest");
            IntColumn pos = IntColumn.create("test positives"), need = IntColumn.create("dims needed");
            DoubleColumn auc = DoubleColumn.create("AUROC"), mx = DoubleColumn.create("max |cos|"),
                    mean = DoubleColumn.create("mean |cos|");
            List<DoubleColumn> perRank = new ArrayList<>();
            for (int r : ranks) perRank.add(DoubleColumn.create("AUROC r=" + r));
            for (Concept c : concepts) {
                name.append(c.name());
                pos.append(c.testPositives());
                auc.append(round(c.auroc()));
                for (int i = 0; i < ranks.length; i++) perRank.get(i).append(round(c.aurocAtRank()[i]));
                if (c.dimsNeeded().isPresent()) need.append(c.dimsNeeded().getAsInt());
                else need.appendMissing();
                mx.append(round(c.maxAbsCos()));
                mean.append(round(c.meanAbsCos()));
                near.append(c.nearest());
            }
            Table t = Table.create("concepts at d = " + d, name, pos, auc);
            perRank.forEach(t::addColumns);
            return t.addColumns(need, mx, mean, near);
        }

        /** The summary numbers as rows of name and value. */
        public Table summaryTable() {
            StringColumn what = StringColumn.create("measure");
            DoubleColumn v = DoubleColumn.create("value");
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("concepts", (double) concepts.size());
            m.put("represented (AUROC >= " + options.threshold() + ")", (double) represented().size());
            m.put("d", (double) d);
            m.put("represented per dimension", conceptsPerDimension());
            m.put("mean max |cos|, concepts", meanMaxAbsCos());
            m.put("mean max |cos|, random", randomMeanMaxAbsCos());
            m.put("mean max |cos|, probes", meanMaxAbsCosProbes());
            m.put("mean |cos|, concepts", meanMeanAbsCos());
            m.put("mean |cos|, random", randomMeanMeanAbsCos());
            m.put("Welch bound", welchBound());
            m.put("dims keeping all within eps", (double) dimsForAll());
            for (var e : m.entrySet()) {
                what.append(e.getKey());
                v.append(round(e.getValue()));
            }
            return Table.create("superposition summary", what, v);
        }

        /** One row per rank: variance explained, represented concepts kept, mean AUROC. */
        public Table rankTable() {
            IntColumn r = IntColumn.create("r");
            DoubleColumn var = DoubleColumn.create("variance explained"), kept = DoubleColumn.create("kept fraction"),
                    auc = DoubleColumn.create("mean AUROC (represented)");
            double[] f = keptFraction();
            List<Concept> rep = represented();
            for (int i = 0; i < ranks.length; i++) {
                int k = i;
                r.append(ranks[i]);
                var.append(round(explained[i]));
                kept.append(round(f[i]));
                auc.append(round(rep.stream().mapToDouble(c -> c.aurocAtRank()[k]).average().orElse(Double.NaN)));
            }
            return Table.create("top-r principal components", r, var, kept, auc);
        }

        /** Histogram of pairwise {@code |cos|}: represented concepts beside random directions (fractions of pairs). */
        public CategoryChart interferenceChart() {
            int bins = 20;
            double hi = 0;
            for (double c : conceptPairCos) hi = Math.max(hi, c);
            for (double c : randomPairCos) hi = Math.max(hi, c);
            hi = Math.max(hi, 1e-9);
            List<String> labels = new ArrayList<>();
            for (int b = 0; b < bins; b++) labels.add(String.format(Locale.ROOT, "%.2f", (b + 0.5) * hi / bins));
            Map<String, double[]> s = new LinkedHashMap<>();
            s.put("concepts", histogram(conceptPairCos, bins, hi));
            s.put("random", histogram(randomPairCos, bins, hi));
            return Plots.bar("|cos| between directions (d = " + d + ")", labels, s);
        }

        /** Fraction of represented concepts kept and mean AUROC against the number of principal components. */
        public CategoryChart rankChart() {
            List<String> labels = Arrays.stream(ranks).mapToObj(Integer::toString).toList();
            Map<String, double[]> s = new LinkedHashMap<>();
            s.put("kept within eps", keptFraction());
            List<Concept> rep = represented();
            double[] auc = new double[ranks.length];
            for (int i = 0; i < ranks.length; i++) {
                int k = i;
                auc[i] = rep.stream().mapToDouble(c -> c.aurocAtRank()[k]).average().orElse(Double.NaN);
            }
            s.put("mean AUROC", auc);
            s.put("variance explained", explained.clone());
            return Plots.line("concepts on the top-r principal components", labels, s);
        }

        @Override
        public String toString() {
            return "ConceptSuperposition(" + summary() + ")";
        }
    }

    /** The Welch bound on the largest {@code |cos|} among {@code n} unit vectors in {@code d} dimensions (0 if n <= d). */
    public static double welchBound(int n, int d) {
        if (n <= d || n < 2) return 0;
        return Math.sqrt((n - d) / ((double) d * (n - 1)));
    }

    /**
     * Measures concepts given as tasks that share their rows (the same train and test row arrays, as
     * {@code TinyLangConcepts} builds them from one harvest).
     */
    public static Result measure(List<ProbeTask> tasks, Options options) {
        if (tasks.isEmpty()) throw new IllegalArgumentException("no concepts to measure");
        ProbeData train = tasks.get(0).train(), test = tasks.get(0).test();
        Map<String, boolean[]> trainLabels = new LinkedHashMap<>(), testLabels = new LinkedHashMap<>();
        for (ProbeTask t : tasks) {
            if (!sameRows(t.train(), train) || !sameRows(t.test(), test)) {
                throw new IllegalArgumentException("task '" + t.name() + "' has other rows than '" + tasks.get(0).name()
                        + "': every concept must label the same train and test rows (one harvest)");
            }
            if (trainLabels.containsKey(t.name())) throw new IllegalArgumentException("two tasks are named '" + t.name() + "'");
            trainLabels.put(t.name(), positives(t.train().labels()));
            testLabels.put(t.name(), positives(t.test().labels()));
        }
        return measure(train.x(), test.x(), trainLabels, testLabels, options);
    }

    /**
     * Measures concepts over shared rows: {@code trainLabels} and {@code testLabels} hold, per concept, where it holds
     * on {@code trainX} and {@code testX}. Concepts with no positive or no negative row on either side are rejected.
     */
    public static Result measure(float[][] trainX, float[][] testX, Map<String, boolean[]> trainLabels,
                                 Map<String, boolean[]> testLabels, Options options) {
        if (trainX.length < 2 || testX.length < 2) {
            throw new IllegalArgumentException("need at least 2 train and 2 test rows, got " + trainX.length + " and "
                    + testX.length);
        }
        int d = trainX[0].length;
        if (testX[0].length != d) throw new IllegalArgumentException("train rows have " + d + " values, test rows " + testX[0].length);
        if (!trainLabels.keySet().equals(testLabels.keySet())) {
            throw new IllegalArgumentException("train and test labels name different concepts: " + trainLabels.keySet()
                    + " and " + testLabels.keySet());
        }
        int[] ranks = ranks(options.ranks(), d);
        Pca pca = Pca.fit(trainX, d);
        double[] var = pca.variances();
        double meanVar = pca.totalVariance() / d;
        double ridge = options.shrinkage() * Math.max(meanVar, 1e-12);
        double[][] zTrain = pca.project(Pca.toDouble(trainX));   // [n][d] principal coordinates, centred
        double[][] zTest = pca.project(Pca.toDouble(testX));
        double[] explained = new double[ranks.length];
        double[] cum = new double[d + 1];
        for (int i = 0; i < d; i++) cum[i + 1] = cum[i] + var[i];
        for (int i = 0; i < ranks.length; i++) explained[i] = pca.totalVariance() > 0 ? cum[ranks[i]] / pca.totalVariance() : 0;

        List<String> names = new ArrayList<>(trainLabels.keySet());
        int n = names.size();
        double[][] dirs = new double[n][];
        double[] aucs = new double[n];
        double[][] aucAt = new double[n][ranks.length];
        int[][] counts = new int[n][2];
        float[][] probes = new float[n][];
        for (int c = 0; c < n; c++) {
            String name = names.get(c);
            boolean[] ytr = trainLabels.get(name), yte = testLabels.get(name);
            if (ytr.length != trainX.length || yte.length != testX.length) {
                throw new IllegalArgumentException("concept '" + name + "' labels " + ytr.length + " train and "
                        + yte.length + " test rows; there are " + trainX.length + " and " + testX.length);
            }
            int ptr = count(ytr), pte = count(yte);
            if (ptr == 0 || ptr == ytr.length || pte == 0 || pte == yte.length) {
                throw new IllegalArgumentException("concept '" + name + "' needs positive and negative rows on both "
                        + "sides; it holds on " + ptr + " of " + ytr.length + " train and " + pte + " of " + yte.length
                        + " test rows");
            }
            counts[c][0] = ptr;
            counts[c][1] = pte;
            // the difference of means in principal coordinates
            double[] delta = new double[d];
            double[] m0 = new double[d];
            for (int i = 0; i < zTrain.length; i++) {
                double[] target = ytr[i] ? delta : m0;
                for (int j = 0; j < d; j++) target[j] += zTrain[i][j];
            }
            for (int j = 0; j < d; j++) delta[j] = delta[j] / ptr - m0[j] / (ytr.length - ptr);
            // LDA: diagonal covariance in this basis; score_r(x) = Σ_{j<r} z_j delta_j / (var_j + ridge)
            double[] coef = new double[d];
            for (int j = 0; j < d; j++) coef[j] = delta[j] / (var[j] + ridge);
            double[][] scores = new double[ranks.length][zTest.length];
            for (int i = 0; i < zTest.length; i++) {
                double s = 0;
                int ri = 0;
                for (int j = 0; j < d; j++) {
                    s += zTest[i][j] * coef[j];
                    while (ri < ranks.length && ranks[ri] == j + 1) scores[ri++][i] = s;
                }
            }
            int[] labels = new int[yte.length];
            for (int i = 0; i < labels.length; i++) labels[i] = yte[i] ? 1 : 0;
            for (int ri = 0; ri < ranks.length; ri++) aucAt[c][ri] = Metrics.auroc(scores[ri], labels);
            aucs[c] = aucAt[c][ranks.length - 1];
            dirs[c] = backToRaw(pca, delta);
            probes[c] = toFloat(unitD(backToRaw(pca, coef)));
        }
        boolean[] rep = new boolean[n];
        int nRep = 0;
        for (int c = 0; c < n; c++) if (rep[c] = aucs[c] >= options.threshold()) nRep++;
        double[][] units = new double[n][];
        for (int c = 0; c < n; c++) units[c] = unitD(dirs[c]);
        double[] maxCos = new double[n], meanCos = new double[n];
        String[] nearest = new String[n];
        List<Double> pairCos = new ArrayList<>();
        for (int a = 0; a < n; a++) {
            double mx = 0, sum = 0;
            int cnt = 0, arg = -1;
            for (int b = 0; b < n; b++) {
                if (a == b || !rep[b]) continue;
                double cos = Math.abs(dot(units[a], units[b]));
                sum += cos;
                cnt++;
                if (cos > mx || arg < 0) {
                    mx = cos;
                    arg = b;
                }
                if (rep[a] && b > a) pairCos.add(cos);
            }
            maxCos[a] = cnt == 0 ? Double.NaN : mx;
            meanCos[a] = cnt == 0 ? Double.NaN : sum / cnt;
            nearest[a] = arg < 0 ? "" : names.get(arg);
        }
        // the random control: as many Gaussian directions as represented concepts
        int nr = Math.max(nRep, 2);
        SplittableRandom rng = new SplittableRandom(options.seed());
        double[][] rnd = new double[nr][d];
        for (double[] v : rnd) {
            for (int j = 0; j < d; j++) v[j] = gaussian(rng);
            double[] u = unitD(v);
            System.arraycopy(u, 0, v, 0, d);
        }
        double[] rMax = new double[nr], rMean = new double[nr];
        List<Double> rPair = new ArrayList<>();
        for (int a = 0; a < nr; a++) {
            double mx = 0, sum = 0;
            for (int b = 0; b < nr; b++) {
                if (a == b) continue;
                double cos = Math.abs(dot(rnd[a], rnd[b]));
                mx = Math.max(mx, cos);
                sum += cos;
                if (b > a) rPair.add(cos);
            }
            rMax[a] = mx;
            rMean[a] = sum / (nr - 1);
        }
        List<Concept> out = new ArrayList<>();
        for (int c = 0; c < n; c++) {
            OptionalInt need = OptionalInt.empty();
            for (int ri = 0; ri < ranks.length; ri++) {
                if (aucAt[c][ri] >= aucs[c] - options.epsilon()) {
                    need = OptionalInt.of(ranks[ri]);
                    break;
                }
            }
            out.add(new Concept(names.get(c), counts[c][0], counts[c][1], aucs[c], aucAt[c], need, maxCos[c],
                    meanCos[c], nearest[c], toFloat(units[c]), probes[c]));
        }
        return new Result(d, ranks, options, out, rMax, rMean, pairCos.stream().mapToDouble(Double::doubleValue).toArray(),
                rPair.stream().mapToDouble(Double::doubleValue).toArray(), explained);
    }

    // ---------------------------------------------------------------------------------------------- helpers

    private static boolean sameRows(ProbeData a, ProbeData b) {
        if (a.x() == b.x()) return true;
        if (a.size() != b.size()) return false;
        for (int i = 0; i < a.size(); i++) if (a.x()[i] != b.x()[i] && !Arrays.equals(a.x()[i], b.x()[i])) return false;
        return true;
    }

    private static boolean[] positives(int[] labels) {
        boolean[] b = new boolean[labels.length];
        for (int i = 0; i < b.length; i++) b[i] = labels[i] == 1;
        return b;
    }

    private static int count(boolean[] b) {
        int c = 0;
        for (boolean v : b) if (v) c++;
        return c;
    }

    /** The ranks at most {@code d}, sorted and distinct, ending with {@code d}. */
    private static int[] ranks(List<Integer> asked, int d) {
        java.util.TreeSet<Integer> s = new java.util.TreeSet<>();
        for (int r : asked) if (r <= d) s.add(r);
        s.add(d);
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    /** A vector given in principal coordinates, in the raw basis. */
    private static double[] backToRaw(Pca pca, double[] z) {
        double[][] comps = pca.components();
        int d = comps[0].length;
        double[] v = new double[d];
        for (int k = 0; k < comps.length; k++) for (int j = 0; j < d; j++) v[j] += z[k] * comps[k][j];
        return v;
    }

    private static double[] unitD(double[] v) {
        double n = Math.sqrt(dot(v, v));
        double[] u = new double[v.length];
        if (n > 0) for (int j = 0; j < v.length; j++) u[j] = v[j] / n;
        return u;
    }

    private static double gaussian(SplittableRandom r) {
        double u = 1 - r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    private static float[] toFloat(double[] v) {
        float[] f = new float[v.length];
        for (int j = 0; j < v.length; j++) f[j] = (float) v[j];
        return f;
    }

    private static double[] histogram(double[] values, int bins, double hi) {
        double[] h = new double[bins];
        for (double v : values) h[Math.min(bins - 1, (int) (v / hi * bins))]++;
        if (values.length > 0) for (int b = 0; b < bins; b++) h[b] /= values.length;
        return h;
    }

    private static double round(double v) {
        return Double.isNaN(v) ? v : Math.round(v * 1000) / 1000.0;
    }
}
