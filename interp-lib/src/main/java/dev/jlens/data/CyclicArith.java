package dev.jlens.data;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Arithmetic on the days of the week and the months of the year, in words: {@code Tuesday plus 3 days is Friday},
 * {@code March minus 5 months is October} (Engels et al. 2024, "Not All Language Model Features Are Linear", ask
 * language models such questions and find the days and months on circles).
 *
 * <p>An example is {@code <bos> [filler words] START OP N UNIT is ANSWER <eos>}:
 * <pre>
 * &lt;bos&gt; so then Tuesday plus 3 days is Friday &lt;eos&gt;
 * &lt;bos&gt; March minus 5 months is October &lt;eos&gt;
 * </pre>
 * {@code START} and {@code ANSWER} are day names ({@code Monday} .. {@code Sunday}, index 0..6) with unit
 * {@code days}, or month names ({@code January} .. {@code December}, 0..11) with unit {@code months}; {@code OP} is
 * {@code plus} or {@code minus}; {@code N} is a number token {@code 1} .. {@code maxOffset}, so answers wrap around
 * the cycle, once or more. The ground truth: {@code ANSWER = (START ± N) mod 7} (or {@code mod 12}), in
 * {@link Problem#answer()}. Up to {@code maxFiller} filler words ({@link #FILLERS}, uniform count, each uniform)
 * come before {@code START}, so the start word sits at several positions in several contexts; they carry nothing.
 *
 * <p>Each example draws the cycle (days or months, 1/2 each), then start, operation and offset uniformly. The loss
 * mask covers {@code ANSWER} and {@code <eos>}: the model is trained to answer, not to guess the question. A
 * problem's split is a hash of (cycle, start, operation, offset), so filler never moves a problem between splits
 * and no test question is ever seen in training, with any filler.
 *
 * <p>A fraction {@code nearRate} of examples ask instead whether two names are neighbours on their cycle:
 * {@code Tuesday near Wednesday is yes}, {@code Tuesday near Friday is no} ({@link Near}: yes when the cyclic
 * distance is at most 1, the same name included; yes and no 1/2 each). Unlike the arithmetic, which any relabelling
 * {@code d -> m d mod n} of the names preserves, nearness singles out the names' own order: a model that answers it
 * from a circle needs the circle that goes Monday, Tuesday, ... in turn (the large models of Engels et al. learned
 * that order from text).
 *
 * @param maxOffset largest offset {@code N} (1..{@value #MAX_OFFSET})
 * @param maxFiller most filler words before the start word (0..8)
 * @param nearRate fraction of examples that are nearness questions (0..1)
 * @param seed seed of every example
 */
public record CyclicArith(int maxOffset, int maxFiller, double nearRate, long seed) implements Task<CyclicArith.Meta> {

    /** Largest offset the vocabulary holds a number token for. */
    public static final int MAX_OFFSET = 30;
    /** The words that may come before the start word, meaning nothing. */
    public static final List<String> FILLERS = List.of("so", "then", "well", "now");
    /** The word before the answer. */
    public static final String IS = "is";
    /** The word of a nearness question, and its answers. */
    public static final String NEAR = "near", YES = "yes", NO = "no";

    /** A cycle of names: the days of the week or the months of the year. */
    public enum Cycle {
        DAYS("days", List.of("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")),
        MONTHS("months", List.of("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December"));

        private final String unit;
        private final List<String> names;

        Cycle(String unit, List<String> names) {
            this.unit = unit;
            this.names = names;
        }

        /** The unit word after the offset: {@code days} or {@code months}. */
        public String unit() {
            return unit;
        }

        /** The names in cyclic order, index 0 first ({@code Monday}, {@code January}). */
        public List<String> names() {
            return names;
        }

        /** The cycle's length: 7 or 12. */
        public int length() {
            return names.size();
        }

        /** The index of a name in this cycle; throws naming the cycle's names. */
        public int indexOf(String name) {
            int i = names.indexOf(name);
            if (i < 0) throw new IllegalArgumentException("'" + name + "' is not one of the " + unit + ": " + names);
            return i;
        }
    }

    /** Forwards or backwards along the cycle. */
    public enum Op {
        PLUS("plus", 1), MINUS("minus", -1);

        private final String word;
        private final int sign;

        Op(String word, int sign) {
            this.word = word;
            this.sign = sign;
        }

        /** The operation's word. */
        public String word() {
            return word;
        }

        /** +1 or -1. */
        public int sign() {
            return sign;
        }
    }

    /** A question about a cycle: arithmetic ({@link Problem}) or nearness ({@link Near}). */
    public sealed interface Question permits Problem, Near {
        /** The cycle the question is about. */
        Cycle cycle();

        /** The index of the name the question starts from (its first name). */
        int start();

        /** The answer word. */
        String answerWord();
    }

    /** Are {@code a} and {@code b} neighbours on {@code cycle} (cyclic distance at most 1)? */
    public record Near(Cycle cycle, int a, int b) implements Question {
        /** Validates the indices. */
        public Near {
            Objects.requireNonNull(cycle, "cycle: DAYS or MONTHS");
            if (a < 0 || a >= cycle.length() || b < 0 || b >= cycle.length()) {
                throw new IllegalArgumentException("names must be 0.." + (cycle.length() - 1) + ", got " + a + ", " + b);
            }
        }

        /** The cyclic distance between the two names. */
        public int distance() {
            int d = Math.floorMod(a - b, cycle.length());
            return Math.min(d, cycle.length() - d);
        }

        /** True if the names are neighbours or the same. */
        public boolean answer() {
            return distance() <= 1;
        }

        @Override
        public int start() {
            return a;
        }

        @Override
        public String answerWord() {
            return answer() ? YES : NO;
        }

        /** {@code Tuesday near Wednesday is yes}. */
        @Override
        public String toString() {
            return cycle.names().get(a) + " " + NEAR + " " + cycle.names().get(b) + " " + IS + " " + answerWord();
        }
    }

    /** An arithmetic question: {@code start op offset} along {@code cycle}. */
    public record Problem(Cycle cycle, int start, Op op, int offset) implements Question {
        /** Validates the indices. */
        public Problem {
            Objects.requireNonNull(cycle, "cycle: DAYS or MONTHS");
            Objects.requireNonNull(op, "op: PLUS or MINUS");
            if (start < 0 || start >= cycle.length()) {
                throw new IllegalArgumentException("start must be 0.." + (cycle.length() - 1) + " for " + cycle
                        + ", got " + start);
            }
            if (offset < 1 || offset > MAX_OFFSET) {
                throw new IllegalArgumentException("offset must be 1.." + MAX_OFFSET + ", got " + offset);
            }
        }

        /** The index of the answer: {@code (start + sign * offset) mod length}. */
        public int answer() {
            return Math.floorMod(start + op.sign() * offset, cycle.length());
        }

        /** The name the question starts from. */
        public String startName() {
            return cycle.names().get(start);
        }

        /** The name of the answer. */
        public String answerName() {
            return cycle.names().get(answer());
        }

        @Override
        public String answerWord() {
            return answerName();
        }

        /** The same question {@code k} steps further along the cycle from its start (the answer moves by k too). */
        public Problem shifted(int k) {
            return new Problem(cycle, Math.floorMod(start + k, cycle.length()), op, offset);
        }

        /** {@code Tuesday plus 3 days is Friday}. */
        @Override
        public String toString() {
            return startName() + " " + op.word() + " " + offset + " " + cycle.unit() + " " + IS + " " + answerName();
        }
    }

    /** The role of each token ({@code OP} is also {@code near}, {@code OFFSET} the second name of a nearness question). */
    public enum Role { BOS, FILLER, START, OP, OFFSET, UNIT, IS, ANSWER, EOS }

    /**
     * Metadata of an example: its question, the position of the start word, and of the answer ({@code answerPosition}
     * is also the prompt's length: the prompt ends with {@code is}, where the answer is predicted).
     */
    public record Meta(Question question, int startPosition, int answerPosition) {
        /** The arithmetic problem; throws for a nearness question. */
        public Problem problem() {
            if (question instanceof Problem p) return p;
            throw new IllegalStateException("a nearness question has no arithmetic problem: " + question);
        }

        /** True for an arithmetic question. */
        public boolean isArithmetic() {
            return question instanceof Problem;
        }

        /** The true answer's index (arithmetic questions). */
        public int answer() {
            return problem().answer();
        }
    }

    private static final Vocab VOCAB = new Vocab("cyclic-arith", words());
    private static final int MAX_ATTEMPTS = 10_000;

    private static List<String> words() {
        List<String> w = new ArrayList<>();
        for (Cycle c : Cycle.values()) w.addAll(c.names());
        for (Cycle c : Cycle.values()) w.add(c.unit());
        for (Op o : Op.values()) w.add(o.word());
        w.add(IS);
        w.add(NEAR);
        w.add(YES);
        w.add(NO);
        w.addAll(FILLERS);
        for (int n = 1; n <= MAX_OFFSET; n++) w.add(Integer.toString(n));
        return w;
    }

    /** Arithmetic questions only. */
    public CyclicArith(int maxOffset, int maxFiller, long seed) {
        this(maxOffset, maxFiller, 0, seed);
    }

    /** Validates the settings. */
    public CyclicArith {
        if (!(nearRate >= 0 && nearRate <= 1)) {
            throw new IllegalArgumentException("nearRate must lie in [0, 1], got " + nearRate);
        }
        if (maxOffset < 1 || maxOffset > MAX_OFFSET) {
            throw new IllegalArgumentException("maxOffset must be 1.." + MAX_OFFSET + ", got " + maxOffset);
        }
        if (maxFiller < 0 || maxFiller > 8) {
            throw new IllegalArgumentException("maxFiller must be 0..8, got " + maxFiller);
        }
    }

    /**
     * Offsets 1..13 (every day offset mod 7 and most month offsets appear, with wrap-around), up to 3 filler words, a
     * quarter nearness questions.
     */
    public static CyclicArith defaults() {
        return new CyclicArith(13, 3, 0.25, 0);
    }

    @Override
    public CyclicArith withSeed(long newSeed) {
        return new CyclicArith(maxOffset, maxFiller, nearRate, newSeed);
    }

    @Override
    public String name() {
        return "cyclic-arith";
    }

    @Override
    public List<String> vocab() {
        return VOCAB.list();
    }

    @Override
    public long tokenId(String token) {
        return VOCAB.id(token);
    }

    /** {@code <bos>}, the fillers, and {@code START OP N UNIT is ANSWER <eos>}. */
    @Override
    public int maxLength() {
        return 1 + maxFiller + 7;
    }

    @Override
    public Example<Meta> example(Split split, long index) {
        Rng rng = Rng.of(seed, split.ordinal(), index);
        for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            Cycle cycle = Cycle.values()[rng.nextInt(2)];
            Question q;
            if (rng.chance(nearRate)) {
                int a = rng.nextInt(cycle.length()), b;
                if (rng.chance(0.5)) {
                    b = Math.floorMod(a + rng.nextInt(3) - 1, cycle.length());
                } else {
                    b = Math.floorMod(a + 2 + rng.nextInt(cycle.length() - 3), cycle.length());
                }
                q = new Near(cycle, a, b);
            } else {
                q = new Problem(cycle, rng.nextInt(cycle.length()), Op.values()[rng.nextInt(2)],
                        1 + rng.nextInt(maxOffset));
            }
            if (splitOf(q) != split) continue;
            int n = rng.nextInt(maxFiller + 1);
            List<String> filler = new ArrayList<>(n);
            for (int i = 0; i < n; i++) filler.add(FILLERS.get(rng.nextInt(FILLERS.size())));
            return example(q, filler);
        }
        throw new IllegalStateException("no " + split + " problem found in " + MAX_ATTEMPTS + " draws for " + this);
    }

    /** The split a question belongs to (the same for every seed and filler). */
    public static Split splitOf(Question q) {
        if (q instanceof Problem p) {
            return Split.of("cyclic-arith", p.cycle().ordinal(), p.start(), p.op().ordinal(), p.offset());
        }
        Near n = (Near) q;
        return Split.of("cyclic-arith-near", n.cycle().ordinal(), n.a(), n.b());
    }

    /** Every problem of {@code cycle} with offsets 1..maxOffset that belongs to {@code split}, in a fixed order. */
    public List<Problem> problems(Cycle cycle, Split split) {
        List<Problem> out = new ArrayList<>();
        for (int start = 0; start < cycle.length(); start++) {
            for (Op op : Op.values()) {
                for (int n = 1; n <= maxOffset; n++) {
                    Problem p = new Problem(cycle, start, op, n);
                    if (splitOf(p) == split) out.add(p);
                }
            }
        }
        return out;
    }

    /** A question rendered after the given filler words (each one of {@link #FILLERS}). */
    public Example<Meta> example(Question q, List<String> filler) {
        Objects.requireNonNull(q, "question");
        if (q instanceof Problem p && p.offset() > maxOffset) {
            throw new IllegalArgumentException("offset " + p.offset() + " is beyond this task's maxOffset " + maxOffset);
        }
        if (filler.size() > maxFiller) {
            throw new IllegalArgumentException(filler.size() + " filler words, more than maxFiller " + maxFiller);
        }
        List<String> tokens = new ArrayList<>(maxLength());
        List<Role> roles = new ArrayList<>(maxLength());
        tokens.add(SPECIALS.get(1));
        roles.add(Role.BOS);
        for (String f : filler) {
            if (!FILLERS.contains(f)) throw new IllegalArgumentException("'" + f + "' is not a filler: " + FILLERS);
            tokens.add(f);
            roles.add(Role.FILLER);
        }
        int startPos = tokens.size();
        tokens.add(q.cycle().names().get(q.start()));
        roles.add(Role.START);
        if (q instanceof Problem p) {
            tokens.add(p.op().word());
            roles.add(Role.OP);
            tokens.add(Integer.toString(p.offset()));
            roles.add(Role.OFFSET);
            tokens.add(p.cycle().unit());
            roles.add(Role.UNIT);
        } else {
            Near n = (Near) q;
            tokens.add(NEAR);
            roles.add(Role.OP);
            tokens.add(n.cycle().names().get(n.b()));
            roles.add(Role.OFFSET);
        }
        tokens.add(IS);
        roles.add(Role.IS);
        int answerPos = tokens.size();
        tokens.add(q.answerWord());
        roles.add(Role.ANSWER);
        tokens.add(SPECIALS.get(2));
        roles.add(Role.EOS);
        boolean[] loss = new boolean[tokens.size()];
        loss[answerPos] = true;
        loss[answerPos + 1] = true;
        Map<String, List<?>> labels = new LinkedHashMap<>();
        labels.put("role", roles);
        return new Example<>(VOCAB.ids(tokens), tokens, loss, labels, new Meta(q, startPos, answerPos));
    }

    /** A question without filler. */
    public Example<Meta> example(Question q) {
        return example(q, List.of());
    }

    /** The token ids of the names of {@code cycle}, in cyclic order (to read the answer's logits). */
    public long[] nameIds(Cycle cycle) {
        return cycle.names().stream().mapToLong(VOCAB::id).toArray();
    }

    @Override
    public String toString() {
        return "CyclicArith(offsets 1.." + maxOffset + ", up to " + maxFiller + " filler words, near " + nearRate
                + ", seed " + seed
                + ", length " + maxLength() + ")";
    }
}
