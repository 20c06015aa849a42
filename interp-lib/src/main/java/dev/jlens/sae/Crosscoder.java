package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.CategoryStyler;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.awt.Color;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Model diffing with a crosscoder over two models (Anthropic, "Sparse Crosscoders for Cross-Layer Features and Model
 * Diffing", Oct 2024; Lindsey et al.): each latent has one decoder vector per model, {@code W_dec [dSae, 2 d_model]}
 * source-major (base first, fine-tuned second). The <em>relative decoder norm</em>
 * {@code r = ||d_ft|| / (||d_base|| + ||d_ft||)} says whose latent it is: near 0 only the base model uses it, near 1
 * only the fine-tuned model, near 0.5 both. Shared latents are compared by the cosine similarity of their two decoder
 * vectors (near 1: the same direction in both models).
 *
 * <pre>{@code
 * Crosscoder cc = Crosscoder.of(sae);        // sae.cfg().nSources() == 2
 * cc.relativeNormHistogram()                 // the tri-modal histogram of the crosscoder papers
 * cc.table()                                 // per latent: norms, r, cosine, category
 * }</pre>
 */
public final class Crosscoder {

    /** Where a latent lives, by its relative decoder norm (see {@link Thresholds}). */
    public enum Category {
        BASE_ONLY("base-only"), SHARED("shared"), FINETUNED_ONLY("finetuned-only"), OTHER("other"),
        /** Never fired on the data the densities came from ({@link #withDensity}): its decoder norms mean nothing. */
        DEAD("dead");

        private final String label;

        Category(String label) {
            this.label = label;
        }

        /** The name used in tables and charts. */
        public String label() {
            return label;
        }
    }

    /**
     * Relative-norm cut-offs: {@code r < baseOnlyBelow} base-only, {@code r > finetunedOnlyAbove} fine-tuned-only,
     * {@code sharedFrom <= r <= sharedTo} shared, anything else (and latents with zero decoder norm) other.
     */
    public record Thresholds(double baseOnlyBelow, double sharedFrom, double sharedTo, double finetunedOnlyAbove) {
        public Thresholds {
            if (!(0 <= baseOnlyBelow && baseOnlyBelow <= sharedFrom && sharedFrom <= sharedTo
                    && sharedTo <= finetunedOnlyAbove && finetunedOnlyAbove <= 1)) {
                throw new IllegalArgumentException("thresholds must satisfy 0 <= baseOnlyBelow <= sharedFrom <= sharedTo"
                        + " <= finetunedOnlyAbove <= 1; got " + baseOnlyBelow + ", " + sharedFrom + ", " + sharedTo + ", "
                        + finetunedOnlyAbove);
            }
        }

        /** Base-only below 0.1, shared in [0.3, 0.7], fine-tuned-only above 0.9 (the crosscoder diffing posts). */
        public static Thresholds defaults() {
            return new Thresholds(0.1, 0.3, 0.7, 0.9);
        }

        Category classify(double r) {
            if (Double.isNaN(r)) return Category.OTHER;
            if (r < baseOnlyBelow) return Category.BASE_ONLY;
            if (r > finetunedOnlyAbove) return Category.FINETUNED_ONLY;
            if (r >= sharedFrom && r <= sharedTo) return Category.SHARED;
            return Category.OTHER;
        }
    }

    private final SparseCoder coder;
    private final String baseName, finetunedName;
    private final Thresholds thresholds;
    private final double[] normBase, normFt, relative, cosine;
    private final Category[] category;

    private Crosscoder(SparseCoder coder, String baseName, String finetunedName, Thresholds thresholds) {
        this.coder = coder;
        this.baseName = baseName;
        this.finetunedName = finetunedName;
        this.thresholds = thresholds;
        int dSae = coder.cfg().dSae(), dm = coder.cfg().dModel();
        float[] norms, dots;
        try (NDScope scope = new NDScope()) {
            norms = coder.weights().decoderNormsPerSource(2).toFloatArray();              // [dSae, 2]
            NDArray w = coder.weights().get(SaeWeights.W_DEC).reshape(dSae, 2, dm);
            // d_base . d_ft per latent, in the engine: W_dec can be far larger than the Java heap wants to hold
            dots = w.get(":, 0, :").mul(w.get(":, 1, :")).sum(new int[] {1}).toFloatArray();
        }
        normBase = new double[dSae];
        normFt = new double[dSae];
        relative = new double[dSae];
        cosine = new double[dSae];
        category = new Category[dSae];
        for (int i = 0; i < dSae; i++) {
            normBase[i] = norms[2 * i];
            normFt[i] = norms[2 * i + 1];
            double total = normBase[i] + normFt[i];
            relative[i] = total > 0 ? normFt[i] / total : Double.NaN;
            cosine[i] = normBase[i] > 0 && normFt[i] > 0 ? dots[i] / (normBase[i] * normFt[i]) : Double.NaN;
            category[i] = thresholds.classify(relative[i]);
        }
    }

    /**
     * The same analysis with latents that never fire (density 0, e.g. {@code SaeMetrics.of(...).density()}) in their
     * own category {@link Category#DEAD}, left out of the histograms: a dead latent keeps the relative norm of its
     * initialisation (0.5), so without this it would count as shared.
     */
    public Crosscoder withDensity(float[] density) {
        Objects.requireNonNull(density, "density");
        if (density.length != category.length) {
            throw new IllegalArgumentException("density has " + density.length + " entries but the crosscoder has "
                    + category.length + " latents");
        }
        Crosscoder c = new Crosscoder(coder, baseName, finetunedName, thresholds);
        for (int i = 0; i < density.length; i++) if (!(density[i] > 0)) c.category[i] = Category.DEAD;
        return c;
    }

    /** The analysis of a two-source dictionary, sources named "base" and "finetuned", default thresholds. */
    public static Crosscoder of(SparseCoder coder) {
        return of(coder, "base", "finetuned", Thresholds.defaults());
    }

    /** The analysis with the two models' names (source 0, source 1) and relative-norm thresholds. */
    public static Crosscoder of(SparseCoder coder, String baseName, String finetunedName, Thresholds thresholds) {
        Objects.requireNonNull(coder, "coder");
        Objects.requireNonNull(thresholds, "thresholds");
        if (coder.cfg().nSources() != 2) {
            throw new IllegalArgumentException("a model-diffing crosscoder has 2 sources (base, fine-tuned); this "
                    + "dictionary has " + coder.cfg().nSources() + " (" + coder.cfg() + ")");
        }
        return new Crosscoder(coder, Objects.requireNonNull(baseName, "baseName"),
                Objects.requireNonNull(finetunedName, "finetunedName"), thresholds);
    }

    /** The crosscoder analysed. */
    public SparseCoder coder() {
        return coder;
    }

    /** Number of latents. */
    public int dSae() {
        return relative.length;
    }

    /** The base model's decoder norm of each latent. */
    public double[] baseNorms() {
        return normBase.clone();
    }

    /** The fine-tuned model's decoder norm of each latent. */
    public double[] finetunedNorms() {
        return normFt.clone();
    }

    /** {@code ||d_ft|| / (||d_base|| + ||d_ft||)} per latent (NaN where both are zero). */
    public double[] relativeNorms() {
        return relative.clone();
    }

    /** Cosine similarity of each latent's base and fine-tuned decoder vectors (NaN where one is zero). */
    public double[] cosineSimilarities() {
        return cosine.clone();
    }

    /** The category of one latent. */
    public Category category(int latent) {
        if (latent < 0 || latent >= category.length) {
            throw new IndexOutOfBoundsException("latent " + latent + " is outside [0, " + category.length + ")");
        }
        return category[latent];
    }

    /** The latents of one category, in order. */
    public int[] latents(Category c) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < category.length; i++) if (category[i] == c) out.add(i);
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** How many latents fall in each category. */
    public Map<Category, Integer> counts() {
        Map<Category, Integer> m = new EnumMap<>(Category.class);
        for (Category c : Category.values()) m.put(c, 0);
        for (Category c : category) m.merge(c, 1, Integer::sum);
        return m;
    }

    /**
     * The {@code k} latents with the largest relative norm (the most fine-tuned-heavy decoders), largest first,
     * leaving out dead latents (when {@link #withDensity} marked them) and latents without a decoder. Where the
     * default thresholds find no fine-tuned-only latent (BatchTopK crosscoders often have none), these are where to
     * look for what the fine-tune added.
     */
    public int[] mostFinetuned(int k) {
        if (k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
        return java.util.stream.IntStream.range(0, category.length)
                .filter(i -> category[i] != Category.DEAD && !Double.isNaN(relative[i])).boxed()
                .sorted((a, b) -> Double.compare(relative[b], relative[a])).limit(k)
                .mapToInt(Integer::intValue).toArray();
    }

    /**
     * Decoder vector of {@code latent} for one source (0 base, 1 fine-tuned), {@code d_model} long, in the units the
     * dictionary reconstructs (raw activations divided by its input scale).
     */
    public float[] decoder(int latent, int source) {
        if (latent < 0 || latent >= category.length) {
            throw new IndexOutOfBoundsException("latent " + latent + " is outside [0, " + category.length + ")");
        }
        if (source != 0 && source != 1) throw new IllegalArgumentException("source is 0 (base) or 1 (fine-tuned), got "
                + source);
        int dm = coder.cfg().dModel();
        try (NDScope scope = new NDScope()) {
            return coder.weights().get(SaeWeights.W_DEC).get(latent).get(new ai.djl.ndarray.index.NDIndex(
                    (long) source * dm + ":" + ((long) source + 1) * dm)).toFloatArray();
        }
    }

    /** Cosine similarities of the shared latents' decoder pairs. */
    public double[] sharedCosines() {
        return java.util.Arrays.stream(latents(Category.SHARED)).mapToDouble(i -> cosine[i]).toArray();
    }

    /**
     * Histogram of the relative decoder norm over [0, 1] in {@code bins} bins, coloured by category (the figure of
     * the crosscoder model-diffing papers: peaks at 0, 0.5 and 1).
     */
    public CategoryChart relativeNormHistogram(int bins) {
        if (bins < 2) throw new IllegalArgumentException("bins must be at least 2, got " + bins);
        Map<Category, List<Long>> series = new EnumMap<>(Category.class);
        for (Category c : Category.values()) series.put(c, new ArrayList<>(java.util.Collections.nCopies(bins, 0L)));
        List<String> x = new ArrayList<>(bins);
        for (int b = 0; b < bins; b++) {
            double mid = (b + 0.5) / bins;
            x.add(String.format(Locale.ROOT, "%.2f", mid));
        }
        for (int i = 0; i < relative.length; i++) {
            if (Double.isNaN(relative[i]) || category[i] == Category.DEAD) continue;
            int b = Math.min(bins - 1, (int) (relative[i] * bins));
            // colour each bin by the category of its centre so that bars do not split
            Category c = thresholds.classify((b + 0.5) / bins);
            series.get(c).set(b, series.get(c).get(b) + 1);
        }
        String title = "Relative decoder norm ||d_" + finetunedName + "|| / (||d_" + baseName + "|| + ||d_"
                + finetunedName + "||)";
        CategoryChart chart = new CategoryChartBuilder().width(dev.jlens.viz.Plots.widthFor(title)).height(320)
                .title(title)
                .xAxisTitle("relative norm (0: " + baseName + " only, 1: " + finetunedName + " only)")
                .yAxisTitle("latents").build();
        style(chart.getStyler());
        chart.getStyler().setLegendVisible(true);
        chart.getStyler().setOverlapped(true);
        List<Color> colours = new ArrayList<>();
        for (Category c : Category.values()) {
            if (c == Category.DEAD) continue;
            chart.addSeries(c.label(), x, series.get(c));
            colours.add(colour(c));
        }
        chart.getStyler().setSeriesColors(colours.toArray(new Color[0]));
        return chart;
    }

    /** {@link #relativeNormHistogram(int)} with 50 bins. */
    public CategoryChart relativeNormHistogram() {
        return relativeNormHistogram(50);
    }

    /** Histogram of the shared latents' decoder cosine similarities over [-1, 1]. */
    public CategoryChart sharedCosineHistogram() {
        int bins = 40;
        List<Long> counts = new ArrayList<>(java.util.Collections.nCopies(bins, 0L));
        for (double c : sharedCosines()) {
            if (Double.isNaN(c)) continue;
            int b = Math.max(0, Math.min(bins - 1, (int) ((c + 1) / 2 * bins)));
            counts.set(b, counts.get(b) + 1);
        }
        List<String> x = new ArrayList<>(bins);
        for (int b = 0; b < bins; b++) {
            x.add(String.format(Locale.ROOT, "%.2f", -1 + (b + 0.5) * 2 / bins));
        }
        String title = "Decoder cosine similarity of shared latents (" + baseName + " vs " + finetunedName + ")";
        CategoryChart chart = new CategoryChartBuilder().width(Math.max(640, dev.jlens.viz.Plots.widthFor(title))).height(320)
                .title(title)
                .xAxisTitle("cosine similarity").yAxisTitle("latents").build();
        style(chart.getStyler());
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setSeriesColors(new Color[] {colour(Category.SHARED)});
        chart.addSeries("shared", x, counts);
        return chart;
    }

    private static void style(CategoryStyler s) {
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setPlotBorderVisible(false);
        s.setChartTitleBoxVisible(false);
        s.setPlotGridVerticalLinesVisible(false);
        s.setAvailableSpaceFill(0.95);
        s.setXAxisMaxLabelCount(11);   // 50 bin labels would overlap
        s.setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideE);
    }

    private static Color colour(Category c) {
        return switch (c) {
            case BASE_ONLY -> new Color(0x1c7ed6);
            case SHARED -> new Color(0x7048e8);
            case FINETUNED_ONLY -> new Color(0xe8590c);
            case OTHER -> new Color(0xadb5bd);
            case DEAD -> new Color(0x495057);
        };
    }

    /**
     * One row per latent: {@code latent}, {@code norm_<base>}, {@code norm_<finetuned>}, {@code relative_norm},
     * {@code cosine}, {@code category}.
     */
    public Table table() {
        IntColumn id = IntColumn.create("latent");
        DoubleColumn nb = DoubleColumn.create("norm_" + baseName), nf = DoubleColumn.create("norm_" + finetunedName);
        DoubleColumn r = DoubleColumn.create("relative_norm"), cos = DoubleColumn.create("cosine");
        StringColumn cat = StringColumn.create("category");
        for (int i = 0; i < relative.length; i++) {
            id.append(i);
            nb.append(normBase[i]);
            nf.append(normFt[i]);
            r.append(relative[i]);
            cos.append(cosine[i]);
            cat.append(category[i].label());
        }
        return Table.create("crosscoder latents (" + baseName + " vs " + finetunedName + ")", id, nb, nf, r, cos, cat);
    }

    /** Counts per category and the shared latents' mean cosine, as a small table. */
    public Table summary() {
        StringColumn cat = StringColumn.create("category");
        IntColumn n = IntColumn.create("latents");
        DoubleColumn frac = DoubleColumn.create("fraction"), cos = DoubleColumn.create("mean_cosine");
        Map<Category, Integer> counts = counts();
        for (Category c : Category.values()) {
            int[] ls = latents(c);
            cat.append(c.label());
            n.append(counts.get(c));
            frac.append((double) counts.get(c) / relative.length);
            cos.append(java.util.Arrays.stream(ls).mapToDouble(i -> cosine[i]).filter(v -> !Double.isNaN(v))
                    .average().orElse(Double.NaN));
        }
        return Table.create("crosscoder summary", cat, n, frac, cos);
    }

    @Override
    public String toString() {
        Map<Category, Integer> c = counts();
        return String.format(Locale.ROOT, "Crosscoder[%d latents, %s vs %s: %d %s, %d %s, %d %s, %d %s", relative.length,
                baseName, finetunedName, c.get(Category.BASE_ONLY), Category.BASE_ONLY.label(), c.get(Category.SHARED),
                Category.SHARED.label(), c.get(Category.FINETUNED_ONLY), Category.FINETUNED_ONLY.label(),
                c.get(Category.OTHER), Category.OTHER.label())
                + (c.get(Category.DEAD) > 0 ? ", " + c.get(Category.DEAD) + " dead]" : "]");
    }
}
