package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.data.Dialogues;
import dev.jlens.data.Dialogues.Attribute;
import dev.jlens.data.Dialogues.Speaker;
import dev.jlens.data.Dialogues.TokenLabel;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.viz.Plots;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Does a model of {@link Dialogues} keep a model of its user? A linear probe per layer reads a hidden attribute (age
 * group, expertise, mood) from the residual stream at the user's tokens, beside a control task and beside the "just
 * ask" baseline: how often the model's own answer to {@code how old do you think i am ?} is right.
 *
 * <pre>{@code
 * HookedTransformer model = Zoo.load("chat-users");
 * UserModelReadout r = UserModelReadout.run(model, Dialogues.defaults(), Attribute.AGE, At.USER_TOKENS, 400);
 * r.toTable();   // per hook: probe accuracy, control, selectivity, majority rate, just-ask accuracy
 * r.plot();
 * }</pre>
 *
 * <p>Rows come from the first {@code dialogues} dialogues of the test split; cross-validation folds are grouped by
 * dialogue, so no dialogue has rows on both sides; the control task gives each token type one random label. The hooks
 * are {@code blocks.0.hook_resid_pre} (the embeddings: what the current token alone says) and every block's
 * {@code hook_resid_post}.
 */
public final class UserModelReadout {

    /** Which positions become probing rows. */
    public enum At {
        /** Every word of every user turn (not the closing question); control types: the token. */
        USER_TOKENS,
        /** The words of the first user turn only, before the assistant has said anything. */
        FIRST_TURN,
        /** The {@code ?} closing each user turn; control types: the word before it. */
        TURN_END
    }

    /**
     * The just-ask baseline: of {@code asked} held-out dialogues that end by asking about {@code attribute}, the
     * fraction whose greedy answer among the attribute's answer words is the true value, and the fraction whose
     * argmax over the whole vocabulary is one of those words at all.
     */
    public record JustAsk(Attribute attribute, int asked, double accuracy, double answerFormat) {
        /** Accuracy of always giving one value (the attribute's values are uniform per dialogue). */
        public double chance() {
            return 1.0 / attribute.classes();
        }
    }

    private final Attribute attribute;
    private final At at;
    private final LayerSweep sweep;
    private final JustAsk justAsk;

    private UserModelReadout(Attribute attribute, At at, LayerSweep sweep, JustAsk justAsk) {
        this.attribute = attribute;
        this.at = at;
        this.sweep = sweep;
        this.justAsk = justAsk;
    }

    /**
     * The default probes: logistic regression with L2 {@code 1e-2} and at most 100 iterations (the control task's
     * random labels otherwise take the full 500 iterations of {@link ProbeMethod#logistic()} to memorise), 5 folds.
     */
    public static final LayerSweep.Options OPTIONS = new LayerSweep.Options(new ProbeMethod.Logistic(1e-2, 100), 5, 0);

    /** Probes {@code attribute} at {@code at} on {@code dialogues} test dialogues, with {@link #OPTIONS}. */
    public static UserModelReadout run(HookedTransformer model, Dialogues task, Attribute attribute, At at,
            int dialogues) {
        return run(model, task, attribute, at, dialogues, OPTIONS);
    }

    /** As {@link #run(HookedTransformer, Dialogues, Attribute, At, int)} with other probe options. */
    public static UserModelReadout run(HookedTransformer model, Dialogues task, Attribute attribute, At at,
            int dialogues, LayerSweep.Options options) {
        if (dialogues < 10) throw new IllegalArgumentException("need at least 10 dialogues, got " + dialogues);
        List<Example<Dialogues.Meta>> exs = task.examples(Split.TEST, 0, dialogues);
        List<String> hooks = new ArrayList<>();
        hooks.add(model.actName("resid_pre", 0));
        for (int l = 0; l < model.cfg().nLayers(); l++) hooks.add(model.actName("resid_post", l));
        LayerSweep sweep = LayerSweep.run(model, hooks, padded(exs, 64), labeller(exs, attribute, at), options);
        return new UserModelReadout(attribute, at, sweep, justAsk(model, task, attribute, dialogues));
    }

    /**
     * Probing rows for {@code attribute} at {@code at} in these dialogues (sequence {@code i} is {@code exs.get(i)}):
     * label the attribute's value at the token (the mood of that exchange), group the dialogue, type the token id
     * (at {@code TURN_END} the id of the word before {@code ?}).
     */
    public static TokenLabeller labeller(List<Example<Dialogues.Meta>> exs, Attribute attribute, At at) {
        return (seq, pos) -> {
            Example<Dialogues.Meta> ex = exs.get(seq);
            TokenLabel l = ex.meta().labels().get(pos);
            if (l.speaker() != Speaker.USER || l.source() == Dialogues.Source.QUESTION) return Optional.empty();
            String word = ex.tokens().get(pos);
            if (l.turn() >= ex.meta().moods().size()) return Optional.empty();   // the closing question
            boolean end = word.equals(Dialogues.QUESTION_MARK);
            boolean inTurn = l.source() != Dialogues.Source.STRUCTURE;
            boolean take = switch (at) {
                case USER_TOKENS -> inTurn;
                case FIRST_TURN -> inTurn && l.turn() == 0;
                case TURN_END -> end;
            };
            if (!take) return Optional.empty();
            int type = (int) ex.ids()[end ? pos - 1 : pos];
            return Optional.of(new TokenLabeller.Row(attribute.of(l), seq, type));
        };
    }

