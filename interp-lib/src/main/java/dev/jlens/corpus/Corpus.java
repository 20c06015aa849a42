package dev.jlens.corpus;

import dev.jlens.io.HfHub;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A corpus on disk: one file, or every readable file of a directory (a Hugging Face dataset snapshot, say), read
 * as a stream of {@link CorpusRow}s without loading any file whole. Files are read in sorted path order, so the rows come
 * in the same order every time.
 *
 * <pre>{@code
 * Corpus corpus = Corpus.open(Path.of("data/corpus/stories.parquet"));
 * try (Stream<String> texts = corpus.texts("text")) { texts.limit(3).forEach(System.out::println); }
 *
 * Corpus pile = Corpus.fromHub("org/corpus", "data/train-*.parquet");   // cached as Python's datasets-- layout
 * }</pre>
 *
 * <p>Formats come from file extensions ({@link Format#detect}: parquet, JSON Lines also gzipped, CSV, text) unless
 * one is given. Close the streams {@link #rows()} and {@link #texts} return (try-with-resources), or read them to
 * the end: either releases the open file.
 */
public final class Corpus {

    /** The field that holds a text file's documents. */
    public static final String TEXT = "text";

    private final Path root;
    private final List<Path> files;
    private final Optional<Format> format;

    private Corpus(Path root, List<Path> files, Optional<Format> format) {
        this.root = root;
        this.files = List.copyOf(files);
        this.format = format;
    }

    /** A file, or the readable files under a directory (recursively, sorted), each format detected by extension. */
    public static Corpus open(Path fileOrDir) {
        return open(fileOrDir, null);
    }

    /** As {@link #open(Path)} with every file read as {@code format} ({@code null}: detect each). */
    public static Corpus open(Path fileOrDir, Format format) {
        Objects.requireNonNull(fileOrDir, "fileOrDir");
        if (!Files.exists(fileOrDir)) throw new CorpusException("no such file or directory: " + fileOrDir);
        List<Path> files;
        if (Files.isDirectory(fileOrDir)) {
            try (Stream<Path> walk = Files.walk(fileOrDir)) {
                files = walk.filter(Files::isRegularFile)
                        .filter(p -> !p.getFileName().toString().startsWith("."))
                        .filter(p -> readable(p, format))
                        .sorted().collect(Collectors.toList());
            } catch (IOException e) {
                throw new CorpusException("cannot list " + fileOrDir + ": " + e.getMessage(), e);
            }
            // A dataset card or config is not data, even when its extension is one we read.
            files.removeIf(p -> p.getFileName().toString().equals("dataset_infos.json")
                    || p.getFileName().toString().equals("dataset_info.json"));
            if (files.isEmpty()) {
                throw new CorpusException("no " + (format == null ? "parquet, JSON Lines, CSV or text" : format.toString())
                        + " files under " + fileOrDir);
            }
        } else {
            if (format == null && Format.detect(fileOrDir).isEmpty()) {
                throw new CorpusException("cannot tell the format of " + fileOrDir + " from its name; pass one of "
                        + List.of(Format.values()) + " to Corpus.open(path, format)");
            }
            files = List.of(fileOrDir);
        }
        return new Corpus(fileOrDir, files, Optional.ofNullable(format));
    }

    /** Whether a file of a directory is read: its extension names a format (the one asked for, if one is). */
    private static boolean readable(Path p, Format format) {
        Optional<Format> f = Format.detect(p);
        if (format == null) return f.isPresent();
        if (format == Format.TEXT_FILE) return f.isEmpty() || f.get() == Format.TEXT;
        return f.isEmpty() ? !p.getFileName().toString().endsWith(".md") : f.get() == format;
    }

    /** Given files, in the order given. */
    public static Corpus of(List<Path> files, Format format) {
        if (files == null || files.isEmpty()) throw new CorpusException("a corpus needs at least one file");
        for (Path f : files) {
            if (!Files.isRegularFile(f)) throw new CorpusException("no such file: " + f);
            if (format == null && Format.detect(f).isEmpty()) {
                throw new CorpusException("cannot tell the format of " + f + " from its name; pass a Format");
            }
        }
        return new Corpus(files.get(0), files, Optional.ofNullable(format));
    }

    /**
     * The files of a Hugging Face dataset repo (at {@code main}) that match {@code patterns} (as in
     * {@link HfHub#datasetFiles(String, String, List)}; none: every file), downloaded into the shared cache.
     */
    public static Corpus fromHub(String repoId, String... patterns) {
        return fromHub(HfHub.fromEnvironment(), repoId, null, List.of(patterns));
    }

    /** As {@link #fromHub(String, String...)} with a hub client and a revision ({@code null}: main). */
    public static Corpus fromHub(HfHub hub, String repoId, String revision, List<String> patterns) {
        Objects.requireNonNull(hub, "hub");
        List<String> names = hub.datasetFiles(repoId, revision, patterns).stream()
                .filter(n -> Format.detect(Path.of(n)).isPresent()).toList();
        if (names.isEmpty()) {
            throw new CorpusException("dataset " + repoId + " has no parquet, JSON Lines, CSV or text files matching "
                    + patterns);
        }
        Path snapshot = hub.snapshotForDataset(repoId, revision, names);
        return of(names.stream().map(snapshot::resolve).toList(), null);
    }

    /**
     * Writes rows as a parquet file (snappy-compressed), columns named and typed by the first row's fields: strings,
     * int, long, double, boolean and lists of strings (Parquet's LIST layout). For fixtures and small exports.
     */
    public static void writeParquet(Path file, List<? extends java.util.Map<String, ?>> rows) {
        ParquetWrite.write(file, rows, 128L << 20);
    }

    /** As {@link #writeParquet(Path, List)} with row groups of about {@code rowGroupBytes}. */
    public static void writeParquet(Path file, List<? extends java.util.Map<String, ?>> rows, long rowGroupBytes) {
        ParquetWrite.write(file, rows, rowGroupBytes);
    }

    /** The files, in reading order. */
    public List<Path> files() {
        return files;
    }

    /** Every row of every file, in order, read lazily; close the stream (or read it to the end) to close the file. */
    public Stream<CorpusRow> rows() {
        return rows(Optional.empty());
    }

    /** The text in {@code column} of every row; a row without it fails naming the file, the row and its columns. */
    public Stream<String> texts(String column) {
        Objects.requireNonNull(column, "column");
        return rows(Optional.of(column)).map(r -> r.getString(column));
    }

    /** A text made from each row (e.g. {@code r -> r.getString("question") + " " + r.getString("answer")}). */
    public Stream<String> texts(Function<CorpusRow, String> text) {
        Objects.requireNonNull(text, "text");
        return rows().map(text);
    }

    private Stream<CorpusRow> rows(Optional<String> column) {
        Rows it = new Rows(column);
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL),
                false).onClose(it::close);
    }

    /** Walks the files, one open at a time. */
    private final class Rows implements Iterator<CorpusRow> {
        private final Optional<String> column;
        private int nextFile;
        private RowReader current;

        Rows(Optional<String> column) {
            this.column = column;
        }

        @Override
        public boolean hasNext() {
            while (current == null || !current.hasNext()) {
                if (current != null) {
                    current.close();
                    current = null;
                }
                if (nextFile >= files.size()) return false;
                Path f = files.get(nextFile++);
                current = RowReader.open(f, format.orElseGet(() -> Format.detect(f).orElseThrow()), column);
            }
            return true;
        }

        @Override
        public CorpusRow next() {
            if (!hasNext()) throw new NoSuchElementException("the corpus has no more rows");
            return current.next();
        }

        void close() {
            if (current != null) current.close();
            current = null;
            nextFile = files.size();
        }
    }

    @Override
    public String toString() {
        return "Corpus[" + root + ", " + files.size() + (files.size() == 1 ? " file" : " files")
                + format.map(f -> ", " + f).orElse("") + "]";
    }
}
