package dev.jlens.geometry;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.data.CyclicArith;
import dev.jlens.data.Example;
import dev.jlens.data.Task;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookFn;
import dev.jlens.hook.HookScope;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.ToIntFunction;

/**
 * A cycle's representation in a model trained on {@link CyclicArith}: the residual stream at the start word
 * ({@code Tuesday} in {@code Tuesday plus 3 days is}) at one hook point, its top-2 principal plane, the class means
 * there and their {@link CyclicOrder}, the {@link Reducibility} indices of the points, and the causal test: rotate
 * the start word's representation in that plane by {@code k} steps of the cycle and count the answers that move by
 * {@code k}.
 *
 * <pre>{@code
 * CycleProbe p = CycleProbe.fit(model, task, prompts, "blocks.0.hook_resid_pre");
 * p.order();                          // in cyclic order? spacing error?
 * p.rotationTest(model, prompts, 3);  // fraction of answers moved by exactly 3 days
 * }</pre>
 *
 * @param hookName where the representation is read and rotated
 * @param cycle the cycle of the prompts (days or months; every prompt must be of this cycle)
 * @param pca the top-2 principal components of the start word's activations
 * @param points each prompt's activation in the plane {@code [n][2]}
 * @param labels each prompt's start index
 * @param means the class means in the plane {@code [cycle length][2]}
 * @param order how the class means go around their centre
 */
