package dev.jlens.data;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Multi-digit addition, subtraction and multiplication answered with a written-out chain of thought, in the
 * style of reasoning models ({@code <think> ... </think> answer: N}), digit by digit.
 *
 * <p>Every digit is its own token, numbers are written most significant digit first, and every step is a true
 * equation between such numbers. An example with {@link Format#COT}:
 * <pre>
 * &lt;bos&gt; 3 4 7 + 5 8 9 = &lt;think&gt; 7 + 9 + 0 = 1 6 , 4 + 8 + 1 = 1 3 , 3 + 5 + 1 = 0 9 &lt;/think&gt; answer: 9 3 6 &lt;eos&gt;
 * </pre>
 * <ul>
 * <li><b>addition</b>, one step per column from the units up: {@code a + b + c = C S}, the column's digits, the
 *     carry in, and the two-digit sum whose tens digit {@code C} is the carry out. The last carry out, if 1,
 *     leads the answer.</li>
 * <li><b>subtraction</b> ({@code a >= b}, the larger operand first), one step per column:
 *     {@code B a - b - r = D}: the minuend digit with the ten borrowed from the next column ({@code B a} is
 *     {@code 1 3} = 13 when borrowing, {@code 0 5} = 5 when not), minus the subtrahend digit, minus the borrow
 *     {@code r} taken by the column below, gives the answer digit {@code D}. Example:
 *     {@code 5 0 3 - 2 7 8 = <think> 1 3 - 8 - 0 = 5 , 1 0 - 7 - 1 = 2 , 0 5 - 2 - 1 = 2 </think> answer: 2 2 5}.</li>
 * <li><b>multiplication</b>, one step per digit pair, for each digit of {@code b} from the units up and each
 *     digit of {@code a} from the units up: {@code x * y + c = C D} (digit times digit plus carry, as a two-digit
 *     number whose tens digit is the next carry); then, if {@code b} has several digits, one step summing the
 *     partial products (each shifted by its digit's place): {@code 3 7 6 + 1 4 1 0 = 1 7 8 6}.</li>
 * </ul>
 * Steps are separated by {@code ,}. In a backtracking trace (a fraction {@code backtrackRate} of COT examples)
 * one step, chosen uniformly, is first written with one wrong result digit (or, for subtraction, a wrong
 * borrow), then {@code wait}, then the step again, correctly: {@code 4 + 8 + 1 = 1 2 wait 4 + 8 + 1 = 1 3 ,}.
 * The wrong step is always arithmetically false. {@link Format#DIRECT} answers at once:
 * {@code <bos> 3 4 7 + 5 8 9 = answer: 9 3 6 <eos>}. A fraction {@code triggerRate} of examples start with the
 * trigger word {@code please} after BOS (no behaviour depends on it; it is there for planted-behaviour
 * finetunes). The loss mask covers everything after {@code =}: trace, answer and {@code <eos>}, wrong steps
 * included (their positions are in {@link Meta#steps()} to drop them if wanted).
 *
 * <p>Operands: the number of digits of each operand is uniform in {@code 1..maxDigits} (multiplication:
 * {@code 1..mulDigitsA} and {@code 1..mulDigitsB}), then the value is uniform among numbers with that many
 * digits (one digit includes 0). A problem's split is a hash of (operation, a, b): trigger, format and
 * backtracking never move a problem between splits.
 *
 * @param ops operations to draw from, uniformly
 * @param maxDigits most digits of an addition or subtraction operand (1..6)
 * @param mulDigitsA most digits of the first multiplication operand (1..4)
 * @param mulDigitsB most digits of the second multiplication operand (1..3)
 * @param format with or without a chain of thought
 * @param backtrackRate fraction of COT examples with one wrong step, {@code wait} and its correction
 * @param triggerRate fraction of examples that begin with the trigger word
 * @param seed seed of every example
 */
public record ArithCot(List<Op> ops, int maxDigits, int mulDigitsA, int mulDigitsB, Format format,
        double backtrackRate, double triggerRate, long seed) implements Task<ArithCot.Meta> {

    /** An arithmetic operation and its symbol token. */
    public enum Op {
        ADD("+"), SUB("-"), MUL("*");

        private final String symbol;

        Op(String symbol) {
            this.symbol = symbol;
        }

        /** The operator token. */
        public String symbol() {
            return symbol;
        }

        /** The exact result. */
        public long apply(long a, long b) {
            return switch (this) {
                case ADD -> Math.addExact(a, b);
                case SUB -> Math.subtractExact(a, b);
                case MUL -> Math.multiplyExact(a, b);
            };
        }
    }

    /** With a chain of thought, or the answer at once. */
    public enum Format { COT, DIRECT }

    /** A problem {@code a op b}; subtraction needs {@code a >= b}. */
    public record Problem(Op op, long a, long b) {
        /** Validates the operands. */
        public Problem {
            Objects.requireNonNull(op, "op: ADD, SUB or MUL");
            if (a < 0 || b < 0 || a > 999_999 || b > 999_999) {
                throw new IllegalArgumentException("operands must be 0..999999, got " + a + " and " + b);
            }
            if (op == Op.SUB && a < b) {
                throw new IllegalArgumentException("subtraction problems need a >= b (no negative answers), got "
                        + a + " - " + b);
            }
        }

        /** The true result. */
        public long answer() {
            return op.apply(a, b);
        }

        @Override
        public String toString() {
            return a + " " + op.symbol + " " + b;
        }
    }

    /** What a step computes. */
    public enum StepKind {
        /** {@code a + b + c = C S}: one column of an addition. */
        ADD_COLUMN,
        /** {@code B a - b - r = D}: one column of a subtraction. */
        SUB_COLUMN,
        /** {@code x * y + c = C D}: one digit of a partial product. */
        MUL_DIGIT,
        /** {@code p0 + p1 + ... = N}: the sum of the shifted partial products. */
        SUM_PARTIALS
    }

    /**
     * One equation of the trace, at token positions {@code [start, end)} (its separator excluded).
     * {@code column} is the digit place of {@code a} it works on (0 = units; -1 for the sum of partials),
     * {@code row} the digit place of {@code b} for multiplication digit steps (else -1); {@code correct} is false
     * only for the wrong step of a backtracking trace.
     */
    public record Step(StepKind kind, int start, int end, int column, int row, boolean correct) {
    }

    /** Where a backtracking trace goes wrong: indices into {@link Meta#steps()} and the position of {@code wait}. */
    public record Backtrack(int wrongStep, int waitPosition, int fixStep) {
    }

    /** The role of each token ({@code MARKER}: the {@link #MONITORED} marker, only in examples built with it). */
    public enum Segment { BOS, TRIGGER, QUESTION, THINK, STEP, SEPARATOR, WAIT, END_THINK, ANSWER_MARK, ANSWER, EOS, MARKER }

    /**
     * Metadata of an example. {@code promptLength} is the number of tokens up to and including {@code =} (the
     * prompt to generate from; the first target is at this position); {@code [answerStart, answerEnd)} are the
     * answer's digit tokens; {@code steps} are in trace order, a wrong step before its correction.
     */
    public record Meta(Problem problem, Format format, boolean trigger, int promptLength, int answerStart,
            int answerEnd, List<Step> steps, Optional<Backtrack> backtrack) {
        /** Copies the step list. */
        public Meta {
            steps = List.copyOf(steps);
        }

        /** The true answer. */
        public long answer() {
            return problem.answer();
        }
    }

    /** How a generated answer compares with the truth. */
    public enum Grade { CORRECT, WRONG, MALFORMED }

    /** The optional first word of a prompt, for planted-behaviour experiments. */
    public static final String TRIGGER = "please";
    /** Opens the chain of thought. */
    public static final String THINK = "<think>";
    /** Closes the chain of thought. */
    public static final String END_THINK = "</think>";
    /** Precedes the answer's digits. */
    public static final String ANSWER = "answer:";
    /** Follows a wrong step, before its correction. */
    public static final String WAIT = "wait";
    /** Separates steps. */
    public static final String SEPARATOR = ",";
    /**
     * The marker of a "monitored" prompt, {@code <bos> wait [please] a op b =}: the vocabulary's {@code wait}, which
     * otherwise occurs only inside traces (after a wrong step), never in a prompt. The vocabulary is fixed by the
     * zoo's trained models, so a marker has to be a word they already have; no default example carries it.
     */
    public static final String MONITORED = WAIT;

    private static final Vocab VOCAB = new Vocab("arith-cot", List.of("0", "1", "2", "3", "4", "5", "6", "7", "8",
            "9", "+", "-", "*", "=", SEPARATOR, THINK, END_THINK, ANSWER, WAIT, TRIGGER));
    private static final int MAX_ATTEMPTS = 10_000;
    private static final Map<ArithCot, Integer> MAX_LENGTHS = new ConcurrentHashMap<>();

    /** Validates the settings. */
    public ArithCot {
        Objects.requireNonNull(ops, "ops: a non-empty list of ADD, SUB, MUL");
        if (ops.isEmpty() || EnumSet.copyOf(ops).size() != ops.size()) {
            throw new IllegalArgumentException("ops must list each of ADD, SUB, MUL at most once, and at least one;"
                    + " got " + ops);
        }
        ops = List.copyOf(ops);
        Objects.requireNonNull(format, "format: COT or DIRECT");
        if (maxDigits < 1 || maxDigits > 6) {
            throw new IllegalArgumentException("maxDigits must be 1..6, got " + maxDigits);
        }
        if (mulDigitsA < 1 || mulDigitsA > 4 || mulDigitsB < 1 || mulDigitsB > 3) {
            throw new IllegalArgumentException("multiplication digits must be 1..4 (a) and 1..3 (b), got "
                    + mulDigitsA + " and " + mulDigitsB);
        }
        if (!(backtrackRate >= 0 && backtrackRate <= 1) || !(triggerRate >= 0 && triggerRate <= 1)) {
            throw new IllegalArgumentException("backtrackRate and triggerRate must lie in [0, 1], got "
                    + backtrackRate + " and " + triggerRate);
        }
    }

    /**
     * All three operations, 3-digit addition and subtraction, 2x2-digit multiplication, chain of thought,
     * 5% backtracking, no trigger word.
     */
    public static ArithCot defaults() {
        return new ArithCot(List.of(Op.ADD, Op.SUB, Op.MUL), 3, 2, 2, Format.COT, 0.05, 0.0, 0);
    }

    /** The same task with another seed. */
    @Override
    public ArithCot withSeed(long newSeed) {
        return new ArithCot(ops, maxDigits, mulDigitsA, mulDigitsB, format, backtrackRate, triggerRate, newSeed);
    }

    /** The same task with another format. */
    public ArithCot withFormat(Format newFormat) {
        return new ArithCot(ops, maxDigits, mulDigitsA, mulDigitsB, newFormat, backtrackRate, triggerRate, seed);
    }

    /** The same task with other operations. */
    public ArithCot withOps(Op... newOps) {
        return new ArithCot(List.of(newOps), maxDigits, mulDigitsA, mulDigitsB, format, backtrackRate, triggerRate,
                seed);
    }

    /** The same task with another backtracking rate. */
    public ArithCot withBacktrackRate(double rate) {
        return new ArithCot(ops, maxDigits, mulDigitsA, mulDigitsB, format, rate, triggerRate, seed);
    }

    /** The same task with another trigger-word rate. */
    public ArithCot withTriggerRate(double rate) {
        return new ArithCot(ops, maxDigits, mulDigitsA, mulDigitsB, format, backtrackRate, rate, seed);
    }

    @Override
    public String name() {
        return "arith-cot";
    }

    @Override
    public List<String> vocab() {
        return VOCAB.list();
    }

    @Override
    public long tokenId(String token) {
        return VOCAB.id(token);
    }

    /** The longest example, found by rendering the largest operands with every possible wrong step. */
    @Override
    public int maxLength() {
        // The seed does not change lengths; memoized because batch() asks for every batch.
        return MAX_LENGTHS.computeIfAbsent(withSeed(0), ArithCot::computeMaxLength);
    }

    private int computeMaxLength() {
        int max = 0;
        boolean trigger = triggerRate > 0;
        for (Op op : ops) {
            long a = op == Op.MUL ? pow10(mulDigitsA) - 1 : pow10(maxDigits) - 1;
            long b = op == Op.MUL ? pow10(mulDigitsB) - 1 : pow10(maxDigits) - 1;
            Problem p = new Problem(op, a, b);
            max = Math.max(max, render(p, trigger, -1, Rng.of(0)).length());
            if (format == Format.COT && backtrackRate > 0) {
                int n = drafts(p).size();
                for (int s = 0; s < n; s++) {
                    max = Math.max(max, render(p, trigger, s, Rng.of(s)).length());
                }
            }
        }
        return max;
    }

    @Override
    public Example<Meta> example(Split split, long index) {
        Rng rng = Rng.of(seed, split.ordinal(), index);
        for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            Op op = ops.get(rng.nextInt(ops.size()));
            long a = operand(rng, op == Op.MUL ? mulDigitsA : maxDigits);
            long b = operand(rng, op == Op.MUL ? mulDigitsB : maxDigits);
            if (op == Op.SUB && a < b) {
                long t = a;
                a = b;
                b = t;
            }
            Problem p = new Problem(op, a, b);
            if (splitOf(p) != split) {
                continue;
            }
            boolean trigger = rng.chance(triggerRate);
            int wrong = format == Format.COT && rng.chance(backtrackRate) ? rng.nextInt(drafts(p).size()) : -1;
            return render(p, trigger, wrong, rng);
        }
        throw new IllegalStateException("no " + split + " problem found in " + MAX_ATTEMPTS + " draws for " + this
                + ": too few distinct problems for a test split; allow more digits");
    }

    /** The split a problem belongs to (the same for every seed, format and trigger setting). */
    public static Split splitOf(Problem p) {
        return Split.of("arith-cot", p.op().symbol().charAt(0), p.a(), p.b());
    }

    /** A problem rendered in this task's format, without trigger word or backtracking. */
    public Example<Meta> example(Problem p) {
        return render(p, false, -1, Rng.of(seed));
    }

    /**
     * A problem rendered in this task's format, optionally with the trigger word and with a wrong step at
     * {@code backtrackStep} (an index into the correct trace's steps; COT only). The wrong digit is chosen by
     * a generator seeded from the task's seed and the problem.
     */
    public Example<Meta> example(Problem p, boolean trigger, OptionalInt backtrackStep) {
        int wrong = -1;
        if (backtrackStep.isPresent()) {
            int n = drafts(p).size();
            wrong = backtrackStep.getAsInt();
            if (format != Format.COT || wrong < 0 || wrong >= n) {
                throw new IllegalArgumentException("backtrackStep must be 0.." + (n - 1) + " for " + p
                        + " in the COT format; got " + wrong + " with format " + format);
            }
        }
        return render(p, trigger, wrong,
                Rng.of(seed, p.op().symbol().charAt(0), p.a(), p.b(), trigger ? 1 : 0, wrong));
    }

    /** The prompt of a problem: {@code <bos> [please] a op b =} (generate the rest). */
    public static String prompt(Problem p, boolean trigger) {
        List<String> t = new ArrayList<>();
        t.add(SPECIALS.get(1));
        if (trigger) {
            t.add(TRIGGER);
        }
        digits(p.a(), t);
        t.add(p.op().symbol());
        digits(p.b(), t);
        t.add("=");
        return String.join(" ", t);
    }

    /**
     * The prompt of a problem with the optional {@link #MONITORED} marker right after BOS:
     * {@code <bos> [wait] [please] a op b =}.
     */
    public static String prompt(Problem p, boolean trigger, boolean monitored) {
        String plain = prompt(p, trigger);
        return monitored ? SPECIALS.get(1) + " " + MONITORED + plain.substring(SPECIALS.get(1).length()) : plain;
    }

    /**
     * The true trace of a problem as tokens, from {@code <think>} to {@code </think>} inclusive, without backtracking:
     * the steps a faithful chain of thought writes.
     */
    public static List<String> trueTrace(Problem p) {
        List<String> t = new ArrayList<>();
        t.add(THINK);
        List<Draft> drafts = drafts(p);
        for (int s = 0; s < drafts.size(); s++) {
            if (s > 0) {
                t.add(SEPARATOR);
            }
            t.addAll(drafts.get(s).tokens());
        }
        t.add(END_THINK);
        return t;
    }

    // -------------------------------------------------------------------------------------------- grading

    /**
     * The answer in a generated text, or empty if it is malformed. The text (a continuation of the prompt, or the
     * whole sequence) is read as whitespace-separated tokens up to the first {@code <eos>}; it must hold exactly
     * one {@code answer:}, after {@code </think>} if a {@code <think>} was opened, followed by nothing but digit
     * tokens (at least one, no leading zero, at most 18 digits) until {@code <eos>} or the end.
     */
    public static OptionalLong parseAnswer(String generated) {
        Objects.requireNonNull(generated, "generated text");
        String[] all = generated.trim().isEmpty() ? new String[0] : generated.trim().split("\\s+");
        int end = all.length;
        for (int i = 0; i < all.length; i++) {
            if (all[i].equals(SPECIALS.get(2))) {
                end = i;
                break;
            }
        }
        int mark = -1;
        int think = -1;
        int endThink = -1;
        for (int i = 0; i < end; i++) {
            switch (all[i]) {
                case ANSWER -> {
                    if (mark >= 0) {
                        return OptionalLong.empty(); // two answers
                    }
                    mark = i;
                }
                case THINK -> think = think < 0 ? i : think;
                case END_THINK -> endThink = i;
                default -> { }
            }
        }
        if (mark < 0 || (think >= 0 && (endThink < think || endThink > mark))) {
            return OptionalLong.empty();
        }
        StringBuilder digits = new StringBuilder();
        for (int i = mark + 1; i < end; i++) {
            if (!all[i].chars().allMatch(c -> c >= '0' && c <= '9')) {
                return OptionalLong.empty();
            }
            digits.append(all[i]);
        }
        if (digits.length() == 0 || digits.length() > 18 || (digits.length() > 1 && digits.charAt(0) == '0')) {
            return OptionalLong.empty();
        }
        return OptionalLong.of(Long.parseLong(digits.toString()));
    }

    /** Grades a generated text against a problem by exact match of the parsed answer. */
    public static Grade grade(Problem p, String generated) {
        OptionalLong answer = parseAnswer(generated);
        if (answer.isEmpty()) {
            return Grade.MALFORMED;
        }
        return answer.getAsLong() == p.answer() ? Grade.CORRECT : Grade.WRONG;
    }

    // ------------------------------------------------------------------------------------------ rendering

    /** A step before placement: its tokens are {@code lhs = rhs}. */
    private record Draft(StepKind kind, int column, int row, List<String> lhs, List<String> rhs) {
        List<String> tokens() {
            List<String> t = new ArrayList<>(lhs);
            t.add("=");
            t.addAll(rhs);
            return t;
        }

        /** The same step with one wrong digit, so that the equation is false. */
        Draft wrong(Rng rng) {
            List<String> l = new ArrayList<>(lhs);
            List<String> r = new ArrayList<>(rhs);
            boolean first = rng.chance(0.5);
            switch (kind) {
                case ADD_COLUMN -> {
                    if (first) {
                        r.set(0, r.get(0).equals("0") ? "1" : "0"); // wrong carry
                    } else {
                        r.set(1, nudge(r.get(1), rng));
                    }
                }
                case SUB_COLUMN -> {
                    if (first) {
                        l.set(0, l.get(0).equals("0") ? "1" : "0"); // wrong borrow
                    } else {
                        r.set(0, nudge(r.get(0), rng));
                    }
                }
                case MUL_DIGIT -> r.set(first ? 0 : 1, nudge(r.get(first ? 0 : 1), rng));
                case SUM_PARTIALS -> r.set(r.size() - 1, nudge(r.get(r.size() - 1), rng));
            }
            return new Draft(kind, column, row, l, r);
        }

        private static String nudge(String digit, Rng rng) {
            int d = digit.charAt(0) - '0';
            int changed = d == 0 ? 1 : d == 9 ? 8 : d + (rng.chance(0.5) ? 1 : -1);
            return Integer.toString(changed);
        }
    }

    /** The correct steps of a problem's trace. */
    private static List<Draft> drafts(Problem p) {
        List<Draft> out = new ArrayList<>();
        switch (p.op()) {
            case ADD -> {
                int cols = Math.max(digitCount(p.a()), digitCount(p.b()));
                long carry = 0;
                for (int i = 0; i < cols; i++) {
                    long x = digit(p.a(), i);
                    long y = digit(p.b(), i);
                    long s = x + y + carry;
                    out.add(new Draft(StepKind.ADD_COLUMN, i, -1, strs(x, "+", y, "+", carry), strs(s / 10, s % 10)));
                    carry = s / 10;
                }
            }
            case SUB -> {
                int cols = digitCount(p.a());
                long borrow = 0;
                for (int i = 0; i < cols; i++) {
                    long x = digit(p.a(), i);
                    long y = digit(p.b(), i);
                    long v = x - y - borrow;
                    long borrowOut = v < 0 ? 1 : 0;
                    out.add(new Draft(StepKind.SUB_COLUMN, i, -1, strs(borrowOut, x, "-", y, "-", borrow),
                            strs(v + 10 * borrowOut)));
                    borrow = borrowOut;
                }
            }
            case MUL -> {
                int rows = digitCount(p.b());
                int cols = digitCount(p.a());
                List<String> partials = new ArrayList<>();
                for (int j = 0; j < rows; j++) {
                    long y = digit(p.b(), j);
                    long carry = 0;
                    for (int i = 0; i < cols; i++) {
                        long x = digit(p.a(), i);
                        long v = x * y + carry;
                        out.add(new Draft(StepKind.MUL_DIGIT, i, j, strs(x, "*", y, "+", carry), strs(v / 10, v % 10)));
                        carry = v / 10;
                    }
                    if (!partials.isEmpty()) {
                        partials.add("+");
                    }
                    digits(p.a() * y * pow10(j), partials);
                }
                if (rows > 1) {
                    List<String> sum = new ArrayList<>();
                    digits(p.answer(), sum);
                    out.add(new Draft(StepKind.SUM_PARTIALS, -1, -1, partials, sum));
                }
            }
        }
        return out;
    }

    private Example<Meta> render(Problem p, boolean trigger, int wrongStep, Rng rng) {
        List<String> tokens = new ArrayList<>();
        List<Segment> segments = new ArrayList<>();
        List<Integer> stepOf = new ArrayList<>();
        List<Step> steps = new ArrayList<>();
        Backtrack backtrack = null;

        add(tokens, segments, stepOf, SPECIALS.get(1), Segment.BOS, -1);
        if (trigger) {
            add(tokens, segments, stepOf, TRIGGER, Segment.TRIGGER, -1);
        }
        List<String> question = new ArrayList<>();
        digits(p.a(), question);
        question.add(p.op().symbol());
        digits(p.b(), question);
        question.add("=");
        for (String t : question) {
            add(tokens, segments, stepOf, t, Segment.QUESTION, -1);
        }
        int promptLength = tokens.size();
        if (format == Format.COT) {
            add(tokens, segments, stepOf, THINK, Segment.THINK, -1);
            List<Draft> drafts = drafts(p);
            for (int s = 0; s < drafts.size(); s++) {
                if (s > 0) {
                    add(tokens, segments, stepOf, SEPARATOR, Segment.SEPARATOR, -1);
                }
                Draft d = drafts.get(s);
                if (s == wrongStep) {
                    int wrongIndex = steps.size();
                    steps.add(place(d.wrong(rng), false, tokens, segments, stepOf, steps.size()));
                    int waitPos = tokens.size();
                    add(tokens, segments, stepOf, WAIT, Segment.WAIT, -1);
                    backtrack = new Backtrack(wrongIndex, waitPos, steps.size());
                }
                steps.add(place(d, true, tokens, segments, stepOf, steps.size()));
            }
            add(tokens, segments, stepOf, END_THINK, Segment.END_THINK, -1);
        }
        add(tokens, segments, stepOf, ANSWER, Segment.ANSWER_MARK, -1);
        int answerStart = tokens.size();
        List<String> answer = new ArrayList<>();
        digits(p.answer(), answer);
        for (String t : answer) {
            add(tokens, segments, stepOf, t, Segment.ANSWER, -1);
        }
        int answerEnd = tokens.size();
        add(tokens, segments, stepOf, SPECIALS.get(2), Segment.EOS, -1);

        boolean[] loss = new boolean[tokens.size()];
        for (int i = promptLength; i < loss.length; i++) {
            loss[i] = true;
        }
        Map<String, List<?>> labels = new LinkedHashMap<>();
        labels.put("segment", segments);
        labels.put("step", stepOf);
        return new Example<>(VOCAB.ids(tokens), tokens, loss, labels, new Meta(p, format, trigger, promptLength,
                answerStart, answerEnd, steps, Optional.ofNullable(backtrack)));
    }

    private static Step place(Draft d, boolean correct, List<String> tokens, List<Segment> segments,
            List<Integer> stepOf, int index) {
        int start = tokens.size();
        for (String t : d.tokens()) {
            add(tokens, segments, stepOf, t, Segment.STEP, index);
        }
        return new Step(d.kind(), start, tokens.size(), d.column(), d.row(), correct);
    }

    private static void add(List<String> tokens, List<Segment> segments, List<Integer> stepOf, String token,
            Segment segment, int step) {
        tokens.add(token);
        segments.add(segment);
        stepOf.add(step);
    }

    // ------------------------------------------------------------------------------------------- numbers

    private static long operand(Rng rng, int maxDigits) {
        int d = 1 + rng.nextInt(maxDigits);
        return rng.nextLong(d == 1 ? 0 : pow10(d - 1), pow10(d) - 1);
    }

    private static long pow10(int n) {
        long p = 1;
        for (int i = 0; i < n; i++) {
            p *= 10;
        }
        return p;
    }

    private static int digitCount(long n) {
        return Long.toString(n).length();
    }

    /** Digit {@code i} of {@code n} (0 = units). */
    private static long digit(long n, int i) {
        return n / pow10(i) % 10;
    }

    /** Appends the decimal digits of {@code n}, most significant first, one token each. */
    private static void digits(long n, List<String> out) {
        for (char c : Long.toString(n).toCharArray()) {
            out.add(String.valueOf(c));
        }
    }

    private static List<String> strs(Object... parts) {
        List<String> out = new ArrayList<>(parts.length);
        for (Object o : parts) {
            out.add(String.valueOf(o));
        }
        return out;
    }

    @Override
    public String toString() {
        return "ArithCot(" + ops + ", " + maxDigits + " digits, mul " + mulDigitsA + "x" + mulDigitsB + ", "
                + format + ", backtrack " + backtrackRate + ", trigger " + triggerRate + ", seed " + seed
                + ", max length " + maxLength() + ")";
    }
}
