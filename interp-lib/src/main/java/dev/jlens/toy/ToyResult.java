package dev.jlens.toy;

import dev.jlens.viz.Plots;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The instances of one training run ({@link ToySuperposition#train}), in the order their settings were given, with
 * tables and charts across them: norms and interference per instance and feature, dimensions per feature against
 * sparsity, the two-feature phase diagram, the correlated-features finding. Plain Java values: nothing to close.
 */
public final class ToyResult {
    /** Below this |cosine| a pair counts as orthogonal. */
    public static final double ORTHOGONAL_COS = 0.3;
    /** Below this cosine a pair counts as antipodal. */
    public static final double ANTIPODAL_COS = -0.7;
    /** The paper's sticky fractions of a dimension per feature, drawn as reference lines. */
    private static final double[] STICKY = {1, 3.0 / 4, 2.0 / 3, 1.0 / 2, 2.0 / 5, 1.0 / 3};

    private final List<ToyModel> models;
    private final ToySuperposition.Training training;

    ToyResult(List<ToyModel> models, ToySuperposition.Training training) {
        this.models = List.copyOf(models);
        this.training = training;
    }

    /** Every instance, in the order of the settings. */
    public List<ToyModel> models() {
        return models;
    }

    /** Instance {@code k}. */
    public ToyModel model(int k) {
        if (k < 0 || k >= models.size()) {
            throw new IllegalArgumentException("instance " + k + " does not exist; valid: 0.." + (models.size() - 1));
        }
        return models.get(k);
    }

    /** Number of instances. */
    public int size() {
        return models.size();
    }

    /** How they were trained. */
    public ToySuperposition.Training training() {
        return training;
    }

    /** The instance with the lowest loss. */
    public ToyModel best() {
        return models.stream().min(Comparator.comparingDouble(ToyModel::loss)).orElseThrow();
    }

    /**
     * One row per instance: sparsity, {@code 1 / (1 - S)}, relative importance {@code I_1 / I_0}, correlation,
     * loss, features represented, {@code m / |W|_F^2} and the mean interference.
     */
    public Table toTable() {
        IntColumn instance = IntColumn.create("instance"), represented = IntColumn.create("represented");
        DoubleColumn sparsity = DoubleColumn.create("sparsity"), inv = DoubleColumn.create("inverse_density"),
                rel = DoubleColumn.create("relative_importance"), loss = DoubleColumn.create("loss"),
                dpf = DoubleColumn.create("dims_per_feature"), inter = DoubleColumn.create("mean_interference");
        StringColumn corr = StringColumn.create("correlation");
        for (ToyModel t : models) {
            instance.append(t.index());
            sparsity.append(t.config().sparsity());
            inv.append(1 / t.config().density());
            rel.append(t.config().relativeImportance());
            corr.append(t.config().correlation().name().toLowerCase(Locale.ROOT));
            loss.append(t.loss());
            represented.append(t.represented());
            dpf.append(t.dimensionsPerFeature());
            double s = 0;
            for (double v : t.interference()) s += v;
            inter.append(s / t.features());
        }
        return Table.create("toy models", instance, sparsity, inv, rel, corr, loss, represented, dpf, inter);
    }

    /** One row per instance and feature: importance, norm, interference, dimensionality, bias. */
    public Table featureTable() {
        IntColumn instance = IntColumn.create("instance"), feature = IntColumn.create("feature");
        DoubleColumn sparsity = DoubleColumn.create("sparsity"), importance = DoubleColumn.create("importance"),
                norm = DoubleColumn.create("norm"), interference = DoubleColumn.create("interference"),
                dim = DoubleColumn.create("dimensionality"), bias = DoubleColumn.create("bias");
        for (ToyModel t : models) {
            double[] no = t.norms(), in = t.interference(), di = t.dimensionality(), b = t.b();
            for (int i = 0; i < t.features(); i++) {
                instance.append(t.index());
                sparsity.append(t.config().sparsity());
                feature.append(i);
                importance.append(t.config().importanceAt(i));
                norm.append(no[i]);
                interference.append(in[i]);
                dim.append(di[i]);
                bias.append(b[i]);
            }
        }
        return Table.create("toy model features", instance, sparsity, feature, importance, norm, interference, dim,
                bias);
    }

    /** {@code |W_i|}: one row per instance (labelled with its sparsity), one column per feature. */
    public HeatMapChart normsPlot() {
        return perFeatureHeatmap("feature norms |W_i|", ToyModel::norms);
    }

    /** Interference {@code sum over j != i of (Ŵ_i . W_j)^2}: one row per instance, one column per feature. */
    public HeatMapChart interferencePlot() {
        return perFeatureHeatmap("interference sum_j!=i (Ŵ_i . W_j)^2", ToyModel::interference);
    }

    /**
     * Dimensions per feature {@code m / |W|_F^2} of each instance, and each feature's {@code D_i}, against
     * {@code 1 / (1 - S)} on a log axis, with the fractions 1, 3/4, 2/3, 1/2, 2/5, 1/3 drawn as lines: the paper's
     * picture, where the model's dimensionality sticks at those fractions as sparsity grows.
     */
    public XYChart dimensionalityPlot() {
        int total = 0;
        for (ToyModel t : models) total += t.features();
        double[] x = new double[models.size()], y = new double[models.size()];
        double[] fx = new double[total], fy = new double[total];
        int p = 0;
        double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < models.size(); k++) {
            ToyModel t = models.get(k);
            x[k] = 1 / t.config().density();
            y[k] = t.dimensionsPerFeature();
            xMin = Math.min(xMin, x[k]);
            xMax = Math.max(xMax, x[k]);
            for (double d : t.dimensionality()) {
                fx[p] = x[k];
                fy[p++] = d;
            }
        }
        Map<String, double[][]> series = new LinkedHashMap<>();
        series.put("D_i (each feature)", new double[][] {fx, fy});
        series.put("m / |W|_F^2", new double[][] {x, y});
        XYChart chart = Plots.scatter("dimensions per feature", "1 / (1 - S)", "dimensions per feature", series);
        chart.getStyler().setXAxisLogarithmic(true);
        chart.getStyler().setLegendVisible(true);
        if (xMax <= xMin) xMax = xMin * 1.01;
        for (double s : STICKY) {
            XYSeries line = chart.addSeries(stickyName(s), new double[] {xMin, xMax}, new double[] {s, s});
            line.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            line.setMarker(SeriesMarkers.NONE);
            line.setLineColor(new java.awt.Color(0xbbbbbb));
            line.setShowInLegend(false);
        }
        return chart;
    }

    private static String stickyName(double s) {
        for (int den = 1; den <= 5; den++) {
            long num = Math.round(s * den);
            if (Math.abs(num - s * den) < 1e-9) return num + "/" + den;
        }
        return Double.toString(s);
    }

    /** Every instance's training loss against the step (up to 20 instances, one series each). */
    public XYChart lossPlot() {
        Map<String, double[][]> series = new LinkedHashMap<>();
        for (ToyModel t : models.subList(0, Math.min(20, models.size()))) {
            double[] y = t.lossCurve(), x = new double[y.length];
            for (int i = 0; i < x.length; i++) x[i] = (double) i * t.logEveryStep();
            series.put(t.label(), new double[][] {x, y});
        }
        XYChart chart = Plots.scatter("training loss", "step", "loss", series);
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        chart.getStyler().setYAxisLogarithmic(true);
        return chart;
    }

    /**
     * The phase diagram of a two-feature, one-dimension grid ({@link ToySuperposition#phaseGrid}): each (sparsity,
     * relative importance) cell classified from its lowest-loss instance.
     */
    public PhaseDiagram phaseDiagram() {
        return PhaseDiagram.of(models);
    }

    /**
     * One row per instance with paired features and per pair (0-1, 2-3, ...): both norms, the cosine between them
     * and their arrangement: {@code orthogonal} (|cos| < {@value #ORTHOGONAL_COS}), {@code antipodal}
     * (cos < {@value #ANTIPODAL_COS}), {@code aligned} (cos > {@code -ANTIPODAL_COS}), {@code other}, or
     * {@code not represented} when a norm is at most {@value ToyModel#REPRESENTED_NORM}.
     */
    public Table correlationTable() {
        IntColumn instance = IntColumn.create("instance");
        StringColumn corr = StringColumn.create("correlation"), pair = StringColumn.create("pair"),
                arrangement = StringColumn.create("arrangement");
        DoubleColumn sparsity = DoubleColumn.create("sparsity"), na = DoubleColumn.create("norm_a"),
                nb = DoubleColumn.create("norm_b"), cos = DoubleColumn.create("cosine");
        for (ToyModel t : models) {
            if (t.features() % 2 != 0) continue;
            double[] no = t.norms();
            for (int a = 0; a < t.features(); a += 2) {
                instance.append(t.index());
                corr.append(t.config().correlation().name().toLowerCase(Locale.ROOT));
                sparsity.append(t.config().sparsity());
                pair.append(a + "-" + (a + 1));
                na.append(no[a]);
                nb.append(no[a + 1]);
                double c = t.cosine(a, a + 1);
                cos.append(c);
                arrangement.append(arrangement(no[a], no[a + 1], c));
            }
        }
        if (instance.isEmpty()) {
            throw new IllegalArgumentException("no instance has paired features (an even number of features); "
                    + "train ToySuperposition.correlationStudy(...) settings");
        }
        return Table.create("feature pairs", instance, corr, sparsity, pair, na, nb, cos, arrangement);
    }

    static String arrangement(double normA, double normB, double cos) {
        if (normA <= ToyModel.REPRESENTED_NORM || normB <= ToyModel.REPRESENTED_NORM) return "not represented";
        if (Math.abs(cos) < ORTHOGONAL_COS) return "orthogonal";
        if (cos < ANTIPODAL_COS) return "antipodal";
        if (cos > -ANTIPODAL_COS) return "aligned";
        return "other";
    }

    /**
     * The correlated-features finding, one row per correlation kind: pairs and represented pairs over all its
     * instances, their mean cosine, the fractions orthogonal, antipodal and aligned, and the arrangement of the
     * lowest-loss instance (the better optimum: training can stop in a worse one, e.g. anticorrelated pairs crossed
     * antipodally with the other pair). The paper's finding: correlated features prefer orthogonal directions,
     * anticorrelated ones go antipodal.
     */
    public Table correlationFindings() {
        Table pairs = correlationTable();
        StringColumn kind = StringColumn.create("correlation"), preferred = StringColumn.create("lowest_loss_arrangement");
        IntColumn count = IntColumn.create("pairs"), rep = IntColumn.create("represented_pairs"),
                bestInstance = IntColumn.create("lowest_loss_instance");
        DoubleColumn meanCos = DoubleColumn.create("mean_cosine"), orth = DoubleColumn.create("fraction_orthogonal"),
                anti = DoubleColumn.create("fraction_antipodal"), aligned = DoubleColumn.create("fraction_aligned"),
                bestLoss = DoubleColumn.create("lowest_loss");
        for (ToySuperposition.Correlation c : ToySuperposition.Correlation.values()) {
            String name = c.name().toLowerCase(Locale.ROOT);
            Table rows = pairs.where(pairs.stringColumn("correlation").isEqualTo(name));
            if (rows.isEmpty()) continue;
            Map<String, Integer> counts = new LinkedHashMap<>();
            int represented = 0;
            double cosSum = 0;
            for (int r = 0; r < rows.rowCount(); r++) {
                String a = rows.stringColumn("arrangement").get(r);
                if (a.equals("not represented")) continue;
                represented++;
                cosSum += rows.doubleColumn("cosine").get(r);
                counts.merge(a, 1, Integer::sum);
            }
            ToyModel best = models.stream().filter(t -> t.config().correlation() == c && t.features() % 2 == 0)
                    .min(Comparator.comparingDouble(ToyModel::loss)).orElseThrow();
            kind.append(name);
            count.append(rows.rowCount());
            rep.append(represented);
            meanCos.append(represented == 0 ? Double.NaN : cosSum / represented);
            orth.append(represented == 0 ? Double.NaN : counts.getOrDefault("orthogonal", 0) / (double) represented);
            anti.append(represented == 0 ? Double.NaN : counts.getOrDefault("antipodal", 0) / (double) represented);
            aligned.append(represented == 0 ? Double.NaN : counts.getOrDefault("aligned", 0) / (double) represented);
            bestInstance.append(best.index());
            bestLoss.append(best.loss());
            preferred.append(majorityArrangement(best));
        }
        return Table.create("correlated features", kind, count, rep, meanCos, orth, anti, aligned, bestInstance,
                bestLoss, preferred);
    }

    /** The arrangement most of a model's pairs take (ties: the first pair's). */
    static String majorityArrangement(ToyModel t) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        double[] no = t.norms();
        for (int a = 0; a + 1 < t.features(); a += 2) {
            counts.merge(arrangement(no[a], no[a + 1], t.cosine(a, a + 1)), 1, Integer::sum);
        }
        return counts.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElseThrow();
    }

    private HeatMapChart perFeatureHeatmap(String title, java.util.function.Function<ToyModel, double[]> f) {
        double[][] v = new double[models.size()][];
        List<String> rows = new ArrayList<>(), cols = new ArrayList<>();
        for (int k = 0; k < models.size(); k++) {
            v[k] = f.apply(models.get(k));
            rows.add(models.get(k).label());
        }
        for (int i = 0; i < models.get(0).features(); i++) cols.add(Integer.toString(i));
        return Plots.heatmap(title, v, rows, cols, "feature", "instance");
    }

    @Override
    public String toString() {
        ToyModel best = best();
        return String.format(Locale.ROOT, "ToyResult[%d instance%s of %d features in %d dims, %d steps; best #%d loss %.4g]",
                models.size(), models.size() == 1 ? "" : "s", best.features(), best.dims(), training.steps(),
                best.index(), best.loss());
    }
}
