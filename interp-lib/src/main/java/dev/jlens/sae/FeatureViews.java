package dev.jlens.sae;

import dev.jlens.util.Numbers;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import dev.jlens.hook.Hook;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.CategoryStyler;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.awt.Color;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.PriorityQueue;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * What a researcher inspects about a dictionary's latents (cf. SAELens / Neuronpedia / sae_vis): per-latent
 * statistics gathered in one pass over a token dataset, a {@link FeatureCard} per latent and a table of all of them.
 *
 * <pre>{@code
 * FeatureViews views = FeatureViews.collect(model, sae, tokens);   // tokens: long[][] or List<Batch>
 * views.card(17)                                                   // renders as HTML in a notebook cell
 * views.table()                                                    // density, activations, top tokens of every latent
 * }</pre>
 *
 * The dictionary reads the activation at {@code sae.cfg().hookName()}; every unpadded token of the dataset counts.
 * A latent <em>fires</em> on a token when its activation is positive.
 */
public final class FeatureViews {
    // hooks whose activation is a residual-stream vector (or an addition to it): only there does W_dec @ W_U mean
    // the latent's direct effect on the logits
    private static final Pattern RESIDUAL = Pattern.compile(
            "(^|\\.)(hook_resid_pre|hook_resid_mid|hook_resid_post|hook_attn_out|hook_mlp_out|hook_embed|hook_pos_embed)$");

    /**
     * How much to keep per latent.
     *
     * @param topContexts   top activating contexts kept per latent
     * @param left          tokens shown before the activating token
     * @param right         tokens shown after it
     * @param maxValues     activation values kept per latent for the histogram (a uniform reservoir sample beyond)
     * @param batchSize     sequences per forward pass when the dataset is given as {@code long[][]}
     * @param logitTokens   boosted / suppressed tokens shown per latent
     */
    public record Options(int topContexts, int left, int right, int maxValues, int batchSize, int logitTokens) {
        public Options {
            if (topContexts < 1 || left < 0 || right < 0 || maxValues < 1 || batchSize < 1 || logitTokens < 1) {
                throw new IllegalArgumentException("need topContexts, maxValues, batchSize, logitTokens >= 1 and "
                        + "left, right >= 0; got " + topContexts + ", " + maxValues + ", " + batchSize + ", " + logitTokens
                        + ", " + left + ", " + right);
            }
        }

        /** 10 contexts of 10 tokens before and 4 after, 4096 values per latent, batches of 8, 10 logit tokens. */
        public static Options defaults() {
            return new Options(10, 10, 4, 4096, 8, 10);
        }
    }

    /** One activating context: {@code tokens[focus]} is where the latent reached {@code value}. */
    public record Context(int sequence, int position, float value, long[] tokens, float[] acts, int focus) {}

    private final HookedTransformer model;
    private final SparseCoder sae;
    private final Options options;
    private final int dSae;
    private long tokens;
    private final long[] fires;
    private final double[] sum;
    private final float[] max;
    private final float[][] values;    // reservoir per latent, valid up to min(fires, maxValues)
    private final List<PriorityQueue<Context>> top;
    private final List<Map<Long, Integer>> tokenCounts;
    private final SplittableRandom rng = new SplittableRandom(0);
    private float[][] logitEffect;     // lazily: [latent] -> the latent's direct logit effect, or null off-residual
    private int sequences;

    private FeatureViews(HookedTransformer model, SparseCoder sae, Options options) {
        this.model = model;
        this.sae = sae;
        this.options = options;
        this.dSae = sae.cfg().dSae();
        fires = new long[dSae];
        sum = new double[dSae];
        max = new float[dSae];
        values = new float[dSae][];
        top = new ArrayList<>(dSae);
        tokenCounts = new ArrayList<>(dSae);
        for (int i = 0; i < dSae; i++) {
            top.add(new PriorityQueue<>((a, b) -> Float.compare(a.value(), b.value())));   // min-heap: weakest on top
            tokenCounts.add(null);
        }
    }

    /** Statistics of every latent of {@code sae} over {@code tokens} (equal or varying lengths), default options. */
    public static FeatureViews collect(HookedTransformer model, SparseCoder sae, long[][] tokens) {
        return collect(model, sae, tokens, Options.defaults());
    }

