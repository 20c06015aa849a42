package dev.jlens.util;

import java.util.SplittableRandom;

/** SplitMix64 mixing and the normal draws the project's seeded generators share. */
public final class SplitMix {
    /** The 64-bit golden ratio, SplitMix64's increment. */
    public static final long GOLDEN = 0x9E3779B97F4A7C15L;

    private SplitMix() {}

    /** SplitMix64's finaliser: a bijective 64-bit mixer. */
    public static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** A seed for item {@code b} of stream {@code a} (e.g. a step of a seeded data source). */
    public static long mix(long a, long b) {
        return mix(a * GOLDEN + b);
    }

    /** A standard normal draw (Box-Muller, one value per call). */
    public static double gaussian(SplittableRandom r) {
        double u = 1.0 - r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
}
