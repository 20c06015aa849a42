package dev.jlens.corpus;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVParser;
import org.apache.commons.csv.CSVRecord;
import org.apache.parquet.ParquetReadOptions;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.api.ReadSupport;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.zip.GZIPInputStream;

/** Rows of one file, read as they are asked for; closing releases the file. */
abstract class RowReader implements Iterator<CorpusRow>, AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    protected final Path file;
    protected long index;
    private CorpusRow next;
    private boolean done;

    RowReader(Path file) {
        this.file = file;
    }

    /** Opens {@code file}; {@code column}, if present, is the one column the caller needs (parquet reads only it). */
    static RowReader open(Path file, Format format, Optional<String> column) {
        try {
            return switch (format) {
                case PARQUET -> new ParquetRows(file, column);
                case JSONL -> new JsonRows(file);
                case CSV -> new CsvRows(file);
                case TEXT -> new LineRows(file);
                case TEXT_FILE -> new WholeFile(file);
            };
        } catch (IOException e) {
            throw new CorpusException("cannot read " + file + " as " + format + ": " + e.getMessage(), e);
        }
    }

    /** The next row's fields, or null at the end of the file. */
    protected abstract Map<String, Object> read() throws IOException;

    @Override
    public final boolean hasNext() {
        if (next == null && !done) {
            Map<String, Object> fields;
            try {
                fields = read();
            } catch (IOException | RuntimeException e) {
                if (e instanceof CorpusException c) throw c;
                throw new CorpusException("cannot read row " + index + " of " + file + ": " + e.getMessage(), e);
            }
            if (fields == null) {
                done = true;
            } else {
                next = new CorpusRow(fields, file, index++);
            }
        }
        return next != null;
    }

    @Override
    public final CorpusRow next() {
        if (!hasNext()) throw new NoSuchElementException("no more rows in " + file);
        CorpusRow r = next;
        next = null;
        return r;
    }

    @Override
    public abstract void close();

    static InputStream input(Path file) throws IOException {
        InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
        return file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gz") ? new GZIPInputStream(in, 1 << 16) : in;
    }

    static BufferedReader text(Path file) throws IOException {
        return new BufferedReader(new InputStreamReader(input(file), StandardCharsets.UTF_8), 1 << 16);
    }

    static void closeQuietly(AutoCloseable c) {
        try {
            if (c != null) c.close();
        } catch (Exception ignored) {
            // nothing left to read from it
        }
    }

    // ------------------------------------------------------------------------------------------------- parquet

    /** Parquet through parquet-hadoop's example Group records: one row group in memory at a time. */
    private static final class ParquetRows extends RowReader {
        private final ParquetReader<Group> reader;

        ParquetRows(Path file, Optional<String> column) throws IOException {
            super(file);
            LocalInputFile input = new LocalInputFile(file);
            PlainParquetConfiguration conf = new PlainParquetConfiguration();
            if (column.isPresent()) {
                MessageType schema;
                try (ParquetFileReader footer = ParquetFileReader.open(input,
                        ParquetReadOptions.builder(new PlainParquetConfiguration()).withCodecFactory(ParquetCodecs.INSTANCE).build())) {
                    schema = footer.getFileMetaData().getSchema();
                }
                if (!schema.containsField(column.get())) {
                    List<String> names = schema.getFields().stream().map(Type::getName).toList();
                    throw new CorpusException("no column '" + column.get() + "' in " + file + "; its columns are " + names
                            + nearest(column.get(), names));
                }
                // Read only the column asked for: the others are never decompressed.
                conf.set(ReadSupport.PARQUET_READ_SCHEMA,
                        new MessageType(schema.getName(), schema.getType(column.get())).toString());
            }
            reader = new GroupBuilder(input, conf).withCodecFactory(ParquetCodecs.INSTANCE).build();
        }

        @Override
        protected Map<String, Object> read() throws IOException {
            Group g = reader.read();
            return g == null ? null : fields(g);
        }

        @Override
        public void close() {
            closeQuietly(reader);
        }

        private static Map<String, Object> fields(Group g) {
            GroupType type = g.getType();
            Map<String, Object> out = new LinkedHashMap<>();
            for (int f = 0; f < type.getFieldCount(); f++) {
                Type t = type.getType(f);
                int n = g.getFieldRepetitionCount(f);
                if (t.isRepetition(Type.Repetition.REPEATED)) {
                    List<Object> list = new ArrayList<>(n);
                    for (int i = 0; i < n; i++) list.add(value(g, f, i, t));
                    out.put(t.getName(), list);
                } else {
                    out.put(t.getName(), n == 0 ? null : value(g, f, 0, t));
                }
            }
            return out;
        }

        private static Object value(Group g, int field, int i, Type t) {
            if (!t.isPrimitive()) {
                Group inner = g.getGroup(field, i);
                Map<String, Object> m = fields(inner);
                // Parquet's LIST layout (a group of repeated "list" groups of one "element") reads as a Java list.
                if (t.getLogicalTypeAnnotation() instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation && m.size() == 1) {
                    Object only = m.values().iterator().next();
                    if (only instanceof List<?> items) {
                        List<Object> out = new ArrayList<>(items.size());
                        for (Object item : items) {
                            out.add(item instanceof Map<?, ?> e && e.size() == 1 ? e.values().iterator().next() : item);
                        }
                        return out;
                    }
                }
                return m;
            }
            PrimitiveType p = t.asPrimitiveType();
            return switch (p.getPrimitiveTypeName()) {
                case BINARY, FIXED_LEN_BYTE_ARRAY -> {
                    LogicalTypeAnnotation a = p.getLogicalTypeAnnotation();
                    boolean text = a instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation
                            || a instanceof LogicalTypeAnnotation.EnumLogicalTypeAnnotation
                            || a instanceof LogicalTypeAnnotation.JsonLogicalTypeAnnotation;
                    yield text ? g.getString(field, i) : g.getBinary(field, i).getBytes();
                }
                case INT32 -> g.getInteger(field, i);
                case INT64 -> g.getLong(field, i);
                case FLOAT -> g.getFloat(field, i);
                case DOUBLE -> g.getDouble(field, i);
                case BOOLEAN -> g.getBoolean(field, i);
                case INT96 -> g.getInt96(field, i).getBytes();
            };
        }

        private static final class GroupBuilder extends ParquetReader.Builder<Group> {
            GroupBuilder(LocalInputFile file, PlainParquetConfiguration conf) {
                super(file, conf);
            }

            @Override
            protected ReadSupport<Group> getReadSupport() {
                return new GroupReadSupport();
            }
        }
    }

    static String nearest(String column, List<String> names) {
        List<String> near = dev.jlens.util.Names.nearest(column, names, 1);
        return near.isEmpty() ? "" : " (nearest: " + near.get(0) + ")";
    }

    // --------------------------------------------------------------------------------------------------- JSON

    /** JSON Lines (one object per line), or a file holding one JSON array of objects, parsed as a stream. */
    private static final class JsonRows extends RowReader {
        private final BufferedReader lines;
        private final JsonParser array;
        private long line;

        JsonRows(Path file) throws IOException {
            super(file);
            BufferedReader in = text(file);
            in.mark(1 << 12);
            int c;
            do {
                c = in.read();
            } while (c != -1 && Character.isWhitespace(c));
            in.reset();
            if (c == '[') {
                lines = null;
                array = JSON.getFactory().createParser(in);
                array.nextToken(); // START_ARRAY
            } else {
                lines = in;
                array = null;
            }
        }

        @Override
        @SuppressWarnings("unchecked")
        protected Map<String, Object> read() throws IOException {
            if (array != null) {
                JsonToken t = array.nextToken();
                if (t == null || t == JsonToken.END_ARRAY) return null;
                if (t != JsonToken.START_OBJECT) {
                    throw new CorpusException("element " + index + " of the JSON array in " + file + " is not an object");
                }
                return JSON.readValue(array, LinkedHashMap.class);
            }
            String s;
            do {
                s = lines.readLine();
                line++;
                if (s == null) return null;
            } while (s.isBlank());
            try {
                Object v = JSON.readValue(s, Object.class);
                if (!(v instanceof Map)) {
                    throw new CorpusException("line " + line + " of " + file + " (row " + index + ") is not a JSON object");
                }
                return (Map<String, Object>) v;
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new CorpusException("line " + line + " of " + file + " (row " + index + ") is not valid JSON: "
                        + e.getOriginalMessage(), e);
            }
        }

        @Override
        public void close() {
            closeQuietly(lines);
            closeQuietly(array);
        }
    }

    // ---------------------------------------------------------------------------------------------------- CSV

    /** CSV (or TSV) whose first record names the columns. */
    private static final class CsvRows extends RowReader {
        private final CSVParser parser;
        private final Iterator<CSVRecord> records;
        private final List<String> header;

        CsvRows(Path file) throws IOException {
            super(file);
            String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
            CSVFormat base = name.endsWith(".tsv") || name.endsWith(".tsv.gz") ? CSVFormat.TDF : CSVFormat.RFC4180;
            Reader in = text(file);
            parser = CSVParser.builder().setReader(in)
                    .setFormat(base.builder().setHeader().setSkipHeaderRecord(true).get()).get();
            records = parser.iterator();
            header = parser.getHeaderNames();
        }

        @Override
        protected Map<String, Object> read() {
            if (!records.hasNext()) return null;
            CSVRecord r = records.next();
            Map<String, Object> out = new LinkedHashMap<>();
            for (int i = 0; i < header.size(); i++) out.put(header.get(i), i < r.size() ? r.get(i) : null);
            return out;
        }

        @Override
        public void close() {
            closeQuietly(parser);
        }
    }

    // --------------------------------------------------------------------------------------------------- text

    /** One document per non-empty line. */
    private static final class LineRows extends RowReader {
        private final BufferedReader in;

        LineRows(Path file) throws IOException {
            super(file);
            in = text(file);
        }

        @Override
        protected Map<String, Object> read() throws IOException {
            String s;
            do {
                s = in.readLine();
                if (s == null) return null;
            } while (s.isBlank());
            Map<String, Object> out = new LinkedHashMap<>();
            out.put(Corpus.TEXT, s);
            return out;
        }

        @Override
        public void close() {
            closeQuietly(in);
        }
    }

    /** The whole file as one document. */
    private static final class WholeFile extends RowReader {
        private boolean read;

        WholeFile(Path file) {
            super(file);
        }

        @Override
        protected Map<String, Object> read() throws IOException {
            if (read) return null;
            read = true;
            try (InputStream in = input(file)) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put(Corpus.TEXT, new String(in.readAllBytes(), StandardCharsets.UTF_8));
                return out;
            }
        }

        @Override
        public void close() {}
    }
}
