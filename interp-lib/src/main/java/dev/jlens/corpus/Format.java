package dev.jlens.corpus;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;

/**
 * File formats a {@link Corpus} reads, each streamed row by row. Any of them may be gzip-compressed ({@code .gz}),
 * except parquet, which compresses inside the file.
 */
public enum Format {
    /** Apache Parquet ({@code .parquet}), read one row group at a time; each column a field. */
    PARQUET,
    /** JSON Lines ({@code .jsonl}, {@code .ndjson}, {@code .json}): one object per line, or one JSON array of objects. */
    JSONL,
    /** CSV with a header row ({@code .csv}); {@code .tsv} is read with tabs. */
    CSV,
    /** Plain text ({@code .txt}): one document per non-empty line, in field {@code text}. */
    TEXT,
    /** Plain text, the whole file one document, in field {@code text} (never detected: ask for it). */
    TEXT_FILE;

    /** The format a file name implies ({@code data.jsonl.gz} is JSONL), or empty for an unknown extension. */
    public static Optional<Format> detect(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".gz")) name = name.substring(0, name.length() - 3);
        if (name.endsWith(".parquet")) return Optional.of(PARQUET);
        if (name.endsWith(".jsonl") || name.endsWith(".ndjson") || name.endsWith(".json")) return Optional.of(JSONL);
        if (name.endsWith(".csv") || name.endsWith(".tsv")) return Optional.of(CSV);
        if (name.endsWith(".txt")) return Optional.of(TEXT);
        return Optional.empty();
    }
}
