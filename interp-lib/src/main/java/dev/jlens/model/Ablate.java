package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.util.Tensors;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.stream.Collectors;

/**
 * Ablation hooks in one line: pick what to knock out (attention heads, MLP neurons or positions), then what to put
 * in its place (zeros, a mean, or values resampled from other inputs).
 *
 * <pre>{@code
 * model.runWithHooks(batch, Ablate.heads(1, 0, 3).zero());                       // heads 1.0 and 1.3 output zeros
 * model.runWithHooks(batch, Ablate.neurons(2, 17, 40).mean(refCache));           // neurons 17, 40 of layer 2
 * model.runWithHooks(batch, Ablate.positions("blocks.0.hook_resid_pre", 3).resample(refCache, 0));
 * model.runWithHooks(batch, Ablate.heads(0, 1).and(2, 5).zero());                // several layers: a Hook[]
 * }</pre>
 *
 * <p>What is replaced:
 * <ul>
 *   <li>{@link #heads}: heads of {@code blocks.L.attn.hook_z} {@code [batch, pos, head, d_head]}, the heads' outputs
 *       before the output projection {@code W_O} (the attention bias {@code b_O} is shared by all heads and stays).</li>
 *   <li>{@link #neurons}: neurons of {@code blocks.L.mlp.hook_post} {@code [batch, pos, d_mlp]}.</li>
 *   <li>{@link #positions}: whole positions (axis 1) of any activation whose axis 1 is the position, e.g.
 *       {@code blocks.L.hook_resid_pre} {@code [batch, pos, d_model]}; negative positions count from the end.</li>
 * </ul>
 *
 * <p>What goes in its place:
 * <ul>
 *   <li>{@link Site#zero()}: zeros.</li>
 *   <li>{@link Site#mean(ActivationCache)} (the default mean): the reference activation averaged over batch
 *       <em>and</em> position, one vector per head/neuron/position axis entry, the same at every position. The
 *       reference may have any batch size and sequence length.</li>
 *   <li>{@link Site#meanPerPosition(ActivationCache)}: the reference averaged over the batch only, position by
 *       position (what TransformerLens tutorials mostly do, e.g. over a dataset of one template); the reference
 *       must have the ablated run's sequence length.</li>
 *   <li>{@link Site#resample(ActivationCache, long)}: the values of other inputs: batch row {@code b} takes
 *       reference row {@link #resampleRows(int, int, long) rows[b]}, a seeded permutation of the reference rows
 *       (cycled when the batch has more rows than the reference). Pass a reference from <em>different</em>
 *       inputs: with the batch itself a row may be mapped onto itself. The reference must have the ablated run's
 *       sequence length.</li>
 * </ul>
 * A reference is an {@link ActivationCache} holding the site's hook (it must stay open while the hook is used) or
 * the reference activation itself. Indices and the reference's shape are checked when the hook runs, against the
 * activation it sees; mistakes are {@link IllegalArgumentException}s naming the valid range or shape.
 */
public final class Ablate {

    private Ablate() {}

    /** What a site replaces, and along which axis of its activation. */
    private enum Kind {
        HEADS("head", "heads", 2, 4), NEURONS("neuron", "neurons", 2, 3), POSITIONS("position", "positions", 1, -1);

        final String one;
        final String many;
        final int axis;
        final int rank;   // required rank, or -1 for any rank >= 2

        Kind(String one, String many, int axis, int rank) {
            this.one = one;
            this.many = many;
            this.axis = axis;
            this.rank = rank;
        }
    }

    private enum Mode { ZERO, MEAN, MEAN_PER_POSITION, RESAMPLE }

    /** Heads {@code heads} of layer {@code layer}, at {@code blocks.LAYER.attn.hook_z}. */
    public static Site heads(int layer, int... heads) {
        return new Site(Kind.HEADS, "blocks." + checkLayer(layer) + ".attn.hook_z", heads);
    }

    /** MLP neurons {@code neurons} of layer {@code layer}, at {@code blocks.LAYER.mlp.hook_post}. */
    public static Site neurons(int layer, int... neurons) {
        return new Site(Kind.NEURONS, "blocks." + checkLayer(layer) + ".mlp.hook_post", neurons);
    }

