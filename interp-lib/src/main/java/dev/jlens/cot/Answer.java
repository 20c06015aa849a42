package dev.jlens.cot;

import java.math.BigDecimal;
import java.util.Objects;

/**
 * The final answer of a trace: its value, normalised (a number without thousands separators, sign and trailing
 * zeros as in {@code -1234.5}; an upper-case letter; or the text of a {@code \boxed{}} that is neither), where it
 * was found and its characters {@code [start, end)} in the trace.
 *
 * @param value  the normalised answer
 * @param format where it was found
 * @param start  first character of the answer as written
 * @param end    one past its last character
 */
public record Answer(String value, AnswerFormat format, int start, int end) {
    /** Validates the record. */
    public Answer {
        Objects.requireNonNull(value, "value");
        Objects.requireNonNull(format, "format");
        if (start < 0 || end < start) {
            throw new IllegalArgumentException("answer offsets [" + start + ", " + end + ") are not a range");
        }
    }

    /** Whether the answer is a number. */
    public boolean isNumber() {
        return Answers.NUMBER_VALUE.matcher(value).matches();
    }

    /** Whether the answer is a single letter (a multiple-choice option). */
    public boolean isLetter() {
        return value.length() == 1 && Character.isUpperCase(value.charAt(0));
    }

    /** The answer as a number; throws naming the value when it is not one. */
    public BigDecimal number() {
        if (!isNumber()) {
            throw new IllegalStateException("the answer '" + value + "' (" + format + ") is not a number");
        }
        return new BigDecimal(value);
    }

    /** The answer as a whole number; throws when it is not one. */
    public long asLong() {
        try {
            return number().longValueExact();
        } catch (ArithmeticException e) {
            throw new IllegalStateException("the answer '" + value + "' is not a whole number that fits a long", e);
        }
    }

    /** The answer as a letter; throws when it is not one. */
    public char letter() {
        if (!isLetter()) {
            throw new IllegalStateException("the answer '" + value + "' (" + format + ") is not a letter");
        }
        return value.charAt(0);
    }

    @Override
    public String toString() {
        return value + " (" + format + " at [" + start + ", " + end + "))";
    }
}
