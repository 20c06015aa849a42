package dev.jlens.sae.eval;

import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongFunction;
import java.util.stream.Collectors;

/**
 * An evaluation repeated over dictionaries trained with several seeds, with the spread across seeds: one seed's
 * number says little when another seed of the same recipe gives a different one.
 *
 * <pre>{@code
 * Seeds.Result r = Seeds.run(List.of(0L, 1L, 2L), seed -> {
 *     try (SparseCoder sae = train(seed)) {
 *         return Absorption.run(sae, parents, Absorption.Options.defaults()).metrics();
 *     }
 * });
 * display(r.toTable());   // metric, mean, sd, min, max over seeds
 * }</pre>
 */
public final class Seeds {
    private Seeds() {}

    /**
     * The metrics of every seed, in the order run.
     *
     * @param seeds   the seeds
     * @param metrics one map per seed, metric name to value (every seed the same names)
     */
    public record Result(List<Long> seeds, List<Map<String, Double>> metrics) {
        /** Copies the lists and checks that every seed reports the same metrics. */
        public Result {
            seeds = List.copyOf(seeds);
            metrics = metrics.stream().map(m -> (Map<String, Double>) new LinkedHashMap<>(m)).toList();
            if (seeds.size() != metrics.size() || seeds.isEmpty()) {
                throw new IllegalArgumentException("one metrics map per seed needed: " + seeds.size() + " seeds, "
                        + metrics.size() + " maps");
            }
            for (int i = 1; i < metrics.size(); i++) {
                if (!metrics.get(i).keySet().equals(metrics.get(0).keySet())) {
                    throw new IllegalArgumentException("seed " + seeds.get(i) + " reports " + metrics.get(i).keySet()
                            + ", seed " + seeds.get(0) + " " + metrics.get(0).keySet());
                }
            }
        }

        /** The metric names. */
        public List<String> names() {
            return List.copyOf(metrics.get(0).keySet());
        }

        /** One metric's values, one per seed. */
        public double[] values(String metric) {
            if (!metrics.get(0).containsKey(metric)) {
                throw new IllegalArgumentException("no metric '" + metric + "'; metrics: " + names());
            }
            return metrics.stream().mapToDouble(m -> m.get(metric)).toArray();
        }

        /** Mean over seeds. */
        public double mean(String metric) {
            return Seeds.mean(values(metric));
        }

        /** Sample standard deviation over seeds (0 for one seed). */
        public double sd(String metric) {
            return Seeds.sd(values(metric));
        }

        /** Per metric: mean, sample standard deviation, min and max over the seeds, and their number. */
        public Table toTable() {
            StringColumn name = StringColumn.create("metric");
            DoubleColumn mean = DoubleColumn.create("mean"), sd = DoubleColumn.create("sd");
            DoubleColumn min = DoubleColumn.create("min"), max = DoubleColumn.create("max");
            IntColumn n = IntColumn.create("seeds");
            for (String m : names()) {
                double[] v = values(m);
                name.append(m);
                mean.append(Seeds.mean(v));
                sd.append(Seeds.sd(v));
                min.append(java.util.Arrays.stream(v).min().orElseThrow());
                max.append(java.util.Arrays.stream(v).max().orElseThrow());
                n.append(v.length);
            }
            return Table.create("over seeds " + seeds, name, mean, sd, min, max, n);
        }

        /** One row per seed, one column per metric. */
        public Table perSeed() {
            Table t = Table.create("per seed");
            IntColumn seed = IntColumn.create("seed");
            seeds.forEach(s -> seed.append(s.intValue()));
            t.addColumns(seed);
            for (String m : names()) t.addColumns(DoubleColumn.create(m, values(m)));
            return t;
        }

        @Override
        public String toString() {
            return "Seeds(" + seeds + ": " + names().stream().map(m -> String.format(Locale.ROOT, "%s %.4g ± %.2g", m,
                    mean(m), sd(m))).collect(Collectors.joining(", ")) + ")";
        }
    }

    /** Runs {@code evaluation} once per seed (it trains or loads that seed's dictionary and returns its metrics). */
    public static Result run(List<Long> seeds, LongFunction<Map<String, Double>> evaluation) {
        if (seeds.isEmpty()) throw new IllegalArgumentException("no seeds to run");
        List<Map<String, Double>> out = new ArrayList<>();
        for (long s : seeds) out.add(evaluation.apply(s));
        return new Result(seeds, out);
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return v.length == 0 ? Double.NaN : s / v.length;
    }

    static double sd(double[] v) {
        if (v.length < 2) return 0;
        double m = mean(v), ss = 0;
        for (double x : v) ss += (x - m) * (x - m);
        return Math.sqrt(ss / (v.length - 1));
    }
}
