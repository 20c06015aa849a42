package dev.jlens.probe;

import ai.djl.ndarray.NDScope;
import dev.jlens.data.Dialogues;
import dev.jlens.data.Dialogues.Attribute;
import dev.jlens.data.Dialogues.Speaker;
import dev.jlens.data.Dialogues.Turn;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import java.util.SplittableRandom;

/**
 * Steering a {@link Dialogues} model's model of its user, scored by what the assistant then writes (issue 13's
 * "control", after TalkTuner, Chen et al. 2024): push the residual stream at the user's tokens towards "this user is
 * a senior" and see whether the assistant's reply switches to the register the generator writes for seniors.
 *
 * <ul>
 * <li><b>Behavioural classifier</b> ({@link #classify}): a pure function of the reply's words, from the generator's own
 *     lists. Age: each opener ({@link Dialogues#OPENERS}) and recommendation ({@link Dialogues#RECOMMENDATIONS}) is a
 *     vote for its age group; expertise: each explanation word ({@link Dialogues#DEPTH}) a vote for its level. The
 *     value with most votes wins; a tie goes to the value of the earliest vote among the tied; no vote, no verdict.
 *     On the generator's own assistant turns the age verdict is therefore the opener's value, right with probability
 *     {@link Dialogues#ASSISTANT_FIDELITY}.</li>
 * <li><b>Directions</b>, per layer at {@code blocks.L.hook_resid_post}, from the residuals at the {@code ?} ending each
 *     user turn of {@code trainDialogues} training-split dialogues: {@link Method#PROBE} (a logistic probe for target
 *     against the rest, L2 {@code 1e-2}, unit direction towards the target), {@link Method#DIFF_MEANS} (mean at
 *     target-valued users minus mean at the rest, unit), {@link Method#RANDOM} (a seeded Gaussian direction, unit: the
 *     control).</li>
 * <li><b>Strength</b> is in units of the typical residual norm at that hook ({@link SteeringVector#typicalNorm},
 *     mean length over the held-out dialogues' positions after BOS): strength 1 adds a vector as long as an average
 *     residual there, the same length for every method.</li>
 * <li><b>Prompts</b>: held-out (test-split) dialogues whose user's true value is not the target, cut after the user
 *     turn of exchange {@code exchanges} and {@code assistant :}; the reply is generated greedily until {@code .}
 *     (12 tokens at most), with the vector added where {@link Where} says.</li>
 * <li><b>Prompting baseline</b>: the same prompts unsteered, with {@code promptCues} of the user's words replaced by
 *     cue words of the target value ({@link Dialogues#AGE_CUES} / {@link Dialogues#EXPERTISE_CUES}, drawn seeded):
 *     the user saying it. Neutral and topic words are replaced first, never the user's own cues of the attribute, and
 *     the turn keeps its length (inserting words made turns longer than any in training and broke the replies).</li>
 * <li><b>Side effects</b> ({@link SteeringSweep.NeutralText}): KL divergence from the unsteered next-token
 *     distributions and the change in next-token loss on {@code neutralTexts} further held-out whole dialogues, with
 *     the vector added at every position after BOS (more than generation steers, so an upper bound), and the share
 *     of replies that stay well-formed ({@link #wellFormed}).</li>
 * </ul>
 *
 * <pre>{@code
 * HookedTransformer model = Zoo.load("chat-users");
 * UserModelSteering s = UserModelSteering.fit(model, Dialogues.defaults(), Attribute.AGE, "senior");
 * UserModelSteering.Sweep sweep = s.sweep(1, 0, 0.25, 0.5, 1, 2);   // layer 1, strengths in residual norms
 * sweep.toTable(); sweep.plot(); sweep.plotSideEffects();
 * UserModelSteering.ReaderVsController rc = s.readerVsController(0.25);
 * rc.toTable(); rc.plot(); rc.sameBest();
 * }</pre>
 */
public final class UserModelSteering {

    /** How a direction is made. */
    public enum Method {
        /** A logistic probe's unit direction towards the target value (target against the rest). */
        PROBE,
        /** The difference of the mean residuals of target-valued users and the rest, unit length. */
        DIFF_MEANS,
        /** A seeded random Gaussian direction, unit length: the control. */
        RANDOM
    }

    /** Where the vector is added during generation. */
    public enum Where {
        /** The last user turn's tokens, from {@code user} to its {@code ?}. */
        USER_TURN,
        /** From the prompt's {@code assistant} token on, over every generated token. */
        ASSISTANT,
        /** Every position after BOS, prompt and generated. */
        BOTH
    }

