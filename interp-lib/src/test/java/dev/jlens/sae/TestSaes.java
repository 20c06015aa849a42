package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.util.Tensors;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/** Dictionaries with given weights and random test data. */
final class TestSaes {
    private TestSaes() {}

    /** A dictionary over explicit weights ({@code threshold} may be null). */
    static SparseCoder of(SaeConfig cfg, float[] wEnc, float[] bEnc, float[] wDec, float[] bDec, float[] threshold) {
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put(SaeWeights.W_ENC, Tensors.owned(m.create(wEnc, new Shape(cfg.dIn(), cfg.dSae()))));
            t.put(SaeWeights.B_ENC, Tensors.owned(m.create(bEnc)));
            t.put(SaeWeights.W_DEC, Tensors.owned(m.create(wDec, new Shape(cfg.dSae(), cfg.dIn()))));
            t.put(SaeWeights.B_DEC, Tensors.owned(m.create(bDec)));
            if (threshold != null) t.put(SaeWeights.THRESHOLD, Tensors.owned(m.create(threshold)));
            return SparseCoder.wrap(cfg, new SaeWeights(cfg, t));
        }
    }

    static float[] uniform(int n, double lo, double hi, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) out[i] = (float) (lo + (hi - lo) * r.nextDouble());
        return out;
    }

    static float[] identity(int n) {
        float[] out = new float[n * n];
        for (int i = 0; i < n; i++) out[i * n + i] = 1f;
        return out;
    }

    static float[] get(SparseCoder sae, String name) {
        return sae.weights().get(name).toFloatArray();
    }
}
