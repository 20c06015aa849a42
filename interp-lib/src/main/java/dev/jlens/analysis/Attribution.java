package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookScope;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Attribution patching: estimates of every patch of a site from gradients, in place of one forward pass per patch.
 *
 * <ul>
 * <li><b>AtP</b> (Nanda 2023; Kramár et al. 2024): {@code M(patched) ≈ M(base) + Σ (a_source - a_base) · ∂M/∂a},
 * the gradient taken on the run that is patched (the corrupt run when denoising). One forward and one backward pass
 * of the patched run, and one forward pass of the other, give every index of the site.</li>
 * <li><b>AtP*</b> (Kramár et al. 2024) repairs AtP's two failure modes. <i>QK fix</i>: a patched query or key moves the
 * attention logits, and a saturated softmax makes the linear estimate through them wrong; for {@code q} and {@code k}
 * sites the attention pattern is recomputed exactly for each patch (a softmax, no forward pass) and only the step
 * from the pattern to the metric is linearised. <i>GradDrop</i>: cancelling paths make a node's total gradient small
 * although its effect through each path is large; AtP is repeated with the gradient through each layer's residual
 * contributions ({@code attn_out}, {@code mlp_out}) dropped in turn, and the node's score is the mean of the absolute
 * estimates over the other layers. The result's {@code values} hold the QK-fixed estimate; {@code scores} hold the
 * GradDrop magnitude that ranks nodes.</li>
 * </ul>
 *
 * <p>The QK fix assumes a causal mask without padding or sliding window (equal-length prompts, as {@link Patching}
 * requires); with rotary models it reads the rotated queries and keys.
 *
 * <pre>{@code
 * PatchResult atp = Attribution.atp(patching, PatchSite.Z, Direction.DENOISE);
 * Validation v = Attribution.validate(patching, atp, 5);    // runs the exact sweep: Spearman ρ, recall@5
 * }</pre>
 */
public final class Attribution {

    private Attribution() {}

    /** AtP for every index of {@code site} (as {@link Patching#sweep}). */
    public static PatchResult atp(Patching p, PatchSite site, Direction d) {
        return estimate(p, site, d, p.indices(site, false, false), false);
    }

    /** AtP for every [layer, head, pos] of a head site (as {@link Patching#sweepByPosition}). */
    public static PatchResult atpByPosition(Patching p, PatchSite site, Direction d) {
        return estimate(p, site, d, p.indices(site, true, false), false);
    }

    /** AtP* (QK fix and GradDrop) for every index of {@code site}. */
    public static PatchResult atpStar(Patching p, PatchSite site, Direction d) {
        return estimate(p, site, d, p.indices(site, false, false), true);
    }

    /** AtP* for every [layer, head, pos] of a head site. */
    public static PatchResult atpStarByPosition(Patching p, PatchSite site, Direction d) {
        return estimate(p, site, d, p.indices(site, true, false), true);
    }

