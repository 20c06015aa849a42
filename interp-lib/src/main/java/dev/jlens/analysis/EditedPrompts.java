package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Dialogues;
import dev.jlens.data.Dialogues.Attribute;
import dev.jlens.data.Example;
import dev.jlens.data.HiddenRoles;
import dev.jlens.data.HiddenRoles.Claim;
import dev.jlens.data.HiddenRoles.ClaimKind;
import dev.jlens.data.HiddenRoles.Layout;
import dev.jlens.data.HiddenRoles.Role;
import dev.jlens.data.Split;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookNames;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.HookedTransformer;
import dev.jlens.util.Tensors;
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
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Patching from edited prompts: a clean prompt and the same prompt with a few tokens of the generator's own choice
 * replaced (equal length), built from a synthetic task's metadata, so a patching sweep shows where the edited
 * information travels to the position where the model uses it.
 *
 * <pre>{@code
 * // the game: the wolf (seat 1) and the seer (seat 3) swap dealt roles; metric at the wolf's claim
 * EditedPrompts.Pairs game = EditedPrompts.rolesSwapped(HiddenRoles.defaults(), 32, 1, 3);
 * PatchResult sweep = game.patching(deceiver).sweep(PatchSite.RESID_PRE, Direction.DENOISE);
 * sweep.heatmap();  sweep.top(5);
 * EditedPrompts.recovery(deceiver, game).toTable();   // per layer: edited positions vs final position
 * // dialogues: a novice's expertise cues replaced by an expert's; metric at the assistant's first content word
 * EditedPrompts.Pairs chat = EditedPrompts.cuesReplaced(Dialogues.defaults(), Attribute.EXPERTISE, 0, 1, 32, 2, 0);
 * }</pre>
 *
 * <p>In a {@link Pairs} the clean prompts are the task's text, the edited ones the corrupt side of {@link Patching}:
 * denoising patches clean activations into the edited run, and the normalised effect is the fraction of the edit's
 * effect on the metric that one patch undoes.
 */
public final class EditedPrompts {
    private EditedPrompts() {}

    /**
     * Clean and edited prompts of one length, the positions edited in each pair (sorted), both sides' words, and the
     * metric read at the last position.
     */
    public record Pairs(String description, long[][] clean, long[][] edited, int[][] editedPositions,
            List<List<String>> cleanWords, List<List<String>> editedWords, Metric metric) {
        /** Checks lengths and that the prompts differ exactly at the edited positions. */
        public Pairs {
            Objects.requireNonNull(metric, "metric");
            int n = clean.length;
            if (n == 0 || edited.length != n || editedPositions.length != n || cleanWords.size() != n
                    || editedWords.size() != n) {
                throw new IllegalArgumentException("pairs need one clean prompt, edited prompt, position list and "
                        + "word lists each, got " + n + ", " + edited.length + ", " + editedPositions.length + ", "
                        + cleanWords.size() + ", " + editedWords.size());
            }
            for (int i = 0; i < n; i++) {
                if (clean[i].length != clean[0].length || edited[i].length != clean[0].length) {
                    throw new IllegalArgumentException("pair " + i + " has lengths " + clean[i].length + " and "
                            + edited[i].length + ", pair 0 " + clean[0].length + ": every prompt needs one length");
                }
                int[] diff = differing(clean[i], edited[i]);
                if (!Arrays.equals(diff, editedPositions[i])) {
                    throw new IllegalArgumentException("pair " + i + " differs at " + Arrays.toString(diff)
                            + ", its edited positions are " + Arrays.toString(editedPositions[i]));
                }
            }
            cleanWords = List.copyOf(cleanWords);
            editedWords = List.copyOf(editedWords);
        }

        /** Number of pairs. */
        public int size() {
            return clean.length;
        }

        /** Tokens per prompt. */
        public int length() {
            return clean[0].length;
        }

        /** Patching between the clean prompts and the edited ones (the corrupt side), measured by the metric. */
        public Patching patching(HookedTransformer model) {
            return Patching.of(model, clean, edited, metric);
        }

        /** Pair {@code i} as words, the edited ones marked {@code clean->edited}. */
        public String show(int i) {
            List<String> out = new ArrayList<>();
            for (int p = 0; p < length(); p++) {
                String c = cleanWords.get(i).get(p), e = editedWords.get(i).get(p);
                out.add(c.equals(e) ? c : "[" + c + "->" + e + "]");
            }
            return String.join(" ", out);
        }

        @Override
        public String toString() {
            return "EditedPrompts.Pairs(" + description + ": " + size() + " pairs of " + length() + " tokens, "
                    + metric.name() + "; pair 0: " + show(0) + ")";
        }
    }

