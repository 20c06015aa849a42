package dev.jlens.probe;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GroupKFoldTest {

    @Test
    void noGroupIsOnBothSidesAndEveryRowIsTestedOnce() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        int[] groups = new int[1000];
        for (int i = 0; i < groups.length; i++) groups[i] = r.nextInt(37) * 3;   // 37 groups of uneven size
        List<GroupKFold.Fold> folds = GroupKFold.split(groups, 5, 42);
        int[] tested = new int[groups.length];
        for (GroupKFold.Fold f : folds) {
            Set<Integer> trainGroups = new HashSet<>();
            for (int i : f.train()) trainGroups.add(groups[i]);
            for (int i : f.test()) {
                assertTrue(!trainGroups.contains(groups[i]), "group " + groups[i] + " on both sides of fold " + f.index());
                tested[i]++;
            }
            assertEquals(groups.length, f.train().length + f.test().length);
            assertTrue(f.test().length > 150 && f.test().length < 250, f.toString());   // balanced: 200 +- 50
        }
        for (int t : tested) assertEquals(1, t);
        // deterministic in the seed
        assertEquals(List.of(folds.get(2).test().length),
                List.of(GroupKFold.split(groups, 5, 42).get(2).test().length));
        org.junit.jupiter.api.Assertions.assertArrayEquals(folds.get(0).test(), GroupKFold.split(groups, 5, 42).get(0).test());
    }

    @Test
    void fewerGroupsThanFoldsIsAnError() {
        LinearProbeTest.assertMessage(null, "fewer groups than folds: 3 distinct group(s) for 5 folds",
                () -> GroupKFold.split(new int[] {1, 1, 2, 2, 3, 3}, 5, 0));
        LinearProbeTest.assertMessage(null, "at least 2 folds", () -> GroupKFold.split(new int[] {1, 2}, 1, 0));
    }
}