    /**
     * Settings.
     *
     * @param trainDialogues training-split dialogues the directions are fitted on (their {@code ?} rows)
     * @param testDialogues  test-split dialogues the prompts are cut from (those whose user is not the target)
     * @param neutralTexts   further test-split dialogues for the side effects on neutral text
     * @param exchanges      the prompt ends after the user turn of this exchange (1 = the first user turn only)
     * @param where          where to add the vector
     * @param promptCues     user words replaced by target cue words for the prompting baseline
     * @param seed           seed of the random direction and of the baseline's cue words
     */
    public record Options(int trainDialogues, int testDialogues, int neutralTexts, int exchanges, Where where,
            int promptCues, long seed) {
        /** Checks the settings. */
        public Options {
            if (trainDialogues < 20) throw new IllegalArgumentException("trainDialogues must be >= 20, got " + trainDialogues);
            if (testDialogues < 10) throw new IllegalArgumentException("testDialogues must be >= 10, got " + testDialogues);
            if (neutralTexts < 1) throw new IllegalArgumentException("neutralTexts must be >= 1, got " + neutralTexts);
            if (exchanges < 1) throw new IllegalArgumentException("exchanges must be >= 1, got " + exchanges);
            if (where == null) throw new IllegalArgumentException("where must be one of " + Arrays.toString(Where.values()));
            if (promptCues < 1) throw new IllegalArgumentException("promptCues must be >= 1, got " + promptCues);
        }

        /** 300 training dialogues, 120 test dialogues, 12 neutral ones, the first exchange, both places, 2 cues, seed 0. */
        public static Options defaults() {
            return new Options(300, 120, 12, 1, Where.BOTH, 2, 0);
        }

        /** The same options steering elsewhere. */
        public Options withWhere(Where w) {
            return new Options(trainDialogues, testDialogues, neutralTexts, exchanges, w, promptCues, seed);
        }

        /** The same options with another number of target cue words in the prompting baseline. */
        public Options withPromptCues(int cues) {
            return new Options(trainDialogues, testDialogues, neutralTexts, exchanges, where, cues, seed);
        }

        /** The same options with other dialogue counts. */
        public Options withDialogues(int train, int test) {
            return new Options(train, test, neutralTexts, exchanges, where, promptCues, seed);
        }
    }

    // =============================================================================== behavioural classifier

    /**
     * The classifier's verdict on one reply: the votes per value (in the attribute's enum order) and the winning
     * value, empty when the reply has no cue word of the attribute.
     */
    public record Verdict(Attribute attribute, int[] votes, OptionalInt value) {
        /** Copies the votes. */
        public Verdict {
            votes = votes.clone();
        }

        /** Whether the verdict is {@code v}. */
        public boolean is(int v) {
            return value.isPresent() && value.getAsInt() == v;
        }

        @Override
        public String toString() {
            return "Verdict(" + attribute + " " + (value.isPresent()
                    ? attribute.answerWords().get(value.getAsInt()) : "undecided") + ", votes " + Arrays.toString(votes) + ")";
        }
    }

    /**
     * Which value of {@code attribute} (AGE or EXPERTISE) an assistant reply is written for, from its words alone
     * (those after {@code assistant :}): see the class comment for the rule.
     */
    public static Verdict classify(Attribute attribute, List<String> reply) {
        List<List<List<String>>> lists = cueLists(attribute);
        int k = attribute.classes();
        int[] votes = new int[k], first = new int[k];
        Arrays.fill(first, Integer.MAX_VALUE);
        for (int i = 0; i < reply.size(); i++) {
            String w = reply.get(i);
            for (List<List<String>> byValue : lists) {
                for (int v = 0; v < k; v++) {
                    if (byValue.get(v).contains(w)) {
                        votes[v]++;
                        first[v] = Math.min(first[v], i);
                    }
                }
            }
        }
        int best = -1;
        for (int v = 0; v < k; v++) {
            if (votes[v] == 0) continue;
            if (best < 0 || votes[v] > votes[best] || (votes[v] == votes[best] && first[v] < first[best])) best = v;
        }
        return new Verdict(attribute, votes, best < 0 ? OptionalInt.empty() : OptionalInt.of(best));
    }

    /** {@link #classify(Attribute, List)} of token ids of {@code task}'s vocabulary. */
    public static Verdict classify(Attribute attribute, Dialogues task, long[] reply) {
        return classify(attribute, words(task, reply));
    }

    /**
     * Whether a reply has the generator's shape: an opener first, a recommendation right after {@code try}, and
     * {@code .} as its last word (nothing after it).
     */
    public static boolean wellFormed(List<String> reply) {
        if (reply.size() < 4 || !reply.get(reply.size() - 1).equals(Dialogues.PERIOD)) return false;
        if (Dialogues.OPENERS.stream().noneMatch(l -> l.contains(reply.get(0)))) return false;
        String rec = reply.get(reply.size() - 2), before = reply.get(reply.size() - 3);
        return before.equals(Dialogues.TRY) && Dialogues.RECOMMENDATIONS.stream().anyMatch(l -> l.contains(rec));
    }

    /** The words of token ids of {@code task}'s vocabulary (an id outside it throws naming the range). */
    public static List<String> words(Dialogues task, long[] ids) {
        List<String> vocab = task.vocab();
        List<String> out = new ArrayList<>(ids.length);
        for (long id : ids) {
            if (id < 0 || id >= vocab.size()) {
                throw new IllegalArgumentException("token id " + id + " is outside the dialogues vocabulary 0.."
                        + (vocab.size() - 1));
            }
            out.add(vocab.get((int) id));
        }
        return out;
    }

    /** The words of one assistant turn of an example (after {@code assistant :}, up to its {@code .}). */
    public static List<String> reply(Example<Dialogues.Meta> ex, Turn turn) {
        if (turn.speaker() != Speaker.ASSISTANT) throw new IllegalArgumentException("turn " + turn + " is not the assistant's");
        return ex.tokens().subList(turn.start() + 2, turn.end());
    }

