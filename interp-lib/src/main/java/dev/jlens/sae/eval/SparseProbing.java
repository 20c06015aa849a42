package dev.jlens.sae.eval;

import dev.jlens.probe.ProbeTask;

import dev.jlens.probe.LinearProbe;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.ProbeMethod;
import dev.jlens.sae.SparseCoder;
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
import java.util.OptionalDouble;
import java.util.stream.Collectors;

/**
 * k-sparse probing (SAEBench's {@code sparse_probing}; Gurnee et al. 2023): per task, the k latents whose class means
 * differ most on the training rows ({@code |mean(1) - mean(0)|}), then a logistic probe on those k latents alone,
 * scored on the held-out rows; beside it a probe on all raw activation dimensions (the "LLM" probe), the same
 * selection on raw dimensions, and a probe on all latents. A dictionary whose concepts are single latents reaches
 * the full probe's accuracy at k = 1.
 *
 * <pre>{@code
 * SparseProbing.Result r = SparseProbing.run(sae, tasks, SparseProbing.Options.defaults());   // k = 1, 2, 5
 * display(r.toTable()); r.meanSaeTopK(1); r.meanLlm();
 * }</pre>
 */
public final class SparseProbing {
    private SparseProbing() {}

    /**
     * @param ks          the sparsities probed (SAEBench's {@code k_values}; each at least 1)
     * @param method      how the probes are fitted (logistic regression by default)
     * @param allLatents  also fit a probe on every latent ({@code sae_test_accuracy})
     * @param llmTopK     also probe the top-k raw dimensions ({@code llm_top_k_test_accuracy})
     */
    public record Options(List<Integer> ks, ProbeMethod method, boolean allLatents, boolean llmTopK) {
        /** Validates the sparsities. */
        public Options {
            ks = List.copyOf(ks);
            if (ks.isEmpty() || ks.stream().anyMatch(k -> k < 1)) {
                throw new IllegalArgumentException("ks must be one or more sparsities >= 1, got " + ks);
            }
            if (method == null) throw new IllegalArgumentException("method must not be null (ProbeMethod.logistic())");
        }

        /** k = 1, 2, 5; logistic probes; all-latent and raw top-k probes too. */
        public static Options defaults() {
            return new Options(List.of(1, 2, 5), ProbeMethod.logistic(), true, true);
        }

        /** The same with other sparsities. */
        public Options withKs(Integer... newKs) {
            return new Options(List.of(newKs), method, allLatents, llmTopK);
        }

        /** Without the probe on all latents (the slowest fit for a wide dictionary). */
        public Options withoutAllLatents() {
            return new Options(ks, method, false, llmTopK);
        }
    }

    /**
     * One task's test accuracies.
     *
     * @param task       the task's name
     * @param nTrain     training rows
     * @param nTest      test rows
     * @param llm        the probe on all raw dimensions
     * @param llmTopK    by k, the probe on the top-k raw dimensions (empty when not asked)
     * @param sae        the probe on all latents (empty when not asked)
     * @param saeTopK    by k, the probe on the top-k latents
     * @param latents    by k, the latents chosen (best first)
     */
    public record Row(String task, int nTrain, int nTest, double llm, Map<Integer, Double> llmTopK, OptionalDouble sae,
                      Map<Integer, Double> saeTopK, Map<Integer, int[]> latents) {
        /** Copies the maps. */
        public Row {
            llmTopK = Map.copyOf(llmTopK);
            saeTopK = Map.copyOf(saeTopK);
            latents = Map.copyOf(latents);
        }
    }

    /** Every task's accuracies. */
    public record Result(List<Row> rows, Options options) {
        /** Copies the rows. */
        public Result {
            rows = List.copyOf(rows);
        }

        /** Mean over tasks of the full raw probe's accuracy ({@code llm_test_accuracy}). */
        public double meanLlm() {
            return rows.stream().mapToDouble(Row::llm).average().orElse(Double.NaN);
        }

        /** Mean over tasks of the top-k latent probe's accuracy ({@code sae_top_k_test_accuracy}). */
        public double meanSaeTopK(int k) {
            requireK(k);
            return rows.stream().mapToDouble(r -> r.saeTopK().get(k)).average().orElse(Double.NaN);
        }

        /** Mean over tasks of the top-k raw-dimension probe's accuracy; empty when not measured. */
        public OptionalDouble meanLlmTopK(int k) {
            requireK(k);
            if (!options.llmTopK()) return OptionalDouble.empty();
            return rows.stream().mapToDouble(r -> r.llmTopK().get(k)).average();
        }

        /** Mean over tasks of the all-latent probe's accuracy; empty when not measured. */
        public OptionalDouble meanSae() {
            if (!options.allLatents()) return OptionalDouble.empty();
            return rows.stream().mapToDouble(r -> r.sae().orElseThrow()).average();
        }

        /** The mean accuracies by SAEBench's metric names ({@code llm_test_accuracy}, {@code sae_top_1_test_accuracy}, ...). */
        public Map<String, Double> metrics() {
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("llm_test_accuracy", meanLlm());
            for (int k : options.ks()) meanLlmTopK(k).ifPresent(v -> m.put("llm_top_" + k + "_test_accuracy", v));
            meanSae().ifPresent(v -> m.put("sae_test_accuracy", v));
            for (int k : options.ks()) m.put("sae_top_" + k + "_test_accuracy", meanSaeTopK(k));
            return m;
        }

        private void requireK(int k) {
            if (!options.ks().contains(k)) {
                throw new IllegalArgumentException("k = " + k + " was not probed; probed: " + options.ks());
            }
        }

