package dev.jlens.sae.eval;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Example;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.ProbeData;
import dev.jlens.sae.LatentMatch;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeMetrics;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.viz.Plots;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Is sparsity a proxy for interpretability? TopK dictionaries of one width trained on one hook for several {@code k},
 * each measured on held-out tokens by its L0 and FVU and by how well its latents match tinylang's ground-truth
 * concepts: the mean over concepts ({@link LatentMatch#concepts}, labels {@link RandomControl#LABELS}) of the best
 * single latent's F1 ({@link RandomControl#conceptRecovery}), for all concepts and for word classes ({@code pos=}).
 *
 * <pre>{@code
 * var r = SparsitySweep.run(model, "blocks.1.hook_resid_post", train, eval, 256, List.of(2, 4, 8, 16, 32), cfg);
 * r.toTable(); r.chart();     // F1 against L0
 * }</pre>
 */
public final class SparsitySweep {
    private SparsitySweep() {}

    /** One dictionary: its {@code k}, held-out L0 and FVU, and mean best-latent F1 over all and word-class concepts. */
    public record Point(int k, double l0, double fvu, double meanF1, double wordClassF1, int concepts) {}

    /** The sweep, in the order of the {@code k}s given. */
    public record Result(String hook, int dSae, List<Point> points) {
        /** Checks and copies. */
        public Result {
            points = List.copyOf(points);
        }

        /** One row per {@code k}: L0, FVU, mean F1 (all concepts, word classes). */
        public Table toTable() {
            IntColumn k = IntColumn.create("k");
            DoubleColumn l0 = DoubleColumn.create("L0"), fvu = DoubleColumn.create("FVU"),
                    f1 = DoubleColumn.create("mean best F1"), wc = DoubleColumn.create("word-class F1");
            for (Point p : points) {
                k.append(p.k());
                l0.append(round(p.l0()));
                fvu.append(round(p.fvu()));
                f1.append(round(p.meanF1()));
                wc.append(round(p.wordClassF1()));
            }
            return Table.create("concept match against L0 (TopK, " + dSae + " latents, " + hook + ")", k, l0, fvu,
                    f1, wc);
        }

        /** Mean best-latent F1 (all concepts and word classes) against L0. */
        public XYChart chart() {
            double[] x = points.stream().mapToDouble(Point::l0).toArray();
            Map<String, double[][]> s = new LinkedHashMap<>();
            s.put("all concepts", new double[][] {x, points.stream().mapToDouble(Point::meanF1).toArray()});
            s.put("word classes", new double[][] {x, points.stream().mapToDouble(Point::wordClassF1).toArray()});
            return Plots.scatter("concept match against sparsity", "L0", "mean best-latent F1", s);
        }

        private static double round(double v) {
            return Math.round(v * 1000) / 1000.0;
        }
    }

    /**
     * Harvests {@code hook} over the tokens after BOS of both example sets, then for each {@code k} trains a TopK
     * dictionary of {@code dSae} latents ({@code train}'s settings) on the first and measures it on the second.
     */
    public static Result run(HookedTransformer model, String hook, List<Example<TinyLang.Meta>> trainExamples,
                             List<Example<TinyLang.Meta>> evalExamples, int dSae, List<Integer> ks,
                             SaeTrainConfig train) {
        ProbeData trainRows = TinyLangConcepts.harvest(model, hook, trainExamples, 32);
        ProbeData evalRows = TinyLangConcepts.harvest(model, hook, evalExamples, 32);
        Map<String, boolean[]> concepts = LatentMatch.concepts(evalExamples, RandomControl.LABELS);
        return run(hook, trainRows.x(), evalRows.x(), concepts, dSae, ks, train);
    }

    /** The sweep on given rows; {@code concepts} are over the rows of {@code evalRows}, in order. */
    public static Result run(String hook, float[][] trainRows, float[][] evalRows, Map<String, boolean[]> concepts,
                             int dSae, List<Integer> ks, SaeTrainConfig train) {
        if (ks.isEmpty()) throw new IllegalArgumentException("give at least one k");
        int dIn = trainRows[0].length;
        RowSource source = RowSource.of(trainRows, 0).withHookPoint(hook);
        float[] flat = new float[evalRows.length * dIn];
        for (int i = 0; i < evalRows.length; i++) System.arraycopy(evalRows[i], 0, flat, i * dIn, dIn);
        List<Point> points = new ArrayList<>();
        for (int k : ks) {
            if (k < 1 || k > dSae) throw new IllegalArgumentException("k must be in [1, " + dSae + "], got " + k);
            try (SparseCoder sae = SparseCoder.create(SaeConfig.of(dIn, dSae, new SaeConfig.TopK(k)), train.seed());
                 SaeTrainer trainer = SaeTrainer.of(source, train).add("sae", sae)) {
                trainer.progress(ProgressSink.none());
                trainer.train();
                SaeMetrics.Result core;
                try (NDManager nd = NDManager.newBaseManager()) {
                    core = SaeMetrics.of(sae, nd.create(flat, new Shape(evalRows.length, dIn)));
                }
                List<RandomControl.Recovery> rec = RandomControl.conceptRecovery(Latents.encode(sae, evalRows),
                        concepts);
                double all = rec.stream().mapToDouble(RandomControl.Recovery::f1).average().orElse(Double.NaN);
                double wc = rec.stream().filter(RandomControl.Recovery::wordClass)
                        .mapToDouble(RandomControl.Recovery::f1).average().orElse(Double.NaN);
                points.add(new Point(k, core.l0(), core.fvu(), all, wc, rec.size()));
            }
        }
        return new Result(hook, dSae, points);
    }
}
