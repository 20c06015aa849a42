package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
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
import java.util.Optional;

/**
 * Probes at many hook points from one pass over the data: every batch runs once through {@code runWithCache}
 * recording all the hook points, the labelled positions' activations become one {@link ProbeData} per hook point,
 * and each is cross-validated with its control task.
 *
 * <pre>{@code
 * var sweep = LayerSweep.run(model, "resid_post", List.of(0, 1, 2, 3), batches, labeller,
 *         LayerSweep.Options.defaults());           // logistic, 5 grouped folds, seed 0
 * sweep.toTable();  sweep.plot();  sweep.fit("blocks.2.hook_resid_post");
 * }</pre>
 */
public final class LayerSweep {

    /**
     * How each hook point is probed.
     *
     * @param method the probe
     * @param folds  grouped cross-validation folds
     * @param seed   seed of the folds and of the control labels
     */
    public record Options(ProbeMethod method, int folds, long seed) {
        /** Validates the settings. */
        public Options {
            if (method == null) throw new IllegalArgumentException("method must not be null (e.g. ProbeMethod.logistic())");
            if (folds < 2) throw new IllegalArgumentException("folds must be >= 2, got " + folds);
        }

        /** Logistic regression, 5 folds, seed 0. */
        public static Options defaults() {
            return new Options(ProbeMethod.logistic(), 5, 0);
        }

        /** The same options with another method. */
        public Options withMethod(ProbeMethod m) {
            return new Options(m, folds, seed);
        }
    }

    /** One hook point's result. */
    public record Entry(String hook, ProbeData data, ProbeReport report) {}

    private final List<Entry> entries;
    private final Options options;

    private LayerSweep(List<Entry> entries, Options options) {
        this.entries = List.copyOf(entries);
        this.options = options;
    }

    /** Probes the hook point {@code shortName} ({@code "resid_post"}) of each layer in {@code layers}. */
    public static LayerSweep run(HookedTransformer model, String shortName, List<Integer> layers, List<Batch> batches,
            TokenLabeller labeller, Options options) {
        if (layers == null || layers.isEmpty()) throw new IllegalArgumentException("give at least one layer");
        List<String> hooks = new ArrayList<>();
        for (int l : layers) hooks.add(model.actName(shortName, l));
        return run(model, hooks, batches, labeller, options);
    }

    /** Probes each named hook point (full names; an unknown one throws naming the nearest). */
    public static LayerSweep run(HookedTransformer model, List<String> hookNames, List<Batch> batches,
            TokenLabeller labeller, Options options) {
        Map<String, ProbeData> data = collect(model, hookNames, batches, labeller);
        List<Entry> out = new ArrayList<>();
        for (Map.Entry<String, ProbeData> e : data.entrySet()) {
            out.add(new Entry(e.getKey(), e.getValue(),
                    ProbeReport.evaluate(e.getValue(), options.method(), options.folds(), options.seed())));
        }
        return new LayerSweep(out, options);
    }

    /** Equal-length token batches, one array of sequences each. */
    public static List<Batch> batches(List<long[][]> tokenBatches) {
        List<Batch> out = new ArrayList<>();
        for (long[][] b : tokenBatches) out.add(Batch.of(b));
        return out;
    }

