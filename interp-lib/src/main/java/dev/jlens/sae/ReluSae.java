package dev.jlens.sae;

import ai.djl.ndarray.NDArray;

/** PLACEHOLDER: to be written (issue 5). */
public final class ReluSae implements SparseCoder {
    private final SaeConfig cfg;
    private final SaeWeights w;

    ReluSae(SaeConfig cfg, SaeWeights w) {
        this.cfg = cfg;
        this.w = w;
    }

    public SaeConfig cfg() { return cfg; }

    public SaeWeights weights() { return w; }

    public NDArray encode(NDArray x) { throw new UnsupportedOperationException("not yet written"); }

    public Output trainForward(NDArray xBD, Context ctx) { throw new UnsupportedOperationException("not yet written"); }
}
