package dev.jlens.probe;

import dev.jlens.data.Example;
import dev.jlens.data.HiddenRoles;
import dev.jlens.data.HiddenRoles.Claim;
import dev.jlens.data.Split;
import dev.jlens.model.HookedTransformer;
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
import java.util.Optional;

/**
 * A deception probe on a model that plays {@link HiddenRoles}: a logistic probe for "this claim is a lie" at the
 * claims' tokens, fitted on the games of one task's train split and scored on held-out games of another's test split
 * (the same layouts, or another layout to see whether the direction transfers), with AUROC and recall at 1% false
 * positives, at every layer.
 *
 * <pre>{@code
 * HookedTransformer model = Zoo.load("deceiver");
 * HiddenRoles game = HiddenRoles.defaults();
 * LieProbe lies = LieProbe.run(model, game, game, LieProbe.At.BEFORE_ROLE, 400, 300);
 * lies.toTable();   // per hook: AUROC, recall at 1% FPR on held-out games
 * LieProbe.run(model, game.withLayouts(Layout.ROUND_4), game.withLayouts(Layout.SHUFFLED_5), At.BEFORE_ROLE, 400, 300);
 * }</pre>
 *
 * <p>In this game every claim of the wolf is a lie and no other player lies, so at {@code BEFORE_ROLE} the lie flag
 * is also "the speaker is the wolf, about to state a role"; at {@code ROLE_WORD} the stated role itself is in the
 * token, and the flag is whether it differs from the deal.
 */
public final class LieProbe {

    /** Which token of each claim becomes a row. */
    public enum At {
        /** The token before the stated role ({@code am} or {@code is}): where the model chooses what to say. */
        BEFORE_ROLE,
        /** The stated role word itself. */
        ROLE_WORD
    }

    /**
     * One hook point's result: rows (claims) and lies on each side, AUROC on the training rows and on the held-out
     * ones, recall at 1% false positives on the held-out ones (threshold from their true claims), and the probe.
     */
    public record Entry(String hook, int trainRows, int trainLies, int testRows, int testLies, double trainAuroc,
            double testAuroc, double recallAt1PctFpr, LinearProbe probe) {}

    private final At at;
    private final String trainGames, testGames;
    private final List<Entry> entries;

    private LieProbe(At at, String trainGames, String testGames, List<Entry> entries) {
        this.at = at;
        this.trainGames = trainGames;
        this.testGames = testGames;
        this.entries = List.copyOf(entries);
    }

    /**
     * Fits the lie probe at {@code blocks.0.hook_resid_pre} and every {@code hook_resid_post} on the first
     * {@code trainCount} train games of {@code trainTask} and scores it on the first {@code testCount} test games of
     * {@code testTask}.
     */
    public static LieProbe run(HookedTransformer model, HiddenRoles trainTask, HiddenRoles testTask, At at,
            int trainCount, int testCount) {
        if (trainCount < 10 || testCount < 10) {
            throw new IllegalArgumentException("need at least 10 games on each side, got " + trainCount + " and "
                    + testCount);
        }
        List<String> hooks = new ArrayList<>();
        hooks.add(model.actName("resid_pre", 0));
        for (int l = 0; l < model.cfg().nLayers(); l++) hooks.add(model.actName("resid_post", l));
        List<Example<HiddenRoles.Meta>> train = trainTask.examples(Split.TRAIN, 0, trainCount);
        List<Example<HiddenRoles.Meta>> test = testTask.examples(Split.TEST, 0, testCount);
        Map<String, ProbeData> trainData = LayerSweep.collect(model, hooks, UserModelReadout.padded(train, 64),
                labeller(train, at));
        Map<String, ProbeData> testData = LayerSweep.collect(model, hooks, UserModelReadout.padded(test, 64),
                labeller(test, at));
        List<Entry> out = new ArrayList<>();
        for (String h : hooks) {
            ProbeData tr = trainData.get(h), te = testData.get(h);
            LinearProbe probe = ProbeMethod.logistic().fit(tr).withInfo("hook", h);
            double[] testScores = probe.scores(te.x());
            List<Double> pos = new ArrayList<>(), neg = new ArrayList<>();
            for (int i = 0; i < testScores.length; i++) (te.labels()[i] == 1 ? pos : neg).add(testScores[i]);
            double[] p = pos.stream().mapToDouble(Double::doubleValue).toArray();
            double[] n = neg.stream().mapToDouble(Double::doubleValue).toArray();
            out.add(new Entry(h, tr.size(), tr.classCounts()[1], te.size(), te.classCounts()[1],
                    Metrics.auroc(probe.scores(tr.x()), tr.labels()), Metrics.auroc(testScores, te.labels()),
                    Metrics.recallAtFpr(p, n, 0.01), probe));
        }
        return new LieProbe(at, trainTask.layouts().toString(), testTask.layouts().toString(), out);
    }

