package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.pytorch.jni.JniUtils;
import dev.jlens.hook.HookPoint;
import dev.jlens.util.Tensors;


/** Numeric building blocks shared by the architectures (no architecture-specific logic here). */
final class Ops {
    private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);
    // gelu_new(x) = x * sigmoid(x * (GELU_B + GELU_A * x^2)), the tanh form rewritten with 0.5(1 + tanh u) = sigmoid(2u)
    private static final float GELU_B = (float) (2 * SQRT_2_OVER_PI);
    private static final float GELU_A = (float) (2 * SQRT_2_OVER_PI * 0.044715);

    private Ops() {}

    /** A process-lifetime float32 scalar tensor; see {@link Tensors#scalar(float)}. */
    static NDArray scalar(float v) {
        return Tensors.scalar(v);
    }

    /** {@code x @ w.T + b} with {@code w} in {@code [out, in]} layout (torch's linear); {@code b} may be null. */
    static NDArray linear(NDArray x, NDArray w, NDArray b) {
        NDList out = x.getNDArrayInternal().linear(x, w, b);
        return out.singletonOrThrow();
    }

    /** Rows of {@code table} picked by integer ids: {@code [batch, pos] -> [batch, pos, d]}. */
    static NDArray embedding(NDArray ids, NDArray table) {
        return ids.getNDArrayInternal().embedding(ids, table, SparseFormat.DENSE).singletonOrThrow();
    }

    /**
     * LayerNorm as TransformerLens writes it, with {@code hook_scale} {@code [batch, pos, 1]} and
     * {@code hook_normalized} (after weight and bias). The fused kernel computes the output unless a hook replaced
     * the scale, so hooks that only read change nothing, bit for bit.
     */
    static NDArray layerNorm(NDArray x, NDArray w, NDArray b, double eps, HookPoint scaleHook, HookPoint normHook) {
        long d = x.getShape().tail();
        if (scaleHook.isActive()) {
            NDArray centered = x.sub(x.mean(new int[] {-1}, true));
            NDArray scale = centered.square().mean(new int[] {-1}, true).add(eps).sqrt();
            NDArray hooked = scaleHook.run(scale);
            if (hooked != scale) return normHook.run(centered.div(hooked).mul(w).add(b));
        }
        return normHook.run(x.getNDArrayInternal().layerNorm(x, new Shape(d), w, b, (float) eps).singletonOrThrow());
    }

    /** RMSNorm as TransformerLens writes it: {@code hook_normalized} is before the weight is applied. */
    static NDArray rmsNorm(NDArray x, NDArray w, double eps, HookPoint scaleHook, HookPoint normHook) {
        NDArray scale = scaleHook.run(x.square().mean(new int[] {-1}, true).add(eps).sqrt());
        return normHook.run(x.div(scale)).mul(w);
    }

    /**
     * GPT-2's tanh approximation of GELU ({@code gelu_new}), computed as {@code x * sigmoid(2u)}: the CPU build's tanh
     * is ~9x slower than its sigmoid and DJL's {@code pow(3)} takes the generic pow kernel (0.85 ms vs 0.04 ms on
     * [128, 3072]); 0.3 ms per call instead of 3.0-3.7 ms, same values to ~5e-7.
     */
    static NDArray geluNew(NDArray x) {
        NDArray a = scalar(GELU_A), b = scalar(GELU_B);
        // Grad mode is on only inside a GradientCollector. (NDArray.hasGradient() cannot tell: it is false for
        // results of ops on arrays that require gradients.)
        if (JniUtils.isGradMode()) {
            // out-of-place: autograd keeps the intermediates it needs unchanged
            NDArray u = x.square().mul(a).add(b).mul(x);
            return u.getNDArrayInternal().sigmoid().mul(x);
        }
        // nothing is recorded: reuse the fresh buffers in place (two allocations instead of six)
        NDArray u = x.square().muli(a).addi(b).muli(x);
        NDArray out = u.getNDArrayInternal().sigmoid().muli(x);
        u.close();
        return out;
    }

    /** SiLU (swish): {@code x * sigmoid(x)}. */
    static NDArray silu(NDArray x) {
        return x.mul(x.getNDArrayInternal().sigmoid());
    }

    /** Applies the named activation. */
    static NDArray activation(dev.jlens.model.arch.ModelConfig.Activation act, NDArray x) {
        return switch (act) {
            case GELU_NEW -> geluNew(x);
            case GELU -> x.getNDArrayInternal().gelu();
            case RELU -> x.getNDArrayInternal().relu();
            case SILU -> silu(x);
        };
    }

    /**
     * Scaled dot-product attention with TransformerLens's hooks. {@code q} is {@code [batch, q_pos, head, d_head]},
     * {@code k} and {@code v} are {@code [batch, k_pos, kv_head, d_head]} (grouped-query attention when
     * kv_head < head: query head h reads kv head h / (head / kv_head), as Hugging Face's repeat_kv).
     * {@code mask} is additive {@code [batch, 1, q_pos, k_pos]}. Returns z {@code [batch, q_pos, head, d_head]}.
     */
    static NDArray attention(NDArray q, NDArray k, NDArray v, NDArray mask, HookPoint scoresHook,
                             HookPoint patternHook, HookPoint zHook) {
        return attention(q, k, v, mask, 1.0 / Math.sqrt(q.getShape().get(3)), 0, scoresHook, patternHook, zHook);
    }

    /**
     * {@link #attention(NDArray, NDArray, NDArray, NDArray, HookPoint, HookPoint, HookPoint)} with the scores
     * multiplied by {@code scale} and, when {@code softCap > 0}, soft-capped to {@code softCap * tanh(s / softCap)}
     * before the mask is added (Gemma 2); {@code hook_attn_scores} sees the capped, masked scores.
     */
    static NDArray attention(NDArray q, NDArray k, NDArray v, NDArray mask, double scale, double softCap,
                             HookPoint scoresHook, HookPoint patternHook, HookPoint zHook) {
        Shape qs = q.getShape();
        long batch = qs.get(0), qPos = qs.get(1), heads = qs.get(2), dHead = qs.get(3);
        long kvHeads = k.getShape().get(2), kPos = k.getShape().get(1);
        long group = heads / kvHeads;
        NDArray qT = q.transpose(0, 2, 1, 3);                 // [b, h, q, d]
        NDArray kT = k.transpose(0, 2, 3, 1);                 // [b, kvh, d, k]
        NDArray vT = v.transpose(0, 2, 1, 3);                 // [b, kvh, k, d]
        NDArray scores;
        if (group == 1) {
            scores = qT.matMul(kT);                           // [b, h, q, k]
        } else {
            NDArray qG = qT.reshape(batch, kvHeads, group, qPos, dHead);
            scores = qG.matMul(kT.expandDims(2)).reshape(batch, heads, qPos, kPos);
        }
        // scores is a fresh matmul output whose value matmul's backward does not need: scale and mask it in place
        scores = scores.muli(scalar((float) scale));
        if (softCap > 0) scores = softCap(scores, softCap);
        scores = scoresHook.run(scores.addi(mask));
        NDArray pattern = patternHook.run(scores.softmax(-1));   // [b, h, q, k]
        NDArray z;
        if (group == 1) {
            z = pattern.matMul(vT);                            // [b, h, q, d]
        } else {
            NDArray pG = pattern.reshape(batch, kvHeads, group, qPos, kPos);
            z = pG.matMul(vT.expandDims(2)).reshape(batch, heads, qPos, dHead);
        }
        return zHook.run(z.transpose(0, 2, 1, 3));             // [b, q, h, d]
    }

    /** Soft-capping {@code cap * tanh(x / cap)}: smooth, and bounded by {@code cap} in absolute value. */
    static NDArray softCap(NDArray x, double cap) {
        return x.div(scalar((float) cap)).tanh().mul(scalar((float) cap));
    }

    /**
     * Rotary embedding tables for every position, rotate-half layout: {@code cos} and {@code sin'} as
     * {@code [n_ctx, d_head]}, where the first half of {@code sin'} is negated (folding rotate-half's sign in), with
     * Llama-3.1 frequency scaling when {@code scaling} is present. Frequencies and angles are float32, as Hugging
     * Face computes them.
     */
    static NDArray[] ropeTables(NDManager mgr, int dh, int n, double theta,
                                java.util.Optional<ModelConfig.RopeScaling> scaling) {
        int half = dh / 2;
        double[] invFreq = new double[half];
        for (int i = 0; i < half; i++) {
            double f = 1.0 / Math.pow(theta, (2.0 * i) / dh);
            if (scaling.isPresent()) {
                ModelConfig.RopeScaling s = scaling.get();
                double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
                double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
                double wavelen = 2 * Math.PI / f;
                if (wavelen > lowWavelen) {
                    f = f / s.factor();
                } else if (wavelen >= highWavelen) {
                    double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor())
                            / (s.highFreqFactor() - s.lowFreqFactor());
                    f = (1 - smooth) * f / s.factor() + smooth * f;
                }
            }
            invFreq[i] = (float) f;   // Hugging Face computes inv_freq in float32
        }
        float[] cos = new float[n * dh], sin = new float[n * dh];
        for (int p = 0; p < n; p++) {
            for (int i = 0; i < dh; i++) {
                // float32 product, as torch computes position * inv_freq before cos/sin
                float angle = (float) p * (float) invFreq[i % half];
                cos[p * dh + i] = (float) Math.cos(angle);
                float s = (float) Math.sin(angle);
                sin[p * dh + i] = i < half ? -s : s;
            }
        }
        return new NDArray[] {mgr.create(cos, new Shape(n, dh)), mgr.create(sin, new Shape(n, dh))};
    }

    /**
     * Rotary embedding of {@code x} {@code [batch, pos, head, d_head]}, rotate-half layout:
     * {@code x * cos + swap_halves(x) * sin'}, with {@code cos} and {@code sin'} rows of {@link #ropeTables} picked
     * for the positions, as {@code [batch, pos, 1, d_head]}.
     */
    static NDArray rotateHalf(NDArray x, NDArray cos, NDArray sin) {
        NDList halves = x.split(2, 3);
        NDArray swapped = halves.get(1).concat(halves.get(0), 3);
        return x.mul(cos).add(swapped.mul(sin));
    }

    /**
     * Per-head attention outputs {@code [batch, pos, head, d_model]} from z {@code [batch, pos, head, d_head]} and
     * the output projection {@code wO} in {@code [d_model, head * d_head]} layout.
     */
    static NDArray perHeadResult(NDArray z, NDArray wO) {
        Shape zs = z.getShape();
        long heads = zs.get(2), dHead = zs.get(3), dModel = wO.getShape().get(0);
        NDArray wHED = wO.reshape(dModel, heads, dHead).transpose(1, 2, 0);   // [h, d_head, d_model]
        return z.expandDims(3).matMul(wHED).squeeze(3);                       // [b, p, h, d_model]
    }

    /**
     * For a block that runs its query onwards for the last position alone ({@link ForwardInputs#lastOnlyAt}): the
     * queries {@code [batch, pos, heads, d_head]}, the residual stream {@code [batch, pos, d_model]} and the additive
     * mask {@code [batch, 1, q_pos, k_pos]} cut to the last query position (views).
     */
    static NDArray[] lastPosition(NDArray q, NDArray resid, NDArray mask) {
        return new NDArray[] {q.get(":, -1:"), resid.get(":, -1:"), mask.get(":, :, -1:, :")};
    }
}
