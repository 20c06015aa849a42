package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import dev.jlens.util.Tensors;

import java.util.ArrayList;
import java.util.List;
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
 *
 * <p>{@link #trainBatchTopK} is the same kind of step for the batch-level rule of BatchTopK and Matryoshka
 * dictionaries ({@link BatchTopK}): the batch's threshold is found first from each token's largest pre-activations,
 * then each token's variable number of kept latents is gathered, padded per chunk with a mask. It shares the
 * {@code W_enc^T} copy, the gathered activations and the AuxK pass with {@link #trainTopK}. At d_in 512, d_sae 8192,
 * batch 4096, k 32 (one thread, freshly initialised BatchTopK SAE, AdamW update included) it took ~1.45 s where the
 * dense BatchTopK forward and backward took ~3.3 s, and {@link #trainTopK} ~1.5 s on the same machine; each time the
 * first {@code 4k} candidates per token do not suffice the encoder matmul is repeated with twice as many.
 */
public final class SparseDecode {
    /**
     * Tokens per chunk in {@link #backwardTopK}: its largest intermediate, {@code [256, k, dIn]}, stays small; at most
     * so many per chunk in {@link #trainBatchTopK}, whose chunks are also bounded by {@link #GATHER_ELEMENTS}.
     */
    public static final int DEFAULT_CHUNK = 256;

    /**
     * The trainer takes the sparse steps only for dictionaries at least this many times wider than {@code k} (and
     * Measured on a 2-core CPU (12 trainer steps with dead latents, k 16): at d_sae 1024 (64 k) the general dense route
     * was faster at batches 1,024 and 4,096 (TopK 0.80x and 0.71x the sparse step's time, BatchTopK 0.56x and 0.64x);
     * at d_sae 4096 (256 k) the sparse steps were faster (TopK 0.49x-0.61x, BatchTopK 0.63x-0.94x of the dense time),
     * and at d_in 512, d_sae 8192, batch 4096 about twice as fast. Package-private so tests can force either route.
     */
    static int sparseMinLatentsPerK = 128;

    /** ... and for batches whose dense latents {@code [B, dSae]} would have at least this many elements. */
    static long sparseMinDenseElements = 1L << 22;

    /** Whether the trainer's sparse step pays for a batch of {@code batch} tokens, {@code dSae} latents, {@code k}. */
    static boolean sparsePays(long batch, long dSae, int k) {
        return dSae >= (long) sparseMinLatentsPerK * k && batch * dSae >= sparseMinDenseElements;
    }

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
        int kAux = auxCount(deadMask, t.auxK(), dSae);
        NDArray encT = leafEncoderT(wEnc, wDec, gc);
        NDArray invBatch = Tensors.scalar(xBD.getManager(), 1f / batch);
        NDArray deadOffset = kAux == 0 ? null : Losses.deadOffset(deadMask);
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
                if (kAux > 0) auxIdx.add(auxPicks(pre, deadOffset, kAux));
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
        handOff(wEnc, encT, gc);
        invBatch.close();
        if (deadOffset != null) deadOffset.close();
        return new TopKStep((float) total, (float) mse, fired);
    }

    /**
     * What {@link #trainBatchTopK} measured: the loss minimised (the MSE term, for a Matryoshka dictionary the mean of
     * its prefixes' MSE terms, plus the weighted AuxK term when it applied), the full dictionary's MSE term, how many
     * tokens each latent fired on, and the smallest positive kept score ({@link BatchTopK}'s {@code min_kept}: positive
     * infinity when nothing positive was kept).
     */
    public record BatchTopKStep(float loss, float mse, float[] fired, float minKept) {
        /**
         * The trainer's view of this step on the batch {@code xBD}: its {@link SparseCoder.Output} has no loss,
         * reconstruction or activations, only the scalar {@code parts} {@code mse} and {@code min_kept} (made on
         * {@code xBD}'s manager) that {@code afterStep} reads.
         */
        SparseCoder.StepResult result(NDArray xBD) {
            NDManager m = xBD.getManager();
            java.util.Map<String, NDArray> parts = new java.util.LinkedHashMap<>();
            parts.put("mse", Tensors.scalar(m, mse));
            parts.put("min_kept", Tensors.scalar(m, minKept));
            long batch = xBD.getShape().get(0);
            // the MSE term is the sum of squared errors / B
            return new SparseCoder.StepResult(loss, mse, mse * batch, fired, new SparseCoder.Output(null, null, null, parts));
        }
    }

    /**
     * Most elements of one padded gather {@code [c, kmax, dIn]} in {@link #trainBatchTopK}: 16 MB of float32, below
     * glibc's 32 MB mmap threshold (see the class comment), as {@link #DEFAULT_CHUNK} tokens of TopK's {@code k = 32}
     * at {@code d_in 512}.
     */
    static final long GATHER_ELEMENTS = 1L << 22;

    /**
     * The trainer's sparse step for a single-source BatchTopK or Matryoshka (BatchTopK) dictionary: the same loss and
     * gradients as its {@code trainForward} and backward (the batch's {@code k * B} largest ReLU'd pre-activations
     * kept; for Matryoshka the mean over the group prefixes of each prefix's MSE; plus AuxK on the latents
     * {@code deadMask} marks dead, as {@link #trainTopK}) without a dense {@code [B, dSae]} tensor on the gradient path.
     *
     * <ol>
     *   <li>Candidates: per chunk of {@code chunkRows} tokens, the pre-activations are computed without gradient and
     *   each token's {@code kc} largest (ReLU'd, with their latents) are kept, {@code kc = min(dSae, 4k)} at first;
     *   the AuxK latents are chosen there too. The threshold {@code t} is the {@code (k*B)}-th largest candidate. It
     *   is the batch's {@code (k*B)}-th largest score unless some token's {@code kc}-th candidate is positive and
     *   {@code >= t} (that token may hold more values at or above {@code t}); then {@code kc} is doubled and the
     *   candidates recomputed, until the check passes or {@code kc = dSae}.</li>
     *   <li>Each token keeps its candidates above {@code t}; values equal to {@code t > 0} are kept in token order
     *   until {@code k*B} are kept (torch's topk over the flattened batch, the dense route, breaks such ties in an
     *   unspecified order, so only exact ties at the threshold may differ). When fewer than {@code k*B} scores are
     *   positive ({@code t = 0}) every positive one is kept.</li>
     *   <li>Tokens are ordered by their number of kept latents and cut into chunks of at most {@code chunkRows} tokens
     *   whose padded gather {@code [c, kmax, dIn]} stays within {@link #GATHER_ELEMENTS}; per chunk the kept
     *   latents' activations are recomputed from the gathered rows of the {@code W_enc^T} copy, times a 0/1 mask for
     *   the padding, and decoded from the gathered {@code W_dec} rows by a batched matmul: for Matryoshka one
     *   {@code [c, P, kmax] x [c, kmax, dIn]} product gives all {@code P} prefix reconstructions (the mask also zeroes
     *   latents at or beyond each prefix). Each chunk's loss is backpropagated at once.</li>
     *   <li>AuxK as in {@link #trainTopK}: a second pass on the detached error of the full reconstruction.</li>
     * </ol>
     *
     * Crosscoders ({@code nSources > 1}) rank by the decoder-norm-weighted score and keep the general route.
     */
    public static BatchTopKStep trainBatchTopK(SparseCoder sae, NDArray xBD, GradientCollector gc, int chunkRows,
                                               NDArray deadMask) {
        SaeConfig cfg = sae.cfg();
        int k, auxK;
        double auxCoefficient;
        int[] prefixes;
        if (cfg.kind() instanceof SaeConfig.BatchTopK b) {
            k = b.k();
            auxK = b.auxK();
            auxCoefficient = b.auxKCoefficient();
            prefixes = new int[] {cfg.dSae()};
        } else if (cfg.kind() instanceof SaeConfig.Matryoshka m) {
            k = m.k();
            auxK = m.auxK();
            auxCoefficient = m.auxKCoefficient();
            prefixes = new int[m.groupSizes().size()];
            int sum = 0;
            for (int i = 0; i < prefixes.length; i++) prefixes[i] = sum += m.groupSizes().get(i);
        } else {
            throw new IllegalArgumentException("trainBatchTopK needs a BatchTopK or Matryoshka dictionary, got "
                    + cfg.kind().architecture());
        }
        if (cfg.nSources() != 1) {
            throw new IllegalArgumentException("trainBatchTopK takes single-source dictionaries; a crosscoder ("
                    + cfg.nSources() + " sources) ranks by decoder-norm-weighted scores: use its general training step");
        }
        if (chunkRows < 1) throw new IllegalArgumentException("chunkRows must be positive, got " + chunkRows);
        long dIn = xBD.getShape().get(1);
        if (xBD.getShape().dimension() != 2 || dIn != cfg.dIn()) {
            throw new IllegalArgumentException("input is " + xBD.getShape() + " but the dictionary takes [B, " + cfg.dIn() + "]");
        }
        SaeWeights w = sae.weights();
        NDArray wEnc = w.get(SaeWeights.W_ENC), bEnc = w.get(SaeWeights.B_ENC);
        NDArray wDec = w.get(SaeWeights.W_DEC), bDec = w.get(SaeWeights.B_DEC);
        int dSae = (int) wEnc.getShape().get(1), batch = (int) xBD.getShape().get(0), nPrefixes = prefixes.length;
        int kAux = auxCount(deadMask, auxK, dSae);
        long keep = Math.min((long) batch * dSae, (long) k * batch);
        NDArray deadOffset = kAux == 0 ? null : Losses.deadOffset(deadMask);

        // 1. candidates and the threshold
        int kc = (int) Math.min(dSae, 4L * k);
        Candidates cand;
        float t;
        while (true) {
            cand = candidates(sae, xBD, chunkRows, kc, kAux, deadOffset);
            t = kthLargest(cand.values, keep);
            if (kc == dSae || enough(cand.values, kc, t)) break;
            cand.close();
            kc = (int) Math.min(dSae, 2L * kc);
        }
        if (deadOffset != null) deadOffset.close();

        // 2. how many of its (descending) candidates each token keeps
        int[] count = new int[batch];
        float minKept = Float.POSITIVE_INFINITY;
        float[] v = cand.values;
        if (t > 0) {
            long kept = 0;
            for (int b = 0; b < batch; b++) {
                int j = 0;
                while (j < kc && v[b * kc + j] > t) j++;
                count[b] = j;
                kept += j;
            }
            for (int b = 0; b < batch && kept < keep; b++) {   // ties at the threshold, in token order
                while (count[b] < kc && v[b * kc + count[b]] == t && kept < keep) {
                    count[b]++;
                    kept++;
                }
            }
            minKept = t;
        } else {
            for (int b = 0; b < batch; b++) {
                int j = 0;
                while (j < kc && v[b * kc + j] > 0) j++;
                count[b] = j;
                if (j > 0) minKept = Math.min(minKept, v[b * kc + j - 1]);
            }
        }

        // 3. tokens by their count (a stable counting sort), chunks within the gather budget
        int[] order = new int[batch], starts = new int[kc + 2];
        for (int b = 0; b < batch; b++) starts[count[b] + 1]++;
        for (int i = 1; i < starts.length; i++) starts[i] += starts[i - 1];
        for (int b = 0; b < batch; b++) order[starts[count[b]]++] = b;

        NDManager mgr = xBD.getManager();
        NDArray encT = leafEncoderT(wEnc, wDec, gc);
        NDArray invLoss = Tensors.scalar(mgr, 1f / ((float) batch * nPrefixes));
        List<NDArray> errors = new ArrayList<>();
        double total = 0, sse = 0;
        float[] fired = new float[dSae];
        long[] idxAll = cand.indices;
        for (int start = 0; start < batch; ) {
            int kmax = Math.max(1, count[order[start]]), end = start + 1;
            while (end < batch && end - start < chunkRows) {
                int km = Math.max(kmax, count[order[end]]);
                if ((long) (end - start + 1) * km * dIn > GATHER_ELEMENTS) break;
                kmax = km;
                end++;
            }
            int c = end - start;
            long[] rows = new long[c], idxArr = new long[c * kmax];
            float[] maskArr = new float[c * nPrefixes * kmax];
            for (int r = 0; r < c; r++) {
                int b = order[start + r];
                rows[r] = b;
                System.arraycopy(idxAll, b * kc, idxArr, r * kmax, kmax);   // padding: further candidates, masked
                for (int p = 0; p < nPrefixes; p++) {
                    for (int j = 0; j < count[b]; j++) {
                        if (idxArr[r * kmax + j] < prefixes[p]) maskArr[(r * nPrefixes + p) * kmax + j] = 1f;
                    }
                }
            }
            try (NDScope chunkScope = new NDScope()) {
                NDArray rowIdx = Tensors.owned(mgr.create(rows));
                NDArray idx = Tensors.owned(mgr.create(idxArr, new Shape(c, kmax)));
                NDArray mask = Tensors.owned(mgr.create(maskArr, new Shape(c, nPrefixes, kmax)));
                NDArray xc = JniUtils.embedding((PtNDArray) rowIdx, (PtNDArray) xBD.stopGradient(), false);   // [c, dIn]
                NDArray in = cfg.applyBDecToInput() ? xc.sub(bDec) : xc;
                // the last prefix is the whole dictionary: its mask is the kept latents'
                NDArray acts = activations(encT, bEnc, idx, in).mul(mask.get(new NDIndex(":, {}, :", nPrefixes - 1)));
                float[] actsCK = acts.toFloatArray();
                for (int r = 0; r < c; r++) {
                    int b = order[start + r];
                    for (int j = 0; j < count[b]; j++) if (actsCK[r * kmax + j] > 0) fired[(int) idxArr[r * kmax + j]]++;
                }
                NDArray decRows = JniUtils.embedding((PtNDArray) idx, (PtNDArray) wDec, true);    // [c, kmax, dIn]
                NDArray weights = nPrefixes == 1 ? acts.reshape(c, 1, kmax) : acts.reshape(c, 1, kmax).mul(mask);
                NDArray recon = weights.batchMatMul(decRows).add(bDec);                           // [c, P, dIn]
                NDArray err = xc.reshape(c, 1, dIn).sub(recon);
                NDArray sq = err.square().sum(new int[] {0, 2});                                   // [P]
                NDArray loss = sq.sum().mul(invLoss);
                if (kAux > 0) {
                    NDArray e = err.get(new NDIndex(":, {}, :", nPrefixes - 1)).stopGradient().duplicate();
                    NDScope.unregister(e);
                    errors.add(e);
                }
                gc.backward(loss);
                float[] sqs = sq.stopGradient().toFloatArray();
                for (float x : sqs) total += x;
                sse += sqs[nPrefixes - 1];
            }
            start = end;
        }
        total /= (double) batch * nPrefixes;
        double mse = sse / batch;
        if (kAux > 0) {
            // the errors back into token order, for the AuxK latents chosen per token in step 1
            int[] inverse = new int[batch];
            for (int i = 0; i < batch; i++) inverse[order[i]] = i;
            NDArray eNatural;
            try (NDScope s = new NDScope()) {
                NDArray eSorted = NDArrays.concat(new NDList(errors));
                NDArray inv = Tensors.owned(mgr.create(java.util.Arrays.stream(inverse).asLongStream().toArray()));
                eNatural = JniUtils.embedding((PtNDArray) inv, (PtNDArray) eSorted, false);
                NDScope.unregister(eNatural);
            }
            errors.forEach(NDArray::close);
            List<NDArray> auxIdx = new ArrayList<>(cand.auxIdx);
            cand.auxIdx.clear();
            NDArray invBatch = Tensors.scalar(mgr, 1f / batch);
            total += auxKPass(sae, xBD, gc, encT, auxIdx, new ArrayList<>(List.of(eNatural)), kAux, auxCoefficient,
                    invBatch, Math.max(1, (int) ((long) chunkRows * k / kAux)));
            invBatch.close();
        }
        cand.close();
        handOff(wEnc, encT, gc);
        invLoss.close();
        return new BatchTopKStep((float) total, (float) mse, fired, minKept);
    }

    /**
     * Each token's {@code kc} largest ReLU'd pre-activations, descending ({@code values}, {@code [B * kc]}), their
     * latents ({@code indices}, same layout), and per chunk the AuxK latents ({@code auxIdx}, {@code [c, kAux]}, empty
     * when {@code kAux = 0}; closed by {@link #close}).
     */
    private record Candidates(float[] values, long[] indices, List<NDArray> auxIdx) implements AutoCloseable {
        @Override
        public void close() {
            auxIdx.forEach(NDArray::close);
            auxIdx.clear();
        }
    }

    /** Step 1 of {@link #trainBatchTopK}: the candidates from the pre-activations computed without gradient. */
    private static Candidates candidates(SparseCoder sae, NDArray xBD, int chunkRows, int kc, int kAux,
                                         NDArray deadOffset) {
        SaeWeights w = sae.weights();
        NDArray wEnc = w.get(SaeWeights.W_ENC).stopGradient(), bEnc = w.get(SaeWeights.B_ENC).stopGradient();
        NDArray bDec = w.get(SaeWeights.B_DEC).stopGradient();
        int batch = (int) xBD.getShape().get(0);
        float[] values = new float[batch * kc];
        long[] indices = new long[batch * kc];
        List<NDArray> auxIdx = new ArrayList<>();
        for (int b0 = 0; b0 < batch; b0 += chunkRows) {
            int c = Math.min(chunkRows, batch - b0);
            try (NDScope chunkScope = new NDScope()) {
                NDArray xc = xBD.get(new NDIndex("{}:{}", b0, b0 + c)).stopGradient();
                NDArray in = sae.cfg().applyBDecToInput() ? xc.sub(bDec) : xc;
                NDArray pre = in.matMul(wEnc).addi(bEnc);
                NDList tk = pre.topK(kc, -1, true, true);
                System.arraycopy(Activation.relu(tk.get(0)).toFloatArray(), 0, values, b0 * kc, c * kc);
                System.arraycopy(tk.get(1).toType(DataType.INT64, false).toLongArray(), 0, indices, b0 * kc, c * kc);
                if (kAux > 0) auxIdx.add(auxPicks(pre, deadOffset, kAux));
            }
        }
        return new Candidates(values, indices, auxIdx);
    }

    /** The {@code keep}-th largest of {@code values} ({@code 1 <= keep <= values.length}). */
    private static float kthLargest(float[] values, long keep) {
        float[] sorted = values.clone();
        java.util.Arrays.sort(sorted);
        return sorted[(int) (sorted.length - keep)];
    }

    /**
     * Whether the candidates hold every score at or above the threshold {@code t}: no token's smallest candidate (its
     * {@code kc}-th largest score; the scores it left out are at most that) is positive and {@code >= t}.
     */
    private static boolean enough(float[] values, int kc, float t) {
        for (int i = kc - 1; i < values.length; i += kc) {
            if (values[i] > 0 && values[i] >= t) return false;
        }
        return true;
    }

    /**
     * How many dead latents AuxK uses per token: {@code min(auxK, number dead)}, 0 when {@code deadMask} is null or
     * AuxK is off. {@code deadMask} must be boolean {@code [dSae]}.
     */
    /**
     * AuxK's {@code kAux} dead latents per token from pre-activations computed without gradient ({@code pre} is
     * overwritten): {@code [c, kAux]}, outliving the caller's scope (the caller closes it).
     */
    private static NDArray auxPicks(NDArray pre, NDArray deadOffset, int kAux) {
        NDArray picks = pre.addi(deadOffset).topK(kAux, -1, true, false).get(1);
        NDScope.unregister(picks);
        return picks;
    }

    private static int auxCount(NDArray deadMask, int auxK, long dSae) {
        if (deadMask == null || auxK <= 0) return 0;
        if (!deadMask.getShape().equals(new Shape(dSae))) {
            throw new IllegalArgumentException("deadMask must be [" + dSae + "], got " + deadMask.getShape());
        }
        return (int) Math.min(auxK, deadMask.toType(DataType.INT64, false).sum().getLong());
    }

    /**
     * A leaf copy of {@code W_enc^T} ({@code [dSae, dIn]}) requiring gradients, from which the active latents' encoder
     * columns are gathered as rows; {@link #handOff} passes its gradient to {@code W_enc} at the end of the step (a
     * gather from a transposed view would be strided, and a per-chunk copy on the tape would cost a {@code [dSae, dIn]}
     * backward per chunk). The gathers have sparse gradients (only the active rows), added in place into dense
     * gradient buffers; a dense embedding backward would allocate and zero a fresh {@code [dSae, dIn]} per chunk,
     * which dominated the step. A leaf without a dense gradient would keep the sparse one, so this gives {@code W_dec}
     * and the copy dense ones first.
     */
    private static NDArray leafEncoderT(NDArray wEnc, NDArray wDec, GradientCollector gc) {
        long dIn = wEnc.getShape().get(0), dSae = wEnc.getShape().get(1);
        NDArray encT = wEnc.stopGradient().transpose().reshape(dSae * dIn).reshape(dSae, dIn).duplicate();
        encT.setRequiresGradient(true);
        gc.backward(encT.mul(Tensors.scalar(0f)).sum().add(wDec.mul(Tensors.scalar(0f)).sum()));
        return encT;
    }

    /** Adds the gradient gathered in {@code encT} (see {@link #leafEncoderT}) to {@code W_enc}'s and frees the copy. */
    private static void handOff(NDArray wEnc, NDArray encT, GradientCollector gc) {
        try (NDArray g = encT.getGradient()) {
            gc.backward(wEnc.mul(g.transpose()).sum());   // d/dW_enc of sum(W_enc * G^T) is G^T: the hand-off
        }
        encT.close();
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
