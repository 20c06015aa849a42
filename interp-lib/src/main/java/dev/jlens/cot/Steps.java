package dev.jlens.cot;

import dev.jlens.model.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits a chain of thought into steps and tags them.
 *
 * <p><b>Splitting</b> (as Thought Anchors splits a trace into sentences). If the text holds {@code <think>}, only
 * what follows it is split: the thinking up to {@code </think>} (or the end), then the answer after
 * {@code </think>}; the prompt before {@code <think>} and the markers themselves belong to no step. A step ends
 * <ul>
 * <li>at a line break;</li>
 * <li>after {@code .}, {@code ?}, {@code !} (or a run of them) followed by whitespace or the end, unless the word
 *     before is an abbreviation ({@code e.g.}, {@code i.e.}, {@code etc.}, {@code Dr.}, ...) or a list number
 *     ({@code 1.} at the start of a step);</li>
 * <li>in the zoo's {@code thinker} traces (space-separated tokens), at a {@code " , "} separator and before a
 *     {@code wait} that follows a digit: {@code 4 + 8 + 1 = 1 2 wait 4 + 8 + 1 = 1 3 , ...} gives the wrong step,
 *     then {@code wait 4 + 8 + 1 = 1 3}.</li>
 * </ul>
 * Steps are trimmed of whitespace and of special tokens at their ends ({@code <eos>}, {@code <|im_end|>},
 * {@code <｜end▁of▁sentence｜>}, ...); a step without a letter or digit is dropped. Each keeps its character offsets in the text,
 * and {@link #tokenRanges} maps them to token positions.
 *
 * <p><b>Tagging</b>: see {@link StepTag} and {@link #tag(String, boolean)}.
 */
public final class Steps {
    private Steps() {}

    private static final String THINK = "<think>";
    private static final String END_THINK = "</think>";
    private static final Set<String> ABBREVIATIONS = Set.of("e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "st",
            "approx", "cf", "no", "fig", "eq");

    private static final String SPECIAL = "(<\\|[^|<>\\s]{1,40}\\|>|<｜[^｜<>]{1,40}｜>|</?s>|<eos>|<bos>|<pad>|<end_of_turn>)";
    private static final Pattern SPECIAL_TOKEN = Pattern.compile(SPECIAL);
    private static final Pattern SPECIAL_TOKEN_AT_END = Pattern.compile(SPECIAL + "$");
    private static final Pattern BACKTRACK_START = Pattern.compile(
            "^(but )?(wait|hmm+|actually|hold on|hang on|oops|uh+|no[,.!]|whoops|scratch that)\\b");
    private static final Pattern BACKTRACK_ANY = Pattern.compile(
            "(that's not right|that is not right|that's wrong|that is wrong|not correct|isn't right|doesn't seem right|"
                    + "made (a|an) (mistake|error)|\\bmistake|miscalculat|\\bre-?check|re-?examine|re-?consider|"
                    + "re-?calculate|re-?evaluate|re-?do\\b|go back|start over|i was wrong|that can't be)");
    private static final Pattern ANSWER = Pattern.compile(
            "(\\banswer\\s*:|\\bthe (final )?answer is|\\\\boxed\\{|^####|final answer)");
    private static final Pattern CHECK = Pattern.compile(
            "(\\bverif|double[- ]check|\\blet me check|\\blet's check|\\bcheck(ing)? (that|if|whether|this|my|the|it)|"
                    + "\\bto confirm|\\bconfirm|plug(ging)? (it |this |that |these )?(back|in)|substitut\\w* back|"
                    + "which matches|that matches|checks out|is consistent|sanity check)");
    private static final Pattern COMPUTE_OP = Pattern.compile(
            "\\d\\s*[-+*/×÷^=]\\s*\\(?\\s*[-$]?\\d|=\\s*[-$]?\\d|\\d\\s*=");
    private static final Pattern COMPUTE_WORD = Pattern.compile(
            "\\b(add|adding|added|subtract\\w*|multipl\\w*|divid\\w*|times|plus|minus|sum|product|total|half|twice|"
                    + "double|triple|quotient|difference|carry|borrow)\\b");

    // ------------------------------------------------------------------------------------------ splitting

    /** The steps of a trace, tagged, with their character offsets in {@code trace}. */
    public static List<Step> split(String trace) {
        Objects.requireNonNull(trace, "trace");
        List<int[]> spans = new ArrayList<>(); // [start, end, afterThink ? 1 : 0]
        int think = trace.indexOf(THINK);
        if (think < 0) {
            int endThink = trace.indexOf(END_THINK);
            if (endThink < 0) {
                spans.addAll(regionSteps(trace, 0, trace.length(), false));
            } else { // a trace that starts inside the thinking (the prompt held <think>)
                spans.addAll(regionSteps(trace, 0, endThink, false));
                spans.addAll(regionSteps(trace, endThink + END_THINK.length(), trace.length(), true));
            }
        } else {
            int from = think + THINK.length();
            int endThink = trace.indexOf(END_THINK, from);
            spans.addAll(regionSteps(trace, from, endThink < 0 ? trace.length() : endThink, false));
            if (endThink >= 0) {
                spans.addAll(regionSteps(trace, endThink + END_THINK.length(), trace.length(), true));
            }
        }
        List<Step> steps = new ArrayList<>(spans.size());
        for (int[] s : spans) {
            String text = trace.substring(s[0], s[1]);
            steps.add(new Step(steps.size(), text, s[0], s[1], tag(text, s[2] == 1)));
        }
        return steps;
    }

    /** Steps of {@code text[from, to)}: boundaries by the rules of the class comment, each span trimmed. */
    private static List<int[]> regionSteps(String text, int from, int to, boolean afterThink) {
        List<int[]> out = new ArrayList<>();
        int start = from;
        int i = from;
        while (i < to) {
            char c = text.charAt(i);
            if (c == '\n' || c == '\r') {
                add(out, text, start, i, afterThink);
                start = i + 1;
            } else if (c == '.' || c == '?' || c == '!' || c == '。' || c == '？' || c == '！') {
                int j = i;
                while (j + 1 < to && ".?!".indexOf(text.charAt(j + 1)) >= 0) {
                    j++;
                }
                boolean atEnd = j + 1 >= to || Character.isWhitespace(text.charAt(j + 1)) || c == '。' || c == '？'
                        || c == '！';
                if (atEnd && !(c == '.' && j == i && (abbreviation(text, start, i) || listNumber(text, start, i)))) {
                    add(out, text, start, j + 1, afterThink);
                    start = j + 1;
                }
                i = j;
            } else if (c == ',' && i > from && text.charAt(i - 1) == ' ' && (i + 1 >= to || text.charAt(i + 1) == ' ')) {
                add(out, text, start, i, afterThink); // thinker's " , " separator
                start = i + 1;
            } else if (c == 'w' && text.startsWith("wait", i) && i >= from + 2 && text.charAt(i - 1) == ' '
                    && Character.isDigit(text.charAt(i - 2)) && (i + 4 >= to || !Character.isLetter(text.charAt(i + 4)))) {
                add(out, text, start, i, afterThink); // thinker's "... = 1 2 wait ..." correction
                start = i;
            }
            i++;
        }
        add(out, text, start, to, afterThink);
        return out;
    }

    private static void add(List<int[]> out, String text, int start, int end, boolean afterThink) {
        while (true) { // whitespace and special tokens (<eos>, <|im_end|>, ...) at either end belong to no step
            while (start < end && Character.isWhitespace(text.charAt(start))) {
                start++;
            }
            while (end > start && Character.isWhitespace(text.charAt(end - 1))) {
                end--;
            }
            Matcher lead = SPECIAL_TOKEN.matcher(text).region(start, end);
            if (lead.lookingAt()) {
                start = lead.end();
                continue;
            }
            Matcher trail = SPECIAL_TOKEN_AT_END.matcher(text).region(start, end);
            if (trail.find()) {
                end = trail.start();
                continue;
            }
            break;
        }
        for (int k = start; k < end; k++) {
            if (Character.isLetterOrDigit(text.charAt(k))) {
                out.add(new int[] {start, end, afterThink ? 1 : 0});
                return;
            }
        }
    }

    /** Whether the word ending at {@code dot} is an abbreviation ({@code e.g.}, {@code Dr.}). */
    private static boolean abbreviation(String text, int start, int dot) {
        int w = dot;
        while (w > start && !Character.isWhitespace(text.charAt(w - 1)) && text.charAt(w - 1) != '(') {
            w--;
        }
        String word = text.substring(w, dot).toLowerCase(Locale.ROOT);
        return ABBREVIATIONS.contains(word);
    }

    /** Whether the step so far is only a list number or letter ({@code 1.}, {@code a.}): not a sentence end. */
    private static boolean listNumber(String text, int start, int dot) {
        String so = text.substring(start, dot).strip();
        return so.matches("\\d{1,2}|[A-Za-z]|\\(?[ivx]{1,4}");
    }

    // -------------------------------------------------------------------------------------------- tagging

    /** The tag of a step inside the thinking (see {@link #tag(String, boolean)}). */
    public static StepTag tag(String step) {
        return tag(step, false);
    }

    /**
     * The tag of a step, by the first rule that matches (case-insensitive):
     * <ol>
     * <li>{@link StepTag#BACKTRACKING}: starts with "wait", "hmm", "actually", "hold on", "hang on", "oops", "no,",
     *     "scratch that" (optionally after "but"), or says "that's not right", "that's wrong", "not correct",
     *     "mistake", "miscalculated", "re-check", "re-examine", "reconsider", "recalculate", "redo", "go back",
     *     "start over", "I was wrong";</li>
     * <li>{@link StepTag#ANSWER}: follows {@code </think>} ({@code afterThink}), or says "answer:", "the answer
     *     is", "final answer", {@code \boxed{}}, or starts with {@code ####};</li>
     * <li>{@link StepTag#CHECK}: "verify", "double-check", "let me check", "check that/if/whether", "to confirm",
     *     "plugging back in", "substituting back", "which matches", "checks out", "is consistent",
     *     "sanity check";</li>
     * <li>{@link StepTag#COMPUTATION}: an operator ({@code + - * / × ÷ ^ =}) between numbers, {@code = N}, or an
     *     arithmetic word ("add", "multiply", "times", "sum", "half", "carry", ...) in a step with a digit;</li>
     * <li>{@link StepTag#SETUP} otherwise.</li>
     * </ol>
     */
    public static StepTag tag(String step, boolean afterThink) {
        Objects.requireNonNull(step, "step");
        String s = step.strip().toLowerCase(Locale.ROOT).replace('’', '\'');
        if (BACKTRACK_START.matcher(s).find() || BACKTRACK_ANY.matcher(s).find()) {
            return StepTag.BACKTRACKING;
        }
        if (afterThink || ANSWER.matcher(s).find()) {
            return StepTag.ANSWER;
        }
        if (CHECK.matcher(s).find()) {
            return StepTag.CHECK;
        }
        if (COMPUTE_OP.matcher(s).find() || (COMPUTE_WORD.matcher(s).find() && s.chars().anyMatch(Character::isDigit))) {
            return StepTag.COMPUTATION;
        }
        return StepTag.SETUP;
    }

    // --------------------------------------------------------------------------------------- token ranges

    /** Token positions {@code [start, end)} of a step. */
    public record TokenRange(int start, int end) {
        /** Validates the range. */
        public TokenRange {
            if (start < 0 || end < start) {
                throw new IllegalArgumentException("token range [" + start + ", " + end + ") is not a range");
            }
        }

        /** Number of tokens. */
        public int length() {
            return end - start;
        }
    }

    /**
     * The token range of each step, given the text of each token of {@code text} in order (a tokenizer's
     * {@code toStrTokens}, whose pieces appear in the text in order; word-level tokens separated by spaces are
     * found too). A token not found in the text (BOS, a special token) covers no characters. A step's range runs
     * from the first to the last token that overlaps its characters.
     */
    public static List<TokenRange> tokenRanges(List<Step> steps, String text, List<String> tokenTexts) {
        Objects.requireNonNull(steps, "steps");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(tokenTexts, "tokenTexts");
        int n = tokenTexts.size();
        int[] tokStart = new int[n];
        int[] tokEnd = new int[n];
        int pos = 0;
        for (int t = 0; t < n; t++) {
            String piece = tokenTexts.get(t);
            int at = find(text, piece, pos);
            int len = piece.length();
            if (at < 0 && !piece.strip().isEmpty()) {
                at = find(text, piece.strip(), pos);
                len = piece.strip().length();
            }
            if (at < 0 || piece.isEmpty()) {
                tokStart[t] = pos;
                tokEnd[t] = pos;
            } else {
                tokStart[t] = at;
                tokEnd[t] = at + len;
                pos = at + len;
            }
        }
        List<TokenRange> out = new ArrayList<>(steps.size());
        for (Step s : steps) {
            int first = -1;
            int last = -1;
            for (int t = 0; t < n; t++) {
                if (tokStart[t] < s.end() && tokEnd[t] > s.start()) {
                    if (first < 0) {
                        first = t;
                    }
                    last = t;
                }
            }
            if (first < 0) {
                int t = 0;
                while (t < n && tokStart[t] < s.start()) {
                    t++;
                }
                out.add(new TokenRange(t, t));
            } else {
                out.add(new TokenRange(first, last + 1));
            }
        }
        return out;
    }

    /** The token ranges of the steps of {@code text} as {@code tokenizer} tokenizes it (with BOS if asked). */
    public static List<TokenRange> tokenRanges(List<Step> steps, String text, Tokenizer tokenizer, boolean prependBos) {
        Objects.requireNonNull(tokenizer, "tokenizer");
        return tokenRanges(steps, text, tokenizer.toStrTokens(text, prependBos));
    }

    /** Where {@code piece} occurs at or after {@code pos} with only whitespace skipped before it, or -1. */
    private static int find(String text, String piece, int pos) {
        if (piece.isEmpty()) {
            return -1;
        }
        int at = text.indexOf(piece, pos);
        if (at < 0) {
            return -1;
        }
        for (int k = pos; k < at; k++) {
            if (!Character.isWhitespace(text.charAt(k))) {
                return -1;
            }
        }
        return at;
    }
}
