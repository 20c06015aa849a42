package dev.jlens.sae;

import dev.jlens.util.SplitMix;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.util.Tensors;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A dictionary's parameters on their own manager, by SAELens name: {@code W_enc [dIn, dSae]}, {@code b_enc [dSae]},
 * {@code W_dec [dSae, dIn]}, {@code b_dec [dIn]}, optionally {@code threshold [dSae]}.
 */
public final class SaeWeights implements AutoCloseable {
    public static final String W_ENC = "W_enc", B_ENC = "b_enc", W_DEC = "W_dec", B_DEC = "b_dec", THRESHOLD = "threshold";
    /** The trained JumpReLU parameter, {@code log(threshold)}: kept in checkpoints, never in SAELens files. */
    public static final String LOG_THRESHOLD = "log_threshold";

    private final NDManager manager;
    private final Map<String, NDArray> params = new LinkedHashMap<>();
    private boolean closed;

    /** Takes ownership of {@code tensors} (attached to a new manager); checks names and shapes against {@code cfg}. */
    public SaeWeights(SaeConfig cfg, Map<String, NDArray> tensors) {
        this.manager = NDManager.newBaseManager();
        check(cfg, tensors);
        for (var e : tensors.entrySet()) {
            NDArray a = e.getValue();
            NDScope.unregister(a);
            a.attach(manager);
            params.put(e.getKey(), a);
        }
    }

    /**
     * Decoder row norm at initialisation for a ReLU (L1) dictionary: Anthropic's April 2024 heuristic, SAELens's
     * {@code decoder_init_norm} default. Scale-free: the weights' units do not depend on the inputs' scale.
     */
    static final double RELU_DECODER_INIT_NORM = 0.1;

    /**
     * Standard initialisation: random decoder row directions, encoder = decoder transpose, biases zero (Anthropic's
     * April 2024 update, Gao et al.). Rows have norm 1, or {@link #RELU_DECODER_INIT_NORM} for a ReLU dictionary (per
     * source, each source's block has {@code 1/sqrt(nSources)} of it); {@code threshold} set to the JumpReLU initial
     * threshold where the architecture has one.
     */
    public static SaeWeights init(SaeConfig cfg, long seed) {
        int dIn = cfg.dIn(), dSae = cfg.dSae(), n = cfg.nSources(), dm = cfg.dModel();
        // From unit rows (with W_enc = W_dec^T and b_enc = 0 every latent fires on about half the tokens) an L1
        // dictionary settles into dense, blended latents; from small rows the reconstruction gradient grows each
        // latent towards one direction first (ground truth, 512 features in 64 dims: mean max cosine 0.56 vs 0.96).
        double rowNorm = cfg.kind() instanceof SaeConfig.Relu ? RELU_DECODER_INIT_NORM : 1.0;
        SplittableRandom rng = new SplittableRandom(seed);
        float[] dec = new float[dSae * dIn];
        for (int i = 0; i < dSae; i++) {
            for (int s = 0; s < n; s++) {
                int base = i * dIn + s * dm;
                double ss = 0;
                for (int j = 0; j < dm; j++) {
                    double g = SplitMix.gaussian(rng);
                    dec[base + j] = (float) g;
                    ss += g * g;
                }
                float f = (float) (rowNorm / Math.sqrt(ss * n));
                for (int j = 0; j < dm; j++) dec[base + j] *= f;
            }
        }
        try (NDManager tmp = NDManager.newBaseManager()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            NDArray wDec = Tensors.owned(tmp.create(dec, new Shape(dSae, dIn)));
            // W_enc built from its own row-major copy: a duplicated transpose keeps column-major strides, and a
            // matmul over other strides rounds differently, so a resumed run (which loads row-major) would drift.
            float[] enc = new float[dIn * dSae];
            for (int i = 0; i < dSae; i++) for (int j = 0; j < dIn; j++) enc[j * dSae + i] = dec[i * dIn + j];
            t.put(W_ENC, Tensors.owned(tmp.create(enc, new Shape(dIn, dSae))));
            t.put(B_ENC, tmp.zeros(new Shape(dSae)));
            t.put(W_DEC, wDec);
            t.put(B_DEC, tmp.zeros(new Shape(dIn)));
            if (cfg.kind() instanceof SaeConfig.JumpRelu j) {
                t.put(THRESHOLD, tmp.full(new Shape(dSae), (float) j.initThreshold()));
                t.put(LOG_THRESHOLD, tmp.full(new Shape(dSae), (float) Math.log(j.initThreshold())));
            } else if (cfg.kind() instanceof SaeConfig.BatchTopK || cfg.kind() instanceof SaeConfig.Matryoshka) {
                t.put(THRESHOLD, tmp.zeros(new Shape(dSae)));
            }
            return new SaeWeights(cfg, t);
        }
    }

