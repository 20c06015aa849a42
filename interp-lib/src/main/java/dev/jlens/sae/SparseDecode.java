package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import dev.jlens.util.Tensors;

import java.util.Objects;

/**
 * Decoding from the {@code k} active latents only: {@code recon[b] = sum_j values[b, j] * W_dec[indices[b, j]] + b_dec},
 * without the dense {@code [B, dSae]} latent matrix and its {@code B x dSae x dIn} matmul.
 *
 * <p>Measured on a 2-core CPU (d_in 512, d_sae 16384, batch 4096, k 32, one thread): a sparse COO matrix times
 * {@code W_dec} ~45 ms; gathering the rows ({@code embedding}) in chunks of 256 tokens and a batched matmul ~120 ms
 * (unchunked: ~1.1 s, its {@code [B, k, dIn]} intermediate is 268 MB of fresh pages); dense scatter + matmul ~2.5 s.
 * {@link #decode} therefore uses the COO product. The training helper {@link #backwardTopK} uses gathers with sparse
 * gradients (they are differentiable) in chunks small enough that no intermediate exceeds glibc's 32 MB mmap
 * threshold: larger blocks are mapped fresh on every allocation, and first-touch page faults dominate on virtual
 * machines (a fresh 268 MB zeros took ~1 s here, zeroing it in place 11 ms). At d_in 512, d_sae 8192, batch 4096,
 * k 32 (one thread) it takes ~1.0 s where the dense TopK forward and backward take ~5 s; the encoder matmul alone,
 * which any TopK step needs, ~0.75 s.
 */
public final class SparseDecode {
    /** Tokens per chunk in {@link #backwardTopK}: its largest intermediate, {@code [256, k, dIn]}, stays small. */
    public static final int DEFAULT_CHUNK = 256;

    private SparseDecode() {}

    /** The {@code k} largest (ReLU'd) pre-activations of a token and their latent indices, each {@code [..., k]}. */
    public record Active(NDArray values, NDArray indices) {
        public Active {
            Objects.requireNonNull(values, "values");
            Objects.requireNonNull(indices, "indices");
            if (!values.getShape().equals(indices.getShape())) {
                throw new IllegalArgumentException("values " + values.getShape() + " and indices " + indices.getShape()
                        + " must have the same shape [..., k]");
            }
        }
    }

    /**
     * The active latents of raw activations {@code x [..., dIn]} under a TopK dictionary's inference rule (normalised
     * units, like {@link SparseCoder#encode}); the dense latents are never built.
     */
    public static Active topK(SparseCoder sae, NDArray x) {
        if (!(sae.cfg().kind() instanceof SaeConfig.TopK t)) {
            throw new IllegalArgumentException("topK needs a TopK dictionary, got " + sae.cfg().kind().architecture()
                    + "; use sae.encode(x) for other architectures");
        }
        NDArray pre = sae.weights().preActs(Losses.scaled(x, sae.cfg()), sae.cfg().applyBDecToInput());
        NDList tk = pre.topK(t.k(), -1, true, false);
        return new Active(Activation.relu(tk.get(0)), tk.get(1));
    }

    /** {@code values @ W_dec[indices] + b_dec} for a dictionary's weights: {@code [..., dIn]} (normalised units). */
    public static NDArray decode(SaeWeights w, Active active) {
        return decode(active.values(), active.indices(), w.get(SaeWeights.W_DEC), w.get(SaeWeights.B_DEC));
    }

