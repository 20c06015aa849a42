package dev.jlens.cot;

/**
 * What a step of a chain of thought does, as {@link Steps#tag} decides by rule (first match in this order:
 * backtracking, answer, check, computation; setup otherwise).
 */
public enum StepTag {
    /** Restates the problem, plans, or says anything that is none of the others (the fallback). */
    SETUP,
    /** Does arithmetic: an operator or {@code =} between numbers, or an arithmetic verb with a number. */
    COMPUTATION,
    /** Verifies a result without doubting it: "let me verify", "double-check", "plugging back in", "which matches". */
    CHECK,
    /**
     * Doubts or corrects an earlier step: starts with "wait", "hmm", "actually", "hold on", "oops", "no,", or says
     * "that's not right", "mistake", "let me re-check", "reconsider", "go back"; the zoo's {@code wait} correction.
     */
    BACKTRACKING,
    /** States the final answer: "answer:", "the answer is", {@code \boxed{}}, {@code ####}, or follows {@code </think>}. */
    ANSWER
}
