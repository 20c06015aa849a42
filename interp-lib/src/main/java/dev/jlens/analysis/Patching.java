package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.Ablate;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.KvCache;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.notebook.Progress;
import dev.jlens.util.Tensors;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * Activation patching: run a prompt set with one activation replaced, for every index of a site, and measure.
 *
 * <pre>{@code
 * var p = Patching.of(model, clean, corrupt, Metric.logitDiff(singular, plural));
 * PatchResult resid = p.sweep(PatchSite.RESID_PRE, Direction.DENOISE);     // every [layer, pos]
 * PatchResult heads = p.sweep(PatchSite.Z, Direction.NOISE);               // every [layer, head]
 * PatchResult byPos = p.sweepByPosition(PatchSite.Z, Direction.DENOISE);   // every [layer, head, pos]
 * PatchResult path  = p.pathPatch(Direction.NOISE, Receiver.logits());      // each head's direct effect
 * p.with(Replacement.meanPerPosition(dataset)).sweep(PatchSite.MLP_OUT, Direction.NOISE);
 * }</pre>
 *
 * <p><b>Clean and corrupt</b> are {@code n} prompts each, all of one length; prompt {@code i} of one run pairs with
 * prompt {@code i} of the other. The value of a run is the metric's mean over the prompts. <b>Denoising</b> patches
 * the corrupt run with the replacement (by default the clean run's activation), <b>noising</b> the clean run (by
 * default with the corrupt one's). A position index patches that position of every prompt; a head index patches
 * that head at every position.
 *
 * <p><b>Batching.</b> Many patches run in one forward pass: the run's prompts are repeated once per patch along the
 * batch dimension, and each copy's hook replaces only its own index ({@code where(mask, source, activation)}, an
 * exact selection). {@link #rowsPerPass(int)} bounds the rows of a pass. Two exact shortcuts are on by default
 * ({@link #resume(boolean)}): a pass starts at its patches' layer from the base run's residual stream, and, when the
 * metric reads the last position only, at the first position its patches change, attending to the base run's keys
 * and values for the earlier positions; a patch that replaces nothing that differs (a prefix the clean and corrupt
 * prompts share) is not run. With {@code rowsPerPass(prompts).resume(false)} every patch is its own forward pass of
 * exactly the rows a hand-written hook loop would run, and the results are equal bit for bit; the defaults agree
 * with it to float rounding of the batched matrix products.
 */
public final class Patching {

    /** Default bound on rows (prompts × patches) per forward pass. */
    public static final int DEFAULT_ROWS_PER_PASS = 256;

    private final HookedTransformer model;
    private final long[][] clean;
    private final long[][] corrupt;
    private final Metric metric;
    private final Replacement replacement;
    private final int rowsPerPass;
    private final boolean resume;
    private double[] baseMetrics;   // clean, corrupt; computed once

    private Patching(HookedTransformer model, long[][] clean, long[][] corrupt, Metric metric,
                     Replacement replacement, int rowsPerPass, boolean resume, double[] baseMetrics) {
        this.baseMetrics = baseMetrics;   // shared by copies with the same metric: the runs it measures are equal
        this.resume = resume;
        this.model = model;
        this.clean = clean;
        this.corrupt = corrupt;
        this.metric = metric;
        this.replacement = replacement;
        this.rowsPerPass = rowsPerPass;
    }

    /** Patching between {@code clean} and {@code corrupt} prompts (equal counts, one length), measured by metric. */
    public static Patching of(HookedTransformer model, long[][] clean, long[][] corrupt, Metric metric) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(metric, "metric");
        long[][] c = copy(clean, "clean");
        long[][] x = copy(corrupt, "corrupt");
        if (c.length != x.length) {
            throw new IllegalArgumentException("clean has " + c.length + " prompts and corrupt " + x.length
                    + ": they pair up one to one, so the counts must match");
        }
        if (c[0].length != x[0].length) {
            throw new IllegalArgumentException("clean prompts have " + c[0].length + " tokens and corrupt prompts "
                    + x[0].length + ": patching pairs positions, so the lengths must match");
        }
        int vocab = model.cfg().dVocab();
        checkIds(c, "clean", vocab);
        checkIds(x, "corrupt", vocab);
        for (long t : metric.tokens()) {
            if (t < 0 || t >= vocab) {
                throw new IllegalArgumentException("metric token " + t + " is outside the vocabulary: valid ids are 0.."
                        + (vocab - 1) + " (d_vocab = " + vocab + ")");
            }
        }
        if (c[0].length > model.cfg().nCtx()) {
            throw new IllegalArgumentException("prompts of " + c[0].length + " tokens exceed the model's context of "
                    + model.cfg().nCtx());
        }
        return new Patching(model, c, x, metric, Replacement.other(), DEFAULT_ROWS_PER_PASS, true, null);
    }

    /** One clean and one corrupt prompt. */
    public static Patching of(HookedTransformer model, long[] clean, long[] corrupt, Metric metric) {
        return of(model, new long[][] {clean}, new long[][] {corrupt}, metric);
    }

    /** One clean and one corrupt text, tokenized with BOS. */
    public static Patching of(HookedTransformer model, String clean, String corrupt, Metric metric) {
        return of(model, model.toTokens(clean), model.toTokens(corrupt), metric);
    }

    /** The same experiment replacing activations with {@code r} (the other run's, zero, a mean, a resample). */
    public Patching with(Replacement r) {
        return new Patching(model, clean, corrupt, metric, Objects.requireNonNull(r, "replacement"), rowsPerPass,
                resume, baseMetrics);
    }

    /** The same experiment with another metric. */
    public Patching with(Metric m) {
        return of(model, clean, corrupt, m).with(replacement).rowsPerPass(rowsPerPass).resume(resume);
    }

    /**
     * The same experiment with at most {@code rows} rows per forward pass (at least one patch of all prompts is
     * always run together); {@code rowsPerPass(prompts())} runs one forward pass per patch.
     */
    public Patching rowsPerPass(int rows) {
        if (rows < 1) throw new IllegalArgumentException("rowsPerPass must be >= 1, got " + rows);
        return new Patching(model, clean, corrupt, metric, replacement, rows, resume, baseMetrics);
    }

    /**
     * Whether sweeps take the exact shortcuts (the default): a pass resumes at the patched layer from the base run's
     * residual stream (the layers below are the same in every patched run) and, for a metric of the last position
     * ({@link Metric#lastPositionOnly()}), at the first position its patches change (the earlier positions are the
     * base run's under the causal mask: their keys and values come from it); a patch whose replacement equals the
     * activation at every entry it replaces (a shared prefix of clean and corrupt prompts) is not run, its value
     * being the base run's. {@code false} runs every patch from the embeddings over all positions, a hand-written
     * hook loop's work, bit for bit the same results.
     */
    public Patching resume(boolean on) {
        return new Patching(model, clean, corrupt, metric, replacement, rowsPerPass, on, baseMetrics);
    }

    public HookedTransformer model() {
        return model;
    }

    public Metric metric() {
        return metric;
    }

    public Replacement replacement() {
        return replacement;
    }

    /** Number of prompt pairs. */
    public int prompts() {
        return clean.length;
    }

    /** Tokens per prompt. */
    public int length() {
        return clean[0].length;
    }

    /** A copy of the clean prompts. */
    public long[][] clean() {
        return copy(clean, "clean");
    }

    /** A copy of the corrupt prompts. */
    public long[][] corrupt() {
        return copy(corrupt, "corrupt");
    }

    /** The metric of the clean run. */
    public double metricClean() {
        return baseMetrics()[0];
    }

    /** The metric of the corrupt run. */
    public double metricCorrupt() {
        return baseMetrics()[1];
    }

    // ------------------------------------------------------------------------------------------- sweeps

    /**
     * Every index of {@code site}: [layer, pos] for residual and sublayer sites, [layer, head] (all positions) for
     * head sites.
     */
    public PatchResult sweep(PatchSite site, Direction direction) {
        return run(site, direction, indices(site, false, false));
    }

    /** Every [layer, head, pos] of a head site ([layer, pos] for the others, as {@link #sweep}). */
    public PatchResult sweepByPosition(PatchSite site, Direction direction) {
        return run(site, direction, indices(site, true, false));
    }

    /** Every layer of a site, all its positions (and heads) at once. */
    public PatchResult sweepLayers(PatchSite site, Direction direction) {
        return run(site, direction, indices(site, false, true));
    }

    /** The chosen indices of {@code site}, each patched on its own. */
    public PatchResult run(PatchSite site, Direction direction, List<PatchIndex> indices) {
        Objects.requireNonNull(site, "site");
        Objects.requireNonNull(direction, "direction");
        if (indices.isEmpty()) throw new IllegalArgumentException("no indices to patch");
        int nLayers = model.nLayers();
        Set<Integer> layers = new LinkedHashSet<>();
        for (PatchIndex ix : indices) layers.add(checkIndex(site, ix));
        Map<Integer, String> hooks = new LinkedHashMap<>();
        for (int l : layers) hooks.put(l, hookName(site, l));
        List<String> cached = new ArrayList<>(hooks.values());
        for (int l : layers) if (l > 0) cached.add(dev.jlens.hook.HookNames.actName("resid_pre", l));
        // resuming with a metric of the last position, passes continue from the base run's keys and values
        boolean suffixes = resume && metric.lastPositionOnly();
        List<ActivationCache> runs;
        KvCache kvOfBase = null;
        if (resume) {
            // both runs in one pass (one pass's fixed cost, not two); without the shortcuts each is its own pass, as
            // a hand-written loop runs them, so that results stay equal to it bit for bit
            try (KvCache kvOfBoth = suffixes ? model.newKvCache() : null) {
                runs = model.runWithCaches(List.of(base(direction), source(direction)), filter(cached), kvOfBoth);
                if (kvOfBoth != null) kvOfBase = kvOfBoth.rows(0, prompts());
            }
        } else {
            runs = List.of(model.runWithCache(base(direction), filter(cached)),
                    model.runWithCache(source(direction), filter(hooks.values())));
        }
        try (KvCache baseKv = kvOfBase; ActivationCache base = runs.get(0); ActivationCache other = runs.get(1)) {
            rememberBaseMetrics(direction, base, other);
            Map<Integer, NDArray> residPre = new LinkedHashMap<>();
            for (int l : layers) if (l > 0) residPre.put(l, base.get(dev.jlens.hook.HookNames.actName("resid_pre", l)));
            Map<Integer, NDArray> sources = new LinkedHashMap<>();
            int heads = 0;
            for (Map.Entry<Integer, String> e : hooks.entrySet()) {
                sources.put(e.getKey(), sourceActivation(e.getValue(), base, other));
                if (site.isHead()) heads = (int) base.get(e.getValue()).getShape().get(site == PatchSite.PATTERN ? 1 : 2);
            }
            int nHeads = heads;
            for (PatchIndex ix : indices) {
                if (ix.head().isPresent() && ix.head().getAsInt() >= nHeads) {
                    throw new IllegalArgumentException("head " + ix.head().getAsInt() + " is out of range for "
                            + site + ": valid heads are 0.." + (nHeads - 1));
                }
            }
            long[] maskShape = maskShape(site, nHeads);
            // A patch whose replacement equals the activation at every entry it replaces changes nothing: its run is
            // the base run (the prompts' shared prefix under a causal mask, identical tokens). Skipped when resuming.
            Map<Integer, boolean[]> differs = new LinkedHashMap<>();
            if (resume) {
                for (Map.Entry<Integer, String> e : hooks.entrySet()) {
                    differs.put(e.getKey(), differs(sources.get(e.getKey()), base.get(e.getValue())));
                }
            }
            List<PatchIndex> todo = new ArrayList<>();
            List<Integer> fromPos = new ArrayList<>();   // the first position each patch changes (resuming)
            boolean[] run = new boolean[indices.size()];
            for (int i = 0; i < indices.size(); i++) {
                PatchIndex ix = indices.get(i);
                int first = resume ? firstChange(site, mask(site, ix, maskShape), differs.get(ix.layer()), maskShape)
                        : 0;
                run[i] = first >= 0;
                if (run[i]) {
                    todo.add(ix);
                    fromPos.add(first);
                }
            }
            double[] ran = new double[todo.size()];
            if (!todo.isEmpty() && resume) {
                // passes group patches of one layer and nearby first changes: sort them so, run, and put values back
                Integer[] order = new Integer[todo.size()];
                for (int i = 0; i < order.length; i++) order[i] = i;
                Arrays.sort(order, java.util.Comparator.<Integer>comparingInt(i -> todo.get(i).layer())
                        .thenComparingInt(fromPos::get));
                List<PatchIndex> sorted = new ArrayList<>();
                int[] sortedFrom = new int[order.length];
                for (int i = 0; i < order.length; i++) {
                    sorted.add(todo.get(order[i]));
                    sortedFrom[i] = fromPos.get(order[i]);
                }
                double[] v = runPatches(site, direction, sorted, hooks, sources, maskShape, residPre, sortedFrom,
                        baseKv);
                for (int i = 0; i < order.length; i++) ran[order[i]] = v[i];
            } else if (!todo.isEmpty()) {
                ran = runPatches(site, direction, todo, hooks, sources, maskShape, residPre, null, null);
            }
            double unchanged = direction == Direction.DENOISE ? metricCorrupt() : metricClean();
            double[] values = new double[indices.size()];
            for (int i = 0, j = 0; i < indices.size(); i++) values[i] = run[i] ? ran[j++] : unchanged;
            return new PatchResult("patching", site, direction, metric.name(), replacement.label(), indices, values,
                    metricClean(), metricCorrupt(), strTokens(base(direction)[0]), nLayers, nHeads,
                    Optional.empty());
        }
    }

    /**
     * The patched runs of {@code indices} (all of them changing something), batched. When resuming, a pass starts at
     * its patches' layer and, for a metric of the last position, at the first position they change.
     */
    private double[] runPatches(PatchSite site, Direction direction, List<PatchIndex> indices,
                                Map<Integer, String> hooks, Map<Integer, NDArray> sources, long[] maskShape,
                                Map<Integer, NDArray> residPre, int[] fromPos, KvCache baseKv) {
        int[] start = resume ? indices.stream().mapToInt(PatchIndex::layer).toArray() : null;
        return runBlocks(base(direction), indices.size(), "patch " + site, (first, count, offset) -> {
            long[] shape = offset == 0 ? maskShape : suffixShape(site, maskShape, offset);
            List<Hook> out = new ArrayList<>();
            for (Map.Entry<Integer, String> e : hooks.entrySet()) {
                boolean[][] masks = new boolean[count][];
                boolean any = false;
                for (int j = 0; j < count; j++) {
                    PatchIndex ix = indices.get(first + j);
                    if (ix.layer() == e.getKey()) {
                        boolean[] m = mask(site, ix, maskShape);
                        masks[j] = offset == 0 ? m : suffixMask(site, m, maskShape, offset);
                        any = true;
                    }
                }
                if (!any) continue;
                NDArray src = sources.get(e.getKey());
                if (offset > 0) {
                    src = src.get(site == PatchSite.PATTERN ? new NDIndex(":, :, {}:", offset)
                            : new NDIndex(":, {}:", offset));
                }
                out.add(replaceWhere(e.getValue(), src, masks, shape));
            }
            return out;
        }, start, residPre, fromPos, baseKv);
    }

    /** The position of entry {@code e} of a site's mask layout ({@link #maskShape}). */
    static int entryPosition(PatchSite site, int e, long[] maskShape) {
        if (!site.isHead()) return e;
        return site == PatchSite.PATTERN ? (int) (e % maskShape[1]) : (int) (e / maskShape[1]);
    }

    /** The mask layout of positions {@code offset} and up. */
    static long[] suffixShape(PatchSite site, long[] maskShape, int offset) {
        long[] s = maskShape.clone();
        s[site == PatchSite.PATTERN ? 1 : 0] -= offset;
        return s;
    }

    /** The entries of {@code mask} at positions {@code offset} and up, in the layout of {@link #suffixShape}. */
    static boolean[] suffixMask(PatchSite site, boolean[] mask, long[] maskShape, int offset) {
        boolean[] out = new boolean[(int) size(suffixShape(site, maskShape, offset))];
        int j = 0;
        for (int e = 0; e < mask.length; e++) if (entryPosition(site, e, maskShape) >= offset) out[j++] = mask[e];
        return out;
    }

    /**
     * For each entry of a site's mask layout ({@link #maskShape}), whether {@code source} differs from {@code act}
     * there for any prompt: both are {@code [n, ..., last]}, reduced over the prompts and the last axis.
     */
    static boolean[] differs(NDArray source, NDArray act) {
        try (NDScope scope = new NDScope()) {
            NDArray d = source.eq(act).logicalNot().toType(ai.djl.ndarray.types.DataType.FLOAT32, false);
            int last = act.getShape().dimension() - 1;
            float[] v = d.max(new int[] {last}).max(new int[] {0}).toFloatArray();
            boolean[] out = new boolean[v.length];
            for (int i = 0; i < v.length; i++) out[i] = v[i] != 0;
            return out;
        }
    }

    /**
     * The first position where a patch with {@code mask} replaces an entry whose replacement differs, or -1 when it
     * replaces nothing that differs (its run is the base run).
     */
    static int firstChange(PatchSite site, boolean[] mask, boolean[] differs, long[] maskShape) {
        int first = -1;
        for (int e = 0; e < mask.length; e++) {
            if (mask[e] && differs[e]) {
                int p = entryPosition(site, e, maskShape);
                if (first < 0 || p < first) first = p;
            }
        }
        return first;
    }

    // ------------------------------------------------------------------------------------- path patching

    /**
     * Path patching: the direct effect of each sender head on the receivers. For each head of a layer before the
     * last receiver's (every head for {@link Receiver#logits()}): run the patched run with that head's output
     * {@code z} taken from the other run (or the replacement) and every other head's {@code z} and every MLP's output
     * frozen to the patched run's own values, so only the path from the sender through the residual stream
     * changes; the receivers' inputs ({@code q}, {@code k} or {@code v} of chosen heads) computed in that run are then
     * patched into a fresh run, and the metric is measured. For the logits receiver the first run's metric is the
     * result. Values are per [layer, head] of the senders.
     */
    public PatchResult pathPatch(Direction direction, Receiver... receivers) {
        Objects.requireNonNull(direction, "direction");
        if (receivers.length == 0) throw new IllegalArgumentException("name at least one receiver: "
                + "Receiver.logits() or Receiver.heads(layer, \"q\"|\"k\"|\"v\", heads...)");
        boolean toLogits = Arrays.stream(receivers).anyMatch(r -> r.kind() == Receiver.Kind.LOGITS);
        if (toLogits && receivers.length > 1) {
            throw new IllegalArgumentException("the logits receiver stands alone: path patch to heads or to the "
                    + "logits, not both in one call");
        }
        int nLayers = model.nLayers();
        int senderLayers = toLogits ? nLayers
                : Arrays.stream(receivers).mapToInt(Receiver::layer).max().orElseThrow();
        for (Receiver r : receivers) if (r.kind() == Receiver.Kind.HEADS) checkLayer(r.layer());
        List<String> zHooks = new ArrayList<>();
        List<String> mlpHooks = new ArrayList<>();
        for (int l = 0; l < nLayers; l++) {
            zHooks.add(model.actName("z", l));
            if (!model.cfg().attnOnly()) mlpHooks.add(model.actName("mlp_out", l));
        }
        List<String> receiverHooks = new ArrayList<>();
        for (Receiver r : receivers) {
            if (r.kind() == Receiver.Kind.HEADS) receiverHooks.add(model.actName(r.input(), r.layer()));
        }
        List<String> all = new ArrayList<>(zHooks);
        all.addAll(mlpHooks);
        all.addAll(receiverHooks);
        long[][] baseTokens = base(direction);
        try (ActivationCache base = model.runWithCache(baseTokens, filter(all));
             ActivationCache other = model.runWithCache(source(direction), filter(zHooks))) {
            int nHeads = (int) base.get(zHooks.get(0)).getShape().get(2);
            for (Receiver r : receivers) {
                if (r.kind() == Receiver.Kind.HEADS) {
                    long have = base.get(model.actName(r.input(), r.layer())).getShape().get(2);
                    for (int h : r.heads()) {
                        if (h < 0 || h >= have) {
                            throw new IllegalArgumentException("receiver head " + h + " is out of range for "
                                    + r.input() + " at layer " + r.layer() + ": valid heads are 0.." + (have - 1));
                        }
                    }
                }
            }
            List<PatchIndex> senders = new ArrayList<>();
            for (int l = 0; l < senderLayers; l++) for (int h = 0; h < nHeads; h++) senders.add(PatchIndex.head(l, h));
            Map<String, NDArray> sources = new LinkedHashMap<>();
            for (String z : zHooks) sources.put(z, sourceActivation(z, base, other));
            long[] zMask = maskShape(PatchSite.Z, nHeads);
            double[] values = runBlocks(baseTokens, senders.size(), "path patch", (first, count) -> {
                // stage 1: sender from the source, everything else frozen; record the receivers' inputs
                List<Hook> hooks = new ArrayList<>();
                for (int l = 0; l < nLayers; l++) {
                    boolean[][] masks = new boolean[count][];
                    for (int j = 0; j < count; j++) {
                        PatchIndex s = senders.get(first + j);
                        masks[j] = s.layer() == l ? mask(PatchSite.Z, s, zMask) : new boolean[(int) size(zMask)];
                    }
                    String z = zHooks.get(l);
                    NDArray frozen = base.get(z);
                    NDArray src = sources.get(z);
                    hooks.add(Hook.fwd(z, (act, hp) -> {
                        int k = (int) (act.getShape().get(0) / prompts());
                        NDArray m = maskArray(act, masks, zMask);
                        return where(m, tile(src, k), tile(frozen, k));
                    }));
                }
                for (String mlp : mlpHooks) {
                    NDArray frozen = base.get(mlp);
                    hooks.add(Hook.fwd(mlp, (act, hp) -> tile(frozen, (int) (act.getShape().get(0) / prompts()))));
                }
                if (toLogits) return hooks;
                Map<String, NDArray> recorded = new LinkedHashMap<>();
                for (String rh : receiverHooks) {
                    hooks.add(Hook.fwd(rh, (act, hp) -> {
                        NDArray copy = act.duplicate();
                        NDScope.unregister(copy);   // outlives the first run's scope; the second run frees it
                        recorded.put(hp.name(), copy);
                        return null;
                    }));
                }
                // stage 2: a fresh run with the receivers' chosen heads patched to the recorded values
                List<Hook> second = new ArrayList<>();
                for (Receiver r : receivers) {
                    String rh = model.actName(r.input(), r.layer());
                    long h = base.get(rh).getShape().get(2);
                    boolean[] m = new boolean[(int) h];
                    for (int head : r.heads()) m[head] = true;
                    second.add(Hook.fwd(rh, (act, hp) -> {
                        NDScope.register(recorded.get(rh));
                        NDArray mask = Tensors.owned(act.getManager().create(m, new Shape(1, 1, h, 1)));
                        return where(mask, recorded.get(rh), act);
                    }));
                }
                return new Stage(hooks, second);
            });
            return new PatchResult("path patching", PatchSite.Z, direction, metric.name() + " via "
                    + Arrays.toString(receivers), replacement.label(), senders, values, metricClean(),
                    metricCorrupt(), strTokens(baseTokens[0]), nLayers, nHeads, Optional.empty());
        }
    }

    /** The receiving end of a path: the logits, or an input ({@code q}, {@code k}, {@code v}) of chosen heads. */
    public record Receiver(Kind kind, int layer, String input, int[] heads) {
        /** What receives. */
        public enum Kind { LOGITS, HEADS }

        /** Validates. */
        public Receiver {
            if (kind == Kind.HEADS) {
                if (!Set.of("q", "k", "v").contains(input)) {
                    throw new IllegalArgumentException("unknown receiver input '" + input + "': valid inputs are q, "
                            + "k, v");
                }
                if (heads.length == 0) throw new IllegalArgumentException("name at least one receiver head");
                heads = heads.clone();
            }
        }

        /** The logits (each sender's direct effect on the output). */
        public static Receiver logits() {
            return new Receiver(Kind.LOGITS, -1, "", new int[0]);
        }

        /** Input {@code q}, {@code k} or {@code v} of {@code heads} at {@code layer}. */
        public static Receiver heads(int layer, String input, int... heads) {
            return new Receiver(Kind.HEADS, layer, input, heads);
        }

        @Override
        public String toString() {
            return kind == Kind.LOGITS ? "logits" : "L" + layer + Arrays.toString(heads) + "." + input;
        }
    }

    // ------------------------------------------------------------------------------------------ engine

    /** Hooks for the blocks {@code first .. first + count - 1} of one pass. */
    @FunctionalInterface
    interface ChunkHooks {
        Object hooks(int first, int count);
    }

    /** Two runs per pass: the first's hooks, then the second's (path patching). */
    record Stage(List<Hook> first, List<Hook> second) {}

    /**
     * Runs {@code blocks} patched copies of {@code base}, as many per pass as {@link #rowsPerPass} allows, and
     * returns the metric of each (mean over its prompts). {@code hooks} returns a list of hooks, or a {@link Stage}.
     */
    double[] runBlocks(long[][] base, int blocks, String what, ChunkHooks hooks) {
        return runBlocks(base, blocks, what, hooks, null, null);
    }

    /**
     * {@link #runBlocks(long[][], int, String, ChunkHooks)} where block {@code j} changes nothing before block
     * {@code startLayer[j]}: a pass holds blocks of one start layer and resumes the model there from the base run's
     * residual stream {@code residPre.get(layer)} {@code [n, pos, d_model]}, skipping the layers below.
     */
    double[] runBlocks(long[][] base, int blocks, String what, ChunkHooks hooks, int[] startLayer,
                       Map<Integer, NDArray> residPre) {
        return runBlocks(base, blocks, what, (first, count, offset) -> hooks.hooks(first, count), startLayer,
                residPre, null, null);
    }

    /** Hooks for the blocks {@code first .. first + count - 1} of a pass that runs positions {@code offset} and up. */
    @FunctionalInterface
    interface SuffixHooks {
        Object hooks(int first, int count, int offset);
    }

    /**
     * As above, where moreover block {@code j} changes nothing before position {@code fromPos[j]} (null: position 0):
     * with a metric of the last position only, a pass runs only the positions from the smallest {@code fromPos} of
     * its blocks, attending to the base run's keys and values for the earlier ones ({@code baseKv}, every position of
     * the base run, cut to each pass's prefix); its hooks see those positions.
     */
    @SuppressWarnings("unchecked")
    double[] runBlocks(long[][] base, int blocks, String what, SuffixHooks hooks, int[] startLayer,
                       Map<Integer, NDArray> residPre, int[] fromPos, KvCache baseKv) {
        int n = base.length;
        int perPass = Math.max(1, rowsPerPass / n);
        boolean suffixes = fromPos != null && metric.lastPositionOnly();
        List<int[]> chunks = suffixes && startLayer != null
                ? costChunks(startLayer, fromPos, n, perPass, base[0].length, model.cfg())
                : greedyChunks(blocks, perPass, startLayer);
        double[] out = new double[blocks];
        if (suffixes && baseKv == null) {
            throw new IllegalStateException("passes that start after the first position need the base run's keys and values");
        }
        Map<Integer, KvCache> prefixes = new LinkedHashMap<>();   // the base run's keys and values, cut by length
        Progress progress = chunks.size() >= 8 ? Progress.start(chunks.size(), what) : null;
        try {
            for (int[] chunk : chunks) {
                int first = chunk[0], k = chunk[1];
                int offset = 0;
                if (suffixes) {
                    offset = Integer.MAX_VALUE;
                    for (int j = first; j < first + k; j++) offset = Math.min(offset, fromPos[j]);
                }
                int off = offset;
                try (NDScope scope = new NDScope()) {
                    Object h = hooks.hooks(first, k, off);
                    NDArray logits;
                    int start = startLayer == null ? 0 : startLayer[first];
                    if (off > 0) {
                        KvCache prefix = prefixes.computeIfAbsent(off, baseKv::prefix);
                        Batch batch = Batch.of(tile(suffix(base, off), k));
                        // the metric reads the last position: the last block runs its query onwards for it alone
                        boolean last = lastBlockUntouched((List<Hook>) h, model.nLayers());
                        try (KvCache kv = prefix.repeat(k, start);
                             dev.jlens.hook.HookScope hs = model.hooks(((List<Hook>) h).toArray(Hook[]::new))) {
                            logits = start > 0
                                    ? model.forwardFrom(batch, start,
                                            tile(residPre.get(start).get(new NDIndex(":, {}:", off)), k), kv, last)
                                    : model.forward(batch, kv, last);
                        }
                    } else if (start > 0) {
                        Batch batch = Batch.of(tile(base, k));
                        try (dev.jlens.hook.HookScope hs = model.hooks(((List<Hook>) h).toArray(Hook[]::new))) {
                            logits = model.forwardFrom(batch, start, tile(residPre.get(start), k));
                        }
                    } else if (h instanceof Stage s) {
                        Batch batch = Batch.of(tile(base, k));
                        model.runWithHooks(batch, s.first().toArray(Hook[]::new));
                        logits = s.second().isEmpty() ? null : model.runWithHooks(batch, s.second().toArray(Hook[]::new));
                        if (logits == null) throw new IllegalStateException("a two-stage pass needs second hooks");
                    } else {
                        logits = model.runWithHooks(Batch.of(tile(base, k)), ((List<Hook>) h).toArray(Hook[]::new));
                    }
                    float[] v = metric.perRow(logits, n).toFloatArray();
                    for (int j = 0; j < k; j++) {
                        double sum = 0;
                        for (int i = 0; i < n; i++) sum += v[j * n + i];
                        out[first + j] = sum / n;
                    }
                }
                if (progress != null) progress.step();
                Progress.checkInterrupted(what);
            }
        } finally {
            if (progress != null) progress.close();
            for (KvCache c : prefixes.values()) c.close();
        }
        return out;
    }

    /**
     * Whether {@code hooks} leave the last block's computation after its queries, keys and values alone, so that it
     * may run for the last position only: every hook is in an earlier block or is the last block's {@code resid_pre},
     * {@code q}, {@code k} or {@code v} (which still see every position).
     */
    static boolean lastBlockUntouched(List<Hook> hooks, int nLayers) {
        String last = "blocks." + (nLayers - 1) + ".";
        for (Hook hook : hooks) {
            String n = hook.name();
            if (n.startsWith(last)) {
                if (!(n.endsWith(".hook_resid_pre") || n.endsWith(".hook_q") || n.endsWith(".hook_k")
                        || n.endsWith(".hook_v"))) {
                    return false;
                }
            } else if (!n.startsWith("blocks.") && !n.equals("hook_embed") && !n.equals("hook_pos_embed")) {
                return false;
            }
        }
        return true;
    }

    /** Up to {@code perPass} consecutive blocks a pass ({@code {first, count}}), never two start layers in one. */
    static List<int[]> greedyChunks(int blocks, int perPass, int[] startLayer) {
        List<int[]> chunks = new ArrayList<>();
        for (int first = 0; first < blocks; ) {
            int k = 1;
            while (k < perPass && first + k < blocks
                    && (startLayer == null || startLayer[first + k] == startLayer[first])) {
                k++;
            }
            chunks.add(new int[] {first, k});
            first += k;
        }
        return chunks;
    }

    /**
     * Per-pass fixed cost of one block, in floating-point operations: what a few dozen small operator calls cost
     * (about a millisecond each layer here) expressed as arithmetic at the matmul rate, so that it can be weighed
     * against the arithmetic a pass saves by starting later.
     */
    static final double PASS_OVERHEAD_FLOPS_PER_LAYER = 2e8;

    /**
     * The cheapest split of consecutive blocks into passes when a pass runs only positions from the smallest first
     * change of its blocks, from the start layer of its first block: blocks must come sorted by start layer, then
     * first change. A pass costs, per layer it runs, a fixed overhead plus the arithmetic of its rows times its
     * positions; it holds at most {@code perPass} blocks, and may hold blocks of several start layers (those that
     * start later run the layers below theirs unpatched, which is exact). Found by dynamic programming over the
     * sorted blocks: on small models, where the overhead dominates, a whole sweep can be one pass; on wide ones,
     * starting each pass at its own layer and first change saves more than a pass costs.
     */
    static List<int[]> costChunks(int[] startLayer, int[] fromPos, int prompts, int perPass, int positions,
                                  ModelConfig cfg) {
        int blocks = startLayer.length;
        for (int j = 1; j < blocks; j++) {
            if (startLayer[j] < startLayer[j - 1] || startLayer[j] == startLayer[j - 1] && fromPos[j] < fromPos[j - 1]) {
                throw new IllegalStateException("blocks must be sorted by start layer, then first changed position");
            }
        }
        double perToken = tokenLayerFlops(cfg);
        double[] best = new double[blocks + 1];
        int[] from = new int[blocks + 1];
        for (int i = 1; i <= blocks; i++) {
            best[i] = Double.POSITIVE_INFINITY;
            int minFrom = Integer.MAX_VALUE;
            for (int j = i - 1; j >= Math.max(0, i - perPass); j--) {
                minFrom = Math.min(minFrom, fromPos[j]);
                int layers = cfg.nLayers() - startLayer[j];
                double cost = layers * (PASS_OVERHEAD_FLOPS_PER_LAYER
                        + perToken * (double) (i - j) * prompts * (positions - minFrom));
                if (best[j] + cost < best[i]) {
                    best[i] = best[j] + cost;
                    from[i] = j;
                }
            }
        }
        List<int[]> chunks = new ArrayList<>();
        for (int i = blocks; i > 0; i = from[i]) chunks.add(0, new int[] {from[i], i - from[i]});
        return chunks;
    }

    /** Multiply-adds (x2) of one token through one block's projections and MLP. */
    static double tokenLayerFlops(ModelConfig cfg) {
        double d = cfg.dModel(), attn = (double) cfg.nHeads() * cfg.dHead(), kv = (double) cfg.nKvHeads() * cfg.dHead();
        double mlp = cfg.attnOnly() ? 0 : (cfg.family() == ModelConfig.Family.GPT2 ? 2 : 3) * d * cfg.dMlp();
        return 2 * (d * attn + 2 * d * kv + attn * d + mlp);
    }

    private static long[][] suffix(long[][] x, int from) {
        long[][] out = new long[x.length][];
        for (int i = 0; i < x.length; i++) out[i] = Arrays.copyOfRange(x[i], from, x[i].length);
        return out;
    }

    /** A hook replacing, in each block of rows, the masked entries with {@code source} (one row per prompt). */
    Hook replaceWhere(String hook, NDArray source, boolean[][] blockMasks, long[] maskShape) {
        return Hook.fwd(hook, (act, hp) -> {
            int k = (int) (act.getShape().get(0) / prompts());
            return where(maskArray(act, blockMasks, maskShape), tile(source, k), act);
        });
    }

    /** {@code where(mask, a, b)} with the mask broadcast to {@code b}'s shape (DJL's where does not broadcast). */
    static NDArray where(NDArray mask, NDArray a, NDArray b) {
        Shape s = b.getShape();
        return NDArrays.where(mask.getShape().equals(s) ? mask : mask.broadcast(s),
                a.getShape().equals(s) ? a : a.broadcast(s), b);
    }

    /** The boolean mask {@code [rows, maskShape...]} of blocks (null block = nothing patched). */
    NDArray maskArray(NDArray act, boolean[][] blockMasks, long[] maskShape) {
        int n = prompts();
        int per = (int) size(maskShape);
        int rows = blockMasks.length * n;
        boolean[] full = new boolean[rows * per];
        for (int j = 0; j < blockMasks.length; j++) {
            if (blockMasks[j] == null) continue;
            for (int i = 0; i < n; i++) System.arraycopy(blockMasks[j], 0, full, (j * n + i) * per, per);
        }
        long[] dims = new long[maskShape.length + 1];
        dims[0] = rows;
        System.arraycopy(maskShape, 0, dims, 1, maskShape.length);
        return Tensors.owned(act.getManager().create(full, new Shape(dims)));
    }

    /** The mask of one index: shape {@code [P, 1]} (positions), {@code [P, H, 1]} (heads), {@code [H, P, 1]} (pattern). */
    boolean[] mask(PatchSite site, PatchIndex ix, long[] maskShape) {
        boolean[] m = new boolean[(int) size(maskShape)];
        int p = length();
        if (!site.isHead()) {
            for (int j = 0; j < p; j++) m[j] = ix.pos().isEmpty() || ix.pos().getAsInt() == j;
            return m;
        }
        int heads = (int) (site == PatchSite.PATTERN ? maskShape[0] : maskShape[1]);
        for (int j = 0; j < p; j++) {
            for (int h = 0; h < heads; h++) {
                boolean on = (ix.head().isEmpty() || ix.head().getAsInt() == h)
                        && (ix.pos().isEmpty() || ix.pos().getAsInt() == j);
                m[site == PatchSite.PATTERN ? h * p + j : j * heads + h] = on;
            }
        }
        return m;
    }

    long[] maskShape(PatchSite site, int heads) {
        int p = length();
        if (!site.isHead()) return new long[] {p, 1};
        return site == PatchSite.PATTERN ? new long[] {heads, p, 1} : new long[] {p, heads, 1};
    }

    static long size(long[] shape) {
        long s = 1;
        for (long d : shape) s *= d;
        return s;
    }

    /** {@code x} ({@code [n, ...]}) repeated {@code k} times along the batch. */
    static NDArray tile(NDArray x, int k) {
        if (k == 1) return x;
        long[] reps = new long[x.getShape().dimension()];
        Arrays.fill(reps, 1);
        reps[0] = k;
        return x.tile(reps);
    }

    static long[][] tile(long[][] base, int k) {
        long[][] rows = new long[base.length * k][];
        for (int j = 0; j < k; j++) for (int i = 0; i < base.length; i++) rows[j * base.length + i] = base[i];
        return rows;
    }

    /** The prompts that are patched. */
    long[][] base(Direction d) {
        return d == Direction.DENOISE ? corrupt : clean;
    }

    /** The prompts activations come from. */
    long[][] source(Direction d) {
        return d == Direction.DENOISE ? clean : corrupt;
    }

    /**
     * The replacement activation of {@code hook} for each prompt {@code [n, ...]} (the patched run's shape), from the
     * other run, zero, or the dataset; owned by {@code base}'s manager.
     */
    NDArray sourceActivation(String hook, ActivationCache base, ActivationCache other) {
        NDArray act = base.get(hook);
        Shape shape = act.getShape();
        int n = prompts(), p = length();
        boolean pattern = hook.endsWith("hook_pattern") || hook.endsWith("hook_attn_scores");
        NDArray out;
        if (replacement instanceof Replacement.Other) {
            return other.get(hook);
        } else if (replacement instanceof Replacement.Zero) {
            out = act.zerosLike();
        } else if (replacement instanceof Replacement.Mean mean) {
            long[][] data = mean.dataset();
            boolean perPos = mean.perPosition() || pattern;
            if (perPos && data[0].length < p) {
                throw new IllegalArgumentException("a per-position mean needs dataset sequences of at least " + p
                        + " tokens (the prompts' length), got " + data[0].length);
            }
            try (ActivationCache ds = model.runWithCache(data, filter(List.of(hook)));
                 NDScope scope = new NDScope()) {
                NDArray d = crop(ds.get(hook), pattern, p);
                NDArray m = perPos ? d.mean(new int[] {0}, true) : d.mean(new int[] {0}, true).mean(new int[] {1}, true);
                out = m.broadcast(shape).duplicate();
                NDScope.unregister(out);
                out.attach(base.manager());
            }
        } else {
            Replacement.Resample r = (Replacement.Resample) replacement;
            long[][] data = r.dataset();
            if (data[0].length < p) {
                throw new IllegalArgumentException("resampling needs dataset sequences of at least " + p
                        + " tokens (the prompts' length), got " + data[0].length);
            }
            int[] rows = Ablate.resampleRows(n, data.length, r.seed());
            long[][] picked = new long[n][];
            for (int i = 0; i < n; i++) picked[i] = Arrays.copyOf(data[rows[i]], p);
            try (ActivationCache ds = model.runWithCache(picked, filter(List.of(hook)))) {
                out = ds.get(hook).duplicate();
                out.attach(base.manager());
            }
        }
        return out;
    }

    private static NDArray crop(NDArray x, boolean pattern, int p) {
        return pattern ? x.get(new NDIndex(":, :, :{}, :{}", p, p)) : x.get(new NDIndex(":, :{}", p));
    }

    /** The hook of {@code site} at {@code layer}, or an error naming the sites this model has. */
    String hookName(PatchSite site, int layer) {
        checkLayer(layer);
        String full = dev.jlens.hook.HookNames.actName(site.shortName(), layer);
        if (!model.hookNames().contains(full)) {
            List<String> valid = new ArrayList<>();
            for (PatchSite s : PatchSite.values()) {
                if (model.hookNames().contains(dev.jlens.hook.HookNames.actName(s.shortName(), 0))) {
                    valid.add(s.shortName());
                }
            }
            throw new IllegalArgumentException("this model has no " + site + " site (no hook '" + full + "'"
                    + (model.cfg().attnOnly() ? "; it is attention-only" : "") + "): valid sites are "
                    + String.join(", ", valid));
        }
        return full;
    }

    void checkLayer(int layer) {
        int n = model.nLayers();
        if (layer < 0 || layer >= n) {
            throw new IllegalArgumentException("layer " + layer + " is out of range: valid layers are 0.." + (n - 1));
        }
    }

    private int checkIndex(PatchSite site, PatchIndex ix) {
        checkLayer(ix.layer());
        if (ix.pos().isPresent() && (ix.pos().getAsInt() < 0 || ix.pos().getAsInt() >= length())) {
            throw new IllegalArgumentException("position " + ix.pos().getAsInt() + " is out of range: valid "
                    + "positions are 0.." + (length() - 1));
        }
        if (ix.head().isPresent() && !site.isHead()) {
            throw new IllegalArgumentException(site + " has no heads: give a layer and a position");
        }
        return ix.layer();
    }

    /** Every index of a site, layer-major. */
    List<PatchIndex> indices(PatchSite site, boolean byPosition, boolean wholeLayers) {
        int heads = site.isHead() ? headCount(site) : 0;
        List<PatchIndex> out = new ArrayList<>();
        for (int l = 0; l < model.nLayers(); l++) {
            hookName(site, l);
            if (wholeLayers) {
                out.add(new PatchIndex(l, OptionalInt.empty(), OptionalInt.empty()));
            } else if (!site.isHead()) {
                for (int p = 0; p < length(); p++) out.add(PatchIndex.position(l, p));
            } else {
                for (int h = 0; h < heads; h++) {
                    if (byPosition) {
                        for (int p = 0; p < length(); p++) out.add(PatchIndex.headAt(l, h, p));
                    } else {
                        out.add(PatchIndex.head(l, h));
                    }
                }
            }
        }
        return out;
    }

    /** Heads of a head site (kv heads for k and v under grouped-query attention). */
    int headCount(PatchSite site) {
        return site == PatchSite.K || site == PatchSite.V ? model.cfg().nKvHeads() : model.cfg().nHeads();
    }

    static NameFilter filter(java.util.Collection<String> names) {
        return NameFilter.of(new LinkedHashSet<>(names).toArray(String[]::new));
    }

    /** The first prompt's tokens as strings (ids when the model has no tokenizer). */
    List<String> strTokens(long[] ids) {
        if (model.tokenizer().isPresent()) return model.toStrTokens(ids);
        return Arrays.stream(ids).mapToObj(Long::toString).toList();
    }

    /** The clean and corrupt metrics from two runs' caches, if not known yet (saves two forward passes). */
    void rememberBaseMetrics(Direction d, ActivationCache base, ActivationCache other) {
        if (baseMetrics != null) return;
        double b = mean(base.logits()), o = mean(other.logits());
        baseMetrics = d == Direction.DENOISE ? new double[] {o, b} : new double[] {b, o};
    }

    private double[] baseMetrics() {
        if (baseMetrics == null) {
            try (NDScope scope = new NDScope()) {
                baseMetrics = new double[] {mean(model.forward(clean)), mean(model.forward(corrupt))};
            }
        }
        return baseMetrics;
    }

    /** The metric of a run's logits, averaged over its prompts. */
    double mean(NDArray logits) {
        float[] v = metric.perRow(logits, prompts()).toFloatArray();
        double s = 0;
        for (float x : v) s += x;
        return s / v.length;
    }

    private static long[][] copy(long[][] x, String what) {
        if (x == null || x.length == 0) {
            throw new IllegalArgumentException("no " + what + " prompts: give at least one token sequence");
        }
        int len = x[0].length;
        if (len == 0) throw new IllegalArgumentException(what + " prompt 0 is empty");
        long[][] out = new long[x.length][];
        for (int i = 0; i < x.length; i++) {
            if (x[i].length != len) {
                throw new IllegalArgumentException(what + " prompts must have one length: prompt 0 has " + len
                        + " tokens, prompt " + i + " has " + x[i].length);
            }
            out[i] = x[i].clone();
        }
        return out;
    }

    private static void checkIds(long[][] x, String what, int vocab) {
        for (int r = 0; r < x.length; r++) {
            for (int j = 0; j < x[r].length; j++) {
                if (x[r][j] < 0 || x[r][j] >= vocab) {
                    throw new IllegalArgumentException(what + " token id " + x[r][j] + " at prompt " + r
                            + ", position " + j + " is outside the vocabulary: valid ids are 0.." + (vocab - 1)
                            + " (d_vocab = " + vocab + ")");
                }
            }
        }
    }

    @Override
    public String toString() {
        return "Patching(" + prompts() + " prompt pairs of " + length() + " tokens, " + metric.name() + ", "
                + replacement.label() + ")";
    }
}
