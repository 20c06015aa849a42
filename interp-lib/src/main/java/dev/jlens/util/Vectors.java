package dev.jlens.util;

/** Dot products, norms and cosines of float and double vectors, accumulated in double precision; the median. */
public final class Vectors {
    private Vectors() {}

    /** {@code a . b}; the vectors must have one length. */
    public static double dot(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("vectors of lengths " + a.length + " and " + b.length + " have no dot product");
        }
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }

    /** The Euclidean norm. */
    public static double norm(float[] a) {
        return Math.sqrt(dot(a, a));
    }

    /** The cosine of the angle between {@code a} and {@code b}; 0 where either is zero. */
    public static double cosine(float[] a, float[] b) {
        double d = dot(a, b), na = dot(a, a), nb = dot(b, b);
        return na == 0 || nb == 0 ? 0 : d / Math.sqrt(na * nb);
    }

    /** {@code a . b} of double vectors; they must have one length. */
    public static double dot(double[] a, double[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("vectors of lengths " + a.length + " and " + b.length + " have no dot product");
        }
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    /** The median of {@code v} (the mean of the middle two for an even count); NaN when empty. */
    public static double median(double[] v) {
        if (v.length == 0) return Double.NaN;
        double[] s = v.clone();
        java.util.Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
