package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import dev.jlens.hook.Hook;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A circuit: a set of nodes ({@link Node#input()}, heads, MLPs) that should carry a behaviour on their own.
 *
 * <p><b>Faithfulness</b> (as the MIB benchmark defines it for a circuit {@code C}):
 * {@code f(C) = (M(C) - M(∅)) / (M(full) - M(∅))}, where {@code M(C)} is the metric of the clean run with every node
 * outside {@code C} replaced — by its output in the corrupt run (the patching's replacement, by default), or by a
 * mean or zero with {@link Patching#with(Replacement)} — {@code M(full)} the clean run's metric and {@code M(∅)}
 * the metric with every node replaced. Heads are replaced at {@code hook_z}, MLPs at {@code hook_mlp_out}, the input
 * at {@code hook_resid_pre} of block 0; the logits always belong to the circuit. Many circuits run in one forward
 * pass.
 *
 * <p>The <b>faithfulness curve</b> ranks nodes by a score (an attribution or exact patching) and measures the circuit
 * of the top {@code k} nodes for growing {@code k}; its area ({@code CPR}, higher is better) and the area between it
 * and 1 ({@code CMD}, lower is better) summarise it, over the fraction of nodes kept. <b>Minimality</b> removes each
 * node of a circuit in turn and reports the faithfulness lost.
 *
 * <pre>{@code
 * Map<Node, Double> scores = Circuit.nodeScores(patching, false);        // AtP of every node
 * FaithfulnessCurve curve = Circuit.curve(patching, scores);
 * curve.plot(); curve.cpr(); curve.cmd();
 * Circuit c = Circuit.top(scores, 5);
 * c.faithfulness(patching); c.minimality(patching, 0.02);
 * }</pre>
 *
 * @param nodes the nodes kept
 */
public record Circuit(Set<Node> nodes) {

    /** Copies. */
    public Circuit {
        nodes = java.util.Collections.unmodifiableSet(new LinkedHashSet<>(nodes));
        for (Node n : nodes) {
            if (n.kind() == Node.Kind.LOGITS) throw new IllegalArgumentException("the logits are always in a circuit");
        }
    }

    /** A circuit of the given nodes. */
    public static Circuit of(Node... nodes) {
        return new Circuit(new LinkedHashSet<>(List.of(nodes)));
    }

    /** The {@code k} nodes with the largest scores. */
    public static Circuit top(Map<Node, Double> scores, int k) {
        return new Circuit(new LinkedHashSet<>(ranked(scores).subList(0, Math.min(k, scores.size()))));
    }

    /** Every node of {@code model}: input, heads, MLPs. */
    public static List<Node> allNodes(HookedTransformer model) {
        return Node.writers(model.nLayers(), model.cfg().nHeads(), !model.cfg().attnOnly());
    }

    /** The faithfulness of this circuit. */
    public double faithfulness(Patching p) {
        return faithfulness(p, List.of(this))[0];
    }

    /** The faithfulness of each circuit, many per forward pass. */
    public static double[] faithfulness(Patching p, List<Circuit> circuits) {
        double[] m = metrics(p, circuits, true);
        double empty = m[m.length - 1], full = p.metricClean();
        double[] f = new double[circuits.size()];
        for (int i = 0; i < f.length; i++) f[i] = (m[i] - empty) / (full - empty);
        return f;
    }

    /** The metric of the clean run with everything outside each circuit replaced (and the empty circuit's, last). */
    static double[] metrics(Patching p, List<Circuit> circuits, boolean withEmpty) {
        HookedTransformer model = p.model();
        List<Node> all = allNodes(model);
        List<Circuit> runs = new ArrayList<>(circuits);
        if (withEmpty) runs.add(new Circuit(Set.of()));
        for (Circuit c : runs) {
            for (Node n : c.nodes) {
                if (!all.contains(n)) {
                    throw new IllegalArgumentException("node " + n.label() + " is not in this model: its nodes are "
                            + "input, L0H0..L" + (model.nLayers() - 1) + "H" + (model.cfg().nHeads() - 1)
                            + (model.cfg().attnOnly() ? "" : ", MLP0..MLP" + (model.nLayers() - 1)));
                }
            }
        }
        String in0 = model.actName("resid_pre", 0);
        List<String> names = new ArrayList<>(List.of(in0));
        for (int l = 0; l < model.nLayers(); l++) {
            names.add(model.actName("z", l));
            if (!model.cfg().attnOnly()) names.add(model.actName("mlp_out", l));
        }
        long[][] clean = p.clean();
        int heads = model.cfg().nHeads();
        try (ActivationCache base = model.runWithCache(clean, Patching.filter(names));
             ActivationCache other = model.runWithCache(p.corrupt(), Patching.filter(names))) {
            Map<String, NDArray> sources = new LinkedHashMap<>();
            for (String n : names) sources.put(n, p.sourceActivation(n, base, other));
            long[] posMask = {1, 1};
            long[] headMask = {1, heads, 1};
            return p.runBlocks(clean, runs.size(), "circuits", (first, count) -> {
                List<Hook> hooks = new ArrayList<>();
                boolean[][] input = new boolean[count][];
                for (int j = 0; j < count; j++) {
                    input[j] = new boolean[] {!runs.get(first + j).nodes.contains(Node.input())};
                }
                hooks.add(p.replaceWhere(in0, sources.get(in0), input, posMask));
                for (int l = 0; l < model.nLayers(); l++) {
                    boolean[][] z = new boolean[count][heads];
                    boolean[][] mlp = new boolean[count][1];
                    for (int j = 0; j < count; j++) {
                        Set<Node> kept = runs.get(first + j).nodes;
                        for (int h = 0; h < heads; h++) z[j][h] = !kept.contains(Node.head(l, h));
                        mlp[j][0] = !kept.contains(Node.mlp(l));
                    }
                    String zName = model.actName("z", l);
                    hooks.add(p.replaceWhere(zName, sources.get(zName), z, headMask));
                    if (!model.cfg().attnOnly()) {
                        String m = model.actName("mlp_out", l);
                        hooks.add(p.replaceWhere(m, sources.get(m), mlp, posMask));
                    }
                }
                return hooks;
            });
        }
    }

    /**
     * The effect of each node alone: the clean run with that node replaced ({@code exact}), or AtP's estimate of it
     * (one gradient pass). Effects are signed changes of the metric; rank by their magnitude.
     */
    public static Map<Node, Double> nodeEffects(Patching p, boolean exact) {
        HookedTransformer model = p.model();
        Map<Node, Double> out = new LinkedHashMap<>();
        List<PatchIndex> in = List.of(new PatchIndex(0, java.util.OptionalInt.empty(), java.util.OptionalInt.empty()));
        PatchResult input = exact ? p.run(PatchSite.RESID_PRE, Direction.NOISE, in)
                : Attribution.estimate(p, PatchSite.RESID_PRE, Direction.NOISE, in, false);
        out.put(Node.input(), input.effects()[0]);
        PatchResult heads = exact ? p.sweep(PatchSite.Z, Direction.NOISE) : Attribution.atp(p, PatchSite.Z, Direction.NOISE);
        PatchResult mlps = model.cfg().attnOnly() ? null : exact ? p.sweepLayers(PatchSite.MLP_OUT, Direction.NOISE)
                : Attribution.estimate(p, PatchSite.MLP_OUT, Direction.NOISE,
                        p.indices(PatchSite.MLP_OUT, false, true), false);
        double[] he = heads.effects();
        for (int l = 0; l < model.nLayers(); l++) {
            for (int h = 0; h < model.cfg().nHeads(); h++) {
                out.put(Node.head(l, h), he[heads.indices().indexOf(PatchIndex.head(l, h))]);
            }
            if (mlps != null) out.put(Node.mlp(l), mlps.effects()[l]);
        }
        return out;
    }

    /** {@link #nodeEffects} as importance scores: their magnitudes. */
    public static Map<Node, Double> nodeScores(Patching p, boolean exact) {
        Map<Node, Double> s = new LinkedHashMap<>();
        nodeEffects(p, exact).forEach((k, v) -> s.put(k, Math.abs(v)));
        return s;
    }

    /** Nodes by descending score. */
    static List<Node> ranked(Map<Node, Double> scores) {
        List<Node> order = new ArrayList<>(scores.keySet());
        order.sort(Comparator.comparingDouble((Node n) -> -scores.get(n)));
        return order;
    }

    /** The faithfulness curve over every circuit size {@code 0..n} of the nodes ranked by {@code scores}. */
    public static FaithfulnessCurve curve(Patching p, Map<Node, Double> scores) {
        int n = scores.size();
        int[] sizes = new int[n + 1];
        for (int k = 0; k <= n; k++) sizes[k] = k;
        return curve(p, scores, sizes);
    }

    /** The faithfulness curve at the given circuit sizes (numbers of top nodes). */
    public static FaithfulnessCurve curve(Patching p, Map<Node, Double> scores, int[] sizes) {
        Objects.requireNonNull(scores, "scores");
        if (scores.isEmpty()) throw new IllegalArgumentException("no node scores to rank");
        List<Node> order = ranked(scores);
        List<Circuit> circuits = new ArrayList<>();
        for (int k : sizes) {
            if (k < 0 || k > order.size()) {
                throw new IllegalArgumentException("circuit size " + k + " is out of range 0.." + order.size());
            }
            circuits.add(new Circuit(new LinkedHashSet<>(order.subList(0, k))));
        }
        double[] f = faithfulness(p, circuits);
        double[] x = new double[sizes.length];
        for (int i = 0; i < sizes.length; i++) x[i] = (double) sizes[i] / order.size();
        return new FaithfulnessCurve(sizes.clone(), x, f, order.stream().map(Node::label).toList());
    }

    /**
     * Each node's contribution to this circuit: the faithfulness lost when it alone is removed; a node whose loss is
     * below {@code tolerance} (a fraction of the full effect) can go.
     */
    public Table minimality(Patching p, double tolerance) {
        List<Node> list = new ArrayList<>(nodes);
        List<Circuit> runs = new ArrayList<>();
        runs.add(this);
        for (Node n : list) {
            Set<Node> less = new LinkedHashSet<>(nodes);
            less.remove(n);
            runs.add(new Circuit(less));
        }
        double[] f = faithfulness(p, runs);
        StringColumn node = StringColumn.create("node");
        DoubleColumn without = DoubleColumn.create("faithfulness without");
        DoubleColumn loss = DoubleColumn.create("loss");
        BooleanColumn canGo = BooleanColumn.create("can go");
        for (int i = 0; i < list.size(); i++) {
            node.append(list.get(i).label());
            without.append(f[i + 1]);
            loss.append(f[0] - f[i + 1]);
            canGo.append(Math.abs(f[0] - f[i + 1]) < tolerance);
        }
        return Table.create("minimality (circuit faithfulness " + String.format(java.util.Locale.ROOT, "%.3f", f[0])
                + ")").addColumns(node, without, loss, canGo).sortDescendingOn("loss");
    }

    /** The node labels. */
    public List<String> labels() {
        return nodes.stream().map(Node::label).toList();
    }

    @Override
    public String toString() {
        return "Circuit" + labels();
    }
}