    private static void check(SaeConfig cfg, Map<String, NDArray> t) {
        Map<String, Shape> want = new LinkedHashMap<>();
        want.put(W_ENC, new Shape(cfg.dIn(), cfg.dSae()));
        want.put(B_ENC, new Shape(cfg.dSae()));
        want.put(W_DEC, new Shape(cfg.dSae(), cfg.dIn()));
        want.put(B_DEC, new Shape(cfg.dIn()));
        for (var e : want.entrySet()) {
            NDArray a = t.get(e.getKey());
            if (a == null) throw new IllegalArgumentException("missing tensor '" + e.getKey() + "'; a dictionary needs " + want.keySet());
            if (!a.getShape().equals(e.getValue())) {
                throw new IllegalArgumentException("tensor '" + e.getKey() + "' has shape " + a.getShape() + ", expected "
                        + e.getValue() + " for " + cfg);
            }
        }
        for (String opt : List.of(THRESHOLD, LOG_THRESHOLD)) {
            NDArray th = t.get(opt);
            if (th != null && !th.getShape().equals(new Shape(cfg.dSae()))) {
                throw new IllegalArgumentException("tensor '" + opt + "' has shape " + th.getShape() + ", expected (" + cfg.dSae() + ")");
            }
        }
        for (String k : t.keySet()) {
            if (!want.containsKey(k) && !k.equals(THRESHOLD) && !k.equals(LOG_THRESHOLD)) {
                throw new IllegalArgumentException("unexpected tensor '" + k + "'; expected " + want.keySet()
                        + " and optionally threshold, log_threshold");
            }
        }
    }

    /** Adds a tensor (taking ownership), e.g. a training-only parametrisation an architecture derives on load. */
    void put(String name, NDArray a) {
        if (params.containsKey(name)) throw new IllegalArgumentException("tensor '" + name + "' already exists");
        NDScope.unregister(a);
        a.attach(manager);
        params.put(name, a);
    }

    /** The parameter called {@code name} (see the constants). */
    public NDArray get(String name) {
        NDArray a = params.get(name);
        if (a == null) throw new IllegalArgumentException("no tensor '" + name + "'; this dictionary has " + params.keySet());
        return a;
    }

    public boolean has(String name) {
        return params.containsKey(name);
    }

    /** Every parameter by name (unmodifiable view of the live arrays). */
    public Map<String, NDArray> params() {
        return Collections.unmodifiableMap(params);
    }

    /** The manager owning the weights. */
    public NDManager manager() {
        return manager;
    }

    /** {@code (x - b_dec) @ W_enc + b_enc} (or without the {@code b_dec} shift), in normalised units. */
    public NDArray preActs(NDArray xN, boolean applyBDecToInput) {
        NDArray in = applyBDecToInput ? xN.sub(get(B_DEC)) : xN;
        return in.matMul(get(W_ENC)).addi(get(B_ENC));   // in place: no second fresh [B, dSae] buffer
    }

    /** {@code f @ W_dec + b_dec}. */
    public NDArray decode(NDArray f) {
        return f.matMul(get(W_DEC)).add(get(B_DEC));
    }

    /** Each latent's decoder norm {@code [dSae]} (over all sources). */
    public NDArray decoderNorms() {
        return get(W_DEC).norm(new int[]{1});
    }

    /** Each latent's decoder norm per source {@code [dSae, nSources]}. */
    public NDArray decoderNormsPerSource(int nSources) {
        NDArray w = get(W_DEC);
        long dSae = w.getShape().get(0), dIn = w.getShape().get(1);
        return w.reshape(dSae, nSources, dIn / nSources).norm(new int[]{2});
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        manager.close();
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("SaeWeights[");
        params.forEach((k, v) -> s.append(k).append(' ').append(v.getShape()).append(", "));
        if (!params.isEmpty()) s.setLength(s.length() - 2);
        return s.append(']').toString();
    }
}
