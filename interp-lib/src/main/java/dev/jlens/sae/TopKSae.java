package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Activation;
import ai.djl.training.GradientCollector;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * TopK SAE (Gao et al. 2024): each token keeps its {@code k} largest pre-activations (ReLU'd), the rest are zero.
 * Training loss: squared error summed over {@code dIn}, mean over the batch, plus the AuxK loss on dead latents.
 * Decoder rows are held at unit norm (gradient projected onto the sphere, rows rescaled after each step).
 */
public final class TopKSae extends AbstractSae {
    private final SaeConfig.TopK kind;

    TopKSae(SaeConfig cfg, SaeWeights w) {
        super(cfg, w);
        this.kind = (SaeConfig.TopK) cfg.kind();
    }

    @Override
    public NDArray encode(NDArray x) {
        SaeConfig cfg = cfg();
        return topK(w.preActs(Losses.scaled(x, cfg), cfg.applyBDecToInput()), kind.k());
    }

    @Override
    public Output trainForward(NDArray xBD, Context ctx) {
        NDArray preBF = w.preActs(xBD, cfg().applyBDecToInput());
        NDArray actsBF = topK(preBF, kind.k());
        NDArray reconBD = w.decode(actsBF);
        NDArray mse = Losses.sumSquares(xBD.sub(reconBD));
        Map<String, NDArray> parts = new LinkedHashMap<>();
        parts.put("mse", mse);
        NDArray loss = mse;
        loss = Losses.withAuxK(loss, parts, preBF, xBD, reconBD, w, ctx, kind.auxK(), kind.auxKCoefficient());
        return new Output(loss, reconBD, actsBF, parts);
    }

    /**
     * Wide dictionaries' steps go through {@link SparseDecode#trainTopK}: the same loss and gradients as
     * {@link #trainForward} without a dense {@code [B, dSae]} tensor on the tape (~2x faster at d_sae 8192), AuxK on
     * the dead latents included; narrow ones (below {@code SparseDecode.sparsePays}) take the general route, which is
     * faster there.
     */
    @Override
    public StepResult trainStep(NDArray xBD, Context ctx, GradientCollector gc) {
        if (!SparseDecode.sparsePays(xBD.getShape().get(0), cfg().dSae(), kind.k())) {
            return TrainSteps.general(this, xBD, ctx, gc);
        }
        SparseDecode.TopKStep s = SparseDecode.trainTopK(this, xBD, gc, SparseDecode.DEFAULT_CHUNK, ctx.deadMask());
        // the MSE term: sum of squared errors / B
        return new StepResult(s.loss(), s.mse(), s.mse() * xBD.getShape().get(0), s.fired(), null);
    }

    @Override
    public void beforeStep(Context ctx) {
        Decoders.removeParallelGradient(w);
    }

    @Override
    public void afterStep(Context ctx, Output out) {
        Decoders.renormalise(w);
    }

    /** Keeps the {@code k} largest entries of the last axis (ReLU'd), zero elsewhere. */
    static NDArray topK(NDArray pre, int k) {
        NDList tk = pre.topK(k, -1, true, false);
        return pre.zerosLike().scatter(tk.get(1), Activation.relu(tk.get(0)), -1);
    }
}
