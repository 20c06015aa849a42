package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/** Deterministic parameter initialisation, independent of the engine's random state. */
final class Params {
    private Params() {}

    /** Normal(0, std) values; the stream depends only on {@code seed} and {@code name}. */
    static NDArray normal(NDManager m, long seed, String name, double std, long... shape) {
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ name.hashCode());
        long n = new Shape(shape).size();
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.toIntExact(n * 4)).order(ByteOrder.nativeOrder());
        for (long i = 0; i < n; i += 2) {
            // Box-Muller: two normals per pair of uniforms.
            double u1 = 1.0 - rnd.nextDouble(), u2 = rnd.nextDouble();
            double r = Math.sqrt(-2.0 * Math.log(u1));
            buf.putFloat((float) (std * r * Math.cos(2 * Math.PI * u2)));
            if (i + 1 < n) buf.putFloat((float) (std * r * Math.sin(2 * Math.PI * u2)));
        }
        buf.flip();
        return m.create(buf, new Shape(shape), DataType.FLOAT32);
    }
}
