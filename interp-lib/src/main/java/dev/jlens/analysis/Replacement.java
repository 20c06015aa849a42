package dev.jlens.analysis;

import java.util.Arrays;
import java.util.Objects;

/**
 * What a patched activation is replaced with: the other run's activation (activation patching proper), zero, its
 * mean over a dataset (over rows and positions, or per position), or the activation of a randomly drawn dataset
 * row at the same position (resample ablation). Dataset sequences must be at least as long as the prompts for the
 * per-position and resampled kinds; attention patterns always use the per-position form.
 */
public sealed interface Replacement {

    /** The other run's activation: the clean one when denoising, the corrupt one when noising. */
    static Replacement other() {
        return Other.INSTANCE;
    }

    /** Zero. */
    static Replacement zero() {
        return Zero.INSTANCE;
    }

    /** The mean over every row and position of {@code dataset} (equal-length token sequences). */
    static Replacement mean(long[][] dataset) {
        return new Mean(check(dataset), false);
    }

    /** The mean over the rows of {@code dataset} at each position. */
    static Replacement meanPerPosition(long[][] dataset) {
        return new Mean(check(dataset), true);
    }

    /** For each prompt, a dataset row drawn with {@code seed}, at the same positions. */
    static Replacement resample(long[][] dataset, long seed) {
        return new Resample(check(dataset), seed);
    }

    /** A short label for tables. */
    String label();

    /** The other run's activation. */
    enum Other implements Replacement {
        INSTANCE;

        @Override
        public String label() {
            return "other run";
        }
    }

    /** Zero. */
    enum Zero implements Replacement {
        INSTANCE;

        @Override
        public String label() {
            return "zero";
        }
    }

    /** A dataset mean. */
    record Mean(long[][] dataset, boolean perPosition) implements Replacement {
        @Override
        public String label() {
            return perPosition ? "mean per position" : "mean";
        }
    }

    /** A resampled dataset row. */
    record Resample(long[][] dataset, long seed) implements Replacement {
        @Override
        public String label() {
            return "resample";
        }
    }

    private static long[][] check(long[][] dataset) {
        Objects.requireNonNull(dataset, "dataset");
        if (dataset.length == 0) throw new IllegalArgumentException("the dataset has no sequences");
        int len = dataset[0].length;
        for (long[] row : dataset) {
            if (row.length != len) {
                throw new IllegalArgumentException("dataset sequences must have one length, got " + len + " and "
                        + row.length);
            }
        }
        return Arrays.stream(dataset).map(long[]::clone).toArray(long[][]::new);
    }
}