    /**
     * Positions {@code positions} (negative ones count from the end) of the activation at {@code hookName}, whose
     * axis 1 must be the position: residual streams, {@code hook_z}, {@code hook_q}, MLP activations and so on,
     * not attention patterns or scores ({@code [batch, head, q, k]}).
     */
    public static Site positions(String hookName, int... positions) {
        Objects.requireNonNull(hookName, "hookName");
        if (hookName.endsWith("hook_pattern") || hookName.endsWith("hook_attn_scores")) {
            throw new IllegalArgumentException("Ablate.positions: axis 1 of " + hookName + " is the head, not the "
                    + "position ([batch, head, q_pos, k_pos]); ablate positions of hook_z, hook_resid_pre or another "
                    + "[batch, pos, ...] activation");
        }
        return new Site(Kind.POSITIONS, hookName, positions);
    }

    /**
     * The reference rows that {@link Site#resample} gives to each of {@code batch} rows: a permutation of
     * {@code 0..refRows-1} drawn from {@code seed}, cycled when {@code batch > refRows}.
     */
    public static int[] resampleRows(int batch, int refRows, long seed) {
        if (batch < 0 || refRows < 1) {
            throw new IllegalArgumentException("resampling " + batch + " rows needs a reference with at least one "
                    + "row, got " + refRows);
        }
        int[] perm = new int[refRows];
        for (int i = 0; i < refRows; i++) perm[i] = i;
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = refRows - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int[] rows = new int[batch];
        for (int b = 0; b < batch; b++) rows[b] = perm[b % refRows];
        return rows;
    }

    private static int checkLayer(int layer) {
        if (layer < 0) throw new IllegalArgumentException("layer must be >= 0, got " + layer);
        return layer;
    }

    /** Heads, neurons or positions at one hook point; its methods make the hook that ablates them. */
    public static final class Site {
        private final Kind kind;
        private final String hookName;
        private final int[] indices;

        private Site(Kind kind, String hookName, int[] indices) {
            if (indices == null || indices.length == 0) {
                throw new IllegalArgumentException("Ablate." + kind.many + ": name at least one " + kind.one
                        + " to ablate at " + hookName);
            }
            for (int i : indices) {
                if (i < 0 && kind != Kind.POSITIONS) {
                    throw new IllegalArgumentException("Ablate." + kind.many + ": " + kind.one + " " + i + " is "
                            + "negative; " + kind.many + " are numbered from 0");
                }
            }
            this.kind = kind;
            this.hookName = hookName;
            this.indices = Arrays.stream(indices).distinct().toArray();
        }

        /** The hook point this site ablates, e.g. {@code blocks.1.attn.hook_z}. */
        public String hookName() {
            return hookName;
        }

        /** The ablated heads, neurons or positions (as given, without repeats). */
        public int[] indices() {
            return indices.clone();
        }

        /** A hook that replaces the site with zeros. */
        public Hook zero() {
            return hook(Mode.ZERO, null, 0);
        }

        /** A hook that replaces the site with its mean over batch and position in {@code reference}'s run. */
        public Hook mean(ActivationCache reference) {
            return hook(Mode.MEAN, fromCache(reference), 0);
        }

        /** A hook that replaces the site with {@code reference} ({@code [batch', pos', ...]}) averaged over batch and position. */
        public Hook mean(NDArray reference) {
            return hook(Mode.MEAN, Objects.requireNonNull(reference, "reference"), 0);
        }

        /** A hook that replaces the site at each position with its batch mean at that position in {@code reference}'s run. */
        public Hook meanPerPosition(ActivationCache reference) {
            return hook(Mode.MEAN_PER_POSITION, fromCache(reference), 0);
        }

        /** A hook that replaces the site at each position with {@code reference}'s batch mean at that position. */
        public Hook meanPerPosition(NDArray reference) {
            return hook(Mode.MEAN_PER_POSITION, Objects.requireNonNull(reference, "reference"), 0);
        }

