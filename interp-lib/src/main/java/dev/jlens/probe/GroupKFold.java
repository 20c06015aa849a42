package dev.jlens.probe;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Grouped k-fold splits: every group's rows fall in one test fold, so no group (sequence, document, prompt) is on
 * both sides of a split. Groups are shuffled with the seed, then placed largest first into the fold with the fewest
 * rows so far (scikit-learn's {@code GroupKFold} balancing, with a seeded order among equal sizes).
 */
public final class GroupKFold {
    private GroupKFold() {}

    /** One split: row indices to train on and to test on (each sorted). */
    public record Fold(int index, int[] train, int[] test) {
        @Override
        public String toString() {
            return "Fold(" + index + ", train " + train.length + ", test " + test.length + ")";
        }
    }

    /** {@code k} folds over rows with the given groups; fewer distinct groups than folds throws. */
    public static List<Fold> split(int[] groups, int k, long seed) {
        if (groups == null || groups.length == 0) throw new IllegalArgumentException("groups must not be empty");
        if (k < 2) throw new IllegalArgumentException("cross-validation needs at least 2 folds, got " + k);
        Map<Integer, List<Integer>> rowsOf = new LinkedHashMap<>();
        for (int i = 0; i < groups.length; i++) rowsOf.computeIfAbsent(groups[i], g -> new ArrayList<>()).add(i);
        if (rowsOf.size() < k) {
            throw new IllegalArgumentException("fewer groups than folds: " + rowsOf.size() + " distinct group(s) for "
                    + k + " folds; use at most " + rowsOf.size() + " folds or more groups (e.g. one per sequence)");
        }
        Integer[] order = rowsOf.keySet().stream().sorted().toArray(Integer[]::new);
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = order.length - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            Integer t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        // stable sort: equal sizes keep the shuffled order
        Arrays.sort(order, Comparator.comparingInt((Integer g) -> rowsOf.get(g).size()).reversed());
        int[] load = new int[k];
        int[] foldOf = new int[groups.length];
        for (Integer g : order) {
            int best = 0;
            for (int f = 1; f < k; f++) if (load[f] < load[best]) best = f;
            for (int row : rowsOf.get(g)) foldOf[row] = best;
            load[best] += rowsOf.get(g).size();
        }
        List<Fold> folds = new ArrayList<>(k);
        for (int f = 0; f < k; f++) {
            int[] test = new int[load[f]], train = new int[groups.length - load[f]];
            int a = 0, b = 0;
            for (int i = 0; i < groups.length; i++) {
                if (foldOf[i] == f) test[a++] = i;
                else train[b++] = i;
            }
            folds.add(new Fold(f, train, test));
        }
        return folds;
    }
}
