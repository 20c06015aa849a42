package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.data.Example;
import dev.jlens.data.HiddenRoles;
import dev.jlens.data.HiddenRoles.Claim;
import dev.jlens.data.HiddenRoles.ClaimKind;
import dev.jlens.data.HiddenRoles.Role;
import dev.jlens.data.Split;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Does a model of {@link HiddenRoles} keep track of who holds which role? At each role claim ({@code NAME : i am
 * ROLE .}), from every layer's residual stream, logistic probes read the speaker's true role, the role each other
 * seat holds ("is the player at seat s the wolf"), the role about to be claimed (as the text has it, and as the model
 * itself would say it), with grouped cross-validation (no game on both sides) and control tasks.
 *
 * <pre>{@code
 * HookedTransformer model = Zoo.load("deceiver");
 * RoleProbes roles = RoleProbes.run(model, HiddenRoles.defaults(), 150);   // ~10-30 s
 * roles.toTable();          // at, target, hook: accuracy, control, selectivity, majority, accuracy on wolf claims
 * roles.wolfTable();        // the wolf's claims: true role read vs the claim read, per hook
 * roles.plot(RoleProbes.At.BEFORE_ROLE);  roles.wolfPlot();
 * }</pre>
 *
 * <p><b>The wolf's claims.</b> The interesting rows are the wolf's: at {@code BEFORE_ROLE} ({@code am}) the wolf is
 * about to say {@code seer} or {@code villager}. {@link Entry#wolfAccuracy()} of the {@code SPEAKER_ROLE} probe is the
 * fraction of the wolf's claims on which the out-of-fold probe reads {@code wolf}; of {@code MODEL_CLAIM}, the
 * fraction on which it reads what the model will say. In the text the wolf's claim is a fair coin of the generator
 * ({@code wolfClaimsSeer}), so {@code CLAIMED_ROLE} cannot be read before the word on the wolf's rows (about half);
 * {@code MODEL_CLAIM}, the model's own greedy choice between {@code seer} and {@code villager} at that position, is
 * what it is "about to say".
 *
 * <p><b>Caveat.</b> The deal is public: the text starts by listing every seat's name and role. "Modelling other
 * players" here means binding each name to its dealt role and carrying that to the claim, not inferring hidden roles
 * from behaviour. Only role claims are rows (not the seer's reports). Control tasks give each speaker's name one random
 * label (at {@code am} the token is always the same, so the name is the type that varies).
 */
public final class RoleProbes {

    /** Which token of each role claim becomes a row. */
    public enum At {
        /** The speaker's name, before anything of the claim is said. */
        SPEAKER_NAME,
        /** The token before the claimed role ({@code am}): where the model chooses what to say. */
        BEFORE_ROLE
    }

    /** What a probe reads. */
    public enum Kind {
        /** The speaker's true role (villager, seer, wolf). */
        SPEAKER_ROLE,
        /** The role the text claims next (villager or seer: no role claim says wolf). */
        CLAIMED_ROLE,
        /** The model's own greedy choice between villager and seer at the claimed role's position. */
        MODEL_CLAIM,
        /** Whether the player at seat {@code s} (not the speaker) is the wolf. */
        SEAT_IS_WOLF
    }

    /** One probe target: a kind and, for {@code SEAT_IS_WOLF}, the seat. */
    public record Target(Kind kind, int seat) {
        /** Validates the seat. */
        public Target {
            if (kind == Kind.SEAT_IS_WOLF && (seat < 0 || seat >= HiddenRoles.MAX_PLAYERS)) {
                throw new IllegalArgumentException("seat must be 0.." + (HiddenRoles.MAX_PLAYERS - 1) + ", got " + seat);
            }
            if (kind != Kind.SEAT_IS_WOLF && seat != -1) {
                throw new IllegalArgumentException(kind + " has no seat: give -1");
            }
        }

        /** A target without a seat. */
        public static Target of(Kind kind) {
            return new Target(kind, -1);
        }

        /** "Is the player at {@code seat} the wolf". */
        public static Target seatIsWolf(int seat) {
            return new Target(Kind.SEAT_IS_WOLF, seat);
        }

        /** {@code speaker_role}, {@code seat_2_is_wolf}, ... */
        public String label() {
            return kind == Kind.SEAT_IS_WOLF ? "seat_" + seat + "_is_wolf" : kind.name().toLowerCase(Locale.ROOT);
        }

        @Override
        public String toString() {
            return label();
        }
    }

    /**
     * One probe: where, what and at which hook; its rows and held-out accuracy (mean and sd over grouped folds),
     * control accuracy, selectivity, majority-class rate, and the out-of-fold accuracy on the wolf's claims.
     */
    public record Entry(At at, Target target, String hook, int rows, ProbeReport report, double majority,
            int wolfRows, double wolfAccuracy) {
        /** Held-out accuracy. */
        public double accuracy() {
            return report.task().mean();
        }
    }

    /**
     * Logistic regression with L2 {@code 1e-2}, at most 100 iterations, 3 grouped folds, seed 0 (few folds: the run
     * fits 2 probes per fold for 2 positions, up to 8 targets and every layer).
     */
    public static final LayerSweep.Options OPTIONS = new LayerSweep.Options(new ProbeMethod.Logistic(1e-2, 100), 3, 0);

    private final List<Entry> entries;
    private final int games;

    private RoleProbes(List<Entry> entries, int games) {
        this.entries = List.copyOf(entries);
        this.games = games;
    }

    /** Every target at both positions on the first {@code games} test games of {@code task}, with {@link #OPTIONS}. */
    public static RoleProbes run(HookedTransformer model, HiddenRoles task, int games) {
        return run(model, task, games, OPTIONS);
    }

    /** As {@link #run(HookedTransformer, HiddenRoles, int)} with other probe options. */
    public static RoleProbes run(HookedTransformer model, HiddenRoles task, int games, LayerSweep.Options options) {
        if (games < 20) throw new IllegalArgumentException("need at least 20 games, got " + games);
        List<Example<HiddenRoles.Meta>> exs = task.examples(Split.TEST, 0, games);
        List<String> hooks = new ArrayList<>();
        hooks.add(model.actName("resid_pre", 0));
        for (int l = 0; l < model.cfg().nLayers(); l++) hooks.add(model.actName("resid_post", l));
        List<Batch> batches = UserModelReadout.padded(exs, 64);
        List<int[]> rows = claimRows(exs);   // {game, claim index}, in the order collect visits them
        int[] modelClaims = modelClaims(model, task, exs, batches, rows);
        List<Target> targets = new ArrayList<>(List.of(Target.of(Kind.SPEAKER_ROLE), Target.of(Kind.CLAIMED_ROLE),
                Target.of(Kind.MODEL_CLAIM)));
        int most = task.layouts().stream().mapToInt(HiddenRoles.Layout::players).max().orElseThrow();
        for (int s = 0; s < most; s++) targets.add(Target.seatIsWolf(s));
        List<Entry> out = new ArrayList<>();
        for (At at : At.values()) {
            Map<String, ProbeData> data = LayerSweep.collect(model, hooks, batches, labeller(exs, at));
            if (data.get(hooks.get(0)).size() != rows.size()) {
                throw new IllegalStateException("collected " + data.get(hooks.get(0)).size() + " rows for "
                        + rows.size() + " role claims");
            }
            for (Target t : targets) {
                List<Integer> keep = new ArrayList<>();
                List<Integer> labels = new ArrayList<>();
                for (int i = 0; i < rows.size(); i++) {
                    OptionalLabel y = label(t, exs.get(rows.get(i)[0]).meta(),
                            exs.get(rows.get(i)[0]).meta().claims().get(rows.get(i)[1]), modelClaims[i]);
                    if (y.present) {
                        keep.add(i);
                        labels.add(y.value);
                    }
                }
                int[] idx = keep.stream().mapToInt(Integer::intValue).toArray();
                int[] y = labels.stream().mapToInt(Integer::intValue).toArray();
                int nClasses = t.kind() == Kind.SPEAKER_ROLE ? 3 : 2;
                boolean[] wolf = new boolean[idx.length];
                int wolfRows = 0;
                for (int i = 0; i < idx.length; i++) {
                    wolf[i] = exs.get(rows.get(idx[i])[0]).meta().claims().get(rows.get(idx[i])[1]).speakerRole()
                            == Role.WOLF;
                    if (wolf[i]) wolfRows++;
                }
                for (String h : hooks) {
                    ProbeData all = data.get(h);
                    ProbeData d = ProbeData.of(all.subset(idx).x(), y, all.subset(idx).groups(), nClasses)
                            .withTypes(all.subset(idx).types().orElseThrow());
                    List<GroupKFold.Fold> folds = GroupKFold.split(d.groups(), options.folds(), options.seed());
                    int[] pred = CrossValidation.predictions(d, options.method(), folds);
                    CvResult task1 = foldAccuracies(pred, y, folds);
                    ProbeData ctlData = ControlTask.of(d, options.seed());
                    CvResult control = foldAccuracies(CrossValidation.predictions(ctlData, options.method(), folds),
                            ctlData.labels(), folds);
                    int right = 0;
                    for (int i = 0; i < idx.length; i++) if (wolf[i] && pred[i] == y[i]) right++;
                    double majority = Arrays.stream(d.classCounts()).max().orElse(0) / (double) d.size();
                    out.add(new Entry(at, t, h, d.size(), new ProbeReport(task1, Optional.of(control)), majority,
                            wolfRows, wolfRows == 0 ? Double.NaN : right / (double) wolfRows));
                }
            }
        }
        return new RoleProbes(out, games);
    }

    /** Held-out accuracy per fold from out-of-fold predictions (the same folds, so one fit per fold). */
    private static CvResult foldAccuracies(int[] pred, int[] y, List<GroupKFold.Fold> folds) {
        double[] acc = new double[folds.size()];
        for (GroupKFold.Fold f : folds) {
            int right = 0;
            for (int i : f.test()) if (pred[i] == y[i]) right++;
            acc[f.index()] = right / (double) f.test().length;
        }
        return new CvResult(acc, java.util.OptionalDouble.empty());
    }

    private record OptionalLabel(boolean present, int value) {
        static final OptionalLabel NONE = new OptionalLabel(false, 0);
    }

    private static OptionalLabel label(Target t, HiddenRoles.Meta m, Claim c, int modelClaim) {
        return switch (t.kind()) {
            case SPEAKER_ROLE -> new OptionalLabel(true, c.speakerRole().ordinal());
            case CLAIMED_ROLE -> new OptionalLabel(true, c.claimedRole() == Role.SEER ? 1 : 0);
            case MODEL_CLAIM -> new OptionalLabel(true, modelClaim);
            case SEAT_IS_WOLF -> t.seat() < m.roles().size() && t.seat() != c.speaker()
                    ? new OptionalLabel(true, m.roles().get(t.seat()) == Role.WOLF ? 1 : 0) : OptionalLabel.NONE;
        };
    }

    /** {game, index of the claim in its game's claims} of every role claim, in text order. */
    private static List<int[]> claimRows(List<Example<HiddenRoles.Meta>> exs) {
        List<int[]> rows = new ArrayList<>();
        for (int g = 0; g < exs.size(); g++) {
            List<Claim> claims = exs.get(g).meta().claims();
            for (int c = 0; c < claims.size(); c++) if (claims.get(c).kind() == ClaimKind.ROLE_CLAIM) rows.add(new int[] {g, c});
        }
        return rows;
    }

    /** For each role claim, 1 if the model's logit for {@code seer} beats {@code villager} where the role comes. */
    private static int[] modelClaims(HookedTransformer model, HiddenRoles task, List<Example<HiddenRoles.Meta>> exs,
            List<Batch> batches, List<int[]> rows) {
        int seer = (int) task.tokenId(Role.SEER.word()), villager = (int) task.tokenId(Role.VILLAGER.word());
        int[] out = new int[rows.size()];
        int r = 0, seq = 0;
        for (Batch b : batches) {
            try (NDScope scope = new NDScope()) {
                NDArray logits = model.forward(b);
                int len = (int) logits.getShape().get(1), vocab = (int) logits.getShape().get(2);
                float[] flat = logits.toFloatArray();
                for (; r < rows.size() && rows.get(r)[0] < seq + b.size(); r++) {
                    Claim c = exs.get(rows.get(r)[0]).meta().claims().get(rows.get(r)[1]);
                    int base = ((rows.get(r)[0] - seq) * len + c.rolePos() - 1) * vocab;
                    out[r] = flat[base + seer] > flat[base + villager] ? 1 : 0;
                }
            }
            seq += b.size();
        }
        return out;
    }

    /**
     * Rows at {@code at} of every role claim (sequence {@code i} is {@code games.get(i)}): label the speaker's true
     * role, group the game, type the speaker's name.
     */
    public static TokenLabeller labeller(List<Example<HiddenRoles.Meta>> games, At at) {
        List<Map<Integer, Claim>> rows = new ArrayList<>();
        for (Example<HiddenRoles.Meta> g : games) {
            Map<Integer, Claim> byPos = new LinkedHashMap<>();
            for (Claim c : g.meta().claims()) {
                if (c.kind() == ClaimKind.ROLE_CLAIM) byPos.put(at == At.SPEAKER_NAME ? c.start() : c.rolePos() - 1, c);
            }
            rows.add(byPos);
        }
        return (seq, pos) -> {
            Claim c = rows.get(seq).get(pos);
            return c == null ? Optional.empty()
                    : Optional.of(new TokenLabeller.Row(c.speakerRole().ordinal(), seq,
                            (int) games.get(seq).ids()[c.start()]));
        };
    }

    /** Every probe: both positions, every target, every hook. */
    public List<Entry> entries() {
        return entries;
    }

    /** The probe of {@code target} at {@code at} and {@code hook}; unknown ones throw naming what there is. */
    public Entry entry(At at, Target target, String hook) {
        for (Entry e : entries) if (e.at() == at && e.target().equals(target) && e.hook().equals(hook)) return e;
        throw new IllegalArgumentException("no probe " + target + " at " + at + ", " + hook + "; targets "
                + targets() + ", hooks " + hooks());
    }

    /** The best hook (held-out accuracy) of {@code target} at {@code at}. */
    public Entry best(At at, Target target) {
        Entry best = null;
        for (Entry e : entries) {
            if (e.at() == at && e.target().equals(target) && (best == null || e.accuracy() > best.accuracy())) best = e;
        }
        if (best == null) throw new IllegalArgumentException("no probe " + target + "; targets are " + targets());
        return best;
    }

    /** The targets probed. */
    public List<Target> targets() {
        return entries.stream().map(Entry::target).distinct().toList();
    }

    /** The hooks probed, from the embeddings up. */
    public List<String> hooks() {
        return entries.stream().map(Entry::hook).distinct().toList();
    }

    /**
     * One row per probe: at, target, hook, layer, rows, accuracy and sd, control accuracy, selectivity, majority
     * rate, the wolf's claims and the accuracy on them.
     */
    public Table toTable() {
        StringColumn at = StringColumn.create("at"), target = StringColumn.create("target"),
                hook = StringColumn.create("hook");
        IntColumn layer = IntColumn.create("layer"), rows = IntColumn.create("rows"),
                wolfRows = IntColumn.create("wolf_rows");
        DoubleColumn acc = DoubleColumn.create("accuracy"), sd = DoubleColumn.create("accuracy_sd"),
                ctl = DoubleColumn.create("control_accuracy"), sel = DoubleColumn.create("selectivity"),
                maj = DoubleColumn.create("majority_rate"), wolf = DoubleColumn.create("wolf_accuracy");
        for (Entry e : entries) {
            at.append(e.at().name());
            target.append(e.target().label());
            hook.append(e.hook());
            layer.append(new dev.jlens.hook.HookPoint(e.hook()).layer());
            rows.append(e.rows());
            acc.append(e.accuracy());
            sd.append(e.report().task().sd());
            ctl.append(e.report().control().orElseThrow().mean());
            sel.append(e.report().selectivity().orElseThrow());
            maj.append(e.majority());
            wolfRows.append(e.wolfRows());
            wolf.append(e.wolfAccuracy());
        }
        return Table.create("role probes on " + games + " games (grouped folds, control: one label per speaker name)",
                at, target, hook, layer, rows, acc, sd, ctl, sel, maj, wolfRows, wolf);
    }

    /**
     * The wolf's claims at {@code am}, per hook: the fraction read as the true role ({@code wolf}), as the claim the
     * text makes, and as the claim the model itself would make (out-of-fold predictions).
     */
    public Table wolfTable() {
        StringColumn at = StringColumn.create("at"), hook = StringColumn.create("hook");
        IntColumn rows = IntColumn.create("wolf_claims");
        DoubleColumn truth = DoubleColumn.create("reads_true_role_wolf"),
                text = DoubleColumn.create("reads_text_claim"), own = DoubleColumn.create("reads_model_claim");
        for (At a : At.values()) {
            for (String h : hooks()) {
                at.append(a.name());
                hook.append(h);
                rows.append(entry(a, Target.of(Kind.SPEAKER_ROLE), h).wolfRows());
                truth.append(entry(a, Target.of(Kind.SPEAKER_ROLE), h).wolfAccuracy());
                text.append(entry(a, Target.of(Kind.CLAIMED_ROLE), h).wolfAccuracy());
                own.append(entry(a, Target.of(Kind.MODEL_CLAIM), h).wolfAccuracy());
            }
        }
        return Table.create("the wolf's role claims: what the residual stream reads", at, hook, rows, truth, text, own);
    }

    /** Held-out accuracy of every target by hook at {@code at}, with the speaker role's control. */
    public CategoryChart plot(At at) {
        List<String> x = new ArrayList<>();
        for (String h : hooks()) x.add(h.replace("blocks.", "").replace(".hook_", " "));
        Map<String, double[]> series = new LinkedHashMap<>();
        for (Target t : targets()) {
            series.put(t.label(), hooks().stream().mapToDouble(h -> entry(at, t, h).accuracy()).toArray());
        }
        series.put("control (speaker_role)", hooks().stream()
                .mapToDouble(h -> entry(at, Target.of(Kind.SPEAKER_ROLE), h).report().control().orElseThrow().mean())
                .toArray());
        return Plots.legendOutside(Plots.line("role probes at " + at + " (held-out accuracy)", x, series));
    }

    /** {@link #wolfTable()} as lines by hook, both positions. */
    public CategoryChart wolfPlot() {
        Table t = wolfTable();
        List<String> x = new ArrayList<>();
        for (int i = 0; i < t.rowCount(); i++) {
            x.add(t.stringColumn("at").get(i).toLowerCase(Locale.ROOT) + " "
                    + t.stringColumn("hook").get(i).replace("blocks.", "").replace(".hook_", " "));
        }
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("reads true role (wolf)", t.doubleColumn("reads_true_role_wolf").asDoubleArray());
        series.put("reads the text's claim", t.doubleColumn("reads_text_claim").asDoubleArray());
        series.put("reads the model's own claim", t.doubleColumn("reads_model_claim").asDoubleArray());
        return Plots.legendOutside(Plots.line("the wolf's claims: out-of-fold probe reads", x, series));
    }

    @Override
    public String toString() {
        Entry role = best(At.BEFORE_ROLE, Target.of(Kind.SPEAKER_ROLE));
        return String.format(Locale.ROOT, "RoleProbes(%d games: speaker role at 'am' best %.3f at %s (control %.3f), "
                + "on the wolf's claims %.3f read as wolf)", games, role.accuracy(), role.hook(),
                role.report().control().orElseThrow().mean(), role.wolfAccuracy());
    }
}
