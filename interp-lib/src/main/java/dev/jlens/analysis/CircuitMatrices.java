package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.model.HookedTransformer;
import dev.jlens.notebook.Display;
import dev.jlens.notebook.HtmlRenderable;
import dev.jlens.viz.Plots;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.exception.MathArithmeticException;
import org.apache.commons.math3.exception.MaxCountExceededException;
import org.apache.commons.math3.linear.EigenDecomposition;
import org.apache.commons.math3.linear.RealMatrix;
import org.apache.commons.math3.linear.SingularValueDecomposition;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.PriorityQueue;

/**
 * A head's QK and OV circuits read straight from the weights, as in "A Mathematical Framework for Transformer
 * Circuits" and TransformerLens's {@code FactoredMatrix}: the full OV circuit {@code W_E W_V W_O W_U}
 * {@code [d_vocab, d_vocab]} (row: the token attended to, column: the logit it raises) and the full QK circuit
 * {@code W_E W_Q W_K^T W_E^T} (row: query token, column: key token), or with the positional embedding
 * {@code W_pos} on either side. Each is kept factored, {@code left [n, d_head] @ right [d_head, m]}, so a
 * {@code d_vocab x d_vocab} matrix is never built unless asked for ({@link Circuit#full()}); rows, columns, entries,
 * the largest entries and the eigenvalues come from the factors.
 *
 * <p>Eigenvalues come from the small matrix {@code right @ left} {@code [d_head, d_head]}, which has the same non-zero
 * eigenvalues as the full product (TransformerLens's {@code FactoredMatrix.eigenvalues} does the same). They are
 * computed in double precision with Apache Commons Math 3.6.1's {@link EigenDecomposition}, which handles
 * non-symmetric real matrices (Hessenberg reduction and Schur form, as LAPACK's {@code dgeev}): a well-kept library
 * that Tablesaw already puts on the classpath, in the same version, so it costs no new jar (EJML, the other
 * candidate, is not available offline here); at {@code d_head <= 256} its speed does not matter. Its QR iteration
 * does not always converge on rank-deficient matrices; {@link Eigenvalues#of} then splits off the null space.
 *
 * <p>The weights are processed as TransformerLens's {@code from_pretrained} does by default ({@link Processing}): for a
 * LayerNorm model the embeddings and {@code W_O} are centred over {@code d_model} (the next norm removes their mean
 * anyway), every norm's weight is folded into the matrix that reads from it ({@code ln1.w} into {@code W_Q}, {@code W_K},
 * {@code W_V}; {@code ln_final.w} into {@code W_U}), and {@code W_U} is centred over the vocabulary (logits are
 * shift-invariant). The norms' scales (one positive number per token and position) and all biases are left out, as
 * in TransformerLens; {@code 1/sqrt(d_head)} is not applied to QK. A head in a later layer is read on the direct path
 * from the embeddings, also as in TransformerLens.
 *
 * <p>Arrays it hands out are owned by this object (close it, or the model) and also registered with the caller's
 * {@link NDScope}, like a forward result; a {@link Circuit} holds its two factors until it is closed.
 *
 * <pre>{@code
 * try (var circuits = CircuitMatrices.of(model)) {
 *     var ov = circuits.ov(1, 4);
 *     ov.eigenvalues().copyingScore();          // > 0: the head copies the token it attends to
 *     ov.heatmap(List.of("t0", "t1", "t2"));    // 3 x 3 block of the full OV circuit
 *     circuits.copyingScores().heatmap();       // every head
 * }
 * }</pre>
 */
public final class CircuitMatrices implements AutoCloseable {

