/**
 * Chains of thought as text: {@link dev.jlens.cot.Steps} splits a trace into steps (sentences and lines, as Thought
 * Anchors does, with character offsets that map to token ranges) and tags each with a documented rule
 * ({@link dev.jlens.cot.StepTag}: setup, computation, check, backtracking, answer); {@link dev.jlens.cot.Answers}
 * extracts the final answer in every common format ({@code </think> answer: N}, GSM8K's {@code #### N},
 * {@code \boxed{...}}, an MMLU letter, the zoo's {@code thinker} traces).
 */
package dev.jlens.cot;