    /** AtP or AtP* of the chosen indices. */
    public static PatchResult estimate(Patching p, PatchSite site, Direction d, List<PatchIndex> indices,
                                       boolean star) {
        HookedTransformer model = p.model();
        int nLayers = model.nLayers();
        Map<Integer, String> hooks = new LinkedHashMap<>();
        for (PatchIndex ix : indices) hooks.computeIfAbsent(ix.layer(), l -> p.hookName(site, l));
        boolean qk = star && (site == PatchSite.Q || site == PatchSite.K);
        List<String> names = new ArrayList<>(hooks.values());
        Map<Integer, QkNames> qkNames = new LinkedHashMap<>();
        if (qk) {
            for (int l : hooks.keySet()) {
                QkNames q = QkNames.of(model, l);
                qkNames.put(l, q);
                names.add(q.q());
                names.add(q.k());
                names.add(q.pattern());
            }
        }
        long[][] base = p.base(d);
        int heads = site.isHead() ? p.headCount(site) : 0;
        long[] maskShape = p.maskShape(site, heads);
        double[] sums = new double[indices.size()];
        double[] gradDrop = new double[indices.size()];
        try (ActivationCache baseCache = model.runWithCache(base, Patching.filter(names));
             ActivationCache other = model.runWithCache(p.source(d), Patching.filter(names));
             NDScope scope = new NDScope()) {
            Map<String, NDArray> sources = new LinkedHashMap<>();
            for (String n : names) sources.put(n, p.sourceActivation(n, baseCache, other));
            // the plain estimate, then (AtP*) one per dropped layer
            int runs = star ? nLayers + 1 : 1;
            for (int drop = -1; drop < runs - 1; drop++) {
                List<Hook> stops = new ArrayList<>();
                if (drop >= 0) {
                    stops.add(Hook.fwd(model.actName("attn_out", drop), (x, hp) -> x.stopGradient()));
                    if (!model.cfg().attnOnly()) {
                        stops.add(Hook.fwd(model.actName("mlp_out", drop), (x, hp) -> x.stopGradient()));
                    }
                }
                List<String> gradNames = qk ? qkNames.values().stream().map(QkNames::pattern).toList() : names;
                ActivationCache grads;
                try (HookScope s = model.hooks(stops.toArray(Hook[]::new))) {
                    grads = model.runWithGradients(Batch.of(base), Patching.filter(gradNames),
                            logits -> p.metric().perRow(logits, base.length).mean());
                }
                try (grads) {
                    Map<Integer, float[]> perLayer = new LinkedHashMap<>();
                    Map<Integer, float[]> wholeKeys = new LinkedHashMap<>();
                    for (Map.Entry<Integer, String> e : hooks.entrySet()) {
                        int l = e.getKey();
                        NDArray contrib;
                        if (qk) {
                            NDArray[] c = qkContribution(site, qkNames.get(l), baseCache, sources, grads);
                            contrib = c[0];
                            if (c.length > 1) wholeKeys.put(l, c[1].toType(DataType.FLOAT32, false).toFloatArray());
                        } else {
                            contrib = linearContribution(site, baseCache.get(e.getValue()), sources.get(e.getValue()),
                                    grads.get(e.getValue()));
                        }
                        perLayer.put(l, contrib.toType(DataType.FLOAT32, false).toFloatArray());
                    }
                    for (int i = 0; i < indices.size(); i++) {
                        PatchIndex ix = indices.get(i);
                        double v = 0;
                        if (wholeKeys.containsKey(ix.layer()) && ix.pos().isEmpty()) {
                            v = wholeKeys.get(ix.layer())[ix.head().orElseThrow()];
                        } else {
                            boolean[] m = p.mask(site, ix, maskShape);
                            float[] c = perLayer.get(ix.layer());
                            for (int j = 0; j < m.length; j++) if (m[j]) v += c[j];
                        }
                        if (drop < 0) {
                            sums[i] = v;
                        } else if (!ownLayerDropped(site, ix.layer(), drop)) {
                            gradDrop[i] += Math.abs(v);
                        }
                    }
                }
            }
        }
        double metricBase = d == Direction.DENOISE ? p.metricCorrupt() : p.metricClean();
        double[] values = new double[sums.length];
        for (int i = 0; i < values.length; i++) values[i] = metricBase + sums[i];
        Optional<double[]> scores = Optional.empty();
        if (star) {
            double denom = Math.max(1, nLayers - 1);
            double[] s = new double[gradDrop.length];
            for (int i = 0; i < s.length; i++) s[i] = gradDrop[i] / denom;
            scores = Optional.of(s);
        }
        return new PatchResult(star ? "atp*" : "atp", site, d, p.metric().name(), p.replacement().label(), indices,
                values, p.metricClean(), p.metricCorrupt(), p.strTokens(base[0]), nLayers, heads, scores);
    }

    /**
     * Integrated gradients per node, as EAP-IG (Hanna et al. 2024) computes them: the gradient with respect to each
     * activation averaged over {@code steps} runs whose input embeddings lie on the straight line from the patched
     * run's to the other run's (midpoints), times the activation's difference: {@code M(base) + Σ Δa · mean_α ∂M/∂a}.
     * All steps run as one batch of {@code steps × prompts} rows.
     */
    public static PatchResult integratedGradients(Patching p, PatchSite site, Direction d, int steps) {
        return integratedGradients(p, site, d, p.indices(site, false, false), steps);
    }

