package dev.jlens.cot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.OptionalInt;
import java.util.stream.Collectors;

class StepsTest {

    private static List<String> texts(List<Step> steps) {
        return steps.stream().map(Step::text).collect(Collectors.toList());
    }

    private static List<StepTag> tags(List<Step> steps) {
        return steps.stream().map(Step::tag).collect(Collectors.toList());
    }

    @Test
    void splitsSentencesAndLinesKeepingOffsets() {
        String trace = "<｜User｜>What is 12 * 3?<｜Assistant｜><think>\nOkay, so I need 12 * 3. That is 36.\n"
                + "Wait, let me re-check: 12 * 3 = 36, e.g. 3 * 12 = 36 too. Let me verify by adding 12 + 12 + 12 = 36."
                + "\n\nYes!\n</think>\n\nThe answer is \\boxed{36}.<｜end▁of▁sentence｜>";
        List<Step> steps = Steps.split(trace);
        assertEquals(List.of("Okay, so I need 12 * 3.", "That is 36.", "Wait, let me re-check: 12 * 3 = 36, e.g. 3 * 12 = 36 too.",
                "Let me verify by adding 12 + 12 + 12 = 36.", "Yes!", "The answer is \\boxed{36}."), texts(steps));
        assertEquals(List.of(StepTag.COMPUTATION, StepTag.SETUP, StepTag.BACKTRACKING, StepTag.CHECK, StepTag.SETUP,
                StepTag.ANSWER), tags(steps));
        for (Step s : steps) {
            assertEquals(s.text(), trace.substring(s.start(), s.end()), "offsets of step " + s.index());
        }
        assertEquals(List.of(0, 1, 2, 3, 4, 5), steps.stream().map(Step::index).collect(Collectors.toList()));
    }

    @Test
    void decimalsAbbreviationsAndListNumbersDoNotEndASentence() {
        List<Step> steps = Steps.split("1. Add 2.5 and 3.5 to get 6.0. Then Dr. Smith checks it, i.e. once.\n2. Done...");
        assertEquals(List.of("1. Add 2.5 and 3.5 to get 6.0.", "Then Dr. Smith checks it, i.e. once.", "2. Done..."),
                texts(steps));
    }

    @Test
    void withoutThinkTheWholeTextIsSplitAndEmptyPiecesDropped() {
        assertEquals(List.of("Ab.", "B?"), texts(Steps.split("  Ab.  ...  \n\n B? ")));
        assertEquals(List.of(), Steps.split(""));
        assertEquals(List.of(), Steps.split("<think>\n</think>"));
        assertThrows(NullPointerException.class, () -> Steps.split(null));
    }

    @Test
    void aTraceThatStartsInsideTheThinking() {
        // R1's generation prompt ends with "<think>\n": the generated text has only </think>
        List<Step> steps = Steps.split("First, 2 + 3 = 5.\n</think>\n\n**5**");
        assertEquals(List.of("First, 2 + 3 = 5.", "**5**"), texts(steps));
        assertEquals(List.of(StepTag.COMPUTATION, StepTag.ANSWER), tags(steps));
    }

    @Test
    void taggingRules() {
        assertEquals(StepTag.BACKTRACKING, Steps.tag("Hmm, that's not right."));
        assertEquals(StepTag.BACKTRACKING, Steps.tag("Actually, the total is 40."));
        assertEquals(StepTag.BACKTRACKING, Steps.tag("Let me re-check the second step."));
        assertEquals(StepTag.BACKTRACKING, Steps.tag("But wait, I made a mistake."));
        assertEquals(StepTag.BACKTRACKING, Steps.tag("I think I miscalculated 7 * 8."));
        assertEquals(StepTag.CHECK, Steps.tag("Let me verify: 56 / 8 = 7, which matches."));
        assertEquals(StepTag.CHECK, Steps.tag("Plugging back in, both sides are equal."));
        assertEquals(StepTag.COMPUTATION, Steps.tag("48 / 2 = 24"));
        assertEquals(StepTag.COMPUTATION, Steps.tag("So she sold half as many, 24 clips, in May"));
        assertEquals(StepTag.ANSWER, Steps.tag("So the final answer is 72."));
        assertEquals(StepTag.ANSWER, Steps.tag("#### 72"));
        assertEquals(StepTag.ANSWER, Steps.tag("anything", true));
        assertEquals(StepTag.SETUP, Steps.tag("Natalia sold clips to her friends in April."));
        assertEquals(StepTag.SETUP, Steps.tag("We need the number of clips she sold in total."));
    }

    @Test
    void thinkerTracesGiveOneStepPerEquationAndMatchTheTasksTokenPositions() {
        ArithCot task = ArithCot.defaults();
        ArithCot.Problem p = new ArithCot.Problem(ArithCot.Op.ADD, 347, 589);
        Example<ArithCot.Meta> ex = task.example(p, false, OptionalInt.of(1)); // step 1 written wrong, then wait
        String text = String.join(" ", ex.tokens());
        List<Step> steps = Steps.split(text);
        List<ArithCot.Step> truth = ex.meta().steps();
        assertEquals(truth.size() + 1, steps.size(), text); // every equation, then the answer
        assertEquals(List.of(StepTag.COMPUTATION, StepTag.COMPUTATION, StepTag.BACKTRACKING, StepTag.COMPUTATION,
                StepTag.ANSWER), tags(steps), text);
        assertTrue(steps.get(2).text().startsWith("wait "), steps.get(2).text());
        assertEquals("answer: 9 3 6", steps.get(steps.size() - 1).text(), "no <eos> in the step");
        List<Steps.TokenRange> ranges = Steps.tokenRanges(steps, text, ex.tokens());
        int wait = ex.meta().backtrack().orElseThrow().waitPosition();
        for (int k = 0; k < truth.size(); k++) {
            ArithCot.Step t = truth.get(k);
            int start = t.start() - 1 == wait ? wait : t.start(); // the correction's step includes its "wait"
            assertEquals(new Steps.TokenRange(start, t.end()), ranges.get(k), "step " + k + " of " + text);
        }
        assertEquals(new Steps.TokenRange(ex.meta().answerStart() - 1, ex.meta().answerEnd()),
                ranges.get(truth.size()), "answer: and its digits");
    }

    @Test
    void tokenRangesOfSubwordPiecesAndSpecialTokens() {
        String text = "Hello world. Wait, no.";
        List<Step> steps = Steps.split(text);
        // GPT-2-style pieces with a leading BOS that is not in the text
        List<String> pieces = List.of("<|endoftext|>", "Hello", " world", ".", " Wait", ",", " no", ".");
        assertEquals(List.of(new Steps.TokenRange(1, 4), new Steps.TokenRange(4, 8)),
                Steps.tokenRanges(steps, text, pieces));
    }
}