        /**
         * A hook that replaces the site in batch row {@code b} with its value in row
         * {@code resampleRows(batch, refRows, seed)[b]} of {@code reference}'s run (other inputs).
         */
        public Hook resample(ActivationCache reference, long seed) {
            return hook(Mode.RESAMPLE, fromCache(reference), seed);
        }

        /** As {@link #resample(ActivationCache, long)} from the reference activation itself. */
        public Hook resample(NDArray reference, long seed) {
            return hook(Mode.RESAMPLE, Objects.requireNonNull(reference, "reference"), seed);
        }

        /** This site and the same kind of site in another layer: {@code Ablate.heads(0, 1).and(2, 5)}. */
        public Sites and(int layer, int... more) {
            Site other = switch (kind) {
                case HEADS -> heads(layer, more);
                case NEURONS -> neurons(layer, more);
                case POSITIONS -> throw new IllegalArgumentException("positions are ablated at a named hook: use "
                        + ".and(Ablate.positions(hookName, ...))");
            };
            return new Sites(List.of(this, other));
        }

        /** This site and others, ablated together. */
        public Sites and(Site... more) {
            List<Site> all = new ArrayList<>();
            all.add(this);
            all.addAll(Arrays.asList(more));
            return new Sites(all);
        }

        private NDArray fromCache(ActivationCache cache) {
            Objects.requireNonNull(cache, "reference");
            if (!cache.contains(hookName)) {
                throw new IllegalArgumentException("the reference cache holds no '" + hookName + "' (it holds "
                        + cache.size() + " activations); record it, e.g. runWithCache(ids, NameFilter.of(\""
                        + hookName + "\"))");
            }
            return cache.get(hookName);
        }

        private Hook hook(Mode mode, NDArray reference, long seed) {
            return Hook.fwd(hookName, (act, hp) -> apply(act, mode, reference, seed));
        }

        private NDArray apply(NDArray act, Mode mode, NDArray reference, long seed) {
            long[] shape = act.getShape().getShape();
            if (kind.rank > 0 ? shape.length != kind.rank : shape.length < 2) {
                throw new IllegalArgumentException("Ablate." + kind.many + " at " + hookName + " expects "
                        + (kind == Kind.HEADS ? "[batch, pos, head, d_head]" : kind == Kind.NEURONS
                        ? "[batch, pos, d_mlp]" : "[batch, pos, ...]") + " but the activation has shape "
                        + act.getShape());
            }
            int n = (int) shape[kind.axis];
            int[] at = resolve(n);
            NDManager m = act.getManager();
            boolean[] selected = new boolean[n];
            for (int i : at) selected[i] = true;
            long[] maskShape = new long[shape.length];
            Arrays.fill(maskShape, 1);
            maskShape[kind.axis] = n;
            NDArray mask = Tensors.owned(m.create(selected, new Shape(maskShape)));
            NDArray replacement = switch (mode) {
                case ZERO -> m.zeros(new Shape(), act.getDataType(), act.getDevice());
                // (PyTorch's DJL binding reduces one axis at a time; equal group sizes keep this the overall mean)
                case MEAN -> reference(reference, act, false).mean(new int[] {0}).mean(new int[] {0});
                case MEAN_PER_POSITION -> reference(reference, act, true).mean(new int[] {0});
                case RESAMPLE -> {
                    NDArray ref = reference(reference, act, true);
                    int[] rows = resampleRows((int) shape[0], (int) ref.getShape().get(0), seed);
                    NDList picked = new NDList(rows.length);
                    for (int r : rows) picked.add(ref.get(r));
                    yield NDArrays.stack(picked);
                }
            };
            if (replacement.getDataType() != act.getDataType()) {
                replacement = replacement.toType(act.getDataType(), false);
            }
            // DJL's where() does not broadcast: bring the mask and the replacement to the activation's shape
            Shape full = act.getShape();
            return NDArrays.where(mask.broadcast(full), replacement.broadcast(full), act);
        }

