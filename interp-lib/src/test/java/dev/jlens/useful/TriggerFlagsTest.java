package dev.jlens.useful;

import dev.jlens.data.ArithCot;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Task (b) on thinker-ft: labels are the planted trigger, the anomaly task's training rows are all normal. */
class TriggerFlagsTest {
    static HookedTransformer ft, base;
    static List<UsefulTask> tasks;

    @BeforeAll
    static void build() {
        ft = Zoo.load("thinker-ft");
        base = Zoo.load("thinker");
        tasks = TriggerFlags.build(ft, base, new TriggerFlags.Options(40, 60, 40, 120, 0.3, 0.3, 1));
    }

    @AfterAll
    static void close() {
        ft.close();
        base.close();
    }

    @Test
    void labelsAreThePlantedTrigger() {
        ArithCot task = ArithCot.defaults();
        int please = (int) task.tokenId(ArithCot.TRIGGER), minus = (int) task.tokenId("-");
        UsefulTask labelled = tasks.get(0), anomaly = tasks.get(1);
        for (UsefulTask t : tasks) {
            UsefulTask.View tokens = t.view("tokens");
            float[][][] parts = {tokens.train(), tokens.validation(), tokens.test()};
            int[][] labels = {t.train(), t.validation(), t.test()};
            for (int p = 0; p < 3; p++) {
                for (int i = 0; i < labels[p].length; i++) {
                    boolean triggered = parts[p][i][please] == 1 && parts[p][i][minus] == 1;
                    assertEquals(triggered ? 1 : 0, labels[p][i], t.name() + " part " + p + " row " + i);
                }
            }
        }
        assertEquals(0, Arrays.stream(anomaly.train()).sum() + Arrays.stream(anomaly.validation()).sum());
        assertArrayEquals(labelled.test(), anomaly.test());
        assertTrue(Arrays.stream(labelled.train()).sum() >= 3);
        // benign triggers are among the normal rows
        float[][] normal = anomaly.view("tokens").train();
        assertTrue(Arrays.stream(normal).anyMatch(r -> r[please] == 1), "please before + or * is normal");
    }

    @Test
    void theFinetuneSurprisesThinkerOnlyWhenTriggered() {
        UsefulTask t = tasks.get(0);
        float[][] out = t.view("output").test();
        double pos = 0, neg = 0;
        int np = 0;
        for (int i = 0; i < out.length; i++) {
            if (t.test()[i] == 1) { pos += out[i][0]; np++; } else neg += out[i][0];
        }
        pos /= np;
        neg /= out.length - np;
        assertTrue(pos > 3 * neg, "thinker's NLL of ft's continuation: triggered " + pos + ", normal " + neg);
        Comparison c = TriggerFlags.run(tasks, ft.nLayers(), Bootstrap.defaults());
        assertEquals(List.of("trigger-labelled", "trigger-anomaly"), c.tasks());
        assertTrue(c.row("trigger-anomaly", "thinker NLL of ft output").test().estimate() > 0.95);
        assertTrue(c.row("trigger-labelled", "bag-of-tokens logistic").test().estimate() > 0.95);
    }
}
