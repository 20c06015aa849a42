package dev.jlens.corpus;

import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;
import org.apache.parquet.schema.Types;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Writes tables of strings, numbers, booleans and lists of strings as parquet (fixtures, small exports). */
final class ParquetWrite {

    private ParquetWrite() {}

    static void write(Path file, List<? extends Map<String, ?>> rows, long rowGroupBytes) {
        if (rows == null || rows.isEmpty()) throw new IllegalArgumentException("writeParquet needs at least one row");
        Map<String, ?> first = rows.get(0);
        Types.MessageTypeBuilder schema = Types.buildMessage();
        for (Map.Entry<String, ?> e : first.entrySet()) {
            Object v = e.getValue();
            String name = e.getKey();
            if (v instanceof String) {
                schema.optional(PrimitiveTypeName.BINARY).as(LogicalTypeAnnotation.stringType()).named(name);
            } else if (v instanceof Integer) {
                schema.optional(PrimitiveTypeName.INT32).named(name);
            } else if (v instanceof Long) {
                schema.optional(PrimitiveTypeName.INT64).named(name);
            } else if (v instanceof Double || v instanceof Float) {
                schema.optional(PrimitiveTypeName.DOUBLE).named(name);
            } else if (v instanceof Boolean) {
                schema.optional(PrimitiveTypeName.BOOLEAN).named(name);
            } else if (v instanceof List<?> list && list.stream().allMatch(x -> x instanceof String)) {
                // Parquet's standard LIST layout, as pyarrow writes a list<string> column
                schema.optionalList().optionalElement(PrimitiveTypeName.BINARY).as(LogicalTypeAnnotation.stringType())
                        .named(name);
            } else {
                throw new IllegalArgumentException("column '" + name + "': cannot write " + (v == null ? "null"
                        : v.getClass().getSimpleName()) + " (first row); strings, int, long, double, boolean and lists of strings only");
            }
        }
        MessageType type = schema.named("row");
        SimpleGroupFactory groups = new SimpleGroupFactory(type);
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(file))
                    .withConf(new PlainParquetConfiguration()).withType(type)
                    .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
                    .withCodecFactory(ParquetCodecs.INSTANCE).withCompressionCodec(CompressionCodecName.SNAPPY)
                    .withRowGroupSize(rowGroupBytes).build()) {
                for (Map<String, ?> row : rows) {
                    Group g = groups.newGroup();
                    for (String name : first.keySet()) {
                        Object v = row.get(name);
                        if (v == null) continue;
                        if (v instanceof String s) g.add(name, s);
                        else if (v instanceof Integer i) g.add(name, i);
                        else if (v instanceof Long l) g.add(name, l);
                        else if (v instanceof Number d) g.add(name, d.doubleValue());
                        else if (v instanceof Boolean b) g.add(name, b);
                        else if (v instanceof List<?> items) {
                            Group list = g.addGroup(name);
                            for (Object item : items) list.addGroup("list").add("element", (String) item);
                        }
                    }
                    w.write(g);
                }
            }
        } catch (IOException e) {
            throw new CorpusException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }
}
