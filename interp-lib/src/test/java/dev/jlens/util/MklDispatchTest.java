package dev.jlens.util;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The matrix products every model runs on, checked against a float64 product on whichever MKL path this process
 * takes: {@code ./lab test} runs the suite with the vendor-check library preloaded where the CPU calls for it (and
 * says so in {@code JLENS_MKL_SHIM_LIB}), so a wrong result on MKL's Intel paths on another vendor's CPU fails here.
 */
class MklDispatchTest {

    @Test
    void theLibraryTheLabPreloadsIsLoaded() {
        String lib = System.getenv("JLENS_MKL_SHIM_LIB");
        String preload = System.getenv().getOrDefault("LD_PRELOAD", "");
        if (lib != null && !lib.isEmpty() && preload.contains(lib)) {
            assertTrue(Files.isRegularFile(Path.of(lib)), "JLENS_MKL_SHIM_LIB names a missing file: " + lib);
            assertTrue(NativeLibs.mklShimLoaded(), "LD_PRELOAD names " + lib + " but this process has not mapped it");
            assertEquals("intel-paths", NativeLibs.mklDispatch());
        } else {
            assertTrue(NativeLibs.mappedLibraries().stream().noneMatch(p -> p.endsWith("/" + NativeLibs.MKL_SHIM)),
                    "the MKL library is mapped although nothing preloaded it");
            assertEquals("vendor-default", NativeLibs.mklDispatch());
        }
    }

    @Test
    void float32MatmulsMatchAFloat64Product() {
        // GPT-2-small shapes: 128 rows through an attention projection, an MLP and a slice of the unembedding.
        int[][] shapes = {{128, 768, 2304}, {128, 3072, 768}, {8, 768, 5000}, {1, 768, 3072}};
        SplittableRandom rng = new SplittableRandom(7);
        try (NDManager m = NDManager.newBaseManager()) {
            for (int[] s : shapes) {
                int n = s[0], k = s[1], p = s[2];
                float[] a = gaussian(rng, n * k), b = gaussian(rng, k * p);
                float[] got = m.create(a, new Shape(n, k)).matMul(m.create(b, new Shape(k, p))).toFloatArray();
                double worst = 0;
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < p; j += 7) {
                        double want = 0;
                        for (int t = 0; t < k; t++) want += (double) a[i * k + t] * b[t * p + j];
                        // outputs have standard deviation sqrt(k); float32 accumulation leaves errors near k * 2^-24
                        worst = Math.max(worst, Math.abs(got[i * p + j] - want) / Math.sqrt(k));
                    }
                }
                assertTrue(worst < 2e-5, "matmul " + n + "x" + k + " @ " + k + "x" + p + " is off a float64 product by "
                        + worst * Math.sqrt(k) + " (" + NativeLibs.mklDispatch() + "), more than float32 rounding explains");
            }
        }
    }

    private static float[] gaussian(SplittableRandom rng, int count) {
        float[] x = new float[count];
        for (int i = 0; i < count; i++) {
            double u = rng.nextDouble(), v = rng.nextDouble();
            x[i] = (float) (Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v));
        }
        return x;
    }
}