    /**
     * {@code recon[..., :] = sum_j valuesBK[..., j] * wDecFD[indicesBK[..., j], :] + bDec}: {@code [..., dIn]}.
     * {@code bDec} may be null (no bias).
     */
    public static NDArray decode(NDArray valuesBK, NDArray indicesBK, NDArray wDecFD, NDArray bDec) {
        Shape s = valuesBK.getShape();
        if (!s.equals(indicesBK.getShape()) || s.dimension() < 1) {
            throw new IllegalArgumentException("values " + s + " and indices " + indicesBK.getShape()
                    + " must have the same shape [..., k]");
        }
        if (wDecFD.getShape().dimension() != 2) {
            throw new IllegalArgumentException("W_dec must be [dSae, dIn], got " + wDecFD.getShape());
        }
        long dSae = wDecFD.getShape().get(0), dIn = wDecFD.getShape().get(1);
        long k = s.get(s.dimension() - 1), rows = s.size() / Math.max(k, 1);
        NDArray rowIdx = valuesBK.getManager().arange(0, (int) rows, 1, DataType.INT64).reshape(rows, 1)
                .repeat(1, k).reshape(1, rows * k);
        NDArray ind = rowIdx.concat(indicesBK.reshape(1, rows * k).toType(DataType.INT64, false), 0);   // [2, nnz]
        NDArray vals = valuesBK.reshape(rows * k);
        if (vals.getDataType() != wDecFD.getDataType()) vals = vals.toType(wDecFD.getDataType(), false);
        NDArray sparse = JniUtils.createSparseCoo((PtNDArray) ind, (PtNDArray) vals, new Shape(rows, dSae));
        NDArray out = sparse.matMul(wDecFD);
        sparse.close();
        if (bDec != null) out = out.add(bDec);
        return out.reshape(s.slice(0, s.dimension() - 1).add(dIn));
    }

    /**
     * The training forward and backward of a TopK dictionary on normalised activations {@code xBD} without any dense
     * {@code [B, dSae]} tensor on the gradient path: per chunk of {@code chunkRows} tokens, the top-k latents are
     * chosen from the pre-activations computed without gradient, then their activations are recomputed from the
     * gathered encoder columns and decoded from the gathered decoder rows, so the backward touches only the active
     * latents' rows (sparse gradients). The gradients (of {@code sum_d (x - recon)^2}, mean over tokens: {@link TopKSae}'s MSE; no AuxK)
     * are accumulated into the weights through {@code gc}; returns the loss. Call it inside the caller's
     * {@code NDScope} and open {@code GradientCollector}, with the weights requiring gradients.
     */
    public static float backwardTopK(SparseCoder sae, NDArray xBD, GradientCollector gc, int chunkRows) {
        return trainTopK(sae, xBD, gc, chunkRows).loss();
    }

    /**
     * What {@link #trainTopK} measured: the loss minimised (the MSE term, plus the weighted AuxK term when it applied),
     * its MSE term, and how many tokens each latent fired on.
     */
    public record TopKStep(float loss, float mse, float[] fired) {}

    /**
     * {@link #backwardTopK}, also counting each latent's firings (activation > 0) over the batch: the trainer's fast
     * path for TopK dictionaries when no latent is dead.
     */
    public static TopKStep trainTopK(SparseCoder sae, NDArray xBD, GradientCollector gc, int chunkRows) {
        return trainTopK(sae, xBD, gc, chunkRows, null);
    }