    private static List<List<List<String>>> cueLists(Attribute attribute) {
        return switch (attribute) {
            case AGE -> List.of(Dialogues.OPENERS, Dialogues.RECOMMENDATIONS);
            case EXPERTISE -> List.of(Dialogues.DEPTH);
            case MOOD -> throw new IllegalArgumentException("the assistant's reply carries AGE (opener, recommendation) "
                    + "and EXPERTISE (explanation words); MOOD only shows as 'sorry': use AGE or EXPERTISE");
        };
    }

    private static List<List<String>> userCues(Attribute attribute) {
        return attribute == Attribute.AGE ? Dialogues.AGE_CUES : Dialogues.EXPERTISE_CUES;
    }

    /** The value of {@code attribute} named {@code name} (an answer word such as {@code senior}, any case). */
    public static int value(Attribute attribute, String name) {
        cueLists(attribute);   // MOOD throws: the reply does not show it
        List<String> names = attribute.answerWords();
        int v = name == null ? -1 : names.indexOf(name.toLowerCase(Locale.ROOT));
        if (v < 0) {
            throw new IllegalArgumentException("unknown " + attribute + " value '" + name + "'; valid values: " + names);
        }
        return v;
    }

    // =============================================================================== fitted directions

    /** Replies generated under one condition, scored. */
    public record Rates(int n, double target, double trueValue, double undecided, double wellFormed) {}

    /**
     * One sweep row: {@code steer} or {@code prompt}, the method's name (or the prompting baseline's), layer, strength
     * (NaN for the prompting baseline), rates and side effects (NaN for the baseline).
     */
    public record Row(String condition, String method, int layer, double strength, Rates rates, double klNeutral,
            double lossDeltaNeutral) {}

    private static final double PROBE_L2 = 1e-2;
    private static final int MAX_NEW_TOKENS = 12;

    private final HookedTransformer model;
    private final Dialogues task;
    private final Attribute attribute;
    private final int target;
    private final Options options;
    private final List<String> hooks;
    private final Map<Method, float[][]> directions = new EnumMap<>(Method.class);   // [layer][d], unit
    private final Map<Method, double[]> readingAuroc = new EnumMap<>(Method.class);  // [layer], held out
    private final double[] readingAccuracy;   // [layer], held-out multi-class logistic probe
    private final double[] scale;             // [layer], typical residual norm
    private final List<Prompt> prompts;
    private final List<Prompt> cuedPrompts;
    private final SteeringSweep.NeutralText neutral;
    private final Map<String, Rates> rateCache = new java.util.HashMap<>();
    private Rates unsteered;

    /** A prompt: its ids, its user's true value, and the positions of its last user turn. */
    private record Prompt(long[] ids, int truth, int userStart, int userEnd) {}

    private UserModelSteering(HookedTransformer model, Dialogues task, Attribute attribute, int target, Options options) {
        this.model = model;
        this.task = task;
        this.attribute = attribute;
        this.target = target;
        this.options = options;
        if (options.exchanges() > task.turns()) {
            throw new IllegalArgumentException("exchanges must be 1.." + task.turns() + " for " + task + ", got "
                    + options.exchanges());
        }
        int layers = model.cfg().nLayers();
        hooks = new ArrayList<>();
        for (int l = 0; l < layers; l++) hooks.add(model.actName("resid_post", l));

        List<Example<Dialogues.Meta>> train = task.examples(Split.TRAIN, 0, options.trainDialogues());
        List<Example<Dialogues.Meta>> test = task.examples(Split.TEST, 0, options.testDialogues());
        Map<String, ProbeData> fitRows = LayerSweep.collect(model, hooks, UserModelReadout.padded(train, 64),
                UserModelReadout.labeller(train, attribute, UserModelReadout.At.TURN_END));
        Map<String, ProbeData> held = LayerSweep.collect(model, hooks, UserModelReadout.padded(test, 64),
                UserModelReadout.labeller(test, attribute, UserModelReadout.At.TURN_END));
        readingAccuracy = new double[layers];
        scale = new double[layers];
        for (Method m : Method.values()) {
            directions.put(m, new float[layers][]);
            readingAuroc.put(m, new double[layers]);
        }
        SplittableRandom rnd = new SplittableRandom(options.seed());
        for (int l = 0; l < layers; l++) {
            String hook = hooks.get(l);
            ProbeData rows = fitRows.get(hook), heldRows = held.get(hook);
            readingAccuracy[l] = UserModelReadout.OPTIONS.method().fit(rows).accuracy(heldRows);
            ProbeData binary = binary(rows);
            directions.get(Method.PROBE)[l] = new ProbeMethod.Logistic(PROBE_L2, 200).fit(binary).direction();
            directions.get(Method.DIFF_MEANS)[l] = LinearProbe.unit(ProbeMethod.diffMeans().fit(binary).rawDirection());
            float[] r = new float[binary.dim()];
            for (int j = 0; j < r.length; j++) r[j] = (float) gaussian(rnd);
            directions.get(Method.RANDOM)[l] = LinearProbe.unit(r);
            ProbeData h = binary(heldRows);
            for (Method m : Method.values()) readingAuroc.get(m)[l] = auroc(directions.get(m)[l], h);
        }
        double[] norms = typicalNorms(model, hooks, UserModelReadout.padded(test, 64));
        System.arraycopy(norms, 0, scale, 0, layers);

        prompts = new ArrayList<>();
        cuedPrompts = new ArrayList<>();
        List<String> cues = userCues(attribute).get(target);
        SplittableRandom cueRnd = new SplittableRandom(options.seed() + 1);
        for (Example<Dialogues.Meta> ex : test) {
            int truth = ex.meta().value(attribute);
            if (truth == target) continue;
            Prompt p = prompt(ex, options.exchanges());
            prompts.add(p);
            cuedPrompts.add(new Prompt(cued(ex, p, cues, cueRnd), truth, p.userStart, p.userEnd));
        }
        if (prompts.isEmpty()) throw new IllegalStateException("no test dialogue has a user who is not the target");
        List<long[]> neutralIds = new ArrayList<>();
        for (Example<Dialogues.Meta> ex : task.examples(Split.TEST, options.testDialogues(), options.neutralTexts())) {
            neutralIds.add(ex.ids());
        }
        neutral = new SteeringSweep.NeutralText(model, neutralIds);
    }

