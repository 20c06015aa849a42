package dev.jlens.probe;

import java.util.Arrays;

/**
 * Token positions to read a steering vector from or to steer at. Positions count tokens of a sequence from 0 (BOS
 * included), ignoring left padding when {@link Steering#generate} pads a batch of prompts.
 *
 * <pre>{@code
 * Positions.all()            // every position (steering: also every generated token)
 * Positions.from(5)          // position 5 and after (steering: the prompt's tail and every generated token)
 * Positions.at(3, 7)         // exactly these
 * Positions.last()           // the last token (for reading vectors from prompts; not for steering)
 * }</pre>
 */
public sealed interface Positions permits Positions.All, Positions.From, Positions.At, Positions.Last {

    /** True if {@code position} of a sequence of {@code length} tokens is selected. */
    boolean contains(int position, int length);

    /** Every position. */
    static Positions all() {
        return new All();
    }

    /** Position {@code start} and every one after it. */
    static Positions from(int start) {
        return new From(start);
    }

    /** Exactly the given positions. */
    static Positions at(int... positions) {
        return new At(positions);
    }

    /** The last position of each sequence. */
    static Positions last() {
        return new Last();
    }

    /** Every position. */
    record All() implements Positions {
        @Override
        public boolean contains(int position, int length) {
            return true;
        }
    }

    /** Positions {@code >= start}. */
    record From(int start) implements Positions {
        /** Checks the start. */
        public From {
            if (start < 0) throw new IllegalArgumentException("start position must be >= 0, got " + start);
        }

        @Override
        public boolean contains(int position, int length) {
            return position >= start;
        }
    }

    /** The listed positions. */
    record At(int[] positions) implements Positions {
        /** Copies, sorts and checks the positions. */
        public At {
            if (positions == null || positions.length == 0) {
                throw new IllegalArgumentException("give at least one position (or Positions.all())");
            }
            positions = positions.clone();
            Arrays.sort(positions);
            if (positions[0] < 0) throw new IllegalArgumentException("positions must be >= 0, got " + positions[0]);
        }

        @Override
        public boolean contains(int position, int length) {
            return Arrays.binarySearch(positions, position) >= 0;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof At a && Arrays.equals(positions, a.positions);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(positions);
        }

        @Override
        public String toString() {
            return "At" + Arrays.toString(positions);
        }
    }

    /** The last position. */
    record Last() implements Positions {
        @Override
        public boolean contains(int position, int length) {
            return position == length - 1;
        }
    }
}
