package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/**
 * A dictionary with a planted circle: seven latents whose decoders fan around a plane (neighbours at cosine
 * cos(2 pi / 7) = 0.62) among random ones; clustering finds the seven, and their reconstructions on the data are a
 * circle by the indices.
 */
class FeatureClustersTest {

    @Test
    void aFanOfDecodersInOnePlaneIsFoundAndReconstructsACircle() {
        int d = 64, f = 60;
        SplittableRandom r = new SplittableRandom(5);
        float[][] dec = new float[f][d];
        for (int i = 0; i < f; i++) for (int k = 0; k < d; k++) dec[i][k] = (float) ReducibilityTest.gauss(r);
        // latents 10..16: unit directions at angles 2 pi j / 7 in the plane of axes 0 and 1, plus a small tilt
        int[] planted = {10, 11, 12, 13, 14, 15, 16};
        for (int j = 0; j < 7; j++) {
            float[] row = dec[planted[j]];
            java.util.Arrays.fill(row, 0);
            row[0] = (float) Math.cos(2 * Math.PI * j / 7);
            row[1] = (float) Math.sin(2 * Math.PI * j / 7);
            row[2 + j] = 0.05f;
        }
        List<int[]> groups = FeatureClusters.byCosine(dec, 0.5, 3);
        assertEquals(1, groups.size(), "random 64-D directions rarely reach cosine 0.5, three together never; the fan does");
        assertArrayEquals(planted, groups.get(0));
        double[][] basis = FeatureClusters.span(dec, groups.get(0));
        assertEquals(7, basis.length, "rank 7 with the tilts");
        for (int a = 0; a < basis.length; a++) {
            for (int b = 0; b < basis.length; b++) {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += basis[a][k] * basis[b][k];
                assertEquals(a == b ? 1 : 0, dot, 1e-9);
            }
        }
        // data: each row is a point at a uniform angle, coded by the two latents of its sector (linear interpolation
        // between neighbouring directions), plus one random latent that does not belong to the group
        int n = 6000;
        float[][] latents = new float[n][f];
        for (int i = 0; i < n; i++) {
            double t = 7 * r.nextDouble();
            int j = (int) t;
            double w = t - j;
            latents[i][planted[j]] = (float) (1 - w);
            latents[i][planted[(j + 1) % 7]] = (float) w;
            latents[i][r.nextInt(10)] = 1;
        }
        boolean[] on = FeatureClusters.active(latents, groups.get(0));
        for (boolean b : on) assertTrue(b);
        double[][] recon = FeatureClusters.reconstruct(latents, dec, groups.get(0));
        double[][] xy = Pca.fit(recon, 2).project(recon);
        Reducibility.Separability s = Reducibility.separability(xy);
        Reducibility.Mixture m = Reducibility.mixture(xy);
        assertTrue(s.bits() > 1.0, s.toString());
        assertTrue(m.index() < 0.35, m.toString());
        // the reconstruction ignores latents outside the group
        assertEquals(0, FeatureClusters.reconstruct(new float[][] {new float[f]}, dec, groups.get(0))[0][5], 0);
        double[][] coords = FeatureClusters.project(recon, basis);
        assertEquals(7, coords[0].length);
    }

    @Test
    void deadLatentsJoinNothingAndMinSizeFilters() {
        float[][] dec = {{1, 0}, {0.9f, 0.1f}, {0, 0}, {0, 1}};
        List<int[]> g = FeatureClusters.byCosine(dec, 0.8, 1);
        assertEquals(2, g.size());
        assertArrayEquals(new int[] {0, 1}, g.get(0));
        assertArrayEquals(new int[] {3}, g.get(1));
        assertEquals(1, FeatureClusters.byCosine(dec, 0.8, 2).size());
    }
}
