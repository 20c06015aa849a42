package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Losses;

import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

/**
 * How much of the model's behaviour an SAE keeps when its reconstruction replaces the activation (SAELens's
 * {@code get_downstream_reconstruction_metrics}): next-token cross-entropy with the clean model, with the reconstruction
 * spliced in (no error term), and with the activation zero-ablated; the loss recovered
 * {@code (ablated - spliced) / (ablated - clean)} (1 = as good as the model, 0 = as bad as deleting the activation);
 * and the mean {@code KL(clean || spliced)} and {@code KL(clean || ablated)} of the next-token distributions.
 *
 * <p>Averages are over tokens (every batch's tokens weigh the same), leaving out padding. Positions whose token id is
 * in {@code ignoreTokens} are handled as SAELens does with {@code exclude_special_tokens}: their activation is not
 * replaced by the reconstruction (it is still zeroed in the ablation run), and they are left out of every average
 * (for the loss: the prediction made at that position). SAELens excludes the tokenizer's BOS, EOS and PAD ids by
 * default; pass them to match its numbers ({@code Set.of(bosId)} for a BOS-prefixed batch). With no ignored tokens
 * every real position counts.
 *
 * @param hookName      where the SAE was spliced in
 * @param tokens        next-token predictions averaged in the losses
 * @param cleanLoss     mean cross-entropy of the model as it is
 * @param splicedLoss   with the SAE's reconstruction in place of the activation
 * @param ablatedLoss   with the activation replaced by zeros
 * @param lossRecovered {@code (ablated - spliced) / (ablated - clean)}; NaN when ablation changes nothing
 * @param klSpliced     mean {@code KL(clean || spliced)} in nats per position
 * @param klAblated     mean {@code KL(clean || ablated)} in nats per position
 */
public record SpliceEval(String hookName, long tokens, double cleanLoss, double splicedLoss, double ablatedLoss,
                         double lossRecovered, double klSpliced, double klAblated) {

    /** Evaluates {@code sae} at its hook point on equal-length token sequences (no exclusions). */
    public static SpliceEval run(HookedTransformer model, SparseCoder sae, long[][] tokens) {
        return run(model, sae, List.of(Batch.of(tokens)), Set.of());
    }

    /** Evaluates {@code sae} at its hook point over {@code batches}, leaving out padding only. */
    public static SpliceEval run(HookedTransformer model, SparseCoder sae, List<Batch> batches) {
        return run(model, sae, batches, Set.of());
    }

    /**
     * Evaluates {@code sae} at its hook point over {@code batches}; positions holding a token in {@code ignoreTokens}
     * keep their activation and are left out of the averages (SAELens's {@code exclude_special_tokens}).
     */
    public static SpliceEval run(HookedTransformer model, SparseCoder sae, List<Batch> batches, Set<Long> ignoreTokens) {
        Objects.requireNonNull(ignoreTokens, "ignoreTokens");
        if (batches.isEmpty()) throw new IllegalArgumentException("SpliceEval needs at least one batch");
        // attach-time checks (hook exists, widths agree) with their messages; the splice itself is not used here
        SaeSplice.attach(model, sae, false).close();
        String hook = sae.cfg().hookName();

        double ceClean = 0, ceSpliced = 0, ceAblated = 0, klS = 0, klA = 0;
        long nCe = 0, nKl = 0;
        for (Batch batch : batches) {
            int b = batch.size(), p = batch.length();
            boolean[] keep = new boolean[b * p];
            float[] ceW = new float[b * Math.max(p - 1, 0)];
            float[] klW = new float[b * p];
            boolean allKept = true;
            for (int r = 0; r < b; r++) {
                for (int j = 0; j < p; j++) {
                    boolean k = batch.mask()[r][j] && !ignoreTokens.contains(batch.ids()[r][j]);
                    keep[r * p + j] = k;
                    allKept &= k;
                    klW[r * p + j] = k ? 1f : 0f;
                    if (k) nKl++;
                    if (j < p - 1 && k && batch.mask()[r][j + 1]) {
                        ceW[r * (p - 1) + j] = 1f;
                        nCe++;
                    }
                }
            }
            boolean spliceAll = allKept;
            try (NDScope scope = new NDScope()) {
                NDArray clean = model.forward(batch);
                NDArray spliced = model.runWithHooks(batch, Hook.fwd(hook, (x, hp) -> {
                    NDArray recon = reconstructLike(sae, x);
                    if (spliceAll) return recon;
                    NDArray cond = x.getManager().create(keep, new Shape(b, p))
                            .reshape(keepShape(x.getShape())).broadcast(x.getShape());
                    return NDArrays.where(cond, recon, x);
                }));
                NDArray ablated = model.runWithHooks(batch, Hook.fwd(hook, (x, hp) -> x.zerosLike()));

                NDArray ceWeights = model.manager().create(ceW, new Shape(b, p - 1));
                ceClean += weightedSum(Losses.nextTokenLoss(clean, batch), ceWeights);
                ceSpliced += weightedSum(Losses.nextTokenLoss(spliced, batch), ceWeights);
                ceAblated += weightedSum(Losses.nextTokenLoss(ablated, batch), ceWeights);

                NDArray klWeights = model.manager().create(klW, new Shape(b, p));
                NDArray logP = clean.logSoftmax(-1);
                klS += weightedSum(kl(logP, spliced), klWeights);
                klA += weightedSum(kl(logP, ablated), klWeights);
            }
        }
        double clean = ceClean / Math.max(1, nCe), spliced = ceSpliced / Math.max(1, nCe), ablated = ceAblated / Math.max(1, nCe);
        double denom = ablated - clean;
        double recovered = denom == 0 ? Double.NaN : (ablated - spliced) / denom;
        return new SpliceEval(hook, nCe, clean, spliced, ablated, recovered, klS / Math.max(1, nKl), klA / Math.max(1, nKl));
    }

    /** {@code KL(P || Q)} per position {@code [batch, pos]} from P's log-probabilities and Q's logits. */
    private static NDArray kl(NDArray logP, NDArray logitsQ) {
        NDArray logQ = logitsQ.logSoftmax(-1);
        return logP.exp().mul(logP.sub(logQ)).sum(new int[] {-1});
    }

    private static double weightedSum(NDArray values, NDArray weights) {
        return values.mul(weights).sum().getFloat();
    }

    /** The reconstruction of an activation of any shape the SAE accepts ({@code [..., dIn]} or per-head). */
    private static NDArray reconstructLike(SparseCoder sae, NDArray x) {
        return sae.reconstruct(SaeSplice.flatten(x, sae.cfg())).reshape(x.getShape());
    }

    /** {@code [batch, pos, 1, ...]}: the token mask broadcast over the activation's trailing axes. */
    private static Shape keepShape(Shape act) {
        long[] dims = new long[act.dimension()];
        java.util.Arrays.fill(dims, 1);
        dims[0] = act.get(0);
        dims[1] = act.get(1);
        return new Shape(dims);
    }

    /** SAELens's {@code kl_div_score}: {@code (klAblated - klSpliced) / klAblated}. */
    public double klScore() {
        return klAblated == 0 ? Double.NaN : (klAblated - klSpliced) / klAblated;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT,
                "SpliceEval[%s, %,d tokens: CE clean %.4f, spliced %.4f, zero-ablated %.4f; recovered %.1f%%; "
                        + "KL spliced %.4g, zero-ablated %.4g nats]",
                hookName, tokens, cleanLoss, splicedLoss, ablatedLoss, 100 * lossRecovered, klSpliced, klAblated);
    }
}
