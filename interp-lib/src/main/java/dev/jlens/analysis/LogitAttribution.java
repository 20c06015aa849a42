package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.notebook.Display;
import dev.jlens.notebook.HtmlRenderable;
import dev.jlens.util.Names;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.internal.chartpart.Chart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * Direct logit attribution (DLA), as TransformerLens computes it: how much each part of the model writes, straight
 * into the residual stream, along a logit direction at one position. Parts are the residual stream's components
 * ({@code embed}, {@code pos_embed}, each {@code L_attn_out} and {@code L_mlp_out}: {@link #components}), each head
 * ({@code L0H3}: {@link #heads}) and each MLP neuron ({@code L1N117}: {@link #neurons}). The direction is an answer
 * token's logit or the difference of two ({@link Direction}), one for the whole batch or one per batch row.
 *
 * <p>Every part is divided by the final norm's scale cached for the run ({@code ln_final.hook_scale}), after centring
 * for LayerNorm models, with the norm's weight applied, as {@link ActivationCache#applyLnToStack} and
 * {@link ActivationCache#logitAttribution(NDArray, int, long...)} do (this is what it calls for components and heads).
 * With the scale frozen the model is linear from the residual to the logits, so the components add up exactly:
 * {@code sum(components) + constant == logit (difference)}, where {@link Result#constant()} is the final norm's bias
 * and the unembedding bias along the direction. Heads add up to their layer's {@code attn_out} less the output bias
 * {@code b_O}, and one layer's neurons to its {@code mlp_out} less {@code b_out}.
 *
 * <p>Values are means over the batch rows. The cache must hold what each part needs: run with
 * {@code NameFilter.all()}, or select {@code embed, pos_embed, attn_out, mlp_out} (components), {@code z} or
 * {@code result} (heads), {@code post} (neurons), and always {@code ln_final.hook_scale}.
 *
 * <pre>{@code
 * try (var cache = model.runWithCache(tokens)) {
 *     var dir = LogitAttribution.Direction.difference(model, " Paris", " London");
 *     LogitAttribution.heads(model, cache, dir).heatmap();                    // layer x head
 *     LogitAttribution.components(model, cache, dir).bar();
 *     LogitAttribution.neurons(model, cache, 2, dir).top(10).toTable();
 * }
 * }</pre>
 */
public final class LogitAttribution {
    private LogitAttribution() {}

    /**
     * A logit direction: the logit of {@code tokens}, less the logit of {@code against} if given. Each array holds
     * one token for every batch row, or one per row.
     *
     * @param name    a label for titles, e.g. {@code "logit(Paris) - logit(London)"}
     * @param tokens  the answer token(s)
     * @param against the token(s) whose logit is subtracted; empty for a plain logit
     */
    public record Direction(String name, long[] tokens, long[] against) {
        /** Checks the sizes and copies the arrays. */
        public Direction {
            Objects.requireNonNull(name, "name");
            if (tokens.length == 0) throw new IllegalArgumentException("a direction needs at least one answer token");
            if (against.length != 0 && against.length != tokens.length) {
                throw new IllegalArgumentException("a logit difference needs as many wrong tokens as answer tokens: "
                        + tokens.length + " vs " + against.length);
            }
            tokens = tokens.clone();
            against = against.clone();
        }

        /** The answer tokens (a copy). */
        @Override
        public long[] tokens() {
            return tokens.clone();
        }

        /** The subtracted tokens (a copy; empty for a plain logit). */
        @Override
        public long[] against() {
            return against.clone();
        }

        /** True for a logit difference. */
        public boolean isDifference() {
            return against.length > 0;
        }

        /** The logit of {@code token}, or of one token per batch row. */
        public static Direction logit(long... tokens) {
            return new Direction("logit " + Arrays.toString(tokens), tokens, new long[0]);
        }

        /** The logit difference {@code logit(correct) - logit(wrong)}. */
        public static Direction difference(long correct, long wrong) {
            return new Direction("logit(" + correct + ") - logit(" + wrong + ")", new long[] {correct},
                    new long[] {wrong});
        }

        /** One logit difference per batch row. */
        public static Direction difference(long[] correct, long[] wrong) {
            return new Direction("logit difference", correct, wrong);
        }

        /** The logit of a token written as text ({@link HookedTransformer#toSingleToken}, or {@code "#17"}). */
        public static Direction logit(HookedTransformer model, String token) {
            return new Direction("logit(" + token.strip() + ")",
                    new long[] {CircuitMatrices.tokenIdOf(model, token)}, new long[0]);
        }

        /** The logit difference of two tokens written as text. */
        public static Direction difference(HookedTransformer model, String correct, String wrong) {
            return new Direction("logit(" + correct.strip() + ") - logit(" + wrong.strip() + ")",
                    new long[] {CircuitMatrices.tokenIdOf(model, correct)},
                    new long[] {CircuitMatrices.tokenIdOf(model, wrong)});
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** What an entry attributes. */
    public enum Kind { EMBED, POS_EMBED, ATTN, MLP, HEAD, NEURON }

    /** How a result's entries are ordered. */
    public enum Order {
        /** Forward order (embeddings, then layer by layer). */
        MODEL,
        /** Largest value first. */
        DESCENDING,
        /** Smallest (most negative) value first. */
        ASCENDING,
        /** Largest absolute value first. */
        MAGNITUDE
    }

    /**
     * One part's direct contribution.
     *
     * @param label {@code embed}, {@code pos_embed}, {@code 0_attn_out}, {@code 1_mlp_out}, {@code L0H3},
     *              {@code L1N117}
     * @param layer the block, for all but the embeddings
     * @param index the head or neuron, for those
     * @param value the contribution to the logit (difference), mean over batch rows
     */
    public record Entry(String label, Kind kind, OptionalInt layer, OptionalInt index, double value) {}

    /**
     * A direct logit attribution.
     *
     * @param title     what was attributed, e.g. {@code "DLA per head: logit(Paris) - logit(London) at position -1"}
     * @param direction the logit direction
     * @param position  the position read (as given: -1 is the last)
     * @param entries   one per part, in forward order unless sorted
     * @param constant  what no part writes: the final norm's bias and the unembedding bias along the direction
     * @param logit     the model's logit (difference) at the position, mean over rows, where the cache holds logits
     */
    public record Result(String title, Direction direction, int position, List<Entry> entries, double constant,
                         OptionalDouble logit) implements HtmlRenderable {
        /** Copies the entries. */
        public Result {
            entries = List.copyOf(entries);
        }

        /** Labels, in this result's order. */
        public List<String> labels() {
            return entries.stream().map(Entry::label).toList();
        }

        /** Values, in this result's order. */
        public double[] values() {
            return entries.stream().mapToDouble(Entry::value).toArray();
        }

        /** The value of one part by label; an unknown label throws naming the nearest. */
        public double value(String label) {
            for (Entry e : entries) if (e.label().equals(label)) return e.value();
            throw new IllegalArgumentException("no entry '" + label + "' in this attribution; nearest: "
                    + Names.nearest(label, labels(), 5));
        }

        /** The sum of the entries' values. */
        public double sum() {
            return Arrays.stream(values()).sum();
        }

        /**
         * {@link #sum()} plus {@link #constant()}: for {@link #components} this is the logit (difference) itself, up
         * to float error.
         */
        public double total() {
            return sum() + constant;
        }

        /** The entries in another order. */
        public Result sorted(Order order) {
            List<Entry> list = new ArrayList<>(entries);
            Comparator<Entry> c = switch (order) {
                case MODEL -> null;
                case DESCENDING -> Comparator.comparingDouble(Entry::value).reversed();
                case ASCENDING -> Comparator.comparingDouble(Entry::value);
                case MAGNITUDE -> Comparator.comparingDouble((Entry e) -> Math.abs(e.value())).reversed();
            };
            if (c == null) {
                list.sort(Comparator.comparingInt((Entry e) -> e.layer().orElse(-1))
                        .thenComparingInt(e -> e.kind().ordinal() <= Kind.POS_EMBED.ordinal() ? e.kind().ordinal()
                                : e.kind() == Kind.MLP ? 3 : 2)
                        .thenComparingInt(e -> e.index().orElse(-1)));
            } else {
                list.sort(c);
            }
            return new Result(title, direction, position, list, constant, logit);
        }

        /** The {@code k} parts with the largest absolute value, largest first. */
        public Result top(int k) {
            return top(k, Order.MAGNITUDE);
        }

        /** The first {@code k} parts in {@code order}. */
        public Result top(int k, Order order) {
            if (k < 0) throw new IllegalArgumentException("k must be >= 0, got " + k);
            List<Entry> sorted = sorted(order).entries();
            return new Result(title, direction, position, sorted.subList(0, Math.min(k, sorted.size())), constant,
                    logit);
        }

        /** One row per part: {@code label}, {@code layer}, {@code index} (head or neuron; missing otherwise), value. */
        public Table toTable() {
            StringColumn label = StringColumn.create("label");
            IntColumn layer = IntColumn.create("layer"), index = IntColumn.create("index");
            DoubleColumn value = DoubleColumn.create("dla");
            for (Entry e : entries) {
                label.append(e.label());
                if (e.layer().isPresent()) layer.append(e.layer().getAsInt()); else layer.appendMissing();
                if (e.index().isPresent()) index.append(e.index().getAsInt()); else index.appendMissing();
                value.append(e.value());
            }
            return Table.create(title, label, layer, index, value);
        }

        /** {@link #toTable()} in {@code order}. */
        public Table toTable(Order order) {
            return sorted(order).toTable();
        }

        /** A bar chart of the entries, in this result's order. */
        public CategoryChart bar() {
            if (entries.isEmpty()) throw new IllegalStateException("this attribution has no entries to plot");
            return Plots.bar(title, labels(), values());
        }

        /**
         * A layer x head heatmap of a per-head attribution ({@link #heads}); the result must hold every head (not a
         * {@link #top} of it). Other kinds throw: use {@link #bar()}.
         */
        public HeatMapChart heatmap() {
            if (entries.isEmpty() || entries.stream().anyMatch(e -> e.kind() != Kind.HEAD)) {
                throw new IllegalStateException("heatmap() is for per-head attributions (LogitAttribution.heads); "
                        + "this one holds " + entries.stream().map(Entry::kind).distinct().toList() + ": use bar()");
            }
            int layers = entries.stream().mapToInt(e -> e.layer().getAsInt()).max().getAsInt() + 1;
            int heads = entries.stream().mapToInt(e -> e.index().getAsInt()).max().getAsInt() + 1;
            if (entries.size() != layers * heads) {
                throw new IllegalStateException("heatmap() needs every head; this result holds " + entries.size()
                        + " of " + layers * heads + " (a top(k)?): use bar(), or the full result");
            }
            double[][] v = new double[layers][heads];
            for (Entry e : entries) v[e.layer().getAsInt()][e.index().getAsInt()] = e.value();
            List<String> rows = new ArrayList<>(), cols = new ArrayList<>();
            for (int l = 0; l < layers; l++) rows.add("layer " + l);
            for (int h = 0; h < heads; h++) cols.add("H" + h);
            return Plots.heatmap(title, v, rows, cols, "head", "layer");
        }

        /** The natural chart: the heatmap for every head, else the bar chart. */
        public Chart<?, ?> plot() {
            boolean allHeads = !entries.isEmpty() && entries.stream().allMatch(e -> e.kind() == Kind.HEAD);
            if (allHeads) {
                try {
                    return heatmap();
                } catch (IllegalStateException partial) {
                    return bar();
                }
            }
            return bar();
        }

        @Override
        public String toHtml() {
            return Display.render(toTable()).get(Display.HTML);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%s: %d entries, sum %.4f + constant %.4f = %.4f%s", title,
                    entries.size(), sum(), constant, total(),
                    logit.isPresent() ? String.format(Locale.ROOT, " (model: %.4f)", logit.getAsDouble()) : "");
        }
    }

    // ------------------------------------------------------------------ components

    /** DLA of the residual stream's components at the last position. */
    public static Result components(HookedTransformer model, ActivationCache cache, Direction direction) {
        return components(model, cache, direction, -1);
    }

    /**
     * DLA of the residual stream's components ({@link ActivationCache#decomposeResid()}: {@code embed},
     * {@code pos_embed}, {@code L_attn_out}, {@code L_mlp_out}) at {@code position} (negative counts from the end).
     * Their {@link Result#total()} is the logit (difference).
     */
    public static Result components(HookedTransformer model, ActivationCache cache, Direction direction,
                                    int position) {
        check(model, direction);
        List<String> labels = cache.decomposeResidLabels();
        double[] values = attribute(cache, direction, position, cache::decomposeResid);
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < labels.size(); i++) {
            String label = labels.get(i);
            Kind kind;
            OptionalInt layer = OptionalInt.empty();
            if (label.equals("embed")) {
                kind = Kind.EMBED;
            } else if (label.equals("pos_embed")) {
                kind = Kind.POS_EMBED;
            } else {
                int us = label.indexOf('_');
                layer = OptionalInt.of(Integer.parseInt(label.substring(0, us)));
                kind = label.endsWith("attn_out") ? Kind.ATTN : Kind.MLP;
            }
            entries.add(new Entry(label, kind, layer, OptionalInt.empty(), values[i]));
        }
        return result("DLA per component", model, cache, direction, position, entries);
    }

    // ------------------------------------------------------------------ heads

    /** DLA of every head at the last position. */
    public static Result heads(HookedTransformer model, ActivationCache cache, Direction direction) {
        return heads(model, cache, direction, -1);
    }

    /**
     * DLA of every head ({@link ActivationCache#stackHeadResults()}, labels {@code L0H0, L0H1, ...}) at
     * {@code position}. A layer's heads add up to its {@code attn_out} entry less the output bias's share.
     */
    public static Result heads(HookedTransformer model, ActivationCache cache, Direction direction, int position) {
        check(model, direction);
        double[] values = attribute(cache, direction, position, cache::stackHeadResults);
        int nHeads = model.cfg().nHeads();
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < values.length; i++) {
            int l = i / nHeads, h = i % nHeads;
            entries.add(new Entry("L" + l + "H" + h, Kind.HEAD, OptionalInt.of(l), OptionalInt.of(h), values[i]));
        }
        return result("DLA per head", model, cache, direction, position, entries);
    }

    // ------------------------------------------------------------------ neurons

    /** DLA of every MLP neuron of every layer at the last position. */
    public static Result neurons(HookedTransformer model, ActivationCache cache, Direction direction) {
        return neurons(model, cache, direction, -1);
    }

    /** DLA of every MLP neuron of every layer at {@code position} (labels {@code L0N0, L0N1, ...}). */
    public static Result neurons(HookedTransformer model, ActivationCache cache, Direction direction, int position) {
        check(model, direction);
        requireMlp(model);
        List<Entry> entries = new ArrayList<>();
        for (int l = 0; l < model.nLayers(); l++) entries.addAll(neuronEntries(model, cache, l, direction, position));
        return result("DLA per neuron", model, cache, direction, position, entries);
    }

    /** DLA of the neurons of one layer at the last position. */
    public static Result neurons(HookedTransformer model, ActivationCache cache, int layer, Direction direction) {
        return neurons(model, cache, layer, direction, -1);
    }

    /**
     * DLA of the MLP neurons of one layer at {@code position}: neuron {@code n} writes {@code post[n] * W_out[n]}
     * ({@code mlp.hook_post} times row {@code n} of {@code W_out}), scaled like every other part. They add up to the
     * layer's {@code mlp_out} entry less the share of {@code b_out}. Layers outside {@code [-n_layers, n_layers)} and
     * attention-only models throw.
     */
    public static Result neurons(HookedTransformer model, ActivationCache cache, int layer, Direction direction,
                                 int position) {
        check(model, direction);
        requireMlp(model);
        int l = checkLayer(model, layer);
        return result("DLA per neuron of layer " + l, model, cache, direction, position,
                neuronEntries(model, cache, l, direction, position));
    }

    private static List<Entry> neuronEntries(HookedTransformer model, ActivationCache cache, int layer,
                                             Direction direction, int position) {
        float[] perRow;
        int dMlp = model.cfg().dMlp();
        try (NDScope scope = new NDScope()) {
            NDArray post = cache.get("post", layer);                                  // [batch, pos, d_mlp]
            long batch = post.getShape().get(0), nPos = post.getShape().get(1);
            int p = positionIndex(position, nPos);
            // v_b = (centred (w_ln * dir_b)) / scale_b: the direction as the final norm passes it back, computed by the
            // cache's own applyLnToStack on the direction broadcast to every position (x . C u = C x . u)
            NDArray u = directionVectors(model, direction, batch);                    // [batch, d_model]
            NDArray stack = u.expandDims(1).repeat(1, nPos).expandDims(0);           // [1, batch, pos, d_model]
            NDArray ln = cache.applyLnToStack(stack, p);                              // [1, batch, d_model]
            try {
                NDArray proj = model.W_out(layer).matMul(ln.get(0).transpose());      // [d_mlp, batch]
                NDArray at = post.get(new NDIndex(":, {}, :", p));                    // [batch, d_mlp]
                perRow = at.mul(proj.transpose()).mean(new int[] {0}).toFloatArray();  // mean over rows of [batch, d_mlp]
            } finally {
                ln.close();   // owned by the cache: free it now
            }
        }
        List<Entry> out = new ArrayList<>(dMlp);
        for (int n = 0; n < perRow.length; n++) {
            out.add(new Entry("L" + layer + "N" + n, Kind.NEURON, OptionalInt.of(layer), OptionalInt.of(n), perRow[n]));
        }
        return out;
    }

    /** {@code w_ln * (W_U[:, t_b] - W_U[:, s_b])} per batch row: [batch, d_model]. */
    private static NDArray directionVectors(HookedTransformer model, Direction d, long batch) {
        checkRows(d, batch);
        NDArray dirs = model.tokensToResidualDirections(d.tokens);                    // [n, d_model]
        if (d.isDifference()) dirs = dirs.sub(model.tokensToResidualDirections(d.against));
        if (dirs.getShape().get(0) == 1 && batch > 1) dirs = dirs.repeat(0, batch);
        return dirs.mul(model.tlWeights().get("ln_final.w"));
    }

    // ------------------------------------------------------------------ shared

    /** Mean over batch rows of cache.logitAttribution along the direction, for a stack the cache makes: [n]. */
    private static double[] attribute(ActivationCache cache, Direction d, int position,
                                      java.util.function.Supplier<NDArray> stackOf) {
        NDArray stack = stackOf.get();
        try (NDScope scope = new NDScope()) {
            checkRows(d, stack.getShape().get(1));
            NDArray plus = cache.logitAttribution(stack, position, d.tokens);         // [n, batch]
            NDArray attr = plus;
            NDArray minus = null;
            if (d.isDifference()) {
                minus = cache.logitAttribution(stack, position, d.against);
                attr = plus.sub(minus);
            }
            float[] mean = attr.mean(new int[] {1}).toFloatArray();
            plus.close();
            if (minus != null) minus.close();
            double[] out = new double[mean.length];
            for (int i = 0; i < out.length; i++) out[i] = mean[i];
            return out;
        } finally {
            stack.close();   // owned by the cache: free it now, not when the cache closes
        }
    }

    private static Result result(String what, HookedTransformer model, ActivationCache cache, Direction d,
                                 int position, List<Entry> entries) {
        double constant;
        OptionalDouble logit = OptionalDouble.empty();
        try (NDScope scope = new NDScope()) {
            NDArray scale = cache.get("ln_final.hook_scale");                           // [batch, pos, 1]
            long batch = scale.getShape().get(0);
            int p = positionIndex(position, scale.getShape().get(1));
            NDArray c = model.b_U();                                                  // [d_vocab]
            if (model.tlWeights().names().contains("ln_final.b")) {
                c = c.add(model.tlWeights().get("ln_final.b").matMul(model.W_U()));
            }
            constant = along(c.toFloatArray(), d, batch);
            if (hasLogits(cache)) {
                NDArray row = cache.logits().get(new NDIndex(":, {}, :", p));         // [batch, d_vocab]
                float[] l = row.toFloatArray();
                int v = model.cfg().dVocab();
                double sum = 0;
                for (int b = 0; b < batch; b++) {
                    float[] one = Arrays.copyOfRange(l, b * v, (b + 1) * v);
                    sum += valueAt(one, d, b);
                }
                logit = OptionalDouble.of(sum / batch);
            }
        }
        return new Result(what + ": " + d.name() + " at position " + position, d, position, entries, constant, logit);
    }

    private static boolean hasLogits(ActivationCache cache) {
        try {
            cache.logits();
            return true;
        } catch (IllegalStateException none) {
            return false;
        }
    }

    /** The mean over rows of {@code vec[t_b] - vec[s_b]}, one vector for every row. */
    private static double along(float[] vec, Direction d, long batch) {
        double sum = 0;
        for (int b = 0; b < batch; b++) sum += valueAt(vec, d, b);
        return sum / batch;
    }

    private static double valueAt(float[] vec, Direction d, int row) {
        int i = d.tokens.length == 1 ? 0 : row;
        double v = vec[(int) d.tokens[i]];
        if (d.isDifference()) v -= vec[(int) d.against[i]];
        return v;
    }

    private static void checkRows(Direction d, long batch) {
        if (d.tokens.length != 1 && d.tokens.length != batch) {
            throw new IllegalArgumentException("the direction has " + d.tokens.length + " tokens; give one for every "
                    + "row or one per batch row (" + batch + ")");
        }
    }

    private static void check(HookedTransformer model, Direction d) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(d, "direction");
        for (long t : d.tokens) CircuitMatrices.checkToken(model, t);
        for (long t : d.against) CircuitMatrices.checkToken(model, t);
    }

    private static void requireMlp(HookedTransformer model) {
        if (model.cfg().attnOnly()) {
            throw new IllegalArgumentException("this model is attention-only: it has no MLP neurons to attribute");
        }
    }

    private static int checkLayer(HookedTransformer model, int layer) {
        int n = model.nLayers();
        if (layer < -n || layer >= n) {
            throw new IllegalArgumentException("layer " + layer + " is out of range: this model has " + n
                    + " layers, valid layers are [" + (-n) + ", " + n + ") (negative ones count from the end)");
        }
        return layer < 0 ? layer + n : layer;
    }

    private static int positionIndex(int pos, long n) {
        if (pos < -n || pos >= n) {
            throw new IllegalArgumentException("position " + pos + " is out of range: the cached run has " + n
                    + " positions, valid positions are [" + (-n) + ", " + n + ")");
        }
        return (int) (pos < 0 ? pos + n : pos);
    }
}
