package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/**
 * The indices on constructed features whose answer is known: a circle (not separable, not a mixture), a product of
 * two independent 1-D features (separable), a mixture of two 1-D directions (a mixture).
 */
class ReducibilityTest {
    private static final int N = 20_000;

    /** Uniform angle on the unit circle, with a little radial noise; turned and shifted to show nothing depends on it. */
    static double[][] circle(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[][] out = new double[N][];
        for (int i = 0; i < N; i++) {
            double t = 2 * Math.PI * r.nextDouble(), rad = 1 + 0.02 * gauss(r);
            out[i] = new double[] {3 + rad * Math.cos(t), -1 + rad * Math.sin(t)};
        }
        return out;
    }

    /**
     * Two independent, non-Gaussian 1-D features (uniform and exponential) on orthogonal axes with different scales,
     * the plane turned by 30 degrees: separable at the angle that undoes the turn.
     */
    static double[][] product(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double c = Math.cos(Math.toRadians(30)), s = Math.sin(Math.toRadians(30));
        double[][] out = new double[N][];
        for (int i = 0; i < N; i++) {
            double a = 2 * (2 * r.nextDouble() - 1), b = -Math.log(1 - r.nextDouble()) - 1;
            out[i] = new double[] {c * a - s * b, s * a + c * b};
        }
        return out;
    }

    /** Half the points on one line through the origin, half on another at 70 degrees, each spread along its line. */
    static double[][] mixture(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[][] out = new double[N][];
        for (int i = 0; i < N; i++) {
            double along = gauss(r), noise = 0.005 * gauss(r);
            double theta = r.nextBoolean() ? 0 : Math.toRadians(70);
            double c = Math.cos(theta), s = Math.sin(theta);
            out[i] = new double[] {c * along - s * noise, s * along + c * noise};
        }
        return out;
    }

    static double gauss(SplittableRandom r) {
        return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
    }

    @Test
    void aCircleIsNeitherSeparableNorAMixture() {
        Reducibility.Separability s = Reducibility.separability(circle(1));
        Reducibility.Mixture m = Reducibility.mixture(circle(1));
        assertTrue(s.bits() > 1.0, "a circle's coordinates stay dependent at every rotation: " + s);
        // every rotation of a circle is the same circle: the profile is flat
        assertTrue(s.maxBits() - s.bits() < 0.1, s.toString());
        // the best hyperplane holds the arc near one end: about 0.21 of a uniform circle at eps = 0.1
        assertTrue(m.index() > 0.15 && m.index() < 0.3, m.toString());
    }

    @Test
    void independentFeaturesAreSeparableAtTheRotationThatUndoesTheTurn() {
        Reducibility.Separability s = Reducibility.separability(product(2));
        assertTrue(s.bits() < 0.1, "independent once turned back: " + s);
        assertTrue(s.maxBits() > 0.3, "at other rotations the coordinates mix: " + s);
        // the turn was 30 degrees; undoing it is a rotation by -30, i.e. 60 in the quarter-turn range
        double deg = Math.toDegrees(s.angle());
        assertTrue(Math.abs(deg - 60) < 3, "best rotation " + deg + " degrees");
        Reducibility.Mixture m = Reducibility.mixture(product(2));
        assertTrue(m.index() < 0.3, "a spread-out product is no mixture: " + m);
    }

    @Test
    void twoLinesAreAMixture() {
        Reducibility.Mixture m = Reducibility.mixture(mixture(3));
        assertTrue(m.index() > 0.45, "half the points lie on each line: " + m);
        // the best hyperplane is one of the lines: its normal is orthogonal to 0 or 70 degrees
        double normal = Math.toDegrees(Math.atan2(m.direction()[1], m.direction()[0]));
        double along = ((normal - 90) % 180 + 180) % 180;
        assertTrue(Math.abs(along) < 1 || Math.abs(along - 180) < 1 || Math.abs(along - 70) < 1,
                "the plane lies along a line at " + along + " degrees");
        assertTrue(m.index() > 2 * Reducibility.mixture(circle(1)).index());
    }

    @Test
    void theMixtureIndexWorksInMoreDimensions() {
        // 3-D: half the points in the plane z = 0.5, half spread in all three directions
        SplittableRandom r = new SplittableRandom(4);
        double[][] pts = new double[4000][];
        for (int i = 0; i < pts.length; i++) {
            boolean flat = i % 2 == 0;
            pts[i] = new double[] {gauss(r), gauss(r), flat ? 0.5 : gauss(r)};
        }
        Reducibility.Mixture m = Reducibility.mixture(pts, 0.1, 0);
        assertTrue(m.index() > 0.5, m.toString());
        assertEquals(1, Math.abs(m.direction()[2]), 0.05, "the normal is the z axis: " + m);
    }

    @Test
    void separabilityIsForPlanesAndRejectsBadInput() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Reducibility.separability(new double[][] {{1, 2, 3}, {4, 5, 6}}));
        assertTrue(e.getMessage().contains("Pca"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Reducibility.separability(new double[][] {{1, 1}, {1, 1}}));
        assertThrows(IllegalArgumentException.class, () -> Reducibility.mixture(new double[][] {{1}}, 0.1, 0));
    }
}
