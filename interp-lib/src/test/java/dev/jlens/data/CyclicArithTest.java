package dev.jlens.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.CyclicArith.Cycle;
import dev.jlens.data.CyclicArith.Op;
import dev.jlens.data.CyclicArith.Problem;
import dev.jlens.data.CyclicArith.Role;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;

/** Cyclic arithmetic in words: the planted answers, the layout of an example, and the split by problem. */
class CyclicArithTest {

    private static final CyclicArith TASK = CyclicArith.defaults();

    @Test
    void answersWrapAroundTheWeekAndTheYear() {
        assertEquals("Tuesday plus 3 days is Friday", new Problem(Cycle.DAYS, 1, Op.PLUS, 3).toString());
        assertEquals("March plus 5 months is August", new Problem(Cycle.MONTHS, 2, Op.PLUS, 5).toString());
        assertEquals("Saturday plus 4 days is Wednesday", new Problem(Cycle.DAYS, 5, Op.PLUS, 4).toString());
        assertEquals("Monday minus 1 days is Sunday", new Problem(Cycle.DAYS, 0, Op.MINUS, 1).toString());
        assertEquals("March minus 5 months is October", new Problem(Cycle.MONTHS, 2, Op.MINUS, 5).toString());
        assertEquals("Friday plus 13 days is Thursday", new Problem(Cycle.DAYS, 4, Op.PLUS, 13).toString());
        assertEquals("January minus 13 months is December", new Problem(Cycle.MONTHS, 0, Op.MINUS, 13).toString());
        // plus 7 days (12 months) is the same day (month); plus then minus returns
        for (int d = 0; d < 7; d++) {
            assertEquals(d, new Problem(Cycle.DAYS, d, Op.PLUS, 7).answer());
            for (int n = 1; n <= 13; n++) {
                int there = new Problem(Cycle.DAYS, d, Op.PLUS, n).answer();
                assertEquals(d, new Problem(Cycle.DAYS, there, Op.MINUS, n).answer());
                assertEquals(Math.floorMod(there + 2, 7), new Problem(Cycle.DAYS, d, Op.PLUS, n).shifted(2).answer());
            }
        }
        assertEquals(3, new Problem(Cycle.MONTHS, 3, Op.PLUS, 12).answer());
        assertThrows(IllegalArgumentException.class, () -> new Problem(Cycle.DAYS, 7, Op.PLUS, 1));
        assertThrows(IllegalArgumentException.class, () -> new Problem(Cycle.DAYS, 0, Op.PLUS, 0));
        // nearness: cyclic distance at most 1, across the end of the week too
        assertEquals("Sunday near Monday is yes", new CyclicArith.Near(Cycle.DAYS, 6, 0).toString());
        assertEquals("Tuesday near Tuesday is yes", new CyclicArith.Near(Cycle.DAYS, 1, 1).toString());
        assertEquals("Tuesday near Friday is no", new CyclicArith.Near(Cycle.DAYS, 1, 4).toString());
        assertEquals("December near February is no", new CyclicArith.Near(Cycle.MONTHS, 11, 1).toString());
        assertEquals(2, new CyclicArith.Near(Cycle.MONTHS, 11, 1).distance());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Cycle.DAYS.indexOf("Funday"));
        assertTrue(e.getMessage().contains("Monday"), e.getMessage());
    }

    @Test
    void examplesLayOutTheQuestionAndMarkOnlyTheAnswerAsTarget() {
        for (Split split : Split.values()) {
            for (Example<CyclicArith.Meta> ex : TASK.examples(split, 0, 300)) {
                CyclicArith.Meta m = ex.meta();
                if (!m.isArithmetic()) {
                    CyclicArith.Near q = (CyclicArith.Near) m.question();
                    List<String> t = ex.tokens();
                    int s = m.startPosition();
                    assertEquals(List.of(q.cycle().names().get(q.a()), "near", q.cycle().names().get(q.b()), "is",
                            q.answer() ? "yes" : "no", "<eos>"), t.subList(s, t.size()));
                    assertEquals(s + 4, m.answerPosition());
                    assertEquals(split, CyclicArith.splitOf(q));
                    continue;
                }
                Problem p = m.problem();
                List<String> t = ex.tokens();
                int s = m.startPosition();
                assertEquals(p.startName(), t.get(s));
                assertEquals(List.of(p.op().word(), Integer.toString(p.offset()), p.cycle().unit(), "is"),
                        t.subList(s + 1, s + 5));
                assertEquals(s + 5, m.answerPosition());
                assertEquals(p.answerName(), t.get(m.answerPosition()));
                assertEquals("<eos>", t.get(t.size() - 1));
                assertEquals(ex.length(), m.answerPosition() + 2);
                assertTrue(s - 1 <= TASK.maxFiller() && ex.length() <= TASK.maxLength());
                for (int i = 1; i < s; i++) assertTrue(CyclicArith.FILLERS.contains(t.get(i)), t.get(i));
                for (int i = 0; i < ex.length(); i++) {
                    assertEquals(i >= m.answerPosition(), ex.lossMask()[i], ex.text() + " position " + i);
                }
                List<?> roles = ex.label("role");
                assertEquals(Role.START, roles.get(s));
                assertEquals(Role.ANSWER, roles.get(m.answerPosition()));
                assertEquals(split, CyclicArith.splitOf(p));
                // the text states a true equation: answer = start +- offset, mod the cycle's length
                int start = p.cycle().indexOf(t.get(s)), ans = p.cycle().indexOf(t.get(m.answerPosition()));
                int n = Integer.parseInt(t.get(s + 2));
                int sign = t.get(s + 1).equals("plus") ? 1 : -1;
                assertEquals(Math.floorMod(start + sign * n, p.cycle().length()), ans, ex.text());
            }
        }
    }

    @Test
    void everyProblemIsInExactlyOneSplitAndExamplesCoverBothCyclesAndAllFillerCounts() {
        for (Cycle c : Cycle.values()) {
            List<Problem> train = TASK.problems(c, Split.TRAIN), test = TASK.problems(c, Split.TEST);
            assertEquals(c.length() * 2 * TASK.maxOffset(), train.size() + test.size());
            Set<Problem> both = new HashSet<>(train);
            both.retainAll(test);
            assertTrue(both.isEmpty());
            assertFalse(test.isEmpty(), c + " has test problems");
        }
        int days = 0;
        Set<Integer> fillerCounts = new HashSet<>();
        Set<Problem> seen = new HashSet<>();
        int arithmetic = 0, near = 0, yes = 0;
        for (Example<CyclicArith.Meta> ex : TASK.examples(Split.TRAIN, 0, 10_000)) {
            if (!ex.meta().isArithmetic()) {
                near++;
                yes += ((CyclicArith.Near) ex.meta().question()).answer() ? 1 : 0;
                continue;
            }
            arithmetic++;
            days += ex.meta().problem().cycle() == Cycle.DAYS ? 1 : 0;
            fillerCounts.add(ex.meta().startPosition() - 1);
            seen.add(ex.meta().problem());
        }
        assertTrue(Math.abs(days / (double) arithmetic - 0.5) < 0.03, "days fraction " + days / (double) arithmetic);
        assertTrue(Math.abs(near / 10_000.0 - TASK.nearRate()) < 0.02, "nearness fraction " + near / 10_000.0);
        assertTrue(Math.abs(yes / (double) near - 0.5) < 0.04, "yes fraction " + yes / (double) near);
        assertEquals(Set.of(0, 1, 2, 3), fillerCounts);
        int trainProblems = TASK.problems(Cycle.DAYS, Split.TRAIN).size() + TASK.problems(Cycle.MONTHS, Split.TRAIN).size();
        assertEquals(trainProblems, seen.size(), "7500 arithmetic draws reach every training problem");
    }

    @Test
    void nameIdsFollowTheCycleAndSettingsAreChecked() {
        long[] ids = TASK.nameIds(Cycle.DAYS);
        assertEquals(7, ids.length);
        for (int d = 0; d < 7; d++) assertEquals(TASK.tokenId(Cycle.DAYS.names().get(d)), ids[d]);
        assertEquals(CyclicArith.defaults().vocab(), new CyclicArith(5, 0, 3).vocab(), "one vocabulary for all settings");
        assertThrows(IllegalArgumentException.class, () -> new CyclicArith(0, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new CyclicArith(31, 1, 0));
        assertThrows(IllegalArgumentException.class,
                () -> TASK.example(new Problem(Cycle.DAYS, 0, Op.PLUS, 20)));
        assertThrows(IllegalArgumentException.class,
                () -> TASK.example(new Problem(Cycle.DAYS, 0, Op.PLUS, 2), List.of("hello")));
    }
}
