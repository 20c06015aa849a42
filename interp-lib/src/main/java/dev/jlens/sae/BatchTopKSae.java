package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.training.GradientCollector;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * BatchTopK SAE (Bussmann et al. 2024): training keeps the {@code k * B} largest activations of the whole batch, so
 * tokens may use more or fewer than {@code k} latents; inference is a JumpReLU whose threshold is a running estimate
 * of the smallest kept activation (see {@link BatchTopK}). Loss: squared error summed over {@code dIn}, mean over the
 * batch, plus AuxK. Decoder rows are held at unit norm. The trainer's step for an SAE is sparse
 * ({@link SparseDecode#trainBatchTopK}: no dense {@code [B, dSae]} latents on the tape); a crosscoder's is
 * {@link #trainForward} and backward.
 */
public final class BatchTopKSae extends AbstractSae {
    private final SaeConfig.BatchTopK kind;
    private final BatchTopK rule;

    BatchTopKSae(SaeConfig cfg, SaeWeights w) {
        super(cfg, w);
        this.kind = (SaeConfig.BatchTopK) cfg.kind();
        this.rule = new BatchTopK(kind.thresholdMomentum(), w, cfg);
    }

    @Override
    public NDArray encode(NDArray x) {
        SaeConfig cfg = cfg();
        return BatchTopK.encode(w.preActs(Losses.scaled(x, cfg), cfg.applyBDecToInput()), w, "BatchTopK");
    }

    @Override
    public Output trainForward(NDArray xBD, Context ctx) {
        NDArray preBF = w.preActs(xBD, cfg().applyBDecToInput());
        NDArray[] sel = BatchTopK.select(preBF, kind.k(), w, cfg());
        NDArray actsBF = sel[0];
        NDArray reconBD = w.decode(actsBF);
        NDArray mse = Losses.sumSquares(xBD.sub(reconBD));
        Map<String, NDArray> parts = new LinkedHashMap<>();
        parts.put("mse", mse);
        parts.put("min_kept", sel[1]);
        NDArray loss = mse;
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
}
