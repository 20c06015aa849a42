package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookFn;
import dev.jlens.hook.HookScope;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.util.Tensors;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Edge attribution: every edge of the graph ({@link Node}, {@link Edge}) scored from gradients, and exact edge
 * patching to check the scores.
 *
 * <ul>
 * <li><b>EAP</b> (Syed et al. 2023): {@code score(u -> v) = Σ (a_u,source - a_u,base) · ∂M/∂(input of v)}, the
 * gradient on the run that is patched. One forward and backward pass for every edge.</li>
 * <li><b>EAP-IG</b> (Hanna et al. 2024): the gradient averaged over {@code m} runs whose input embeddings lie on the
 * straight line from the patched run's to the other run's (midpoints {@code α = (k + ½)/m}), all in one batched
 * backward pass. As {@code m} grows, the scores of the input's edges sum to the exact effect of patching the whole
 * input (integrated gradients' completeness).</li>
 * <li><b>Exact edge patching</b>: the patched run with only {@code v}'s input changed by {@code u}'s output
 * difference ({@code v} reads {@code resid + Δa_u}, everything else reads the unchanged residual), many edges per
 * forward pass.</li>
 * </ul>
 *
 * <p>A head's input gradient is split from the shared normalisation by the norm's backward formula (LayerNorm or
 * RMSNorm) applied to the head's own query/key/value gradient; an MLP's is {@code ∂M/∂resid_mid - ∂M/∂resid_post};
 * the logits' is {@code ∂M/∂resid_post} of the last block. The shared attention bias {@code b_O} is not a node. The
 * grouped-query models' key and value inputs are per kv head.
 *
 * <pre>{@code
 * EdgeResult ig = EdgeAttribution.eapIg(patching, Direction.DENOISE, 16);
 * ig.toTable();                                   // edges by |score|
 * Validation v = EdgeAttribution.validate(patching, ig, 20);
 * }</pre>
 */
public final class EdgeAttribution {

    private EdgeAttribution() {}

    /** Every edge of the model, sources in layer order, targets in layer order (q, k, v per head). */
    public static List<Edge> edges(HookedTransformer model) {
        List<Edge> out = new ArrayList<>();
        for (Target t : targets(model)) {
            for (Node u : Node.writers(model.nLayers(), model.cfg().nHeads(), !model.cfg().attnOnly())) {
                if (u.precedes(t.node())) out.add(new Edge(u, t.node(), t.input()));
            }
        }
        return out;
    }

    /** EAP: gradients on the patched run. */
    public static EdgeResult eap(Patching p, Direction d) {
        return score(p, d, new double[] {0}, "eap");
    }

    /** EAP-IG with {@code steps} interpolation steps. */
    public static EdgeResult eapIg(Patching p, Direction d, int steps) {
        if (steps < 1) throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        double[] alphas = new double[steps];
        for (int k = 0; k < steps; k++) alphas[k] = (k + 0.5) / steps;
        return score(p, d, alphas, "eap-ig(" + steps + ")");
    }

    /** Exact edge patching of {@code est}'s edges, compared with it. */
    public static Validation validate(Patching p, EdgeResult est, int k) {
        return est.compare(exact(p, est.direction(), est.edges()), k);
    }

    // ------------------------------------------------------------------------------------------ scoring

    /** A target input: a node and which of its inputs (q, k, v for heads). */
    record Target(Node node, String input) {}

    static List<Target> targets(HookedTransformer model) {
        List<Target> out = new ArrayList<>();
        int kv = model.cfg().nKvHeads();
        for (int l = 0; l < model.nLayers(); l++) {
            for (String x : List.of("q", "k", "v")) {
                int heads = x.equals("q") ? model.cfg().nHeads() : kv;
                for (int h = 0; h < heads; h++) out.add(new Target(Node.head(l, h), x));
            }
            if (!model.cfg().attnOnly()) out.add(new Target(Node.mlp(l), ""));
        }
        out.add(new Target(Node.logits(model.nLayers()), ""));
        return out;
    }

    private static EdgeResult score(Patching p, Direction d, double[] alphas, String method) {
        HookedTransformer model = p.model();
        int nLayers = model.nLayers();
        long[][] base = p.base(d);
        int n = base.length, len = base[0].length, m = alphas.length;
        List<Node> writers = Node.writers(nLayers, model.cfg().nHeads(), !model.cfg().attnOnly());
        List<Target> targets = targets(model);
        double[][] s = new double[writers.size()][targets.size()];
        try (NDScope scope = new NDScope();
             Deltas deltas = Deltas.of(p, d)) {
            NDArray u = deltas.stacked(writers);                               // [nU, N*P*d]
            // the runs on the interpolation line, in one batch of m * N rows
            String in0 = model.actName("resid_pre", 0);
            NDArray base0 = deltas.base.get(in0), diff0 = deltas.source.get(in0).sub(base0);
            float[] alphaRows = new float[m * n];
            for (int k = 0; k < m; k++) for (int i = 0; i < n; i++) alphaRows[k * n + i] = (float) alphas[k];
            NDArray alpha = Tensors.owned(base0.getManager().create(alphaRows, new Shape(m * n, 1, 1)));
            List<Hook> hooks = new ArrayList<>();
            boolean interpolate = !(m == 1 && alphas[0] == 0);
            if (interpolate) {
                hooks.add(Hook.fwd(in0, (x, hp) -> Patching.tile(base0, m).add(Patching.tile(diff0, m).mul(alpha))));
            }
            Map<String, NDArray> residPre = new HashMap<>();
            for (int l = 0; l < nLayers; l++) {
                hooks.add(Hook.fwd(model.actName("resid_pre", l), HookFn.reader((x, hp) -> {
                    NDArray copy = x.stopGradient().duplicate();
                    NDScope.unregister(copy);   // outlives the gradient run's scope; registered below
                    residPre.put(hp.name(), copy);
                })));
            }
            List<String> gradNames = new ArrayList<>();
            for (int l = 0; l < nLayers; l++) {
                for (String x : List.of("q", "k", "v")) gradNames.add(model.actName(x, l));
                if (!model.cfg().attnOnly()) gradNames.add(model.actName("resid_mid", l));
                gradNames.add(model.actName("resid_post", l));
            }
            ActivationCache grads;
            try (HookScope hs = model.hooks(hooks.toArray(Hook[]::new))) {
                grads = model.runWithGradients(Batch.of(Patching.tile(base, m)), Patching.filter(gradNames),
                        logits -> p.metric().perRow(logits, n).mean());
            } finally {
                residPre.values().forEach(NDScope::register);
            }
            try (grads) {
                // per-row gradients of the mean over m * N rows: summing the m blocks gives the gradient of the
                // prompts' mean metric, averaged over the line
                Norms norms = Norms.of(model);
                int col = 0;
                for (int l = 0; l <= nLayers; l++) {
                    List<NDArray> g = new ArrayList<>();   // [N, P, d] per target at this layer
                    if (l < nLayers) {
                        NDArray x = residPre.get(model.actName("resid_pre", l));
                        for (String input : List.of("q", "k", "v")) {
                            NDArray gh = grads.get(model.actName(input, l));          // [mN, P, H, dh]
                            NDArray w = projection(model, l, input);                  // [H, d, dh]
                            long h = gh.getShape().get(2);
                            NDArray dy = gh.transpose(2, 0, 1, 3).reshape(h, (long) m * n * len, -1)
                                    .matMul(w.transpose(0, 2, 1));                      // [H, mNP, d]
                            NDArray dx = norms.backward(l, "ln1", x.reshape(1, (long) m * n * len, -1), dy);
                            NDArray summed = dx.reshape(h, m, (long) n * len, -1).sum(new int[] {1});   // [H, NP, d]
                            for (int i = 0; i < h; i++) g.add(summed.get(i));
                        }
                        if (!model.cfg().attnOnly()) {
                            NDArray gm = grads.get(model.actName("resid_mid", l))
                                    .sub(grads.get(model.actName("resid_post", l)));
                            g.add(gm.reshape(m, (long) n * len, -1).sum(new int[] {0}));
                        }
                    } else {
                        NDArray gl = grads.get(model.actName("resid_post", nLayers - 1));
                        g.add(gl.reshape(m, (long) n * len, -1).sum(new int[] {0}));
                    }
                    NDArray gv = NDArrays.stack(new NDList(g), 0).reshape(g.size(), -1);   // [nV_l, NPd]
                    float[] block = u.matMul(gv.transpose()).toFloatArray();            // [nU, nV_l]
                    for (int a = 0; a < writers.size(); a++) {
                        for (int b = 0; b < g.size(); b++) s[a][col + b] = block[a * g.size() + b];
                    }
                    col += g.size();
                }
            }
        }
        double metricBase = d == Direction.DENOISE ? p.metricCorrupt() : p.metricClean();
        List<Edge> edges = new ArrayList<>();
        List<Double> values = new ArrayList<>();
        for (int b = 0; b < targets.size(); b++) {
            Target t = targets.get(b);
            for (int a = 0; a < writers.size(); a++) {
                if (writers.get(a).precedes(t.node())) {
                    edges.add(new Edge(writers.get(a), t.node(), t.input()));
                    values.add(metricBase + s[a][b]);
                }
            }
        }
        return new EdgeResult(method, d, p.metric().name(), edges,
                values.stream().mapToDouble(Double::doubleValue).toArray(), p.metricClean(), p.metricCorrupt());
    }

    /** The projection {@code [heads, d_model, d_head]} of a head input (kv heads for k and v). */
    static NDArray projection(HookedTransformer model, int layer, String input) {
        String upper = input.toUpperCase(java.util.Locale.ROOT);
        String gqa = "blocks." + layer + ".attn._W_" + upper;
        if (!input.equals("q") && model.tlWeights().names().contains(gqa)) return model.tlWeights().get(gqa);
        return model.tlWeights().get("blocks." + layer + ".attn.W_" + upper);
    }

    static NDArray projectionBias(HookedTransformer model, int layer, String input) {
        String upper = input.toUpperCase(java.util.Locale.ROOT);
        String gqa = "blocks." + layer + ".attn._b_" + upper;
        if (!input.equals("q") && model.tlWeights().names().contains(gqa)) return model.tlWeights().get(gqa);
        return model.tlWeights().get("blocks." + layer + ".attn.b_" + upper);
    }

    // ----------------------------------------------------------------------------------- exact patching

    /** Exact edge patching: the metric with each edge alone patched. */
    public static EdgeResult exact(Patching p, Direction d, List<Edge> edges) {
        HookedTransformer model = p.model();
        int nLayers = model.nLayers();
        if (edges.isEmpty()) throw new IllegalArgumentException("no edges to patch");
        for (Edge e : edges) checkEdge(model, e);
        long[][] base = p.base(d);
        int n = base.length;
        double[] values;
        try (Deltas deltas = Deltas.of(p, d)) {
            Norms norms = Norms.of(model);
            values = p.runBlocks(base, edges.size(), "edge patching", (first, count) -> {
                List<Hook> hooks = new ArrayList<>();
                Map<String, NDArray> captured = new HashMap<>();
                // group the chunk's edges by the hook that carries their target's input
                Map<String, List<Integer>> byHook = new LinkedHashMap<>();
                for (int j = 0; j < count; j++) {
                    Edge e = edges.get(first + j);
                    byHook.computeIfAbsent(targetHook(model, e), k -> new ArrayList<>()).add(j);
                }
                for (int l = 0; l < nLayers; l++) {
                    for (String r : List.of("resid_pre", "resid_mid")) {
                        if (r.equals("resid_mid") && model.cfg().attnOnly()) continue;
                        hooks.add(Hook.fwd(model.actName(r, l), HookFn.reader((x, hp) -> captured.put(hp.name(), x))));
                    }
                }
                for (Map.Entry<String, List<Integer>> g : byHook.entrySet()) {
                    Edge any = edges.get(first + g.getValue().get(0));
                    hooks.add(Hook.fwd(g.getKey(), (act, hp) -> {
                        NDArray delta = deltaRows(deltas, edges, first, count, g.getValue(), n, act.getManager());
                        Node to = any.to();
                        if (to.kind() == Node.Kind.LOGITS) return act.add(delta);
                        if (to.kind() == Node.Kind.MLP) {
                            NDArray x = captured.get(model.actName("resid_mid", to.layer())).add(delta);
                            NDArray rows = rowMask(count, n, g.getValue(), act.getManager());
                            return Patching.where(rows, norms.normalizedHook(to.layer(), "ln2", x), act);
                        }
                        NDArray x = captured.get(model.actName("resid_pre", to.layer())).add(delta);
                        NDArray y = norms.output(to.layer(), "ln1", x);                       // [R, P, d]
                        NDArray w = projection(model, to.layer(), any.input());                // [H, d, dh]
                        long h = w.getShape().get(0), dh = w.getShape().get(2);
                        long rows = y.getShape().get(0), len = y.getShape().get(1);
                        NDArray proj = y.matMul(w.transpose(1, 0, 2).reshape(-1, h * dh)).reshape(rows, len, h, dh)
                                .add(projectionBias(model, to.layer(), any.input()));
                        boolean[] mask = new boolean[(int) (rows * h)];
                        for (int j : g.getValue()) {
                            int head = edges.get(first + j).to().head();
                            for (int i = 0; i < n; i++) mask[(j * n + i) * (int) h + head] = true;
                        }
                        NDArray mk = Tensors.owned(act.getManager().create(mask, new Shape(rows, 1, h, 1)));
                        return Patching.where(mk, proj, act);
                    }));
                }
                return hooks;
            });
        }
        return new EdgeResult("edge patching", d, p.metric().name(), edges, values, p.metricClean(),
                p.metricCorrupt());
    }

    private static void checkEdge(HookedTransformer model, Edge e) {
        int nLayers = model.nLayers();
        for (Node x : List.of(e.from(), e.to())) {
            if (x.kind() == Node.Kind.HEAD || x.kind() == Node.Kind.MLP) {
                if (x.layer() < 0 || x.layer() >= nLayers) {
                    throw new IllegalArgumentException("edge " + e.label() + ": layer " + x.layer() + " is out of "
                            + "range, valid layers are 0.." + (nLayers - 1));
                }
            }
            if (x.kind() == Node.Kind.MLP && model.cfg().attnOnly()) {
                throw new IllegalArgumentException("edge " + e.label() + ": the model is attention-only, it has no MLPs");
            }
        }
        if (e.from().kind() == Node.Kind.HEAD && e.from().head() >= model.cfg().nHeads()) {
            throw new IllegalArgumentException("edge " + e.label() + ": valid heads are 0.." + (model.cfg().nHeads() - 1));
        }
        if (e.to().kind() == Node.Kind.HEAD) {
            int h = e.input().equals("q") ? model.cfg().nHeads() : model.cfg().nKvHeads();
            if (e.to().head() >= h) {
                throw new IllegalArgumentException("edge " + e.label() + ": valid " + e.input() + " heads are 0.."
                        + (h - 1));
            }
        }
    }

    private static String targetHook(HookedTransformer model, Edge e) {
        Node to = e.to();
        return switch (to.kind()) {
            case LOGITS -> model.actName("resid_post", model.nLayers() - 1);
            case MLP -> model.actName("normalized", to.layer(), "ln2");
            case HEAD -> model.actName(e.input(), to.layer());
            case INPUT -> throw new IllegalArgumentException("the input reads nothing");
        };
    }

    /** {@code [R, P, d]}: each listed block's source delta on its rows, zero elsewhere. */
    private static NDArray deltaRows(Deltas deltas, List<Edge> edges, int first, int count, List<Integer> blocks,
                                     int n, NDManager m) {
        NDArray zero = null;
        NDArray[] parts = new NDArray[count];
        for (int j = 0; j < count; j++) {
            if (blocks.contains(j)) {
                parts[j] = deltas.of(edges.get(first + j).from());
            } else {
                if (zero == null) zero = deltas.of(edges.get(first + blocks.get(0)).from()).zerosLike();
                parts[j] = zero;
            }
        }
        return NDArrays.concat(new NDList(parts), 0);
    }

    private static NDArray rowMask(int count, int n, List<Integer> blocks, NDManager m) {
        boolean[] rows = new boolean[count * n];
        for (int j : blocks) for (int i = 0; i < n; i++) rows[j * n + i] = true;
        return Tensors.owned(m.create(rows, new Shape(count * n, 1, 1)));
    }

    // ------------------------------------------------------------------------------------------ pieces

    /** The writers' outputs in both runs, and their differences. */
    static final class Deltas implements AutoCloseable {
        final ActivationCache base;
        final ActivationCache other;
        final Map<String, NDArray> source = new HashMap<>();
        final HookedTransformer model;
        private final Map<Node, NDArray> cache = new HashMap<>();

        private Deltas(HookedTransformer model, ActivationCache base, ActivationCache other) {
            this.model = model;
            this.base = base;
            this.other = other;
        }

        static Deltas of(Patching p, Direction d) {
            HookedTransformer model = p.model();
            List<String> names = new ArrayList<>();
            names.add(model.actName("resid_pre", 0));
            for (int l = 0; l < model.nLayers(); l++) {
                names.add(model.actName("result", l));
                if (!model.cfg().attnOnly()) names.add(model.actName("mlp_out", l));
            }
            ActivationCache b = model.runWithCache(p.base(d), Patching.filter(names));
            ActivationCache o = null;
            try {
                o = model.runWithCache(p.source(d), Patching.filter(names));
                Deltas out = new Deltas(model, b, o);
                for (String name : names) out.source.put(name, p.sourceActivation(name, b, o));
                return out;
            } catch (RuntimeException e) {
                b.close();
                if (o != null) o.close();
                throw e;
            }
        }

        /** {@code source - base} of a writer's output {@code [N, P, d]}. */
        NDArray of(Node u) {
            NDArray cached = cache.get(u);
            if (cached != null) return cached;
            NDArray out;
            try (NDScope scope = new NDScope()) {   // cached across passes: owned by the base cache
                out = switch (u.kind()) {
                    case INPUT -> diff(model.actName("resid_pre", 0));
                    case MLP -> diff(model.actName("mlp_out", u.layer()));
                    case HEAD -> {
                        String r = model.actName("result", u.layer());
                        ai.djl.ndarray.index.NDIndex at = new ai.djl.ndarray.index.NDIndex(":, :, {}", u.head());
                        yield source.get(r).get(at).sub(base.get(r).get(at));
                    }
                    case LOGITS -> throw new IllegalArgumentException("the logits write nothing");
                };
                NDScope.unregister(out);
            }
            out.attach(base.manager());
            cache.put(u, out);
            return out;
        }

        private NDArray diff(String name) {
            return source.get(name).sub(base.get(name));
        }

        /** The writers' deltas as rows {@code [nU, N*P*d]}. */
        NDArray stacked(List<Node> writers) {
            List<NDArray> rows = new ArrayList<>();
            for (Node u : writers) rows.add(of(u).reshape(-1));
            return NDArrays.stack(new NDList(rows), 0);
        }

        @Override
        public void close() {
            other.close();
            base.close();
        }
    }

    /** The blocks' norms: forward as the model computes them and their backward formula. */
    record Norms(HookedTransformer model, boolean centre, double eps) {
        static Norms of(HookedTransformer model) {
            return new Norms(model, model.normCentres(), model.cfg().normEps());
        }

        private NDArray weight(int layer, String ln) {
            return model.tlWeights().get("blocks." + layer + "." + ln + ".w");
        }

        private NDArray bias(int layer, String ln) {
            String name = "blocks." + layer + "." + ln + ".b";
            return model.tlWeights().names().contains(name) ? model.tlWeights().get(name) : null;
        }

        /** {x̂, σ} of {@code x}. */
        private NDArray[] standardise(NDArray x) {
            NDArray c = centre ? x.sub(x.mean(new int[] {-1}, true)) : x;
            NDArray sigma = c.square().mean(new int[] {-1}, true).add(eps).sqrt();
            return new NDArray[] {c.div(sigma), sigma};
        }

        /** What the norm feeds the next linear map: {@code x̂ w + b}. */
        NDArray output(int layer, String ln, NDArray x) {
            NDArray y = standardise(x)[0].mul(weight(layer, ln));
            NDArray b = bias(layer, ln);
            return b == null ? y : y.add(b);
        }

        /** The value at {@code lnX.hook_normalized}: after weight and bias for LayerNorm, before the weight for RMSNorm. */
        NDArray normalizedHook(int layer, String ln, NDArray x) {
            return centre ? output(layer, ln, x) : standardise(x)[0];
        }

        /**
         * {@code ∂M/∂x} from {@code dy = ∂M/∂(x̂ w + b)}: {@code (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)) / σ} with
         * {@code dx̂ = dy w} (no mean term for RMSNorm). {@code x} broadcasts against {@code dy}'s leading dims.
         */
        NDArray backward(int layer, String ln, NDArray x, NDArray dy) {
            NDArray[] s = standardise(x);
            NDArray xh = s[0], sigma = s[1];
            NDArray dxh = dy.mul(weight(layer, ln));
            NDArray proj = dxh.mul(xh).mean(new int[] {-1}, true);
            NDArray dx = dxh.sub(xh.mul(proj));
            if (centre) dx = dx.sub(dxh.mean(new int[] {-1}, true));
            return dx.div(sigma);
        }
    }
}