    /**
     * Fits the directions for steering {@code attribute} (AGE or EXPERTISE) towards the value named {@code target}
     * ({@code teen}, {@code adult}, {@code senior}; {@code novice}, {@code expert}), with {@link Options#defaults()}.
     */
    public static UserModelSteering fit(HookedTransformer model, Dialogues task, Attribute attribute, String target) {
        return fit(model, task, attribute, target, Options.defaults());
    }

    /** As {@link #fit(HookedTransformer, Dialogues, Attribute, String)} with other options. */
    public static UserModelSteering fit(HookedTransformer model, Dialogues task, Attribute attribute, String target,
            Options options) {
        if (model == null || task == null || attribute == null || options == null) {
            throw new IllegalArgumentException("model, task, attribute and options must not be null");
        }
        return new UserModelSteering(model, task, attribute, value(attribute, target), options);
    }

    private ProbeData binary(ProbeData d) {
        int[] y = new int[d.size()];
        for (int i = 0; i < y.length; i++) y[i] = d.labels()[i] == target ? 1 : 0;
        return ProbeData.of(d.x(), y, d.groups(), 2);
    }

    private static double auroc(float[] dir, ProbeData d) {
        double[] s = new double[d.size()];
        for (int i = 0; i < s.length; i++) {
            float[] row = d.x()[i];
            double dot = 0;
            for (int j = 0; j < row.length; j++) dot += (double) dir[j] * row[j];
            s[i] = dot;
        }
        return Metrics.auroc(s, d.labels());
    }

    /**
     * The prompt with {@code promptCues} of the user turn's words replaced by the target's cue words: neutral and
     * topic words first (so the user's own cues stay), then other words that are not cues of this attribute; the
     * turn keeps its length, as the model was trained on turns of 6 to 8 words.
     */
    private long[] cued(Example<Dialogues.Meta> ex, Prompt p, List<String> cues, SplittableRandom rnd) {
        Dialogues.Source own = attribute == Attribute.AGE ? Dialogues.Source.AGE_CUE : Dialogues.Source.EXPERTISE_CUE;
        List<Integer> first = new ArrayList<>(), then = new ArrayList<>();
        for (int pos = p.userStart + 2; pos < p.userEnd - 1; pos++) {
            Dialogues.Source src = ex.meta().labels().get(pos).source();
            if (src == Dialogues.Source.NEUTRAL || src == Dialogues.Source.TOPIC) first.add(pos);
            else if (src != own) then.add(pos);
        }
        shuffle(first, rnd);
        shuffle(then, rnd);
        first.addAll(then);
        long[] ids = p.ids.clone();
        for (int c = 0; c < Math.min(options.promptCues(), first.size()); c++) {
            ids[first.get(c)] = task.tokenId(cues.get(rnd.nextInt(cues.size())));
        }
        return ids;
    }

    private static void shuffle(List<Integer> xs, SplittableRandom rnd) {
        for (int i = xs.size() - 1; i > 0; i--) java.util.Collections.swap(xs, i, rnd.nextInt(i + 1));
    }

    /**
     * {@link SteeringVector#typicalNorm} at several hooks from one pass per batch: the mean residual length over the
     * non-padding positions after BOS.
     */
    private static double[] typicalNorms(HookedTransformer model, List<String> hooks, List<Batch> batches) {
        double[] sum = new double[hooks.size()];
        long count = 0;
        for (Batch batch : batches) {
            try (NDScope scope = new NDScope();
                 ActivationCache cache = model.runWithCache(batch, NameFilter.of(hooks.toArray(String[]::new)))) {
                int len = batch.length();
                for (int h = 0; h < hooks.size(); h++) {
                    float[] n = cache.get(hooks.get(h)).norm(new int[] {-1}).toFloatArray();
                    for (int b = 0; b < batch.size(); b++) {
                        for (int p = 1; p < len; p++) if (batch.mask()[b][p]) sum[h] += n[b * len + p];
                    }
                }
                for (int b = 0; b < batch.size(); b++) for (int p = 1; p < len; p++) if (batch.mask()[b][p]) count++;
            }
        }
        for (int h = 0; h < sum.length; h++) sum[h] /= count;
        return sum;
    }

