package dev.jlens.toy;

import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One trained instance of the toy model: its setting, {@code W [m][n]} (column i is feature i's direction),
 * {@code b [n]}, the loss after training (on a fresh evaluation batch) and the training loss curve, with the
 * paper's measures of how it arranges its features. Plain Java values: nothing to close.
 */
public final class ToyModel {
    /** A feature counts as represented when its norm is above this. */
    public static final double REPRESENTED_NORM = 0.5;

    private final int index;
    private final ToySuperposition.Config config;
    private final double[][] w;
    private final double[] b;
    private final double loss;
    private final double[] lossCurve;
    private final int logEvery;
    private final long evalSeed;
    private final int evalBatchSize;

    ToyModel(int index, ToySuperposition.Config config, double[][] w, double[] b, double loss, double[] lossCurve,
             int logEvery, long evalSeed, int evalBatchSize) {
        this.index = index;
        this.config = config;
        this.w = w;
        this.b = b;
        this.loss = loss;
        this.lossCurve = lossCurve;
        this.logEvery = logEvery;
        this.evalSeed = evalSeed;
        this.evalBatchSize = evalBatchSize;
    }

    /** This instance's position in its batch. */
    public int index() {
        return index;
    }

    /** The setting it was trained on. */
    public ToySuperposition.Config config() {
        return config;
    }

    /** Number of features n. */
    public int features() {
        return config.features();
    }

    /** Number of dimensions m. */
    public int dims() {
        return config.dims();
    }

    /** {@code W [m][n]} (a copy). */
    public double[][] w() {
        double[][] out = new double[w.length][];
        for (int d = 0; d < w.length; d++) out[d] = w[d].clone();
        return out;
    }

    /** {@code b [n]} (a copy). */
    public double[] b() {
        return b.clone();
    }

    /** The importance-weighted loss after training, averaged over {@link #evaluationBatch()}. */
    public double loss() {
        return loss;
    }

    /** The training loss every {@link #logEveryStep()} steps (each on that step's batch). */
    public double[] lossCurve() {
        return lossCurve.clone();
    }

    /** Steps between two points of {@link #lossCurve()}. */
    public int logEveryStep() {
        return logEvery;
    }

    /** The samples {@link #loss()} was measured on, {@code [evalBatchSize][n]} (regenerated from their seed). */
    public double[][] evaluationBatch() {
        return ToySuperposition.sample(config, evalBatchSize, evalSeed);
    }

    /** The reconstruction {@code ReLU(W^T W x + b)} of one input (in double precision). */
    public double[] reconstruct(double[] x) {
        int m = dims(), n = features();
        if (x.length != n) throw new IllegalArgumentException("input needs " + n + " features, got " + x.length);
        double[] h = new double[m];
        for (int d = 0; d < m; d++) for (int i = 0; i < n; i++) h[d] += w[d][i] * x[i];
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double s = b[i];
            for (int d = 0; d < m; d++) s += w[d][i] * h[d];
            out[i] = Math.max(0, s);
        }
        return out;
    }

    /** Each feature's norm {@code |W_i|}. */
    public double[] norms() {
        return FeatureGeometry.norms(w);
    }

    /** Each feature's interference {@code sum over j != i of (Ŵ_i . W_j)^2}. */
    public double[] interference() {
        return FeatureGeometry.interference(w);
    }

    /** Each feature's dimensionality {@code D_i} ({@link FeatureGeometry#dimensionality}). */
    public double[] dimensionality() {
        return FeatureGeometry.dimensionality(w);
    }

    /** The model's dimensions per feature {@code m / |W|_F^2}. */
    public double dimensionsPerFeature() {
        return FeatureGeometry.dimensionsPerFeature(w);
    }

    /** {@code W^T W [n][n]}. */
    public double[][] gram() {
        return FeatureGeometry.gram(w);
    }

    /** The cosine between features i and j. */
    public double cosine(int i, int j) {
        return FeatureGeometry.cosine(w, i, j);
    }

    /** Number of features with norm above {@value #REPRESENTED_NORM}. */
    public int represented() {
        int c = 0;
        for (double v : norms()) if (v > REPRESENTED_NORM) c++;
        return c;
    }

    /** One row per feature: importance, norm, interference, dimensionality, bias. */
    public Table toTable() {
        IntColumn feature = IntColumn.create("feature");
        DoubleColumn importance = DoubleColumn.create("importance"), norm = DoubleColumn.create("norm"),
                interference = DoubleColumn.create("interference"), dim = DoubleColumn.create("dimensionality"),
                bias = DoubleColumn.create("bias");
        double[] no = norms(), in = interference(), di = dimensionality();
        for (int i = 0; i < features(); i++) {
            feature.append(i);
            importance.append(config.importanceAt(i));
            norm.append(no[i]);
            interference.append(in[i]);
            dim.append(di[i]);
            bias.append(b[i]);
        }
        return Table.create(label(), feature, importance, norm, interference, dim, bias);
    }

    /** Each feature's norm beside its interference, as grouped bars (the paper's bar picture). */
    public CategoryChart normsPlot() {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < features(); i++) names.add(Integer.toString(i));
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("|W_i|", norms());
        series.put("interference", interference());
        CategoryChart chart = Plots.bar(label() + ": feature norms", names, series);
        chart.setXAxisTitle("feature");
        chart.getStyler().setXAxisTitleVisible(true);
        return chart;
    }

    /** {@code W^T W} as a heatmap: the diagonal holds squared norms, off-diagonal cells the interference terms. */
    public HeatMapChart gramHeatmap() {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < features(); i++) names.add(Integer.toString(i));
        return Plots.heatmap(label() + ": W^T W", gram(), names, names, "feature", "feature");
    }

    /** The training loss curve. */
    public XYChart lossPlot() {
        double[] x = new double[lossCurve.length], y = lossCurve.clone();
        for (int i = 0; i < x.length; i++) x[i] = (double) i * logEvery;
        return Plots.scatter(label() + ": training loss", "step", "loss", Map.of("loss", new double[][] {x, y}));
    }

    String label() {
        return String.format(Locale.ROOT, "#%d S=%s", index, ToySuperposition.fmt(config.sparsity()));
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "ToyModel[#%d: %d features in %d dims, S=%s%s, loss %.4g, %d represented, "
                        + "%.3g dims/feature]", index, features(), dims(), ToySuperposition.fmt(config.sparsity()),
                config.correlation() == ToySuperposition.Correlation.INDEPENDENT ? ""
                        : " " + config.correlation().name().toLowerCase(Locale.ROOT),
                loss, represented(), dimensionsPerFeature());
    }
}
