package dev.jlens.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes safetensors files atomically: into a hidden temporary file beside the target, flushed to disk, then renamed
 * over it, so a reader never sees a half-written checkpoint. Tensors are stored in map order as F32, F16 or BF16,
 * narrowed in Java chunk by chunk with round-to-nearest-even; the header is padded to 8 bytes as the reference writer
 * does.
 */
final class SafetensorsWriter {

    private SafetensorsWriter() {}

    /** Writes NDArrays (any float dtype; converted to F32 on their device, then narrowed in Java). */
    static void write(Path file, Map<String, NDArray> tensors, Map<String, String> metadata, DType dtype) {
        Objects.requireNonNull(tensors, "tensors");
        List<Source> sources = new ArrayList<>(tensors.size());
        for (Map.Entry<String, NDArray> t : tensors.entrySet()) {
            NDArray array = t.getValue();
            if (array == null) {
                throw new IllegalArgumentException("tensor '" + t.getKey() + "' is null");
            }
            sources.add(new ArraySource(t.getKey(), array));
        }
        writeSources(file, sources, metadata, dtype);
    }

    /** Writes float arrays with the given shapes, without NDArrays. */
    static void writeFloats(Path file, Map<String, float[]> tensors, Map<String, long[]> shapes,
            Map<String, String> metadata, DType dtype) {
        Objects.requireNonNull(tensors, "tensors");
        Objects.requireNonNull(shapes, "shapes");
        Objects.requireNonNull(dtype, "dtype");
        for (String name : shapes.keySet()) {
            if (!tensors.containsKey(name)) {
                throw new IllegalArgumentException("shapes has '" + name + "', which is not in tensors " + tensors.keySet());
            }
        }
        List<Source> sources = new ArrayList<>(tensors.size());
        for (Map.Entry<String, float[]> t : tensors.entrySet()) {
            String name = t.getKey();
            float[] values = t.getValue();
            long[] shape = shapes.get(name);
            if (values == null || shape == null) {
                throw new IllegalArgumentException("tensor '" + name + "' needs both values and a shape");
            }
            long numel = new TensorInfo(name, dtype, shape).numel(); // validates dims and overflow
            if (numel != values.length) {
                throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape) + " holds "
                        + numel + " values but " + values.length + " were given");
            }
            sources.add(new FloatSource(name, values, shape.clone()));
        }
        writeSources(file, sources, metadata, dtype);
    }

    /** Writes long arrays as I64 with the given shapes. */
    static void writeLongs(Path file, Map<String, long[]> tensors, Map<String, long[]> shapes,
            Map<String, String> metadata) {
        Objects.requireNonNull(tensors, "tensors");
        Objects.requireNonNull(shapes, "shapes");
        for (String name : shapes.keySet()) {
            if (!tensors.containsKey(name)) {
                throw new IllegalArgumentException("shapes has '" + name + "', which is not in tensors " + tensors.keySet());
            }
        }
        List<Source> sources = new ArrayList<>(tensors.size());
        for (Map.Entry<String, long[]> t : tensors.entrySet()) {
            String name = t.getKey();
            long[] values = t.getValue();
            long[] shape = shapes.get(name);
            if (values == null || shape == null) {
                throw new IllegalArgumentException("tensor '" + name + "' needs both values and a shape");
            }
            long numel = new TensorInfo(name, DType.I64, shape).numel();
            if (numel != values.length) {
                throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape) + " holds "
                        + numel + " values but " + values.length + " were given");
            }
            sources.add(new LongSource(name, values, shape.clone()));
        }
        writeAtomically(file, header(sources, metadata == null ? Map.of() : metadata, DType.I64), ch -> {
            ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (Source s : sources) {
                for (long v : ((LongSource) s).values()) {
                    if (!buf.hasRemaining()) {
                        buf.flip();
                        writeFully(ch, buf);
                        buf.clear();
                    }
                    buf.putLong(v);
                }
            }
            buf.flip();
            writeFully(ch, buf);
        }, sources);
    }

    private record LongSource(String name, long[] values, long[] shape) implements Source {
        @Override
        public void copyF32(long first, int count, ByteBuffer out) {
            throw new UnsupportedOperationException("an I64 tensor is written as longs");
        }
    }

    private interface DataWriter {
        void write(FileChannel ch) throws IOException;
    }

    /** One tensor to write: its shape, and its values as F32 chunk by chunk. */
    private interface Source {
        String name();

        long[] shape();

        /** Puts elements [first, first + count) as native-order F32 at out[0..]. */
        void copyF32(long first, int count, ByteBuffer out);

        default void done() {}
    }

    private record FloatSource(String name, float[] values, long[] shape) implements Source {
        @Override
        public void copyF32(long first, int count, ByteBuffer out) {
            out.clear();
            out.asFloatBuffer().put(values, (int) first, count);
        }
    }

    private static final class ArraySource implements Source {
        private final String name;
        private final NDArray array;
        private final long[] shape;
        private NDArray flat; // F32, 1-D, created lazily and closed in done()

        ArraySource(String name, NDArray array) {
            this.name = name;
            this.array = array;
            this.shape = array.getShape().getShape();
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public long[] shape() {
            return shape;
        }

        @Override
        public void copyF32(long first, int count, ByteBuffer out) {
            if (flat == null) {
                NDArray f32 = array.getDataType() == DataType.FLOAT32 ? array : array.toType(DataType.FLOAT32, false);
                flat = f32.reshape(f32.getShape().size());
                if (f32 != array) {
                    f32.close();
                }
            }
            ByteBuffer bytes;
            if (first == 0 && count == flat.getShape().size()) {
                bytes = flat.toByteBuffer();
            } else {
                try (NDArray part = flat.get(new NDIndex().addSliceDim(first, first + count))) {
                    bytes = part.toByteBuffer();
                }
            }
            bytes.order(ByteOrder.nativeOrder()).position(0).limit(count * Float.BYTES);
            out.clear();
            out.put(bytes);
        }

        @Override
        public void done() {
            if (flat != null) {
                flat.close();
                flat = null;
            }
        }
    }

    private static void writeSources(Path file, List<Source> sources, Map<String, String> metadata, DType dtype) {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(dtype, "dtype");
        Map<String, String> meta = metadata == null ? Map.of() : metadata;
        if (!dtype.isWritable()) {
            throw new IllegalArgumentException("cannot write dtype " + dtype + "; valid: F32, F16, BF16");
        }
        byte[] header = header(sources, meta, dtype);
        writeAtomically(file, header, ch -> writeData(ch, sources, dtype), sources);
    }

    private static void writeAtomically(Path file, byte[] header, DataWriter data, List<Source> sources) {
        Objects.requireNonNull(file, "file");
        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        // Written beside the target and renamed over it, so a reader never sees a half-written checkpoint.
        Path tmp = dir.resolve("." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong())
                + ".tmp");
        try {
            Files.createDirectories(dir);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer head = ByteBuffer.allocate(Long.BYTES + header.length).order(ByteOrder.LITTLE_ENDIAN);
                head.putLong(header.length).put(header).flip();
                writeFully(ch, head);
                data.write(ch);
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot write: " + e, e);
        } finally {
            sources.forEach(Source::done);
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // A leftover hidden .tmp file is harmless.
            }
        }
    }

    private static byte[] header(List<Source> sources, Map<String, String> metadata, DType dtype) {
        ObjectNode root = SafetensorsHeader.JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(SafetensorsHeader.METADATA_KEY);
            metadata.forEach((k, v) -> {
                if (k == null || v == null) {
                    throw new IllegalArgumentException("metadata keys and values must be non-null, got " + k + "=" + v);
                }
                meta.put(k, v);
            });
        }
        long offset = 0;
        for (Source s : sources) {
            String name = s.name();
            if (name == null || SafetensorsHeader.METADATA_KEY.equals(name)) {
                throw new IllegalArgumentException("invalid tensor name " + (name == null ? "null" : "'" + name + "'"));
            }
            long[] shape = s.shape();
            TensorInfo info = new TensorInfo(name, dtype, shape);
            ObjectNode t = root.putObject(name);
            t.put("dtype", dtype.name());
            ArrayNode shapeNode = t.putArray("shape");
            for (long d : shape) {
                shapeNode.add(d);
            }
            long end = offset + info.byteSize();
            t.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json;
        try {
            json = SafetensorsHeader.JSON.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialize header", e);
        }
        // Pad with spaces to a multiple of 8 so the data region starts aligned, as the reference writer does.
        int padded = (json.length + 7) & ~7;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    private static void writeData(FileChannel ch, List<Source> sources, DType dtype) throws IOException {
        int chunkElems = Safetensors.DEFAULT_CHUNK_BYTES / Float.BYTES;
        ByteBuffer f32 = null;
        ByteBuffer encoded = null;
        try {
            for (Source s : sources) {
                long n = 1;
                for (long d : s.shape()) {
                    n *= d;
                }
                for (long first = 0; first < n; first += chunkElems) {
                    int count = (int) Math.min(chunkElems, n - first);
                    if (f32 == null) {
                        f32 = ByteBuffer.allocateDirect(chunkElems * Float.BYTES).order(ByteOrder.nativeOrder());
                        encoded = ByteBuffer.allocateDirect(chunkElems * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
                    }
                    s.copyF32(first, count, f32);
                    encoded.clear();
                    FloatCodec.narrow(dtype, f32, encoded, count);
                    encoded.position(0).limit(count * dtype.byteSize());
                    writeFully(ch, encoded);
                }
                s.done();
            }
        } finally {
            DirectBuffers.release(f32);
            DirectBuffers.release(encoded);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer src) throws IOException {
        while (src.hasRemaining()) {
            ch.write(src);
        }
    }
}