    /** The positions where two equal-length prompts differ. */
    static int[] differing(long[] a, long[] b) {
        return java.util.stream.IntStream.range(0, a.length).filter(p -> a[p] != b[p]).toArray();
    }

    // ------------------------------------------------------------------------------------------ the game

    /**
     * Four-player round games of {@code task} (the first {@code pairs} test games, in index order, whose wolf sits at
     * {@code wolfSeat} and seer at {@code seerSeat}), cut to end at the wolf's {@code am} before its role claim; the
     * edited game deals the two seats each other's role (two tokens of the deal swapped). Metric: {@code logit(seer) -
     * logit(villager)} for the claim: in the clean game the wolf is about to lie (it says seer or villager, a coin in
     * the data), in the edited one the same player is dealt the seer and should claim it truthfully.
     */
    public static Pairs rolesSwapped(HiddenRoles task, int pairs, int wolfSeat, int seerSeat) {
        Objects.requireNonNull(task, "task");
        int players = Layout.ROUND_4.players();
        if (wolfSeat < 0 || wolfSeat >= players || seerSeat < 0 || seerSeat >= players || wolfSeat == seerSeat) {
            throw new IllegalArgumentException("wolfSeat and seerSeat must be distinct seats 0.." + (players - 1)
                    + " of the four-player round, got " + wolfSeat + " and " + seerSeat);
        }
        if (pairs < 1) throw new IllegalArgumentException("pairs must be >= 1, got " + pairs);
        HiddenRoles round = task.withLayouts(Layout.ROUND_4);
        List<long[]> clean = new ArrayList<>(), edited = new ArrayList<>();
        List<int[]> positions = new ArrayList<>();
        List<List<String>> cleanWords = new ArrayList<>(), editedWords = new ArrayList<>();
        long wolfId = round.tokenId(Role.WOLF.word()), seerId = round.tokenId(Role.SEER.word());
        for (long i = 0; clean.size() < pairs; i++) {
            if (i > 200L * pairs + 1000) {
                throw new IllegalStateException("found " + clean.size() + " of " + pairs + " games in " + i + " draws");
            }
            Example<HiddenRoles.Meta> ex = round.example(Split.TEST, i);
            HiddenRoles.Meta m = ex.meta();
            if (m.wolf() != wolfSeat || m.seer() != seerSeat) continue;
            Claim claim = m.claims().stream().filter(c -> c.kind() == ClaimKind.ROLE_CLAIM && c.speaker() == wolfSeat)
                    .findFirst().orElseThrow();
            int end = claim.rolePos();   // the prompt ends at "am"
            int wolfPos = dealRolePos(wolfSeat), seerPos = dealRolePos(seerSeat);
            long[] c = Arrays.copyOf(ex.ids(), end);
            if (c[wolfPos] != wolfId || c[seerPos] != seerId) {
                throw new IllegalStateException("the deal's role words are not where the layout puts them: "
                        + ex.tokens());
            }
            long[] e = c.clone();
            e[wolfPos] = seerId;
            e[seerPos] = wolfId;
            List<String> cw = ex.tokens().subList(0, end);
            List<String> ew = new ArrayList<>(cw);
            ew.set(wolfPos, Role.SEER.word());
            ew.set(seerPos, Role.WOLF.word());
            clean.add(c);
            edited.add(e);
            positions.add(new int[] {Math.min(wolfPos, seerPos), Math.max(wolfPos, seerPos)});
            cleanWords.add(cw);
            editedWords.add(ew);
        }
        Metric metric = Metric.logitDiff(seerId, round.tokenId(Role.VILLAGER.word()));
        return new Pairs("wolf (seat " + wolfSeat + ") and seer (seat " + seerSeat + ") swapped in the deal, at the "
                + "wolf's claim", clean.toArray(long[][]::new), edited.toArray(long[][]::new),
                positions.toArray(int[][]::new), cleanWords, editedWords, metric);
    }

    /** Position of seat {@code s}'s role word in the deal: BOS, {@code deal}, {@code :}, then name, role, comma. */
    static int dealRolePos(int seat) {
        return 4 + 3 * seat;
    }

    // ------------------------------------------------------------------------------------------ dialogues