    /** Statistics over {@code tokens}, run in batches of {@code options.batchSize()} sequences of equal length. */
    public static FeatureViews collect(HookedTransformer model, SparseCoder sae, long[][] tokens, Options options) {
        Objects.requireNonNull(tokens, "tokens");
        List<Batch> batches = new ArrayList<>();
        for (int i = 0; i < tokens.length; ) {
            // group sequences of the same length so that no padding is needed
            int j = i + 1;
            while (j < tokens.length && j - i < options.batchSize() && tokens[j].length == tokens[i].length) j++;
            batches.add(Batch.of(Arrays.copyOfRange(tokens, i, j)));
            i = j;
        }
        return collect(model, sae, batches, options);
    }

    /** Statistics over the batches (padding, where the mask is false, is skipped), default options. */
    public static FeatureViews collect(HookedTransformer model, SparseCoder sae, List<Batch> batches) {
        return collect(model, sae, batches, Options.defaults());
    }

    /** Statistics of every latent in one pass over {@code batches}. */
    public static FeatureViews collect(HookedTransformer model, SparseCoder sae, List<Batch> batches, Options options) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(sae, "sae");
        Objects.requireNonNull(options, "options");
        if (batches == null || batches.isEmpty()) throw new IllegalArgumentException("no data: pass at least one batch");
        if (sae.cfg().hookPoint().isEmpty()) {
            throw new IllegalArgumentException("the dictionary has no hook point; set it with cfg.withHook(name), e.g. "
                    + "blocks.0.hook_resid_post");
        }
        String hook = sae.cfg().hookName();
        if (sae.cfg().nSources() != 1) {
            throw new IllegalArgumentException("feature views read one hook point; this dictionary has "
                    + sae.cfg().nSources() + " sources (a crosscoder: see Crosscoder)");
        }
        model.hook(hook);   // an unknown name throws here and suggests the nearest names
        FeatureViews v = new FeatureViews(model, sae, options);
        for (Batch b : batches) v.add(b);
        return v;
    }

    private void add(Batch batch) {
        int first = sequences;
        sequences += batch.size();
        try (NDScope scope = new NDScope()) {
            model.runWithHooks(batch, Hook.fwd(sae.cfg().hookName(), (act, hp) -> {
                if (act.getShape().get(act.getShape().dimension() - 1) != sae.cfg().dIn()) {
                    throw new IllegalArgumentException("hook " + hp.name() + " gives " + act.getShape()
                            + " but the dictionary takes [..., " + sae.cfg().dIn() + "]");
                }
                record(batch, first, act.reshape(batch.size(), batch.length(), sae.cfg().dIn()));
                return null;
            }));
        }
    }

    /** Folds one batch's activations {@code [B, P, dIn]} into the statistics. */
    private void record(Batch batch, int firstSeq, NDArray x) {
        int b = batch.size(), p = batch.length();
        int k;
        float[] vals;
        int[] idx;
        if (sae.cfg().kind() instanceof SaeConfig.TopK) {
            SparseDecode.Active a = SparseDecode.topK(sae, x);
            k = (int) a.values().getShape().get(2);
            vals = a.values().toFloatArray();
            idx = a.indices().toType(DataType.INT32, false).toIntArray();
        } else {
            // other rules: the non-zeros of the dense latents, at most as many per token as fire anywhere
            NDArray f = sae.encode(x);
            int kMax = (int) Math.max(1, f.gt(0).sum(new int[] {2}).max().getLong());
            NDList tk = f.topK(kMax, -1, true, false);
            k = kMax;
            vals = tk.get(0).toFloatArray();
            idx = tk.get(1).toType(DataType.INT32, false).toIntArray();
        }
        boolean[][] mask = batch.mask();
        for (int s = 0; s < b; s++) {
            long[] ids = batch.ids()[s];
            for (int t = 0; t < p; t++) {
                if (!mask[s][t]) continue;
                tokens++;
                int base = (s * p + t) * k;
                for (int j = 0; j < k; j++) {
                    float v = vals[base + j];
                    if (!(v > 0)) continue;
                    int lat = idx[base + j];
                    observe(lat, v, ids[t]);
                    PriorityQueue<Context> heap = top.get(lat);
                    if (heap.size() < options.topContexts() || v > heap.peek().value()) {
                        heap.add(context(batch, s, t, firstSeq + s, lat, v, vals, idx, k));
                        if (heap.size() > options.topContexts()) heap.poll();
                    }
                }
            }
        }
    }

    private void observe(int lat, float v, long token) {
        long n = ++fires[lat];
        sum[lat] += v;
        if (v > max[lat]) max[lat] = v;
        float[] r = values[lat];
        if (r == null) values[lat] = r = new float[Math.min(options.maxValues(), 64)];
        if (n <= options.maxValues()) {
            if (n > r.length) values[lat] = r = Arrays.copyOf(r, (int) Math.min(options.maxValues(), 2L * r.length));
            r[(int) n - 1] = v;
        } else {
            long j = rng.nextLong(n);   // reservoir sampling keeps a uniform sample of all values
            if (j < options.maxValues()) r[(int) j] = v;
        }
        Map<Long, Integer> counts = tokenCounts.get(lat);
        if (counts == null) tokenCounts.set(lat, counts = new HashMap<>());
        counts.merge(token, 1, Integer::sum);
    }

    /** The window around {@code (s, t)} with this latent's activation on every token of it. */
    private Context context(Batch batch, int s, int t, int seq, int lat, float v, float[] vals, int[] idx, int k) {
        int p = batch.length();
        int from = Math.max(0, t - options.left()), to = Math.min(p, t + options.right() + 1);
        while (from < t && !batch.mask()[s][from]) from++;   // no padding in the window
        long[] ids = Arrays.copyOfRange(batch.ids()[s], from, to);
        float[] acts = new float[to - from];
        for (int q = from; q < to; q++) {
            int base = (s * p + q) * k;
            for (int j = 0; j < k; j++) {
                if (idx[base + j] == lat) {
                    acts[q - from] = Math.max(0, vals[base + j]);
                    break;
                }
            }
        }
        return new Context(seq, t, v, ids, acts, t - from);
    }

    // ------------------------------------------------------------------ queries

    /** Number of latents. */
    public int dSae() {
        return dSae;
    }

    /** Tokens seen (padding excluded). */
    public long tokens() {
        return tokens;
    }

    /** The dictionary the views are of. */
    public SparseCoder sae() {
        return sae;
    }

    /** Fraction of tokens on which the latent fires. */
    public double density(int latent) {
        check(latent);
        return tokens == 0 ? 0 : (double) fires[latent] / tokens;
    }

    /** Number of tokens on which the latent fires. */
    public long fires(int latent) {
        check(latent);
        return fires[latent];
    }

    /** Mean activation over the tokens where the latent fires (0 if it never does). */
    public double meanActivation(int latent) {
        check(latent);
        return fires[latent] == 0 ? 0 : sum[latent] / fires[latent];
    }

    /** Largest activation seen (0 if it never fires). */
    public double maxActivation(int latent) {
        check(latent);
        return max[latent];
    }

    /** The top activating contexts, strongest first. */
    public List<Context> topContexts(int latent) {
        check(latent);
        List<Context> out = new ArrayList<>(top.get(latent));
        out.sort((a, b) -> Float.compare(b.value(), a.value()));
        return out;
    }

    /** The activation values kept for the histogram (all of them, or a uniform sample of {@code maxValues}). */
    public float[] activationValues(int latent) {
        check(latent);
        float[] r = values[latent];
        return r == null ? new float[0] : Arrays.copyOf(r, (int) Math.min(fires[latent], options.maxValues()));
    }

    /** Histogram of the latent's positive activations: {@code bins} equal bins from 0 to the maximum. */
    public Histogram histogram(int latent, int bins) {
        if (bins < 1) throw new IllegalArgumentException("bins must be positive, got " + bins);
        float[] v = activationValues(latent);
        double hi = max[latent] > 0 ? max[latent] : 1;
        long[] counts = new long[bins];
        for (float x : v) counts[Math.min(bins - 1, (int) (x / hi * bins))]++;
        double[] edges = new double[bins + 1];
        for (int i = 0; i <= bins; i++) edges[i] = hi * i / bins;
        // a sampled reservoir stands for all firings: scale its counts up
        double scale = v.length == 0 ? 1 : (double) fires[latent] / v.length;
        if (scale != 1) for (int i = 0; i < bins; i++) counts[i] = Math.round(counts[i] * scale);
        return new Histogram(edges, counts);
    }

    /** Bin edges ({@code bins + 1}) and counts of a histogram. */
    public record Histogram(double[] edges, long[] counts) {}

    /** The latent's activation histogram as a bar chart (renders as a PNG in a notebook). */
    public CategoryChart histogramChart(int latent) {
        return histogramChart(latent, 30, 560, 220);
    }

    CategoryChart histogramChart(int latent, int bins, int width, int height) {
        Histogram h = histogram(latent, bins);
        List<String> x = new ArrayList<>(bins);
        List<Long> y = new ArrayList<>(bins);
        for (int i = 0; i < bins; i++) {
            x.add(String.format(Locale.ROOT, "%.3g", (h.edges()[i] + h.edges()[i + 1]) / 2));
            y.add(h.counts()[i]);
        }
        CategoryChart c = new CategoryChartBuilder().width(width).height(height)
                .title("Activation density, latent " + latent).xAxisTitle("activation").yAxisTitle("tokens").build();
        CategoryStyler s = c.getStyler();
        s.setLegendVisible(false);
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setPlotBorderVisible(false);
        s.setChartTitleBoxVisible(false);
        s.setAxisTickLabelsFont(s.getAxisTickLabelsFont().deriveFont(10f));
        s.setChartTitleFont(s.getChartTitleFont().deriveFont(13f));
        c.getStyler().setPlotGridVerticalLinesVisible(false);
        c.getStyler().setXAxisMaxLabelCount(7);   // 30 bin labels would overlap
        c.getStyler().setOverlapped(true);
        c.getStyler().setAvailableSpaceFill(0.95);
        c.getStyler().setXAxisDecimalPattern("0.##");
        c.getStyler().setSeriesColors(new Color[] {new Color(0xE8590C)});
        c.addSeries("activations", x, y);
        return c;
    }

    /**
     * The tokens whose logits the latent's decoder direction raises most (largest first) and lowers most (most
     * negative first): {@code W_dec[latent] @ W_U^T}, skipping the final normalisation's scale as SAELens and
     * Neuronpedia do. Empty when the hook point is not in the residual stream.
     */
    public LogitEffect logitEffect(int latent) {
        check(latent);
        float[] e = logitEffects()[latent];
        if (e == null) return new LogitEffect(List.of(), List.of());
        Integer[] order = new Integer[e.length];
        for (int i = 0; i < e.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Float.compare(e[b], e[a]));
        int n = Math.min(options.logitTokens(), e.length);
        List<TokenValue> up = new ArrayList<>(n), down = new ArrayList<>(n);
        for (int i = 0; i < n; i++) up.add(new TokenValue(order[i], tokenText(order[i]), e[order[i]]));
        for (int i = 0; i < n; i++) {
            int id = order[e.length - 1 - i];
            down.add(new TokenValue(id, tokenText(id), e[id]));
        }
        return new LogitEffect(up, down);
    }

    /** A token with a value (its id, its text, a logit effect or count). */
    public record TokenValue(long id, String text, double value) {}

    /** Top boosted and suppressed tokens of a latent. */
    public record LogitEffect(List<TokenValue> boosted, List<TokenValue> suppressed) {}

    /** Whether the hook point writes to the residual stream (where the logit effect is defined). */
    public boolean residualHook() {
        return sae.cfg().hookPoint().map(h -> RESIDUAL.matcher(h).find()).orElse(false) && sae.cfg().dIn() == model.cfg().dModel();
    }

    private float[][] logitEffects() {
        if (logitEffect != null) return logitEffect;
        float[][] out = new float[dSae][];
        if (residualHook()) {
            try (NDScope scope = new NDScope()) {
                NDArray wu = model.unembedWeight();                        // [d_vocab, d_model]
                NDArray wDec = sae.weights().get(SaeWeights.W_DEC);       // [dSae, d_model], normalised units
                float inv = (float) (1 / sae.cfg().inputScale());
                int chunk = 256;                                           // keeps [chunk, d_vocab] small
                for (int c0 = 0; c0 < dSae; c0 += chunk) {
                    int c1 = Math.min(dSae, c0 + chunk);
                    float[] flat = wDec.get(new NDIndex("{}:{}", c0, c1)).matMul(wu.transpose()).mul(inv).toFloatArray();
                    int vocab = flat.length / (c1 - c0);
                    for (int i = c0; i < c1; i++) out[i] = Arrays.copyOfRange(flat, (i - c0) * vocab, (i - c0 + 1) * vocab);
                }
            }
        }
        logitEffect = out;
        return out;
    }

    /** The most frequent tokens at which the latent fires, most frequent first. */
    public List<TokenValue> topTokens(int latent, int n) {
        check(latent);
        Map<Long, Integer> counts = tokenCounts.get(latent);
        if (counts == null) return List.of();
        return counts.entrySet().stream()
                .sorted((a, b) -> a.getValue().equals(b.getValue()) ? Long.compare(a.getKey(), b.getKey())
                        : Integer.compare(b.getValue(), a.getValue()))
                .limit(n).map(e -> new TokenValue(e.getKey(), tokenText(e.getKey()), e.getValue())).toList();
    }

    /** A token's text through the model's tokenizer, or {@code #id} without one. */
    public String tokenText(long id) {
        Optional<Tokenizer> t = model.tokenizer();
        if (t.isEmpty()) return "#" + id;
        try {
            return t.get().decodeToken(id);
        } catch (RuntimeException e) {
            return "#" + id;   // an id outside the tokenizer's vocabulary (a padded unembedding)
        }
    }

    /** The view of one latent (renders as HTML in a notebook). */
    public FeatureCard card(int latent) {
        check(latent);
        return new FeatureCard(this, latent);
    }

    /**
     * One row per latent: {@code latent}, {@code density}, {@code log10_density} (NaN for a latent that never
     * fires), {@code mean_act} (when active), {@code max_act}, {@code top_tokens} (most frequent tokens where it
     * fires, with counts) and {@code top_boosted} (its direct logit effect's top tokens; empty off the residual).
     */
    public Table table() {
        IntColumn id = IntColumn.create("latent");
        DoubleColumn density = DoubleColumn.create("density"), logDensity = DoubleColumn.create("log10_density");
        DoubleColumn mean = DoubleColumn.create("mean_act"), mx = DoubleColumn.create("max_act");
        StringColumn topTok = StringColumn.create("top_tokens"), boosted = StringColumn.create("top_boosted");
        for (int i = 0; i < dSae; i++) {
            id.append(i);
            double d = density(i);
            density.append(Numbers.significant(d, 4));
            logDensity.append(d > 0 ? Numbers.significant(Math.log10(d), 4) : Double.NaN);
            mean.append(Numbers.significant(meanActivation(i), 4));
            mx.append(Numbers.significant(maxActivation(i), 4));
            topTok.append(String.join(", ", topTokens(i, 3).stream()
                    .map(t -> quote(t.text()) + " (" + (long) t.value() + ")").toList()));
            List<TokenValue> up = residualHook() ? logitEffect(i).boosted() : List.of();
            boosted.append(String.join(", ", up.stream().limit(3).map(t -> quote(t.text())).toList()));
        }
        return Table.create("latents of " + sae.cfg(), id, density, logDensity, mean, mx, topTok, boosted);
    }

    static String quote(String token) {
        return "'" + token.replace("\n", "\\n") + "'";
    }

    private void check(int latent) {
        if (latent < 0 || latent >= dSae) {
            throw new IndexOutOfBoundsException("latent " + latent + " is outside [0, " + dSae + ")");
        }
    }

    @Override
    public String toString() {
        long alive = Arrays.stream(fires).filter(f -> f > 0).count();
        return String.format(Locale.ROOT, "FeatureViews[%d latents at %s over %,d tokens; %d fire, %d never]", dSae,
                sae.cfg().hookName(), tokens, alive, dSae - alive);
    }
}
