package dev.jlens.geometry;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * k-means clustering of points {@code [n][d]}: greedy k-means++ seeding (Arthur and Vassilvitskii 2007: each next centre
 * drawn with probability proportional to the squared distance to the nearest chosen one; as scikit-learn, the best of
 * {@code 2 + ln k} such draws by the resulting potential), then Lloyd's iterations until no
 * assignment changes. An empty cluster is re-seeded at the point farthest from its centre.
 *
 * @param centroids  {@code [k][d]}
 * @param inertia    the sum of squared distances of the fitted points to their centroids
 * @param iterations Lloyd iterations run
 * @param converged  whether the assignments stopped changing within the iteration limit
 */
public record KMeans(double[][] centroids, double inertia, int iterations, boolean converged) {

    /** Fits {@code k} clusters with at most 100 Lloyd iterations. */
    public static KMeans fit(double[][] points, int k, long seed) {
        return fit(points, k, seed, 100);
    }

    /** Fits {@code k} clusters ({@code 1 <= k <= n}) with at most {@code maxIterations} Lloyd iterations. */
    public static KMeans fit(double[][] points, int k, long seed, int maxIterations) {
        int n = points.length;
        if (k < 1 || k > n) throw new IllegalArgumentException("k must be 1.." + n + " (the number of points), got " + k);
        if (maxIterations < 1) throw new IllegalArgumentException("maxIterations must be >= 1, got " + maxIterations);
        int d = points[0].length;
        for (int i = 0; i < n; i++) {
            if (points[i].length != d) {
                throw new IllegalArgumentException("point " + i + " has " + points[i].length + " coordinates, point 0 " + d);
            }
        }
        SplittableRandom rng = new SplittableRandom(seed);
        double[][] c = new double[k][];
        c[0] = points[rng.nextInt(n)].clone();
        double[] near = new double[n];
        for (int i = 0; i < n; i++) near[i] = dist2(points[i], c[0]);
        // greedy k-means++ (scikit-learn's): 2 + ln k candidates per new centre, the one that lowers the potential most
        int trials = 2 + (int) Math.log(k);
        double[] cand = new double[n];
        for (int m = 1; m < k; m++) {
            double total = 0;
            for (double v : near) total += v;
            int best = -1;
            double bestPotential = Double.POSITIVE_INFINITY;
            double[] bestNear = null;
            for (int t = 0; t < trials; t++) {
                int pick;
                if (total <= 0) {
                    pick = rng.nextInt(n);
                } else {
                    double r = rng.nextDouble() * total;
                    pick = n - 1;
                    for (int i = 0; i < n; i++) {
                        r -= near[i];
                        if (r < 0) {
                            pick = i;
                            break;
                        }
                    }
                }
                double potential = 0;
                for (int i = 0; i < n; i++) {
                    cand[i] = Math.min(near[i], dist2(points[i], points[pick]));
                    potential += cand[i];
                }
                if (potential < bestPotential) {
                    bestPotential = potential;
                    best = pick;
                    bestNear = cand.clone();
                }
            }
            c[m] = points[best].clone();
            near = bestNear;
        }
        int[] assign = new int[n];
        Arrays.fill(assign, -1);
        int it = 0;
        boolean converged = false;
        while (it < maxIterations) {
            it++;
            boolean changed = false;
            for (int i = 0; i < n; i++) {
                int a = nearest(c, points[i]);
                if (a != assign[i]) {
                    assign[i] = a;
                    changed = true;
                }
            }
            if (!changed) {
                converged = true;
                break;
            }
            double[][] sum = new double[k][d];
            int[] count = new int[k];
            for (int i = 0; i < n; i++) {
                count[assign[i]]++;
                for (int j = 0; j < d; j++) sum[assign[i]][j] += points[i][j];
            }
            for (int m = 0; m < k; m++) {
                if (count[m] > 0) {
                    for (int j = 0; j < d; j++) c[m][j] = sum[m][j] / count[m];
                } else {
                    int far = 0;
                    double best = -1;
                    for (int i = 0; i < n; i++) {
                        double v = dist2(points[i], c[assign[i]]);
                        if (v > best) {
                            best = v;
                            far = i;
                        }
                    }
                    c[m] = points[far].clone();
                    assign[far] = -1;    // forces another iteration
                }
            }
        }
        double inertia = 0;
        for (double[] p : points) inertia += dist2(p, c[nearest(c, p)]);
        return new KMeans(c, inertia, it, converged);
    }

    /** As {@link #fit(double[][], int, long)} for single-precision points. */
    public static KMeans fit(float[][] points, int k, long seed) {
        return fit(Pca.toDouble(points), k, seed);
    }

    /** The index of each point's nearest centroid. */
    public int[] assign(double[][] points) {
        int[] out = new int[points.length];
        for (int i = 0; i < points.length; i++) {
            if (points[i].length != centroids[0].length) {
                throw new IllegalArgumentException("point " + i + " has " + points[i].length + " coordinates, the centroids "
                        + centroids[0].length);
            }
            out[i] = nearest(centroids, points[i]);
        }
        return out;
    }

    /** The number of clusters. */
    public int k() {
        return centroids.length;
    }

    private static int nearest(double[][] c, double[] p) {
        int best = 0;
        double bd = Double.POSITIVE_INFINITY;
        for (int m = 0; m < c.length; m++) {
            double v = dist2(p, c[m]);
            if (v < bd) {
                bd = v;
                best = m;
            }
        }
        return best;
    }

    private static double dist2(double[] a, double[] b) {
        double s = 0;
        for (int j = 0; j < a.length; j++) {
            double t = a[j] - b[j];
            s += t * t;
        }
        return s;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "KMeans(%d clusters, inertia %.4g, %d iterations, %s)", centroids.length,
                inertia, iterations, converged ? "converged" : "not converged");
    }
}