    /**
     * Dialogues of {@code task} whose user has value {@code from} of {@code attribute} and whose first user turn has
     * {@link Dialogues#MAX_USER_WORDS} words with at least {@code minCues} cue words of that value (the first
     * {@code pairs} such test dialogues, in index order), cut to end where the assistant's first turn reveals the
     * attribute: for {@code AGE} after {@code assistant :} (the next word is the opener, {@link Dialogues#OPENERS}),
     * for {@code EXPERTISE} after the opener (dialogues whose assistant says no {@code sorry}; the next word is a
     * content word, {@link Dialogues#DEPTH} among them). The edited dialogue replaces each of those cue words by a
     * cue word of value {@code to}, drawn uniformly with {@code seed}. Metric: the mean logit of value {@code to}'s
     * register words minus value {@code from}'s.
     */
    public static Pairs cuesReplaced(Dialogues task, Attribute attribute, int from, int to, int pairs, int minCues,
            long seed) {
        Objects.requireNonNull(task, "task");
        Objects.requireNonNull(attribute, "attribute");
        if (attribute == Attribute.MOOD) {
            throw new IllegalArgumentException("attribute MOOD has no register words in the assistant's first word; "
                    + "valid attributes are AGE (openers) and EXPERTISE (explanation words)");
        }
        int k = attribute.classes();
        if (from < 0 || from >= k || to < 0 || to >= k || from == to) {
            throw new IllegalArgumentException("from and to must be distinct values 0.." + (k - 1) + " of " + attribute
                    + " " + attribute.answerWords() + ", got " + from + " and " + to);
        }
        if (pairs < 1) throw new IllegalArgumentException("pairs must be >= 1, got " + pairs);
        if (minCues < 1) throw new IllegalArgumentException("minCues must be >= 1, got " + minCues);
        List<List<String>> cues = attribute == Attribute.AGE ? Dialogues.AGE_CUES : Dialogues.EXPERTISE_CUES;
        Dialogues.Source cueSource = attribute == Attribute.AGE ? Dialogues.Source.AGE_CUE
                : Dialogues.Source.EXPERTISE_CUE;
        List<List<String>> register = attribute == Attribute.AGE ? Dialogues.OPENERS : Dialogues.DEPTH;
        SplittableRandom rnd = new SplittableRandom(seed);
        List<long[]> clean = new ArrayList<>(), edited = new ArrayList<>();
        List<int[]> positions = new ArrayList<>();
        List<List<String>> cleanWords = new ArrayList<>(), editedWords = new ArrayList<>();
        for (long i = 0; clean.size() < pairs; i++) {
            if (i > 500L * pairs + 5000) {
                throw new IllegalStateException("found " + clean.size() + " of " + pairs + " dialogues in " + i
                        + " draws; lower minCues");
            }
            Example<Dialogues.Meta> ex = task.example(Split.TEST, i);
            Dialogues.Meta m = ex.meta();
            if (m.value(attribute) != from) continue;
            Dialogues.Turn user = m.turns().get(0), assistant = m.turns().get(1);
            if (user.end() - user.start() != 2 + Dialogues.MAX_USER_WORDS + 1) continue;
            int end = assistant.start() + 2;   // after "assistant :"
            if (attribute == Attribute.EXPERTISE) {
                if (ex.tokens().get(end + 1).equals(Dialogues.SORRY)) continue;
                end++;   // after the opener
            }
            List<Integer> at = new ArrayList<>();
            for (int p = user.start(); p < user.end(); p++) {
                Dialogues.TokenLabel l = m.labels().get(p);
                if (l.source() == cueSource && l.cueValue() == from) at.add(p);
            }
            if (at.size() < minCues) continue;
            long[] c = Arrays.copyOf(ex.ids(), end);
            long[] e = c.clone();
            List<String> cw = ex.tokens().subList(0, end);
            List<String> ew = new ArrayList<>(cw);
            for (int p : at) {
                String w = cues.get(to).get(rnd.nextInt(cues.get(to).size()));
                e[p] = task.tokenId(w);
                ew.set(p, w);
            }
            clean.add(c);
            edited.add(e);
            positions.add(at.stream().mapToInt(Integer::intValue).toArray());
            cleanWords.add(cw);
            editedWords.add(ew);
        }
        Metric metric = Metric.meanLogitDiff(ids(task, register.get(to)), ids(task, register.get(from)));
        String[] names = attribute == Attribute.AGE ? new String[] {"teen", "adult", "senior"}
                : new String[] {"novice", "expert"};
        return new Pairs(attribute.name().toLowerCase(Locale.ROOT) + " cues " + names[from] + " -> " + names[to]
                + " (at least " + minCues + "), at the assistant's " + (attribute == Attribute.AGE ? "opener"
                : "first content word"), clean.toArray(long[][]::new), edited.toArray(long[][]::new),
                positions.toArray(int[][]::new), cleanWords, editedWords, metric);
    }

    private static long[] ids(Dialogues task, List<String> words) {
        return words.stream().mapToLong(task::tokenId).toArray();
    }

    // ------------------------------------------------------------------------------------------ recovery

