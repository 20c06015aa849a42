package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * JumpReLU SAE (Rajamanoharan et al. 2024): {@code f = pre * H(pre - theta)} with a learned per-latent threshold
 * {@code theta} (the {@code threshold} tensor, trained and saved raw, clamped at 0 after each step). Loss: squared
 * error summed over {@code dIn} (mean over the batch) plus {@code l0Coefficient * sparsityScale * sum_i H(pre_i -
 * theta_i)}. The threshold gets gradients through straight-through estimators with a rectangle kernel {@code K} of
 * width {@code bandwidth} ({@code eps}), as in the paper's pseudo-code and SAELens:
 *
 * <pre>
 *   d f / d pre   = H(pre - theta)         d f / d theta = -(theta / eps) K((pre - theta) / eps)
 *   d H / d pre   = 0                      d H / d theta = -(1 / eps) K((pre - theta) / eps)
 * </pre>
 *
 * DJL has no custom autograd functions, so each estimator is built from detached tensors: {@code value +
 * (theta * c - stopGradient(theta * c))} adds zero to the value and {@code c} to the gradient with respect to theta.
 *
 * <p>The trained parameter is {@code log_threshold} (as in SAELens), and {@code threshold = exp(log_threshold)} is
 * refreshed after each step. Adam moves a parameter by about the learning rate per step whatever its gradient's
 * size, so a raw threshold climbs by {@code lr} per step under the L0 penalty: in unit-norm units, where
 * pre-activations are ~0.1, that pushed half the latents above every input within a few hundred steps (dead). In
 * log space each step changes the threshold by a fraction, whatever the units.
 */
public final class JumpReluSae extends AbstractSae {
    private final SaeConfig.JumpRelu kind;

    JumpReluSae(SaeConfig cfg, SaeWeights w) {
        super(cfg, w);
        this.kind = (SaeConfig.JumpRelu) cfg.kind();
        if (!w.has(SaeWeights.THRESHOLD)) {
            throw new IllegalArgumentException("a JumpReLU dictionary needs a 'threshold' tensor [" + cfg.dSae() + "]");
        }
        if (!w.has(SaeWeights.LOG_THRESHOLD)) {   // loaded for inference (SAELens files hold the threshold only)
            w.put(SaeWeights.LOG_THRESHOLD, w.get(SaeWeights.THRESHOLD).maximum(1e-12f).log());
        }
    }

    @Override
    public NDArray encode(NDArray x) {
        SaeConfig cfg = cfg();
        NDArray preBF = w.preActs(Losses.scaled(x, cfg), cfg.applyBDecToInput());
        return preBF.mul(preBF.gt(w.get(SaeWeights.THRESHOLD)));
    }

    @Override
    public Map<String, NDArray> trainableParameters() {
        Map<String, NDArray> p = new LinkedHashMap<>(w.params());
        p.remove(SaeWeights.THRESHOLD);   // derived from log_threshold
        return p;
    }

    @Override
    public Output trainForward(NDArray xBD, Context ctx) {
        NDArray preBF = w.preActs(xBD, cfg().applyBDecToInput());
        NDArray thetaF = w.get(SaeWeights.LOG_THRESHOLD).exp();
        NDArray[] ste = jumpRelu(preBF, thetaF, kind.bandwidth());
        NDArray actsBF = ste[0];
        NDArray reconBD = w.decode(actsBF);
        NDArray mse = Losses.sumSquares(xBD.sub(reconBD));
        NDArray l0 = ste[1].sum(new int[]{1}).mean();
        NDArray loss = mse.add(l0.mul(Losses.constant(ctx, kind.l0Coefficient() * ctx.sparsityScale())));
        Map<String, NDArray> parts = new LinkedHashMap<>();
        parts.put("mse", mse);
        parts.put("l0", l0);
        return new Output(loss, reconBD, actsBF, parts);
    }

    /**
     * {@code [JumpReLU(pre), H(pre - theta)]} with the straight-through gradients of the class comment. Package-private
     * for the gradient test.
     */
    static NDArray[] jumpRelu(NDArray preBF, NDArray thetaF, double bandwidth) {
        NDArray thetaD = thetaF.stopGradient();
        NDArray preD = preBF.stopGradient();
        NDArray above = preD.gt(thetaD).toType(DataType.FLOAT32, false);                  // H(pre - theta)
        NDArray u = preD.sub(thetaD).div((float) bandwidth);
        NDArray kernel = u.gt(-0.5f).logicalAnd(u.lt(0.5f)).toType(DataType.FLOAT32, false);   // K(u)
        NDArray perEps = kernel.div((float) -bandwidth);                                    // -(1/eps) K
        NDArray reluTerm = thetaF.mul(perEps.mul(thetaD));      // d/dtheta = -(theta/eps) K
        NDArray acts = preBF.mul(above).add(reluTerm.sub(reluTerm.stopGradient()));
        NDArray stepTerm = thetaF.mul(perEps);                  // d/dtheta = -(1/eps) K
        NDArray step = above.add(stepTerm.sub(stepTerm.stopGradient()));
        return new NDArray[]{acts, step};
    }

    @Override
    public void afterStep(Context ctx, Output out) {
        NDArray th = w.get(SaeWeights.THRESHOLD);
        try (NDArray fresh = w.get(SaeWeights.LOG_THRESHOLD).exp()) {
            th.set(new NDIndex(":"), fresh);
        }
    }
}
