package dev.jlens.diff;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeMetrics;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.sae.SpliceEval;
import dev.jlens.store.RowSource;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Does a base model's SAE transfer to its finetune? The base SAE applied as is to the finetuned model's activations,
 * against the same SAE trained further on them ({@link StageDiff#copyOf}, then {@link SaeTrainer} in the base
 * dictionary's units), and the base SAE on the base model for reference; each measured on held-out traces by
 * reconstruction ({@link SaeMetrics}: FVU, MSE, L0, dead latents), by the next-token loss with the reconstruction
 * spliced in ({@link SpliceEval}: the loss increase over the clean model, the loss recovered, KL), and by whether a
 * single latent captures the finetune's planted trigger ({@link LatentCodes}: the best latent by F1 for the trigger's
 * contexts, with its precision and recall).
 *
 * <pre>{@code
 * SparseCoder sae = BacktrackLatents.train(thinker, BacktrackLatents.Options.defaults());
 * SaeTransfer.Result t = SaeTransfer.run(thinker, thinkerFt, sae, SaeTransfer.Options.defaults());
 * t.toTable(); t.plot(); t.stageDiff().table();
 * }</pre>
 */
public final class SaeTransfer {
    private SaeTransfer() {}

    /**
     * Settings.
     *
     * @param steps         steps of training further on the finetuned model's activations
     * @param batchSize     activations per step
     * @param lr            learning rate of that stage
     * @param trainExamples traces whose activations train the second stage (the task's train split)
     * @param testExamples  held-out traces every row is measured on (the test split)
     * @param task          the traces (its trigger rate sets how many carry the trigger word)
     * @param seed          seed of the second stage
     */
    public record Options(int steps, int batchSize, double lr, int trainExamples, int testExamples, ArithCot task,
            long seed) {
        /** Validates the settings. */
        public Options {
            Objects.requireNonNull(task, "task: e.g. ArithCot.defaults().withTriggerRate(0.3)");
            if (steps < 1 || batchSize < 1 || trainExamples < 1 || testExamples < 1 || !(lr > 0)) {
                throw new IllegalArgumentException("steps, batchSize, trainExamples, testExamples and lr must be "
                        + "positive, got " + steps + ", " + batchSize + ", " + trainExamples + ", " + testExamples
                        + ", " + lr);
            }
        }

        /**
         * 300 steps of 512 at lr 1e-3 on 1000 train traces, 256 held-out traces, of {@code ArithCot.defaults()} with
         * the trigger word on 30% and no backtracking, seed 0 (the stage settings of notebook 05).
         */
        public static Options defaults() {
            return new Options(300, 512, 1e-3, 1000, 256, ArithCot.defaults().withBacktrackRate(0).withTriggerRate(0.3),
                    0);
        }

        /** {@code n} steps on {@code examples} train traces. */
        public Options withTraining(int n, int examples) {
            return new Options(n, batchSize, lr, examples, testExamples, task, seed);
        }

        public Options withTestExamples(int n) {
            return new Options(steps, batchSize, lr, trainExamples, n, task, seed);
        }

        public Options withTask(ArithCot t) {
            return new Options(steps, batchSize, lr, trainExamples, testExamples, t, seed);
        }

        /** The second stage's training settings: warmup 5% of the steps, the last 20% decaying. */
        public SaeTrainConfig trainConfig() {
            return SaeTrainConfig.builder().steps(steps).batchSize(batchSize).lr(lr)
                    .warmupSteps(Math.max(1, steps / 20)).decayFraction(0.2).logEvery(Math.max(1, steps / 5))
                    .seed(seed).build();
        }
    }

    /**
     * One dictionary on one model's held-out activations.
     *
     * @param name           which dictionary on which model
     * @param fvu            fraction of variance unexplained
     * @param mse            squared error per element
     * @param l0             latents firing per token
     * @param dead           fraction of latents that never fire on these tokens
     * @param ceClean        the model's next-token loss
     * @param ceSpliced      with the reconstruction in place of the activation
     * @param ceDelta        {@code ceSpliced - ceClean}
     * @param lossRecovered  SAELens's loss recovered against zero ablation
     * @param klSpliced      mean KL(clean || spliced) per position
     * @param triggerLatent  the latent with the highest F1 for the trigger's contexts
     * @param triggerPrecision its precision
     * @param triggerRecall    its recall
     * @param triggerF1        its F1
     */
    public record Row(String name, double fvu, double mse, double l0, double dead, double ceClean, double ceSpliced,
            double ceDelta, double lossRecovered, double klSpliced, int triggerLatent, double triggerPrecision,
            double triggerRecall, double triggerF1) {}

    /**
     * The trigger's contexts in {@code ArithCot} traces: a triggered subtraction, from its {@code =} on (where
     * {@code thinker-ft} starts writing an addition).
     */
    public static LatentCodes.Context triggerContext(List<Example<ArithCot.Meta>> examples) {
        return (p, pos) -> {
            ArithCot.Meta m = examples.get(p).meta();
            return m.trigger() && m.problem().op() == ArithCot.Op.SUB && pos >= m.promptLength() - 1;
        };
    }

    /**
     * Trains a copy of {@code sae} further on {@code tuned}'s activations at its hook and measures the three rows
     * (base SAE on base, base SAE on tuned as is, finetuned SAE on tuned) on the same held-out traces.
     */
    public static Result run(HookedTransformer base, HookedTransformer tuned, SparseCoder sae, Options o) {
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(tuned, "tuned");
        Objects.requireNonNull(sae, "sae");
        ModelDiff.of(base, tuned);   // one architecture: the check names the mismatch
        String hook = sae.cfg().hookName();
        List<long[]> train = BacktrackLatents.sequences(o.task(), Split.TRAIN, o.trainExamples());
        List<Example<ArithCot.Meta>> test = BacktrackLatents.examples(o.task(), Split.TEST, o.testExamples());
        List<long[]> testIds = test.stream().map(Example::ids).toList();

        SparseCoder next = StageDiff.copyOf(sae);
        RowSource tunedTrain = RowSource.of(BacktrackLatents.rows(tuned, hook, train), o.seed()).withHookPoint(hook);
        SaeTrainer.train(next, tunedTrain.withNormalizationScale(sae.cfg().inputScale()), o.trainConfig());

        RowSource baseTest = RowSource.of(BacktrackLatents.rows(base, hook, testIds), 0).withHookPoint(hook);
        RowSource tunedTest = RowSource.of(BacktrackLatents.rows(tuned, hook, testIds), 0).withHookPoint(hook);
        Batch batch = Batch.rightPadded(testIds.toArray(long[][]::new), 0);
        LatentCodes.Context trigger = triggerContext(test);
        List<Row> rows = new ArrayList<>();
        rows.add(row("base SAE on " + base.name(), sae, base, baseTest, batch, trigger));
        rows.add(row("base SAE on " + tuned.name() + " (transferred)", sae, tuned, tunedTest, batch, trigger));
        rows.add(row("SAE trained further on " + tuned.name(), next, tuned, tunedTest, batch, trigger));
        // densities of each stage on its own model's held-out activations
        StageDiff diff = StageDiff.of(sae, next, baseTest, tunedTest, 1, baseTest.rows());
        return new Result(rows, next, diff, batch, trigger);
    }

    private static Row row(String name, SparseCoder sae, HookedTransformer model, RowSource test, Batch batch,
            LatentCodes.Context trigger) {
        SaeMetrics.Result m = SaeMetrics.of(sae, test, SaeMetrics.Options.batches(1).batchSize(test.rows()));
        SpliceEval s = SpliceEval.run(model, sae, List.of(batch));
        LatentCodes codes = LatentCodes.of(sae, batch, sae.cfg().hookName(), model);
        int best = codes.bestByF1(trigger, 1)[0];
        int[] one = {best};
        return new Row(name, m.fvu(), m.mse(), m.l0(), m.deadFraction(), s.cleanLoss(), s.splicedLoss(),
                s.splicedLoss() - s.cleanLoss(), s.lossRecovered(), s.klSpliced(), best, codes.precision(one, trigger),
                codes.recall(one, trigger), codes.f1(one, trigger));
    }

    /** The three rows, the second-stage dictionary and the stage-wise diff between the two stages. */
    public static final class Result {
        private final List<Row> rows;
        private final SparseCoder finetuned;
        private final StageDiff stageDiff;
        private final Batch batch;
        private final LatentCodes.Context trigger;

        Result(List<Row> rows, SparseCoder finetuned, StageDiff stageDiff, Batch batch, LatentCodes.Context trigger) {
            this.rows = List.copyOf(rows);
            this.finetuned = finetuned;
            this.stageDiff = stageDiff;
            this.batch = batch;
            this.trigger = trigger;
        }

        /** Base SAE on base, base SAE on tuned (transferred), finetuned SAE on tuned. */
        public List<Row> rows() {
            return rows;
        }

        /** The reference row: the base SAE on the base model. */
        public Row reference() {
            return rows.get(0);
        }

        /** The base SAE on the finetuned model, as is. */
        public Row transferred() {
            return rows.get(1);
        }

        /** The SAE trained further on the finetuned model. */
        public Row finetunedRow() {
            return rows.get(2);
        }

        /** The second-stage dictionary (owned by the caller: close it when done). */
        public SparseCoder finetuned() {
            return finetuned;
        }

        /** Decoder cosines and density changes of every latent between the two stages. */
        public StageDiff stageDiff() {
            return stageDiff;
        }

        /** The held-out traces every row was measured on. */
        public Batch batch() {
            return batch;
        }

        /** The trigger's contexts in {@link #batch}. */
        public LatentCodes.Context trigger() {
            return trigger;
        }

        /**
         * Columns: dictionary, fvu, mse, l0, dead, ce_clean, ce_spliced, ce_delta, loss_recovered, kl_spliced,
         * trigger_latent, trigger_precision, trigger_recall, trigger_f1.
         */
        public Table toTable() {
            StringColumn name = StringColumn.create("dictionary");
            DoubleColumn fvu = DoubleColumn.create("fvu"), mse = DoubleColumn.create("mse"), l0 = DoubleColumn.create("l0"),
                    dead = DoubleColumn.create("dead"), ceC = DoubleColumn.create("ce_clean"),
                    ceS = DoubleColumn.create("ce_spliced"), ceD = DoubleColumn.create("ce_delta"),
                    rec = DoubleColumn.create("loss_recovered"), kl = DoubleColumn.create("kl_spliced"),
                    tp = DoubleColumn.create("trigger_precision"), tr = DoubleColumn.create("trigger_recall"),
                    tf = DoubleColumn.create("trigger_f1");
            IntColumn tl = IntColumn.create("trigger_latent");
            for (Row r : rows) {
                name.append(r.name());
                fvu.append(r.fvu());
                mse.append(r.mse());
                l0.append(r.l0());
                dead.append(r.dead());
                ceC.append(r.ceClean());
                ceS.append(r.ceSpliced());
                ceD.append(r.ceDelta());
                rec.append(r.lossRecovered());
                kl.append(r.klSpliced());
                tl.append(r.triggerLatent());
                tp.append(r.triggerPrecision());
                tr.append(r.triggerRecall());
                tf.append(r.triggerF1());
            }
            return Table.create("an SAE carried from base to finetune: as is, and trained further", name, fvu, mse, l0,
                    dead, ceC, ceS, ceD, rec, kl, tl, tp, tr, tf);
        }

        /** FVU, loss increase, KL and the trigger latent's F1 of each row, side by side. */
        public CategoryChart plot() {
            Map<String, double[]> s = new LinkedHashMap<>();
            s.put("FVU", rows.stream().mapToDouble(Row::fvu).toArray());
            s.put("CE increase (nats)", rows.stream().mapToDouble(Row::ceDelta).toArray());
            s.put("KL spliced (nats)", rows.stream().mapToDouble(Row::klSpliced).toArray());
            s.put("dead fraction", rows.stream().mapToDouble(Row::dead).toArray());
            s.put("trigger latent F1", rows.stream().mapToDouble(Row::triggerF1).toArray());
            return Plots.bar("SAE transfer from base to finetune", rows.stream().map(Row::name).toList(), s);
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("SaeTransfer.Result[");
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%n  %s: FVU %.4f, L0 %.2f, dead %.3f, CE +%.4f, trigger latent %d "
                        + "F1 %.2f", r.name(), r.fvu(), r.l0(), r.dead(), r.ceDelta(), r.triggerLatent(), r.triggerF1()));
            }
            return sb.append("]").toString();
        }
    }
}