    /**
     * How the weights are processed before the products (TransformerLens's {@code from_pretrained} options of the
     * same names). Centring applies to LayerNorm models only (RMSNorm does not centre).
     *
     * @param foldLn               fold each norm's weight into the matrix that reads the normalised residual
     * @param centerWritingWeights centre {@code W_E}, {@code W_pos} and {@code W_O} over {@code d_model}
     * @param centerUnembed        centre {@code W_U} over the vocabulary
     */
    public record Processing(boolean foldLn, boolean centerWritingWeights, boolean centerUnembed) {
        /** TransformerLens's defaults: all three on. */
        public static Processing transformerLens() {
            return new Processing(true, true, true);
        }

        /** The raw weights, as stored. */
        public static Processing none() {
            return new Processing(false, false, false);
        }
    }

    /** What a circuit's rows or columns index: token ids ({@code W_E}) or positions ({@code W_pos}). */
    public enum Source { TOKENS, POSITIONS }

    /** Which circuit of a head. */
    public enum Kind { QK, OV }

    /** One entry of a circuit: {@code matrix[row][column] = value}. */
    public record Entry(long row, long column, double value) {}

    /**
     * Eigenvalues of a square circuit, largest modulus first.
     *
     * @param real      real parts
     * @param imaginary imaginary parts (complex ones come in conjugate pairs)
     */
    public record Eigenvalues(double[] real, double[] imaginary) implements HtmlRenderable {
        /** Copies the arrays; they must have the same length. */
        public Eigenvalues {
            if (real.length != imaginary.length) {
                throw new IllegalArgumentException("real and imaginary parts differ in length: " + real.length + " vs "
                        + imaginary.length);
            }
            real = real.clone();
            imaginary = imaginary.clone();
        }

        /** The real parts (a copy). */
        @Override
        public double[] real() {
            return real.clone();
        }

        /** The imaginary parts (a copy). */
        @Override
        public double[] imaginary() {
            return imaginary.clone();
        }

        /** Number of eigenvalues. */
        public int size() {
            return real.length;
        }

        /** Moduli {@code |λ|}. */
        public double[] modulus() {
            double[] m = new double[real.length];
            for (int i = 0; i < m.length; i++) m[i] = Math.hypot(real[i], imaginary[i]);
            return m;
        }

        /**
         * {@code Re(Σ λ) / Σ |λ|} in {@code [-1, 1]}: 1 when every eigenvalue is positive real (for an OV circuit, the
         * head copies the token it attends to), -1 when all are negative real (it suppresses it). 0 for a zero matrix.
         */
        public double copyingScore() {
            double sum = 0, abs = 0;
            for (int i = 0; i < real.length; i++) {
                sum += real[i];
                abs += Math.hypot(real[i], imaginary[i]);
            }
            return abs == 0 ? 0 : sum / abs;
        }

        /** Rank, real part, imaginary part and modulus of each eigenvalue. */
        public Table toTable() {
            return Table.create("eigenvalues", IntColumn.indexColumn("rank", real.length, 0),
                    DoubleColumn.create("real", real), DoubleColumn.create("imaginary", imaginary),
                    DoubleColumn.create("modulus", modulus()));
        }

        /** The eigenvalues in the complex plane. */
        public XYChart scatter(String title) {
            return Plots.scatter(title, "real", "imaginary", real, imaginary, null);
        }

        @Override
        public String toHtml() {
            return Display.render(toTable()).get(Display.HTML);
        }

