package dev.jlens.zoo.recipes;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Losses;

import java.util.List;

/** Array plumbing shared by the recipes' evaluations. */
final class Evals {
    private Evals() {}

    /** Next-token loss {@code [batch][pos - 1]} of a batch (0 where the target is padding). */
    static float[][] lossPerToken(HookedTransformer model, Batch batch) {
        try (NDScope scope = new NDScope()) {
            return rows(Losses.nextTokenLoss(model.forward(batch), batch));
        }
    }

    /** A 2-D array as rows. */
    static float[][] rows(NDArray a2) {
        int r = (int) a2.getShape().get(0), c = (int) a2.getShape().get(1);
        float[] flat = a2.toFloatArray();
        float[][] out = new float[r][c];
        for (int i = 0; i < r; i++) System.arraycopy(flat, i * c, out[i], 0, c);
        return out;
    }

    /** An attention pattern {@code [batch, head, q, k]} as nested arrays. */
    static float[][][][] pattern(NDArray bhqk) {
        long[] s = bhqk.getShape().getShape();
        int b = (int) s[0], h = (int) s[1], q = (int) s[2], k = (int) s[3];
        float[] flat = bhqk.toFloatArray();
        float[][][][] out = new float[b][h][q][k];
        int i = 0;
        for (int x = 0; x < b; x++) {
            for (int y = 0; y < h; y++) {
                for (int z = 0; z < q; z++) {
                    System.arraycopy(flat, i, out[x][y][z], 0, k);
                    i += k;
                }
            }
        }
        return out;
    }

    /** Seconds since {@code startNanos}. */
    static double since(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    /** One teacher-forced forward pass over examples: next-token losses and the logits at every position. */
    record Run(float[][] loss, float[] logits, int length, int vocab) {
        /** The argmax over the whole vocabulary at position {@code p} of row {@code b}. */
        long argmax(int b, int p) {
            int base = (b * length + p) * vocab, best = 0;
            for (int t = 1; t < vocab; t++) if (logits[base + t] > logits[base + best]) best = t;
            return best;
        }

        /** The softmax over the vocabulary at position {@code p} of row {@code b}. */
        double[] softmax(int b, int p) {
            int base = (b * length + p) * vocab;
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int t = 0; t < vocab; t++) max = Math.max(max, logits[base + t]);
            double[] out = new double[vocab];
            for (int t = 0; t < vocab; t++) sum += out[t] = Math.exp(logits[base + t] - max);
            for (int t = 0; t < vocab; t++) out[t] /= sum;
            return out;
        }
    }

    /** Runs examples right-padded to the longest of them. */
    static Run run(HookedTransformer model, List<? extends dev.jlens.data.Example<?>> examples) {
        Batch batch = Batches.pack(examples);
        try (NDScope scope = new NDScope()) {
            NDArray logits = model.forward(batch);
            float[][] loss = rows(Losses.nextTokenLoss(logits, batch));
            return new Run(loss, logits.toFloatArray(), (int) logits.getShape().get(1),
                    (int) logits.getShape().get(2));
        }
    }
}
