package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookScope;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import dev.jlens.sae.eval.DenseLatents;
import dev.jlens.sae.eval.Explanations;
import dev.jlens.util.Tensors;
import dev.jlens.viz.Plots;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The upstream circuit of one dictionary latent: which earlier attention heads, MLPs and input tokens drive its
 * pre-activation at the tokens where it fires, by gradient × activation (attribution patching with the latent as the
 * metric), checked against real ablations, and which source positions the driving heads read from.
 *
 * <p>A latent's pre-activation is a linear read of its hook, {@code a = x · w + b} ({@link Readout}; for a dictionary
 * {@code w} is the encoder column times the input scale and {@code b} folds in {@code b_enc} and the {@code b_dec}
 * shift). Nodes are each upstream head ({@code hook_z}, all positions after BOS), each upstream MLP
 * ({@code hook_mlp_out}) and each input token at offset {@code δ} before the target ({@code hook_embed} at
 * {@code t - δ}). A node's <b>attribution</b> is {@code Σ (ref - act) · ∂a/∂act}, the first-order change of the mean
 * pre-activation when the node is replaced by {@code ref} (zero or its mean over the prompts' tokens after BOS); its
 * <b>ablation</b> is that change measured by running the model with the node replaced. A head's <b>reads</b> split its
 * output at the target, {@code z_t = Σ_s A[t, s] v_s}, into one term per source offset {@code t - s}, each dotted
 * with the gradient at {@code z_t}: where the head carries the latent's input from.
 *
 * <pre>{@code
 * var readout = LatentCircuit.Readout.of(sae, "blocks.2.hook_resid_post", latent);
 * var firing = LatentCircuit.firing(model, readout, sequences, 16);          // where it fires most
 * LatentCircuit.Result r = LatentCircuit.trace(model, readout, firing.prompts(), firing.targets(),
 *         LatentCircuit.Ablation.MEAN);
 * r.toTable(); r.readsTable(); r.faithfulness(3); r.correlation(); r.chart();
 * }</pre>
 */
public final class LatentCircuit {
    private LatentCircuit() {}

    private static final Pattern RESID = Pattern.compile("blocks\\.(\\d+)\\.hook_resid_(pre|mid|post)");

    /** What replaces an ablated node. */
    public enum Ablation {
        /** Zero. */
        ZERO,
        /** The node's mean over every prompt token after BOS. */
        MEAN
    }

    /**
     * A latent's pre-activation as a linear read of one residual-stream hook: {@code x · direction + bias}.
     *
     * @param hook      {@code blocks.L.hook_resid_pre|mid|post}
     * @param direction {@code [d_model]}
     * @param bias      the constant term
     */
    public record Readout(String hook, float[] direction, double bias) {
        /** Checks the hook's form. */
        public Readout {
            if (!RESID.matcher(hook).matches()) {
                throw new IllegalArgumentException("a readout reads a residual-stream hook, blocks.L.hook_resid_pre, "
                        + "hook_resid_mid or hook_resid_post; got '" + hook + "'");
            }
            direction = direction.clone();
        }

        /** Latent {@code latent} of {@code sae} trained on {@code hook}: its pre-activation in raw units. */
        public static Readout of(SparseCoder sae, String hook, int latent) {
            int dSae = sae.cfg().dSae(), dIn = sae.cfg().dIn();
            if (latent < 0 || latent >= dSae) throw new IllegalArgumentException("latent must be 0.." + (dSae - 1) + ", got " + latent);
            float[] wEnc = sae.weights().get(SaeWeights.W_ENC).toFloatArray();   // [dIn, dSae]
            float bEnc = sae.weights().get(SaeWeights.B_ENC).toFloatArray()[latent];
            float[] bDec = sae.weights().get(SaeWeights.B_DEC).toFloatArray();
            double s = sae.cfg().inputScale();
            float[] w = new float[dIn];
            double bias = bEnc;
            for (int j = 0; j < dIn; j++) {
                w[j] = (float) (s * wEnc[j * dSae + latent]);
                if (sae.cfg().applyBDecToInput()) bias -= (double) bDec[j] * wEnc[j * dSae + latent];
            }
            return new Readout(hook, w, bias);
        }

        /** The pre-activation of one activation row. */
        public double apply(float[] x) {
            double a = bias;
            for (int j = 0; j < x.length; j++) a += (double) x[j] * direction[j];
            return a;
        }

        int layer() {
            Matcher m = RESID.matcher(hook);
            m.matches();
            return Integer.parseInt(m.group(1));
        }

        String kind() {
            Matcher m = RESID.matcher(hook);
            m.matches();
            return m.group(2);
        }
    }

    /** Where a readout is largest: prompt {@code i} is a sequence, {@code targets[i]} its position. */
    public record Firing(long[][] prompts, int[] targets, double[] values) {}

    /**
     * The {@code n} sequences of {@code sequences} (all of one length) on which the readout's largest value over the
     * positions after BOS is highest, with that position: the contexts to trace.
     */
    public static Firing firing(HookedTransformer model, Readout r, List<long[]> sequences, int n) {
        if (n < 1 || n > sequences.size()) throw new IllegalArgumentException("n must be 1.." + sequences.size() + ", got " + n);
        int len = sequences.get(0).length;
        double[] best = new double[sequences.size()];
        int[] at = new int[sequences.size()];
        for (int i0 = 0; i0 < sequences.size(); i0 += 32) {
            int m = Math.min(32, sequences.size() - i0);
            long[][] ids = new long[m][];
            for (int b = 0; b < m; b++) {
                ids[b] = sequences.get(i0 + b);
                if (ids[b].length != len) throw new IllegalArgumentException("sequences must share one length: " + len + " and " + ids[b].length);
            }
            float[][][] x = resid(model, r.hook(), ids);
            for (int b = 0; b < m; b++) {
                best[i0 + b] = Double.NEGATIVE_INFINITY;
                for (int p = 1; p < len; p++) {
                    double a = r.apply(x[b][p]);
                    if (a > best[i0 + b]) {
                        best[i0 + b] = a;
                        at[i0 + b] = p;
                    }
                }
            }
        }
        Integer[] order = new Integer[best.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Double.compare(best[b], best[a]));
        long[][] prompts = new long[n][];
        int[] targets = new int[n];
        double[] values = new double[n];
        for (int i = 0; i < n; i++) {
            prompts[i] = sequences.get(order[i]);
            targets[i] = at[order[i]];
            values[i] = best[order[i]];
        }
        return new Firing(prompts, targets, values);
    }

    /** A node upstream of the latent: a head, an MLP or the input token {@code index} positions before the target. */
    public record Node(Kind kind, int layer, int index) {
        /** The kinds of node. */
        public enum Kind { HEAD, MLP, TOKEN }

        /** {@code L1H3}, {@code MLP0}, {@code tok-2}. */
        public String name() {
            return switch (kind) {
                case HEAD -> "L" + layer + "H" + index;
                case MLP -> "MLP" + layer;
                case TOKEN -> "tok-" + index;
            };
        }

        @Override
        public String toString() {
            return name();
        }
    }

    /**
     * One node's effect on the mean pre-activation at the targets.
     *
     * @param node        the node
     * @param attribution the gradient × (ref − activation) estimate of the change when it is replaced
     * @param ablation    the change measured with the node replaced
     */
    public record Effect(Node node, double attribution, double ablation) {}

    /** A head's read from one source offset: mean over prompts of {@code A[t, t-δ] v_{t-δ} · ∂a/∂z_t} and of the attention. */
    public record Read(int layer, int head, int offset, double contribution, double attention) {}

    /**
     * The trace.
     *
     * @param readout  the latent
     * @param ablation what replaced nodes
     * @param clean    the mean pre-activation at the targets
     * @param effects  every node, by decreasing |attribution|
     * @param reads    every upstream head's reads, by decreasing |contribution|
     * @param model    the model (for {@link #faithfulness})
     * @param prompts  the prompts
     * @param targets  each prompt's target position
     * @param references what replaces each node when it is ablated
     */
    public record Result(Readout readout, Ablation ablation, double clean, List<Effect> effects, List<Read> reads,
                         HookedTransformer model, long[][] prompts, int[] targets, Map<Node, float[]> references) {
        /** Copies the lists. */
        public Result {
            effects = List.copyOf(effects);
            reads = List.copyOf(reads);
        }

        /** The effects of one kind, largest |attribution| first. */
        public List<Effect> effects(Node.Kind kind) {
            return effects.stream().filter(e -> e.node().kind() == kind).toList();
        }

        /** Pearson correlation of attribution and ablation over every node (heads and MLPs; tokens too). */
        public double correlation() {
            return Validation.pearson(effects.stream().mapToDouble(Effect::attribution).toArray(),
                    effects.stream().mapToDouble(Effect::ablation).toArray());
        }

        /** Pearson correlation of attribution and ablation over the nodes of one kind. */
        public double correlation(Node.Kind kind) {
            List<Effect> es = effects(kind);
            return Validation.pearson(es.stream().mapToDouble(Effect::attribution).toArray(),
                    es.stream().mapToDouble(Effect::ablation).toArray());
        }

        /** The top {@code k} heads and MLPs by |attribution|. */
        public List<Node> topComponents(int k) {
            return effects.stream().filter(e -> e.node().kind() != Node.Kind.TOKEN).limit(k).map(Effect::node).toList();
        }

        /**
         * Faithfulness of the top {@code k} heads and MLPs: the mean pre-activation with only them ablated (as a
         * fraction of the clean one: how much they are needed) and with every other head and MLP ablated (how much
         * they alone keep), beside the fully ablated run's.
         */
        public Faithfulness faithfulness(int k) {
            List<Node> top = topComponents(k);
            List<Node> rest = effects.stream().map(Effect::node).filter(n -> n.kind() != Node.Kind.TOKEN && !top.contains(n))
                    .toList();
            List<Node> all = new ArrayList<>(top);
            all.addAll(rest);
            double[] v = runSets(model, readout, prompts, targets, List.of(top, rest, all), references);
            double without = v[0], only = v[1], none = v[2];
            return new Faithfulness(top, clean, without, only, none);
        }

        /** One row per node: kind, attribution, ablation. */
        public Table toTable() {
            StringColumn node = StringColumn.create("node"), kind = StringColumn.create("kind");
            DoubleColumn at = DoubleColumn.create("attribution"), ab = DoubleColumn.create("ablation");
            for (Effect e : effects) {
                node.append(e.node().name());
                kind.append(e.node().kind().name().toLowerCase(Locale.ROOT));
                at.append(round(e.attribution()));
                ab.append(round(e.ablation()));
            }
            return Table.create(String.format(Locale.ROOT, "upstream of %s (clean %.3f, %s ablation)", readout.hook(),
                    clean, ablation.name().toLowerCase(Locale.ROOT)), node, kind, at, ab);
        }

        /** The heads' reads, largest first, at most {@code rows} rows. */
        public Table readsTable(int rows) {
            StringColumn head = StringColumn.create("head");
            IntColumn off = IntColumn.create("offset");
            DoubleColumn c = DoubleColumn.create("contribution"), a = DoubleColumn.create("attention");
            for (Read r : reads.subList(0, Math.min(rows, reads.size()))) {
                head.append("L" + r.layer() + "H" + r.head());
                off.append(r.offset());
                c.append(round(r.contribution()));
                a.append(round(r.attention()));
            }
            return Table.create("what the heads read (offset = target - source)", head, off, c, a);
        }

        /** The reads of one head, largest |contribution| first. */
        public List<Read> reads(int layer, int head) {
            return reads.stream().filter(r -> r.layer() == layer && r.head() == head).toList();
        }

        /** Attribution against ablation, one point per node. */
        public XYChart chart() {
            Map<String, double[][]> s = new LinkedHashMap<>();
            for (Node.Kind k : Node.Kind.values()) {
                List<Effect> es = effects(k);
                if (es.isEmpty()) continue;
                s.put(k.name().toLowerCase(Locale.ROOT), new double[][] {
                        es.stream().mapToDouble(Effect::attribution).toArray(),
                        es.stream().mapToDouble(Effect::ablation).toArray()});
            }
            return Plots.scatter("attribution against ablation (" + readout.hook() + ")", "attribution",
                    "ablation", s);
        }
    }

    /**
     * Faithfulness of a set of components.
     *
     * @param components the ablated or kept heads and MLPs
     * @param clean      the mean pre-activation
     * @param without    with the components ablated
     * @param only       with every other head and MLP ablated
     * @param none       with every head and MLP ablated
     */
    public record Faithfulness(List<Node> components, double clean, double without, double only, double none) {
        /** {@code (only - none) / (clean - none)}: the share of the components' joint effect that they alone keep. */
        public double kept() {
            return (only - none) / (clean - none);
        }

        /** {@code (clean - without) / (clean - none)}: the share lost when only they are ablated. */
        public double necessary() {
            return (clean - without) / (clean - none);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "Faithfulness(%s: clean %.3f, without %.3f, only %.3f, none %.3f; "
                    + "kept %.2f, necessary %.2f)", components, clean, without, only, none, kept(), necessary());
        }
    }

    /** Traces the readout at {@code targets[i]} of {@code prompts[i]} (one length, targets after BOS). */
    public static Result trace(HookedTransformer model, Readout r, long[][] prompts, int[] targets, Ablation ablation) {
        int n = prompts.length;
        if (n == 0 || targets.length != n) {
            throw new IllegalArgumentException("give one target per prompt: " + n + " prompts, " + targets.length + " targets");
        }
        int len = prompts[0].length, d = model.cfg().dModel();
        if (r.direction().length != d) {
            throw new IllegalArgumentException("readout has " + r.direction().length + " values, d_model is " + d);
        }
        for (int i = 0; i < n; i++) {
            if (prompts[i].length != len) throw new IllegalArgumentException("prompts must share one length");
            if (targets[i] < 1 || targets[i] >= len) {
                throw new IllegalArgumentException("target " + targets[i] + " of prompt " + i + " must be 1.." + (len - 1));
            }
        }
        int layer = r.layer();
        String kind = r.kind();
        int headLayers = kind.equals("pre") ? layer : layer + 1;
        int mlpLayers = kind.equals("post") ? layer + 1 : layer;
        if (layer >= model.nLayers()) throw new IllegalArgumentException("the model has layers 0.." + (model.nLayers() - 1));
        if (model.cfg().attnOnly()) mlpLayers = 0;
        int heads = model.cfg().nHeads();
        List<String> names = new ArrayList<>();
        String embed = "hook_embed";
        names.add(embed);
        for (int l = 0; l < headLayers; l++) {
            names.add(model.actName("z", l));
            names.add(model.actName("v", l));
            names.add(model.actName("pattern", l));
        }
        for (int l = 0; l < mlpLayers; l++) names.add(model.actName("mlp_out", l));
        List<String> gradNames = new ArrayList<>();
        gradNames.add(embed);
        for (int l = 0; l < headLayers; l++) gradNames.add(model.actName("z", l));
        for (int l = 0; l < mlpLayers; l++) gradNames.add(model.actName("mlp_out", l));

        List<Effect> effects = new ArrayList<>();
        List<Read> reads = new ArrayList<>();
        Map<Node, float[]> refs = new LinkedHashMap<>();
        double clean;
        try (ActivationCache cache = model.runWithCache(prompts, Patching.filter(names));
             NDScope scope = new NDScope()) {
            NDManager m = cache.get(embed).getManager();
            // the readout's weights at each prompt's target: [N, P, d], the mean pre-activation's gradient
            float[] wFlat = new float[n * len * d];
            for (int i = 0; i < n; i++) System.arraycopy(r.direction(), 0, wFlat, (i * len + targets[i]) * d, d);
            NDArray wNPD = Tensors.owned(m.create(wFlat, new Shape(n, len, d))).div(n);
            NDArray[] captured = new NDArray[1];
            ActivationCache grads;
            try (HookScope s = model.hooks(Hook.fwd(r.hook(), (x, hp) -> {
                captured[0] = x;
                return null;
            }))) {
                grads = model.runWithGradients(Batch.of(prompts), Patching.filter(gradNames),
                        logits -> captured[0].mul(wNPD).sum());
            }
            try (grads) {
                clean = run(model, r, prompts, targets, List.of(), refs);
                float[] after = new float[len];   // 1 after BOS
                Arrays.fill(after, 1, len, 1f);
                // heads
                for (int l = 0; l < headLayers; l++) {
                    NDArray z = cache.get(model.actName("z", l));                     // [N, P, H, dh]
                    NDArray g = grads.get(model.actName("z", l));
                    int dh = (int) z.getShape().get(3);
                    float[] zf = z.toType(DataType.FLOAT32, false).toFloatArray();
                    float[] gf = g.toType(DataType.FLOAT32, false).toFloatArray();
                    for (int h = 0; h < heads; h++) {
                        float[] ref = new float[dh];
                        if (ablation == Ablation.MEAN) {
                            for (int i = 0; i < n; i++) for (int p = 1; p < len; p++) for (int k = 0; k < dh; k++) {
                                ref[k] += zf[((i * len + p) * heads + h) * dh + k] / (n * (len - 1.0));
                            }
                        }
                        double a = 0;
                        for (int i = 0; i < n; i++) for (int p = 1; p < len; p++) for (int k = 0; k < dh; k++) {
                            int at = ((i * len + p) * heads + h) * dh + k;
                            a += (ref[k] - zf[at]) * gf[at];
                        }
                        Node node = new Node(Node.Kind.HEAD, l, h);
                        refs.put(node, ref);
                        effects.add(new Effect(node, a, Double.NaN));
                    }
                    // reads: z_t = Σ_s A[t, s] v_s
                    float[] vf = cache.get(model.actName("v", l)).toType(DataType.FLOAT32, false).toFloatArray();
                    float[] af = cache.get(model.actName("pattern", l)).toType(DataType.FLOAT32, false).toFloatArray();
                    for (int h = 0; h < heads; h++) {
                        double[] contrib = new double[len], attn = new double[len];
                        for (int i = 0; i < n; i++) {
                            int t = targets[i];
                            for (int s = 0; s <= t; s++) {
                                double aTs = af[((i * heads + h) * len + t) * len + s];
                                double dot = 0;
                                for (int k = 0; k < dh; k++) {
                                    dot += vf[((i * len + s) * heads + h) * dh + k] * gf[((i * len + t) * heads + h) * dh + k];
                                }
                                contrib[t - s] += aTs * dot;
                                attn[t - s] += aTs / n;
                            }
                        }
                        for (int off = 0; off < len; off++) {
                            if (attn[off] == 0 && contrib[off] == 0) continue;
                            reads.add(new Read(l, h, off, contrib[off], attn[off]));
                        }
                    }
                }
                // MLPs
                for (int l = 0; l < mlpLayers; l++) {
                    float[] xf = cache.get(model.actName("mlp_out", l)).toType(DataType.FLOAT32, false).toFloatArray();
                    float[] gf = grads.get(model.actName("mlp_out", l)).toType(DataType.FLOAT32, false).toFloatArray();
                    Node node = new Node(Node.Kind.MLP, l, 0);
                    float[] ref = meanAfterBos(xf, n, len, d, ablation);
                    refs.put(node, ref);
                    effects.add(new Effect(node, dotFromRef(xf, gf, ref, n, len, d, null), Double.NaN));
                }
                // tokens at offsets before the target
                float[] ef = cache.get(embed).toType(DataType.FLOAT32, false).toFloatArray();
                float[] gf = grads.get(embed).toType(DataType.FLOAT32, false).toFloatArray();
                float[] ref = meanAfterBos(ef, n, len, d, ablation);
                int maxOff = Arrays.stream(targets).max().getAsInt() - 1;
                for (int off = 0; off <= maxOff; off++) {
                    int[] pos = new int[n];
                    for (int i = 0; i < n; i++) pos[i] = targets[i] - off;   // below 1: not ablated
                    Node node = new Node(Node.Kind.TOKEN, 0, off);
                    refs.put(node, ref);
                    effects.add(new Effect(node, dotFromRef(ef, gf, ref, n, len, d, pos), Double.NaN));
                }
            }
        }
        // the real ablations, one node at a time
        List<Effect> measured = new ArrayList<>();
        double[] ablated = runSets(model, r, prompts, targets, effects.stream().map(e -> List.of(e.node())).toList(), refs);
        for (int i = 0; i < effects.size(); i++) {
            Effect e = effects.get(i);
            measured.add(new Effect(e.node(), e.attribution(), ablated[i] - clean));
        }
        measured.sort(Comparator.comparingDouble((Effect e) -> -Math.abs(e.attribution())));
        reads.sort(Comparator.comparingDouble((Read x) -> -Math.abs(x.contribution())));
        return new Result(r, ablation, clean, measured, reads, model, prompts, targets, refs);
    }

    /**
     * Does the circuit change the reading? The latent's best explanation ({@link Explanations}) from the labels at
     * its own token, from the labels at the token that head {@code layer.head} attends to most ({@code read.} columns,
     * e.g. {@code read.number=PLURAL}), and from both together.
     *
     * @param own  the best rule over own-token labels
     * @param read the best rule over the read token's labels
     * @param both the best rule over both
     */
    public record Interpretation(int layer, int head, Optional<Explanations.Score> own,
                                 Optional<Explanations.Score> read, Optional<Explanations.Score> both,
                                 double meanReadOffset) {
        /** Whether the best joint rule uses a read-token label and beats the own-token rule's F1 by {@code margin}. */
        public boolean circuitChangesReading(double margin) {
            if (both.isEmpty()) return false;
            boolean usesRead = both.get().rule().terms().stream().anyMatch(t -> t.startsWith(READ));
            double ownF1 = own.map(Explanations.Score::f1).orElse(0.0);
            return usesRead && both.get().f1() > ownF1 + margin;
        }

        /** One row per label source: rule, F1, precision, recall. */
        public Table toTable() {
            StringColumn from = StringColumn.create("labels"), rule = StringColumn.create("rule");
            DoubleColumn f1 = DoubleColumn.create("F1"), p = DoubleColumn.create("precision"), r = DoubleColumn.create("recall");
            Map<String, Optional<Explanations.Score>> rows = new LinkedHashMap<>();
            rows.put("own token", own);
            rows.put("token L" + layer + "H" + head + " reads", read);
            rows.put("both", both);
            for (var e : rows.entrySet()) {
                from.append(e.getKey());
                if (e.getValue().isPresent()) {
                    Explanations.Score sc = e.getValue().get();
                    rule.append(String.join(" & ", sc.rule().terms()));
                    f1.append(round(sc.f1()));
                    p.append(round(sc.precision()));
                    r.append(round(sc.recall()));
                } else {
                    rule.append("");
                    f1.appendMissing();
                    p.appendMissing();
                    r.appendMissing();
                }
            }
            return Table.create("explanations of the latent (mean read offset " + String.format(Locale.ROOT, "%.2f",
                    meanReadOffset) + ")", from, rule, f1, p, r);
        }
    }

    /** The prefix of label columns at the token a head reads. */
    public static final String READ = "read.";

    /** {@link #interpret(HookedTransformer, float[], DenseLatents.Contexts, List, int, int, Explanations.Options)} of latent {@code latent} of {@code sae}. */
    public static Interpretation interpret(HookedTransformer model, SparseCoder sae, int latent,
                                           DenseLatents.Contexts ctx, List<long[]> sequences, int layer, int head,
                                           Explanations.Options options) {
        return interpret(model, latentActs(sae, latent, ctx.x()), ctx, sequences, layer, head, options);
    }

    /** One latent's activations on rows {@code [n][d_in]}, in chunks. */
    public static float[] latentActs(SparseCoder sae, int latent, float[][] rows) {
        int dSae = sae.cfg().dSae();
        if (latent < 0 || latent >= dSae) throw new IllegalArgumentException("latent must be 0.." + (dSae - 1) + ", got " + latent);
        int d = rows[0].length;
        float[] out = new float[rows.length];
        try (NDManager m = NDManager.newBaseManager()) {
            for (int i0 = 0; i0 < rows.length; i0 += 2048) {
                int k = Math.min(2048, rows.length - i0);
                float[] flat = new float[k * d];
                for (int i = 0; i < k; i++) System.arraycopy(rows[i0 + i], 0, flat, i * d, d);
                try (NDManager chunk = m.newSubManager()) {
                    float[] a = sae.encode(chunk.create(flat, new Shape(k, d))).toType(DataType.FLOAT32, false).toFloatArray();
                    for (int i = 0; i < k; i++) out[i0 + i] = a[i * dSae + latent];
                }
            }
        }
        return out;
    }

    /**
     * {@link Interpretation} of a latent with activations {@code latentActs} (one per token of {@code ctx}, from
     * {@link DenseLatents.Contexts#harvest} of {@code sequences}, BOS included) against {@code ctx}'s labels at each
     * token and at the token where head {@code layer.head} puts most attention.
     */
    public static Interpretation interpret(HookedTransformer model, float[] latentActs, DenseLatents.Contexts ctx,
                                           List<long[]> sequences, int layer, int head, Explanations.Options options) {
        int n = ctx.size();
        if (latentActs.length != n) throw new IllegalArgumentException("latentActs has " + latentActs.length + " values for " + n + " tokens");
        int[] src = new int[n];   // row index of the token read
        String pattern = model.actName("pattern", layer);
        if (head < 0 || head >= model.cfg().nHeads()) {
            throw new IllegalArgumentException("head must be 0.." + (model.cfg().nHeads() - 1) + ", got " + head);
        }
        int len = sequences.get(0).length;
        int row = 0;
        double offsets = 0;
        for (int i0 = 0; i0 < sequences.size(); i0 += 32) {
            int m = Math.min(32, sequences.size() - i0);
            long[][] ids = sequences.subList(i0, i0 + m).toArray(long[][]::new);
            float[] a;
            try (ActivationCache c = model.runWithCache(ids, Patching.filter(List.of(pattern)))) {
                a = c.get(pattern).toType(DataType.FLOAT32, false).toFloatArray();   // [m, H, P, P]
            }
            int heads = model.cfg().nHeads();
            for (int b = 0; b < m; b++) {
                for (int p = 0; p < len; p++, row++) {
                    if (row >= n || ctx.position()[row] != p || ctx.sequence()[row] != i0 + b) {
                        throw new IllegalArgumentException("ctx must hold every token of the sequences in order, BOS "
                                + "included (DenseLatents.Contexts.harvest of them)");
                    }
                    int best = 0;
                    for (int s = 0; s <= p; s++) {
                        if (a[((b * heads + head) * len + p) * len + s] > a[((b * heads + head) * len + p) * len + best]) best = s;
                    }
                    src[row] = row - p + best;
                    offsets += p - best;
                }
            }
        }
        if (row != n) throw new IllegalArgumentException("ctx has " + n + " tokens, the sequences " + row);
        Map<String, boolean[]> readConcepts = new LinkedHashMap<>(), both = new LinkedHashMap<>(ctx.concepts());
        for (var e : ctx.concepts().entrySet()) {
            boolean[] v = new boolean[n];
            for (int i = 0; i < n; i++) v[i] = e.getValue()[src[i]];
            readConcepts.put(READ + e.getKey(), v);
            both.put(READ + e.getKey(), v);
        }
        float[][] acts = new float[n][1];
        for (int i = 0; i < n; i++) acts[i][0] = latentActs[i];
        DenseLatents.Contexts readCtx = new DenseLatents.Contexts(ctx.x(), ctx.position(), ctx.sentencePosition(),
                ctx.sequence(), readConcepts);
        DenseLatents.Contexts bothCtx = new DenseLatents.Contexts(ctx.x(), ctx.position(), ctx.sentencePosition(),
                ctx.sequence(), both);
        var own = Explanations.of(acts, ctx, true).explain(options).explanation(0);
        var read = Explanations.of(acts, readCtx, true).explain(options).explanation(0);
        var joint = Explanations.of(acts, bothCtx, true).explain(options).explanation(0);
        // the beam over more columns can miss a rule the smaller search found; own-token rules are joint rules too
        if (own.isPresent() && (joint.isEmpty() || joint.get().f1() < own.get().f1())) joint = own;
        return new Interpretation(layer, head, own, read, joint, offsets / n);
    }

    /** Prompts × ablation sets per forward pass, at most. */
    static final int ROWS_PER_PASS = 256;

    /** The mean readout value at the targets with {@code ablated} nodes replaced by their references. */
    static double run(HookedTransformer model, Readout r, long[][] prompts, int[] targets, List<Node> ablated,
                      Map<Node, float[]> refs) {
        return runSets(model, r, prompts, targets, List.of(ablated), refs)[0];
    }

    /**
     * For each set of nodes, the mean readout value at the targets with those nodes replaced by their references
     * (heads and MLPs at every position after BOS, a token node at its offset before each target). The prompts are
     * repeated once per set along the batch, each copy masked for its own set, {@link #ROWS_PER_PASS} rows a pass.
     */
    static double[] runSets(HookedTransformer model, Readout r, long[][] prompts, int[] targets, List<List<Node>> sets,
                            Map<Node, float[]> refs) {
        int n = prompts.length, len = prompts[0].length, d = model.cfg().dModel(), heads = model.cfg().nHeads();
        for (List<Node> set : sets) {
            for (Node node : set) {
                if (!refs.containsKey(node)) throw new IllegalArgumentException("node " + node + " is not upstream of " + r.hook()
                        + "; upstream are " + refs.keySet());
            }
        }
        double[] out = new double[sets.size()];
        int perPass = Math.max(1, ROWS_PER_PASS / n);
        for (int s0 = 0; s0 < sets.size(); s0 += perPass) {
            List<List<Node>> chunk = sets.subList(s0, Math.min(sets.size(), s0 + perPass));
            int k = chunk.size(), rows = k * n;
            // per hook point: a mask over [rows, P, (H)] and the references
            Map<String, float[]> masks = new LinkedHashMap<>();
            Map<String, float[]> refArrays = new LinkedHashMap<>();
            Map<String, Integer> hookHeads = new LinkedHashMap<>();
            for (int c = 0; c < k; c++) {
                for (Node node : chunk.get(c)) {
                    String hook = switch (node.kind()) {
                        case HEAD -> model.actName("z", node.layer());
                        case MLP -> model.actName("mlp_out", node.layer());
                        case TOKEN -> "hook_embed";
                    };
                    int hh = node.kind() == Node.Kind.HEAD ? heads : 1;
                    hookHeads.put(hook, hh);
                    float[] mask = masks.computeIfAbsent(hook, h -> new float[rows * len * hh]);
                    float[] ref = refs.get(node);
                    if (node.kind() == Node.Kind.HEAD) {
                        float[] all = refArrays.computeIfAbsent(hook, h -> new float[heads * ref.length]);
                        System.arraycopy(ref, 0, all, node.index() * ref.length, ref.length);
                    } else {
                        refArrays.put(hook, ref);
                    }
                    int head = node.kind() == Node.Kind.HEAD ? node.index() : 0;
                    for (int i = 0; i < n; i++) {
                        int row = c * n + i;
                        if (node.kind() == Node.Kind.TOKEN) {
                            int p = targets[i] - node.index();
                            if (p >= 1) mask[(row * len + p) * hh + head] = 1f;
                        } else {
                            for (int p = 1; p < len; p++) mask[(row * len + p) * hh + head] = 1f;
                        }
                    }
                }
            }
            List<Hook> hooks = new ArrayList<>();
            for (var e : masks.entrySet()) {
                String hook = e.getKey();
                int hh = hookHeads.get(hook);
                float[] mask = e.getValue(), ref = refArrays.get(hook);
                hooks.add(Hook.fwd(hook, (x, hp) -> {
                    NDManager m = x.getManager();
                    Shape shape = hh > 1 ? new Shape(rows, len, hh, 1) : new Shape(rows, len, 1);
                    NDArray maskArr = Tensors.owned(m.create(mask, shape)).toType(x.getDataType(), false);
                    NDArray refArr = Tensors.owned(hh > 1 ? m.create(ref, new Shape(hh, ref.length / hh)) : m.create(ref))
                            .toType(x.getDataType(), false);
                    return x.sub(x.sub(refArr).mul(maskArr));   // x where the mask is 0, ref where it is 1
                }));
            }
            long[][] tiled = Patching.tile(prompts, k);
            try (HookScope scope = model.hooks(hooks.toArray(Hook[]::new))) {
                float[][][] x = resid(model, r.hook(), tiled);
                for (int c = 0; c < k; c++) {
                    double sum = 0;
                    for (int i = 0; i < n; i++) sum += r.apply(x[c * n + i][targets[i]]);
                    out[s0 + c] = sum / n;
                }
            }
        }
        return out;
    }

    private static float[] meanAfterBos(float[] xf, int n, int len, int d, Ablation a) {
        float[] ref = new float[d];
        if (a == Ablation.ZERO) return ref;
        double[] acc = new double[d];
        for (int i = 0; i < n; i++) for (int p = 1; p < len; p++) for (int k = 0; k < d; k++) acc[k] += xf[(i * len + p) * d + k];
        for (int k = 0; k < d; k++) ref[k] = (float) (acc[k] / (n * (len - 1.0)));
        return ref;
    }

    /** {@code Σ (ref - x) · g} over rows after BOS, or only at {@code pos[i]} of each prompt. */
    private static double dotFromRef(float[] xf, float[] gf, float[] ref, int n, int len, int d, int[] pos) {
        double a = 0;
        for (int i = 0; i < n; i++) {
            for (int p = 1; p < len; p++) {
                if (pos != null && p != pos[i]) continue;
                int base = (i * len + p) * d;
                for (int k = 0; k < d; k++) a += (ref[k] - xf[base + k]) * gf[base + k];
            }
        }
        return a;
    }

    /** The hook's activations {@code [N][P][d]}. */
    private static float[][][] resid(HookedTransformer model, String hook, long[][] ids) {
        try (ActivationCache c = model.runWithCache(ids, Patching.filter(List.of(hook)))) {
            NDArray x = c.get(hook);
            int n = (int) x.getShape().get(0), len = (int) x.getShape().get(1), d = (int) x.getShape().get(2);
            float[] f = x.toType(DataType.FLOAT32, false).toFloatArray();
            float[][][] out = new float[n][len][d];
            for (int i = 0; i < n; i++) for (int p = 0; p < len; p++) System.arraycopy(f, (i * len + p) * d, out[i][p], 0, d);
            return out;
        }
    }

    private static double round(double v) {
        return Double.isNaN(v) ? v : Math.round(v * 10000) / 10000.0;
    }
}
