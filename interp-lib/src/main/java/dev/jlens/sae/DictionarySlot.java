package dev.jlens.sae;

import dev.jlens.train.AdamW;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** One dictionary in a {@link SaeTrainer}: its name, its Adam state, its latent bookkeeping and its history. */
final class DictionarySlot implements AutoCloseable {
    private static final double ADAM_EPS = 1e-8;

    final String name;
    final SparseCoder sae;
    final boolean owned;          // created or loaded by the trainer, which closes it
    final AdamW opt;
    final LatentStats latents;
    final List<SaeTrainer.StepStats> history = new ArrayList<>();

    DictionarySlot(String name, SparseCoder sae, boolean owned, SaeTrainConfig cfg) {
        this.name = name;
        this.sae = sae;
        this.owned = owned;
        this.opt = new AdamW(sae.trainableParameters(), Set.of(), cfg.beta1(), cfg.beta2(), ADAM_EPS, 0.0);
        this.latents = new LatentStats(sae.cfg().dSae());
    }

    /**
     * Applies a measured step: the variant's hooks around the Adam update, then the step's row of the history.
     * {@code centredSq} is the batch's summed squared distance from its mean (the FVU's denominator).
     */
    void update(SparseCoder.Context ctx, SparseCoder.StepResult r, double lr, float centredSq, SaeTrainConfig cfg) {
        sae.beforeStep(ctx);
        opt.step(lr, 1.0);
        sae.afterStep(ctx, r.output());
        int b = cfg.batchSize(), dSae = r.fired().length;
        LatentStats.Counts c = latents.record(r.fired(), b, cfg);
        double fvu = centredSq > 0 ? r.sse() / centredSq : Double.NaN;
        history.add(new SaeTrainer.StepStats(ctx.step() + 1, r.loss(), r.mse(), (double) c.firings() / b, fvu,
                (double) c.dead() / dSae, (double) c.dense() / dSae, lr));
    }

    /** The last row of the history, or null before the first step. */
    SaeTrainer.StepStats last() {
        return history.isEmpty() ? null : history.get(history.size() - 1);
    }

    /** Frees the Adam state, and the dictionary when this slot owns it. */
    @Override
    public void close() {
        opt.close();
        if (owned) sae.close();
    }
}
