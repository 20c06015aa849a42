package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookFn;
import dev.jlens.model.HookedTransformer;
import dev.jlens.util.Tensors;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * A circuit as a set of edges, the unit that EAP and EAP-IG score and that the MIB benchmark measures.
 *
 * <p>Faithfulness as for node circuits ({@link Circuit}), {@code (M(C) - M(∅)) / (M(full) - M(∅))}, where now every
 * edge outside the circuit carries the corrupt run's value: a node's input is the clean run's residual stream as it
 * is in this run, minus the current outputs of the upstream nodes whose edge into it is not in the circuit, plus
 * their outputs in the corrupt run (or the patching's replacement). Nodes downstream recompute from their inputs, so
 * an edge's effect reaches the logits only through edges of the circuit. Many circuits run in one forward pass; a
 * head's three inputs (q, k, v) are separate targets, recomputed from their own residual input through the block's
 * norm.
 *
 * <pre>{@code
 * EdgeResult scores = EdgeAttribution.eapIg(p, Direction.DENOISE, 16);
 * FaithfulnessCurve c = EdgeCircuit.curve(p, scores.importance());
 * EdgeCircuit.top(scores.importance(), 20).faithfulness(p);
 * }</pre>
 *
 * @param edges the edges kept
 */
public record EdgeCircuit(Set<Edge> edges) {

    /** Copies. */
    public EdgeCircuit {
        edges = java.util.Collections.unmodifiableSet(new LinkedHashSet<>(edges));
    }

    /** The {@code k} edges with the largest scores. */
    public static EdgeCircuit top(Map<Edge, Double> scores, int k) {
        List<Edge> order = ranked(scores);
        return new EdgeCircuit(new LinkedHashSet<>(order.subList(0, Math.min(k, order.size()))));
    }

    /** Its faithfulness. */
    public double faithfulness(Patching p) {
        return faithfulness(p, List.of(this))[0];
    }

    /** The faithfulness of each circuit. */
    public static double[] faithfulness(Patching p, List<EdgeCircuit> circuits) {
        List<EdgeCircuit> runs = new ArrayList<>(circuits);
        runs.add(new EdgeCircuit(Set.of()));
        double[] m = metrics(p, runs);
        double empty = m[m.length - 1], full = p.metricClean();
        double[] f = new double[circuits.size()];
        for (int i = 0; i < f.length; i++) f[i] = (m[i] - empty) / (full - empty);
        return f;
    }

    /**
     * The faithfulness curve over the edges ranked by {@code scores}, at every size up to 32 edges and then at the
     * MIB benchmark's fractions of the graph (0.1%, 0.2%, 0.5%, 1%, 2%, 5%, 10%, 20%, 50%, 100%).
     */
    public static FaithfulnessCurve curve(Patching p, Map<Edge, Double> scores) {
        int n = scores.size();
        TreeSet<Integer> sizes = new TreeSet<>();
        for (int k = 0; k <= Math.min(32, n); k++) sizes.add(k);
        for (double f : new double[] {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}) {
            sizes.add((int) Math.round(f * n));
        }
        return curve(p, scores, sizes.stream().mapToInt(Integer::intValue).toArray());
    }

    /** The faithfulness curve at the given numbers of top edges. */
    public static FaithfulnessCurve curve(Patching p, Map<Edge, Double> scores, int[] sizes) {
        Objects.requireNonNull(scores, "scores");
        if (scores.isEmpty()) throw new IllegalArgumentException("no edge scores to rank");
        List<Edge> order = ranked(scores);
        List<EdgeCircuit> circuits = new ArrayList<>();
        for (int k : sizes) {
            if (k < 0 || k > order.size()) {
                throw new IllegalArgumentException("circuit size " + k + " is out of range 0.." + order.size());
            }
            circuits.add(new EdgeCircuit(new LinkedHashSet<>(order.subList(0, k))));
        }
        double[] f = faithfulness(p, circuits);
        double[] x = new double[sizes.length];
        for (int i = 0; i < sizes.length; i++) x[i] = (double) sizes[i] / order.size();
        return new FaithfulnessCurve(sizes.clone(), x, f, order.stream().map(Edge::label).toList());
    }

    private static List<Edge> ranked(Map<Edge, Double> scores) {
        List<Edge> order = new ArrayList<>(scores.keySet());
        order.sort(Comparator.comparingDouble((Edge e) -> -scores.get(e)));
        return order;
    }

    /** The metric of the clean run with every edge outside each circuit carrying the replacement. */
    static double[] metrics(Patching p, List<EdgeCircuit> circuits) {
        HookedTransformer model = p.model();
        int nLayers = model.nLayers();
        Set<Edge> valid = new java.util.HashSet<>(EdgeAttribution.edges(model));
        for (EdgeCircuit c : circuits) {
            for (Edge e : c.edges) {
                if (!valid.contains(e)) {
                    throw new IllegalArgumentException("edge " + e.label() + " is not in this model's graph ("
                            + valid.size() + " edges: EdgeAttribution.edges(model) lists them)");
                }
            }
        }
        List<Node> writers = Node.writers(nLayers, model.cfg().nHeads(), !model.cfg().attnOnly());
        List<EdgeAttribution.Target> targets = EdgeAttribution.targets(model);
        int n = p.prompts();
        EdgeAttribution.Norms norms = EdgeAttribution.Norms.of(model);
        try (EdgeAttribution.Deltas d = EdgeAttribution.Deltas.of(p, Direction.NOISE)) {
            // the replacement value of each writer's output [n, P, d]
            Map<Node, NDArray> replaced = new HashMap<>();
            for (Node u : writers) {
                NDArray out = d.source.get(outputHook(model, u));
                replaced.put(u, u.kind() == Node.Kind.HEAD ? out.get(new NDIndex(":, :, {}", u.head())) : out);
            }
            return p.runBlocks(p.clean(), circuits.size(), "edge circuits", (first, count) -> {
                Map<Node, NDArray> current = new HashMap<>();
                Map<String, NDArray> resid = new HashMap<>();
                List<Hook> hooks = new ArrayList<>();
                hooks.add(Hook.fwd(model.actName("resid_pre", 0), HookFn.reader((x, hp) -> {
                    current.put(Node.input(), x);
                    resid.put(hp.name(), x);
                })));
                for (int l = 0; l < nLayers; l++) {
                    int layer = l;
                    if (l > 0) {
                        hooks.add(Hook.fwd(model.actName("resid_pre", l), HookFn.reader((x, hp) -> resid.put(hp.name(), x))));
                    }
                    hooks.add(Hook.fwd(model.actName("result", l), HookFn.reader((x, hp) -> {
                        for (int h = 0; h < model.cfg().nHeads(); h++) {
                            current.put(Node.head(layer, h), x.get(new NDIndex(":, :, {}", h)));
                        }
                    })));
                    if (!model.cfg().attnOnly()) {
                        hooks.add(Hook.fwd(model.actName("resid_mid", l), HookFn.reader((x, hp) -> resid.put(hp.name(), x))));
                        hooks.add(Hook.fwd(model.actName("mlp_out", l), HookFn.reader((x, hp) ->
                                current.put(Node.mlp(layer), x))));
                    }
                }
                // receivers: each hook that carries a target's input
                Map<String, List<EdgeAttribution.Target>> byHook = new LinkedHashMap<>();
                for (EdgeAttribution.Target t : targets) {
                    byHook.computeIfAbsent(targetHook(model, t), k -> new ArrayList<>()).add(t);
                }
                for (Map.Entry<String, List<EdgeAttribution.Target>> g : byHook.entrySet()) {
                    List<EdgeAttribution.Target> ts = g.getValue();
                    Node to = ts.get(0).node();
                    List<Node> ups = writers.stream().filter(u -> u.precedes(to)).toList();
                    // excluded[block][u][t] = 1 where edge u -> t is not in the block's circuit
                    float[] w = new float[count * ups.size() * ts.size()];
                    boolean any = false;
                    for (int j = 0; j < count; j++) {
                        Set<Edge> kept = circuits.get(first + j).edges;
                        for (int a = 0; a < ups.size(); a++) {
                            for (int b = 0; b < ts.size(); b++) {
                                EdgeAttribution.Target t = ts.get(b);
                                boolean out = !kept.contains(new Edge(ups.get(a), t.node(), t.input()));
                                w[(j * ups.size() + a) * ts.size() + b] = out ? 1f : 0f;
                                any |= out;
                            }
                        }
                    }
                    if (!any) continue;
                    hooks.add(Hook.fwd(g.getKey(), (act, hp) -> {
                        int rows = (int) act.getShape().get(0), k = rows / n;
                        // delta[r, p, t, :] = sum_u excluded * (replacement_u - current_u)
                        List<NDArray> diffs = new ArrayList<>();
                        for (Node u : ups) diffs.add(Patching.tile(replaced.get(u), k).sub(current.get(u)));
                        NDArray diff = NDArrays.stack(new NDList(diffs), 3);             // [R, P, d, U]
                        float[] wr = new float[rows * ups.size() * ts.size()];
                        int per = ups.size() * ts.size();
                        for (int j = 0; j < k; j++) {
                            for (int i = 0; i < n; i++) System.arraycopy(w, j * per, wr, (j * n + i) * per, per);
                        }
                        NDArray weights = Tensors.owned(act.getManager().create(wr,
                                new Shape(rows, 1, ups.size(), ts.size())));
                        NDArray delta = diff.matMul(weights).transpose(0, 1, 3, 2);   // [R, P, T, d]
                        // rows and targets with an excluded edge take the recomputed input; the rest stay exact
                        boolean[] touched = new boolean[rows * ts.size()];
                        for (int r = 0; r < rows; r++) {
                            int j = r / n;
                            for (int a = 0; a < ups.size(); a++) {
                                for (int b = 0; b < ts.size(); b++) {
                                    if (w[(j * ups.size() + a) * ts.size() + b] != 0) touched[r * ts.size() + b] = true;
                                }
                            }
                        }
                        Shape ms = to.kind() == Node.Kind.HEAD ? new Shape(rows, 1, ts.size(), 1) : new Shape(rows, 1, 1);
                        NDArray mask = Tensors.owned(act.getManager().create(touched, ms));
                        return Patching.where(mask, replaceInput(model, norms, to, ts, resid, act, delta), act);
                    }));
                }
                return hooks;
            });
        }
    }

    private static String outputHook(HookedTransformer model, Node u) {
        return switch (u.kind()) {
            case INPUT -> model.actName("resid_pre", 0);
            case HEAD -> model.actName("result", u.layer());
            case MLP -> model.actName("mlp_out", u.layer());
            case LOGITS -> throw new IllegalArgumentException("the logits write nothing");
        };
    }

    private static String targetHook(HookedTransformer model, EdgeAttribution.Target t) {
        return switch (t.node().kind()) {
            case LOGITS -> model.actName("resid_post", model.nLayers() - 1);
            case MLP -> model.actName("normalized", t.node().layer(), "ln2");
            case HEAD -> model.actName(t.input(), t.node().layer());
            case INPUT -> throw new IllegalArgumentException("the input reads nothing");
        };
    }

    /** The receiver's activation recomputed from its residual input plus {@code delta} ({@code [R, P, T, d]}). */
    private static NDArray replaceInput(HookedTransformer model, EdgeAttribution.Norms norms, Node to,
                                        List<EdgeAttribution.Target> ts, Map<String, NDArray> resid, NDArray act,
                                        NDArray delta) {
        if (to.kind() == Node.Kind.LOGITS) return act.add(delta.squeeze(2));
        if (to.kind() == Node.Kind.MLP) {
            NDArray x = resid.get(model.actName("resid_mid", to.layer())).add(delta.squeeze(2));
            return norms.normalizedHook(to.layer(), "ln2", x);
        }
        // heads: one residual input per head [R, P, H, d] through the norm, then each head's projection
        NDArray x = resid.get(model.actName("resid_pre", to.layer())).expandDims(2).add(delta);
        NDArray y = norms.output(to.layer(), "ln1", x);                                    // [R, P, H, d]
        String input = ts.get(0).input();
        NDArray w = EdgeAttribution.projection(model, to.layer(), input);                   // [H, d, dh]
        long rows = y.getShape().get(0), len = y.getShape().get(1), h = w.getShape().get(0);
        NDArray proj = y.transpose(2, 0, 1, 3).reshape(h, rows * len, -1).matMul(w)      // [H, R*P, dh]
                .reshape(h, rows, len, -1).transpose(1, 2, 0, 3)
                .add(EdgeAttribution.projectionBias(model, to.layer(), input));
        return proj;
    }

    /** The edge labels. */
    public List<String> labels() {
        return edges.stream().map(Edge::label).toList();
    }

    @Override
    public String toString() {
        return "EdgeCircuit(" + edges.size() + " edges)";
    }
}
