package dev.jlens.sae.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;

import java.util.Arrays;

/** Latent activations of Java rows and the decoder in raw units, the two things every evaluation here reads. */
final class Latents {
    private static final int CHUNK = 4096;

    private Latents() {}

    /** {@code sae.encode} of each row {@code [n][dIn]} (raw activations), as Java rows {@code [n][dSae]}. */
    static float[][] encode(SparseCoder sae, float[][] rows) {
        int dIn = sae.cfg().dIn(), dSae = sae.cfg().dSae();
        if (rows.length > 0 && rows[0].length != dIn) {
            throw new IllegalArgumentException("rows have " + rows[0].length + " values; the dictionary reads " + dIn);
        }
        float[][] out = new float[rows.length][];
        for (int start = 0; start < rows.length; start += CHUNK) {
            int n = Math.min(CHUNK, rows.length - start);
            float[] flat = new float[n * dIn];
            for (int i = 0; i < n; i++) System.arraycopy(rows[start + i], 0, flat, i * dIn, dIn);
            try (NDManager m = NDManager.newBaseManager()) {
                NDArray x = m.create(flat, new Shape(n, dIn));
                NDArray f = sae.encode(x);
                float[] fs = f.toType(DataType.FLOAT32, false).toFloatArray();
                f.close();
                for (int i = 0; i < n; i++) out[start + i] = Arrays.copyOfRange(fs, i * dSae, (i + 1) * dSae);
            }
        }
        return out;
    }

    /**
     * Decoder rows {@code [dSae][dIn]} in raw units ({@code W_dec / inputScale}): latent {@code i} firing at {@code f}
     * adds {@code f * row[i]} to the reconstruction of a raw activation.
     */
    static float[][] decoderRows(SparseCoder sae) {
        int dIn = sae.cfg().dIn(), dSae = sae.cfg().dSae();
        float[] w = sae.weights().get(SaeWeights.W_DEC).toType(DataType.FLOAT32, false).toFloatArray();
        float s = (float) sae.cfg().inputScale();
        float[][] out = new float[dSae][];
        for (int i = 0; i < dSae; i++) {
            out[i] = Arrays.copyOfRange(w, i * dIn, (i + 1) * dIn);
            if (s != 1f) for (int j = 0; j < dIn; j++) out[i][j] /= s;
        }
        return out;
    }

    /** {@code b_dec} in raw units. */
    static float[] decoderBias(SparseCoder sae) {
        float[] b = sae.weights().get(SaeWeights.B_DEC).toType(DataType.FLOAT32, false).toFloatArray();
        float s = (float) sae.cfg().inputScale();
        if (s != 1f) for (int j = 0; j < b.length; j++) b[j] /= s;
        return b;
    }

    /** The columns {@code cols} of each row. */
    static float[][] columns(float[][] rows, int[] cols) {
        float[][] out = new float[rows.length][cols.length];
        for (int i = 0; i < rows.length; i++) for (int c = 0; c < cols.length; c++) out[i][c] = rows[i][cols[c]];
        return out;
    }

    /**
     * Column indices ranked by the difference of class means, {@code mean(label 1) - mean(label 0)}: the largest
     * first, by absolute value when {@code absolute} (SAEBench's sparse probing) or signed (latents that fire on the
     * concept, for absorption). Ties go to the lower index.
     */
    static int[] rankByMeanDifference(float[][] rows, int[] labels, boolean absolute) {
        int d = rows[0].length;
        double[] s1 = new double[d], s0 = new double[d];
        int n1 = 0, n0 = 0;
        for (int i = 0; i < rows.length; i++) {
            double[] s = labels[i] == 1 ? s1 : s0;
            if (labels[i] == 1) n1++;
            else n0++;
            for (int j = 0; j < d; j++) s[j] += rows[i][j];
        }
        if (n1 == 0 || n0 == 0) throw new IllegalArgumentException("ranking by mean difference needs both classes");
        double[] diff = new double[d];
        for (int j = 0; j < d; j++) {
            diff[j] = s1[j] / n1 - s0[j] / n0;
            if (absolute) diff[j] = Math.abs(diff[j]);
        }
        Integer[] idx = new Integer[d];
        for (int j = 0; j < d; j++) idx[j] = j;
        Arrays.sort(idx, (a, b) -> Double.compare(diff[b], diff[a]));
        return Arrays.stream(idx).mapToInt(Integer::intValue).toArray();
    }
}