    /**
     * The trainer's sparse TopK step with AuxK (Gao et al. 2024) when {@code deadMask} (boolean {@code [dSae]}) marks
     * dead latents and the dictionary's {@code auxK > 0}: the same loss and gradients as {@link TopKSae#trainForward}
     * (MSE plus {@code auxKCoefficient} times the AuxK term) without a dense {@code [B, dSae]} tensor on the gradient
     * path. The {@code auxK} largest pre-activations among dead latents are chosen per token alongside the top k, from
     * the same pre-activations computed without gradient; once every chunk's reconstruction error is known (its
     * variance over the batch normalises AuxK), a second pass recomputes those latents' activations from the gathered
     * encoder columns and reconstructs the detached error from their gathered decoder rows. {@code deadMask} null, or
     * nothing dead, is {@link #trainTopK(SparseCoder, NDArray, GradientCollector, int)}.
     */
    public static TopKStep trainTopK(SparseCoder sae, NDArray xBD, GradientCollector gc, int chunkRows,
                                     NDArray deadMask) {
        if (!(sae.cfg().kind() instanceof SaeConfig.TopK t)) {
            throw new IllegalArgumentException("backwardTopK needs a TopK dictionary, got "
                    + sae.cfg().kind().architecture());
        }
        if (chunkRows < 1) throw new IllegalArgumentException("chunkRows must be positive, got " + chunkRows);
        SaeWeights w = sae.weights();
        int k = t.k();
        long batch = xBD.getShape().get(0), dIn = xBD.getShape().get(1);
        if (dIn != sae.cfg().dIn()) {
            throw new IllegalArgumentException("input is " + xBD.getShape() + " but the dictionary takes [B, " + sae.cfg().dIn() + "]");
        }
        NDArray wEnc = w.get(SaeWeights.W_ENC), bEnc = w.get(SaeWeights.B_ENC);
        NDArray wDec = w.get(SaeWeights.W_DEC), bDec = w.get(SaeWeights.B_DEC);
        long dSae = wEnc.getShape().get(1);
        int kAux = 0;
        if (deadMask != null && t.auxK() > 0) {
            if (!deadMask.getShape().equals(new Shape(dSae))) {
                throw new IllegalArgumentException("deadMask must be [" + dSae + "], got " + deadMask.getShape());
            }
            kAux = (int) Math.min(t.auxK(), deadMask.toType(DataType.INT64, false).sum().getLong());
        }
        // The active latents' encoder columns are gathered as rows of W_enc^T: a leaf copy made once per step, whose
        // gradient is handed to W_enc at the end (a gather from a transposed view would be strided, and a per-chunk
        // copy on the tape would cost a [dSae, dIn] backward per chunk).
        NDArray encT = wEnc.stopGradient().transpose().reshape(dSae * dIn).reshape(dSae, dIn).duplicate();
        encT.setRequiresGradient(true);
        // The gathers have sparse gradients (only the active rows), added in place into dense gradient buffers; a
        // dense embedding backward would allocate and zero a fresh [dSae, dIn] per chunk, which dominated the step.
        // A leaf without a dense gradient would keep the sparse one, so give W_dec and W_enc^T dense ones first.
        gc.backward(encT.mul(Tensors.scalar(0f)).sum().add(wDec.mul(Tensors.scalar(0f)).sum()));
        NDArray invBatch = Tensors.scalar(xBD.getManager(), 1f / batch);
        // AuxK: 0 at dead latents, -inf elsewhere, added to the pre-activations before choosing the auxK largest
        NDArray deadOffset = kAux == 0 ? null : deadMask.toType(DataType.FLOAT32, false).log();   // log 1 = 0, log 0 = -inf
        java.util.List<NDArray> auxIdx = new java.util.ArrayList<>(), errors = new java.util.ArrayList<>();
        double total = 0;
        float[] fired = new float[(int) dSae];
        for (long b0 = 0; b0 < batch; b0 += chunkRows) {
            long c = Math.min(chunkRows, batch - b0);
            // each chunk's temporaries are freed before the next: reused memory, not fresh pages
            try (NDScope chunkScope = new NDScope()) {
                NDArray xc = xBD.get(new NDIndex("{}:{}", b0, b0 + c));
                NDArray in = sae.cfg().applyBDecToInput() ? xc.sub(bDec) : xc;
                // which latents fire: no gradient flows through the choice, so the dense pre-activations stay off the tape
                NDArray pre = in.stopGradient().matMul(wEnc.stopGradient()).add(bEnc.stopGradient());
                NDList tk = pre.topK(k, -1, true, false);
                NDArray idx = tk.get(1);
                if (kAux > 0) {
                    NDArray ai = pre.addi(deadOffset).topK(kAux, -1, true, false).get(1);
                    NDScope.unregister(ai);
                    auxIdx.add(ai);
                }
                pre.close();
                tk.get(0).close();
                NDArray acts = activations(encT, bEnc, idx, in);
                float[] actsCK = acts.toFloatArray();
                long[] idxCK = idx.toType(DataType.INT64, false).toLongArray();
                for (int j = 0; j < actsCK.length; j++) if (actsCK[j] > 0) fired[(int) idxCK[j]]++;
                NDArray decRows = JniUtils.embedding((PtNDArray) idx, (PtNDArray) wDec, true);    // [c, k, dIn]
                NDArray recon = acts.reshape(c, 1, k).batchMatMul(decRows).reshape(c, dIn).add(bDec);
                NDArray err = xc.sub(recon);
                if (kAux > 0) {
                    NDArray e = err.stopGradient().duplicate();
                    NDScope.unregister(e);
                    errors.add(e);
                }
                // sum over the chunk / batch: the chunks' gradients add up to the batch mean's
                NDArray loss = err.square().sum().mul(invBatch);
                gc.backward(loss);
                total += loss.getFloat();
            }
        }
        double mse = total;
        if (kAux > 0) total += auxKPass(sae, xBD, gc, encT, auxIdx, errors, kAux, t.auxKCoefficient(), invBatch,
                Math.max(1, (int) ((long) chunkRows * k / kAux)));
        try (NDArray g = encT.getGradient()) {
            gc.backward(wEnc.mul(g.transpose()).sum());   // d/dW_enc of sum(W_enc * G^T) is G^T: the hand-off
        }
        encT.close();
        invBatch.close();
        if (deadOffset != null) deadOffset.close();
        return new TopKStep((float) total, (float) mse, fired);
    }

