package dev.jlens.diff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SparseCoder;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * A dictionary's latent activations on every token of a batch: for an SAE, one model's activations at a hook; for a
 * crosscoder, the models' activations at the hook side by side ({@code [a_base | a_tuned]}, as it was trained). Then
 * ask where latents fire: {@link #precision} and {@link #recall} of a set of latents against tokens a rule marks
 * (the contexts of a planted behaviour), {@link #table} per latent.
 *
 * <pre>{@code
 * LatentCodes codes = LatentCodes.of(crosscoder, batch, "blocks.2.hook_resid_post", base, tuned);
 * int[] ftOnly = Crosscoder.of(crosscoder).latents(Crosscoder.Category.FINETUNED_ONLY);
 * codes.precision(ftOnly, (prompt, pos) -> triggered[prompt] && pos >= 1);
 * }</pre>
 */
public final class LatentCodes {
    /** Which token of the batch a row is. */
    public record Token(int prompt, int position) {}

    /** Marks the tokens of interest, by prompt and position. */
    @FunctionalInterface
    public interface Context {
        boolean test(int prompt, int position);
    }

    private final List<Token> tokens;
    private final float[] codes;   // [rows * dSae]
    private final int dSae;

    private LatentCodes(List<Token> tokens, float[] codes, int dSae) {
        this.tokens = List.copyOf(tokens);
        this.codes = codes;
        this.dSae = dSae;
    }

    /**
     * Encodes the batch's unpadded tokens with {@code coder}: the activations of {@code models} at {@code hook},
     * concatenated in that order along the last axis (one model for an SAE, one per source for a crosscoder).
     */
    public static LatentCodes of(SparseCoder coder, Batch batch, String hook, HookedTransformer... models) {
        return encode(coder, batch, hook, false, models);
    }

    /**
     * Encodes the difference {@code a_tuned - a_base} at {@code hook} on the batch's unpadded tokens with a dictionary
     * trained on such differences ({@code store.difference(1, 0)}): where the fine-tune changed the activations.
     */
    public static LatentCodes ofDifference(SparseCoder coder, Batch batch, String hook, HookedTransformer base,
                                           HookedTransformer tuned) {
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(tuned, "tuned");
        return encode(coder, batch, hook, true, base, tuned);
    }

    private static LatentCodes encode(SparseCoder coder, Batch batch, String hook, boolean difference,
                                      HookedTransformer... models) {
        Objects.requireNonNull(coder, "coder");
        Objects.requireNonNull(batch, "batch");
        if (models == null || models.length == 0) throw new IllegalArgumentException("name the model(s) whose "
                + "activations the dictionary reads (one for an SAE, one per source for a crosscoder)");
        int width = 0;
        for (HookedTransformer m : models) width += m.cfg().dModel();
        if (difference) {
            if (models[0].cfg().dModel() != models[1].cfg().dModel() || coder.cfg().nSources() != 1
                    || coder.cfg().dIn() != models[0].cfg().dModel()) {
                throw new IllegalArgumentException(String.format(Locale.ROOT, "a dictionary of differences reads one "
                        + "source of d_model; this one reads %d source(s), d_in %d, and the models have d_model %d and %d",
                        coder.cfg().nSources(), coder.cfg().dIn(), models[0].cfg().dModel(), models[1].cfg().dModel()));
            }
        } else if (models.length != coder.cfg().nSources() || width != coder.cfg().dIn()) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "the dictionary reads %d source(s), d_in %d; "
                    + "got %d model(s) with d_model summing to %d", coder.cfg().nSources(), coder.cfg().dIn(),
                    models.length, width));
        }
        boolean[][] mask = batch.mask();
        List<Token> toks = new ArrayList<>();
        for (int r = 0; r < mask.length; r++) {
            for (int p = 0; p < mask[r].length; p++) if (mask[r][p]) toks.add(new Token(r, p));
        }
        float[] all;
        int dSae = coder.cfg().dSae();
        List<ActivationCache> caches = new ArrayList<>();
        try (NDScope scope = new NDScope()) {
            NDList parts = new NDList();
            for (HookedTransformer m : models) {
                ActivationCache c = m.runWithCache(batch, NameFilter.of(hook));
                caches.add(c);
                NDArray a = c.get(hook);
                if (a.getShape().dimension() != 3) {
                    throw new IllegalArgumentException(hook + " has shape " + a.getShape() + "; a dictionary reads a "
                            + "[batch, pos, d_model] hook such as blocks.L.hook_resid_post");
                }
                parts.add(a);
            }
            NDArray x = difference ? parts.get(1).sub(parts.get(0))
                    : parts.size() == 1 ? parts.get(0) : ai.djl.ndarray.NDArrays.concat(parts, -1);
            all = coder.encode(x).toFloatArray();   // [b * pos * dSae]
        } finally {
            for (ActivationCache c : caches) c.close();
        }
        int len = batch.length();
        float[] kept = new float[toks.size() * dSae];
        for (int i = 0; i < toks.size(); i++) {
            Token t = toks.get(i);
            System.arraycopy(all, (t.prompt() * len + t.position()) * dSae, kept, i * dSae, dSae);
        }
        return new LatentCodes(toks, kept, dSae);
    }

    /** The encoded tokens, in batch order. */
    public List<Token> tokens() {
        return tokens;
    }

    /** The number of latents. */
    public int dSae() {
        return dSae;
    }

    /** Activation of {@code latent} on token row {@code row}. */
    public float get(int row, int latent) {
        if (latent < 0 || latent >= dSae) throw new IndexOutOfBoundsException("latent " + latent + " of " + dSae);
        return codes[row * dSae + latent];
    }

    /** Per latent, the fraction of tokens where it fires: pass it to {@code Crosscoder.withDensity} to mark dead ones. */
    public float[] density() {
        float[] d = new float[dSae];
        int n = tokens.size();
        for (int i = 0; i < n; i++) for (int l = 0; l < dSae; l++) if (codes[i * dSae + l] > 0) d[l]++;
        for (int l = 0; l < dSae; l++) d[l] = n == 0 ? 0 : d[l] / n;
        return d;
    }

    /** True if any of {@code latents} fires (is positive) on token row {@code row}. */
    public boolean anyFires(int row, int[] latents) {
        for (int l : latents) if (get(row, l) > 0) return true;
        return false;
    }

    /**
     * Of the tokens where any of {@code latents} fires, the fraction that {@code context} marks; NaN when none fires
     * (a set of latents that never fires has no precision).
     */
    public double precision(int[] latents, Context context) {
        int fired = 0, inside = 0;
        for (int i = 0; i < tokens.size(); i++) {
            if (!anyFires(i, latents)) continue;
            fired++;
            if (context.test(tokens.get(i).prompt(), tokens.get(i).position())) inside++;
        }
        return fired == 0 ? Double.NaN : inside / (double) fired;
    }

    /** Of the tokens {@code context} marks, the fraction where any of {@code latents} fires; NaN if it marks none. */
    public double recall(int[] latents, Context context) {
        int marked = 0, hit = 0;
        for (int i = 0; i < tokens.size(); i++) {
            if (!context.test(tokens.get(i).prompt(), tokens.get(i).position())) continue;
            marked++;
            if (anyFires(i, latents)) hit++;
        }
        return marked == 0 ? Double.NaN : hit / (double) marked;
    }

    /**
     * The harmonic mean of {@link #precision} and {@link #recall} of {@code latents} for {@code context}; 0 where
     * either is 0 or undefined (a set that never fires, or a context that marks nothing).
     */
    public double f1(int[] latents, Context context) {
        double p = precision(latents, context), r = recall(latents, context);
        return p > 0 && r > 0 ? 2 * p * r / (p + r) : 0;
    }

    /**
     * The {@code n} single latents with the highest {@link #f1} for {@code context}, best first (ties: lower index
     * first). One pass over the tokens counts every latent's firings inside and outside the context.
     */
    public int[] bestByF1(Context context, int n) {
        if (n < 0) throw new IllegalArgumentException("n must be >= 0, got " + n);
        double[] f1 = new double[dSae];
        long[] fired = new long[dSae], inside = new long[dSae];
        long marked = 0;
        for (int i = 0; i < tokens.size(); i++) {
            boolean in = context.test(tokens.get(i).prompt(), tokens.get(i).position());
            if (in) marked++;
            for (int l = 0; l < dSae; l++) {
                if (codes[i * dSae + l] > 0) {
                    fired[l]++;
                    if (in) inside[l]++;
                }
            }
        }
        for (int l = 0; l < dSae; l++) {
            double p = fired[l] == 0 ? 0 : inside[l] / (double) fired[l], r = marked == 0 ? 0 : inside[l] / (double) marked;
            f1[l] = p > 0 && r > 0 ? 2 * p * r / (p + r) : 0;
        }
        return java.util.stream.IntStream.range(0, dSae).boxed()
                .sorted((a, b) -> f1[a] != f1[b] ? Double.compare(f1[b], f1[a]) : Integer.compare(a, b))
                .limit(n).mapToInt(Integer::intValue).toArray();
    }

    /** The fraction of tokens {@code context} marks (the precision of a latent that fires everywhere). */
    public double baseRate(Context context) {
        long n = tokens.stream().filter(t -> context.test(t.prompt(), t.position())).count();
        return tokens.isEmpty() ? Double.NaN : n / (double) tokens.size();
    }

    /**
     * One row per latent of {@code latents}: how often it fires, its precision and recall for {@code context}, and
     * its mean activation where it fires.
     */
    public Table table(int[] latents, Context context) {
        IntColumn latent = IntColumn.create("latent");
        DoubleColumn density = DoubleColumn.create("density"), prec = DoubleColumn.create("precision"),
                rec = DoubleColumn.create("recall"), mean = DoubleColumn.create("mean_when_firing");
        for (int l : latents) {
            int fired = 0;
            double sum = 0;
            for (int i = 0; i < tokens.size(); i++) {
                float v = get(i, l);
                if (v > 0) {
                    fired++;
                    sum += v;
                }
            }
            latent.append(l);
            density.append(tokens.isEmpty() ? Double.NaN : fired / (double) tokens.size());
            prec.append(precision(new int[] {l}, context));
            rec.append(recall(new int[] {l}, context));
            mean.append(fired == 0 ? Double.NaN : sum / fired);
        }
        return Table.create("latents on " + tokens.size() + " tokens", latent, density, prec, rec, mean);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "LatentCodes(%d tokens x %d latents)", tokens.size(), dSae);
    }
}