    /**
     * The just-ask baseline on the first {@code dialogues} test dialogues of {@code task} made to end with the
     * question about {@code attribute} (the same dialogues with ask rate 1, the ones asking about it).
     */
    public static JustAsk justAsk(HookedTransformer model, Dialogues task, Attribute attribute, int dialogues) {
        List<Example<Dialogues.Meta>> asking = new ArrayList<>();
        Dialogues always = task.withAskRate(1);
        for (int i = 0; asking.size() < dialogues && i < 20L * dialogues; i++) {
            Example<Dialogues.Meta> ex = always.example(Split.TEST, i);
            if (ex.meta().asked().orElseThrow() == attribute) asking.add(ex);
        }
        long[] answerIds = new long[attribute.classes()];
        for (int v = 0; v < answerIds.length; v++) answerIds[v] = task.answerId(attribute, v);
        int right = 0, formatted = 0;
        for (int from = 0; from < asking.size(); from += 64) {
            List<Example<Dialogues.Meta>> chunk = asking.subList(from, Math.min(asking.size(), from + 64));
            Batch batch = padded(chunk, chunk.size()).get(0);
            try (NDScope scope = new NDScope()) {
                NDArray logits = model.forward(batch);
                int len = (int) logits.getShape().get(1), vocab = (int) logits.getShape().get(2);
                float[] flat = logits.toFloatArray();
                for (int b = 0; b < chunk.size(); b++) {
                    Dialogues.Meta m = chunk.get(b).meta();
                    int base = (b * len + m.answerPosition().orElseThrow() - 1) * vocab;
                    int best = 0, bestAll = 0;
                    for (int v = 1; v < answerIds.length; v++) {
                        if (flat[base + (int) answerIds[v]] > flat[base + (int) answerIds[best]]) best = v;
                    }
                    for (int t = 1; t < vocab; t++) if (flat[base + t] > flat[base + bestAll]) bestAll = t;
                    right += best == m.value(attribute) ? 1 : 0;
                    formatted += contains(answerIds, bestAll) ? 1 : 0;
                }
            }
        }
        return new JustAsk(attribute, asking.size(), right / (double) asking.size(),
                formatted / (double) asking.size());
    }

    private static boolean contains(long[] ids, int id) {
        for (long x : ids) if (x == id) return true;
        return false;
    }

    /** Right-padded batches of {@code size} examples. */
    static List<Batch> padded(List<? extends Example<?>> exs, int size) {
        List<Batch> out = new ArrayList<>();
        for (int from = 0; from < exs.size(); from += size) {
            List<? extends Example<?>> chunk = exs.subList(from, Math.min(exs.size(), from + size));
            int len = chunk.stream().mapToInt(Example::length).max().orElseThrow();
            long[][] ids = new long[chunk.size()][len];
            boolean[][] mask = new boolean[chunk.size()][len];
            for (int b = 0; b < chunk.size(); b++) {
                Arrays.fill(ids[b], Task.PAD_ID);
                System.arraycopy(chunk.get(b).ids(), 0, ids[b], 0, chunk.get(b).length());
                Arrays.fill(mask[b], 0, chunk.get(b).length(), true);
            }
            out.add(Batch.of(ids, mask));
        }
        return out;
    }

    /** The attribute probed. */
    public Attribute attribute() {
        return attribute;
    }

    /** Where it was probed. */
    public At at() {
        return at;
    }

    /** The probe sweep over hooks. */
    public LayerSweep sweep() {
        return sweep;
    }

    /** The just-ask baseline. */
    public JustAsk justAsk() {
        return justAsk;
    }

    /** The best probe accuracy over the hooks. */
    public double bestAccuracy() {
        return sweep.best().report().task().mean();
    }

    /** The sweep's table with the just-ask accuracy and chance beside every row. */
    public Table toTable() {
        Table t = sweep.toTable();
        int n = t.rowCount();
        double[] ask = new double[n], chance = new double[n];
        Arrays.fill(ask, justAsk.accuracy());
        Arrays.fill(chance, justAsk.chance());
        t.addColumns(DoubleColumn.create("just_ask_accuracy", ask), DoubleColumn.create("chance", chance));
        return t.setName(attribute + " at " + at + ": " + t.name());
    }

    /** Probe and control accuracy by hook, with the just-ask accuracy and chance as flat lines. */
    public CategoryChart plot() {
        Table t = toTable();
        List<String> x = new ArrayList<>();
        for (String h : t.stringColumn("hook").asList()) x.add(h.replace("blocks.", "").replace(".hook_", " "));
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("probe", t.doubleColumn("accuracy").asDoubleArray());
        series.put("control", t.doubleColumn("control_accuracy").asDoubleArray());
        series.put("just ask", t.doubleColumn("just_ask_accuracy").asDoubleArray());
        series.put("chance", t.doubleColumn("chance").asDoubleArray());
        return Plots.line(attribute.name().toLowerCase() + " read from the user's tokens (" + at + ")", x, series);
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "UserModelReadout(%s at %s: best probe %.3f at %s; just ask %.3f "
                + "on %d dialogues; chance %.3f)", attribute, at, bestAccuracy(), sweep.best().hook(),
                justAsk.accuracy(), justAsk.asked(), justAsk.chance());
    }
}
