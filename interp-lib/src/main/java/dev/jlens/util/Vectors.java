package dev.jlens.util;

/** Dot products, norms and cosines of float vectors, accumulated in double precision. */
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
}