    /**
     * How much of the edit's effect one layer's residual stream carries: the metric of the edited run with
     * {@code resid_pre} of layer {@code l} (and the final {@code resid_post}) replaced by the clean run's at the edited
     * positions of each pair, at the final position, or at every position, and the fraction
     * {@code (M - M_edited) / (M_clean - M_edited)} it recovers.
     */
    public record Recovery(String description, double metricClean, double metricEdited, List<Row> rows) {
        /** Copies the rows. */
        public Recovery {
            rows = List.copyOf(rows);
        }

        /** One patched run: the hook, which positions, the metric and the fraction of the effect recovered. */
        public record Row(String hook, String where, double metric, double fraction) {}

        /** The fraction recovered at {@code hook} patching {@code where} ({@code edited positions}, ...). */
        public double fraction(String hook, String where) {
            for (Row r : rows) if (r.hook().equals(hook) && r.where().equals(where)) return r.fraction();
            throw new IllegalArgumentException("no row " + hook + " / " + where + "; hooks "
                    + rows.stream().map(Row::hook).distinct().toList() + ", where " + WHERE);
        }

        /** One row per hook and position set: hook, layer, where, metric, fraction recovered. */
        public Table toTable() {
            StringColumn hook = StringColumn.create("hook"), where = StringColumn.create("where");
            IntColumn layer = IntColumn.create("layer");
            DoubleColumn metric = DoubleColumn.create("metric"), fraction = DoubleColumn.create("fraction_recovered");
            for (Row r : rows) {
                hook.append(r.hook());
                layer.append(new dev.jlens.hook.HookPoint(r.hook()).layer());
                where.append(r.where());
                metric.append(r.metric());
                fraction.append(r.fraction());
            }
            return Table.create(String.format(Locale.ROOT, "recovery: %s (clean %.3f, edited %.3f)", description,
                    metricClean, metricEdited), hook, layer, where, metric, fraction);
        }

        /** Fraction recovered by hook, one line per position set. */
        public CategoryChart plot() {
            List<String> hooks = rows.stream().map(Row::hook).distinct().toList();
            Map<String, double[]> series = new LinkedHashMap<>();
            for (String w : WHERE) {
                series.put(w, hooks.stream().mapToDouble(h -> fraction(h, w)).toArray());
            }
            List<String> x = hooks.stream().map(h -> h.replace("blocks.", "").replace(".hook_", " ")).toList();
            return Plots.line("fraction of the edit's effect recovered: " + description, x, series);
        }

        @Override
        public String toString() {
            StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "Recovery(%s: clean %.3f, edited %.3f)",
                    description, metricClean, metricEdited));
            for (Row r : rows) {
                b.append(String.format(Locale.ROOT, "%n  %s %s: %.3f", r.hook(), r.where(), r.fraction()));
            }
            return b.toString();
        }
    }

    /** The position sets of {@link #recovery}. */
    public static final List<String> WHERE = List.of("edited positions", "final position", "all positions");

    /**
     * {@link Recovery} at {@code resid_pre} of every layer and the last layer's {@code resid_post}: clean activations
     * patched into the edited run at each pair's edited positions, at the final position, and at every position.
     */
    public static Recovery recovery(HookedTransformer model, Pairs pairs) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(pairs, "pairs");
        List<String> hooks = new ArrayList<>();
        for (int l = 0; l < model.nLayers(); l++) hooks.add(HookNames.actName("resid_pre", l));
        hooks.add(HookNames.actName("resid_post", model.nLayers() - 1));
        Patching p = pairs.patching(model);   // checks prompts and metric against the model
        int n = pairs.size(), len = pairs.length();
        double clean = p.metricClean(), edited = p.metricCorrupt();
        List<Recovery.Row> rows = new ArrayList<>();
        try (ActivationCache cache = model.runWithCache(pairs.clean(), Patching.filter(hooks))) {
            for (String h : hooks) {
                for (String where : WHERE) {
                    boolean[] mask = new boolean[n * len];
                    for (int i = 0; i < n; i++) {
                        if (where.equals(WHERE.get(0))) for (int pos : pairs.editedPositions()[i]) mask[i * len + pos] = true;
                        else if (where.equals(WHERE.get(1))) mask[i * len + len - 1] = true;
                        else Arrays.fill(mask, i * len, (i + 1) * len, true);
                    }
                    NDArray source = cache.get(h);
                    double v;
                    try (NDScope scope = new NDScope()) {
                        NDArray m = Tensors.owned(source.getManager().create(mask, new Shape(n, len, 1)));
                        NDArray logits = model.runWithHooks(pairs.edited(),
                                Hook.fwd(h, (act, hp) -> Patching.where(m, source, act)));
                        v = p.mean(logits);
                    }
                    rows.add(new Recovery.Row(h, where, v, (v - edited) / (clean - edited)));
                }
            }
        }
        return new Recovery(pairs.description(), clean, edited, rows);
    }
}