        /** One row per task: sizes, the full probe, the top-k latent probes and the latents they read. */
        public Table toTable() {
            StringColumn task = StringColumn.create("task");
            IntColumn nTrain = IntColumn.create("n_train"), nTest = IntColumn.create("n_test");
            DoubleColumn llm = DoubleColumn.create("llm_accuracy");
            DoubleColumn sae = DoubleColumn.create("sae_all_accuracy");
            Map<Integer, DoubleColumn> top = new LinkedHashMap<>(), llmTop = new LinkedHashMap<>();
            Map<Integer, StringColumn> lat = new LinkedHashMap<>();
            for (int k : options.ks()) {
                top.put(k, DoubleColumn.create("sae_top_" + k + "_accuracy"));
                llmTop.put(k, DoubleColumn.create("llm_top_" + k + "_accuracy"));
            }
            int kMax = options.ks().stream().mapToInt(Integer::intValue).max().orElseThrow();
            lat.put(kMax, StringColumn.create("top_" + kMax + "_latents"));
            for (Row r : rows) {
                task.append(r.task());
                nTrain.append(r.nTrain());
                nTest.append(r.nTest());
                llm.append(r.llm());
                if (options.allLatents()) sae.append(r.sae().orElseThrow());
                for (int k : options.ks()) {
                    top.get(k).append(r.saeTopK().get(k));
                    if (options.llmTopK()) llmTop.get(k).append(r.llmTopK().get(k));
                }
                lat.get(kMax).append(Arrays.stream(r.latents().get(kMax)).mapToObj(Integer::toString)
                        .collect(Collectors.joining(" ")));
            }
            Table t = Table.create("k-sparse probing", task, nTrain, nTest, llm);
            if (options.llmTopK()) llmTop.values().forEach(t::addColumns);
            if (options.allLatents()) t.addColumns(sae);
            top.values().forEach(t::addColumns);
            t.addColumns(lat.get(kMax));
            return t;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "SparseProbing(%d tasks: llm %.3f, %s)", rows.size(), meanLlm(),
                    options.ks().stream().map(k -> String.format(Locale.ROOT, "top-%d %.3f", k, meanSaeTopK(k)))
                            .collect(Collectors.joining(", ")));
        }
    }

    /** Probes every task on {@code sae}'s latents and on the raw activations. */
    public static Result run(SparseCoder sae, List<ProbeTask> tasks, Options options) {
        if (tasks.isEmpty()) throw new IllegalArgumentException("no tasks to probe");
        List<Row> rows = new ArrayList<>();
        for (ProbeTask t : tasks) {
            if (t.dim() != sae.cfg().dIn()) {
                throw new IllegalArgumentException("task '" + t.name() + "' has " + t.dim() + "-wide rows; the dictionary "
                        + "reads " + sae.cfg().dIn());
            }
            float[][] fTrain = Latents.encode(sae, t.train().x()), fTest = Latents.encode(sae, t.test().x());
            rows.add(row(t, fTrain, fTest, options));
        }
        return new Result(rows, options);
    }

    /** Latent activations of raw rows {@code [n][dIn]} ({@code sae.encode}) as Java rows {@code [n][dSae]}. */
    public static float[][] latents(SparseCoder sae, float[][] rows) {
        return Latents.encode(sae, rows);
    }

    /** The top-{@code k} columns of {@code rows} by {@code |mean(label 1) - mean(label 0)|}, best first. */
    public static int[] topByMeanDifference(float[][] rows, int[] labels, int k) {
        int[] rank = Latents.rankByMeanDifference(rows, labels, true);
        return Arrays.copyOf(rank, Math.min(k, rank.length));
    }

    private static Row row(ProbeTask t, float[][] fTrain, float[][] fTest, Options o) {
        ProbeData train = t.train(), test = t.test();
        double llm = t.probe(o.method()).accuracy(test);
        Map<Integer, Double> llmTop = new LinkedHashMap<>(), saeTop = new LinkedHashMap<>();
        Map<Integer, int[]> chosen = new LinkedHashMap<>();
        int[] latentRank = Latents.rankByMeanDifference(fTrain, train.labels(), true);
        int[] dimRank = o.llmTopK() ? Latents.rankByMeanDifference(train.x(), train.labels(), true) : null;
        for (int k : o.ks()) {
            int[] cols = Arrays.copyOf(latentRank, Math.min(k, latentRank.length));
            chosen.put(k, cols);
            saeTop.put(k, accuracy(o.method(), Latents.columns(fTrain, cols), train, Latents.columns(fTest, cols), test));
            if (dimRank != null) {
                int[] dims = Arrays.copyOf(dimRank, Math.min(k, dimRank.length));
                llmTop.put(k, accuracy(o.method(), Latents.columns(train.x(), dims), train,
                        Latents.columns(test.x(), dims), test));
            }
        }
        OptionalDouble all = o.allLatents() ? OptionalDouble.of(accuracy(o.method(), fTrain, train, fTest, test))
                : OptionalDouble.empty();
        return new Row(t.name(), train.size(), test.size(), llm, llmTop, all, saeTop, chosen);
    }

    /** Test accuracy of a probe fitted on {@code xTrain} with {@code train}'s labels. */
    static double accuracy(ProbeMethod method, float[][] xTrain, ProbeData train, float[][] xTest, ProbeData test) {
        LinearProbe p = method.fit(ProbeData.of(xTrain, train.labels(), train.groups(), 2));
        return p.accuracy(ProbeData.of(xTest, test.labels(), test.groups(), 2));
    }
}
