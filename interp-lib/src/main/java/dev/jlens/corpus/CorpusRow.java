package dev.jlens.corpus;

import dev.jlens.util.Names;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * One row of a corpus: named fields in file order (strings, numbers, booleans, lists, nested maps; {@code null}
 * where the file has none), with the file it came from and its 0-based index there, for error messages.
 */
public final class CorpusRow {

    private final Map<String, Object> fields;
    private final Path file;
    private final long index;

    /** A row of {@code file}; the map is copied. */
    public CorpusRow(Map<String, ?> fields, Path file, long index) {
        this.fields = Collections.unmodifiableMap(new LinkedHashMap<>(fields));
        this.file = file;
        this.index = index;
    }

    /** The field named {@code column} (possibly {@code null}); throws naming the row's columns if there is none. */
    public Object get(String column) {
        if (!fields.containsKey(column)) throw missing(column);
        return fields.get(column);
    }

    /** The field as text: a string as is, a number or boolean printed; throws if it is missing or null. */
    public String getString(String column) {
        Object v = get(column);
        if (v == null) {
            throw new CorpusException("column '" + column + "' is null in " + where());
        }
        if (v instanceof Map || v instanceof Iterable) {
            throw new CorpusException("column '" + column + "' in " + where() + " is not text but " + v.getClass()
                    .getSimpleName() + " " + abbreviate(String.valueOf(v)));
        }
        return v.toString();
    }

    /** Whether the row has a field named {@code column}. */
    public boolean has(String column) {
        return fields.containsKey(column);
    }

    /** The column names, in file order. */
    public Set<String> columns() {
        return fields.keySet();
    }

    /** All fields, in file order (unmodifiable). */
    public Map<String, Object> fields() {
        return fields;
    }

    /** The file the row came from. */
    public Path file() {
        return file;
    }

    /** The row's 0-based index in its file. */
    public long index() {
        return index;
    }

    /** "row 12 of data/train.parquet", for messages. */
    public String where() {
        return "row " + index + " of " + file;
    }

    private CorpusException missing(String column) {
        var near = Names.nearest(column, fields.keySet(), 3);
        return new CorpusException("no column '" + column + "' in " + where() + "; its columns are " + fields.keySet()
                + (near.isEmpty() ? "" : " (nearest: " + near.get(0) + ")"));
    }

    private static String abbreviate(String s) {
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("CorpusRow[").append(index).append("]{");
        String sep = "";
        for (Map.Entry<String, Object> e : fields.entrySet()) {
            b.append(sep).append(e.getKey()).append('=').append(abbreviate(String.valueOf(e.getValue())));
            sep = ", ";
        }
        return b.append('}').toString();
    }
}
