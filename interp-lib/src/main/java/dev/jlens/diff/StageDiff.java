package dev.jlens.diff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import dev.jlens.sae.SaeMetrics;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.ActivationSource;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Objects;

/**
 * Stage-wise model diffing (Bricken et al. 2024): one dictionary carried through stages — trained on the base model,
 * then trained further ({@code SaeTrainer.train(StageDiff.copyOf(sae), tunedStore, cfg)}) on the fine-tuned model's
 * activations (or on the finetuning data) — and the latents that moved most between two stages: the cosine of each
 * latent's decoder direction before and after (low: the feature changed) and its firing density on data before and
 * after (a latent born or dying).
 */
public final class StageDiff {
    private final double[] cosine;
    private final float[] densityBefore, densityAfter;

    private StageDiff(double[] cosine, float[] densityBefore, float[] densityAfter) {
        this.cosine = cosine;
        this.densityBefore = densityBefore;
        this.densityAfter = densityAfter;
    }

    /** A new dictionary with {@code sae}'s configuration and a copy of its weights: the next stage's starting point. */
    public static SparseCoder copyOf(SparseCoder sae) {
        Objects.requireNonNull(sae, "sae");
        SparseCoder copy = SparseCoder.create(sae.cfg(), 0);
        for (var e : sae.weights().params().entrySet()) {
            copy.weights().get(e.getKey()).set(new NDIndex(":"), e.getValue());
        }
        return copy;
    }

    /**
     * The change from {@code before} to {@code after} (same configuration): decoder cosines per latent, and densities
     * measured by {@code before} on {@code dataBefore} and by {@code after} on {@code dataAfter} ({@code batches} of
     * {@code batchSize} vectors each; pass the same source twice to hold the data fixed).
     */
    public static StageDiff of(SparseCoder before, SparseCoder after, ActivationSource dataBefore,
                               ActivationSource dataAfter, int batches, int batchSize) {
        Objects.requireNonNull(before, "before");
        Objects.requireNonNull(after, "after");
        if (before.cfg().dSae() != after.cfg().dSae() || before.cfg().dIn() != after.cfg().dIn()) {
            throw new IllegalArgumentException("stages of one dictionary share its shape: before is d_in "
                    + before.cfg().dIn() + " x d_sae " + before.cfg().dSae() + ", after is d_in " + after.cfg().dIn()
                    + " x d_sae " + after.cfg().dSae());
        }
        double[] cos = new double[before.cfg().dSae()];
        try (NDScope scope = new NDScope()) {
            NDArray a = before.weights().get(SaeWeights.W_DEC), b = after.weights().get(SaeWeights.W_DEC);
            float[] dots = a.mul(b).sum(new int[] {1}).toFloatArray();
            float[] na = a.norm(new int[] {1}).toFloatArray(), nb = b.norm(new int[] {1}).toFloatArray();
            for (int i = 0; i < cos.length; i++) cos[i] = na[i] > 0 && nb[i] > 0 ? dots[i] / (na[i] * nb[i]) : Double.NaN;
        }
        float[] d0 = SaeMetrics.of(before, dataBefore, batches, batchSize).density();
        float[] d1 = SaeMetrics.of(after, dataAfter, batches, batchSize).density();
        return new StageDiff(cos, d0, d1);
    }

    /** Decoder cosine per latent, before vs after. */
    public double[] decoderCosines() {
        return cosine.clone();
    }

    /** The {@code k} latents whose decoder directions turned most (lowest cosine first; dead-both latents last). */
    public int[] movedMost(int k) {
        Integer[] order = new Integer[cosine.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingDouble(i -> Double.isNaN(cosine[i]) ? 2 : cosine[i]));
        return Arrays.stream(order).limit(Math.max(0, k)).mapToInt(Integer::intValue).toArray();
    }

    /** Per latent: decoder cosine, densities before and after and their change, lowest cosine first. */
    public Table table() {
        int n = cosine.length;
        int[] order = movedMost(n);
        IntColumn latent = IntColumn.create("latent");
        DoubleColumn c = DoubleColumn.create("decoder_cosine"), d0 = DoubleColumn.create("density_before"),
                d1 = DoubleColumn.create("density_after"), dd = DoubleColumn.create("density_change");
        for (int i : order) {
            latent.append(i);
            c.append(cosine[i]);
            d0.append(densityBefore[i]);
            d1.append(densityAfter[i]);
            dd.append(densityAfter[i] - densityBefore[i]);
        }
        return Table.create("stage-wise diff: latents that moved most", latent, c, d0, d1, dd);
    }
}
