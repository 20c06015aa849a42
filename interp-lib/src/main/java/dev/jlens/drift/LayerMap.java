package dev.jlens.drift;

import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.CholeskyDecomposition;
import org.apache.commons.math3.linear.RealMatrix;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.Locale;

/**
 * An affine map {@code y ~ A x + b} from one layer's residual stream to another's, fitted by ridge least squares over
 * many tokens (rows of {@code x} and {@code y} are the same tokens). The ridge term is {@code ridge * tr(Cxx) / d} on
 * the centred covariance {@code Cxx}, so it is scale-free; the intercept is not penalised.
 *
 * <p>What it reports on the rows it was fitted on (and {@link #evaluate} on others): the fraction of the variance of
 * {@code y} it explains ({@code R^2}), and the fraction of the variance of the <em>change</em> {@code y - x} that the
 * map's change {@code A x + b - x} explains: how much of the drift from one layer to the next is a fixed linear
 * transform. Both against the identity map ({@code y ~ x}), the "nothing drifts" baseline.
 */
public final class LayerMap {
    private final double[][] a;   // [dOut][dIn]
    private final double[] b;     // [dOut]
    private final double ridge;
    private final Fit fit;

    /**
     * How well a map fits some rows.
     *
     * @param rows            tokens
     * @param r2              fraction of the variance of {@code y} explained by {@code A x + b}
     * @param identityR2      the same for {@code y ~ x} (may be negative)
     * @param driftExplained  fraction of the variance of {@code y - x} explained by {@code A x + b - x}
     */
    public record Fit(int rows, double r2, double identityR2, double driftExplained) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%d rows: R^2 %.4f (identity %.4f), drift explained %.4f", rows, r2,
                    identityR2, driftExplained);
        }
    }

    private LayerMap(double[][] a, double[] b, double ridge, Fit fit) {
        this.a = a;
        this.b = b;
        this.ridge = ridge;
        this.fit = fit;
    }

    /**
     * Fits {@code y ~ A x + b} on {@code n} rows, {@code x} row-major {@code [n, dIn]} and {@code y} {@code [n, dOut]}.
     *
     * @param ridge relative ridge strength (e.g. 1e-4); 0 for plain least squares
     */
    public static LayerMap fit(float[] x, int dIn, float[] y, int dOut, double ridge) {
        if (dIn < 1 || dOut < 1 || x.length % dIn != 0 || y.length % dOut != 0 || x.length / dIn != y.length / dOut) {
            throw new IllegalArgumentException("x [" + x.length + " values / " + dIn + "] and y [" + y.length + " / "
                    + dOut + "] must hold the same number of whole rows");
        }
        if (!(ridge >= 0) || !Double.isFinite(ridge)) throw new IllegalArgumentException("ridge must be >= 0, got " + ridge);
        int n = x.length / dIn;
        if (n < 2) throw new IllegalArgumentException("need at least 2 rows, got " + n);
        double[] mx = means(x, dIn, n), my = means(y, dOut, n);
        double[][] cxx = new double[dIn][dIn], cxy = new double[dIn][dOut];
        double[] xc = new double[dIn], yc = new double[dOut];
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < dIn; i++) xc[i] = x[r * dIn + i] - mx[i];
            for (int i = 0; i < dOut; i++) yc[i] = y[r * dOut + i] - my[i];
            for (int i = 0; i < dIn; i++) {
                double xi = xc[i];
                if (xi == 0) continue;
                double[] row = cxx[i];
                for (int j = i; j < dIn; j++) row[j] += xi * xc[j];
                double[] rowY = cxy[i];
                for (int j = 0; j < dOut; j++) rowY[j] += xi * yc[j];
            }
        }
        double trace = 0;
        for (int i = 0; i < dIn; i++) {
            trace += cxx[i][i];
            for (int j = 0; j < i; j++) cxx[i][j] = cxx[j][i];
        }
        double lambda = ridge * trace / dIn;
        // A tiny floor keeps Cholesky happy on rank-deficient inputs when ridge is 0.
        double floor = Math.max(lambda, 1e-12 * Math.max(trace / dIn, Double.MIN_NORMAL));
        for (int i = 0; i < dIn; i++) cxx[i][i] += floor;
        RealMatrix sol = new CholeskyDecomposition(new Array2DRowRealMatrix(cxx, false), 1e-15, 1e-300)
                .getSolver().solve(new Array2DRowRealMatrix(cxy, false));                       // [dIn, dOut] = A^T
        double[][] a = new double[dOut][dIn];
        for (int i = 0; i < dIn; i++) for (int j = 0; j < dOut; j++) a[j][i] = sol.getEntry(i, j);
        double[] b = new double[dOut];
        for (int j = 0; j < dOut; j++) {
            double s = my[j];
            for (int i = 0; i < dIn; i++) s -= a[j][i] * mx[i];
            b[j] = s;
        }
        LayerMap partial = new LayerMap(a, b, ridge, null);
        return new LayerMap(a, b, ridge, partial.evaluate(x, y));
    }

    /** The fit on the rows it was fitted on. */
    public Fit fit() {
        return fit;
    }

    /** How well this map fits other rows {@code x [n, dIn]}, {@code y [n, dOut]}. */
    public Fit evaluate(float[] x, float[] y) {
        int dIn = dIn(), dOut = dOut();
        int n = x.length / dIn;
        if (x.length != n * dIn || y.length != n * dOut) {
            throw new IllegalArgumentException("x and y must hold the same number of rows of " + dIn + " and " + dOut);
        }
        double[] my = means(y, dOut, n);
        double[] dMean = new double[dOut];
        boolean square = dIn == dOut;
        if (square) {
            for (int r = 0; r < n; r++) for (int j = 0; j < dOut; j++) dMean[j] += y[r * dOut + j] - x[r * dIn + j];
            for (int j = 0; j < dOut; j++) dMean[j] /= n;
        }
        double sst = 0, sse = 0, sseId = 0, sstDrift = 0;
        double[] xr = new double[dIn], pred = new double[dOut];
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < dIn; i++) xr[i] = x[r * dIn + i];
            apply(xr, pred);
            for (int j = 0; j < dOut; j++) {
                double yv = y[r * dOut + j];
                sst += (yv - my[j]) * (yv - my[j]);
                sse += (yv - pred[j]) * (yv - pred[j]);
                if (square) {
                    double id = yv - xr[j];
                    sseId += id * id;
                    double dc = id - dMean[j];
                    sstDrift += dc * dc;
                }
            }
        }
        double r2 = 1 - sse / sst;
        double idR2 = square ? 1 - sseId / sst : Double.NaN;
        // The residual of y ~ A x + b equals that of (y - x) ~ (A x + b - x).
        double drift = square ? 1 - sse / sstDrift : Double.NaN;
        return new Fit(n, r2, idR2, drift);
    }

    /** {@code A x + b} for one row. */
    public double[] apply(double[] x) {
        double[] out = new double[dOut()];
        apply(x, out);
        return out;
    }

    private void apply(double[] x, double[] out) {
        for (int j = 0; j < out.length; j++) {
            double s = b[j];
            double[] row = a[j];
            for (int i = 0; i < row.length; i++) s += row[i] * x[i];
            out[j] = s;
        }
    }

    /** {@code A v} without the intercept: where the map sends a direction (a decoder row, a latent's contribution). */
    public float[] applyLinear(float[] v) {
        if (v.length != dIn()) throw new IllegalArgumentException("vector has " + v.length + " values, the map reads " + dIn());
        float[] out = new float[dOut()];
        for (int j = 0; j < out.length; j++) {
            double s = 0;
            double[] row = a[j];
            for (int i = 0; i < row.length; i++) s += row[i] * v[i];
            out[j] = (float) s;
        }
        return out;
    }

    /** The linear part {@code A [dOut][dIn]} (a copy). */
    public double[][] matrix() {
        double[][] c = new double[a.length][];
        for (int j = 0; j < a.length; j++) c[j] = a[j].clone();
        return c;
    }

    /** The intercept {@code b [dOut]} (a copy). */
    public double[] intercept() {
        return b.clone();
    }

    public int dIn() {
        return a[0].length;
    }

    public int dOut() {
        return a.length;
    }

    public double ridge() {
        return ridge;
    }

    /** The fit as a one-row table. */
    public Table toTable() {
        return Table.create("layer map", StringColumn.create("map", new String[]{dIn() + " -> " + dOut()}),
                DoubleColumn.create("rows", new double[]{fit.rows()}),
                DoubleColumn.create("R^2", new double[]{round(fit.r2())}),
                DoubleColumn.create("identity R^2", new double[]{round(fit.identityR2())}),
                DoubleColumn.create("drift explained", new double[]{round(fit.driftExplained())}));
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "LayerMap[%d -> %d, ridge %.1g; %s]", dIn(), dOut(), ridge, fit);
    }

    private static double[] means(float[] v, int d, int n) {
        double[] m = new double[d];
        for (int r = 0; r < n; r++) for (int i = 0; i < d; i++) m[i] += v[r * d + i];
        for (int i = 0; i < d; i++) m[i] /= n;
        return m;
    }

    static double round(double v) {
        return Double.isNaN(v) ? v : Math.round(v * 10000) / 10000.0;
    }
}
