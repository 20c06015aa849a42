package dev.jlens.analysis;

import java.util.OptionalInt;

/**
 * One patched index: a layer with a position (residual and sublayer sites), a head (every position), or both.
 */
public record PatchIndex(int layer, OptionalInt head, OptionalInt pos) {

    /** [layer, pos]. */
    public static PatchIndex position(int layer, int pos) {
        return new PatchIndex(layer, OptionalInt.empty(), OptionalInt.of(pos));
    }

    /** [layer, head], every position. */
    public static PatchIndex head(int layer, int head) {
        return new PatchIndex(layer, OptionalInt.of(head), OptionalInt.empty());
    }

    /** [layer, head, pos]. */
    public static PatchIndex headAt(int layer, int head, int pos) {
        return new PatchIndex(layer, OptionalInt.of(head), OptionalInt.of(pos));
    }

    /** {@code L1H3}, {@code L1P4}, {@code L1H3P4}. */
    public String label() {
        StringBuilder b = new StringBuilder("L").append(layer);
        head.ifPresent(h -> b.append('H').append(h));
        pos.ifPresent(p -> b.append('P').append(p));
        return b.toString();
    }

    @Override
    public String toString() {
        return label();
    }
}
