package dev.jlens.cot;

/** Where in a trace an {@link Answer} was found. */
public enum AnswerFormat {
    /** The zoo's {@code thinker}: {@code </think> answer: 9 3 6} (one token per digit). */
    THINKER("</think> answer: 9 3 6 (one token per digit)"),
    /** {@code answer: N} or {@code Answer: C}, after {@code </think>} when there is one. */
    ANSWER_COLON("answer: N / Answer: C"),
    /** GSM8K's {@code #### N}. */
    GSM8K("#### N (GSM8K)"),
    /** {@code \boxed{...}} (nested braces allowed), the last one. */
    BOXED("\\boxed{...}"),
    /** "The answer is (B)", "the correct option is C", "the final answer is 42". */
    ANSWER_IS("the answer is (B) / 42"),
    /** A reply that is a lone letter: {@code B}, {@code (B)}, {@code B.} */
    LONE_LETTER("a lone letter A-J");

    private final String example;

    AnswerFormat(String example) {
        this.example = example;
    }

    /** How the format looks, for messages. */
    public String example() {
        return example;
    }
}
