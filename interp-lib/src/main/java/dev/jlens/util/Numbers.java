package dev.jlens.util;

/** Rounding for numbers shown to people (tables in notebooks, JSON lines of benchmarks). */
public final class Numbers {
    private Numbers() {}

    /** {@code v} rounded to {@code digits} significant digits; 0, NaN and infinities unchanged. */
    public static double significant(double v, int digits) {
        if (v == 0 || !Double.isFinite(v)) return v;
        double scale = Math.pow(10, digits - 1 - (int) Math.floor(Math.log10(Math.abs(v))));
        return Math.round(v * scale) / scale;
    }
}