        /**
         * Eigenvalues of a square matrix {@code m[i][j]} (any real matrix, symmetric or not), largest modulus first,
         * by Commons Math's {@link EigenDecomposition}. Its QR iteration can fail to converge on a cluster of zero
         * eigenvalues (measured: 6 of 8 rank-4 products of 24 x 24 in the tests); then the numerical null space
         * (singular values below {@code n * 2^-23} of the largest, float32 precision) is split off by an SVD, those
         * eigenvalues are 0, and the iteration runs on the remaining {@code r x r} matrix.
         */
        public static Eigenvalues of(double[][] m) {
            int n = m.length;
            for (double[] row : m) {
                if (row.length != n) {
                    throw new IllegalArgumentException("eigenvalues need a square matrix, got " + n + " rows of "
                            + row.length);
                }
            }
            boolean zero = true;
            for (double[] row : m) for (double v : row) zero &= v == 0;
            if (zero) return new Eigenvalues(new double[n], new double[n]);   // (the library refuses a zero matrix)
            double[] re = new double[n], im = new double[n];
            RealMatrix a = new Array2DRowRealMatrix(m, true);
            try {
                EigenDecomposition eig = new EigenDecomposition(a);
                re = eig.getRealEigenvalues();
                im = eig.getImagEigenvalues();
            } catch (MaxCountExceededException | MathArithmeticException notConverged) {
                // Commons Math's QR iteration can stall on a cluster of zero eigenvalues (a rank-deficient matrix,
                // e.g. a full d_vocab x d_vocab circuit): split off the null space and iterate on the rest.
                // A = U S V^T has the non-zero eigenvalues of (S_r V_r^T) U_r [r, r], r = the numerical rank.
                SingularValueDecomposition svd = new SingularValueDecomposition(a);
                double[] sv = svd.getSingularValues();
                double tol = sv.length == 0 ? 0 : sv[0] * n * 0x1p-23;   // float32 precision: the weights' own
                int r = 0;
                while (r < sv.length && sv[r] > tol) r++;
                if (r == n) throw notConverged;
                if (r > 0) {
                    RealMatrix ur = svd.getU().getSubMatrix(0, n - 1, 0, r - 1);
                    RealMatrix vr = svd.getV().getSubMatrix(0, n - 1, 0, r - 1);
                    RealMatrix sr = svd.getS().getSubMatrix(0, r - 1, 0, r - 1);
                    EigenDecomposition eig = new EigenDecomposition(sr.multiply(vr.transpose()).multiply(ur));
                    System.arraycopy(eig.getRealEigenvalues(), 0, re, 0, r);
                    System.arraycopy(eig.getImagEigenvalues(), 0, im, 0, r);
                }
            }
            double[] fre = re, fim = im;
            Integer[] order = new Integer[n];
            for (int i = 0; i < n; i++) order[i] = i;
            Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> -Math.hypot(fre[i], fim[i]))
                    .thenComparingDouble(i -> -fre[i]).thenComparingDouble(i -> -fim[i]));
            double[] r = new double[n], j = new double[n];
            for (int i = 0; i < n; i++) {
                r[i] = fre[order[i]];
                j[i] = fim[order[i]];
            }
            return new Eigenvalues(r, j);
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("Eigenvalues[");
            for (int i = 0; i < real.length; i++) {
                if (i > 0) sb.append(", ");
                if (i == 8) {
                    sb.append("... ").append(real.length - 8).append(" more");
                    break;
                }
                sb.append(String.format(java.util.Locale.ROOT, imaginary[i] == 0 ? "%.4g" : "%.4g%+.4gi", real[i],
                        imaginary[i]));
            }
            return sb.append("], copying score ").append(String.format(java.util.Locale.ROOT, "%.4f", copyingScore()))
                    .append(']').toString();
        }
    }

    private final HookedTransformer model;
    private final Processing processing;
    private final NDManager manager;
    private final boolean centres;
    private boolean closed;

    private CircuitMatrices(HookedTransformer model, Processing processing) {
        this.model = Objects.requireNonNull(model, "model");
        this.processing = Objects.requireNonNull(processing, "processing");
        this.manager = model.manager().newSubManager();
        this.centres = model.normCentres();
    }

    /** The circuits of {@code model}'s heads, weights processed as TransformerLens does by default. */
    public static CircuitMatrices of(HookedTransformer model) {
        return of(model, Processing.transformerLens());
    }

    /** The circuits of {@code model}'s heads, weights processed as {@code processing} says. */
    public static CircuitMatrices of(HookedTransformer model, Processing processing) {
        return new CircuitMatrices(model, processing);
    }

    /** The model these circuits read. */
    public HookedTransformer model() {
        return model;
    }

    /** How the weights are processed. */
    public Processing processing() {
        return processing;
    }

    /**
     * The full OV circuit of head {@code head} in layer {@code layer}: {@code W_E W_V[h] W_O[h] W_U}
     * {@code [d_vocab, d_vocab]}; entry {@code [s, t]} is how much attending to token {@code s} raises the logit of
     * {@code t} on the direct path. A positive diagonal (and positive eigenvalues) is a copying head.
     */
    public Circuit ov(int layer, int head) {
        checkOpen();
        int l = checkLayer(layer);
        checkHead(head);
        NDArray left, right;
        try (NDScope scope = new NDScope()) {
            left = reading(Source.TOKENS, l).matMul(model.W_V(l).get(head));        // [V, dh]
            NDArray wO = model.W_O(l).get(head);                                     // [dh, d]
            if (centering()) wO = wO.sub(wO.mean(new int[] {-1}, true));
            right = wO.matMul(unembedding());                                        // [dh, V]
            NDScope.unregister(left, right);
        }
        return new Circuit(this, Kind.OV, l, head, Source.TOKENS, Source.TOKENS, handOut(left), handOut(right));
    }

    /**
     * The full QK circuit from tokens to tokens: {@code W_E W_Q[h] W_K[h]^T W_E^T} {@code [d_vocab, d_vocab]}; entry
     * {@code [q, k]} is the attention score (before {@code 1/sqrt(d_head)}) that query token {@code q} gives key token
     * {@code k} on the direct path from the embeddings.
     */
    public Circuit qk(int layer, int head) {
        return qk(layer, head, Source.TOKENS, Source.TOKENS);
    }

    /**
     * The positional QK circuit {@code W_pos W_Q[h] W_K[h]^T W_pos^T} {@code [n_ctx, n_ctx]}: which positions a head
     * prefers to attend to from each position on positional embeddings alone (a previous-token head has a stripe
     * below the diagonal). Models without learned positions (RoPE) throw.
     */
    public Circuit qkPositions(int layer, int head) {
        return qk(layer, head, Source.POSITIONS, Source.POSITIONS);
    }

    /** A QK circuit with queries and keys read from token or positional embeddings. */
    public Circuit qk(int layer, int head, Source query, Source key) {
        checkOpen();
        int l = checkLayer(layer);
        checkHead(head);
        NDArray left, right;
        try (NDScope scope = new NDScope()) {
            left = reading(query, l).matMul(model.W_Q(l).get(head));                // [n, dh]
            right = reading(key, l).matMul(model.W_K(l).get(head)).transpose().duplicate();   // [dh, m]
            NDScope.unregister(left, right);
        }
        return new Circuit(this, Kind.QK, l, head, query, key, handOut(left), handOut(right));
    }

    /** Eigenvalues of the OV circuit of one head ({@code ov(layer, head).eigenvalues()}, without keeping it). */
    public Eigenvalues ovEigenvalues(int layer, int head) {
        try (Circuit c = ov(layer, head)) {
            return c.eigenvalues();
        }
    }

    /**
     * The copying score {@link Eigenvalues#copyingScore()} of every head's OV circuit, {@code [layer][head]}: near 1
     * for heads that copy the token they attend to into the logits (induction heads, many name movers), negative for
     * heads that suppress it.
     */
    public HeadDetectors.HeadScores copyingScores() {
        checkOpen();
        int layers = model.nLayers(), heads = model.cfg().nHeads();
        double[][] s = new double[layers][heads];
        for (int l = 0; l < layers; l++) {
            for (int h = 0; h < heads; h++) s[l][h] = ovEigenvalues(l, h).copyingScore();
        }
        return new HeadDetectors.HeadScores("copying score (OV eigenvalues)", s);
    }

    /**
     * The id of a token written as text, as {@link HookedTransformer#toSingleToken}, or as a decimal id
     * ({@code "#17"}); unknown text or an id outside the vocabulary throws naming it and the valid ids.
     */
    public long tokenId(String token) {
        return tokenIdOf(model, token);
    }

    static long tokenIdOf(HookedTransformer model, String token) {
        Objects.requireNonNull(token, "token");
        int v = model.cfg().dVocab();
        if (token.matches("#\\d{1,10}")) return checkToken(model, Long.parseLong(token.substring(1)));
        try {
            return checkToken(model, model.toSingleToken(token));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("unknown token '" + token + "': " + e.getMessage() + " (valid token ids "
                    + "are 0.." + (v - 1) + "; write an id as \"#17\")", e);
        }
    }

    static long checkToken(HookedTransformer model, long id) {
        int v = model.cfg().dVocab();
        if (id < 0 || id >= v) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary: valid ids are 0.."
                    + (v - 1) + " (d_vocab = " + v + ")");
        }
        return id;
    }

    // ------------------------------------------------------------------ weights, processed

    private boolean centering() {
        return processing.centerWritingWeights() && centres;
    }

    /** The embedding a head in {@code layer} reads, centred and times {@code ln1.w} as processing says: [n, d]. */
    private NDArray reading(Source source, int layer) {
        NDArray e;
        if (source == Source.TOKENS) {
            e = model.W_E();
        } else {
            if (!model.tlWeights().names().contains("pos_embed.W_pos")) {
                throw new IllegalArgumentException("this model has no learned positional embedding W_pos (its "
                        + "positions are rotary), so it has no positional QK circuit; use Source.TOKENS");
            }
            e = model.W_pos();
        }
        if (centering()) e = e.sub(e.mean(new int[] {-1}, true));
        if (processing.foldLn()) e = e.mul(model.tlWeights().get("blocks." + layer + ".ln1.w"));
        return e;
    }

    /** {@code W_U} with {@code ln_final.w} folded in and centred over the vocabulary, as processing says: [d, V]. */
    private NDArray unembedding() {
        NDArray u = model.W_U();
        if (processing.foldLn()) u = u.mul(model.tlWeights().get("ln_final.w").expandDims(1));
        if (processing.centerUnembed()) u = u.sub(u.mean(new int[] {-1}, true));
        return u;
    }

    private int checkLayer(int layer) {
        int n = model.nLayers();
        if (layer < -n || layer >= n) {
            throw new IllegalArgumentException("layer " + layer + " is out of range: this model has " + n
                    + " layers, valid layers are [" + (-n) + ", " + n + ") (negative ones count from the end)");
        }
        return layer < 0 ? layer + n : layer;
    }

    private void checkHead(int head) {
        int n = model.cfg().nHeads();
        if (head < 0 || head >= n) {
            throw new IllegalArgumentException("head " + head + " is out of range: this model has " + n
                    + " heads per layer, valid heads are [0, " + n + ")");
        }
    }

    /**
     * Hands an array made inside a scope that has closed (and unregistered from it) to the caller: owned by this
     * object, and registered with the caller's scope, if any.
     */
    private NDArray handOut(NDArray a) {
        a.attach(manager);
        NDScope.register(a);
        return a;
    }

    /** Computes an array in a scope of its own (freeing the intermediates) and hands it out. */
    private NDArray compute(java.util.function.Supplier<NDArray> f) {
        NDArray out;
        try (NDScope scope = new NDScope()) {
            out = f.get();
            NDScope.unregister(out);
        }
        return handOut(out);
    }

    private void checkOpen() {
        if (closed || !manager.isOpen()) {
            throw new IllegalStateException("these CircuitMatrices were closed (or their model was); make new ones "
                    + "with CircuitMatrices.of(model)");
        }
    }

    /** Frees every circuit and array these circuits handed out. */
    @Override
    public void close() {
        closed = true;
        manager.close();
    }

    @Override
    public String toString() {
        return "CircuitMatrices(" + model + ", " + processing + ")";
    }

    // ------------------------------------------------------------------ one circuit

    /**
     * One head's QK or OV circuit as a factored matrix {@code left [n, d_head] @ right [d_head, m]}. Rows index the
     * {@link #rowSource()} (tokens or positions), columns the {@link #columnSource()}. Arrays it returns are new,
     * owned by the {@link CircuitMatrices} that made it and registered with the caller's {@link NDScope}.
     */
    public static final class Circuit implements AutoCloseable, HtmlRenderable {
        /** The most entries {@link #topEntries} computes at once (rows at a time, times the columns). */
        private static final long BLOCK = 1L << 22;

        private final CircuitMatrices owner;
        private final Kind kind;
        private final int layer, head;
        private final Source rows, columns;
        private final NDArray left, right;

        Circuit(CircuitMatrices owner, Kind kind, int layer, int head, Source rows, Source columns, NDArray left,
                NDArray right) {
            this.owner = owner;
            this.kind = kind;
            this.layer = layer;
            this.head = head;
            this.rows = rows;
            this.columns = columns;
            this.left = left;
            this.right = right;
        }

        /** QK or OV. */
        public Kind kind() {
            return kind;
        }

        /** The head's layer. */
        public int layer() {
            return layer;
        }

        /** The head's index in its layer. */
        public int head() {
            return head;
        }

        /** {@code L1H4 OV}, {@code L0H7 QK (positions)}. */
        public String name() {
            String src = rows == Source.TOKENS && columns == Source.TOKENS ? ""
                    : " (" + label(rows) + " x " + label(columns) + ")";
            return "L" + layer + "H" + head + " " + kind + src;
        }

        private static String label(Source s) {
            return s == Source.TOKENS ? "tokens" : "positions";
        }

        /** What the rows index. */
        public Source rowSource() {
            return rows;
        }

        /** What the columns index. */
        public Source columnSource() {
            return columns;
        }

        /** The left factor {@code [n, d_head]} (the circuit's own array: do not close it). */
        public NDArray left() {
            checkOpen();
            return left;
        }

        /** The right factor {@code [d_head, m]} (the circuit's own array: do not close it). */
        public NDArray right() {
            checkOpen();
            return right;
        }

        /** The shape of the full product {@code [n, m]}. */
        public Shape shape() {
            return new Shape(left.getShape().get(0), right.getShape().get(1));
        }

        /** Row {@code i} of the product {@code [m]}. */
        public NDArray row(long i) {
            checkIndex(i, rows, shape().get(0));
            return rows(i).reshape(shape().get(1));
        }

        /** Column {@code j} of the product {@code [n]}. */
        public NDArray column(long j) {
            checkIndex(j, columns, shape().get(1));
            return columns(j).reshape(shape().get(0));
        }

        /** Rows {@code ids} of the product {@code [ids.length, m]}. */
        public NDArray rows(long... ids) {
            checkOpen();
            for (long i : ids) checkIndex(i, rows, shape().get(0));
            return owner.compute(() -> pick(left, ids, 0).matMul(right));
        }

        /** Columns {@code ids} of the product {@code [n, ids.length]}. */
        public NDArray columns(long... ids) {
            checkOpen();
            for (long j : ids) checkIndex(j, columns, shape().get(1));
            return owner.compute(() -> left.matMul(pick(right, ids, 1)));
        }

        /** The block {@code [rowIds.length, columnIds.length]} of the product. */
        public NDArray submatrix(long[] rowIds, long[] columnIds) {
            checkOpen();
            for (long i : rowIds) checkIndex(i, rows, shape().get(0));
            for (long j : columnIds) checkIndex(j, columns, shape().get(1));
            return owner.compute(() -> pick(left, rowIds, 0).matMul(pick(right, columnIds, 1)));
        }

        /** One entry of the product. */
        public double get(long i, long j) {
            try (NDScope scope = new NDScope()) {
                return submatrix(new long[] {i}, new long[] {j}).getFloat(0, 0);
            }
        }

        /** The full product {@code [n, m]} (for a vocabulary of 50k tokens that is 10 GB: prefer rows or blocks). */
        public NDArray full() {
            checkOpen();
            return owner.compute(() -> left.matMul(right));
        }

        /** The {@code k} largest entries of the product, largest first, computed a block of rows at a time. */
        public List<Entry> topEntries(int k) {
            return extremes(k, true);
        }

        /** The {@code k} smallest (most negative) entries of the product, smallest first. */
        public List<Entry> bottomEntries(int k) {
            return extremes(k, false);
        }

        private List<Entry> extremes(int k, boolean largest) {
            checkOpen();
            if (k < 0) throw new IllegalArgumentException("k must be >= 0, got " + k);
            long n = shape().get(0), m = shape().get(1);
            int kk = (int) Math.min(k, n * m);
            Comparator<Entry> worstFirst = Comparator.comparingDouble(e -> largest ? e.value() : -e.value());
            PriorityQueue<Entry> best = new PriorityQueue<>(worstFirst);
            long block = Math.max(1, BLOCK / Math.max(1, m));
            for (long r0 = 0; r0 < n && kk > 0; r0 += block) {
                long r1 = Math.min(n, r0 + block);
                try (NDScope scope = new NDScope()) {
                    NDArray part = left.get(new NDIndex("{}:{}", r0, r1)).matMul(right).flatten();
                    int take = (int) Math.min(kk, part.size());
                    NDList top = part.topK(take, 0, largest, false);
                    float[] vals = top.get(0).toFloatArray();
                    long[] idx = top.get(1).toType(DataType.INT64, false).toLongArray();
                    for (int i = 0; i < vals.length; i++) {
                        Entry e = new Entry(r0 + idx[i] / m, idx[i] % m, vals[i]);
                        if (best.size() < kk) {
                            best.add(e);
                        } else if (worstFirst.compare(e, best.peek()) > 0) {
                            best.poll();
                            best.add(e);
                        }
                    }
                }
            }
            List<Entry> out = new ArrayList<>(best);
            out.sort(worstFirst.reversed().thenComparingLong(Entry::row).thenComparingLong(Entry::column));
            return out;
        }

        /**
         * The eigenvalues of the (square) product, from {@code right @ left} {@code [d_head, d_head]}: the product's
         * non-zero eigenvalues, plus zeros for the rank it lacks. A non-square circuit (tokens x positions) throws.
         */
        public Eigenvalues eigenvalues() {
            checkOpen();
            Shape s = shape();
            if (s.get(0) != s.get(1)) {
                throw new IllegalArgumentException(name() + " is " + s + ", not square: eigenvalues need a square "
                        + "circuit (tokens x tokens or positions x positions)");
            }
            double[][] small;
            try (NDScope scope = new NDScope()) {
                NDArray ba = right.matMul(left);
                int d = (int) ba.getShape().get(0);
                float[] f = ba.toFloatArray();
                small = new double[d][d];
                for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) small[i][j] = f[i * d + j];
            }
            return Eigenvalues.of(small);
        }

        /** The copying score of the eigenvalues ({@link Eigenvalues#copyingScore()}). */
        public double copyingScore() {
            return eigenvalues().copyingScore();
        }

        /**
         * A heatmap of the block over the same tokens on both axes, written as text (as
         * {@link HookedTransformer#toSingleToken}) or as ids ({@code "#17"}); token circuits only.
         */
        public HeatMapChart heatmap(List<String> tokens) {
            return heatmap(tokens, tokens);
        }

        /** A heatmap of the block over row tokens and column tokens (text, or ids as {@code "#17"}). */
        public HeatMapChart heatmap(List<String> rowTokens, List<String> columnTokens) {
            checkOpen();
            return heatmap(ids(rowTokens, rows, "rows"), ids(columnTokens, columns, "columns"));
        }

        /** A heatmap of the block {@code [rowIds, columnIds]} (token ids or positions), labelled with the tokens. */
        public HeatMapChart heatmap(long[] rowIds, long[] columnIds) {
            if (rowIds.length == 0 || columnIds.length == 0) {
                throw new IllegalArgumentException("a heatmap needs at least one row and one column");
            }
            double[][] values = new double[rowIds.length][columnIds.length];
            try (NDScope scope = new NDScope()) {
                float[] f = submatrix(rowIds, columnIds).toFloatArray();
                for (int i = 0; i < rowIds.length; i++) {
                    for (int j = 0; j < columnIds.length; j++) values[i][j] = f[i * columnIds.length + j];
                }
            }
            String yTitle = kind == Kind.OV ? "source token (attended to)" : "query " + label(rows);
            String xTitle = kind == Kind.OV ? "logit of token" : "key " + label(columns);
            return Plots.heatmap(name(), values, labels(rowIds, rows), labels(columnIds, columns), xTitle, yTitle);
        }

        private long[] ids(List<String> tokens, Source source, String axis) {
            if (source != Source.TOKENS) {
                throw new IllegalArgumentException("the " + axis + " of " + name() + " are positions, not tokens: "
                        + "give positions with heatmap(long[], long[])");
            }
            return tokens.stream().mapToLong(owner::tokenId).toArray();
        }

        private List<String> labels(long[] ids, Source source) {
            List<String> out = new ArrayList<>();
            for (long id : ids) {
                if (source == Source.POSITIONS) {
                    out.add("pos " + id);
                } else {
                    out.add(owner.model.tokenizer().isPresent() ? owner.model.toStrTokens(new long[] {id}).get(0)
                            : "#" + id);
                }
            }
            // Plots needs distinct categories; repeated tokens get their index
            List<String> distinct = new ArrayList<>();
            for (int i = 0; i < out.size(); i++) {
                String s = out.get(i);
                distinct.add(out.indexOf(s) != i || out.lastIndexOf(s) != i ? s + " (" + i + ")" : s);
            }
            return distinct;
        }

        private void checkIndex(long i, Source source, long size) {
            if (i < 0 || i >= size) {
                String what = source == Source.TOKENS ? "token id" : "position";
                throw new IllegalArgumentException(what + " " + i + " is out of range for " + name()
                        + ": valid " + what + "s are 0.." + (size - 1));
            }
        }

        private static NDArray pick(NDArray a, long[] ids, int axis) {
            NDArray idx = a.getManager().create(ids);
            return a.get(new NDIndex(axis == 0 ? "{}" : ":, {}", idx));
        }

        private void checkOpen() {
            owner.checkOpen();
            if (!left.isReleased() && !right.isReleased()) return;
            throw new IllegalStateException(name() + " was closed; make it again with circuits." + kind.name()
                    .toLowerCase(java.util.Locale.ROOT) + "(" + layer + ", " + head + ")");
        }

        /** Rows, columns, inner dimension and the eigenvalues' copying score where square. */
        public Table toTable() {
            Shape s = shape();
            Table t = Table.create(name(), LongColumn.create("rows", new long[] {s.get(0)}),
                    LongColumn.create("columns", new long[] {s.get(1)}),
                    IntColumn.create("d_head", new int[] {(int) left.getShape().get(1)}));
            if (s.get(0) == s.get(1)) t.addColumns(DoubleColumn.create("copying score", new double[] {copyingScore()}));
            return t;
        }

        @Override
        public String toHtml() {
            return Display.render(toTable()).get(Display.HTML);
        }

        /** Frees the two factors. */
        @Override
        public void close() {
            left.close();
            right.close();
        }

        @Override
        public String toString() {
            return "Circuit(" + name() + ", " + shape() + " = [" + left.getShape().get(0) + ", "
                    + left.getShape().get(1) + "] @ [" + right.getShape().get(0) + ", " + right.getShape().get(1) + "])";
        }
    }
}