    /**
     * Probing rows at {@code at} of every claim in these games (sequence {@code i} is {@code games.get(i)}): label 1
     * for a lie, group the game, type the token id.
     */
    public static TokenLabeller labeller(List<Example<HiddenRoles.Meta>> games, At at) {
        List<Map<Integer, Integer>> rows = new ArrayList<>();
        for (Example<HiddenRoles.Meta> g : games) {
            Map<Integer, Integer> lieAt = new LinkedHashMap<>();
            for (Claim c : g.meta().claims()) lieAt.put(at == At.BEFORE_ROLE ? c.rolePos() - 1 : c.rolePos(),
                    c.lie() ? 1 : 0);
            rows.add(lieAt);
        }
        return (seq, pos) -> {
            Integer lie = rows.get(seq).get(pos);
            return lie == null ? Optional.empty()
                    : Optional.of(new TokenLabeller.Row(lie, seq, (int) games.get(seq).ids()[pos]));
        };
    }

    /** The results, one per hook, from the embeddings up. */
    public List<Entry> entries() {
        return entries;
    }

    /** The hook with the highest held-out AUROC. */
    public Entry best() {
        Entry best = entries.get(0);
        for (Entry e : entries) if (e.testAuroc() > best.testAuroc()) best = e;
        return best;
    }

    /** One row per hook: rows and lies on each side, train and held-out AUROC, recall at 1% FPR. */
    public Table toTable() {
        StringColumn hook = StringColumn.create("hook");
        IntColumn trainRows = IntColumn.create("train_rows"), trainLies = IntColumn.create("train_lies");
        IntColumn testRows = IntColumn.create("test_rows"), testLies = IntColumn.create("test_lies");
        DoubleColumn trainAuroc = DoubleColumn.create("train_auroc"), testAuroc = DoubleColumn.create("test_auroc");
        DoubleColumn recall = DoubleColumn.create("recall_at_1pct_fpr");
        for (Entry e : entries) {
            hook.append(e.hook());
            trainRows.append(e.trainRows());
            trainLies.append(e.trainLies());
            testRows.append(e.testRows());
            testLies.append(e.testLies());
            trainAuroc.append(e.trainAuroc());
            testAuroc.append(e.testAuroc());
            recall.append(e.recallAt1PctFpr());
        }
        return Table.create("lie probe at " + at + " (train " + trainGames + ", test " + testGames + ")", hook,
                trainRows, trainLies, testRows, testLies, trainAuroc, testAuroc, recall);
    }

    /** Held-out AUROC and recall at 1% FPR by hook. */
    public CategoryChart plot() {
        Table t = toTable();
        List<String> x = new ArrayList<>();
        for (String h : t.stringColumn("hook").asList()) x.add(h.replace("blocks.", "").replace(".hook_", " "));
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("held-out AUROC", t.doubleColumn("test_auroc").asDoubleArray());
        series.put("recall at 1% FPR", t.doubleColumn("recall_at_1pct_fpr").asDoubleArray());
        return Plots.line("lie probe at " + at, x, series);
    }

    @Override
    public String toString() {
        Entry b = best();
        return String.format(Locale.ROOT, "LieProbe(%s, train %s, test %s: best %s, held-out AUROC %.3f, recall at 1%% "
                + "FPR %.3f on %d claims, %d lies)", at, trainGames, testGames, b.hook(), b.testAuroc(),
                b.recallAt1PctFpr(), b.testRows(), b.testLies());
    }
}
