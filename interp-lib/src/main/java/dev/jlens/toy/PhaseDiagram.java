package dev.jlens.toy;

import dev.jlens.viz.Plots;
import org.knowm.xchart.HeatMapChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;

/**
 * The paper's phase diagram for two features in one dimension: over sparsity x the second feature's importance
 * relative to the first, whether feature 1 is not represented, gets the dimension to itself, or shares it with
 * feature 0 in superposition (an antipodal pair). Each cell is read from the lowest-loss instance trained there.
 *
 * <pre>{@code
 * var grid = ToySuperposition.phaseGrid(new double[] {0, 0.7, 0.9, 0.97}, new double[] {0.5, 1, 2}, 2);
 * PhaseDiagram p = ToySuperposition.train(grid).phaseDiagram();
 * p.heatmap();   // 0 not represented, 1 dedicated dimension, 2 superposition
 * }</pre>
 */
public final class PhaseDiagram {

    /** What happens to feature 1. */
    public enum Phase {
        /** {@code |W_1|} at most {@value ToyModel#REPRESENTED_NORM}. */
        NOT_REPRESENTED("not represented"),
        /** {@code |W_1|} above the threshold and feature 0 (nearly) absent from its direction. */
        DEDICATED("dedicated dimension"),
        /** Both represented in the one dimension: feature 0 interferes with feature 1 (antipodal when cos < 0). */
        SUPERPOSITION("superposition");

        private final String label;

        Phase(String label) {
            this.label = label;
        }

        /** The name the paper gives it. */
        public String label() {
            return label;
        }

        @Override
        public String toString() {
            return label;
        }
    }

    private final double[] sparsities;
    private final double[] relativeImportances;
    private final ToyModel[][] cells;   // [importance][sparsity]

    private PhaseDiagram(double[] sparsities, double[] relativeImportances, ToyModel[][] cells) {
        this.sparsities = sparsities;
        this.relativeImportances = relativeImportances;
        this.cells = cells;
    }

    /**
     * Classifies feature 1 of a two-feature {@code W [m][2]}: not represented when {@code |W_1|} is at most
     * {@value ToyModel#REPRESENTED_NORM}; superposition when feature 0 interferes with it
     * ({@code (Ŵ_1 . W_0)^2} above the threshold squared); otherwise a dedicated dimension.
     */
    public static Phase classify(double[][] w) {
        FeatureGeometry.check(w);
        if (w[0].length != 2) throw new IllegalArgumentException("the phase diagram needs 2 features, got " + w[0].length);
        double norm1 = FeatureGeometry.norms(w)[1];
        if (norm1 <= ToyModel.REPRESENTED_NORM) return Phase.NOT_REPRESENTED;
        double interference = FeatureGeometry.interference(w)[1];
        return interference > ToyModel.REPRESENTED_NORM * ToyModel.REPRESENTED_NORM ? Phase.SUPERPOSITION
                : Phase.DEDICATED;
    }

    static PhaseDiagram of(List<ToyModel> models) {
        TreeSet<Double> s = new TreeSet<>(), r = new TreeSet<>();
        for (ToyModel t : models) {
            if (t.features() != 2 || t.dims() != 1) {
                throw new IllegalArgumentException("the phase diagram is for 2 features in 1 dimension; instance "
                        + t.index() + " has " + t.features() + " features in " + t.dims()
                        + " (train ToySuperposition.phaseGrid(...) settings)");
            }
            s.add(t.config().sparsity());
            r.add(t.config().relativeImportance());
        }
        double[] ss = s.stream().mapToDouble(Double::doubleValue).toArray();
        double[] rs = r.stream().mapToDouble(Double::doubleValue).toArray();
        ToyModel[][] cells = new ToyModel[rs.length][ss.length];
        for (ToyModel t : models) {
            int i = java.util.Arrays.binarySearch(rs, t.config().relativeImportance());
            int j = java.util.Arrays.binarySearch(ss, t.config().sparsity());
            if (cells[i][j] == null || t.loss() < cells[i][j].loss()) cells[i][j] = t;
        }
        return new PhaseDiagram(ss, rs, cells);
    }

    /** The sparsities, ascending (the columns). */
    public double[] sparsities() {
        return sparsities.clone();
    }

    /** The relative importances {@code I_1 / I_0}, ascending (the rows). */
    public double[] relativeImportances() {
        return relativeImportances.clone();
    }

