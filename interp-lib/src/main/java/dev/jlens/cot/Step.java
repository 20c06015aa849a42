package dev.jlens.cot;

/**
 * One step of a chain of thought: its text (trimmed) at characters {@code [start, end)} of the trace it came from,
 * its position in the trace and its tag.
 *
 * @param index position among the trace's steps, from 0
 * @param text  the step's text, {@code trace.substring(start, end)}
 * @param start first character in the trace
 * @param end   one past the last character
 * @param tag   what the step does, by {@link Steps#tag}
 */
public record Step(int index, String text, int start, int end, StepTag tag) {
    /** Validates the offsets. */
    public Step {
        if (start < 0 || end < start || text == null || text.length() != end - start) {
            throw new IllegalArgumentException("step " + index + ": [start, end) = [" + start + ", " + end
                    + ") must be a range of the text's length " + (text == null ? "null" : text.length()));
        }
    }

    @Override
    public String toString() {
        return index + " " + tag + " [" + start + ", " + end + ") " + text;
    }
}
