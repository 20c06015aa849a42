package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;
import dev.jlens.notebook.Display;
import dev.jlens.notebook.HtmlRenderable;
import dev.jlens.util.SplitMix;
import dev.jlens.viz.Plots;
import org.knowm.xchart.HeatMapChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * Which heads do what, in the spirit of TransformerLens's {@code detect_head}: previous-token, duplicate-token and
 * induction scores per {@code [layer, head]} from attention patterns on given tokens, and a copying score from each
 * head's OV circuit ({@link #copying(HookedTransformer)}).
 *
 * <p>A {@link Detection} marks, for each query position {@code q} of a sequence, the key positions {@code k} a head of
 * that kind attends to: {@code k = q - 1} (previous token); earlier {@code k} holding the same token as {@code q}
 * (duplicate token); {@code k} right after an earlier occurrence of {@code q}'s token (induction). A head's score on a
 * sequence is TransformerLens's {@code "mul"} measure: the attention mass on the marked positions over the whole
 * attention mass, summed over the sequence's query positions, so 1 means the head attends only to marked positions;
 * scores are averaged over sequences. {@link Options} can leave out the attention to position 0 (BOS) and to the
 * current token from both sums, as TransformerLens's {@code exclude_bos} and {@code exclude_current_token} do, and
 * count only query positions that have a marked key ({@link Options#targetRowsOnly()}, an addition: on repeated random
 * tokens the first half has nothing to induct from, and without it a perfect induction head scores about one half).
 *
 * <pre>{@code
 * long[][] reps = HeadDetectors.repeatedTokens(model, 32, 16, 0);   // BOS + 32 random tokens, twice
 * HeadDetectors.induction(model, reps).heatmap();
 * HeadDetectors.HeadScores.toTable(HeadDetectors.detectAll(model, reps, HeadDetectors.Options.defaults()))
 * }</pre>
 */
public final class HeadDetectors {
    private HeadDetectors() {}

    /** The attention patterns the detectors look for. */
    public enum Detection {
        /** Each token attends to the one before it. */
        PREVIOUS_TOKEN("previous-token score"),
        /** Each token attends to earlier occurrences of the same token. */
        DUPLICATE_TOKEN("duplicate-token score"),
        /** Each token attends to the token after an earlier occurrence of itself. */
        INDUCTION("induction score");

        private final String title;

        Detection(String title) {
            this.title = title;
        }

        /** {@code "induction score"}. */
        public String title() {
            return title;
        }
    }

    /**
     * How scores are computed.
     *
     * @param excludeBos          leave out attention to position 0 (BOS), TransformerLens's {@code exclude_bos}
     * @param excludeCurrentToken leave out attention from a token to itself ({@code exclude_current_token})
     * @param targetRowsOnly      count only query positions that have at least one marked key
     * @param batchSize           sequences per forward pass (memory: {@code batch * layers * heads * pos^2} floats)
     */
    public record Options(boolean excludeBos, boolean excludeCurrentToken, boolean targetRowsOnly, int batchSize) {
        /** Checks the batch size. */
        public Options {
            if (batchSize < 1) throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
        }

        /** TransformerLens's defaults (nothing excluded, every query position counted), 16 sequences a pass. */
        public static Options defaults() {
            return new Options(false, false, false, 16);
        }

        /** These options with {@code excludeBos}. */
        public Options withExcludeBos(boolean v) {
            return new Options(v, excludeCurrentToken, targetRowsOnly, batchSize);
        }

        /** These options with {@code excludeCurrentToken}. */
        public Options withExcludeCurrentToken(boolean v) {
            return new Options(excludeBos, v, targetRowsOnly, batchSize);
        }

        /** These options with {@code targetRowsOnly}. */
        public Options withTargetRowsOnly(boolean v) {
            return new Options(excludeBos, excludeCurrentToken, v, batchSize);
        }

        /** These options with {@code batchSize}. */
        public Options withBatchSize(int v) {
            return new Options(excludeBos, excludeCurrentToken, targetRowsOnly, v);
        }
    }

    /** One head's score. */
    public record Head(int layer, int head, double score) {
        /** {@code L1H4}. */
        public String label() {
            return "L" + layer + "H" + head;
        }
    }

    /**
     * One score per head, {@code scores[layer][head]}.
     *
     * @param name   what was measured, e.g. {@code "induction score"}
     * @param scores {@code [n_layers][n_heads]}, copied in and out
     */
    public record HeadScores(String name, double[][] scores) implements HtmlRenderable {
        /** Checks the matrix is rectangular and not empty, and copies it. */
        public HeadScores {
            Objects.requireNonNull(name, "name");
            if (scores.length == 0 || scores[0].length == 0) {
                throw new IllegalArgumentException("head scores need at least one layer and one head");
            }
            double[][] copy = new double[scores.length][];
            for (int l = 0; l < scores.length; l++) {
                if (scores[l].length != scores[0].length) {
                    throw new IllegalArgumentException("layer " + l + " has " + scores[l].length + " heads, layer 0 "
                            + scores[0].length);
                }
                copy[l] = scores[l].clone();
            }
            scores = copy;
        }

        /** {@code [n_layers][n_heads]} (a copy). */
        @Override
        public double[][] scores() {
            double[][] copy = new double[scores.length][];
            for (int l = 0; l < scores.length; l++) copy[l] = scores[l].clone();
            return copy;
        }

        /** Number of layers. */
        public int nLayers() {
            return scores.length;
        }

        /** Heads per layer. */
        public int nHeads() {
            return scores[0].length;
        }

        /** The score of one head; layers and heads outside the range throw naming it. */
        public double get(int layer, int head) {
            return scores[checkLayer(layer)][checkHead(head)];
        }

        /** The scores of one layer's heads (a copy). */
        public double[] layer(int layer) {
            return scores[checkLayer(layer)].clone();
        }

        /** Every head, layer by layer. */
        public List<Head> heads() {
            List<Head> out = new ArrayList<>();
            for (int l = 0; l < scores.length; l++) {
                for (int h = 0; h < scores[l].length; h++) out.add(new Head(l, h, scores[l][h]));
            }
            return out;
        }

        /** The {@code k} highest-scoring heads, best first. */
        public List<Head> top(int k) {
            if (k < 0) throw new IllegalArgumentException("k must be >= 0, got " + k);
            return heads().stream().sorted(Comparator.comparingDouble(Head::score).reversed()).limit(k).toList();
        }

        /** The heads scoring above {@code threshold}, best first. */
        public List<Head> above(double threshold) {
            return heads().stream().filter(h -> h.score() > threshold)
                    .sorted(Comparator.comparingDouble(Head::score).reversed()).toList();
        }

        /** The best head of one layer. */
        public Head best(int layer) {
            double[] row = scores[checkLayer(layer)];
            int best = 0;
            for (int h = 1; h < row.length; h++) if (row[h] > row[best]) best = h;
            return new Head(layer, best, row[best]);
        }

        /** One row per head: {@code head} ({@code L1H4}), {@code layer}, {@code index}, the score. */
        public Table toTable() {
            return toTable(List.of(this));
        }

        /** The heads, best first. */
        public Table toTableSorted() {
            return toTable().sortDescendingOn(name);
        }

        /** A layer x head heatmap. */
        public HeatMapChart heatmap() {
            List<String> rows = new ArrayList<>(), cols = new ArrayList<>();
            for (int l = 0; l < scores.length; l++) rows.add("layer " + l);
            for (int h = 0; h < scores[0].length; h++) cols.add("H" + h);
            return Plots.heatmap(name, scores, rows, cols, "head", "layer");
        }

        /** Several scores of the same heads side by side: one row per head, one column per score. */
        public static Table toTable(List<HeadScores> all) {
            if (all.isEmpty()) throw new IllegalArgumentException("no head scores to tabulate");
            HeadScores first = all.get(0);
            StringColumn label = StringColumn.create("head");
            IntColumn layer = IntColumn.create("layer"), index = IntColumn.create("index");
            for (Head h : first.heads()) {
                label.append(h.label());
                layer.append(h.layer());
                index.append(h.head());
            }
            Table t = Table.create(all.size() == 1 ? first.name() : "head scores", label, layer, index);
            for (HeadScores s : all) {
                if (s.nLayers() != first.nLayers() || s.nHeads() != first.nHeads()) {
                    throw new IllegalArgumentException("'" + s.name() + "' covers " + s.nLayers() + " x " + s.nHeads()
                            + " heads, '" + first.name() + "' " + first.nLayers() + " x " + first.nHeads());
                }
                t.addColumns(DoubleColumn.create(s.name(), s.heads().stream().mapToDouble(Head::score)));
            }
            return t;
        }

        private int checkLayer(int layer) {
            if (layer < 0 || layer >= scores.length) {
                throw new IllegalArgumentException("layer " + layer + " is out of range: valid layers are [0, "
                        + scores.length + ")");
            }
            return layer;
        }

        private int checkHead(int head) {
            if (head < 0 || head >= scores[0].length) {
                throw new IllegalArgumentException("head " + head + " is out of range: valid heads are [0, "
                        + scores[0].length + ")");
            }
            return head;
        }

        @Override
        public String toHtml() {
            return Display.render(toTable()).get(Display.HTML);
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder(name).append(" [layer][head]:");
            for (double[] row : scores) {
                sb.append("\n ");
                for (double v : row) sb.append(String.format(Locale.ROOT, " %.3f", v));
            }
            return sb.toString();
        }
    }

    // ------------------------------------------------------------------ detectors

    /** Previous-token scores of every head on {@code tokens} (equal-length sequences), default options. */
    public static HeadScores previousToken(HookedTransformer model, long[][] tokens) {
        return detect(model, tokens, Detection.PREVIOUS_TOKEN, Options.defaults());
    }

    /** Duplicate-token scores of every head on {@code tokens}, default options. */
    public static HeadScores duplicateToken(HookedTransformer model, long[][] tokens) {
        return detect(model, tokens, Detection.DUPLICATE_TOKEN, Options.defaults());
    }

    /** Induction scores of every head on {@code tokens}, default options. */
    public static HeadScores induction(HookedTransformer model, long[][] tokens) {
        return detect(model, tokens, Detection.INDUCTION, Options.defaults());
    }

    /**
     * Induction scores on {@code batch} sequences of repeated random tokens ({@link #repeatedTokens}), counting only
     * the query positions with something to induct from ({@link Options#targetRowsOnly()}) and leaving out BOS: about
     * the mean attention of the repeated half to the token after its earlier occurrence.
     */
    public static HeadScores induction(HookedTransformer model, int halfLength, int batch, long seed) {
        return detect(model, repeatedTokens(model, halfLength, batch, seed), Detection.INDUCTION,
                Options.defaults().withExcludeBos(true).withTargetRowsOnly(true));
    }

    /** The scores of one detection on {@code tokens}: runs the model, recording only the attention patterns. */
    public static HeadScores detect(HookedTransformer model, long[][] tokens, Detection detection, Options options) {
        return detectAll(model, tokens, List.of(detection), options).get(0);
    }

    /** Previous-token, duplicate-token and induction scores from the same forward passes, in that order. */
    public static List<HeadScores> detectAll(HookedTransformer model, long[][] tokens, Options options) {
        return detectAll(model, tokens, List.of(Detection.values()), options);
    }

    /** The scores of several detections from the same forward passes, in the order given. */
    public static List<HeadScores> detectAll(HookedTransformer model, long[][] tokens, List<Detection> detections,
                                             Options options) {
        Objects.requireNonNull(model, "model");
        checkTokens(tokens, model.cfg().dVocab());
        Accumulator acc = new Accumulator(detections, model.nLayers(), model.cfg().nHeads());
        for (int b0 = 0; b0 < tokens.length; b0 += options.batchSize()) {
            long[][] chunk = Arrays.copyOfRange(tokens, b0, Math.min(tokens.length, b0 + options.batchSize()));
            try (ActivationCache cache = model.runWithCache(chunk, NameFilter.of("pattern"))) {
                acc.add(cache, chunk, options);
            }
        }
        return acc.result(options);
    }

    /**
     * The scores of one detection from a cache that holds every layer's {@code pattern}, for the {@code tokens} it was
     * run on (equal-length sequences without padding).
     */
    public static HeadScores detect(ActivationCache cache, long[][] tokens, Detection detection, Options options) {
        Objects.requireNonNull(cache, "cache");
        int layers = 0;
        while (true) {
            String name = "blocks." + layers + ".attn.hook_pattern";
            if (!cache.contains(name)) break;
            layers++;
        }
        if (layers == 0) {
            throw new IllegalArgumentException("this cache holds no attention patterns (blocks.L.attn.hook_pattern); "
                    + "run with NameFilter.of(\"pattern\")");
        }
        int heads = (int) cache.get("blocks.0.attn.hook_pattern").getShape().get(1);
        checkTokens(tokens, Integer.MAX_VALUE);
        Accumulator acc = new Accumulator(List.of(detection), layers, heads);
        acc.add(cache, tokens, options);
        return acc.result(options).get(0);
    }

    /**
     * The marked positions of one sequence, {@code mask[q][k]} (1 where a head of this kind attends), as
     * TransformerLens's {@code get_*_detection_pattern}.
     */
    public static float[][] detectionPattern(long[] tokens, Detection detection) {
        int n = tokens.length;
        float[][] m = new float[n][n];
        for (int q = 0; q < n; q++) {
            for (int k = 0; k <= q; k++) {
                boolean on = switch (detection) {
                    case PREVIOUS_TOKEN -> k == q - 1;
                    case DUPLICATE_TOKEN -> k < q && tokens[k] == tokens[q];
                    case INDUCTION -> k >= 1 && k - 1 < q && tokens[k - 1] == tokens[q];
                };
                if (on) m[q][k] = 1;
            }
        }
        return m;
    }

    /**
     * {@code batch} sequences of repeated random tokens, TransformerLens's {@code generate_repeated_tokens}: BOS (the
     * tokenizer's or the config's, if the model has one), then {@code halfLength} tokens drawn uniformly with
     * replacement from the vocabulary without the special tokens, then the same tokens again. Deterministic in
     * {@code seed}.
     */
    public static long[][] repeatedTokens(HookedTransformer model, int halfLength, int batch, long seed) {
        if (halfLength < 1) throw new IllegalArgumentException("halfLength must be >= 1, got " + halfLength);
        if (batch < 1) throw new IllegalArgumentException("batch must be >= 1, got " + batch);
        Optional<Long> bos = bos(model);
        int len = 2 * halfLength + (bos.isPresent() ? 1 : 0);
        if (len > model.cfg().nCtx()) {
            throw new IllegalArgumentException("sequences of " + len + " tokens exceed the model's context of "
                    + model.cfg().nCtx() + "; the largest halfLength is " + (model.cfg().nCtx() - (bos.isPresent() ? 1
                    : 0)) / 2);
        }
        TreeSet<Long> specials = new TreeSet<>();
        bos.ifPresent(specials::add);
        model.cfg().eosTokenId().ifPresent(specials::add);
        model.tokenizer().ifPresent(t -> {
            t.bosTokenId().ifPresent(specials::add);
            for (long e : t.eosTokenIds()) specials.add(e);
            specials.add(t.padTokenId());
        });
        long[] pool = java.util.stream.LongStream.range(0, model.cfg().dVocab()).filter(i -> !specials.contains(i))
                .toArray();
        if (pool.length == 0) throw new IllegalArgumentException("the vocabulary has no ordinary tokens");
        SplittableRandom rng = new SplittableRandom(SplitMix.mix(seed, 0x5EED));
        long[][] out = new long[batch][len];
        for (int b = 0; b < batch; b++) {
            int off = 0;
            if (bos.isPresent()) out[b][off++] = bos.get();
            for (int i = 0; i < halfLength; i++) {
                long t = pool[rng.nextInt(pool.length)];
                out[b][off + i] = t;
                out[b][off + halfLength + i] = t;
            }
        }
        return out;
    }

    private static Optional<Long> bos(HookedTransformer model) {
        Optional<Tokenizer> tok = model.tokenizer();
        if (tok.isPresent() && tok.get().bosTokenId().isPresent()) return Optional.of(tok.get().bosTokenId().getAsLong());
        if (model.cfg().bosTokenId().isPresent()) return Optional.of(model.cfg().bosTokenId().getAsLong());
        return Optional.empty();
    }

    /**
     * Copying scores of every head from its OV circuit's eigenvalues ({@link CircuitMatrices#copyingScores()}, weights
     * processed as TransformerLens does by default).
     */
    public static HeadScores copying(HookedTransformer model) {
        try (CircuitMatrices circuits = CircuitMatrices.of(model)) {
            return circuits.copyingScores();
        }
    }

    // ------------------------------------------------------------------ scoring

    private static void checkTokens(long[][] tokens, int vocab) {
        Objects.requireNonNull(tokens, "tokens");
        if (tokens.length == 0 || tokens[0].length == 0) {
            throw new IllegalArgumentException("need at least one sequence of at least one token");
        }
        for (int b = 0; b < tokens.length; b++) {
            if (tokens[b].length != tokens[0].length) {
                throw new IllegalArgumentException("sequences must have equal lengths (no padding): sequence " + b
                        + " has " + tokens[b].length + " tokens, sequence 0 " + tokens[0].length);
            }
            for (int p = 0; p < tokens[b].length; p++) {
                long t = tokens[b][p];
                if (vocab != Integer.MAX_VALUE && (t < 0 || t >= vocab)) {
                    throw new IllegalArgumentException("token id " + t + " at sequence " + b + ", position " + p
                            + " is outside the vocabulary: valid ids are 0.." + (vocab - 1));
                }
            }
        }
    }

    /** Per-sequence scores summed over the sequences that count, per detection, layer and head. */
    private static final class Accumulator {
        final List<Detection> detections;
        final int layers, heads;
        final Map<Detection, double[][]> sums = new EnumMap<>(Detection.class);
        final Map<Detection, Integer> counted = new EnumMap<>(Detection.class);

        Accumulator(List<Detection> detections, int layers, int heads) {
            if (detections.isEmpty()) throw new IllegalArgumentException("no detection asked for");
            this.detections = List.copyOf(detections);
            this.layers = layers;
            this.heads = heads;
            for (Detection d : detections) {
                sums.put(d, new double[layers][heads]);
                counted.put(d, 0);
            }
        }

        void add(ActivationCache cache, long[][] tokens, Options o) {
            int b = tokens.length, p = tokens[0].length;
            for (Detection d : detections) {
                // the marked positions [b, 1, p, p] and which query rows count [b, 1, p, 1]
                float[] mask = new float[b * p * p], rows = new float[b * p];
                boolean[] any = new boolean[b];
                for (int s = 0; s < b; s++) {
                    float[][] m = detectionPattern(tokens[s], d);
                    for (int q = 0; q < p; q++) {
                        boolean has = false;
                        for (int k = 0; k < p; k++) {
                            float v = m[q][k];
                            if (o.excludeBos() && k == 0 || o.excludeCurrentToken() && k == q) v = 0;
                            mask[(s * p + q) * p + k] = v;
                            has |= v > 0;
                        }
                        rows[s * p + q] = !o.targetRowsOnly() || has ? 1 : 0;
                        any[s] |= has;
                    }
                }
                float[] keep = new float[p * p];
                for (int q = 0; q < p; q++) {
                    for (int k = 0; k < p; k++) {
                        keep[q * p + k] = o.excludeBos() && k == 0 || o.excludeCurrentToken() && k == q ? 0 : 1;
                    }
                }
                double[][] sum = sums.get(d);
                try (NDScope scope = new NDScope()) {
                    NDManager mgr = cache.manager();
                    NDArray markedT = mgr.create(mask, new Shape(b, 1, p, p));
                    NDArray rowsT = mgr.create(rows, new Shape(b, 1, p, 1));
                    NDArray keepT = mgr.create(keep, new Shape(1, 1, p, p));
                    for (int l = 0; l < layers; l++) {
                        NDArray pattern = cache.get("pattern", l);                        // [b, h, p, p]
                        if (pattern.getShape().get(2) != p || pattern.getShape().get(0) != b) {
                            throw new IllegalArgumentException("the cache's patterns " + pattern.getShape()
                                    + " do not match " + b + " sequences of " + p + " tokens");
                        }
                        NDArray kept = pattern.mul(keepT).mul(rowsT);
                        float[] num = kept.mul(markedT).sum(new int[] {2, 3}).toFloatArray();  // [b, h]
                        float[] den = kept.sum(new int[] {2, 3}).toFloatArray();
                        for (int s = 0; s < b; s++) {
                            if (o.targetRowsOnly() && !any[s]) continue;
                            for (int h = 0; h < heads; h++) {
                                float dd = den[s * heads + h];
                                sum[l][h] += dd > 0 ? num[s * heads + h] / dd : 0;
                            }
                        }
                    }
                }
                int n = 0;
                for (int s = 0; s < b; s++) if (!o.targetRowsOnly() || any[s]) n++;
                counted.merge(d, n, Integer::sum);
                boolean anyTarget = false;
                for (boolean a : any) anyTarget |= a;
                if (anyTarget) targets.add(d);
            }
        }

        final java.util.Set<Detection> targets = java.util.EnumSet.noneOf(Detection.class);

        List<HeadScores> result(Options o) {
            List<HeadScores> out = new ArrayList<>();
            for (Detection d : detections) {
                if (!targets.contains(d)) {
                    throw new IllegalArgumentException("no query position of these tokens has a " + d.title()
                            .replace(" score", "") + " target" + (d == Detection.PREVIOUS_TOKEN ? " (sequences of "
                            + "one token, or only position 0 left after excluding BOS)"
                            : " (no token occurs twice in a sequence)") + "; the score would be undefined");
                }
                double[][] s = sums.get(d);
                int n = counted.get(d);
                for (double[] row : s) for (int h = 0; h < row.length; h++) row[h] /= n;
                out.add(new HeadScores(d.title(), s));
            }
            return out;
        }
    }
}
