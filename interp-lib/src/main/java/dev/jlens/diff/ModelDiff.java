package dev.jlens.diff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hook.HookNames;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;
import dev.jlens.model.WeightDelta;
import dev.jlens.viz.Plots;
import org.knowm.xchart.HeatMapChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * What changed between a base model and a tuned model of one architecture (a full finetune, or the same model with
 * a LoRA adapter attached): per-token KL of their predictions, relative weight differences per module, and
 * differences of the residual stream by layer and position.
 *
 * <pre>{@code
 * ModelDiff d = ModelDiff.of(base, tuned);
 * TokenKl kl = d.kl(List.of("The cat sat on the mat", "Once upon a time"));
 * kl.top(10, 8);               // the tokens where the predictions differ most, with their context
 * d.weightDiffHeatmap();       // layer x module, ||W_t - W_b|| / ||W_b||
 * d.activationDiff(base.toBatch(prompts));
 * }</pre>
 */
public final class ModelDiff {
    private final HookedTransformer base, tuned;

    private ModelDiff(HookedTransformer base, HookedTransformer tuned) {
        this.base = base;
        this.tuned = tuned;
    }

    /**
     * The diff of {@code tuned} against {@code base}. They must have one architecture and the same shapes: otherwise
     * this throws naming both models and the first difference.
     */
    public static ModelDiff of(HookedTransformer base, HookedTransformer tuned) {
        if (base == null || tuned == null) throw new IllegalArgumentException("both models are needed");
        String both = "base '" + base.name() + "' and tuned '" + tuned.name() + "'";
        if (!base.cfg().family().equals(tuned.cfg().family())) {
            throw new IllegalArgumentException(both + " are of different architectures: " + base.cfg().family()
                    + " vs " + tuned.cfg().family());
        }
        ObjectNode cb = base.cfg().toHf(), ct = tuned.cfg().toHf();
        Iterator<String> it = cb.fieldNames();
        while (it.hasNext()) {
            String k = it.next();
            JsonNode vb = cb.get(k), vt = ct.get(k);
            if (!vb.equals(vt)) {
                throw new IllegalArgumentException(both + " differ in config." + k + ": " + vb + " vs " + vt);
            }
        }
        if (!ct.equals(cb)) throw new IllegalArgumentException(both + " have different configs: " + cb + " vs " + ct);
        Map<String, NDArray> pb = base.parameters(), pt = tuned.parameters();
        if (!pb.keySet().equals(pt.keySet())) {
            throw new IllegalArgumentException(both + " have different parameters: " + pb.keySet() + " vs "
                    + pt.keySet());
        }
        for (Map.Entry<String, NDArray> e : pb.entrySet()) {
            if (!e.getValue().getShape().equals(pt.get(e.getKey()).getShape())) {
                throw new IllegalArgumentException(both + ": parameter '" + e.getKey() + "' has shape "
                        + e.getValue().getShape() + " vs " + pt.get(e.getKey()).getShape());
            }
        }
        return new ModelDiff(base, tuned);
    }

    /** The base model. */
    public HookedTransformer base() {
        return base;
    }

    /** The tuned model. */
    public HookedTransformer tuned() {
        return tuned;
    }

    // ------------------------------------------------------------------ KL

    /** Per-token KL(base || tuned) over {@code prompts}, tokenized by the base model's tokenizer. */
    public TokenKl kl(List<String> prompts) {
        List<TokenKl.Row> rows = new ArrayList<>();
        List<long[]> ids = new ArrayList<>();
        List<String[]> toks = new ArrayList<>();
        for (String p : prompts) {
            long[] t = base.toTokens(p);
            klInto(Batch.of(t), ids.size(), rows, ids, toks);
        }
        return new TokenKl(ids, toks, rows, base.name() + " || " + tuned.name());
    }

