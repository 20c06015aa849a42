package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * ReLU SAE (SAELens {@code standard}) with Anthropic's April 2024 loss: squared error summed over {@code dIn} (mean
 * over the batch) plus {@code l1Coefficient * sparsityScale * sum_i f_i * ||W_dec[i]||}. The decoder norm sits inside
 * the penalty, so the rows need no renormalisation; for a crosscoder the weight is the sum of the per-source norms.
 */
public final class ReluSae extends AbstractSae {
    private final SaeConfig.Relu kind;

    ReluSae(SaeConfig cfg, SaeWeights w) {
        super(cfg, w);
        this.kind = (SaeConfig.Relu) cfg.kind();
    }

    @Override
    public NDArray encode(NDArray x) {
        SaeConfig cfg = cfg();
        return Activation.relu(w.preActs(Losses.scaled(x, cfg), cfg.applyBDecToInput()));
    }

    @Override
    public Output trainForward(NDArray xBD, Context ctx) {
        NDArray actsBF = Activation.relu(w.preActs(xBD, cfg().applyBDecToInput()));
        NDArray reconBD = w.decode(actsBF);
        NDArray mse = Losses.sumSquares(xBD.sub(reconBD));
        NDArray l1 = actsBF.mul(Decoders.sparsityNorms(w, cfg())).sum(new int[]{1}).mean();
        NDArray loss = mse.add(l1.mul(Losses.constant(ctx, kind.l1Coefficient() * ctx.sparsityScale())));
        Map<String, NDArray> parts = new LinkedHashMap<>();
        parts.put("mse", mse);
        parts.put("l1", l1);
        return new Output(loss, reconBD, actsBF, parts);
    }
}
