package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Activation;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * TopK SAE (Gao et al. 2024): each token keeps its {@code k} largest pre-activations (ReLU'd), the rest are zero.
 * Training loss: squared error summed over {@code dIn}, mean over the batch, plus the AuxK loss on dead latents.
 */
public final class TopKSae implements SparseCoder {
    private final SaeConfig cfg;
    private final SaeConfig.TopK kind;
    private final SaeWeights w;

    TopKSae(SaeConfig cfg, SaeWeights w) {
        this.cfg = cfg;
        this.kind = (SaeConfig.TopK) cfg.kind();
        this.w = w;
    }

    @Override
    public SaeConfig cfg() {
        return cfg;
    }

    @Override
    public SaeWeights weights() {
        return w;
    }

    @Override
    public NDArray encode(NDArray x) {
        return topK(w.preActs(Losses.scaled(x, cfg), cfg.applyBDecToInput()), kind.k());
    }

    @Override
    public Output trainForward(NDArray xBD, Context ctx) {
        NDArray pre = w.preActs(xBD, cfg.applyBDecToInput());
        NDArray acts = topK(pre, kind.k());
        NDArray recon = w.decode(acts);
        NDArray mse = Losses.sumSquares(xBD.sub(recon));
        Map<String, NDArray> parts = new LinkedHashMap<>();
        parts.put("mse", mse);
        NDArray loss = mse;
        NDArray aux = Losses.auxK(pre, xBD, recon, w, ctx.deadMask(), kind.auxK());
        if (aux != null) {
            parts.put("auxk", aux);
            loss = loss.add(aux.mul(Losses.constant(ctx, kind.auxKCoefficient())));
        }
        return new Output(loss, recon, acts, parts);
    }

    /** Keeps the {@code k} largest entries of the last axis (ReLU'd), zero elsewhere. */
    static NDArray topK(NDArray pre, int k) {
        NDList tk = pre.topK(k, -1, true, false);
        return pre.zerosLike().scatter(tk.get(1), Activation.relu(tk.get(0)), -1);
    }

    @Override
    public String toString() {
        return "TopKSae[" + cfg + "]";
    }
}