    /** Per-token KL(base || tuned) over a batch of token ids (padding, if any, is left out). */
    public TokenKl kl(Batch batch) {
        List<TokenKl.Row> rows = new ArrayList<>();
        List<long[]> ids = new ArrayList<>();
        List<String[]> toks = new ArrayList<>();
        klInto(batch, 0, rows, ids, toks);
        return new TokenKl(ids, toks, rows, base.name() + " || " + tuned.name());
    }

    /** Per-token KL(base || tuned) over sequences of token ids (one batch). */
    public TokenKl kl(long[][] tokens) {
        return kl(Batch.of(tokens));
    }

    private void klInto(Batch batch, int firstPrompt, List<TokenKl.Row> rows, List<long[]> ids, List<String[]> toks) {
        float[] kl;
        int b = batch.size(), p = batch.length();
        try (NDScope scope = new NDScope()) {
            NDArray lb = base.forward(batch).logSoftmax(-1);
            NDArray lt = tuned.forward(batch).logSoftmax(-1);
            // KL(P || Q) = sum_v P(v) (log P(v) - log Q(v)), per position
            kl = lb.exp().mul(lb.sub(lt)).sum(new int[] {-1}).toFloatArray();   // [b * p]
        }
        Optional<Tokenizer> tok = base.tokenizer();
        for (int r = 0; r < b; r++) {
            long[] seq = batch.ids()[r];
            String[] strs = new String[p];
            for (int j = 0; j < p; j++) strs[j] = tok.isPresent() ? base.toStrTokens(new long[] {seq[j]}).get(0)
                    : "#" + seq[j];
            ids.add(seq.clone());
            toks.add(strs);
            for (int j = 0; j < p; j++) {
                if (!batch.mask()[r][j]) continue;
                // rounding can give tiny negative values where the distributions agree: KL is never negative
                rows.add(new TokenKl.Row(firstPrompt + r, j, seq[j], strs[j], Math.max(0, kl[r * p + j])));
            }
        }
    }

    // ------------------------------------------------------------------ weights

    /**
     * Per parameter, {@code ||W_t - W_b||} (Frobenius), {@code ||W_b||} and their ratio (NaN where the base is zero),
     * with the block index ({@code layer}, missing for tensors outside the blocks) and the name within the block
     * ({@code module}). Weight deltas attached to either model (a LoRA adapter) count as part of its weights.
     */
    public Table weightDiff() {
        StringColumn param = StringColumn.create("parameter"), module = StringColumn.create("module");
        IntColumn layer = IntColumn.create("layer");
        DoubleColumn diff = DoubleColumn.create("diff_norm"), norm = DoubleColumn.create("base_norm"),
                rel = DoubleColumn.create("relative_diff");
        try (NDScope scope = new NDScope()) {
            Map<String, NDArray> wb = effective(base), wt = effective(tuned);
            for (Map.Entry<String, NDArray> e : wb.entrySet()) {
                NDArray b = e.getValue(), t = wt.get(e.getKey());
                double d = t.sub(b).square().sum().sqrt().getFloat();
                double n = b.square().sum().sqrt().getFloat();
                param.append(e.getKey());
                OptionalInt l = layerOf(e.getKey());
                if (l.isPresent()) layer.append(l.getAsInt()); else layer.appendMissing();
                module.append(moduleOf(e.getKey()));
                diff.append(d);
                norm.append(n);
                rel.append(n == 0 ? Double.NaN : d / n);
            }
        }
        return Table.create("weight difference", param, layer, module, diff, norm, rel);
    }

