package dev.jlens.geometry;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Is a multi-dimensional feature reducible to lower-dimensional ones? The two tests of Engels et al. 2024 ("Not All
 * Language Model Features Are Linear", section 3), on a sample of the feature's values {@code f [n][d]}:
 *
 * <ul>
 * <li><b>Separability index</b> {@link #separability}: {@code S(f) = min over rotations R of I(a; b)}, where
 *     {@code (a, b) = R f} and {@code I} is mutual information. A feature that is a product of two independent 1-D
 *     features has {@code S} near 0 (the rotation that lines the plane up with them makes the two coordinates
 *     independent); a circle has a large {@code S} (knowing one coordinate pins the other to two values) for every
 *     rotation. Defined here, as in the paper, for 2-D features (project onto a plane first, e.g. with
 *     {@link Pca}). <em>Estimator</em>: the points are centred and scaled to unit root-mean-square per coordinate;
 *     for each of {@code angles} rotations in {@code [0, pi/2)} (a quarter turn suffices: rotating by a further
 *     quarter turn only swaps and negates the coordinates, which leaves {@code I} unchanged on a grid symmetric about
 *     0) the joint distribution is histogrammed on a {@code bins x bins} grid over {@code [-bound, bound]^2} (points
 *     outside go to the edge bins) and {@code I} is the plug-in estimate {@code sum p_ab log2(p_ab / (p_a p_b))}, in
 *     bits. The paper's settings are the defaults: 40 bins over [-3, 3], a fine angle grid. The plug-in estimate is
 *     biased upwards by about {@code (bins - 1)^2 / (2 n ln 2)} bits for independent coordinates (0.05 bits at 40 bins
 *     and 20,000 points): compare features at equal {@code n}.</li>
 * <li><b>ε-mixture index</b> {@link #mixture}: {@code M_eps(f) = max over v, c of P(|v.f + c| <= eps * rms(v.f + c))},
 *     the largest fraction of points within {@code eps} (relative to the root-mean-square distance of all points) of
 *     one hyperplane {@code v.f + c = 0}. A mixture of lower-dimensional features (points that lie on one line or
 *     another) has a large {@code M} (each component's points sit on its own hyperplane); a circle or a product of
 *     spread-out independent features has a small one. The paper uses {@code eps = 0.1} and finds {@code v, c} by
 *     gradient ascent on a sigmoid-smoothed count; <em>here</em> the search is exhaustive over a fine grid of
 *     directions in 2-D (720 in {@code [0, pi)}) and over random directions refined by hill climbing in more
 *     dimensions, and for each direction over every hyperplane position centred on a point (the count for a
 *     position comes from the sorted projections by binary search), so the index is the exact maximum over that
 *     search, not a smoothed one.</li>
 * </ul>
 * A feature is irreducible (truly multi-dimensional) when it is neither separable (high {@code S}) nor a mixture
 * (low {@code M}): the paper's circles of days and months.
 */
public final class Reducibility {

    /** The paper's ε for the mixture index. */
    public static final double EPSILON = 0.1;
    /** Histogram bins per axis for the separability index. */
    public static final int BINS = 40;
    /** Half-width of the histogram, in units of the points' per-coordinate root-mean-square. */
    public static final double BOUND = 3;
    /** Rotations tried in a quarter turn. */
    public static final int ANGLES = 250;

    private Reducibility() {}

    /**
     * The separability index of a 2-D feature and where it was found.
     *
     * @param bits {@code S(f)}: the least mutual information over rotations, in bits
     * @param angle the rotation (radians, in {@code [0, pi/2)}) that reached it
     * @param profile the mutual information at each rotation tried, {@code profile[i]} at {@code i * (pi/2) / length}
     */
    public record Separability(double bits, double angle, double[] profile) {
        /** The largest mutual information over rotations (for a separable feature, far above {@link #bits()}). */
        public double maxBits() {
            return Arrays.stream(profile).max().orElse(Double.NaN);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "S(f) = %.4f bits at %.1f deg (max over rotations %.4f)", bits,
                    Math.toDegrees(angle), maxBits());
        }
    }

    /**
     * The ε-mixture index of a feature and the hyperplane that reached it.
     *
     * @param index {@code M_eps(f)}: the fraction of points within {@code epsilon * rms} of the hyperplane
     * @param direction the hyperplane's unit normal {@code v} {@code [d]}
     * @param offset the hyperplane's position along {@code v}: the plane is {@code v.f = offset}
     * @param epsilon the ε used
     */
    public record Mixture(double index, double[] direction, double offset, double epsilon) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "M_%.2f(f) = %.4f (normal %s, offset %.4f)", epsilon, index,
                    Arrays.toString(Arrays.stream(direction).map(x -> Math.round(x * 1000) / 1000.0).toArray()), offset);
        }
    }

    /** {@link #separability(double[][], int, double, int)} with the paper's settings. */
    public static Separability separability(double[][] points) {
        return separability(points, BINS, BOUND, ANGLES);
    }

    /**
     * The separability index of a 2-D feature {@code points [n][2]}: the least plug-in mutual information (bits)
     * between the two coordinates over {@code angles} rotations, after centring and scaling (see the class comment).
     */
    public static Separability separability(double[][] points, int bins, double bound, int angles) {
        int n = points.length;
        if (n < 2) throw new IllegalArgumentException("the separability index needs at least 2 points, got " + n);
        for (double[] p : points) {
            if (p.length != 2) {
                throw new IllegalArgumentException("the separability index is defined for 2-D features; got a point with "
                        + p.length + " coordinates (project onto a plane first, e.g. Pca.fit(points, 2).project(points))");
            }
        }
        if (bins < 2 || !(bound > 0) || angles < 1) {
            throw new IllegalArgumentException("need bins >= 2, bound > 0 and angles >= 1; got " + bins + ", " + bound
                    + ", " + angles);
        }
        double mx = 0, my = 0;
        for (double[] p : points) {
            mx += p[0] / n;
            my += p[1] / n;
        }
        double ss = 0;
        for (double[] p : points) ss += (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
        double scale = Math.sqrt(ss / (2.0 * n));
        if (!(scale > 0)) throw new IllegalArgumentException("all points coincide: no feature to measure");
        double[] xs = new double[n], ys = new double[n];
        for (int i = 0; i < n; i++) {
            xs[i] = (points[i][0] - mx) / scale;
            ys[i] = (points[i][1] - my) / scale;
        }
        double[] profile = new double[angles];
        int best = 0;
        int[] joint = new int[bins * bins];
        int[] ma = new int[bins], mb = new int[bins];
        for (int t = 0; t < angles; t++) {
            double theta = t * (Math.PI / 2) / angles, c = Math.cos(theta), s = Math.sin(theta);
            Arrays.fill(joint, 0);
            Arrays.fill(ma, 0);
            Arrays.fill(mb, 0);
            for (int i = 0; i < n; i++) {
                int a = bin(c * xs[i] - s * ys[i], bins, bound), b = bin(s * xs[i] + c * ys[i], bins, bound);
                joint[a * bins + b]++;
                ma[a]++;
                mb[b]++;
            }
            double mi = 0;
            for (int a = 0; a < bins; a++) {
                if (ma[a] == 0) continue;
                for (int b = 0; b < bins; b++) {
                    int nab = joint[a * bins + b];
                    if (nab == 0) continue;
                    mi += nab * Math.log((double) nab * n / ((double) ma[a] * mb[b]));
                }
            }
            profile[t] = Math.max(0, mi / n / Math.log(2));
            if (profile[t] < profile[best]) best = t;
        }
        return new Separability(profile[best], best * (Math.PI / 2) / angles, profile);
    }

    private static int bin(double x, int bins, double bound) {
        int b = (int) Math.floor((x + bound) / (2 * bound) * bins);
        return Math.min(bins - 1, Math.max(0, b));
    }

    /** {@link #mixture(double[][], double, long)} with the paper's ε = 0.1 and seed 0. */
    public static Mixture mixture(double[][] points) {
        return mixture(points, EPSILON, 0);
    }

    /**
     * The ε-mixture index of a feature {@code points [n][d]} ({@code d >= 1}): the largest fraction of points within
     * {@code epsilon} times the root-mean-square distance of all points from one hyperplane. {@code seed} drives the
     * random directions tried when {@code d > 2}.
     */
    public static Mixture mixture(double[][] points, double epsilon, long seed) {
        int n = points.length;
        if (n < 2) throw new IllegalArgumentException("the mixture index needs at least 2 points, got " + n);
        int d = points[0].length;
        for (double[] p : points) {
            if (p.length != d) throw new IllegalArgumentException("points have " + p.length + " and " + d + " coordinates");
        }
        if (!(epsilon > 0)) throw new IllegalArgumentException("epsilon must be positive, got " + epsilon);
        Search s = new Search(points, epsilon);
        if (d == 1) {
            s.tryDirection(new double[] {1});
        } else if (d == 2) {
            int grid = 720;
            for (int t = 0; t < grid; t++) {
                double theta = t * Math.PI / grid;
                s.tryDirection(new double[] {Math.cos(theta), Math.sin(theta)});
            }
            // refine around the best angle
            double theta0 = Math.atan2(s.bestDir[1], s.bestDir[0]), step = Math.PI / grid;
            for (int t = -20; t <= 20; t++) {
                double theta = theta0 + t * step / 20;
                s.tryDirection(new double[] {Math.cos(theta), Math.sin(theta)});
            }
        } else {
            SplittableRandom rnd = new SplittableRandom(seed);
            for (int j = 0; j < d; j++) {
                double[] e = new double[d];
                e[j] = 1;
                s.tryDirection(e);
            }
            for (int t = 0; t < 200 * d; t++) s.tryDirection(randomUnit(rnd, d));
            double step = 0.3;
            for (int t = 0; t < 60 * d; t++) {
                double[] v = s.bestDir.clone(), r = randomUnit(rnd, d);
                for (int j = 0; j < d; j++) v[j] += step * r[j];
                if (!s.tryDirection(normalize(v)) && t % d == d - 1) step *= 0.85;
            }
        }
        return new Mixture(s.bestFraction, s.bestDir, s.bestOffset, epsilon);
    }

    /** The best hyperplane found so far, and how to score a direction. */
    private static final class Search {
        final double[][] points;
        final double epsilon;
        final double[] proj;
        double bestFraction = -1, bestOffset;
        double[] bestDir;

        Search(double[][] points, double epsilon) {
            this.points = points;
            this.epsilon = epsilon;
            this.proj = new double[points.length];
        }

        /** Scores unit direction {@code v}; true if it beat the best so far. */
        boolean tryDirection(double[] v) {
            int n = points.length;
            double mean = 0;
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int j = 0; j < v.length; j++) s += points[i][j] * v[j];
                proj[i] = s;
                mean += s / n;
            }
            double var = 0;
            for (int i = 0; i < n; i++) var += (proj[i] - mean) * (proj[i] - mean) / n;
            double[] sorted = proj.clone();
            Arrays.sort(sorted);
            int stride = Math.max(1, n / 4000);
            int bestCount = -1;
            double bestAt = 0;
            for (int i = 0; i < n; i += stride) {
                double at = sorted[i];
                double half = epsilon * Math.sqrt(var + (mean - at) * (mean - at));
                int count = upper(sorted, at + half) - lower(sorted, at - half);
                if (count > bestCount) {
                    bestCount = count;
                    bestAt = at;
                }
            }
            double fraction = bestCount / (double) n;
            if (fraction > bestFraction) {
                bestFraction = fraction;
                bestDir = v.clone();
                bestOffset = bestAt;
                return true;
            }
            return false;
        }

        /** First index with a value >= x. */
        private static int lower(double[] a, double x) {
            int lo = 0, hi = a.length;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (a[mid] < x) lo = mid + 1; else hi = mid;
            }
            return lo;
        }

        /** First index with a value > x. */
        private static int upper(double[] a, double x) {
            int lo = 0, hi = a.length;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (a[mid] <= x) lo = mid + 1; else hi = mid;
            }
            return lo;
        }
    }

    private static double[] randomUnit(SplittableRandom rnd, int d) {
        double[] v = new double[d];
        for (int j = 0; j < d; j++) {
            // Box-Muller: a Gaussian vector has a uniform direction
            double u1 = 1 - rnd.nextDouble(), u2 = rnd.nextDouble();
            v[j] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
        }
        return normalize(v);
    }

    private static double[] normalize(double[] v) {
        double s = 0;
        for (double x : v) s += x * x;
        s = Math.sqrt(s);
        for (int j = 0; j < v.length; j++) v[j] /= s;
        return v;
    }
}
