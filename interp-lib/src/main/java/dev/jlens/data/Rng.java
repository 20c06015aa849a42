package dev.jlens.data;

import dev.jlens.util.SplitMix;

/**
 * SplitMix64: a tiny, fully specified random generator, so that every example is the same on every JVM and
 * JDK version (java.util's generators do not promise that across releases).
 */
final class Rng {

    private static final long GOLDEN = SplitMix.GOLDEN;

    private long state;

    private Rng(long state) {
        this.state = state;
    }

    /** A generator seeded from several keys (seed, split, index, ...), each mixed in turn. */
    static Rng of(long... keys) {
        return new Rng(hash(keys));
    }

    /** A 64-bit hash of a sequence of longs; order matters. */
    static long hash(long... keys) {
        long h = GOLDEN;
        for (long k : keys) {
            h = mix((h + GOLDEN) ^ k);
        }
        return mix(h);
    }

    /** A 64-bit hash of a string (its UTF-16 units), for salting by task name. */
    static long hash(String s) {
        long h = 0;
        for (int i = 0; i < s.length(); i++) {
            h = mix(h + GOLDEN + s.charAt(i));
        }
        return h;
    }

    /** A hash mapped to a uniform double in [0, 1). */
    static double unit(long hash) {
        return (hash >>> 11) * 0x1.0p-53;
    }

    static long mix(long z) {
        return SplitMix.mix(z);
    }

    long nextLong() {
        state += GOLDEN;
        return mix(state);
    }

    /** Uniform in [0, 1). */
    double nextDouble() {
        return unit(nextLong());
    }

    /** Uniform in [0, bound), without modulo bias. */
    int nextInt(int bound) {
        if (bound <= 0) {
            throw new IllegalArgumentException("bound must be positive, got " + bound);
        }
        while (true) {
            int bits = (int) (nextLong() >>> 33);
            int val = bits % bound;
            if (bits - val + (bound - 1) >= 0) { // reject the incomplete last block of 2^31
                return val;
            }
        }
    }

    /** Uniform in [lo, hi], inclusive. */
    long nextLong(long lo, long hi) {
        long n = hi - lo + 1;
        if (n <= 0 || n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("range " + lo + ".." + hi + " is empty or too wide");
        }
        return lo + nextInt((int) n);
    }

    /** True with probability p. */
    boolean chance(double p) {
        return nextDouble() < p;
    }
}
