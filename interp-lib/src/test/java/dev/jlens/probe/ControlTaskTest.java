package dev.jlens.probe;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ControlTaskTest {

    @Test
    void controlLabelsAreConsistentPerTypeAndFollowTheTaskDistribution() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(9);
        int n = 20000, k = 3;
        int[] types = new int[n], labels = new int[n];
        for (int i = 0; i < n; i++) {
            types[i] = r.nextInt(4000);
            double u = r.nextDouble();
            labels[i] = u < 0.6 ? 0 : u < 0.9 ? 1 : 2;   // task distribution 0.6 / 0.3 / 0.1
        }
        int[] control = ControlTask.labels(types, labels, k, 1);
        Map<Integer, Integer> seen = new HashMap<>();
        for (int i = 0; i < n; i++) {
            Integer before = seen.putIfAbsent(types[i], control[i]);
            if (before != null) assertEquals(before, control[i], "type " + types[i] + " has two control labels");
        }
        int[] task = new int[k], ctl = new int[k];
        for (int i = 0; i < n; i++) {
            task[labels[i]]++;
            ctl[control[i]]++;
        }
        for (int c = 0; c < k; c++) {
            double a = task[c] / (double) n, b = ctl[c] / (double) n;
            System.out.printf("class %d: task %.3f control %.3f%n", c, a, b);
            assertEquals(a, b, 0.03, "class " + c);
        }
        assertArrayEquals(control, ControlTask.labels(types, labels, k, 1));   // deterministic in the seed
    }

    @Test
    void selectivityIsHighForAPropertyAndLowForMemorisedTypes() {
        // rows whose label is a function of their type only: the control task is as learnable as the task when the
        // type is visible in the activations (one-hot of 20 types), so selectivity is near 0
        int n = 2000, types = 20;
        java.util.SplittableRandom r = new java.util.SplittableRandom(4);
        float[][] x = new float[n][types];
        int[] y = new int[n], g = new int[n], t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(types);
            x[i][t[i]] = 1;
            y[i] = t[i] % 2;
            g[i] = i / 10;
        }
        ProbeReport rep = ProbeReport.evaluate(ProbeData.of(x, y, g).withTypes(t), ProbeMethod.logistic(), 5, 0);
        System.out.println("type-determined label: " + rep);
        assertTrue(rep.task().mean() > 0.99 && rep.control().orElseThrow().mean() > 0.99, rep.toString());
        assertTrue(Math.abs(rep.selectivity().orElseThrow()) < 0.02);
        // a planted direction with types unrelated to it: the control cannot be learned
        ProbeData planted = Planted.linear(LinearProbeTest.U, 2000, 3.0, 8);
        int[] tt = new int[planted.size()];
        for (int i = 0; i < tt.length; i++) tt[i] = r.nextInt(500);
        ProbeReport rep2 = ProbeReport.evaluate(planted.withTypes(tt), ProbeMethod.logistic(), 5, 0);
        System.out.println("planted direction, random types: " + rep2);
        assertTrue(rep2.selectivity().orElseThrow() > 0.3, rep2.toString());
    }
}
