package dev.jlens.geometry;

import java.util.Arrays;
import java.util.Locale;

/**
 * How a cycle of classes (days, months) sits in a plane: the angle of each class's mean point around the centre of
 * all of them, whether walking the classes in their own order goes once around in one direction, and how evenly
 * they are spaced. {@code CyclicOrder.of(means2)} with {@code means2[i]} the 2-D mean of class {@code i} (e.g. the
 * top-2 {@link Pca} coordinates of the residual stream at a weekday token, averaged per weekday).
 *
 * @param angles each class's angle around the centre, radians in {@code (-pi, pi]}
 * @param radii each class's distance from the centre
 * @param steps the signed angle from class {@code i} to class {@code i + 1} (the last to the first), in
 *     {@code (-pi, pi]}
 */
public record CyclicOrder(double[] angles, double[] radii, double[] steps) {

    /** Angles of {@code means [k][2]} (k >= 3) around their centroid. */
    public static CyclicOrder of(double[][] means) {
        int k = means.length;
        if (k < 3) throw new IllegalArgumentException("a cycle needs at least 3 classes, got " + k);
        double cx = 0, cy = 0;
        for (double[] m : means) {
            if (m.length != 2) throw new IllegalArgumentException("class means must be 2-D points, got " + m.length);
            cx += m[0] / k;
            cy += m[1] / k;
        }
        double[] angles = new double[k], radii = new double[k], steps = new double[k];
        for (int i = 0; i < k; i++) {
            angles[i] = Math.atan2(means[i][1] - cy, means[i][0] - cx);
            radii[i] = Math.hypot(means[i][0] - cx, means[i][1] - cy);
        }
        for (int i = 0; i < k; i++) steps[i] = wrap(angles[(i + 1) % k] - angles[i]);
        return new CyclicOrder(angles, radii, steps);
    }

    /** +1 if the classes go around counter-clockwise in their order, -1 if clockwise (by the sum of the steps). */
    public int orientation() {
        return Arrays.stream(steps).sum() >= 0 ? 1 : -1;
    }

    /**
     * True if walking the classes in order turns once around the centre, every step in the same direction: the
     * classes sorted by angle are in cyclic order.
     */
    public boolean inCyclicOrder() {
        int o = orientation();
        double total = 0;
        for (double s : steps) {
            if (s * o <= 0) return false;
            total += s;
        }
        return Math.abs(Math.abs(total) - 2 * Math.PI) < 1e-6;
    }

    /** The largest deviation of a step from an even {@code 2 pi / k}, as a fraction of {@code 2 pi / k}. */
    public double spacingError() {
        double even = 2 * Math.PI / steps.length, worst = 0;
        for (double s : steps) worst = Math.max(worst, Math.abs(s * orientation() - even) / even);
        return worst;
    }

    /** The smallest radius over the largest: 1 for a circle, near 0 if a class sits near the centre. */
    public double radiusRatio() {
        return Arrays.stream(radii).min().orElse(0) / Arrays.stream(radii).max().orElse(1);
    }

    /** The angle of one step around the cycle, signed by the orientation: {@code orientation() * 2 pi / k}. */
    public double step() {
        return orientation() * 2 * Math.PI / steps.length;
    }

    private static double wrap(double a) {
        while (a <= -Math.PI) a += 2 * Math.PI;
        while (a > Math.PI) a -= 2 * Math.PI;
        return a;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("CyclicOrder(");
        sb.append(inCyclicOrder() ? "in cyclic order" : "not in cyclic order");
        sb.append(orientation() > 0 ? ", counter-clockwise" : ", clockwise");
        sb.append(String.format(Locale.ROOT, ", spacing error %.3f, radius ratio %.3f, steps (deg)", spacingError(),
                radiusRatio()));
        for (double s : steps) sb.append(String.format(Locale.ROOT, " %.1f", Math.toDegrees(s)));
        return sb.append(')').toString();
    }
}
