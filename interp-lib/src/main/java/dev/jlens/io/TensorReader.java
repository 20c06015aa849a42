package dev.jlens.io;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.io.SafetensorsHeader.Entry;
import dev.jlens.io.SafetensorsHeader.Shard;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Reads tensors of open safetensors shards as F32, chunk by chunk. On the CPU a tensor goes straight into the memory
 * of the NDArray returned (DJL exposes it as a direct buffer), widening F16/BF16/F64 from one reused chunk buffer, so a
 * load costs the F32 result plus at most one chunk; on other devices each chunk is wrapped and copied in natively.
 * Nothing stays mapped. Reads are serialized; {@link #close()} closes the shards' files.
 */
final class TensorReader implements AutoCloseable {

    static final int MAX_JAVA_ARRAY = Integer.MAX_VALUE - 8;
    private static final boolean LITTLE_ENDIAN_HOST = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    private static volatile Boolean viewsWriteThrough;

    private final Path source;
    private final List<Shard> shards;
    private final Safetensors.ReadMode mode;
    private final int chunkBytes;
    private final boolean writeIntoViews;

    private final Object lock = new Object();
    private ByteBuffer raw; // file bytes of one chunk (CHANNEL mode)
    private ByteBuffer f32; // one chunk widened to native-order F32 (loadFloats and the copy fallback)
    private boolean closed;

    TensorReader(Path source, List<Shard> shards, Safetensors.ReadMode mode, int chunkBytes, boolean writeIntoViews) {
        this.source = source;
        this.shards = List.copyOf(shards);
        this.mode = mode;
        this.chunkBytes = chunkBytes;
        this.writeIntoViews = writeIntoViews;
    }

    int shardCount() {
        return shards.size();
    }

    /** The tensor as a FLOAT32 array on the manager's device. */
    NDArray load(Entry e, NDManager manager) {
        long n = e.info().numel();
        synchronized (lock) {
            ensureOpen();
            NDArray out = manager.create(e.info().djlShape(), DataType.FLOAT32);
            try {
                Optional<ByteBuffer> view = writeIntoViews && n > 0 && n <= MAX_JAVA_ARRAY / Float.BYTES
                        ? writableView(out) : Optional.empty();
                if (view.isPresent()) {
                    fillView(e, view.get());
                } else if (n > 0) {
                    fillByCopies(e, out, manager);
                }
            } catch (RuntimeException | Error ex) {
                out.close();
                throw ex;
            }
            return out;
        }
    }

    /** The tensor in a Java array; the caller has checked that it fits one. */
    float[] loadFloats(Entry e) {
        long n = e.info().numel();
        float[] out = new float[(int) n];
        synchronized (lock) {
            ensureOpen();
            for (long first = 0; first < n; first += chunkElems(e)) {
                int count = (int) Math.min(chunkElems(e), n - first);
                fillF32(e, first, count).asFloatBuffer().get(out, (int) first, count);
            }
        }
        return out;
    }

    /** An I64 or I32 tensor widened to a Java long array; the caller has checked the dtype and that it fits. */
    long[] loadLongs(Entry e) {
        int n = (int) e.info().numel();
        int size = e.info().dtype().byteSize();
        long[] out = new long[n];
        synchronized (lock) {
            ensureOpen();
            ByteBuffer buf = ByteBuffer.allocate(Math.max(size, Math.min(n, chunkBytes / size) * size))
                    .order(ByteOrder.LITTLE_ENDIAN);
            int perChunk = buf.capacity() / size;
            for (int first = 0; first < n; first += perChunk) {
                int count = Math.min(perChunk, n - first);
                buf.clear().limit(count * size);
                SafetensorsHeader.readFully(e.shard().channel(), buf, e.start() + (long) first * size, e.shard().file());
                buf.flip();
                for (int i = 0; i < count; i++) out[first + i] = size == Long.BYTES ? buf.getLong() : buf.getInt();
            }
        }
        return out;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("Safetensors(" + source + ") is closed");
        }
    }

    /** Elements per chunk: the raw bytes of one chunk fit the chunk size. */
    private int chunkElems(Entry e) {
        return Math.max(1, chunkBytes / Math.max(Float.BYTES, e.info().dtype().byteSize()));
    }

    /**
     * A direct buffer over the NDArray's own memory, if Java can write it. On DJL's PyTorch CPU engine
     * {@code toByteBuffer(true)} wraps the tensor's data pointer, so the file is read straight into the result
     * (one copy, no staging, no native op per chunk). Elsewhere (GPU, other engines) it may return a copy, so the
     * write-through is probed once per JVM and the chunked-copy path is used when it does not hold.
     */
    private static Optional<ByteBuffer> writableView(NDArray out) {
        if (!Device.cpu().equals(out.getDevice()) || !viewsWriteThrough(out.getManager())) {
            return Optional.empty();
        }
        ByteBuffer view = out.toByteBuffer(true);
        long bytes = out.size() * Float.BYTES;
        if (!view.isDirect() || view.isReadOnly() || view.capacity() != bytes) {
            return Optional.empty();
        }
        return Optional.of(view.order(ByteOrder.nativeOrder()));
    }

    private static boolean viewsWriteThrough(NDManager manager) {
        Boolean known = viewsWriteThrough;
        if (known == null) {
            boolean works;
            try (NDArray probe = manager.create(new Shape(2), DataType.FLOAT32)) {
                ByteBuffer view = probe.toByteBuffer(true);
                if (view.isDirect() && !view.isReadOnly() && view.capacity() == 8) {
                    view.order(ByteOrder.nativeOrder()).putFloat(0, 1.25f).putFloat(4, -3.5f);
                    float[] back = probe.toFloatArray();
                    works = back[0] == 1.25f && back[1] == -3.5f;
                } else {
                    works = false;
                }
            } catch (RuntimeException ex) {
                works = false;
            }
            viewsWriteThrough = works;
            known = works;
        }
        return known;
    }

    /** Fills a writable view of the result (native-order F32) with the whole tensor. */
    private void fillView(Entry e, ByteBuffer view) {
        DType dtype = e.info().dtype();
        long n = e.info().numel();
        if (mode == Safetensors.ReadMode.CHANNEL && dtype == DType.F32 && LITTLE_ENDIAN_HOST) {
            view.clear();
            SafetensorsHeader.readFully(e.shard().channel(), view, e.start(), e.shard().file());
            return;
        }
        int step = chunkElems(e);
        for (long first = 0; first < n; first += step) {
            int count = (int) Math.min(step, n - first);
            int at = (int) first * Float.BYTES;
            withRawBytes(e, first, count, raw -> FloatCodec.widen(dtype, raw, view, at, count));
        }
    }

    /** Fallback for devices whose memory Java cannot write: wrap each F32 chunk and copy it in natively. */
    private void fillByCopies(Entry e, NDArray out, NDManager manager) {
        long n = e.info().numel();
        // DJL's create(ByteBuffer) wraps the buffer without copying on CPU (torch::from_blob) and copies on a GPU;
        // either way the set() below copies it into the result, after which the staging buffer is reused.
        try (NDArray flat = out.reshape(n)) {
            int step = chunkElems(e);
            for (long first = 0; first < n; first += step) {
                int count = (int) Math.min(step, n - first);
                ByteBuffer chunk = fillF32(e, first, count);
                try (NDArray part = manager.create(chunk, new Shape(count), DataType.FLOAT32)) {
                    flat.set(new NDIndex().addSliceDim(first, first + count), part);
                }
            }
        }
    }

    /** Reads elements [first, first + count) of a tensor as native-order F32 into the F32 staging buffer. */
    private ByteBuffer fillF32(Entry e, long first, int count) {
        ByteBuffer out = f32Staging(count);
        withRawBytes(e, first, count, raw -> FloatCodec.widen(e.info().dtype(), raw, out, 0, count));
        out.position(0).limit(count * Float.BYTES);
        return out;
    }

    /** Hands the little-endian file bytes of elements [first, first + count) to {@code use}, then releases them. */
    private void withRawBytes(Entry e, long first, int count, Consumer<ByteBuffer> use) {
        int width = e.info().dtype().byteSize();
        long position = e.start() + first * width;
        int bytes = count * width;
        Path file = e.shard().file();
        if (mode == Safetensors.ReadMode.MMAP) {
            MappedByteBuffer mapped;
            try {
                mapped = e.shard().channel().map(FileChannel.MapMode.READ_ONLY, position, bytes);
            } catch (IOException ex) {
                throw new CheckpointException(file, "cannot map tensor '" + e.info().name() + "': " + ex, ex);
            }
            try {
                mapped.order(ByteOrder.LITTLE_ENDIAN);
                use.accept(mapped);
            } catch (InternalError ex) {
                // The JVM turns a fault on a mapping (file truncated after opening) into InternalError.
                throw new CheckpointException(file, "file changed while reading tensor '" + e.info().name() + "'", ex);
            } finally {
                DirectBuffers.release(mapped);
            }
        } else {
            ByteBuffer staging = rawStaging(bytes);
            SafetensorsHeader.readFully(e.shard().channel(), staging, position, file);
            staging.position(0);
            use.accept(staging);
        }
    }

    private ByteBuffer f32Staging(int count) {
        int bytes = count * Float.BYTES;
        if (f32 == null || f32.capacity() < bytes) {
            DirectBuffers.release(f32);
            f32 = null;
            f32 = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
        }
        f32.clear();
        return f32;
    }

    private ByteBuffer rawStaging(int bytes) {
        if (raw == null || raw.capacity() < bytes) {
            DirectBuffers.release(raw);
            raw = null;
            raw = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }
        raw.clear().limit(bytes);
        return raw;
    }

    /** Closes the files and frees the staging buffers; never throws. */
    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            shards.forEach(s -> SafetensorsHeader.closeQuietly(s.channel()));
            DirectBuffers.release(raw);
            DirectBuffers.release(f32);
            raw = null;
            f32 = null;
        }
    }
}