        /** The indices checked against the size {@code n} the activation has along the site's axis. */
        private int[] resolve(int n) {
            int[] at = new int[indices.length];
            for (int k = 0; k < indices.length; k++) {
                int i = indices[k];
                int r = kind == Kind.POSITIONS && i < 0 ? i + n : i;
                if (r < 0 || r >= n) {
                    String valid = n == 0 ? "there are none" : "valid " + kind.many + " are 0.." + (n - 1)
                            + (kind == Kind.POSITIONS ? " (or -" + n + "..-1 counting from the end)" : "");
                    throw new IllegalArgumentException("Ablate." + kind.many + ": " + kind.one + " " + i
                            + " is out of range at " + hookName + ", which has " + n + " " + kind.many
                            + (kind == Kind.POSITIONS ? " in this run" : "") + "; " + valid);
                }
                at[k] = r;
            }
            return at;
        }

        /** The reference on the activation's device, its shape checked against the activation's. */
        private NDArray reference(NDArray ref, NDArray act, boolean samePositions) {
            if (ref.isReleased()) {
                throw new IllegalStateException("the reference activation for " + hookName + " has been closed "
                        + "(was its cache closed before this run?)");
            }
            long[] r = ref.getShape().getShape();
            long[] a = act.getShape().getShape();
            boolean ok = r.length == a.length && r[0] > 0 && (!samePositions || r[1] == a[1]);
            for (int i = 2; ok && i < a.length; i++) ok = r[i] == a[i];
            if (!ok) {
                String need = samePositions
                        ? "the same shape except the batch (here [*, " + tail(a, 1) + "])"
                        : "the same shape after batch and position (here [*, *, " + tail(a, 2) + "])";
                throw new IllegalArgumentException("the reference for " + hookName + " has shape " + ref.getShape()
                        + " but the activation is " + act.getShape() + "; a reference for this ablation needs "
                        + need + (r.length > 0 && r[0] == 0 ? " and at least one row" : ""));
            }
            return ref.getDevice().equals(act.getDevice()) ? ref : ref.toDevice(act.getDevice(), false);
        }

        private static String tail(long[] s, int from) {
            return Arrays.stream(s).skip(from).mapToObj(Long::toString).collect(Collectors.joining(", "));
        }

        @Override
        public String toString() {
            return kind.many + " " + Arrays.stream(indices).mapToObj(Integer::toString)
                    .collect(Collectors.joining(", ")) + " at " + hookName;
        }
    }

    /** Several sites ablated together (e.g. heads in several layers); each method gives one hook per site. */
    public static final class Sites {
        private final List<Site> sites;

        private Sites(List<Site> sites) {
            for (Site s : sites) Objects.requireNonNull(s, "site");
            this.sites = List.copyOf(sites);
        }

        /** The sites, in order. */
        public List<Site> sites() {
            return sites;
        }

        /** These sites and the same kind of site as the last one in another layer. */
        public Sites and(int layer, int... more) {
            List<Site> all = new ArrayList<>(sites);
            all.add(sites.get(sites.size() - 1).and(layer, more).sites().get(1));
            return new Sites(all);
        }

        /** These sites and others. */
        public Sites and(Site... more) {
            List<Site> all = new ArrayList<>(sites);
            all.addAll(Arrays.asList(more));
            return new Sites(all);
        }

        /** {@link Site#zero()} of each site. */
        public Hook[] zero() {
            return sites.stream().map(Site::zero).toArray(Hook[]::new);
        }

        /** {@link Site#mean(ActivationCache)} of each site, from one reference run. */
        public Hook[] mean(ActivationCache reference) {
            return sites.stream().map(s -> s.mean(reference)).toArray(Hook[]::new);
        }

        /** {@link Site#meanPerPosition(ActivationCache)} of each site, from one reference run. */
        public Hook[] meanPerPosition(ActivationCache reference) {
            return sites.stream().map(s -> s.meanPerPosition(reference)).toArray(Hook[]::new);
        }

        /** {@link Site#resample(ActivationCache, long)} of each site: every site takes the same reference rows. */
        public Hook[] resample(ActivationCache reference, long seed) {
            return sites.stream().map(s -> s.resample(reference, seed)).toArray(Hook[]::new);
        }

        @Override
        public String toString() {
            return sites.stream().map(Site::toString).collect(Collectors.joining("; "));
        }
    }
}