    private static double gaussian(SplittableRandom rnd) {
        double u = 1 - rnd.nextDouble(), v = rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    private Prompt prompt(Example<Dialogues.Meta> ex, int exchanges) {
        Turn user = null, assistant = null;
        for (Turn t : ex.meta().turns()) {
            if (t.exchange() != exchanges - 1) continue;
            if (t.speaker() == Speaker.USER) user = t;
            else if (t.speaker() == Speaker.ASSISTANT) assistant = t;
        }
        if (user == null || assistant == null) throw new IllegalStateException("exchange " + exchanges + " is missing");
        long[] ids = Arrays.copyOf(ex.ids(), assistant.start() + 2);   // ... ? assistant :
        return new Prompt(ids, ex.meta().value(attribute), user.start(), user.end());
    }

    // =============================================================================== steering

    /** The attribute steered. */
    public Attribute attribute() {
        return attribute;
    }

    /** The target value (ordinal). */
    public int target() {
        return target;
    }

    /** The target value's name. */
    public String targetName() {
        return attribute.answerWords().get(target);
    }

    /** The options. */
    public Options options() {
        return options;
    }

    /** Number of held-out prompts (users whose true value is not the target). */
    public int prompts() {
        return prompts.size();
    }

    /** The unit direction of {@code method} at {@code layer}'s {@code hook_resid_post}. */
    public SteeringVector direction(Method method, int layer) {
        checkLayer(layer);
        if (method == null) throw new IllegalArgumentException("method must be one of " + Arrays.toString(Method.values()));
        return new SteeringVector(hooks.get(layer), directions.get(method)[layer],
                method + " direction of " + attribute + "=" + targetName());
    }

    /** The typical residual norm at {@code layer}: the length strength 1 adds. */
    public double scale(int layer) {
        checkLayer(layer);
        return scale[layer];
    }

    /**
     * Held-out accuracy at {@code layer} of the multi-class logistic probe ({@link UserModelReadout#OPTIONS}'s method)
     * fitted on the training dialogues' {@code ?} rows and scored on the test dialogues' (all of them, every value).
     */
    public double readingAccuracy(int layer) {
        checkLayer(layer);
        return readingAccuracy[layer];
    }

    /** Held-out AUROC of target against the rest of the projection on {@code method}'s direction at {@code layer}. */
    public double readingAuroc(Method method, int layer) {
        checkLayer(layer);
        return readingAuroc.get(method)[layer];
    }

    /**
     * The steering of {@code method} at {@code layer}: the unit direction times the typical residual norm, at
     * {@code strength}, at every position after BOS ({@link #replies} narrows the positions per prompt when
     * {@link Options#where()} asks).
     */
    public Steering steering(Method method, int layer, double strength) {
        SteeringVector v = direction(method, layer);
        return new Steering(v.normalizedTo(scale[layer]), List.of(v.hook()), Positions.from(1), strength);
    }

    /** The unsteered greedy replies to the held-out prompts (words up to and including {@code .}). */
    public List<List<String>> unsteeredReplies() {
        return generate(null, prompts);
    }

    /** The greedy replies to the held-out prompts under {@code method} at {@code layer} and {@code strength}. */
    public List<List<String>> replies(Method method, int layer, double strength) {
        return generate(steering(method, layer, strength), prompts);
    }

    /** The greedy replies to the prompts with the target's cue words in the user's turn, unsteered. */
    public List<List<String>> promptedReplies() {
        return generate(null, cuedPrompts);
    }

    /** The unsteered rates. */
    public Rates unsteered() {
        if (unsteered == null) unsteered = rates(unsteeredReplies(), prompts);
        return unsteered;
    }

    /** The rates under {@code method} at {@code layer} and {@code strength} (kept, so a repeat costs nothing). */
    public Rates rates(Method method, int layer, double strength) {
        checkLayer(layer);
        return rateCache.computeIfAbsent(method + "@" + layer + "@" + strength,
                k -> rates(replies(method, layer, strength), prompts));
    }

    /** The prompting baseline's rates. */
    public Rates prompted() {
        return rates(promptedReplies(), cuedPrompts);
    }

    /**
     * Every method at {@code layer} over {@code strengths} (in typical residual norms; include 0), with side effects,
     * then the prompting baseline.
     */
    public Sweep sweep(int layer, double... strengths) {
        checkLayer(layer);
        if (strengths == null || strengths.length == 0) {
            throw new IllegalArgumentException("give at least one strength, e.g. sweep(layer, 0, 0.5, 1, 2)");
        }
        List<Row> rows = new ArrayList<>();
        for (Method m : Method.values()) {
            for (double s : strengths) {
                Steering st = steering(m, layer, s);
                double[] side = neutral.measure(st);
                rows.add(new Row("steer", m.name(), layer, s, rates(m, layer, s), side[0], side[1]));
            }
        }
        rows.add(new Row("prompt", "prompt: " + options.promptCues() + " " + targetName() + " cue words", layer,
                Double.NaN, prompted(), Double.NaN, Double.NaN));
        return new Sweep(this, layer, unsteered(), rows);
    }

    /**
     * TalkTuner's question: is the best reader the best controller? For every layer and method, the layer's reading
     * accuracy, the direction's held-out reading AUROC and its target rate at {@code strength}.
     */
    public ReaderVsController readerVsController(double strength) {
        List<ReaderVsController.Entry> out = new ArrayList<>();
        for (int l = 0; l < hooks.size(); l++) {
            for (Method m : Method.values()) {
                out.add(new ReaderVsController.Entry(l, m, readingAccuracy[l], readingAuroc.get(m)[l],
                        direction(m, l).cosine(direction(Method.DIFF_MEANS, l)), rates(m, l, strength).target()));
            }
        }
        return new ReaderVsController(this, strength, unsteered(), out);
    }

    private Rates rates(List<List<String>> replies, List<Prompt> ps) {
        int n = replies.size(), toTarget = 0, toTruth = 0, undecided = 0, formed = 0;
        for (int i = 0; i < n; i++) {
            Verdict v = classify(attribute, replies.get(i));
            toTarget += v.is(target) ? 1 : 0;
            toTruth += v.is(ps.get(i).truth) ? 1 : 0;
            undecided += v.value().isEmpty() ? 1 : 0;
            formed += wellFormed(replies.get(i)) ? 1 : 0;
        }
        return new Rates(n, toTarget / (double) n, toTruth / (double) n, undecided / (double) n, formed / (double) n);
    }

    /**
     * Greedy replies, prompts grouped by length and user-turn positions so each group is one batch without padding
     * and one set of positions (null steering: the unsteered model, batched the same way).
     */
    private List<List<String>> generate(Steering st, List<Prompt> ps) {
        Map<String, List<Integer>> groups = new LinkedHashMap<>();
        for (int i = 0; i < ps.size(); i++) {
            Prompt p = ps.get(i);
            groups.computeIfAbsent(p.ids.length + ":" + p.userStart + ":" + p.userEnd, k -> new ArrayList<>()).add(i);
        }
        Generation.Config config = Generation.Config.greedy(MAX_NEW_TOKENS).withStopTokens(task.tokenId(Dialogues.PERIOD));
        List<List<String>> out = new ArrayList<>(ps.size());
        for (int i = 0; i < ps.size(); i++) out.add(null);
        for (List<Integer> g : groups.values()) {
            long[][] ids = g.stream().map(i -> ps.get(i).ids).toArray(long[][]::new);
            Prompt p = ps.get(g.get(0));
            try (Generation.Result r = st == null ? model.generate(ids, config)
                    : st.positions(positions(p)).generate(model, ids, config)) {
                for (int b = 0; b < g.size(); b++) out.set(g.get(b), upToPeriod(words(task, r.tokens()[b])));
            }
        }
        return out;
    }

    private Positions positions(Prompt p) {
        return switch (options.where()) {
            case BOTH -> Positions.from(1);
            case ASSISTANT -> Positions.from(p.ids.length - 2);
            case USER_TURN -> {
                int[] at = new int[p.userEnd - p.userStart];
                for (int j = 0; j < at.length; j++) at[j] = p.userStart + j;
                yield Positions.at(at);
            }
        };
    }

    private static List<String> upToPeriod(List<String> w) {
        int end = w.indexOf(Dialogues.PERIOD);
        return List.copyOf(end < 0 ? w : w.subList(0, end + 1));
    }

    private void checkLayer(int layer) {
        int n = model.cfg().nLayers();
        if (layer < 0 || layer >= n) {
            throw new IllegalArgumentException("layer " + layer + " is out of range: the model has layers 0.." + (n - 1)
                    + " (steered at blocks.L.hook_resid_post)");
        }
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "UserModelSteering(%s -> %s, %d held-out prompts, steer at %s; per layer reading accuracy / probe AUROC"
                + " / diff-means AUROC / residual norm:", attribute, targetName(), prompts.size(), options.where()));
        for (int l = 0; l < hooks.size(); l++) {
            sb.append(String.format(Locale.ROOT, " L%d %.3f/%.3f/%.3f/%.2f", l, readingAccuracy[l],
                    readingAuroc.get(Method.PROBE)[l], readingAuroc.get(Method.DIFF_MEANS)[l], scale[l]));
        }
        return sb.append(')').toString();
    }

    // =============================================================================== results

    /** A strength sweep at one layer: every method, the unsteered rates and the prompting baseline. */
    public static final class Sweep {
        private final UserModelSteering owner;
        private final int layer;
        private final Rates unsteered;
        private final List<Row> rows;

        Sweep(UserModelSteering owner, int layer, Rates unsteered, List<Row> rows) {
            this.owner = owner;
            this.layer = layer;
            this.unsteered = unsteered;
            this.rows = List.copyOf(rows);
        }

        /** Every row: each method's strengths in order, then the prompting baseline. */
        public List<Row> rows() {
            return rows;
        }

        /** The layer steered. */
        public int layer() {
            return layer;
        }

        /** The rates with no steering. */
        public Rates unsteered() {
            return unsteered;
        }

        /** The rows of one method, in strength order. */
        public List<Row> steered(Method m) {
            return rows.stream().filter(r -> r.method().equals(m.name())).toList();
        }

        /** The row of {@code m} at {@code strength} (one swept). */
        public Row at(Method m, double strength) {
            return steered(m).stream().filter(r -> r.strength() == strength).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("strength " + strength + " was not swept; swept: "
                            + steered(m).stream().map(Row::strength).toList()));
        }

        /** The prompting baseline's row. */
        public Row promptBaseline() {
            return rows.get(rows.size() - 1);
        }

        /**
         * Columns: condition, method, layer, strength, n, target_rate, true_rate, undecided, well_formed, kl_neutral,
         * loss_delta_neutral.
         */
        public Table toTable() {
            StringColumn cond = StringColumn.create("condition"), method = StringColumn.create("method");
            IntColumn lay = IntColumn.create("layer"), n = IntColumn.create("n");
            DoubleColumn strength = DoubleColumn.create("strength"), tgt = DoubleColumn.create("target_rate");
            DoubleColumn tru = DoubleColumn.create("true_rate"), und = DoubleColumn.create("undecided");
            DoubleColumn wf = DoubleColumn.create("well_formed"), kl = DoubleColumn.create("kl_neutral");
            DoubleColumn loss = DoubleColumn.create("loss_delta_neutral");
            for (Row r : rows) {
                cond.append(r.condition());
                method.append(r.method());
                lay.append(r.layer());
                strength.append(r.strength());
                n.append(r.rates().n());
                tgt.append(r.rates().target());
                tru.append(r.rates().trueValue());
                und.append(r.rates().undecided());
                wf.append(r.rates().wellFormed());
                kl.append(r.klNeutral());
                loss.append(r.lossDeltaNeutral());
            }
            return Table.create("steering " + owner.attribute + " towards " + owner.targetName() + " at layer " + layer
                    + " (strength in residual norms)", cond, method, lay, strength, n, tgt, tru, und, wf, kl, loss);
        }

        /** Target rate by strength per method, with the unsteered rate and the prompting baseline as flat lines. */
        public CategoryChart plot() {
            Map<String, double[]> series = new LinkedHashMap<>();
            for (Method m : Method.values()) {
                series.put(m.name().toLowerCase(Locale.ROOT), steered(m).stream().mapToDouble(r -> r.rates().target()).toArray());
            }
            int k = steered(Method.PROBE).size();
            double[] base = new double[k], prompt = new double[k];
            Arrays.fill(base, unsteered.target());
            Arrays.fill(prompt, promptBaseline().rates().target());
            series.put("unsteered", base);
            series.put("prompting baseline", prompt);
            return Plots.legendOutside(Plots.line("replies written for " + owner.targetName() + " (layer " + layer + ")",
                    labels(), series));
        }

        /** KL on neutral text and the well-formed share by strength, per method. */
        public CategoryChart plotSideEffects() {
            Map<String, double[]> series = new LinkedHashMap<>();
            for (Method m : Method.values()) {
                String name = m.name().toLowerCase(Locale.ROOT);
                series.put("KL " + name, steered(m).stream().mapToDouble(Row::klNeutral).toArray());
                series.put("well-formed " + name, steered(m).stream().mapToDouble(r -> r.rates().wellFormed()).toArray());
            }
            return Plots.legendOutside(Plots.line("side effects by strength (layer " + layer + ")", labels(), series));
        }

        private List<String> labels() {
            return steered(Method.PROBE).stream().map(r -> String.format(Locale.ROOT, "%.3g", r.strength())).toList();
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "Sweep(%s -> %s at layer %d, %d prompts: "
                    + "unsteered %.3f", owner.attribute, owner.targetName(), layer, unsteered.n(), unsteered.target()));
            for (Method m : Method.values()) {
                sb.append("; ").append(m.name().toLowerCase(Locale.ROOT));
                for (Row r : steered(m)) {
                    sb.append(String.format(Locale.ROOT, " %.3g:%.3f", r.strength(), r.rates().target()));
                }
            }
            Row last = steered(Method.PROBE).get(steered(Method.PROBE).size() - 1);
            return sb.append(String.format(Locale.ROOT, "; prompting %.3f; probe at %.3g: KL %.3f, well-formed %.3f)",
                    promptBaseline().rates().target(), last.strength(), last.klNeutral(), last.rates().wellFormed()))
                    .toString();
        }
    }

    /** Reading against control per layer and method at one strength. */
    public static final class ReaderVsController {
        /**
         * One layer and method: the layer's held-out reading accuracy, the direction's held-out AUROC, its cosine with
         * the difference of means at that layer, and the target rate at the strength.
         */
        public record Entry(int layer, Method method, double readingAccuracy, double readingAuroc,
                double cosineToDiffMeans, double targetRate) {}

        private final UserModelSteering owner;
        private final double strength;
        private final Rates unsteered;
        private final List<Entry> entries;

        ReaderVsController(UserModelSteering owner, double strength, Rates unsteered, List<Entry> entries) {
            this.owner = owner;
            this.strength = strength;
            this.unsteered = unsteered;
            this.entries = List.copyOf(entries);
        }

        /** Every layer and method. */
        public List<Entry> entries() {
            return entries;
        }

        /** The strength steered at. */
        public double strength() {
            return strength;
        }

        /** The best reader among the probe and difference-of-means directions (highest held-out AUROC). */
        public Entry bestReader() {
            return entries.stream().filter(e -> e.method() != Method.RANDOM)
                    .max(java.util.Comparator.comparingDouble(Entry::readingAuroc)).orElseThrow();
        }

        /** The best controller among the probe and difference-of-means directions (highest target rate). */
        public Entry bestController() {
            return entries.stream().filter(e -> e.method() != Method.RANDOM)
                    .max(java.util.Comparator.comparingDouble(Entry::targetRate)).orElseThrow();
        }

        /** Whether the best reader is also the best controller. */
        public boolean sameBest() {
            return bestReader().equals(bestController());
        }

        /**
         * Spearman rank correlation of held-out reading AUROC and target rate over the non-random entries (ties get
         * their mean rank).
         */
        public double spearman() {
            List<Entry> e = entries.stream().filter(x -> x.method() != Method.RANDOM).toList();
            double[] a = ranks(e.stream().mapToDouble(Entry::readingAuroc).toArray());
            double[] b = ranks(e.stream().mapToDouble(Entry::targetRate).toArray());
            return pearson(a, b);
        }

        /**
         * Columns: layer, method, reading_accuracy, reading_auroc, cosine_to_diff_means, target_rate, gain (over the
         * unsteered rate), best_reader, best_controller.
         */
        public Table toTable() {
            IntColumn layer = IntColumn.create("layer");
            StringColumn method = StringColumn.create("method");
            DoubleColumn acc = DoubleColumn.create("reading_accuracy"), auc = DoubleColumn.create("reading_auroc");
            DoubleColumn cos = DoubleColumn.create("cosine_to_diff_means");
            DoubleColumn rate = DoubleColumn.create("target_rate"), gain = DoubleColumn.create("gain");
            BooleanColumn reader = BooleanColumn.create("best_reader"), ctl = BooleanColumn.create("best_controller");
            Entry br = bestReader(), bc = bestController();
            for (Entry e : entries) {
                layer.append(e.layer());
                method.append(e.method().name());
                acc.append(e.readingAccuracy());
                auc.append(e.readingAuroc());
                cos.append(e.cosineToDiffMeans());
                rate.append(e.targetRate());
                gain.append(e.targetRate() - unsteered.target());
                reader.append(e.equals(br));
                ctl.append(e.equals(bc));
            }
            return Table.create(String.format(Locale.ROOT, "reading vs control: %s -> %s at strength %.3g",
                    owner.attribute, owner.targetName(), strength), layer, method, acc, auc, cos, rate, gain, reader, ctl);
        }

        /** Held-out reading AUROC beside the target rate, one group of bars per layer and method. */
        public CategoryChart plot() {
            List<String> cats = entries.stream()
                    .map(e -> "L" + e.layer() + " " + e.method().name().toLowerCase(Locale.ROOT)).toList();
            Map<String, double[]> series = new LinkedHashMap<>();
            series.put("reading AUROC (held out)", entries.stream().mapToDouble(Entry::readingAuroc).toArray());
            series.put("layer probe accuracy (held out)", entries.stream().mapToDouble(Entry::readingAccuracy).toArray());
            series.put(String.format(Locale.ROOT, "target rate at %.3g", strength),
                    entries.stream().mapToDouble(Entry::targetRate).toArray());
            double[] base = new double[entries.size()];
            Arrays.fill(base, unsteered.target());
            series.put("unsteered rate", base);
            return Plots.bar("reading vs control: " + owner.attribute + " -> " + owner.targetName(), cats, series);
        }

        @Override
        public String toString() {
            Entry br = bestReader(), bc = bestController();
            return String.format(Locale.ROOT, "ReaderVsController(%s -> %s at strength %.3g: best reader L%d %s (AUROC "
                    + "%.3f, rate %.3f), best controller L%d %s (AUROC %.3f, rate %.3f), same: %s, Spearman %.2f; "
                    + "unsteered %.3f)", owner.attribute, owner.targetName(), strength, br.layer(), br.method(),
                    br.readingAuroc(), br.targetRate(), bc.layer(), bc.method(), bc.readingAuroc(), bc.targetRate(),
                    sameBest(), spearman(), unsteered.target());
        }

        private static double[] ranks(double[] x) {
            Integer[] idx = new Integer[x.length];
            for (int i = 0; i < idx.length; i++) idx[i] = i;
            Arrays.sort(idx, (p, q) -> Double.compare(x[p], x[q]));
            double[] r = new double[x.length];
            for (int i = 0; i < idx.length; ) {
                int j = i;
                while (j + 1 < idx.length && x[idx[j + 1]] == x[idx[i]]) j++;
                for (int k = i; k <= j; k++) r[idx[k]] = (i + j) / 2.0;
                i = j + 1;
            }
            return r;
        }

        private static double pearson(double[] a, double[] b) {
            double ma = Arrays.stream(a).average().orElse(0), mb = Arrays.stream(b).average().orElse(0);
            double sab = 0, saa = 0, sbb = 0;
            for (int i = 0; i < a.length; i++) {
                sab += (a[i] - ma) * (b[i] - mb);
                saa += (a[i] - ma) * (a[i] - ma);
                sbb += (b[i] - mb) * (b[i] - mb);
            }
            return saa == 0 || sbb == 0 ? Double.NaN : sab / Math.sqrt(saa * sbb);
        }
    }
}
