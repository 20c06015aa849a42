package dev.jlens.analysis;

import java.util.Locale;

/**
 * Which run is patched. {@link #DENOISE}: the corrupt run receives activations from the clean one (does this site
 * suffice to restore the behaviour?). {@link #NOISE}: the clean run receives activations from the corrupt one (is
 * this site necessary?).
 */
public enum Direction {
    DENOISE, NOISE;

    /** {@code denoise} or {@code noise}, any case. */
    public static Direction parse(String name) {
        if (name != null) {
            String n = name.trim().toUpperCase(Locale.ROOT);
            for (Direction d : values()) {
                if (d.name().equals(n)) return d;
            }
        }
        throw new IllegalArgumentException("unknown direction '" + name + "': valid directions are denoise, noise");
    }

    /** Lower-case name, as the command line writes it. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
        return label();
    }
}
