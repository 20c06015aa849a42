package dev.jlens.geometry;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Planted Gaussian blobs: k-means++ and Lloyd find them. */
class KMeansTest {

    @Test
    void findsPlantedClusters() {
        SplittableRandom r = new SplittableRandom(5);
        int k = 5, d = 8, per = 200;
        double[][] centres = new double[k][d];
        for (double[] c : centres) for (int j = 0; j < d; j++) c[j] = 10 * (r.nextDouble() * 2 - 1);
        double[][] x = new double[k * per][];
        int[] truth = new int[k * per];
        for (int i = 0; i < x.length; i++) {
            truth[i] = i % k;
            x[i] = new double[d];
            for (int j = 0; j < d; j++) x[i][j] = centres[truth[i]][j] + 0.5 * dev.jlens.util.SplitMix.gaussian(r);
        }
        KMeans km = KMeans.fit(x, k, 0);
        System.out.println(km);
        assertTrue(km.converged());
        int[] a = km.assign(x);
        // one cluster per planted blob, and every point of a blob in its cluster
        Map<Integer, Integer> blobOf = new HashMap<>();
        for (int i = 0; i < x.length; i++) {
            Integer prev = blobOf.putIfAbsent(a[i], truth[i]);
            assertTrue(prev == null || prev == truth[i], "cluster " + a[i] + " holds two blobs");
        }
        assertEquals(k, blobOf.size());
        for (int m = 0; m < k; m++) {
            double[] planted = centres[blobOf.get(m)];
            for (int j = 0; j < d; j++) assertEquals(planted[j], km.centroids()[m][j], 0.15, "centroid " + m);
        }
        // inertia is about n d sigma^2
        assertEquals(x.length * d * 0.25, km.inertia(), 0.1 * x.length * d * 0.25);
    }

    @Test
    void moreClustersNeverRaiseInertiaMuchAndBadK() {
        SplittableRandom r = new SplittableRandom(2);
        double[][] x = new double[300][3];
        for (double[] row : x) for (int j = 0; j < 3; j++) row[j] = dev.jlens.util.SplitMix.gaussian(r);
        double i1 = KMeans.fit(x, 1, 0).inertia(), i8 = KMeans.fit(x, 8, 0).inertia();
        assertTrue(i8 < i1, i8 + " vs " + i1);
        // one cluster: the centroid is the mean, the inertia the total sum of squares
        double[] mean = Nmf.columnMeans(x);
        double ss = 0;
        for (double[] row : x) for (int j = 0; j < 3; j++) ss += (row[j] - mean[j]) * (row[j] - mean[j]);
        assertEquals(ss, i1, 1e-6 * ss);
        assertThrows(IllegalArgumentException.class, () -> KMeans.fit(x, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> KMeans.fit(x, 301, 0));
    }
}
