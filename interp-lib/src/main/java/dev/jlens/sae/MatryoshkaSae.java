package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.training.GradientCollector;
import ai.djl.ndarray.index.NDIndex;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Matryoshka BatchTopK SAE (Bussmann et al. 2025, Nabeshima 2024): latents are split into nested groups, and every
 * prefix of groups must reconstruct the input on its own. Activations are BatchTopK over all latents; the loss is the
 * mean over prefixes {@code p} (the cumulative group boundaries) of the squared error (summed over {@code dIn}, mean
 * over the batch) of {@code acts[:, :p] @ W_dec[:p] + b_dec}, plus AuxK. Inference as {@link BatchTopKSae}: a
 * JumpReLU with the running threshold. Decoder rows are held at unit norm. The trainer's step for an SAE is sparse
 * ({@link SparseDecode#trainBatchTopK}: all prefix reconstructions from the kept latents' gathered decoder rows, no
 * dense {@code [B, dSae]} latents on the tape); a crosscoder's is {@link #trainForward} and backward.
 */
public final class MatryoshkaSae extends AbstractSae {
    private final SaeConfig.Matryoshka kind;
    private final BatchTopK rule;

    MatryoshkaSae(SaeConfig cfg, SaeWeights w) {
        super(cfg, w);
        this.kind = (SaeConfig.Matryoshka) cfg.kind();
        this.rule = new BatchTopK(kind.thresholdMomentum(), w, cfg);
    }

    @Override
    public NDArray encode(NDArray x) {
        SaeConfig cfg = cfg();
        return BatchTopK.encode(w.preActs(Losses.scaled(x, cfg), cfg.applyBDecToInput()), w, "Matryoshka");
    }

    @Override
    public Output trainForward(NDArray xBD, Context ctx) {
        NDArray preBF = w.preActs(xBD, cfg().applyBDecToInput());
        NDArray[] sel = BatchTopK.select(preBF, kind.k(), w, cfg());
        NDArray actsBF = sel[0];
        NDArray wDecFD = w.get(SaeWeights.W_DEC);
        // Reconstructions grow group by group: prefix g's is prefix g-1's plus group g's latents' contribution.
        NDArray reconBD = xBD.zerosLike().add(w.get(SaeWeights.B_DEC));
        NDArray prefixSum = null, err = null;
        List<Integer> groups = kind.groupSizes();
        int start = 0;
        for (int size : groups) {
            int end = start + size;
            NDArray groupActs = actsBF.get(new NDIndex(":, {}:{}", start, end));
            NDArray groupDec = wDecFD.get(new NDIndex("{}:{}", start, end));
            reconBD = reconBD.add(groupActs.matMul(groupDec));
            err = Losses.sumSquares(xBD.sub(reconBD));
            prefixSum = prefixSum == null ? err : prefixSum.add(err);
            start = end;
        }
        NDArray mse = err;   // of the full dictionary (the last prefix)
        NDArray prefixMean = prefixSum.div(Losses.constant(ctx, groups.size()));
        Map<String, NDArray> parts = new LinkedHashMap<>();
        parts.put("mse", mse);
        parts.put("prefix_mse", prefixMean);
        parts.put("min_kept", sel[1]);
        NDArray loss = prefixMean;
        loss = Losses.withAuxK(loss, parts, preBF, xBD, reconBD, w, ctx, kind.auxK(), kind.auxKCoefficient());
        return new Output(loss, reconBD, actsBF, parts);
    }

    /**
     * Single-source dictionaries take {@link SparseDecode#trainBatchTopK}: the same loss and gradients as
     * {@link #trainForward} without a dense {@code [B, dSae]} tensor on the tape, AuxK on the dead latents included.
     * Its {@link Output} carries only the {@code parts} {@link #afterStep} reads ({@code mse}, {@code min_kept}).
     * Crosscoders take the general route.
     */
    @Override
    public StepResult trainStep(NDArray xBD, Context ctx, GradientCollector gc) {
        if (cfg().nSources() != 1 || !SparseDecode.sparsePays(xBD.getShape().get(0), cfg().dSae(), kind.k())) {
            return TrainSteps.general(this, xBD, ctx, gc);
        }
        return SparseDecode.trainBatchTopK(this, xBD, gc, SparseDecode.DEFAULT_CHUNK, ctx.deadMask()).result(xBD);
    }

    @Override
    public void beforeStep(Context ctx) {
        Decoders.removeParallelGradient(w);
    }

    @Override
    public void afterStep(Context ctx, Output out) {
        Decoders.renormalise(w);
        rule.update(out.parts().get("min_kept"), w, cfg());
    }

    @Override
    void weightsLoaded() {
        rule.recover(w, cfg());
    }

    /** The running estimate of the smallest kept activation (the inference threshold of an SAE). */
    public float thresholdEstimate() {
        return rule.estimate();
    }

    /** The cumulative group boundaries: the prefix widths the loss reconstructs from. */
    public int[] prefixes() {
        int[] out = new int[kind.groupSizes().size()];
        int s = 0;
        for (int i = 0; i < out.length; i++) out[i] = s += kind.groupSizes().get(i);
        return out;
    }
}