    /** Relative weight difference of every block tensor as a layer x module heatmap. */
    public HeatMapChart weightDiffHeatmap() {
        Table t = weightDiff();
        LinkedHashSet<String> modules = new LinkedHashSet<>();
        int layers = base.nLayers();
        for (int i = 0; i < t.rowCount(); i++) if (!t.intColumn("layer").isMissing(i)) modules.add(t.stringColumn("module").get(i));
        List<String> cols = new ArrayList<>(modules);
        double[][] v = new double[layers][cols.size()];
        for (double[] row : v) java.util.Arrays.fill(row, Double.NaN);
        for (int i = 0; i < t.rowCount(); i++) {
            if (t.intColumn("layer").isMissing(i)) continue;
            v[t.intColumn("layer").getInt(i)][cols.indexOf(t.stringColumn("module").get(i))] =
                    t.doubleColumn("relative_diff").getDouble(i);
        }
        List<String> rows = new ArrayList<>();
        for (int l = 0; l < layers; l++) rows.add(Integer.toString(l));
        List<String> labels = cols.stream().map(c -> c.endsWith(".weight") ? c.substring(0, c.length() - 7) : c).toList();
        return Plots.heatmap("relative weight change ||W_t - W_b|| / ||W_b||, " + tuned.name() + " vs " + base.name(),
                v, rows, labels, "module", "layer");
    }

    // ------------------------------------------------------------------ localising by swapping weights

    /**
     * Where the change lives, by swapping weights: for each block and each of its parts (the first segment of the
     * parameter name within the block: {@code attn}, {@code mlp}, {@code ln_1}, {@code self_attn},
     * {@code input_layernorm}, ...) and for the tensors outside the blocks, the tuned model's tensors are copied into
     * the base model, {@code metric} is measured on it, and the base weights are put back bit for bit. Columns:
     * {@code layer} (missing outside the blocks), {@code part}, {@code tensors}, {@code metric}, and {@code recovered}
     * = (metric − base) / (tuned − base): 1 where that part alone carries the whole change (NaN when the two models
     * score alike). The base and tuned scores are in the table's name. A part whose tensors are equal in both models
     * is not run (its metric is the base's). {@code metric} runs the model it is given, e.g. the rate of a behaviour
     * on held-out prompts.
     */
    public Table swapWeights(String metricName, java.util.function.ToDoubleFunction<HookedTransformer> metric) {
        java.util.Objects.requireNonNull(metric, "metric");
        if (!base.weightDeltas().isEmpty()) {
            throw new IllegalStateException("swapping weights into the base model needs it without attached weight "
                    + "deltas (it has " + base.weightDeltas().size() + "): merge or remove its adapters first");
        }
        double mBase = metric.applyAsDouble(base), mTuned = metric.applyAsDouble(tuned);
        Map<String, NDArray> live = base.parameters();
        Map<String, List<String>> groups = new LinkedHashMap<>();   // "layer/part" -> parameter names
        for (String name : live.keySet()) {
            OptionalInt l = layerOf(name);
            String part = l.isPresent() ? moduleOf(name).split("\\.")[0] : moduleOf(name);
            groups.computeIfAbsent((l.isPresent() ? l.getAsInt() : -1) + "/" + part, k -> new ArrayList<>()).add(name);
        }
        IntColumn layer = IntColumn.create("layer");
        StringColumn partCol = StringColumn.create("part");
        IntColumn tensors = IntColumn.create("tensors");
        DoubleColumn value = DoubleColumn.create(metricName), recovered = DoubleColumn.create("recovered");
        try (NDScope scope = new NDScope()) {
            Map<String, NDArray> source = effective(tuned);
            for (Map.Entry<String, List<String>> g : groups.entrySet()) {
                int slash = g.getKey().indexOf('/');
                int l = Integer.parseInt(g.getKey().substring(0, slash));
                boolean differs = false;
                for (String name : g.getValue()) differs |= !live.get(name).contentEquals(source.get(name));
                double m = mBase;
                if (differs) {
                    Map<String, NDArray> saved = new LinkedHashMap<>();
                    for (String name : g.getValue()) saved.put(name, live.get(name).duplicate());
                    try {
                        for (String name : g.getValue()) live.get(name).set(new ai.djl.ndarray.index.NDIndex(":"), source.get(name));
                        m = metric.applyAsDouble(base);
                    } finally {
                        for (String name : g.getValue()) live.get(name).set(new ai.djl.ndarray.index.NDIndex(":"), saved.get(name));
                    }
                }
                if (l >= 0) layer.append(l); else layer.appendMissing();
                partCol.append(g.getKey().substring(slash + 1));
                tensors.append(g.getValue().size());
                value.append(m);
                recovered.append(mTuned == mBase ? Double.NaN : (m - mBase) / (mTuned - mBase));
            }
        }
        return Table.create(String.format("swapping tuned weights into base: %s base %.5g, tuned %.5g", metricName,
                mBase, mTuned), layer, partCol, tensors, value, recovered);
    }