    /**
     * The labelled positions' activations at each hook point, from one {@code runWithCache} per batch: a
     * {@link ProbeData} (with types) per hook, in the order given.
     */
    public static Map<String, ProbeData> collect(HookedTransformer model, List<String> hookNames, List<Batch> batches,
            TokenLabeller labeller) {
        if (hookNames == null || hookNames.isEmpty()) throw new IllegalArgumentException("give at least one hook name");
        if (batches == null || batches.isEmpty()) throw new IllegalArgumentException("give at least one batch of tokens");
        for (String h : hookNames) model.hook(h);   // an unknown name throws with the nearest ones
        if (hookNames.stream().distinct().count() != hookNames.size()) {
            throw new IllegalArgumentException("hook names repeat: " + hookNames);
        }
        Map<String, List<float[]>> rows = new LinkedHashMap<>();
        for (String h : hookNames) rows.put(h, new ArrayList<>());
        List<TokenLabeller.Row> labels = new ArrayList<>();
        NameFilter only = NameFilter.of(hookNames.toArray(String[]::new));
        int seq = 0;
        for (Batch batch : batches) {
            List<int[]> picks = new ArrayList<>();   // (row in batch, position)
            for (int b = 0; b < batch.size(); b++) {
                for (int p = 0; p < batch.length(); p++) {
                    if (!batch.mask()[b][p]) continue;
                    Optional<TokenLabeller.Row> r = labeller.at(seq + b, p);
                    if (r.isPresent()) {
                        picks.add(new int[] {b, p});
                        labels.add(r.get());
                    }
                }
            }
            if (!picks.isEmpty()) {
                try (NDScope scope = new NDScope(); ActivationCache cache = model.runWithCache(batch, only)) {
                    for (String h : hookNames) {
                        NDArray a = cache.get(h);
                        if (a.getShape().dimension() != 3) {
                            throw new IllegalArgumentException("hook '" + h + "' has shape " + a.getShape()
                                    + "; probes read [batch, pos, d] activations (resid_pre/mid/post, attn_out, "
                                    + "mlp_out, mlp.hook_post, ...)");
                        }
                        int len = (int) a.getShape().get(1), d = (int) a.getShape().get(2);
                        float[] flat = a.toFloatArray();
                        for (int[] bp : picks) {
                            int from = (bp[0] * len + bp[1]) * d;
                            rows.get(h).add(Arrays.copyOfRange(flat, from, from + d));
                        }
                    }
                }
            }
            seq += batch.size();
        }
        if (labels.isEmpty()) {
            throw new IllegalArgumentException("the labeller chose no position in " + seq + " sequences; it must "
                    + "return a row for the positions to probe");
        }
        int n = labels.size();
        int[] y = new int[n], g = new int[n], t = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = labels.get(i).label();
            g[i] = labels.get(i).group();
            t[i] = labels.get(i).type();
        }
        Map<String, ProbeData> out = new LinkedHashMap<>();
        for (String h : hookNames) out.put(h, ProbeData.of(rows.get(h).toArray(float[][]::new), y, g).withTypes(t));
        return out;
    }

    /** The results, one per hook point, in the order given. */
    public List<Entry> entries() {
        return entries;
    }

    /** The result at {@code hook}; an unknown one throws naming those swept. */
    public Entry entry(String hook) {
        for (Entry e : entries) if (e.hook().equals(hook)) return e;
        throw new IllegalArgumentException("no hook '" + hook + "' in this sweep; it has "
                + entries.stream().map(Entry::hook).toList());
    }

    /** The hook point with the highest cross-validated accuracy. */
    public Entry best() {
        Entry best = entries.get(0);
        for (Entry e : entries) if (e.report().task().mean() > best.report().task().mean()) best = e;
        return best;
    }

    /** A probe fitted on every row at {@code hook} with the sweep's method, its hook name in {@code info}. */
    public LinearProbe fit(String hook) {
        return options.method().fit(entry(hook).data()).withInfo("hook", hook);
    }

    /**
     * One row per hook point: hook, layer, rows, accuracy and its sd over folds, control accuracy and sd,
     * selectivity, AUROC (binary tasks) and the majority-class rate (the accuracy of always guessing the most
     * common class).
     */
    public Table toTable() {
        StringColumn hook = StringColumn.create("hook");
        IntColumn layer = IntColumn.create("layer");
        IntColumn n = IntColumn.create("rows");
        DoubleColumn acc = DoubleColumn.create("accuracy"), accSd = DoubleColumn.create("accuracy_sd");
        DoubleColumn ctl = DoubleColumn.create("control_accuracy"), ctlSd = DoubleColumn.create("control_sd");
        DoubleColumn sel = DoubleColumn.create("selectivity"), auroc = DoubleColumn.create("auroc");
        DoubleColumn majority = DoubleColumn.create("majority_rate");
        for (Entry e : entries) {
            hook.append(e.hook());
            int l = layerOf(e.hook());
            if (l >= 0) layer.append(l);
            else layer.appendMissing();
            n.append(e.data().size());
            acc.append(e.report().task().mean());
            accSd.append(e.report().task().sd());
            ctl.append(e.report().control().map(CvResult::mean).orElse(Double.NaN));
            ctlSd.append(e.report().control().map(CvResult::sd).orElse(Double.NaN));
            sel.append(e.report().selectivity().orElse(Double.NaN));
            auroc.append(e.report().task().auroc().orElse(Double.NaN));
            majority.append(Arrays.stream(e.data().classCounts()).max().orElse(0) / (double) e.data().size());
        }
        return Table.create("probe sweep (" + options.method().name() + ", " + options.folds() + " grouped folds)",
                hook, layer, n, acc, accSd, ctl, ctlSd, sel, auroc, majority);
    }

    /** Accuracy and control accuracy by hook point (labelled by layer where there is one), with the majority rate. */
    public CategoryChart plot() {
        Table t = toTable();
        List<String> x = new ArrayList<>();
        for (Entry e : entries) {
            int l = layerOf(e.hook());
            String site = e.hook().substring(e.hook().lastIndexOf('.') + 1).replace("hook_", "");
            x.add(l >= 0 && entries.stream().filter(o -> layerOf(o.hook()) == l).count() == 1 ? Integer.toString(l)
                    : l >= 0 ? l + " " + site : e.hook());
        }
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("accuracy", t.doubleColumn("accuracy").asDoubleArray());
        if (entries.get(0).report().control().isPresent()) {
            series.put("control", t.doubleColumn("control_accuracy").asDoubleArray());
        }
        series.put("majority class", t.doubleColumn("majority_rate").asDoubleArray());
        return Plots.line("probe accuracy by layer (" + options.method().name() + ")", x, series);
    }

    private static int layerOf(String hook) {
        return new dev.jlens.hook.HookPoint(hook).layer();
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("LayerSweep(" + options.method().name() + ")");
        for (Entry e : entries) s.append("\n  ").append(e.hook()).append(": ").append(e.report());
        return s.toString();
    }
}
