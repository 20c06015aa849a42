package dev.jlens.store;

import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * A mixing buffer of activation rows (SAELens / dictionary_learning style): filled from many token batches, it
 * serves uniformly random rows and tops itself up from the stream when it falls to half full, so consecutive rows
 * rarely come from the same context. Deterministic in its seed; when the stream ends it starts again (a new epoch).
 */
final class ShuffleBuffer {
    private final Supplier<RowStream> streams;
    private final int width;
    private final int capacity;
    private final float[] rows;
    private final SplittableRandom rng;
    private RowStream stream;
    private int fill;
    private long served;
    private int epoch;

    ShuffleBuffer(Supplier<RowStream> streams, int width, int capacity, long seed) {
        this.streams = streams;
        this.width = width;
        this.capacity = capacity;
        this.rows = new float[Math.multiplyExact(capacity, width)];
        this.rng = new SplittableRandom(seed);
        this.stream = streams.get();
    }

    /** Copies the next {@code n} random rows into {@code dst} from row {@code dstRow}. */
    void next(float[] dst, int dstRow, int n) {
        for (int k = 0; k < n; k++) {
            if (fill <= capacity / 2) refill();
            int i = rng.nextInt(fill);
            System.arraycopy(rows, i * width, dst, (dstRow + k) * width, width);
            // the last row takes the served row's place, so the live rows stay contiguous
            fill--;
            if (i != fill) System.arraycopy(rows, fill * width, rows, i * width, width);
        }
        served += n;
    }

    /** Discards the next {@code n} rows (to reach a later step). */
    void skip(long n, float[] scratch) {
        int chunk = scratch.length / width;
        while (n > 0) {
            int k = (int) Math.min(chunk, n);
            next(scratch, 0, k);
            n -= k;
        }
    }

    /** Rows served so far. */
    long served() {
        return served;
    }

    /** Passes over the token source started so far (1 during the first). */
    int epoch() {
        return epoch + 1;
    }

    private void refill() {
        boolean restarted = false;
        while (fill < capacity) {
            int got = stream.read(rows, fill, capacity - fill);
            fill += got;
            if (got == 0) {
                if (restarted) {
                    if (fill > 0) return; // a source smaller than the buffer: serve what one pass holds
                    throw new IllegalStateException("the token source gives no activation rows: it is empty, or every "
                            + "position is padding or BOS");
                }
                stream = streams.get();
                epoch++;
                restarted = true;
            }
        }
    }
}