    /** The phase at a cell; empty cells of an incomplete grid are absent. */
    public java.util.Optional<Phase> phase(double sparsity, double relativeImportance) {
        int i = java.util.Arrays.binarySearch(relativeImportances, relativeImportance);
        int j = java.util.Arrays.binarySearch(sparsities, sparsity);
        if (i < 0 || j < 0) {
            throw new IllegalArgumentException("no cell at sparsity " + sparsity + ", relative importance "
                    + relativeImportance + "; sparsities " + java.util.Arrays.toString(sparsities)
                    + ", relative importances " + java.util.Arrays.toString(relativeImportances));
        }
        return java.util.Optional.ofNullable(cells[i][j]).map(t -> classify(t.w()));
    }

    /** The instance a cell was read from (the lowest-loss one trained there). */
    public java.util.Optional<ToyModel> model(double sparsity, double relativeImportance) {
        phase(sparsity, relativeImportance);   // validates
        return java.util.Optional.ofNullable(cells[java.util.Arrays.binarySearch(relativeImportances,
                relativeImportance)][java.util.Arrays.binarySearch(sparsities, sparsity)]);
    }

    /** One row per cell: sparsity, density, relative importance, phase, both norms, cosine, loss. */
    public Table toTable() {
        DoubleColumn sp = DoubleColumn.create("sparsity"), den = DoubleColumn.create("density"),
                rel = DoubleColumn.create("relative_importance"), n0 = DoubleColumn.create("norm_0"),
                n1 = DoubleColumn.create("norm_1"), cos = DoubleColumn.create("cosine"), loss = DoubleColumn.create("loss");
        StringColumn phase = StringColumn.create("phase");
        for (int i = 0; i < relativeImportances.length; i++) {
            for (int j = 0; j < sparsities.length; j++) {
                ToyModel t = cells[i][j];
                if (t == null) continue;
                double[] no = t.norms();
                sp.append(sparsities[j]);
                den.append(1 - sparsities[j]);
                rel.append(relativeImportances[i]);
                phase.append(classify(t.w()).label());
                n0.append(no[0]);
                n1.append(no[1]);
                cos.append(t.cosine(0, 1));
                loss.append(t.loss());
            }
        }
        return Table.create("phase diagram", sp, den, rel, phase, n0, n1, cos, loss);
    }

    /**
     * The diagram as a heatmap: columns are feature densities {@code 1 - S} (sparser to the left), rows relative
     * importances (largest on top); 0 = not represented, 1 = dedicated dimension, 2 = superposition.
     */
    public HeatMapChart heatmap() {
        int rows = relativeImportances.length, cols = sparsities.length;
        double[][] v = new double[rows][cols];
        List<String> rowLabels = new ArrayList<>(), colLabels = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
            int ri = rows - 1 - i;
            rowLabels.add(ToySuperposition.fmt(relativeImportances[ri]));
            for (int j = 0; j < cols; j++) {
                int sj = cols - 1 - j;   // densest on the right, as the paper's density axis
                ToyModel t = cells[ri][sj];
                v[i][j] = t == null ? Double.NaN : classify(t.w()).ordinal();
            }
        }
        for (int j = 0; j < cols; j++) colLabels.add(ToySuperposition.fmt(1 - sparsities[cols - 1 - j]));
        return Plots.heatmap("feature 1: 0 not represented, 1 dedicated dimension, 2 superposition", v, rowLabels,
                colLabels, "feature density 1 - S", "relative importance I_1 / I_0");
    }

    /** The grid in text: {@code .} not represented, {@code D} dedicated, {@code S} superposition. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("PhaseDiagram (rows: I_1/I_0; columns: S; . not represented, "
                + "D dedicated dimension, S superposition)\n");
        sb.append(String.format(Locale.ROOT, "%8s", ""));
        for (double s : sparsities) sb.append(String.format(Locale.ROOT, " %6s", ToySuperposition.fmt(s)));
        sb.append('\n');
        for (int i = relativeImportances.length - 1; i >= 0; i--) {
            sb.append(String.format(Locale.ROOT, "%8s", ToySuperposition.fmt(relativeImportances[i])));
            for (int j = 0; j < sparsities.length; j++) {
                ToyModel t = cells[i][j];
                String c = t == null ? " " : switch (classify(t.w())) {
                    case NOT_REPRESENTED -> ".";
                    case DEDICATED -> "D";
                    case SUPERPOSITION -> "S";
                };
                sb.append(String.format(Locale.ROOT, " %6s", c));
            }
            sb.append('\n');
        }
        return sb.toString();
    }
}