    /** {@link #integratedGradients(Patching, PatchSite, Direction, int)} of chosen indices. */
    public static PatchResult integratedGradients(Patching p, PatchSite site, Direction d, List<PatchIndex> indices,
                                                  int steps) {
        if (steps < 1) throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        HookedTransformer model = p.model();
        Map<Integer, String> hooks = new LinkedHashMap<>();
        for (PatchIndex ix : indices) hooks.computeIfAbsent(ix.layer(), l -> p.hookName(site, l));
        List<String> names = new ArrayList<>(hooks.values());
        String in0 = model.actName("resid_pre", 0);
        List<String> cached = new ArrayList<>(names);
        if (!cached.contains(in0)) cached.add(in0);
        long[][] base = p.base(d);
        int n = base.length;
        int heads = site.isHead() ? p.headCount(site) : 0;
        long[] maskShape = p.maskShape(site, heads);
        double[] sums = new double[indices.size()];
        try (ActivationCache baseCache = model.runWithCache(base, Patching.filter(cached));
             ActivationCache other = model.runWithCache(p.source(d), Patching.filter(cached));
             NDScope scope = new NDScope()) {
            NDArray b0 = baseCache.get(in0), diff0 = other.get(in0).sub(b0);
            float[] alphaRows = new float[steps * n];
            for (int k = 0; k < steps; k++) java.util.Arrays.fill(alphaRows, k * n, (k + 1) * n, (k + 0.5f) / steps);
            NDArray alpha = dev.jlens.util.Tensors.owned(b0.getManager().create(alphaRows, new Shape(steps * n, 1, 1)));
            Hook line = Hook.fwd(in0, (x, hp) -> Patching.tile(b0, steps).add(Patching.tile(diff0, steps).mul(alpha)));
            ActivationCache grads;
            try (HookScope s = model.hooks(line)) {
                grads = model.runWithGradients(Batch.of(Patching.tile(base, steps)), Patching.filter(names),
                        logits -> p.metric().perRow(logits, n).mean());
            }
            try (grads) {
                for (Map.Entry<Integer, String> e : hooks.entrySet()) {
                    NDArray g = grads.get(e.getValue());
                    Shape gs = g.getShape();
                    long[] dims = new long[gs.dimension() + 1];
                    dims[0] = steps;
                    dims[1] = n;
                    for (int i = 1; i < gs.dimension(); i++) dims[i + 1] = gs.get(i);
                    NDArray summed = g.reshape(new Shape(dims)).sum(new int[] {0});   // averaged over the line / N
                    NDArray src = p.sourceActivation(e.getValue(), baseCache, other);
                    float[] c = linearContribution(site, baseCache.get(e.getValue()), src, summed)
                            .toType(DataType.FLOAT32, false).toFloatArray();
                    for (int i = 0; i < indices.size(); i++) {
                        PatchIndex ix = indices.get(i);
                        if (ix.layer() != e.getKey()) continue;
                        boolean[] m = p.mask(site, ix, maskShape);
                        for (int j = 0; j < m.length; j++) if (m[j]) sums[i] += c[j];
                    }
                }
            }
        }
        double metricBase = d == Direction.DENOISE ? p.metricCorrupt() : p.metricClean();
        double[] values = new double[sums.length];
        for (int i = 0; i < values.length; i++) values[i] = metricBase + sums[i];
        return new PatchResult("eap-ig(" + steps + ")", site, d, p.metric().name(), p.replacement().label(), indices,
                values, p.metricClean(), p.metricCorrupt(), p.strTokens(base[0]), model.nLayers(), heads,
                Optional.empty());
    }

    /**
     * Runs the exact patching of the estimate's indices and compares: Spearman's ρ of the effects and the recall of
     * the exact top {@code k} among the estimate's top {@code k}.
     */
    public static Validation validate(Patching p, PatchResult estimate, int k) {
        PatchResult exact = p.run(estimate.site(), estimate.direction(), estimate.indices());
        return estimate.compare(exact, k);
    }

    // ------------------------------------------------------------------------------------------ helpers

    /** A node in layer {@code layer} whose only way out is the dropped layer's output contributes nothing. */
    private static boolean ownLayerDropped(PatchSite site, int layer, int drop) {
        if (layer != drop) return false;
        return site.isHead() || site == PatchSite.ATTN_OUT || site == PatchSite.MLP_OUT;
    }

    /**
     * {@code (source - base) * grad} reduced to the mask's granularity: {@code [P]} for position sites,
     * {@code [P, H]} for heads, {@code [H, P]} for patterns.
     */
    static NDArray linearContribution(PatchSite site, NDArray base, NDArray source, NDArray grad) {
        NDArray prod = source.sub(base).mul(grad);
        if (!site.isHead()) return prod.sum(new int[] {0}).sum(new int[] {1});
        return prod.sum(new int[] {0}).sum(new int[] {2});   // [P, H, dh] -> [P, H]; pattern [H, Q, K] -> [H, Q]
    }

    /** The hooks the QK fix reads at one layer: rotated queries and keys where the model rotates them. */
    record QkNames(String q, String k, String pattern, boolean rotated) {
        static QkNames of(HookedTransformer model, int layer) {
            String rq = dev.jlens.hook.HookNames.actName("rot_q", layer);
            boolean rot = model.hookNames().contains(rq);
            return new QkNames(rot ? rq : model.actName("q", layer),
                    rot ? dev.jlens.hook.HookNames.actName("rot_k", layer) : model.actName("k", layer),
                    model.actName("pattern", layer), rot);
        }
    }

