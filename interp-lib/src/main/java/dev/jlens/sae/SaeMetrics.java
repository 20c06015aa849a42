package dev.jlens.sae;

import dev.jlens.util.Numbers;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import dev.jlens.store.ActivationSource;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.awt.Color;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * How well a dictionary reconstructs activations and how its latents fire: L0, MSE, fraction of variance
 * unexplained, cosine similarity of input and reconstruction, dead and dense fractions and every latent's firing
 * density. All in raw units, through the dictionary's inference rule ({@link SparseCoder#encode}).
 *
 * <pre>{@code
 * SaeMetrics.Result m = SaeMetrics.of(sae, source, SaeMetrics.Options.batches(8).batchSize(1024));
 * m.densityHistogram();                                       // log10 feature density, one call
 * SaeMetrics.toTable(Map.of("topk", m, "relu", m2));           // side by side
 * }</pre>
 */
public final class SaeMetrics {
    private SaeMetrics() {}

    /**
     * Metrics over a set of tokens.
     *
     * @param tokens        activation vectors evaluated
     * @param l0            mean number of latents firing (non-zero) per token
     * @param mse           squared error per element (mean over tokens and dimensions), raw units
     * @param fvu           sum of squared errors over the sum of squared deviations from the mean input
     * @param cosine        mean over tokens of the cosine similarity of input and reconstruction
     * @param deadFraction  fraction of latents that never fired on these tokens
     * @param denseFraction fraction of latents firing on more than {@link SaeTrainer#DENSE_FRACTION} of the tokens
     * @param density       each latent's firing frequency {@code [dSae]}
     */
    public record Result(long tokens, double l0, double mse, double fvu, double cosine, double deadFraction,
                         double denseFraction, float[] density) {

        public Result {
            density = density.clone();
        }

        @Override
        public float[] density() {
            return density.clone();
        }

        /** Number of latents. */
        public int dSae() {
            return density.length;
        }

        /**
         * Histogram of {@code log10} firing density over the live latents, in bins of 0.5 decades, with the dead
         * latents as a first bar of their own.
         */
        public CategoryChart densityHistogram() {
            return densityHistogram("feature density (log10)");
        }

        /** {@link #densityHistogram()} with a title. */
        public CategoryChart densityHistogram(String title) {
            double min = 0;
            for (float d : density) if (d > 0) min = Math.min(min, Math.log10(d));
            int lowBin = (int) Math.floor(min * 2);   // bins [b/2, (b+1)/2)
            int nBins = Math.max(1, -lowBin);
            List<String> labels = new ArrayList<>();
            List<Integer> counts = new ArrayList<>();
            labels.add("dead");
            counts.add(0);
            for (int b = 0; b < nBins; b++) {
                labels.add(String.format(Locale.ROOT, "%.1f", (lowBin + b) / 2.0));
                counts.add(0);
            }
            for (float d : density) {
                if (d <= 0) {
                    counts.set(0, counts.get(0) + 1);
                } else {
                    int b = Math.min(nBins - 1, Math.max(0, (int) Math.floor(Math.log10(d) * 2) - lowBin));
                    counts.set(b + 1, counts.get(b + 1) + 1);
                }
            }
            CategoryChart chart = new CategoryChartBuilder().width(Plots.WIDTH).height(Plots.HEIGHT)
                    .title(title).xAxisTitle("log10 firing frequency (bin start)").yAxisTitle("latents").build();
            chart.getStyler().setLegendVisible(false);
            chart.getStyler().setChartBackgroundColor(Color.WHITE);
            chart.getStyler().setXAxisLabelRotation(45);
            chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
            chart.addSeries("latents", labels, counts);
            return chart;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "SaeMetrics[%d tokens, %d latents: L0 %.2f | MSE %.4g | FVU %.4f | cos %.4f "
                    + "| dead %.1f%% | dense %.1f%%]", tokens, dSae(), l0, mse, fvu, cosine, 100 * deadFraction,
                    100 * denseFraction);
        }
    }

    /** Metrics of {@code sae} on raw activations {@code x [..., dIn]}. */
    public static Result of(SparseCoder sae, NDArray x) {
        Acc acc = new Acc(sae.cfg().dSae());
        acc.add(sae, x);
        return acc.result();
    }

    /**
     * Which batches of an {@link ActivationSource} to measure on: {@code batches} batches of {@code batchSize}
     * tokens, batch indices {@code fromBatch, fromBatch + 1, ...}. Named in the call:
     * {@code Options.batches(8).batchSize(1024).fromBatch(10_000)} (e.g. past the batches a dictionary trained on).
     *
     * @param batches   how many batches
     * @param batchSize tokens per batch (default {@value #DEFAULT_BATCH_SIZE})
     * @param fromBatch the first batch's index in the source (default 0)
     */
    public record Options(int batches, int batchSize, long fromBatch) {
        /** Tokens per batch unless {@link #batchSize(int)} says otherwise. */
        public static final int DEFAULT_BATCH_SIZE = 1024;

        public Options {
            if (batches <= 0 || batchSize <= 0 || fromBatch < 0) {
                throw new IllegalArgumentException("batches and batchSize must be positive and fromBatch >= 0, got "
                        + batches + ", " + batchSize + ", " + fromBatch);
            }
        }

        /** {@code n} batches of {@value #DEFAULT_BATCH_SIZE} tokens from batch 0. */
        public static Options batches(int n) {
            return new Options(n, DEFAULT_BATCH_SIZE, 0);
        }

        /** These options with {@code n} tokens per batch. */
        public Options batchSize(int n) {
            return new Options(batches, n, fromBatch);
        }

        /** These options starting at batch index {@code index}. */
        public Options fromBatch(long index) {
            return new Options(batches, batchSize, index);
        }

        /** Tokens measured in all. */
        public long tokens() {
            return (long) batches * batchSize;
        }
    }

    /** Metrics of {@code sae} on the batches of {@code source} that {@code options} names. */
    public static Result of(SparseCoder sae, ActivationSource source, Options options) {
        if (source.width() != sae.cfg().dIn()) {
            throw new IllegalArgumentException("the dictionary reads " + sae.cfg().dIn() + "-wide activations but the source "
                    + "gives " + source.width() + "-wide ones");
        }
        Acc acc = new Acc(sae.cfg().dSae());
        for (int b = 0; b < options.batches(); b++) {
            try (NDManager m = NDManager.newBaseManager()) {
                acc.add(sae, source.batch(options.fromBatch() + b, options.batchSize(), m));
            }
        }
        return acc.result();
    }

    /**
     * The positional form of {@link #of(SparseCoder, ActivationSource, Options)}, kept for notebooks written before
     * it: {@code of(sae, source, 8, 1024)} is {@code of(sae, source, Options.batches(8).batchSize(1024))}.
     *
     * @deprecated name the numbers: {@code of(sae, source, Options.batches(batches).batchSize(batchSize))}
     */
    @Deprecated(forRemoval = true)
    public static Result of(SparseCoder sae, ActivationSource source, int batches, int batchSize) {
        return of(sae, source, Options.batches(batches).batchSize(batchSize));
    }

    /** Several results side by side, one row per dictionary. */
    public static Table toTable(Map<String, Result> results) {
        StringColumn name = StringColumn.create("dictionary");
        LongColumn tokens = LongColumn.create("tokens");
        DoubleColumn dSae = DoubleColumn.create("d_sae"), l0 = DoubleColumn.create("l0"), mse = DoubleColumn.create("mse");
        DoubleColumn fvu = DoubleColumn.create("fvu"), cos = DoubleColumn.create("cosine");
        DoubleColumn dead = DoubleColumn.create("dead"), dense = DoubleColumn.create("dense");
        results.forEach((k, r) -> {
            name.append(k);
            tokens.append(r.tokens());
            dSae.append(r.dSae());
            l0.append(Numbers.significant(r.l0(), 4));
            mse.append(Numbers.significant(r.mse(), 4));
            fvu.append(Numbers.significant(r.fvu(), 4));
            cos.append(Numbers.significant(r.cosine(), 4));
            dead.append(Numbers.significant(r.deadFraction(), 4));
            dense.append(Numbers.significant(r.denseFraction(), 4));
        });
        return Table.create("SAE metrics", name, tokens, dSae, l0, mse, fvu, cos, dead, dense);
    }

    /** Several results side by side, named {@code 0, 1, ...}. */
    public static Table toTable(Result... results) {
        Map<String, Result> m = new LinkedHashMap<>();
        for (int i = 0; i < results.length; i++) m.put(Integer.toString(i), results[i]);
        return toTable(m);
    }

    /** Running sums over batches (doubles, so long evaluations do not lose precision). */
    private static final class Acc {
        final double[] fired;
        double[] sx;   // per-dimension sum of the inputs, for the mean
        long n;
        double sse, sumSq, cos, nonzero;

        Acc(int dSae) {
            fired = new double[dSae];
        }

        void add(SparseCoder sae, NDArray xAny) {
            int dIn = sae.cfg().dIn();
            if (xAny.getShape().get(xAny.getShape().dimension() - 1) != dIn) {
                throw new IllegalArgumentException("activations of shape " + xAny.getShape() + " do not end in the dictionary's "
                        + "width " + dIn);
            }
            try (NDScope scope = new NDScope()) {
                NDArray x = xAny.reshape(-1, dIn).toType(DataType.FLOAT32, false);
                NDArray f = sae.encode(x);
                NDArray recon = sae.decode(f);
                double s = sae.cfg().inputScale();
                if (s != 1.0) recon = recon.div((float) s);
                NDArray err = x.sub(recon);
                NDArray dot = x.mul(recon).sum(new int[]{1});
                NDArray cosT = dot.div(x.norm(new int[]{1}).mul(recon.norm(new int[]{1})).maximum(1e-12f));
                NDArray firedT = f.neq(0).toType(DataType.FLOAT32, false);
                float[] scalars = NDArrays.stack(new NDList(err.square().sum(), x.square().sum(), cosT.sum(), firedT.sum()))
                        .toFloatArray();
                float[] perLatent = firedT.sum(new int[]{0}).toFloatArray();
                float[] colSum = x.sum(new int[]{0}).toFloatArray();
                if (sx == null) sx = new double[dIn];
                for (int j = 0; j < dIn; j++) sx[j] += colSum[j];
                for (int j = 0; j < fired.length; j++) fired[j] += perLatent[j];
                n += x.getShape().get(0);
                sse += scalars[0];
                sumSq += scalars[1];
                cos += scalars[2];
                nonzero += scalars[3];
            }
        }

        Result result() {
            if (n == 0) throw new IllegalArgumentException("no activations to measure");
            int dIn = sx.length;
            double meanSq = 0;
            for (double v : sx) meanSq += (v / n) * (v / n);
            double centred = sumSq - n * meanSq;   // sum ||x - mean||^2
            float[] density = new float[fired.length];
            int dead = 0, dense = 0;
            for (int j = 0; j < fired.length; j++) {
                density[j] = (float) (fired[j] / n);
                if (fired[j] == 0) dead++;
                if (fired[j] / n > SaeTrainer.DENSE_FRACTION) dense++;
            }
            return new Result(n, nonzero / n, sse / ((double) n * dIn), centred > 0 ? sse / centred : Double.NaN, cos / n,
                    (double) dead / fired.length, (double) dense / fired.length, density);
        }
    }
}
