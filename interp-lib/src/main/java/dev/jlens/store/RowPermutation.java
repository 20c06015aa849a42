package dev.jlens.store;

import dev.jlens.util.SplitMix;

/**
 * A seeded pseudo-random permutation of {@code [0, n)} computed per index, with no table: a balanced Feistel network
 * over the smallest even power of two covering {@code n}, cycle-walking indices that land outside. Reading a cache
 * through it visits every row once per epoch in an order that depends only on (seed, epoch), so batch {@code step}
 * is a pure function of (seed, step) however large the cache is.
 */
final class RowPermutation {
    private static final int ROUNDS = 6;

    private final long n;
    private final long epoch;
    private final int halfBits;
    private final long halfMask;
    private final long[] keys = new long[ROUNDS];

    RowPermutation(long n, long seed, long epoch) {
        if (n <= 0) throw new IllegalArgumentException("a permutation needs n >= 1, got " + n);
        this.n = n;
        this.epoch = epoch;
        int bits = Math.max(2, 64 - Long.numberOfLeadingZeros(n - 1));
        this.halfBits = (bits + 1) / 2;
        this.halfMask = (1L << halfBits) - 1;
        for (int r = 0; r < ROUNDS; r++) keys[r] = SplitMix.mix(seed, SplitMix.mix(epoch + 0x632BE59BD9B4E019L * (r + 1)));
    }

    /** The epoch this permutation is for. */
    long epoch() {
        return epoch;
    }

    /** The image of {@code i} in {@code [0, n)}. */
    long apply(long i) {
        if (i < 0 || i >= n) throw new IndexOutOfBoundsException("index " + i + " outside [0, " + n + ")");
        long x = i;
        do {
            x = encrypt(x);
        } while (x >= n); // cycle-walking: the domain is < 4n, so a few rounds at most on average
        return x;
    }

    private long encrypt(long x) {
        long left = x >>> halfBits, right = x & halfMask;
        for (long key : keys) {
            long next = left ^ (SplitMix.mix(right ^ key) & halfMask);
            left = right;
            right = next;
        }
        return (left << halfBits) | right;
    }
}