    /** {@code relu(W_enc[:, idx]^T . in + b_enc[idx])} from the gathered rows of {@code W_enc^T}: {@code [c, k]}. */
    private static NDArray activations(NDArray encT, NDArray bEnc, NDArray idx, NDArray in) {
        Shape s = idx.getShape();
        long c = s.get(0), k = s.get(1), dIn = encT.getShape().get(1);
        NDArray encRows = JniUtils.embedding((PtNDArray) idx, (PtNDArray) encT, true);    // [c, k, dIn]
        NDArray acts = encRows.batchMatMul(in.reshape(c, dIn, 1)).reshape(c, k).add(bEnc.get(idx));
        return Activation.relu(acts);
    }

    /**
     * AuxK's forward and backward over the chunks of {@code errors} (the detached {@code x - recon} of each chunk of
     * the main pass, in order) with the dead latents chosen there ({@code auxIdx}); frees both lists. Returns
     * {@code coefficient * AuxK}.
     */
    private static double auxKPass(SparseCoder sae, NDArray xBD, GradientCollector gc, NDArray encT,
                                   java.util.List<NDArray> auxIdx, java.util.List<NDArray> errors, int kAux,
                                   double coefficient, NDArray invBatch, int auxRows) {
        SaeWeights w = sae.weights();
        NDArray bEnc = w.get(SaeWeights.B_ENC), wDec = w.get(SaeWeights.W_DEC), bDec = w.get(SaeWeights.B_DEC);
        double total = 0;
        try (NDScope scope = new NDScope()) {
            NDArray e = NDArrays.concat(new NDList(errors));                                  // [B, dIn], no gradient
            NDArray idxAll = NDArrays.concat(new NDList(auxIdx));                              // [B, kAux]
            errors.forEach(NDArray::close);
            auxIdx.forEach(NDArray::close);
            float denom = Math.max(e.sub(e.mean(new int[]{0}, true)).square().sum(new int[]{-1}).mean().getFloat(), 1e-8f);
            NDArray scale = Tensors.scalar(xBD.getManager(), (float) (coefficient / denom)).mul(invBatch);
            long batch = e.getShape().get(0), dIn = e.getShape().get(1);
            for (long b0 = 0; b0 < batch; b0 += auxRows) {
                long c = Math.min(auxRows, batch - b0);
                try (NDScope chunkScope = new NDScope()) {
                    NDIndex rows = new NDIndex("{}:{}", b0, b0 + c);
                    NDArray xc = xBD.get(rows);
                    NDArray in = sae.cfg().applyBDecToInput() ? xc.sub(bDec) : xc;
                    NDArray idx = idxAll.get(rows);
                    NDArray acts = activations(encT, bEnc, idx, in);
                    NDArray decRows = JniUtils.embedding((PtNDArray) idx, (PtNDArray) wDec, true);   // [c, kAux, dIn]
                    NDArray eHat = acts.reshape(c, 1, kAux).batchMatMul(decRows).reshape(c, dIn);
                    NDArray loss = eHat.sub(e.get(rows)).square().sum().mul(scale);
                    gc.backward(loss);
                    total += loss.getFloat();
                }
            }
        }
        return total;
    }
}