    /**
     * The QK fix: the exact change of the attention pattern when queries ({@code Q} site, each row on its own) or
     * keys ({@code K} site) are patched, dotted with the gradient of the metric with respect to the pattern. Returns
     * {@code [P, H]} like {@link #linearContribution}: for queries each row on its own (rows are independent, so a
     * whole head is their sum); for keys each key position on its own, and a second array {@code [H]} with all of a
     * head's keys patched at once (one softmax, not a sum of single-key patches).
     */
    private static NDArray[] qkContribution(PatchSite site, QkNames names, ActivationCache baseCache,
                                            Map<String, NDArray> sources, ActivationCache grads) {
        NDArray qBase = baseCache.get(names.q());                 // [N, P, H, dh]
        NDArray kBase = expandKv(baseCache.get(names.k()), qBase); // [N, P, H, dh]
        NDArray qSrc = sources.get(names.q());
        NDArray kSrc = expandKv(sources.get(names.k()), qBase);
        NDArray patternBase = baseCache.get(names.pattern());     // [N, H, Q, K]
        NDArray g = grads.get(names.pattern());
        long n = qBase.getShape().get(0), p = qBase.getShape().get(1), h = qBase.getShape().get(2);
        double scale = 1.0 / Math.sqrt(qBase.getShape().get(3));
        NDManager m = qBase.getManager();
        NDArray causal = causal(m, p);                             // [P, P] true where k <= q
        if (site == PatchSite.Q) {
            // row t of head h depends only on q_t,h: one softmax gives every query's patch at once
            NDArray scores = scores(qSrc, kBase, scale, causal);
            NDArray delta = scores.softmax(-1).sub(patternBase);
            NDArray c = delta.mul(g).sum(new int[] {0}).sum(new int[] {2});   // [H, Q]
            return new NDArray[] {c.transpose(1, 0)};                          // [P, H]
        }
        // keys: patching key s changes column s of every row; one softmax per key position
        NDArray sBase = scores(qBase, kBase, scale, causal);                   // [N, H, Q, K]
        NDArray sNewCol = scores(qBase, kSrc, scale, causal);                  // column s from the patched key s
        NDArray[] perKey = new NDArray[(int) p];
        for (int s = 0; s < p; s++) {
            NDArray onlyS = NDArrays.where(columnMask(m, p, s).broadcast(sBase.getShape()), sNewCol, sBase);
            NDArray delta = onlyS.softmax(-1).sub(patternBase);
            perKey[s] = delta.mul(g).sum(new int[] {0}).sum(new int[] {1}).sum(new int[] {1});   // [H]
        }
        NDArray c = NDArrays.stack(new ai.djl.ndarray.NDList(perKey), 0);     // [P, H]
        NDArray all = sNewCol.softmax(-1).sub(patternBase).mul(g).sum(new int[] {0}).sum(new int[] {1})
                .sum(new int[] {1});                                           // [H]
        long kvHeads = baseCache.get(names.k()).getShape().get(2);
        if (kvHeads != h) {   // grouped-query attention: a kv head's patch is its query heads' sum
            c = c.reshape(p, kvHeads, h / kvHeads).sum(new int[] {2});
            all = all.reshape(kvHeads, h / kvHeads).sum(new int[] {1});
        }
        return new NDArray[] {c, all};
    }

    private static NDArray scores(NDArray q, NDArray k, double scale, NDArray causal) {
        NDArray s = q.transpose(0, 2, 1, 3).matMul(k.transpose(0, 2, 3, 1)).mul(scale);   // [N, H, Q, K]
        NDArray neg = s.getManager().full(new Shape(), Float.NEGATIVE_INFINITY, s.getDataType());
        return NDArrays.where(causal.broadcast(s.getShape()), s, neg.broadcast(s.getShape()));
    }

    private static NDArray causal(NDManager m, long p) {
        boolean[] c = new boolean[(int) (p * p)];
        for (int q = 0; q < p; q++) for (int k = 0; k <= q; k++) c[(int) (q * p + k)] = true;
        return dev.jlens.util.Tensors.owned(m.create(c, new Shape(p, p)));
    }

    private static NDArray columnMask(NDManager m, long p, int s) {
        boolean[] c = new boolean[(int) (p * p)];
        for (int q = 0; q < p; q++) c[(int) (q * p + s)] = true;
        return dev.jlens.util.Tensors.owned(m.create(c, new Shape(p, p)));
    }

    /** Keys or values {@code [N, P, Hkv, dh]} repeated to the query heads of {@code q}. */
    private static NDArray expandKv(NDArray kv, NDArray q) {
        long hkv = kv.getShape().get(2), h = q.getShape().get(2);
        if (hkv == h) return kv;
        long group = h / hkv;
        Shape s = kv.getShape();
        return kv.expandDims(3).broadcast(s.get(0), s.get(1), hkv, group, s.get(3)).reshape(s.get(0), s.get(1), h,
                s.get(3));
    }
}
