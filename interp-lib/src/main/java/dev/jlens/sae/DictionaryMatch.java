package dev.jlens.sae;

import static dev.jlens.util.Vectors.median;

import ai.djl.ndarray.NDArray;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Matches the latents of one dictionary to those of another (two layers' SAEs, two seeds) by their weights alone, as
 * SAE Match does (Balagansky et al. 2025, "Mechanistic Permutability"): a one-to-one assignment of latents of
 * {@code a} to latents of {@code b}, either maximising the summed decoder cosine or minimising the summed squared
 * distance between <em>folded</em> decoder rows. {@link LatentMatch} matches latents to known concepts; this class
 * matches latents to latents.
 *
 * <p><b>Folding.</b> A thresholded latent ({@code f_i = pre_i * H(pre_i - theta_i)}: JumpReLU, and BatchTopK or
 * Matryoshka at inference) can move a factor between its encoder and decoder without changing the reconstruction:
 * dividing encoder column {@code i} and {@code b_enc[i]} by {@code theta_i} and multiplying decoder row {@code i} by
 * it gives a latent whose threshold is 1. SAE Match folds the thresholds in so that decoder rows of two dictionaries
 * are on one scale (what a latent writes when it just fires) before comparing them by squared distance. Here the fold
 * also undoes each dictionary's {@link SaeConfig#inputScale()}, so folded rows are in the raw units of the residual
 * stream and two layers with different norms compare fairly. A dictionary without positive thresholds (ReLU, TopK)
 * is folded with {@code theta = 1}: only the input scale is undone. Folding changes the matching only where the
 * folded row norms differ between latents: BatchTopK and Matryoshka store one threshold for every latent and keep
 * decoder rows at unit norm, so there the folded distance is a decreasing function of the cosine and the two criteria
 * give the same pairs; JumpReLU's per-latent thresholds (and ReLU's free decoder norms) make them differ.
 *
 * <p><b>Assignment.</b> {@link Method#HUNGARIAN} is the optimal one-to-one assignment (Kuhn-Munkres with potentials,
 * {@code O(n^2 m)}: fine for a few thousand latents); {@link Method#GREEDY} takes the best remaining pair repeatedly
 * ({@code O(nm log nm)}). Pairs whose decoder cosine is below {@link Options#minCosine()} are reported as unmatched.
 */
public final class DictionaryMatch {

    /** How to score a pair. */
    public enum Criterion {
        /** Cosine of the decoder rows (scale-free). */
        COSINE,
        /** Squared distance between folded decoder rows (SAE Match). */
        FOLDED_MSE
    }

    /** How to pick the pairs. */
    public enum Method { HUNGARIAN, GREEDY }

    /**
     * @param criterion what the assignment optimises
     * @param method    optimal or greedy assignment
     * @param minCosine pairs with a lower decoder cosine are dropped from {@link #pairs()} (use -1 to keep all)
     */
    public record Options(Criterion criterion, Method method, double minCosine) {
        public Options {
            if (criterion == null || method == null) throw new IllegalArgumentException("criterion and method are required");
            if (!(minCosine >= -1 && minCosine <= 1)) {
                throw new IllegalArgumentException("minCosine must be in [-1, 1], got " + minCosine);
            }
        }

        /** Decoder cosine, Hungarian, pairs of cosine at least 0.5 kept. */
        public static Options defaults() {
            return new Options(Criterion.COSINE, Method.HUNGARIAN, 0.5);
        }

        public Options criterion(Criterion c) {
            return new Options(c, method, minCosine);
        }

        public Options method(Method m) {
            return new Options(criterion, m, minCosine);
        }

        public Options minCosine(double c) {
            return new Options(criterion, method, c);
        }
    }

    /** One matched pair: latent {@code a} of the first dictionary, {@code b} of the second, their decoder cosine. */
    public record Pair(int a, int b, double cosine) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%d -> %d (cos %.3f)", a, b, cosine);
        }
    }

    /**
     * A dictionary's weights with the thresholds folded in, in raw input units: {@code encoder[i]} and
     * {@code encoderBias[i]} give the folded pre-activation {@code x . encoder[i] + encoderBias[i]} (the latent fires
     * where it exceeds 1; for {@code applyBDecToInput} dictionaries the bias includes {@code -b_dec . W_enc}), and
     * {@code decoder[i]} is what the latent writes per unit of folded activation.
     */
    public record Folded(float[][] encoder, float[] encoderBias, float[][] decoder, float[] thresholds) {}

    private final List<Pair> pairs;
    private final int sizeA, sizeB;
    private final Options options;

    private DictionaryMatch(List<Pair> pairs, int sizeA, int sizeB, Options options) {
        this.pairs = List.copyOf(pairs);
        this.sizeA = sizeA;
        this.sizeB = sizeB;
        this.options = options;
    }

    /** Matches the latents of {@code a} to those of {@code b} with {@code options}. */
    public static DictionaryMatch of(SparseCoder a, SparseCoder b, Options options) {
        if (a.cfg().dIn() != b.cfg().dIn()) {
            throw new IllegalArgumentException("the dictionaries read " + a.cfg().dIn() + "- and " + b.cfg().dIn()
                    + "-wide activations; matching needs one width");
        }
        return options.criterion() == Criterion.FOLDED_MSE
                ? ofRows(fold(a).decoder(), fold(b).decoder(), options)
                : ofRows(decoder(a), decoder(b), options);
    }

    /** Matches with {@link Options#defaults()}. */
    public static DictionaryMatch of(SparseCoder a, SparseCoder b) {
        return of(a, b, Options.defaults());
    }

    /**
     * Matches rows {@code a [nA][d]} to rows {@code b [nB][d]} (decoder rows, folded or not; or {@code a} mapped by
     * a layer-to-layer map first). The cosines reported are those of these rows.
     */
    public static DictionaryMatch ofRows(float[][] a, float[][] b, Options options) {
        if (a.length == 0 || b.length == 0) throw new IllegalArgumentException("both dictionaries need latents");
        int d = a[0].length;
        for (float[] r : a) if (r.length != d) throw new IllegalArgumentException("rows of a differ in width");
        for (float[] r : b) if (r.length != d) throw new IllegalArgumentException("rows of b have width " + r.length + ", a has " + d);
        double[][] cos = cosines(a, b);
        double[][] cost = new double[a.length][b.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < b.length; j++) {
                cost[i][j] = options.criterion() == Criterion.COSINE ? -cos[i][j] : squaredDistance(a[i], b[j]);
            }
        }
        int[] assigned = options.method() == Method.HUNGARIAN ? hungarian(cost) : greedy(cost);
        List<Pair> pairs = new ArrayList<>();
        for (int i = 0; i < a.length; i++) {
            int j = assigned[i];
            if (j >= 0 && cos[i][j] >= options.minCosine()) pairs.add(new Pair(i, j, cos[i][j]));
        }
        return new DictionaryMatch(pairs, a.length, b.length, options);
    }

    /** The kept pairs, in order of latent {@code a}. */
    public List<Pair> pairs() {
        return pairs;
    }

    /** The latent of the second dictionary matched to latent {@code a} of the first, if a pair was kept. */
    public OptionalInt partner(int a) {
        if (a < 0 || a >= sizeA) throw new IllegalArgumentException("latent " + a + " is not in [0, " + sizeA + ")");
        for (Pair p : pairs) if (p.a() == a) return OptionalInt.of(p.b());
        return OptionalInt.empty();
    }

    /**
     * For each latent of the first dictionary its partner in the second, when every latent has one (e.g. a planted
     * permutation); empty when some pair was dropped.
     */
    public Optional<int[]> mapping() {
        if (pairs.size() != sizeA) return Optional.empty();
        int[] m = new int[sizeA];
        for (Pair p : pairs) m[p.a()] = p.b();
        return Optional.of(m);
    }

    /** Kept pairs over the first dictionary's latents. */
    public double matchedFraction() {
        return (double) pairs.size() / sizeA;
    }

    /** Median decoder cosine of the kept pairs (NaN when none). */
    public double medianCosine() {
        return median(pairs.stream().mapToDouble(Pair::cosine).toArray());
    }

    public Options options() {
        return options;
    }

    /** The pairs as a table: latent a, latent b, cosine, best first. */
    public Table toTable() {
        IntColumn a = IntColumn.create("latent a"), b = IntColumn.create("latent b");
        DoubleColumn c = DoubleColumn.create("decoder cosine");
        pairs.stream().sorted(Comparator.comparingDouble(Pair::cosine).reversed()).forEach(p -> {
            a.append(p.a());
            b.append(p.b());
            c.append(Math.round(p.cosine() * 1000) / 1000.0);
        });
        return Table.create("matched latents", a, b, c);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "DictionaryMatch[%d of %d latents matched to %d (%s, %s, cos >= %.2f), "
                        + "median cosine %.3f]", pairs.size(), sizeA, sizeB, options.criterion(), options.method(),
                options.minCosine(), medianCosine());
    }

    // ---------------------------------------------------------------- weights

    /** The decoder rows {@code [dSae][dIn]} of a dictionary, in its normalised units. */
    public static float[][] decoder(SparseCoder sae) {
        return rows(sae.weights().get(SaeWeights.W_DEC));
    }

    /** The dictionary with its thresholds folded in and its input scale undone (see the class comment). */
    public static Folded fold(SparseCoder sae) {
        SaeConfig cfg = sae.cfg();
        int dSae = cfg.dSae(), dIn = cfg.dIn();
        double s = cfg.inputScale();
        float[] theta = new float[dSae];
        Arrays.fill(theta, 1f);
        if (sae.weights().has(SaeWeights.THRESHOLD)) {
            float[] t = sae.weights().get(SaeWeights.THRESHOLD).toFloatArray();
            boolean allPositive = true;
            for (float v : t) allPositive &= v > 0;
            if (allPositive) theta = t;
        }
        float[][] dec = decoder(sae);
        float[] wEnc = sae.weights().get(SaeWeights.W_ENC).toFloatArray();       // [dIn, dSae]
        float[] bEnc = sae.weights().get(SaeWeights.B_ENC).toFloatArray();
        float[] bDec = sae.weights().get(SaeWeights.B_DEC).toFloatArray();
        float[][] enc = new float[dSae][dIn];
        float[] bias = new float[dSae];
        for (int i = 0; i < dSae; i++) {
            double th = theta[i];
            // pre = (s x - [b_dec]) . W_enc[:, i] + b_enc[i]; folded: pre / theta
            double shift = 0;
            for (int j = 0; j < dIn; j++) {
                enc[i][j] = (float) (s * wEnc[j * dSae + i] / th);
                if (cfg.applyBDecToInput()) shift += (double) bDec[j] * wEnc[j * dSae + i];
                dec[i][j] = (float) (dec[i][j] * th / s);
            }
            bias[i] = (float) ((bEnc[i] - shift) / th);
        }
        return new Folded(enc, bias, dec, theta.clone());
    }

    static float[][] rows(NDArray m) {
        long[] shape = m.getShape().getShape();
        if (shape.length != 2) throw new IllegalArgumentException("expected a matrix, got " + m.getShape());
        int r = (int) shape[0], c = (int) shape[1];
        float[] flat = m.toFloatArray();
        float[][] out = new float[r][c];
        for (int i = 0; i < r; i++) System.arraycopy(flat, i * c, out[i], 0, c);
        return out;
    }

    /** Cosines of every row of {@code a} with every row of {@code b} (0 where a row is zero). */
    public static double[][] cosines(float[][] a, float[][] b) {
        double[] na = norms(a), nb = norms(b);
        double[][] out = new double[a.length][b.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < b.length; j++) {
                double dot = 0;
                float[] x = a[i], y = b[j];
                for (int k = 0; k < x.length; k++) dot += (double) x[k] * y[k];
                out[i][j] = na[i] == 0 || nb[j] == 0 ? 0 : dot / (na[i] * nb[j]);
            }
        }
        return out;
    }

    private static double[] norms(float[][] rows) {
        double[] n = new double[rows.length];
        for (int i = 0; i < rows.length; i++) {
            double s = 0;
            for (float v : rows[i]) s += (double) v * v;
            n[i] = Math.sqrt(s);
        }
        return n;
    }

    private static double squaredDistance(float[] x, float[] y) {
        double s = 0;
        for (int k = 0; k < x.length; k++) {
            double d = (double) x[k] - y[k];
            s += d * d;
        }
        return s;
    }

    // ---------------------------------------------------------------- assignment

    /**
     * The one-to-one assignment of rows to columns of least total cost (Kuhn-Munkres with row and column potentials,
     * one augmenting path per row). For each row its column, or -1 for rows left over when there are more rows than
     * columns.
     */
    static int[] hungarian(double[][] cost) {
        int n = cost.length, m = cost[0].length;
        if (n > m) {
            double[][] t = new double[m][n];
            for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) t[j][i] = cost[i][j];
            int[] colToRow = hungarian(t);
            int[] out = new int[n];
            Arrays.fill(out, -1);
            for (int j = 0; j < m; j++) if (colToRow[j] >= 0) out[colToRow[j]] = j;
            return out;
        }
        double[] u = new double[n + 1], v = new double[m + 1];
        int[] p = new int[m + 1], way = new int[m + 1];   // p[j]: row (1-based) assigned to column j; column 0 is a sentinel
        for (int i = 1; i <= n; i++) {
            p[0] = i;
            int j0 = 0;
            double[] minv = new double[m + 1];
            Arrays.fill(minv, Double.POSITIVE_INFINITY);
            boolean[] used = new boolean[m + 1];
            do {
                used[j0] = true;
                int i0 = p[j0], j1 = 0;
                double delta = Double.POSITIVE_INFINITY;
                for (int j = 1; j <= m; j++) {
                    if (used[j]) continue;
                    double cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
                    if (cur < minv[j]) {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if (minv[j] < delta) {
                        delta = minv[j];
                        j1 = j;
                    }
                }
                for (int j = 0; j <= m; j++) {
                    if (used[j]) {
                        u[p[j]] += delta;
                        v[j] -= delta;
                    } else {
                        minv[j] -= delta;
                    }
                }
                j0 = j1;
            } while (p[j0] != 0);
            do {
                int j1 = way[j0];
                p[j0] = p[j1];
                j0 = j1;
            } while (j0 != 0);
        }
        int[] out = new int[n];
        Arrays.fill(out, -1);
        for (int j = 1; j <= m; j++) if (p[j] != 0) out[p[j] - 1] = j - 1;
        return out;
    }

    /** Repeatedly the cheapest pair whose row and column are both free. */
    static int[] greedy(double[][] cost) {
        int n = cost.length, m = cost[0].length;
        Integer[] order = new Integer[n * m];
        for (int k = 0; k < order.length; k++) order[k] = k;
        Arrays.sort(order, Comparator.comparingDouble(k -> cost[k / m][k % m]));
        int[] out = new int[n];
        Arrays.fill(out, -1);
        boolean[] colUsed = new boolean[m];
        int left = Math.min(n, m);
        for (int k : order) {
            if (left == 0) break;
            int i = k / m, j = k % m;
            if (out[i] >= 0 || colUsed[j]) continue;
            out[i] = j;
            colUsed[j] = true;
            left--;
        }
        return out;
    }
}
