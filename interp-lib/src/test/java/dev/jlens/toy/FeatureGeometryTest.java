package dev.jlens.toy;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The paper's measures on matrices whose geometry is known by construction. */
class FeatureGeometryTest {
    private static final double TOL = 1e-12;

    private static void assertAll(double expected, double[] actual) {
        for (int i = 0; i < actual.length; i++) assertEquals(expected, actual[i], TOL, "feature " + i);
    }

    @Test
    void orthogonalUnitColumnsHaveADimensionEach() {
        double[][] w = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
        assertAll(1, FeatureGeometry.dimensionality(w));
        assertAll(0, FeatureGeometry.interference(w));
        assertAll(1, FeatureGeometry.norms(w));
        assertEquals(1, FeatureGeometry.dimensionsPerFeature(w), TOL);
    }

    @Test
    void orthogonalColumnsOfAnyNormStillHaveADimensionEach() {
        double[][] w = {{2, 0}, {0, 0.1}};
        assertAll(1, FeatureGeometry.dimensionality(w));
        assertAll(0, FeatureGeometry.interference(w));
        assertEquals(2 / (4 + 0.01), FeatureGeometry.dimensionsPerFeature(w), TOL);
    }

    @Test
    void anAntipodalPairSharesOneDimension() {
        double[][] w = {{1, -1}};
        assertAll(0.5, FeatureGeometry.dimensionality(w));
        assertAll(1, FeatureGeometry.interference(w));
        assertEquals(0.5, FeatureGeometry.dimensionsPerFeature(w), TOL);
        assertEquals(-1, FeatureGeometry.cosine(w, 0, 1), TOL);
    }

    @Test
    void aPentagonGivesEachFeatureTwoFifthsOfADimension() {
        double[][] w = new double[2][5];
        for (int i = 0; i < 5; i++) {
            w[0][i] = Math.cos(2 * Math.PI * i / 5);
            w[1][i] = Math.sin(2 * Math.PI * i / 5);
        }
        assertAll(0.4, FeatureGeometry.dimensionality(w));
        assertEquals(0.4, FeatureGeometry.dimensionsPerFeature(w), TOL);
        // sum over the other four of cos^2: 2 cos^2(72°) + 2 cos^2(144°) = 3/2
        assertAll(1.5, FeatureGeometry.interference(w));
    }

    @Test
    void aSkewedPairMatchesTheFormulaByHand() {
        double[][] w = {{1, 1}, {0, 1}};   // W_0 = (1, 0), W_1 = (1, 1)
        double[] inter = FeatureGeometry.interference(w), dim = FeatureGeometry.dimensionality(w);
        assertEquals(1, inter[0], TOL);          // (Ŵ_0 . W_1)^2 = 1
        assertEquals(0.5, inter[1], TOL);        // (Ŵ_1 . W_0)^2 = 1/2
        assertEquals(1 / (1 + 1.0), dim[0], TOL);
        assertEquals(2 / (0.5 + 2), dim[1], TOL);
        double[][] g = FeatureGeometry.gram(w);
        assertEquals(1, g[0][1], TOL);
        assertEquals(2, g[1][1], TOL);
    }

    @Test
    void aZeroColumnHasNoDimensionAndNoInterference() {
        double[][] w = {{1, 0}, {0, 0}};
        assertEquals(0, FeatureGeometry.dimensionality(w)[1]);
        assertEquals(0, FeatureGeometry.interference(w)[1]);
        assertEquals(1, FeatureGeometry.dimensionality(w)[0], TOL);
    }

    @Test
    void raggedOrEmptyMatricesAreRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FeatureGeometry.norms(new double[][] {{1, 2}, {3}}));
        assertTrue(e.getMessage().contains("ragged"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> FeatureGeometry.norms(new double[0][]));
        assertThrows(IllegalArgumentException.class, () -> FeatureGeometry.cosine(new double[][] {{1, 2}}, 0, 2));
    }
}
