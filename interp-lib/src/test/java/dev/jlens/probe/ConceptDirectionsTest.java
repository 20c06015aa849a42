package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.util.SplitMix;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Concept directions on synthetic activations whose true direction {@code u} is planted: class 1 sits at {@code +u},
 * class 0 at {@code -u}.
 */
class ConceptDirectionsTest {
    static final int D = 32;

    /**
     * Rows {@code x = s u + N(0, sigma^2) u + nuisance (c s + N(0, nuisanceSd^2)) v + N(0, 0.1^2) elsewhere}, with
     * {@code s = +-1} the label's sign and {@code v} orthogonal to {@code u}.
     */
    static ProbeData rows(float[] u, float[] v, int n, double sigma, double c, double nuisanceSd, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[][] x = new float[n][D];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = r.nextInt(2);
            double s = y[i] == 1 ? 1 : -1;
            double along = s + sigma * SplitMix.gaussian(r);
            double nuis = c * s + nuisanceSd * SplitMix.gaussian(r);
            for (int j = 0; j < D; j++) {
                x[i][j] = (float) (along * u[j] + nuis * v[j] + 0.1 * SplitMix.gaussian(r));
            }
        }
        return ProbeData.ungrouped(x, y);
    }

    /** {@code b} with its component along {@code a} removed, unit length. */
    static float[] orthogonal(float[] a, float[] b) {
        double dot = 0;
        for (int j = 0; j < a.length; j++) dot += a[j] * b[j];
        float[] out = new float[a.length];
        for (int j = 0; j < a.length; j++) out[j] = (float) (b[j] - dot * a[j]);
        return LinearProbe.unit(out);
    }

    @Test
    void atLowNoiseTheProbeTheMeansAndTheMatchingLatentAllRecoverThePlantedDirection() {
        float[] u = Planted.unit(D, 1);
        float[] v = orthogonal(u, Planted.unit(D, 2));
        ProbeData data = rows(u, v, 2000, 0.3, 0, 0.3, 3);
        // a dictionary of 16 latents: latent 5 writes u (plus a little noise), the others random directions; each
        // latent fires where x . row > 0.5
        float[][] dec = new float[16][];
        for (int m = 0; m < 16; m++) dec[m] = Planted.unit(D, 100 + m);
        float[] noisy = Planted.unit(D, 99);
        for (int j = 0; j < D; j++) noisy[j] = u[j] + 0.2f * noisy[j];
        dec[5] = LinearProbe.unit(noisy);
        float[] acts = new float[data.size() * 16];
        boolean[] concept = new boolean[data.size()];
        for (int i = 0; i < data.size(); i++) {
            concept[i] = data.labels()[i] == 1;
            for (int m = 0; m < 16; m++) {
                double dot = 0;
                for (int j = 0; j < D; j++) dot += data.x()[i][j] * dec[m][j];
                acts[i * 16 + m] = (float) Math.max(0, dot - 0.5);
            }
        }
        ConceptDirections dirs;
        try (NDManager nd = NDManager.newBaseManager()) {
            NDArray a = nd.create(acts, new Shape(data.size(), 16));
            float[] flat = new float[16 * D];
            for (int m = 0; m < 16; m++) System.arraycopy(dec[m], 0, flat, m * D, D);
            NDArray w = nd.create(flat, new Shape(16, D));
            dirs = ConceptDirections.of("planted", data).withBestLatent(a, w, concept).withRandom(7);
        }
        Table t = dirs.cosineTable();
        System.out.println(t.printAll());
        for (String m : new String[] {ConceptDirections.PROBE, ConceptDirections.DIFF_MEANS, ConceptDirections.SAE}) {
            double cos = dirs.cosineWith(m, u);
            System.out.printf("%s . planted u = %.4f%n", m, cos);
            assertTrue(cos > 0.9, m + " recovers u: " + cos);
        }
        assertTrue(Math.abs(dirs.cosineWith(ConceptDirections.RANDOM, u)) < 0.6, "a random direction is not u");
        // the library's default probe standardises each column, which weighs its L2 penalty by axis: u is dense, so
        // the direction bends (measured 0.78 here); that is why ConceptDirections fits on centred raw columns
        double standardised = dev.jlens.util.Vectors.cosine(ProbeMethod.logistic().fit(data).direction(), u);
        System.out.printf("standardised logistic probe . planted u = %.4f%n", standardised);
        assertTrue(standardised < dirs.cosineWith(ConceptDirections.PROBE, u) - 0.05, "standardised " + standardised);
        assertEquals(1.0, t.doubleColumn(ConceptDirections.PROBE).get(0), 1e-3);
        assertEquals(4, t.rowCount());
        assertEquals(dirs.cosine(ConceptDirections.PROBE, ConceptDirections.SAE),
                dirs.cosine(ConceptDirections.SAE, ConceptDirections.PROBE), 1e-12);
    }

    @Test
    void aCorrelatedNuisanceBendsTheDifferenceOfMeansButNotTheProbe() {
        float[] u = Planted.unit(D, 11);
        float[] v = orthogonal(u, Planted.unit(D, 12));
        // the nuisance's mean moves with the label as much as u's does, but it is spread 6 times wider
        ProbeData data = rows(u, v, 4000, 0.5, 1.0, 3.0, 13);
        ConceptDirections dirs = ConceptDirections.of("planted with nuisance", data);
        System.out.println(dirs.cosineTable().printAll());
        double probe = dirs.cosineWith(ConceptDirections.PROBE, u);
        double means = dirs.cosineWith(ConceptDirections.DIFF_MEANS, u);
        double meansNuisance = dirs.cosineWith(ConceptDirections.DIFF_MEANS, v);
        System.out.printf("probe . u %.4f, means . u %.4f, means . v %.4f, probe . means %.4f%n", probe, means,
                meansNuisance, dirs.cosine(ConceptDirections.PROBE, ConceptDirections.DIFF_MEANS));
        // the mean difference is 2u + 2v: cosine 1/sqrt(2) with each
        assertEquals(Math.sqrt(0.5), means, 0.05);
        assertEquals(Math.sqrt(0.5), meansNuisance, 0.05);
        // the probe weighs v by its within-class variance (9 against 0.25 along u): almost all u
        assertTrue(probe > 0.95, "probe . u " + probe);
        assertTrue(dirs.cosine(ConceptDirections.PROBE, ConceptDirections.DIFF_MEANS) < 0.8, dirs.toString());
    }

    @Test
    void widthsAndMissingDirectionsAreReported() {
        ProbeData data = rows(Planted.unit(D, 1), orthogonal(Planted.unit(D, 1), Planted.unit(D, 2)), 200, 0.3, 0,
                0.3, 3);
        ConceptDirections dirs = ConceptDirections.of("c", data);
        assertThrows(IllegalArgumentException.class, () -> dirs.with("short", new float[3]));
        assertThrows(IllegalArgumentException.class, () -> dirs.direction("nope"));
        assertThrows(IllegalStateException.class, () -> dirs.effect(ConceptDirections.PROBE));
        assertEquals(1.0, dirs.vector(ConceptDirections.PROBE, "h", 1).norm(), 1e-5);
        assertEquals(4.0, dirs.vector(ConceptDirections.PROBE, "h", 4).norm(), 1e-4);
    }
}
