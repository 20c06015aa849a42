package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookFn;
import dev.jlens.hook.HookScope;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Adds {@code strength * vector} to the activations at some hook points and token positions.
 *
 * <pre>{@code
 * var steer = Steering.of(vector).strength(4).positions(Positions.from(3));   // at the vector's own hook
 * try (HookScope s = steer.attach(model)) { model.forward(tokens); }          // or model.hooks(steer.hooks())
 * steer.generate(model, "the dog", Generation.Config.greedy(10)).texts();
 * steer.atLayers(model, "resid_pre", 1, 2);                                   // elsewhere, same vector
 * }</pre>
 *
 * <p>Positions: under {@link #hooks()} (plain forward passes) a position is an index along the activations'
 * position axis. Generation with a KV cache feeds only the new token after the prompt, so a plain hook cannot tell
 * where it is; {@link #generate} therefore attaches hooks that count the positions already fed, and subtracts each
 * prompt's left padding, so {@code all()} and {@code from(p)} mean the same tokens as in one forward pass over the
 * whole sequence (and generation with and without the cache agree). Strength 0 returns the activation untouched.
 *
 * @param vector    what to add (its hook is the default place)
 * @param hookNames hook points to add it at, all of the vector's width
 * @param positions which positions ({@link Positions#all()}, {@link Positions#from}, {@link Positions#at})
 * @param strength  multiplier of the vector
 */
public record Steering(SteeringVector vector, List<String> hookNames, Positions positions, double strength) {

    /** Checks the settings. */
    public Steering {
        if (vector == null) throw new IllegalArgumentException("vector must not be null");
        hookNames = List.copyOf(hookNames == null || hookNames.isEmpty() ? List.of(vector.hook()) : hookNames);
        if (positions == null) positions = Positions.all();
        if (positions instanceof Positions.Last) {
            throw new IllegalArgumentException("Positions.last() is for reading vectors; to steer the prompt's last "
                    + "token and everything generated after it use Positions.from(promptLength - 1), or Positions.all()");
        }
        if (!Double.isFinite(strength)) throw new IllegalArgumentException("strength must be finite, got " + strength);
    }

    /** The vector at its own hook, every position, strength 1. */
    public static Steering of(SteeringVector vector) {
        return new Steering(vector, List.of(vector.hook()), Positions.all(), 1);
    }

    /** The same steering with another strength. */
    public Steering strength(double s) {
        return new Steering(vector, hookNames, positions, s);
    }

    /** The same steering at other positions. */
    public Steering positions(Positions p) {
        return new Steering(vector, hookNames, p, strength);
    }

    /** The same steering at other hook points (full names). */
    public Steering at(String... hookNames) {
        return new Steering(vector, List.of(hookNames), positions, strength);
    }

    /** The same steering at {@code shortName} ({@code "resid_pre"}, {@code "resid_post"}) of the given layers. */
    public Steering atLayers(HookedTransformer model, String shortName, int... layers) {
        if (layers.length == 0) throw new IllegalArgumentException("give at least one layer");
        String[] names = new String[layers.length];
        for (int i = 0; i < layers.length; i++) names[i] = model.actName(shortName, layers[i]);
        return at(names);
    }

    /** Forward hooks for {@code model.hooks(...)} or {@code runWithHooks}; positions index each forward pass. */
    public Hook[] hooks() {
        return hookNames.stream().map(h -> Hook.fwd(h, fn(null, new int[0]))).toArray(Hook[]::new);
    }

    /** Attaches the hooks until the returned scope is closed (unknown hook names throw with the nearest). */
    public HookScope attach(HookedTransformer model) {
        return model.hooks(hooks());
    }

    /** Steered generation from one text prompt (tokenized with BOS). */
    public Generation.Result generate(HookedTransformer model, String prompt, Generation.Config config) {
        return generate(model, new long[][] {model.toTokens(prompt)}, config);
    }

    /**
     * Steered generation: positions count each prompt's own tokens (its left padding excluded) and continue over the
     * generated ones, with or without the KV cache.
     */
    public Generation.Result generate(HookedTransformer model, long[][] prompts, Generation.Config config) {
        int max = Arrays.stream(prompts).mapToInt(p -> p.length).max().orElse(0);
        int[] pad = new int[prompts.length];
        for (int r = 0; r < prompts.length; r++) pad[r] = max - prompts[r].length;
        Cursor cursor = new Cursor(config.useKvCache());
        Hook[] hs = hookNames.stream().map(h -> Hook.fwd(h, fn(cursor, pad))).toArray(Hook[]::new);
        try (HookScope s = model.hooks(hs)) {
            return model.generate(prompts, config);
        }
    }

    /** Counts the positions each hook point has seen in this generation (with a KV cache; else every pass is whole). */
    private static final class Cursor {
        private final boolean incremental;
        private final Map<String, Integer> seen = new HashMap<>();

        Cursor(boolean incremental) {
            this.incremental = incremental;
        }

        int advance(String hook, int length) {
            if (!incremental) return 0;
            int start = seen.getOrDefault(hook, 0);
            seen.put(hook, start + length);
            return start;
        }
    }

    private HookFn fn(Cursor cursor, int[] pad) {
        float[] delta = new float[vector.dim()];
        for (int i = 0; i < delta.length; i++) delta[i] = (float) (strength * vector.vector()[i]);
        return (x, hp) -> {
            Shape s = x.getShape();
            if (s.dimension() != 3 || s.get(2) != delta.length) {
                throw new IllegalArgumentException("cannot steer at '" + hp.name() + "': its activations have shape "
                        + s + ", the steering vector has width " + delta.length + " (steer [batch, pos, d_model] "
                        + "points such as resid_pre, resid_post, attn_out, mlp_out)");
            }
            int b = (int) s.get(0), p = (int) s.get(1);
            int start = cursor == null ? 0 : cursor.advance(hp.name(), p);
            if (strength == 0) return null;
            boolean[] sel = new boolean[b * p];
            int count = 0;
            for (int r = 0; r < b; r++) {
                int offset = r < pad.length ? pad[r] : 0;
                for (int j = 0; j < p; j++) {
                    int pos = start + j - offset;
                    if (pos >= 0 && positions.contains(pos, Integer.MAX_VALUE)) {
                        sel[r * p + j] = true;
                        count++;
                    }
                }
            }
            if (count == 0) return null;
            NDManager m = x.getManager();
            NDArray add = m.create(delta, new Shape(1, 1, delta.length)).toType(x.getDataType(), false);
            NDArray steered = x.add(add);
            if (count == b * p) return steered;
            // where() does not broadcast its condition here: expand the mask to the activation's shape
            NDArray mask = m.create(sel, new Shape(b, p, 1)).broadcast(s);
            return NDArrays.where(mask, steered, x);
        };
    }

    @Override
    public String toString() {
        return "Steering(" + vector + " x " + strength + " at " + hookNames + ", " + positions + ")";
    }
}
