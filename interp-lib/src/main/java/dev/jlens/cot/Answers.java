package dev.jlens.cot;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Extracts the final answer from a chain of thought, in every common format ({@link AnswerFormat}).
 *
 * <p>Where: after the last {@code </think>} when the trace has one, else anywhere. Which: the formats are tried in
 * the order {@code \boxed{}}, {@code #### N}, {@code answer: N} (the zoo's {@code thinker} digits joined), "the
 * answer is ...", a lone letter; within a format the last occurrence counts. Numbers are normalised:
 * {@code 1,234.50} → {@code 1234.5}, {@code $18.00} → {@code 18}, {@code −3} → {@code -3}.
 * {@link #extract} takes any answer, {@link #number} only numbers (GSM8K), {@link #letter} only a letter among
 * the choices (MMLU); each has a {@code require} variant that throws naming the formats tried.
 */
public final class Answers {
    private Answers() {}

    private static final String END_THINK = "</think>";
    static final Pattern NUMBER_VALUE = Pattern.compile("-?\\d+(\\.\\d+)?");
    private static final Pattern NUMBER = Pattern.compile("[-−+]?\\s?\\$?\\s?(\\d[\\d,]*(?:\\.\\d+)?|\\.\\d+)");
    private static final Pattern LETTER_AT_START = Pattern.compile("^\\s*[(\\[]?\\s*([A-J])\\s*[)\\]]?(?![A-Za-z0-9])");
    private static final Pattern ANSWER_COLON = Pattern.compile("(?i)\\banswer\\s*:");
    private static final Pattern THINKER_DIGITS = Pattern.compile("^ ?(\\d(?: \\d)*)(?= *(<eos>|\\n|$))");
    private static final Pattern GSM8K = Pattern.compile("####");
    private static final Pattern BOXED = Pattern.compile("\\\\(?:boxed|fbox)\\s*\\{");
    private static final Pattern ANSWER_IS = Pattern.compile(
            "(?i)\\b(?:answer|option|choice)\\s+(?:would be|should be|is)\\s*:?\\s*");
    private static final Pattern LONE_LETTER = Pattern.compile("^\\s*[(\\[]?([A-J])[)\\]]?\\.?\\s*$");
    private static final Pattern TEXT_WRAPPER = Pattern.compile("^\\\\(?:text|textbf|mathrm|mathbf)\\{(.*)\\}$");

    /** The answer of a trace in any format, or empty if it states none. */
    public static Optional<Answer> extract(String trace) {
        return candidates(trace).stream().findFirst();
    }

    /** The answer of a trace; throws naming the formats tried when it states none. */
    public static Answer require(String trace) {
        return extract(trace).orElseThrow(() -> noAnswer(trace, "an answer"));
    }

    /** The numeric answer of a trace (GSM8K-style), or empty. */
    public static Optional<Answer> number(String trace) {
        return candidates(trace).stream().filter(Answer::isNumber).findFirst();
    }

    /** The numeric answer of a trace; throws naming the formats tried when there is none. */
    public static Answer requireNumber(String trace) {
        return number(trace).orElseThrow(() -> noAnswer(trace, "a numeric answer"));
    }

    /** The multiple-choice answer of a trace among {@code choices} (e.g. {@code "ABCD"}), or empty. */
    public static Optional<Answer> letter(String trace, String choices) {
        Objects.requireNonNull(choices, "choices");
        return candidates(trace).stream().filter(a -> a.isLetter() && choices.indexOf(a.value().charAt(0)) >= 0)
                .findFirst();
    }

    /** The multiple-choice answer of a trace among {@code choices}; throws naming the formats tried. */
    public static Answer requireLetter(String trace, String choices) {
        return letter(trace, choices).orElseThrow(() -> noAnswer(trace, "a letter among " + choices));
    }

    private static IllegalArgumentException noAnswer(String trace, String what) {
        String tail = trace.length() <= 120 ? trace : "..." + trace.substring(trace.length() - 120);
        return new IllegalArgumentException("No " + what + " in the trace" + (trace.contains(END_THINK)
                ? " after </think>" : "") + ". Formats tried: " + Arrays.stream(AnswerFormat.values())
                .map(AnswerFormat::example).collect(Collectors.joining(", ")) + ". The trace "
                + (trace.length() <= 120 ? "is" : "ends") + ": '" + tail.replace("\n", "\\n") + "'");
    }

    /** Normalises a written number: {@code "1,234.50"} → {@code "1234.5"}; empty if it is not one. */
    public static Optional<String> normalizeNumber(String written) {
        Objects.requireNonNull(written, "written");
        String s = written.strip().replace('−', '-').replace("\\$", "").replace("$", "").replace("\\%", "")
                .replace("%", "").replace("\\,", "").replace("\\!", "").replaceAll("\\s+", "");
        while (s.endsWith(",") || s.endsWith(".")) {
            s = s.substring(0, s.length() - 1);
        }
        if (s.startsWith("+")) {
            s = s.substring(1);
        }
        if (!s.matches("-?(\\d[\\d,]*(\\.\\d+)?|\\.\\d+)")) {
            return Optional.empty();
        }
        BigDecimal d = new BigDecimal(s.replace(",", "")).stripTrailingZeros();
        String plain = d.toPlainString();
        return Optional.of(plain.equals("-0") ? "0" : plain);
    }

    // ----------------------------------------------------------------------------------------- candidates

    /** Every answer the trace states, best first: one per format (its last occurrence), formats in order. */
    static List<Answer> candidates(String trace) {
        Objects.requireNonNull(trace, "trace");
        int endThink = trace.lastIndexOf(END_THINK);
        int from = endThink < 0 ? 0 : endThink + END_THINK.length();
        String region = trace.substring(from);
        List<Answer> out = new ArrayList<>();
        boxed(region, from).ifPresent(out::add);
        last(region, GSM8K, Answers::firstNumber, AnswerFormat.GSM8K, from).ifPresent(out::add);
        answerColon(region, from).ifPresent(out::add);
        last(region, ANSWER_IS, Answers::letterOrNumber, AnswerFormat.ANSWER_IS, from).ifPresent(out::add);
        Matcher lone = LONE_LETTER.matcher(region);
        if (lone.matches()) {
            out.add(new Answer(lone.group(1), AnswerFormat.LONE_LETTER, from + lone.start(1), from + lone.end(1)));
        }
        return out;
    }

    /** A value found at [start, end) of the text after a marker. */
    private record Found(String value, int start, int end) {}

    @FunctionalInterface
    private interface Reader {
        Optional<Found> read(String rest);
    }

    /** The value after the last occurrence of {@code marker} that has one. */
    private static Optional<Answer> last(String region, Pattern marker, Reader reader, AnswerFormat format, int offset) {
        Matcher m = marker.matcher(region);
        List<int[]> ends = new ArrayList<>();
        while (m.find()) {
            ends.add(new int[] {m.start(), m.end()});
        }
        // the last occurrence that has a value counts
        for (int k = ends.size() - 1; k >= 0; k--) {
            int restStart = ends.get(k)[1];
            Optional<Found> f = reader.read(lineAfter(region, restStart));
            if (f.isPresent()) {
                return Optional.of(new Answer(f.get().value(), format, offset + restStart + f.get().start(),
                        offset + restStart + f.get().end()));
            }
        }
        return Optional.empty();
    }

    private static String lineAfter(String region, int from) {
        int nl = region.indexOf('\n', from);
        // a marker at the end of a line ("answer:\n42") reads the next line
        if (nl >= 0 && region.substring(from, nl).isBlank()) {
            int next = region.indexOf('\n', nl + 1);
            return region.substring(from, next < 0 ? region.length() : next);
        }
        return region.substring(from, nl < 0 ? region.length() : nl);
    }

    private static Optional<Found> firstNumber(String rest) {
        Matcher n = NUMBER.matcher(rest);
        if (!n.find()) {
            return Optional.empty();
        }
        return normalizeNumber(n.group()).map(v -> new Found(v, trimStart(rest, n.start(), n.end()),
                trimEnd(rest, n.start(), n.end())));
    }

    private static int trimStart(String s, int start, int end) {
        while (start < end && Character.isWhitespace(s.charAt(start))) {
            start++;
        }
        return start;
    }

    private static int trimEnd(String s, int start, int end) {
        while (end > start && (s.charAt(end - 1) == ',' || s.charAt(end - 1) == '.')) {
            end--;
        }
        return end;
    }

    private static Optional<Found> letterOrNumber(String rest) {
        Matcher l = LETTER_AT_START.matcher(rest);
        if (l.find()) {
            return Optional.of(new Found(l.group(1), l.start(1), l.end(1)));
        }
        Matcher n = NUMBER.matcher(rest);
        if (n.find() && rest.substring(0, n.start()).isBlank()) {
            return normalizeNumber(n.group()).map(v -> new Found(v, trimStart(rest, n.start(), n.end()),
                    trimEnd(rest, n.start(), n.end())));
        }
        String boxedRest = rest.strip();
        if (BOXED.matcher(boxedRest).lookingAt()) {
            return Optional.empty(); // "the answer is \boxed{..}": the boxed format reads it
        }
        return firstNumberOnly(rest);
    }

    /** A number in the rest of the line when it is the only one ("The answer is therefore 42."). */
    private static Optional<Found> firstNumberOnly(String rest) {
        Matcher n = NUMBER.matcher(rest);
        List<int[]> all = new ArrayList<>();
        while (n.find()) {
            all.add(new int[] {n.start(), n.end()});
        }
        if (all.size() != 1) {
            return Optional.empty();
        }
        int[] a = all.get(0);
        return normalizeNumber(rest.substring(a[0], a[1])).map(v -> new Found(v, trimStart(rest, a[0], a[1]),
                trimEnd(rest, a[0], a[1])));
    }

    /** {@code answer: N}, or the thinker's {@code answer: 9 3 6}, the last that has a value. */
    private static Optional<Answer> answerColon(String region, int offset) {
        Matcher m = ANSWER_COLON.matcher(region);
        List<Integer> ends = new ArrayList<>();
        while (m.find()) {
            ends.add(m.end());
        }
        for (int k = ends.size() - 1; k >= 0; k--) {
            int restStart = ends.get(k);
            String rest = lineAfter(region, restStart);
            Matcher digits = THINKER_DIGITS.matcher(rest);
            if (digits.find() && digits.group(1).length() > 1) { // at least two digit tokens: thinker's format
                String value = digits.group(1).replace(" ", "");
                return Optional.of(new Answer(normalizeNumber(value).orElse(value), AnswerFormat.THINKER,
                        offset + restStart + digits.start(1), offset + restStart + digits.end(1)));
            }
            Optional<Found> f = letterOrNumber(rest);
            if (f.isPresent()) {
                return Optional.of(new Answer(f.get().value(), AnswerFormat.ANSWER_COLON, offset + restStart
                        + f.get().start(), offset + restStart + f.get().end()));
            }
        }
        return Optional.empty();
    }

    /** The last {@code \boxed{...}} with balanced braces. */
    private static Optional<Answer> boxed(String region, int offset) {
        Matcher m = BOXED.matcher(region);
        List<Integer> opens = new ArrayList<>();
        while (m.find()) {
            opens.add(m.end());
        }
        for (int k = opens.size() - 1; k >= 0; k--) {
            int start = opens.get(k);
            int depth = 1;
            int i = start;
            while (i < region.length() && depth > 0) {
                char c = region.charAt(i);
                if (c == '\\' && i + 1 < region.length()) {
                    i += 2; // an escaped brace does not count
                    continue;
                }
                depth += c == '{' ? 1 : c == '}' ? -1 : 0;
                i++;
            }
            if (depth != 0) {
                continue; // unbalanced: try an earlier one
            }
            String content = region.substring(start, i - 1);
            String inner = content.strip();
            Matcher wrapper = TEXT_WRAPPER.matcher(inner);
            if (wrapper.matches()) {
                inner = wrapper.group(1).strip();
            }
            Optional<String> num = normalizeNumber(inner);
            Matcher letter = LONE_LETTER.matcher(inner);
            String value = num.orElse(letter.matches() ? letter.group(1) : inner);
            if (value.isEmpty()) {
                continue;
            }
            return Optional.of(new Answer(value, AnswerFormat.BOXED, offset + start, offset + i - 1));
        }
        return Optional.empty();
    }
}