    /** {@link #swapWeights} as a layer x part heatmap of the fraction of the change each swap recovers. */
    public HeatMapChart swapWeightsHeatmap(String metricName, java.util.function.ToDoubleFunction<HookedTransformer> metric) {
        Table t = swapWeights(metricName, metric);
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < t.rowCount(); i++) {
            if (!t.intColumn("layer").isMissing(i) && !parts.contains(t.stringColumn("part").get(i))) parts.add(t.stringColumn("part").get(i));
        }
        double[][] v = new double[base.nLayers()][parts.size()];
        for (double[] row : v) java.util.Arrays.fill(row, Double.NaN);
        for (int i = 0; i < t.rowCount(); i++) {
            if (t.intColumn("layer").isMissing(i)) continue;
            v[t.intColumn("layer").getInt(i)][parts.indexOf(t.stringColumn("part").get(i))] = t.doubleColumn("recovered").getDouble(i);
        }
        List<String> rows = new ArrayList<>();
        for (int l = 0; l < base.nLayers(); l++) rows.add(Integer.toString(l));
        return Plots.heatmap("fraction of the change in " + metricName + " that swapping one part recovers", v, rows, parts,
                "part", "layer");
    }

    // ------------------------------------------------------------------ activation difference lens

    /**
     * The activation difference lens (Minder et al. 2025): the mean of {@code a_tuned - a_base} at {@code hook} over
     * the first {@code positions} tokens of every prompt of {@code neutral} (text unrelated to the finetune; padding
     * left out), as a steering vector at that hook. Read it with {@link #logitLens} and steer the base model with it
     * ({@code Steering.of(v).attach(base)}): a narrow finetune's objective tends to show in both.
     */
    public dev.jlens.probe.SteeringVector activationDifference(Batch neutral, String hook, int positions) {
        float[][] rows = activationDifferences(neutral, hook, positions);
        int d = rows[0].length;
        float[] sum = new float[d];
        for (float[] r : rows) for (int i = 0; i < d; i++) sum[i] += r[i];
        for (int i = 0; i < d; i++) sum[i] /= rows.length;
        return new dev.jlens.probe.SteeringVector(hook, sum,
                "activation difference (tuned - base) at " + hook + ", mean of " + rows.length + " vectors (the first "
                        + positions + " tokens of each prompt)");
    }

    /** Principal directions of the activation differences, with the share of their variance each explains. */
    public record DifferencePca(List<dev.jlens.probe.SteeringVector> components, double[] explained) {}

    /**
     * PCA of the same difference vectors {@link #activationDifference} averages ({@code a_tuned - a_base} over the first
     * {@code positions} tokens of each prompt of {@code neutral}, centred): the top {@code k} directions, unit length and
     * signed so that the mean difference projects positively on them, and the fraction of the differences' variance
     * each explains ({@code geometry.Pca}). A change with one direction shows one dominant component; read each with
     * {@link #logitLens}.
     */
    public DifferencePca activationDifferencePca(Batch neutral, String hook, int positions, int k) {
        if (k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
        float[][] rows = activationDifferences(neutral, hook, positions);
        int n = rows.length, d = rows[0].length;
        if (k > d) throw new IllegalArgumentException("k must be at most d_model " + d + ", got " + k);
        dev.jlens.geometry.Pca pca = dev.jlens.geometry.Pca.fit(rows, k);
        double[] ratio = pca.explainedRatio();
        List<dev.jlens.probe.SteeringVector> comps = new ArrayList<>();
        for (int i = 0; i < k; i++) {
            double[] v = pca.components()[i];
            double dot = 0;
            for (int j = 0; j < d; j++) dot += v[j] * pca.mean()[j];
            double sign = dot < 0 ? -1 : 1;
            float[] f = new float[d];
            for (int j = 0; j < d; j++) f[j] = (float) (sign * v[j]);
            comps.add(new dev.jlens.probe.SteeringVector(hook, f, String.format(java.util.Locale.ROOT,
                    "principal component %d of the activation differences (tuned - base) at %s (%.1f%% of their "
                            + "variance, %d vectors)", i + 1, hook, 100 * ratio[i], n)));
        }
        return new DifferencePca(comps, ratio);
    }

    /** The vectors {@code a_tuned - a_base} at {@code hook}, the first {@code positions} unpadded tokens of each prompt. */
    private float[][] activationDifferences(Batch neutral, String hook, int positions) {
        java.util.Objects.requireNonNull(neutral, "neutral");
        if (positions < 1) throw new IllegalArgumentException("positions must be >= 1, got " + positions);
        List<float[]> out = new ArrayList<>();
        try (NDScope scope = new NDScope();
             ActivationCache cb = base.runWithCache(neutral, NameFilter.of(hook));
             ActivationCache ct = tuned.runWithCache(neutral, NameFilter.of(hook))) {
            NDArray diff = ct.get(hook).sub(cb.get(hook));                 // [n, pos, d]
            if (diff.getShape().dimension() != 3) {
                throw new IllegalArgumentException("the activation difference lens reads a residual-stream-like hook [batch, "
                        + "pos, d_model]; " + hook + " has shape " + diff.getShape());
            }
            long n = diff.getShape().get(0), p = diff.getShape().get(1);
            int d = (int) diff.getShape().get(2);
            float[] v = diff.toFloatArray();
            boolean[][] mask = neutral.mask();
            for (int r = 0; r < n; r++) {
                int taken = 0;
                for (int j = 0; j < p && taken < positions; j++) {
                    if (!mask[r][j]) continue;
                    int o = (int) ((r * p + j) * d);
                    out.add(java.util.Arrays.copyOfRange(v, o, o + d));
                    taken++;
                }
            }
        }
        if (out.isEmpty()) throw new IllegalArgumentException("the neutral batch has no unpadded tokens");
        return out.toArray(float[][]::new);
    }

    /**
     * The tokens a direction promotes and suppresses through the base model's logit lens (its final norm, then the
     * unembedding): {@code top} rows of rank, promoted token and logit, suppressed token and logit.
     */
    public Table logitLens(dev.jlens.probe.SteeringVector v, int top) {
        java.util.Objects.requireNonNull(v, "v");
        if (v.dim() != base.cfg().dModel()) {
            throw new IllegalArgumentException("a logit lens reads vectors of d_model " + base.cfg().dModel() + ", got " + v.dim());
        }
        float[] logits;
        try (NDScope scope = new NDScope()) {
            NDArray x = base.manager().create(v.vector()).reshape(1, 1, v.dim());
            logits = base.unembed(base.finalNorm(x)).toFloatArray();
        }
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        final float[] lg = logits;
        java.util.Arrays.sort(order, (a, b) -> Float.compare(lg[b], lg[a]));
        int k = Math.min(top, logits.length);
        IntColumn rank = IntColumn.create("rank");
        StringColumn up = StringColumn.create("promoted"), down = StringColumn.create("suppressed");
        DoubleColumn upL = DoubleColumn.create("promoted_logit"), downL = DoubleColumn.create("suppressed_logit");
        for (int i = 0; i < k; i++) {
            int u = order[i], dn = order[logits.length - 1 - i];
            rank.append(i + 1);
            up.append(tokenText(u));
            upL.append(logits[u]);
            down.append(tokenText(dn));
            downL.append(logits[dn]);
        }
        return Table.create("logit lens of " + v.source(), rank, up, upL, down, downL);
    }

    private String tokenText(long id) {
        return base.tokenizer().map(t -> t.decodeToken(id)).orElse("#" + id);
    }

    /** The weights a forward pass reads: parameters plus the model's attached weight deltas. */
    private static Map<String, NDArray> effective(HookedTransformer m) {
        Map<String, NDArray> out = new LinkedHashMap<>(m.parameters());
        if (m.weightDeltas().isEmpty()) return out;
        java.util.Set<String> conv1d = new java.util.HashSet<>();
        for (dev.jlens.model.arch.LinearModule l : m.linearModules()) if (l.conv1d()) conv1d.add(l.parameter());
        for (WeightDelta d : m.weightDeltas()) {
            d.deltas().forEach((name, lr) -> out.put(name, out.get(name).add(conv1d.contains(name)
                    ? lr.delta().transpose() : lr.delta())));
        }
        return out;
    }

    /** The block index in a parameter name (the first all-digit segment), if any. */
    static OptionalInt layerOf(String name) {
        for (String s : name.split("\\.")) {
            if (!s.isEmpty() && s.chars().allMatch(Character::isDigit)) return OptionalInt.of(Integer.parseInt(s));
        }
        return OptionalInt.empty();
    }

    /** A parameter's name within its block ({@code transformer.h.3.attn.c_attn.weight} → {@code attn.c_attn.weight}). */
    static String moduleOf(String name) {
        String[] parts = name.split("\\.");
        for (int i = 0; i < parts.length - 1; i++) {
            if (!parts[i].isEmpty() && parts[i].chars().allMatch(Character::isDigit)) {
                return String.join(".", java.util.Arrays.copyOfRange(parts, i + 1, parts.length));
            }
        }
        return name;
    }

    // ------------------------------------------------------------------ activations

    /**
     * Per layer and position, the residual stream's difference after the block ({@code hook_resid_post}): the mean
     * over the batch's prompts (padding left out) of {@code ||a_t - a_b||} and of that over {@code ||a_b||}.
     */
    public Table activationDiff(Batch batch) {
        IntColumn layer = IntColumn.create("layer"), position = IntColumn.create("position");
        DoubleColumn diff = DoubleColumn.create("diff_norm"), rel = DoubleColumn.create("relative_diff");
        int b = batch.size(), p = batch.length();
        try (NDScope scope = new NDScope();
             ActivationCache cb = base.runWithCache(batch, NameFilter.of("hook_resid_post"));
             ActivationCache ct = tuned.runWithCache(batch, NameFilter.of("hook_resid_post"))) {
            for (int l = 0; l < base.nLayers(); l++) {
                NDArray ab = cb.get("resid_post", l), at = ct.get("resid_post", l);   // [b, p, d]
                float[] d = at.sub(ab).norm(new int[] {-1}).toFloatArray();
                float[] n = ab.norm(new int[] {-1}).toFloatArray();
                for (int j = 0; j < p; j++) {
                    double sd = 0, sr = 0;
                    int count = 0;
                    for (int r = 0; r < b; r++) {
                        if (!batch.mask()[r][j]) continue;
                        sd += d[r * p + j];
                        sr += n[r * p + j] == 0 ? 0 : d[r * p + j] / n[r * p + j];
                        count++;
                    }
                    if (count == 0) continue;
                    layer.append(l);
                    position.append(j);
                    diff.append(sd / count);
                    rel.append(sr / count);
                }
            }
        }
        return Table.create("resid_post difference", layer, position, diff, rel);
    }

    /** The block outputs {@link #patchActivations} patches: attention and MLP outputs (what each block adds). */
    public static final List<String> PATCH_SITES = List.of("attn_out", "mlp_out");

    /**
     * Where the change lives, by patching activations: for each layer and each of {@link #PATCH_SITES}, the base
     * model runs {@code batch} with that one activation replaced by the tuned model's on the same batch, and
     * {@code metric} reads the logits ({@code [batch, pos, vocab]}). Columns: {@code layer}, {@code site}, the metric,
     * and {@code recovered} = (metric − base) / (tuned − base): 1 where the tuned model's output of that sublayer alone
     * carries the whole change, on inputs the base model computed below it. Complements {@link #swapWeights} (which
     * changes a sublayer's weights, so its effect flows on through the tuned model's own later activations).
     */
    public Table patchActivations(Batch batch, String metricName, java.util.function.ToDoubleFunction<NDArray> metric) {
        java.util.Objects.requireNonNull(batch, "batch");
        java.util.Objects.requireNonNull(metric, "metric");
        IntColumn layer = IntColumn.create("layer");
        StringColumn site = StringColumn.create("site");
        DoubleColumn value = DoubleColumn.create(metricName), recovered = DoubleColumn.create("recovered");
        double mBase, mTuned;
        try (NDScope scope = new NDScope()) {
            mBase = metric.applyAsDouble(base.forward(batch));
            mTuned = metric.applyAsDouble(tuned.forward(batch));
        }
        List<String> names = new ArrayList<>();
        for (int l = 0; l < base.nLayers(); l++) for (String s : PATCH_SITES) names.add(HookNames.actName(s, l));
        try (ActivationCache ct = tuned.runWithCache(batch, NameFilter.of(names.toArray(String[]::new)))) {
            for (int l = 0; l < base.nLayers(); l++) {
                for (String s : PATCH_SITES) {
                    String name = HookNames.actName(s, l);
                    NDArray replacement = ct.get(name);
                    double m;
                    try (NDScope scope = new NDScope()) {
                        m = metric.applyAsDouble(base.runWithHooks(batch, dev.jlens.hook.Hook.fwd(name,
                                (act, hook) -> replacement)));
                    }
                    layer.append(l);
                    site.append(s);
                    value.append(m);
                    recovered.append(mTuned == mBase ? Double.NaN : (m - mBase) / (mTuned - mBase));
                }
            }
        }
        return Table.create(String.format("patching tuned activations into base: %s base %.5g, tuned %.5g",
                metricName, mBase, mTuned), layer, site, value, recovered);
    }

    /** {@link #patchActivations} as a layer x site heatmap of the fraction of the change each patch recovers. */
    public HeatMapChart patchActivationsHeatmap(Batch batch, String metricName,
                                                java.util.function.ToDoubleFunction<NDArray> metric) {
        Table t = patchActivations(batch, metricName, metric);
        double[][] v = new double[base.nLayers()][PATCH_SITES.size()];
        for (int i = 0; i < t.rowCount(); i++) {
            v[t.intColumn("layer").getInt(i)][PATCH_SITES.indexOf(t.stringColumn("site").get(i))] =
                    t.doubleColumn("recovered").getDouble(i);
        }
        List<String> rows = new ArrayList<>();
        for (int l = 0; l < base.nLayers(); l++) rows.add(Integer.toString(l));
        return Plots.heatmap("fraction of the change in " + metricName + " that patching one activation recovers", v,
                rows, PATCH_SITES, "site", "layer");
    }

    /** {@link #activationDiff(Batch)} over token sequences of one length. */
    public Table activationDiff(long[][] tokens) {
        return activationDiff(Batch.of(tokens));
    }

    @Override
    public String toString() {
        return "ModelDiff(base " + base.name() + ", tuned " + tuned.name() + ")";
    }
}