public record CycleProbe(String hookName, CyclicArith.Cycle cycle, Pca pca, double[][] points, int[] labels,
        double[][] means, CyclicOrder order) {

    private static final int CHUNK = 256;

    /** Reads the start word's activation at {@code hookName} over {@code prompts} (all of one cycle) and fits. */
    public static CycleProbe fit(HookedTransformer model, List<Example<CyclicArith.Meta>> prompts, String hookName) {
        CyclicArith.Cycle cycle = cycleOf(prompts);
        double[][] acts = activations(model, prompts, hookName, m -> m.startPosition());
        Pca pca = Pca.fit(acts, 2);
        double[][] xy = pca.project(acts);
        int k = cycle.length();
        int[] labels = new int[prompts.size()];
        double[][] means = new double[k][2];
        int[] count = new int[k];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = prompts.get(i).meta().problem().start();
            means[labels[i]][0] += xy[i][0];
            means[labels[i]][1] += xy[i][1];
            count[labels[i]]++;
        }
        for (int c = 0; c < k; c++) {
            if (count[c] == 0) throw new IllegalArgumentException("no prompt starts from " + cycle.names().get(c));
            means[c][0] /= count[c];
            means[c][1] /= count[c];
        }
        return new CycleProbe(hookName, cycle, pca, xy, labels, means, CyclicOrder.of(means));
    }

    /** The separability index of the prompts' points in the plane. */
    public Reducibility.Separability separability() {
        return Reducibility.separability(points);
    }

    /** The ε-mixture index (ε = 0.1) of the prompts' points in the plane. */
    public Reducibility.Mixture mixture() {
        return Reducibility.mixture(points);
    }

    /** The rotation about the class means' centre in the plane (centre in the model's coordinates). */
    public PlaneRotation rotation() {
        double[] centre = pca.mean().clone();
        double cx = 0, cy = 0;
        for (double[] m : means) {
            cx += m[0] / means.length;
            cy += m[1] / means.length;
        }
        double[] u = pca.components()[0], v = pca.components()[1];
        for (int j = 0; j < centre.length; j++) centre[j] += cx * u[j] + cy * v[j];
        return PlaneRotation.of(centre, u, v);
    }

    /**
     * The fraction of {@code prompts} whose predicted answer (the cycle's name with the largest logit at {@code is})
     * is the true answer moved on by {@code k}, when the start word's representation is rotated by {@code k} steps of
     * the cycle ({@code k * order().step()}); {@code k = 0} is the plain accuracy.
     */
    public double rotationTest(HookedTransformer model, CyclicArith task, List<Example<CyclicArith.Meta>> prompts,
            int k) {
        PlaneRotation rot = rotation();
        double angle = k * order.step();
        int[] predicted = predict(model, task, prompts, hookName, k == 0 ? null : chunk -> rot.hook(starts(chunk), angle));
        int hit = 0;
        for (int i = 0; i < prompts.size(); i++) {
            int want = Math.floorMod(prompts.get(i).meta().answer() + k, cycle.length());
            hit += predicted[i] == want ? 1 : 0;
        }
        return hit / (double) prompts.size();
    }

    /**
     * The linear contrast to {@link #rotationTest}: the fraction of {@code prompts} whose answer moves by exactly
     * {@code k} when one fixed vector, the in-plane difference of class means {@code means[k] - means[0]} (the first
     * name moved {@code k} steps), is added to every start word's representation. On a circle one translation moves
     * only the names near the first one where they should go; a rotation moves all of them.
     */
    public double translationTest(HookedTransformer model, CyclicArith task, List<Example<CyclicArith.Meta>> prompts,
            int k) {
        int c = Math.floorMod(k, cycle.length());
        double dx = means[c][0] - means[0][0], dy = means[c][1] - means[0][1];
        double[] u = pca.components()[0], v = pca.components()[1];
        double[] delta = new double[u.length];
        for (int j = 0; j < delta.length; j++) delta[j] = dx * u[j] + dy * v[j];
        int[] predicted = predict(model, task, prompts, hookName, chunk -> shift(starts(chunk), delta));
        int hit = 0;
        for (int i = 0; i < prompts.size(); i++) {
            hit += predicted[i] == Math.floorMod(prompts.get(i).meta().answer() + k, cycle.length()) ? 1 : 0;
        }
        return hit / (double) prompts.size();
    }

    /**
     * The cycle's name each prompt is answered with (argmax over the cycle's names at {@code is}), with the forward
     * hook {@code hookFor} makes for each chunk of prompts attached at {@code hookName} (none when {@code hookFor} is
     * null): {@code predict(model, task, prompts, hookName, chunk -> rotation.hook(starts(chunk), angle))}.
     */
    public static int[] predict(HookedTransformer model, CyclicArith task, List<Example<CyclicArith.Meta>> prompts,
            String hookName, Function<List<Example<CyclicArith.Meta>>, HookFn> hookFor) {
        CyclicArith.Cycle cycle = cycleOf(prompts);
        long[] names = task.nameIds(cycle);
        int[] out = new int[prompts.size()];
        for (int from = 0; from < prompts.size(); from += CHUNK) {
            List<Example<CyclicArith.Meta>> chunk = prompts.subList(from, Math.min(prompts.size(), from + CHUNK));
            Batch batch = promptBatch(chunk);
            try (NDScope scope = new NDScope();
                 HookScope hooks = hookFor == null ? new HookScope()
                         : model.hooks(Hook.fwd(hookName, hookFor.apply(chunk)))) {
                NDArray logits = model.forward(batch);
                int p = (int) logits.getShape().get(1), v = (int) logits.getShape().get(2);
                float[] flat = logits.toFloatArray();
                for (int r = 0; r < chunk.size(); r++) {
                    int at = chunk.get(r).meta().answerPosition() - 1;
                    int best = 0;
                    for (int c = 1; c < names.length; c++) {
                        if (flat[(r * p + at) * v + (int) names[c]] > flat[(r * p + at) * v + (int) names[best]]) best = c;
                    }
                    out[from + r] = best;
                }
            }
        }
        return out;
    }

    /** The position of the start word of each prompt. */
    public static int[] starts(List<Example<CyclicArith.Meta>> prompts) {
        return prompts.stream().mapToInt(e -> e.meta().startPosition()).toArray();
    }

    /** The activation at {@code hookName} of each prompt at the position {@code position} picks, {@code [n][d]}. */
    public static double[][] activations(HookedTransformer model, List<Example<CyclicArith.Meta>> prompts,
            String hookName, ToIntFunction<CyclicArith.Meta> position) {
        List<double[]> rows = new ArrayList<>(prompts.size());
        for (int from = 0; from < prompts.size(); from += CHUNK) {
            List<Example<CyclicArith.Meta>> chunk = prompts.subList(from, Math.min(prompts.size(), from + CHUNK));
            try (ActivationCache cache = model.runWithCache(promptBatch(chunk), NameFilter.of(hookName))) {
                NDArray a = cache.get(hookName);
                int p = (int) a.getShape().get(1), d = (int) a.getShape().get(2);
                float[] flat = a.toFloatArray();
                for (int r = 0; r < chunk.size(); r++) {
                    int at = position.applyAsInt(chunk.get(r).meta());
                    double[] row = new double[d];
                    for (int j = 0; j < d; j++) row[j] = flat[(r * p + at) * d + j];
                    rows.add(row);
                }
            }
        }
        return rows.toArray(double[][]::new);
    }

    /**
     * A forward hook on an activation {@code [batch, pos, d]} that adds {@code delta} at row {@code r}'s position
     * {@code positions[r]} only: a one-direction (linear) intervention, the contrast to a rotation.
     */
    public static HookFn shift(int[] positions, double[] delta) {
        int[] pos = positions.clone();
        float[] df = new float[delta.length];
        for (int j = 0; j < df.length; j++) df[j] = (float) delta[j];
        return (act, hook) -> {
            int b = (int) act.getShape().get(0), p = (int) act.getShape().get(1), d = (int) act.getShape().get(2);
            if (b != pos.length || d != df.length) {
                throw new IllegalArgumentException("hook " + hook.name() + ": expected [" + pos.length + ", pos, "
                        + df.length + "], got " + act.getShape());
            }
            float[] mask = new float[b * p];
            for (int r = 0; r < b; r++) mask[r * p + pos[r]] = 1;
            ai.djl.ndarray.NDManager nd = act.getManager();
            return act.add(nd.create(mask, new ai.djl.ndarray.types.Shape(b, p, 1)).mul(nd.create(df)));
        };
    }

    /** The prompts (up to and including {@code is}), right-padded. */
    public static Batch promptBatch(List<Example<CyclicArith.Meta>> prompts) {
        long[][] ids = new long[prompts.size()][];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = Arrays.copyOf(prompts.get(i).ids(), prompts.get(i).meta().answerPosition());
        }
        return Batch.rightPadded(ids, Task.PAD_ID);
    }

    private static CyclicArith.Cycle cycleOf(List<Example<CyclicArith.Meta>> prompts) {
        if (prompts.isEmpty()) throw new IllegalArgumentException("no prompts");
        CyclicArith.Cycle c = prompts.get(0).meta().problem().cycle();
        for (Example<CyclicArith.Meta> e : prompts) {
            if (e.meta().problem().cycle() != c) {
                throw new IllegalArgumentException("prompts mix " + c + " and " + e.meta().problem().cycle()
                        + "; a probe reads one cycle");
            }
        }
        return c;
    }

    @Override
    public String toString() {
        double[] r = pca.explainedRatio();
        return String.format(Locale.ROOT, "CycleProbe(%s at %s, %d prompts, plane explains %.3f + %.3f, %s)", cycle,
                hookName, points.length, r[0], r[1], order);
    }
}
