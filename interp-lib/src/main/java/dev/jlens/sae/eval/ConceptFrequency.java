package dev.jlens.sae.eval;

import dev.jlens.data.Example;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.util.Numbers;
import dev.jlens.util.SplitMix;
import dev.jlens.viz.Plots;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Which concepts get a dedicated latent as their frequency is varied (issue 14, item 6), causally and without
 * retraining the model: for each target concept and each keep fraction {@code f}, the training rows on which the
 * target holds are subsampled to a fraction {@code f} of them (a seeded choice, nested: the rows kept at a smaller
 * {@code f} are among those kept at a larger one), every other row kept as it is; {@code f > 1} raises the frequency by
 * repeating the target's rows ({@code floor(f)} copies of each, one more for a seeded {@code f - floor(f)} of them).
 * The same dictionary recipe (kind, width, seed, steps, batch size; {@code train.seed()} also seeds the batch order and
 * the choice of kept rows) is trained on each reweighted row set and scored on
 * the unchanged held-out rows: the target's best single latent's F1 ({@code act > 0}) and AUROC
 * ({@link RandomControl#conceptRecovery}), learned when the F1 reaches the threshold ({@link ConceptLearning}'s 0.8 by
 * default). The mean best F1 over the other targets is the control: reweighting one concept should not move it.
 * {@code f = 1} is the unchanged row set, trained once and shared by every target.
 *
 * <pre>{@code
 * var r = ConceptFrequency.sweep(model, "blocks.1.hook_resid_post", lang.examples(Split.TRAIN, 0, 128),
 *         lang.examples(Split.TEST, 0, 64), List.of("pos=NOUN", "pos=VERB", "number=PLURAL", "word=the", "word=near"),
 *         List.of(1.0, 0.3, 0.1, 0.03, 0.01), 256, new SaeConfig.BatchTopK(8),
 *         SaeTrainConfig.builder().steps(400).batchSize(512).lr(4e-3).build());
 * display(r.toTable());   // target x keep fraction: training frequency, held-out F1 and AUROC, learned
 * display(r.chart());     // F1 against training frequency, one line per target
 * }</pre>
 *
 * <p>Repeated rows add no new activations: a raised frequency is the same tokens seen more often, and a lowered one
 * also leaves fewer distinct examples of the concept; the steps are fixed, so the dictionary sees the same number of
 * tokens at every {@code f}.
 */
public final class ConceptFrequency {
    /** {@link ConceptLearning.Options#defaults()}' learned-F1 threshold. */
    public static final double THRESHOLD = 0.8;

    private ConceptFrequency() {}

    /**
     * One dictionary trained with one target reweighted.
     *
     * @param target        the reweighted concept
     * @param keepFraction  the fraction of its training rows kept ({@code > 1}: repeated)
     * @param trainRows     training rows after reweighting
     * @param targetRows    of them, rows on which the target holds
     * @param trainFrequency {@code targetRows / trainRows}
     * @param f1            the target's best single latent's F1 on the held-out rows
     * @param auroc         its best single latent's AUROC on the held-out rows
     * @param latent        the latent with that F1
     * @param othersF1      mean best F1 of the other targets on the held-out rows (NaN with one target)
     */
    public record Point(String target, double keepFraction, int trainRows, int targetRows, double trainFrequency,
                        double f1, double auroc, int latent, double othersF1) {}

    /**
     * The sweep.
     *
     * @param hook      the hook
     * @param dSae      the dictionaries' width
     * @param targets   the targets, in order
     * @param fractions keep fractions, in order
     * @param points    one per target and fraction, targets outer
     * @param threshold learned when the F1 reaches this
     */
    public record Result(String hook, int dSae, List<String> targets, List<Double> fractions, List<Point> points,
                         double threshold) {
        /** Copies. */
        public Result {
            targets = List.copyOf(targets);
            fractions = List.copyOf(fractions);
            points = List.copyOf(points);
        }

        /** The same points read at another learned-F1 threshold. */
        public Result withThreshold(double t) {
            return new Result(hook, dSae, targets, fractions, points, t);
        }

        /** The point of {@code target} at {@code keepFraction}. */
        public Point point(String target, double keepFraction) {
            return points.stream().filter(p -> p.target().equals(target) && p.keepFraction() == keepFraction)
                    .findFirst().orElseThrow(() -> new IllegalArgumentException("no point for " + target + " at "
                            + keepFraction + "; targets " + targets + ", fractions " + fractions));
        }

        /** Whether {@code target}'s best latent reaches the threshold at {@code keepFraction}. */
        public boolean learned(String target, double keepFraction) {
            return point(target, keepFraction).f1() >= threshold;
        }

        /**
         * One row per target and keep fraction: training rows, target rows, training frequency, held-out F1 and AUROC,
         * learned, and the other targets' mean F1.
         */
        public Table toTable() {
            StringColumn target = StringColumn.create("target"), learned = StringColumn.create("learned");
            DoubleColumn keep = DoubleColumn.create("keep"), freq = DoubleColumn.create("train frequency"),
                    f1 = DoubleColumn.create("F1"), auroc = DoubleColumn.create("AUROC"),
                    others = DoubleColumn.create("others F1");
            IntColumn rows = IntColumn.create("train rows"), trows = IntColumn.create("target rows"),
                    latent = IntColumn.create("latent");
            for (Point p : points) {
                target.append(p.target());
                keep.append(p.keepFraction());
                rows.append(p.trainRows());
                trows.append(p.targetRows());
                freq.append(Numbers.significant(p.trainFrequency(), 3));
                f1.append(Numbers.significant(p.f1(), 3));
                auroc.append(Numbers.significant(p.auroc(), 3));
                latent.append(p.latent());
                learned.append(p.f1() >= threshold ? "yes" : "no");
                others.append(Numbers.significant(p.othersF1(), 3));
            }
            return Table.create("best-latent F1 against a target's training frequency (" + hook + ", " + dSae
                    + " latents, learned: F1 >= " + threshold + ")", target, keep, rows, trows, freq, f1, auroc,
                    latent, learned, others);
        }

        /** Held-out F1 against the target's training frequency (log axis), one line per target. */
        public XYChart chart() {
            Map<String, double[][]> s = new LinkedHashMap<>();
            for (String t : targets) {
                List<Point> ps = points.stream().filter(p -> p.target().equals(t))
                        .sorted((a, b) -> Double.compare(a.trainFrequency(), b.trainFrequency())).toList();
                // a log axis has no 0: a target with no training row is drawn at a tenth of its smallest frequency
                double min = ps.stream().mapToDouble(Point::trainFrequency).filter(v -> v > 0).min().orElse(1e-4);
                s.put(t, new double[][] {ps.stream().mapToDouble(p -> p.trainFrequency() > 0 ? p.trainFrequency()
                        : min / 10).toArray(), ps.stream().mapToDouble(Point::f1).toArray()});
            }
            XYChart c = Plots.scatter("best-latent F1 against training frequency (" + dSae + " latents)",
                    "target's frequency in the training rows", "held-out best-latent F1", s);
            c.getStyler().setXAxisLogarithmic(true);
            c.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            for (XYSeries xs : c.getSeriesMap().values()) xs.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            return c;
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("ConceptFrequency(" + hook + ", " + dSae + " latents; F1 by keep "
                    + fractions + ":");
            for (String t : targets) {
                sb.append(' ').append(t).append(' ');
                List<String> v = new ArrayList<>();
                for (double f : fractions) v.add(String.valueOf(Numbers.significant(point(t, f).f1(), 3)));
                sb.append(v);
            }
            return sb.append(')').toString();
        }
    }

    /**
     * Harvests {@code hook} over the tokens after BOS of both example sets, reads the concepts of each
     * ({@link ConceptLearning#concepts} with {@link ConceptLearning.Options#defaults()}: label values and words) and
     * runs {@link #sweep(String, float[][], Map, float[][], Map, List, List, int, SaeConfig.Kind, SaeTrainConfig)}.
     */
    public static Result sweep(HookedTransformer model, String hook, List<Example<TinyLang.Meta>> trainExamples,
                               List<Example<TinyLang.Meta>> evalExamples, List<String> targets,
                               List<Double> keepFractions, int dSae, SaeConfig.Kind kind, SaeTrainConfig train) {
        ConceptLearning.Options o = ConceptLearning.Options.defaults();
        float[][] trainRows = TinyLangConcepts.harvest(model, hook, trainExamples, o.harvestBatch()).x();
        float[][] evalRows = TinyLangConcepts.harvest(model, hook, evalExamples, o.harvestBatch()).x();
        return sweep(hook, trainRows, ConceptLearning.concepts(trainExamples, o), evalRows,
                ConceptLearning.concepts(evalExamples, o), targets, keepFractions, dSae, kind, train);
    }

    /**
     * For each target and keep fraction, trains a dictionary of {@code dSae} latents of {@code kind} ({@code train}'s
     * settings, seed and steps) on {@code trainRows} with the target's rows reweighted ({@link #reweight}) and scores
     * every target on {@code evalRows}. {@code trainConcepts} are over {@code trainRows}, {@code evalConcepts} over
     * {@code evalRows}, in order; both must hold every target.
     */
    public static Result sweep(String hook, float[][] trainRows, Map<String, boolean[]> trainConcepts,
                               float[][] evalRows, Map<String, boolean[]> evalConcepts, List<String> targets,
                               List<Double> keepFractions, int dSae, SaeConfig.Kind kind, SaeTrainConfig train) {
        if (trainRows.length == 0 || evalRows.length == 0) throw new IllegalArgumentException("no rows");
        if (targets.isEmpty() || keepFractions.isEmpty()) throw new IllegalArgumentException("give targets and keep fractions");
        if (targets.stream().distinct().count() != targets.size()) throw new IllegalArgumentException("targets repeat: " + targets);
        if (keepFractions.stream().distinct().count() != keepFractions.size()) {
            throw new IllegalArgumentException("keep fractions repeat: " + keepFractions);
        }
        for (double f : keepFractions) {
            if (!(f >= 0) || Double.isInfinite(f)) throw new IllegalArgumentException("keep fractions must be >= 0, got " + f);
        }
        Map<String, boolean[]> eval = new LinkedHashMap<>();
        for (String t : targets) {
            boolean[] tr = trainConcepts.get(t), ev = evalConcepts.get(t);
            if (tr == null || ev == null) {
                throw new IllegalArgumentException("target '" + t + "' is not a concept of the " + (tr == null
                        ? "training" : "held-out") + " rows; concepts: " + (tr == null ? trainConcepts : evalConcepts).keySet());
            }
            if (tr.length != trainRows.length || ev.length != evalRows.length) {
                throw new IllegalArgumentException("target '" + t + "' has " + tr.length + " training and " + ev.length
                        + " held-out tokens, the rows " + trainRows.length + " and " + evalRows.length);
            }
            eval.put(t, ev);
        }
        int dIn = trainRows[0].length;
        List<RandomControl.Recovery> unchanged = null;
        List<Point> points = new ArrayList<>();
        for (int ti = 0; ti < targets.size(); ti++) {
            String t = targets.get(ti);
            boolean[] holds = trainConcepts.get(t);
            for (double f : keepFractions) {
                int[] idx = reweight(holds, f, train.seed() + 31L * ti);
                List<RandomControl.Recovery> rec;
                if (f == 1 && unchanged != null) {
                    rec = unchanged;
                } else {
                    float[][] rows = new float[idx.length][];
                    for (int i = 0; i < idx.length; i++) rows[i] = trainRows[idx[i]];
                    rec = trainAndScore(hook, rows, evalRows, eval, dIn, dSae, kind, train);
                    if (f == 1) unchanged = rec;
                }
                int kept = 0;
                for (int i : idx) if (holds[i]) kept++;
                double others = 0;
                for (int j = 0; j < targets.size(); j++) if (j != ti) others += rec.get(j).f1();
                RandomControl.Recovery r = rec.get(ti);
                points.add(new Point(t, f, idx.length, kept, (double) kept / idx.length, r.f1(), r.auroc(),
                        r.f1Latent(), targets.size() > 1 ? others / (targets.size() - 1) : Double.NaN));
            }
        }
        return new Result(hook, dSae, targets, keepFractions, points, THRESHOLD);
    }

    private static List<RandomControl.Recovery> trainAndScore(String hook, float[][] rows, float[][] evalRows,
                                                              Map<String, boolean[]> concepts, int dIn, int dSae,
                                                              SaeConfig.Kind kind, SaeTrainConfig train) {
        try (SparseCoder sae = SparseCoder.create(SaeConfig.of(dIn, dSae, kind), train.seed());
             SaeTrainer trainer = SaeTrainer.of(RowSource.of(rows, train.seed()).withHookPoint(hook), train).add("sae", sae)) {
            trainer.progress(ProgressSink.none());
            trainer.train();
            return RandomControl.conceptRecovery(Latents.encode(sae, evalRows), concepts);
        }
    }

    /**
     * The training rows after reweighting, as indices into the rows (in their order, repeats after the originals):
     * every row where {@code holds} is false once; of the rows where it holds, {@code round(f * n)} for
     * {@code f <= 1}, chosen by a seeded permutation whose prefixes are the kept sets (so smaller fractions keep
     * subsets), and for {@code f > 1} each {@code floor(f)} times plus once more for the first
     * {@code round((f - floor(f)) * n)} of the permutation.
     */
    static int[] reweight(boolean[] holds, double f, long seed) {
        List<Integer> target = new ArrayList<>();
        for (int i = 0; i < holds.length; i++) if (holds[i]) target.add(i);
        int n = target.size();
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) perm[i] = target.get(i);
        SplittableRandom r = new SplittableRandom(SplitMix.mix(seed));
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        int whole = (int) Math.floor(f);
        int extra = (int) Math.round((f - whole) * n);
        boolean[] keep = new boolean[holds.length];
        boolean[] repeat = new boolean[holds.length];
        if (whole == 0) {
            for (int i = 0; i < extra; i++) keep[perm[i]] = true;
        } else {
            for (int i : perm) keep[i] = true;
            for (int i = 0; i < extra; i++) repeat[perm[i]] = true;
        }
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < holds.length; i++) if (!holds[i] || keep[i]) out.add(i);
        for (int c = 1; c < whole; c++) for (int i = 0; i < holds.length; i++) if (holds[i]) out.add(i);
        if (whole >= 1) for (int i = 0; i < holds.length; i++) if (repeat[i]) out.add(i);
        return out.stream().mapToInt(Integer::intValue).toArray();
    }
}
