package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import dev.jlens.store.ActivationSource;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.Table;

import java.util.Arrays;
import java.util.Objects;

/**
 * Latent Scaling (Minder, Dumas et al. 2025): is a crosscoder latent that looks fine-tuned-only (a base decoder norm
 * near 0) really absent from the base model? An L1 crosscoder can zero a latent's base decoder although the base
 * model's activations carry the same direction (<em>complete shrinkage</em>: the direction then sits in the base
 * model's reconstruction error), or explain the base model's share with other latents (<em>latent decoupling</em>).
 *
 * <p>For latent {@code j} with fine-tuned decoder direction {@code d}, activation {@code f_j(x)} and a target
 * {@code y(x)}, the least-squares scale of {@code f_j d} against {@code y} over the latent's firings is
 * {@code beta = sum f_j <d, y> / (||d||^2 sum f_j^2)}. Targets, per model {@code m} (base, fine-tuned), in the
 * crosscoder's normalised units: the <em>error</em> target {@code x_m - (recon_m - f_j dec_m[j])} (what the rest of
 * the dictionary leaves unexplained, the latent's own part included) and the <em>reconstruction</em> target
 * {@code recon_m - f_j dec_m[j]} (what the other latents reconstruct). Ratios:
 * {@code nu_error = beta_error(base) / beta_error(fine-tuned)} (near 1: the base model carries the direction as much as
 * the fine-tuned one, unexplained: complete shrinkage) and {@code nu_recon = beta_recon(base) / beta_error(fine-tuned)}
 * (near 1: other latents reconstruct the direction in the base model: decoupling). The error ratio follows the
 * paper's definition; normalising the reconstruction scale by the fine-tuned error scale (the latent's own strength)
 * is this library's choice, so that a fine-tuned reconstruction without the latent, which is near 0 by construction,
 * never divides. A genuinely fine-tuned-only latent has both ratios near 0.
 */
public final class LatentScaling {
    /** Ratios above which a latent is flagged (defaults: 0.5 for both). */
    public record Thresholds(double shrinkage, double decoupling) {
        public static Thresholds defaults() {
            return new Thresholds(0.5, 0.5);
        }
    }

    private final int[] latents;
    private final long[] firings;
    private final double[] betaErrBase, betaErrFt, betaRecBase, betaRecFt;
    private final Thresholds thresholds;

    private LatentScaling(int[] latents, long[] firings, double[] ebase, double[] eft, double[] rbase, double[] rft,
                          Thresholds thresholds) {
        this.latents = latents;
        this.firings = firings;
        this.betaErrBase = ebase;
        this.betaErrFt = eft;
        this.betaRecBase = rbase;
        this.betaRecFt = rft;
        this.thresholds = thresholds;
    }

    /**
     * The scales of {@code latents} (e.g. {@code cc.latents(Crosscoder.Category.FINETUNED_ONLY)}) over {@code batches}
     * batches of {@code batchSize} two-source activations (base first, as the crosscoder was trained).
     */
    public static LatentScaling of(Crosscoder cc, ActivationSource source, int[] latents, int batches, int batchSize) {
        return of(cc, source, latents, batches, batchSize, Thresholds.defaults());
    }

