package dev.jlens.sae.eval;

import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.util.SplitMix;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reweighting leaves other rows alone; a planted frequent feature gets a latent, the same feature made rare does not. */
class ConceptFrequencyTest {

    @Test
    void reweightKeepsEveryOtherRowAndNestsTheKeptTargetRows() {
        SplittableRandom r = new SplittableRandom(3);
        boolean[] holds = new boolean[1000];
        int n = 0;
        for (int i = 0; i < holds.length; i++) if (holds[i] = r.nextDouble() < 0.2) n++;
        int others = holds.length - n;
        int[] prev = null;
        for (double f : new double[] {1, 0.5, 0.1, 0.01, 0}) {
            int[] idx = ConceptFrequency.reweight(holds, f, 7);
            int kept = 0, other = 0;
            boolean[] seen = new boolean[holds.length];
            for (int i : idx) {
                assertFalse(seen[i], "no row twice at f <= 1");
                seen[i] = true;
                if (holds[i]) kept++;
                else other++;
            }
            assertEquals(others, other, "rows not holding the target keep their count");
            for (int i = 0; i < holds.length; i++) if (!holds[i]) assertTrue(seen[i], "row " + i + " kept");
            assertEquals(Math.round(f * n), kept, "f " + f);
            for (int i = 1; i < idx.length; i++) assertTrue(idx[i] > idx[i - 1], "rows in order");
            if (prev != null) {
                // nested: the target rows kept at a smaller fraction are among those kept at the larger one
                int[] p = prev;
                for (int i : idx) assertTrue(Arrays.stream(p).anyMatch(x -> x == i), "nested at " + f);
            }
            prev = idx;
        }
        assertEquals(holds.length, ConceptFrequency.reweight(holds, 1, 7).length);
        // f > 1 repeats the target's rows: 2.5 -> every target row twice, half of them three times
        int[] up = ConceptFrequency.reweight(holds, 2.5, 7);
        int[] count = new int[holds.length];
        for (int i : up) count[i]++;
        int kept = 0, thrice = 0;
        for (int i = 0; i < holds.length; i++) {
            if (!holds[i]) assertEquals(1, count[i]);
            else {
                assertTrue(count[i] == 2 || count[i] == 3, "count " + count[i]);
                kept += count[i];
                if (count[i] == 3) thrice++;
            }
        }
        assertEquals(Math.round(2.5 * n), kept);
        assertEquals(Math.round(0.5 * n), thrice);
    }

    /**
     * Rows {@code [n][d]}: feature {@code f} along direction {@code dirs[f]} with magnitude 1..2 on a share {@code p[f]}
     * of rows, noise 0.01; concept {@code f=i} where feature i is on.
     */
    static float[][] planted(double[][] dirs, double[] p, int n, Map<String, boolean[]> concepts, SplittableRandom r) {
        int k = dirs.length, d = dirs[0].length;
        float[][] rows = new float[n][d];
        for (int f = 0; f < k; f++) concepts.put("f=" + f, new boolean[n]);
        for (int i = 0; i < n; i++) {
            for (int f = 0; f < k; f++) {
                if (r.nextDouble() >= p[f]) continue;
                double mag = 1 + r.nextDouble();
                for (int j = 0; j < d; j++) rows[i][j] += (float) (mag * dirs[f][j]);
                concepts.get("f=" + f)[i] = true;
            }
            for (int j = 0; j < d; j++) rows[i][j] += (float) (0.01 * SplitMix.gaussian(r));
        }
        return rows;
    }

    @Test
    void aPlantedFeatureLosesItsLatentWhenMadeRare() {
        long t0 = System.nanoTime();
        SplittableRandom r = new SplittableRandom(21);
        int k = 12, d = 16;
        double[][] dirs = ConceptLearningTest.orthonormal(k, d, r);
        double[] p = new double[k];
        Arrays.fill(p, 0.1);
        p[0] = 0.2;
        Map<String, boolean[]> trainC = new LinkedHashMap<>(), evalC = new LinkedHashMap<>();
        float[][] train = planted(dirs, p, 10000, trainC, r);
        float[][] eval = planted(dirs, p, 4000, evalC, r);
        List<Double> keep = List.of(1.0, 0.1, 0.01);
        ConceptFrequency.Result res = ConceptFrequency.sweep("planted", train, trainC, eval, evalC,
                List.of("f=0", "f=1"), keep, k, new SaeConfig.TopK(2),
                SaeTrainConfig.builder().steps(300).batchSize(256).lr(4e-3).seed(0).build());
        System.out.println(res.toTable().printAll());
        System.out.println(res);
        System.out.printf("%.1f s%n", (System.nanoTime() - t0) / 1e9);
        assertEquals(6, res.toTable().rowCount());
        assertEquals(2, res.chart().getSeriesMap().size());
        ConceptFrequency.Point full = res.point("f=0", 1.0), rare = res.point("f=0", 0.01);
        assertEquals(0.2, full.trainFrequency(), 0.02);
        assertTrue(rare.trainFrequency() < 0.003, "subsampled to ~0.2%: " + rare.trainFrequency());
        assertTrue(res.learned("f=0", 1.0), "frequent: learned " + full.f1());
        assertFalse(res.learned("f=0", 0.01), "rare: not learned " + rare.f1());
        // monotone direction: below its natural frequency the F1 is lower, and once unlearned it stays unlearned
        for (String t : List.of("f=0", "f=1")) {
            for (int i = 1; i < keep.size(); i++) {
                assertTrue(res.point(t, keep.get(i)).f1() < res.point(t, 1.0).f1(), t + " F1 at " + keep.get(i));
                if (!res.learned(t, keep.get(i - 1))) assertFalse(res.learned(t, keep.get(i)), t + " at " + keep.get(i));
            }
        }
        // reweighting f=0 leaves the other feature's rows, and its count, alone
        for (double f : keep) {
            ConceptFrequency.Point q = res.point("f=0", f);
            int others = 0;
            for (boolean b : trainC.get("f=0")) if (!b) others++;
            assertEquals(others, q.trainRows() - q.targetRows());
        }
        // f = 1 is one dictionary, shared by both targets
        assertEquals(res.point("f=0", 1.0).othersF1(), res.point("f=1", 1.0).f1(), 1e-12);
        assertTrue(res.withThreshold(0.01).learned("f=0", 1.0));
    }

    @Test
    void badArgumentsNameTheProblem() {
        float[][] rows = new float[10][4];
        Map<String, boolean[]> c = Map.of("a", new boolean[10]);
        SaeTrainConfig cfg = SaeTrainConfig.builder().steps(1).batchSize(4).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ConceptFrequency.sweep("h",
                rows, c, rows, c, List.of("b"), List.of(1.0), 8, new SaeConfig.TopK(2), cfg));
        assertTrue(e.getMessage().contains("'b'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ConceptFrequency.sweep("h", rows, c, rows, c,
                List.of("a"), List.of(-0.5), 8, new SaeConfig.TopK(2), cfg));
    }
}
