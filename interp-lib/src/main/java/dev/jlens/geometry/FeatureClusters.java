package dev.jlens.geometry;

import static dev.jlens.util.Vectors.dot;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Multi-dimensional features found among a sparse dictionary's latents, as in Engels et al. 2024 (section 4): latents
 * whose decoder directions point alike are grouped, and the activations a group reconstructs are studied together
 * (projected onto the group's span, then e.g. {@link Pca} to 2-D and the {@link Reducibility} indices).
 *
 * <p>Grouping: a graph with an edge between two latents whose decoder directions have cosine similarity at least
 * {@code threshold}, and its connected components (the paper's graph clustering, used for Mistral 7B with a
 * threshold of 0.5; for GPT-2 it used spectral clustering of the same similarity matrix). Decoders are
 * {@code [latents][d_model]}, one row per latent, as {@code SparseCoder} decoders are laid out.
 *
 * <pre>{@code
 * List<int[]> groups = FeatureClusters.byCosine(decoderFD, 0.5, 2);
 * double[][] recon = FeatureClusters.reconstruct(latentsNF, decoderFD, groups.get(0));   // only that group's latents
 * boolean[] on = FeatureClusters.active(latentsNF, groups.get(0));                      // rows where any fires
 * double[][] xy = Pca.fit(rows(recon, on), 2).project(rows(recon, on));
 * }</pre>
 */
public final class FeatureClusters {

    private FeatureClusters() {}

    /**
     * Groups of at least {@code minSize} latents connected by decoder cosine similarity {@code >= threshold}, largest
     * first (ties by smallest latent index); each group's latent indices ascending. Latents with a zero decoder row
     * join no group.
     */
    public static List<int[]> byCosine(float[][] decoderFD, double threshold, int minSize) {
        if (minSize < 1) throw new IllegalArgumentException("minSize must be at least 1, got " + minSize);
        if (!(threshold >= -1 && threshold <= 1)) {
            throw new IllegalArgumentException("threshold is a cosine similarity in [-1, 1], got " + threshold);
        }
        double[][] cos = cosineMatrix(decoderFD);
        int f = decoderFD.length;
        int[] parent = new int[f];
        for (int i = 0; i < f; i++) parent[i] = i;
        for (int i = 0; i < f; i++) {
            for (int j = i + 1; j < f; j++) {
                if (cos[i][j] >= threshold) union(parent, i, j);
            }
        }
        List<List<Integer>> groups = new ArrayList<>();
        int[] slot = new int[f];
        Arrays.fill(slot, -1);
        for (int i = 0; i < f; i++) {
            if (cos[i][i] == 0) continue;   // a dead latent has no direction
            int r = find(parent, i);
            if (slot[r] < 0) {
                slot[r] = groups.size();
                groups.add(new ArrayList<>());
            }
            groups.get(slot[r]).add(i);
        }
        return groups.stream().filter(g -> g.size() >= minSize)
                .sorted(Comparator.<List<Integer>>comparingInt(List::size).reversed().thenComparingInt(g -> g.get(0)))
                .map(g -> g.stream().mapToInt(Integer::intValue).toArray()).toList();
    }

    /**
     * Cosine similarities of the decoder rows {@code [f][f]}; a zero row has similarity 0 with everything, itself
     * included.
     */
    public static double[][] cosineMatrix(float[][] decoderFD) {
        int f = decoderFD.length;
        if (f == 0) throw new IllegalArgumentException("the decoder has no latents");
        int d = decoderFD[0].length;
        double[] norm = new double[f];
        for (int i = 0; i < f; i++) {
            if (decoderFD[i].length != d) {
                throw new IllegalArgumentException("decoder row " + i + " has " + decoderFD[i].length + " entries, row 0 " + d);
            }
            double s = 0;
            for (float x : decoderFD[i]) s += (double) x * x;
            norm[i] = Math.sqrt(s);
        }
        double[][] cos = new double[f][f];
        for (int i = 0; i < f; i++) {
            for (int j = i; j < f; j++) {
                if (norm[i] == 0 || norm[j] == 0) continue;
                double s = 0;
                for (int k = 0; k < d; k++) s += (double) decoderFD[i][k] * decoderFD[j][k];
                cos[i][j] = cos[j][i] = s / (norm[i] * norm[j]);
            }
        }
        return cos;
    }

    /**
     * An orthonormal basis {@code [r][d]} of the span of a group's decoder directions (Gram-Schmidt, dropping
     * directions within {@code 1e-6} relative of the span of earlier ones), so {@code r} is the group's rank.
     */
    public static double[][] span(float[][] decoderFD, int[] group) {
        List<double[]> basis = new ArrayList<>();
        for (int idx : group) {
            checkLatent(decoderFD, idx);
            double[] v = new double[decoderFD[idx].length];
            for (int k = 0; k < v.length; k++) v[k] = decoderFD[idx][k];
            double before = Math.sqrt(dot(v, v));
            if (before == 0) continue;
            for (int pass = 0; pass < 2; pass++) {   // twice, for numerical orthogonality
                for (double[] b : basis) {
                    double p = dot(v, b);
                    for (int k = 0; k < v.length; k++) v[k] -= p * b[k];
                }
            }
            double after = Math.sqrt(dot(v, v));
            if (after <= 1e-6 * before) continue;
            for (int k = 0; k < v.length; k++) v[k] /= after;
            basis.add(v);
        }
        return basis.toArray(double[][]::new);
    }

    /** Coordinates of {@code points [n][d]} in an orthonormal {@code basis [r][d]}: {@code [n][r]}. */
    public static double[][] project(double[][] points, double[][] basis) {
        double[][] out = new double[points.length][basis.length];
        for (int i = 0; i < points.length; i++) {
            for (int b = 0; b < basis.length; b++) out[i][b] = dot(points[i], basis[b]);
        }
        return out;
    }

    /**
     * What the group's latents alone reconstruct: {@code sum over j in group of latents[i][j] * decoder[j]}, per row,
     * {@code [n][d]} (the decoder bias left out: it is the same for every row).
     */
    public static double[][] reconstruct(float[][] latentsNF, float[][] decoderFD, int[] group) {
        for (int j : group) checkLatent(decoderFD, j);
        int d = decoderFD[0].length;
        double[][] out = new double[latentsNF.length][d];
        for (int i = 0; i < latentsNF.length; i++) {
            if (latentsNF[i].length != decoderFD.length) {
                throw new IllegalArgumentException("latent row " + i + " has " + latentsNF[i].length
                        + " latents, the decoder " + decoderFD.length);
            }
            for (int j : group) {
                float a = latentsNF[i][j];
                if (a == 0) continue;
                for (int k = 0; k < d; k++) out[i][k] += a * decoderFD[j][k];
            }
        }
        return out;
    }

    /** Which rows have any of the group's latents active (non-zero). */
    public static boolean[] active(float[][] latentsNF, int[] group) {
        boolean[] on = new boolean[latentsNF.length];
        for (int i = 0; i < latentsNF.length; i++) {
            for (int j : group) {
                if (latentsNF[i][j] != 0) {
                    on[i] = true;
                    break;
                }
            }
        }
        return on;
    }

    /** The rows of {@code points} where {@code keep} is true. */
    public static double[][] rows(double[][] points, boolean[] keep) {
        if (keep.length != points.length) {
            throw new IllegalArgumentException(keep.length + " flags for " + points.length + " rows");
        }
        List<double[]> out = new ArrayList<>();
        for (int i = 0; i < points.length; i++) if (keep[i]) out.add(points[i]);
        return out.toArray(double[][]::new);
    }

    private static void checkLatent(float[][] decoderFD, int idx) {
        if (idx < 0 || idx >= decoderFD.length) {
            throw new IllegalArgumentException("latent " + idx + " is outside the decoder's 0.." + (decoderFD.length - 1));
        }
    }

    private static int find(int[] parent, int i) {
        while (parent[i] != i) {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        return i;
    }

    private static void union(int[] parent, int a, int b) {
        int ra = find(parent, a), rb = find(parent, b);
        if (ra != rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
    }
}