    /** As {@link #of(Crosscoder, ActivationSource, int[], int, int)} with flag thresholds. */
    public static LatentScaling of(Crosscoder cc, ActivationSource source, int[] latents, int batches, int batchSize,
                                   Thresholds thresholds) {
        Objects.requireNonNull(cc, "cc");
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(thresholds, "thresholds");
        SparseCoder coder = cc.coder();
        int dSae = coder.cfg().dSae(), dIn = coder.cfg().dIn(), dm = dIn / 2;
        if (source.width() != dIn) {
            throw new IllegalArgumentException("the source gives vectors of width " + source.width()
                    + " but the crosscoder reads " + dIn + " (two models of width " + dm + ")");
        }
        if (batches < 1 || batchSize < 1) throw new IllegalArgumentException("batches and batchSize must be >= 1");
        int[] js = latents.clone();
        for (int j : js) {
            if (j < 0 || j >= dSae) throw new IllegalArgumentException("latent " + j + " is out of range 0.." + (dSae - 1));
        }
        int n = js.length;
        double[] ffSum = new double[n];
        double[][] num = new double[4][n];   // error base, error ft, recon base, recon ft
        long[] fired = new long[n];
        double[] dNorm2 = new double[n];
        float scale = (float) coder.cfg().inputScale();
        try (NDManager m = NDManager.newBaseManager(); NDScope outer = new NDScope()) {
            NDArray wDec = coder.weights().get(SaeWeights.W_DEC);                     // [dSae, 2 dm]
            NDArray idx = m.create(Arrays.stream(js).asLongStream().toArray());
            NDArray decSel = wDec.get(idx);                                           // [n, 2 dm]
            NDArray decBase = decSel.get(new NDIndex(":, :{}", dm)), decFt = decSel.get(new NDIndex(":, {}:", dm));
            // <dec_m[j], d_j> per model and latent: what the latent's own part contributes along d_j (||d_j||^2 for
            // the fine-tuned model)
            NDArray[] own = {decBase.mul(decFt).sum(new int[] {1}), decFt.square().sum(new int[] {1})};
            float[] dn = own[1].toFloatArray();
            for (int i = 0; i < n; i++) dNorm2[i] = dn[i];
            for (long step = 0; step < batches; step++) {
                try (NDScope scope = new NDScope()) {
                    NDArray x = source.batch(step, batchSize, m);
                    NDArray f = coder.encode(x);                                      // [B, dSae]
                    NDArray xs = scale == 1f ? x : x.mul(scale);
                    NDArray recon = coder.decode(f);                                  // normalised units
                    NDArray fj = f.get(new NDIndex(":, {}", idx));                    // [B, n]
                    NDArray[] xsM = {xs.get(new NDIndex(":, :{}", dm)), xs.get(new NDIndex(":, {}:", dm))};
                    NDArray[] recM = {recon.get(new NDIndex(":, :{}", dm)), recon.get(new NDIndex(":, {}:", dm))};
                    float[] ff = fj.square().sum(new int[] {0}).toFloatArray();
                    float[] cnt = fj.gt(0).toType(ai.djl.ndarray.types.DataType.FLOAT32, false).sum(new int[] {0}).toFloatArray();
                    for (int i = 0; i < n; i++) {
                        ffSum[i] += ff[i];
                        fired[i] += (long) cnt[i];
                    }
                    for (int mi = 0; mi < 2; mi++) {
                        // <d_j, y> per row and latent, with y = recon_m - f_j dec_m[j]  or  x_m - that
                        NDArray dDotRec = recM[mi].matMul(decFt.transpose());          // [B, n]
                        NDArray dDotX = xsM[mi].matMul(decFt.transpose());             // [B, n]
                        NDArray recTarget = dDotRec.sub(fj.mul(own[mi]));              // <d, recon_m - f dec_m>
                        NDArray errTarget = dDotX.sub(recTarget);                      // <d, x_m - (recon_m - f dec_m)>
                        float[] e = fj.mul(errTarget).sum(new int[] {0}).toFloatArray();
                        float[] r = fj.mul(recTarget).sum(new int[] {0}).toFloatArray();
                        for (int i = 0; i < n; i++) {
                            num[mi][i] += e[i];
                            num[2 + mi][i] += r[i];
                        }
                    }
                }
            }
        }
        double[][] beta = new double[4][n];
        for (int k = 0; k < 4; k++) {
            for (int i = 0; i < n; i++) {
                double den = dNorm2[i] * ffSum[i];
                beta[k][i] = den > 0 ? num[k][i] / den : Double.NaN;
            }
        }
        return new LatentScaling(js, fired, beta[0], beta[1], beta[2], beta[3], thresholds);
    }

    /** The latents analysed, in the order given. */
    public int[] latents() {
        return latents.clone();
    }

    /** {@code beta_error(base) / beta_error(fine-tuned)} per latent (NaN for a latent that never fired). */
    public double[] nuError() {
        double[] out = new double[latents.length];
        for (int i = 0; i < out.length; i++) out[i] = betaErrBase[i] / betaErrFt[i];
        return out;
    }

    /** {@code beta_recon(base) / beta_error(fine-tuned)} per latent. */
    public double[] nuReconstruction() {
        double[] out = new double[latents.length];
        for (int i = 0; i < out.length; i++) out[i] = betaRecBase[i] / betaErrFt[i];
        return out;
    }

    /** Whether latent number {@code i} of {@link #latents()} is flagged as completely shrunk. */
    public boolean completeShrinkage(int i) {
        return nuError()[i] > thresholds.shrinkage();
    }

    /** Whether latent number {@code i} of {@link #latents()} is flagged as decoupled. */
    public boolean decoupled(int i) {
        return nuReconstruction()[i] > thresholds.decoupling();
    }

    /** Per latent: firings, the four scales, both ratios and both flags. */
    public Table table() {
        double[] ne = nuError(), nr = nuReconstruction();
        BooleanColumn shr = BooleanColumn.create("complete_shrinkage"), dec = BooleanColumn.create("decoupled");
        for (int i = 0; i < latents.length; i++) {
            shr.append(completeShrinkage(i));
            dec.append(decoupled(i));
        }
        return Table.create("latent scaling", IntColumn.create("latent", latents), LongColumn.create("firings", firings),
                DoubleColumn.create("beta_error_base", betaErrBase), DoubleColumn.create("beta_error_ft", betaErrFt),
                DoubleColumn.create("beta_recon_base", betaRecBase), DoubleColumn.create("beta_recon_ft", betaRecFt),
                DoubleColumn.create("nu_error", ne), DoubleColumn.create("nu_recon", nr), shr, dec);
    }

    @Override
    public String toString() {
        long s = 0, d = 0;
        for (int i = 0; i < latents.length; i++) {
            if (completeShrinkage(i)) s++;
            if (decoupled(i)) d++;
        }
        return "LatentScaling[" + latents.length + " latents: " + s + " completely shrunk (nu_error > "
                + thresholds.shrinkage() + "), " + d + " decoupled (nu_recon > " + thresholds.decoupling() + ")]";
    }
}
