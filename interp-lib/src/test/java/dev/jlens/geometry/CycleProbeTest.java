package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.CyclicArith;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The zoo's {@code cyclic-2l} holds the weekday as a circle: at the weekday token (the residual stream entering block
 * 0, where every later position reads it) the 7 class means in the top-2 principal plane go around in the order
 * Monday..Sunday, roughly evenly, and rotating the representation by k sevenths of a turn moves the answer by k days
 * far more often than chance or than one fixed translation in the same plane. The plus/minus token, a binary feature,
 * is the linear contrast: one added direction turns plus questions into minus questions.
 */
class CycleProbeTest {
    private static final String HOOK = "blocks.0.hook_resid_pre";
    private static final CyclicArith TASK = CyclicArith.defaults();
    private static HookedTransformer model;
    private static List<Example<CyclicArith.Meta>> days;
    private static CycleProbe probe;

    @BeforeAll
    static void load() {
        model = Zoo.load("cyclic-2l");
        days = prompts(CyclicArith.Cycle.DAYS);
        probe = CycleProbe.fit(model, days, HOOK);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** Every day question of both splits, after 0..3 filler words chosen by index. */
    static List<Example<CyclicArith.Meta>> prompts(CyclicArith.Cycle cycle) {
        List<Example<CyclicArith.Meta>> out = new ArrayList<>();
        int i = 0;
        for (Split split : Split.values()) {
            for (CyclicArith.Problem p : TASK.problems(cycle, split)) {
                List<String> filler = new ArrayList<>();
                for (int f = 0; f < i % 4; f++) filler.add(CyclicArith.FILLERS.get((i + f) % 4));
                out.add(TASK.example(p, filler));
                i++;
            }
        }
        return out;
    }

    @Test
    void weekdaysGoAroundTheTopPrincipalPlaneInOrderAndEvenly() {
        CyclicOrder order = probe.order();
        assertTrue(order.inCyclicOrder(), "class means sorted by angle are Monday..Sunday: " + probe);
        assertTrue(order.spacingError() < 0.75, "every step within 3/4 of an even step of 360/7 degrees: " + order);
        assertTrue(order.radiusRatio() > 0.5, "no weekday near the centre: " + order);
        // the points are a circle by the indices too: not separable into independent parts, not a mixture
        assertTrue(probe.separability().bits() > 1.0, probe.separability().toString());
        // 7 days x 4 positions give 28 distinct points here: the largest fraction near one line is one day's 4/28 or
        // so, a circle's value, not a mixture's
        assertTrue(probe.mixture().index() < 0.5, probe.mixture().toString());
        assertEquals(days.size(), probe.points().length);
    }

    @Test
    void rotatingTheWeekdayByKStepsMovesTheAnswerByKDays() {
        assertTrue(probe.rotationTest(model, TASK, days, 0) > 0.95, "the model answers the day questions");
        double rotated = 0, translated = 0;
        int aboveChance = 0;
        StringBuilder perK = new StringBuilder();
        for (int k = 1; k < 7; k++) {
            double f = probe.rotationTest(model, TASK, days, k);
            perK.append(String.format(java.util.Locale.ROOT, " k=%d: %.3f", k, f));
            aboveChance += f > 1.0 / 7 + 0.1 ? 1 : 0;
            rotated += f / 6;
            translated += probe.translationTest(model, TASK, days, k) / 6;
        }
        // the turns by 2..5 days move most answers; one day either way mostly leaves the answer where it was
        assertTrue(aboveChance >= 4, "answers moved by exactly k, chance 1/7:" + perK);
        assertTrue(rotated > 0.3, "rotations move " + rotated + " of answers by exactly k:" + perK);
        // one fixed vector in the plane cannot move every day by k: the circle is not a line
        assertTrue(translated < rotated - 0.2, "translation " + translated + " vs rotation " + rotated);
    }

    @Test
    void theOperationIsALinearFeatureOneDirectionFlipsIt() {
        double[][] op = CycleProbe.activations(model, days, HOOK, m -> m.startPosition() + 1);
        int d = op[0].length, np = 0, nm = 0;
        double[] delta = new double[d];
        for (int i = 0; i < days.size(); i++) {
            boolean plus = days.get(i).meta().problem().op() == CyclicArith.Op.PLUS;
            for (int j = 0; j < d; j++) delta[j] += plus ? -op[i][j] : op[i][j];
            if (plus) np++; else nm++;
        }
        assertEquals(np, nm);
        for (int j = 0; j < d; j++) delta[j] /= np;   // mean(minus) - mean(plus)
        List<Example<CyclicArith.Meta>> plus = days.stream()
                .filter(e -> e.meta().problem().op() == CyclicArith.Op.PLUS).toList();
        int[] got = CycleProbe.predict(model, TASK, plus, HOOK, chunk -> CycleProbe.shift(
                chunk.stream().mapToInt(e -> e.meta().startPosition() + 1).toArray(), delta));
        int flipped = 0;
        for (int i = 0; i < plus.size(); i++) {
            CyclicArith.Problem p = plus.get(i).meta().problem();
            flipped += got[i] == new CyclicArith.Problem(p.cycle(), p.start(), CyclicArith.Op.MINUS, p.offset()).answer()
                    ? 1 : 0;
        }
        assertTrue(flipped / (double) plus.size() > 0.8, "plus answered as minus: " + flipped + " of " + plus.size());
    }
}
