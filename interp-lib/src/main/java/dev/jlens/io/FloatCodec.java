package dev.jlens.io;

import java.nio.ByteBuffer;

/**
 * Converts tensor bytes between a checkpoint's element type and F32, in Java: loads widen F16/BF16/F64 to F32 and
 * saves narrow F32 to F16/BF16, so no 16-bit array ever reaches DJL (a BFLOAT16 NDArray aborts the JVM on the CPU
 * engine). File bytes are little-endian; the F32 side is in the buffer's own order.
 */
final class FloatCodec {

    private FloatCodec() {}

    /** Converts {@code count} little-endian {@code dtype} elements at in[0..] to F32 at out[at..]. */
    static void widen(DType dtype, ByteBuffer in, ByteBuffer out, int at, int count) {
        switch (dtype) {
            case F32 -> {
                if (in.order() == out.order()) {
                    in.position(0).limit(count * Float.BYTES);
                    out.position(at);
                    out.put(in);
                } else {
                    for (int i = 0; i < count; i++) {
                        out.putInt(at + (i << 2), in.getInt(i << 2));
                    }
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    out.putFloat(at + (i << 2), HalfFloats.f16ToF32(in.getShort(i << 1)));
                }
            }
            case BF16 -> {
                // bits << 16 as an int store keeps every bit pattern, NaN payloads included.
                for (int i = 0; i < count; i++) {
                    out.putInt(at + (i << 2), (in.getShort(i << 1) & 0xFFFF) << 16);
                }
            }
            case F64 -> {
                for (int i = 0; i < count; i++) {
                    out.putFloat(at + (i << 2), (float) in.getDouble(i << 3));
                }
            }
            default -> throw new IllegalStateException("not a float dtype: " + dtype);
        }
    }

    /** Encodes {@code count} F32 values at in[0..] as little-endian {@code dtype} at out[0..], rounding to nearest even. */
    static void narrow(DType dtype, ByteBuffer in, ByteBuffer out, int count) {
        switch (dtype) {
            case F32 -> {
                for (int i = 0; i < count; i++) {
                    out.putInt(i << 2, in.getInt(i << 2));
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    out.putShort(i << 1, HalfFloats.f32ToF16(in.getFloat(i << 2)));
                }
            }
            case BF16 -> {
                for (int i = 0; i < count; i++) {
                    out.putShort(i << 1, HalfFloats.f32ToBf16(in.getFloat(i << 2)));
                }
            }
            default -> throw new IllegalStateException("not a writable dtype: " + dtype);
        }
    }
}
