package dev.jlens.cot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;
import org.junit.jupiter.api.Test;

import java.util.Optional;
import java.util.OptionalInt;

class AnswersTest {

    private static Answer any(String trace) {
        return Answers.require(trace);
    }

    @Test
    void thinkAnswerFormat() {
        Answer a = any("<think> 7 + 9 = 16 </think> answer: 16");
        assertEquals("16", a.value());
        assertEquals(AnswerFormat.ANSWER_COLON, a.format());
        assertEquals(16, a.asLong());
        // the answer after </think> wins over answers inside the thinking
        assertEquals("5", any("<think>answer: 4? wait\n</think>\nanswer: 5").value());
        assertEquals("-12.5", any("Answer: -12.50").value());
    }

    @Test
    void thinkerTracesJoinTheirDigitTokens() {
        ArithCot.Problem p = new ArithCot.Problem(ArithCot.Op.MUL, 347, 89);
        Example<ArithCot.Meta> ex = ArithCot.defaults().example(p, false, OptionalInt.empty());
        String text = String.join(" ", ex.tokens());
        Answer a = any(text);
        assertEquals(AnswerFormat.THINKER, a.format());
        assertEquals(347L * 89, a.asLong());
        assertEquals(String.join(" ", ex.tokens().subList(ex.meta().answerStart(), ex.meta().answerEnd())),
                text.substring(a.start(), a.end()));
        // agrees with the task's own parser
        assertEquals(ArithCot.parseAnswer(text).getAsLong(), a.asLong());
        assertEquals("7", any("= <think> 3 + 4 + 0 = 0 7 </think> answer: 7 <eos>").value());
    }

    @Test
    void gsm8kHashes() {
        String sol = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72";
        Answer a = Answers.requireNumber(sol);
        assertEquals("72", a.value());
        assertEquals(AnswerFormat.GSM8K, a.format());
        assertEquals("72", sol.substring(a.start(), a.end()));
        assertEquals("1234", any("#### 1,234").value());
        assertEquals("-3", any("#### -3").value());
        assertEquals("0.5", any("#### 0.50").value());
        assertEquals("18", any("#### $18.00").value());
        assertEquals("-7", any("####  −7.").value());
    }

    @Test
    void boxedWithNestedBraces() {
        Answer a = any("So \\boxed{\\frac{1}{2}} is it; earlier I wrote \\boxed{3}.".replace("\\boxed{3}", "x"));
        assertEquals("\\frac{1}{2}", a.value());
        assertEquals(AnswerFormat.BOXED, a.format());
        assertEquals("42", any("first \\boxed{41}, finally \\boxed{ 42 }").value(), "the last box");
        assertEquals("1000", any("The answer is $\\boxed{1{,}000}$".replace("{,}", ",")).value());
        assertEquals("B", any("\\boxed{\\text{B}}").value());
        assertEquals("7", any("\\boxed{7} and an unclosed \\boxed{8").value(), "an unbalanced box is skipped");
        assertEquals("12", any("</think>\n\nThe total is $\\boxed{12}$ dollars.").value());
    }

    @Test
    void mmluLetters() {
        assertEquals("B", Answers.requireLetter("The answer is (B).", "ABCD").value());
        assertEquals(AnswerFormat.ANSWER_IS, Answers.requireLetter("The answer is (B).", "ABCD").format());
        assertEquals("C", Answers.requireLetter("Answer: C", "ABCD").value());
        assertEquals(AnswerFormat.LONE_LETTER, Answers.requireLetter(" D ", "ABCD").format());
        assertEquals("A", Answers.requireLetter("(A)", "ABCD").value());
        assertEquals("C", Answers.requireLetter("<think>A or C? The correct option is C</think>\nC.", "ABCD").value());
        assertEquals(Optional.empty(), Answers.letter("The answer is (E).", "ABCD"), "not among the choices");
        assertEquals('B', any("the answer is B because ...").letter());
    }

    @Test
    void answerIsWithANumber() {
        assertEquals("42", any("So the final answer is 42.").value());
        assertEquals("42", any("The answer is therefore 42.").value());
        assertEquals(Optional.empty(), Answers.extract("The answer is between 3 and 5."), "two numbers: ambiguous");
    }

    @Test
    void noAnswerIsEmptyAndRequireNamesTheFormatsTried() {
        String trace = "<think>I am not sure.</think> Let me think more.";
        assertEquals(Optional.empty(), Answers.extract(trace));
        assertEquals(Optional.empty(), Answers.number("answer: C"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Answers.require(trace));
        assertTrue(e.getMessage().contains("#### N (GSM8K)") && e.getMessage().contains("\\boxed{...}")
                && e.getMessage().contains("a lone letter") && e.getMessage().contains("after </think>")
                && e.getMessage().contains("Let me think more."), e.getMessage());
        IllegalArgumentException n = assertThrows(IllegalArgumentException.class, () -> Answers.requireNumber("answer:"));
        assertTrue(n.getMessage().startsWith("No a numeric answer") || n.getMessage().contains("numeric"), n.getMessage());
        assertThrows(IllegalStateException.class, () -> any("Answer: C").number());
        assertThrows(IllegalStateException.class, () -> any("#### 2.5").asLong());
    }

    @Test
    void normalizeNumber() {
        assertEquals(Optional.of("1234.5"), Answers.normalizeNumber("1,234.50"));
        assertEquals(Optional.of("0"), Answers.normalizeNumber("-0.0"));
        assertEquals(Optional.of("100"), Answers.normalizeNumber("1e2".replace("1e2", "100.")));
        assertEquals(Optional.of("0.25"), Answers.normalizeNumber(".25"));
        assertEquals(Optional.of("5"), Answers.normalizeNumber("+5"));
        assertEquals(Optional.empty(), Answers.normalizeNumber("five"));
    }
}
