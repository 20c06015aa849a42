package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookPoint;
import dev.jlens.hook.HookScope;
import dev.jlens.model.HookedTransformer;
import dev.jlens.util.Names;

import java.util.List;
import java.util.Objects;

/**
 * An SAE spliced into a model's forward pass, as SAELens's {@code HookedSAETransformer.add_sae} does: while attached,
 * the activation at the SAE's hook point is replaced by the SAE's reconstruction (plus, with the error term, the
 * error {@code x - recon}, so the model computes exactly what it did without the SAE while the latents can be read
 * and edited). Close it to detach: {@code try (SaeSplice s = SaeSplice.attach(model, sae, true)) {...}}.
 *
 * <p>While attached the SAE's own hook points are model hook points named {@code <hook>.hook_sae_input},
 * {@code .hook_sae_acts_pre}, {@code .hook_sae_acts_post}, {@code .hook_sae_recons}, {@code .hook_sae_error} (only with
 * the error term) and {@code .hook_sae_output} (SAELens's names), so {@code runWithCache}, {@code hooks(...)} and
 * {@code runWithGradients} reach them. Input, reconstruction, error and output are {@code [..., dIn]} in raw activation
 * units, the latents {@code [..., dSae]} (an {@code attn.hook_z} activation {@code [batch, pos, head, d_head]} is
 * flattened to {@code [batch, pos, head * d_head]} for the SAE and reshaped back afterwards). Editing {@code hook_sae_acts_post} (e.g. zeroing a latent) changes the
 * output; with the error term on, the error is computed from the unedited reconstruction, so only the edit's
 * contribution changes. {@code hook_sae_acts_pre} is for reading: the activation rule belongs to each architecture,
 * so an edited pre-activation cannot be pushed through it; a hook that replaces it fails.
 *
 * <p>Hooks attached at {@code <hook>} itself before the splice see the model's activation; hooks attached after it
 * see the spliced output. {@code model.resetHooks()} removes the splice too (its hook points stay until close).
 */
public final class SaeSplice implements AutoCloseable {
    /** The SAE hook-point suffixes, in the order the SAE runs them. */
    public static final String INPUT = "hook_sae_input", ACTS_PRE = "hook_sae_acts_pre", ACTS_POST = "hook_sae_acts_post",
            RECONS = "hook_sae_recons", ERROR = "hook_sae_error", OUTPUT = "hook_sae_output";

    private final HookedTransformer model;
    private final SparseCoder sae;
    private final String hookName;
    private final boolean useErrorTerm;
    private final List<String> saeHookNames;
    private final HookScope declared;
    private final HookScope attached;
    private final HookPoint input, actsPre, actsPost, recons, error, output;

    private SaeSplice(HookedTransformer model, SparseCoder sae, boolean useErrorTerm) {
        this.model = model;
        this.sae = sae;
        this.hookName = sae.cfg().hookName();
        this.useErrorTerm = useErrorTerm;
        List<String> suffixes = useErrorTerm ? List.of(INPUT, ACTS_PRE, ACTS_POST, RECONS, ERROR, OUTPUT)
                : List.of(INPUT, ACTS_PRE, ACTS_POST, RECONS, OUTPUT);
        this.saeHookNames = suffixes.stream().map(s -> hookName + "." + s).toList();
        try {
            this.declared = model.addHookPoints(hookName, saeHookNames);
        } catch (IllegalStateException e) {
            throw new IllegalStateException("an SAE is already spliced in at '" + hookName + "'; close that splice first", e);
        }
        this.input = model.hook(hookName + "." + INPUT);
        this.actsPre = model.hook(hookName + "." + ACTS_PRE);
        this.actsPost = model.hook(hookName + "." + ACTS_POST);
        this.recons = model.hook(hookName + "." + RECONS);
        this.error = useErrorTerm ? model.hook(hookName + "." + ERROR) : null;
        this.output = model.hook(hookName + "." + OUTPUT);
        this.attached = model.hooks(Hook.fwd(hookName, (x, hp) -> splice(x)));
    }

    /**
     * Splices {@code sae} in at its hook point ({@code sae.cfg().hookName()}); with {@code useErrorTerm} the model's
     * output is unchanged (up to float rounding) while the SAE's hook points can be read and edited.
     */
    public static SaeSplice attach(HookedTransformer model, SparseCoder sae, boolean useErrorTerm) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(sae, "sae");
        SaeConfig cfg = sae.cfg();
        if (cfg.nSources() != 1) {
            throw new IllegalArgumentException("a crosscoder over " + cfg.nSources() + " sources cannot be spliced in at one hook point");
        }
        if (cfg.hookPoint().isEmpty()) {
            throw new IllegalArgumentException("the SAE has no hook name; set one with cfg.withHook(\"blocks.L.hook_resid_pre\")");
        }
        String hook = cfg.hookName();
        if (!model.hookNames().contains(hook)) {
            throw new IllegalArgumentException("the SAE reads hook point '" + hook + "', which this model does not have. Nearest: "
                    + Names.nearest(hook, model.hookNames(), 5));
        }
        checkWidth(model, cfg);
        return new SaeSplice(model, sae, useErrorTerm);
    }

    /** Splices {@code sae} in without the error term: the model runs on the reconstruction. */
    public static SaeSplice attach(HookedTransformer model, SparseCoder sae) {
        return attach(model, sae, false);
    }

    /** Runs one token and checks the width of the activation at the SAE's hook point against {@code dIn}. */
    private static void checkWidth(HookedTransformer model, SaeConfig cfg) {
        Shape[] seen = new Shape[1];
        try (NDScope scope = new NDScope()) {
            model.runWithHooks(new long[][] {{0L}}, Hook.fwd(cfg.hookName(), (x, hp) -> {
                seen[0] = x.getShape();
                return null;
            }));
        }
        if (seen[0] != null && flatWidth(seen[0], cfg.dIn()) < 0) {
            throw widthError(cfg, seen[0]);
        }
    }

    /** The number of trailing axes that flatten to {@code dIn} (1, or 2 for per-head activations), or -1. */
    static int flatWidth(Shape s, int dIn) {
        int r = s.dimension();
        if (r >= 1 && s.get(r - 1) == dIn) return 1;
        if (r >= 2 && s.get(r - 1) * s.get(r - 2) == dIn) return 2;
        return -1;
    }

    private static IllegalArgumentException widthError(SaeConfig cfg, Shape actual) {
        return new IllegalArgumentException("the SAE expects activations of width d_in = " + cfg.dIn() + " at '" + cfg.hookName()
                + "', but the model's activation there has shape " + actual + " (width " + actual.get(actual.dimension() - 1) + ")");
    }

    /** {@code x} as {@code [..., dIn]} for the SAE (flattening heads when needed). */
    static NDArray flatten(NDArray x, SaeConfig cfg) {
        Shape s = x.getShape();
        int axes = flatWidth(s, cfg.dIn());
        if (axes < 0) throw widthError(cfg, s);
        if (axes == 1) return x;
        return x.reshape(s.slice(0, s.dimension() - 2).add(cfg.dIn()));
    }

    /** The replacement for activation {@code x}: the SAE's hook points run inside. */
    private NDArray splice(NDArray x0) {
        SaeConfig cfg = sae.cfg();
        NDArray x = flatten(x0, cfg);
        NDArray xIn = input.run(x);
        boolean edited = xIn != x;
        if (actsPre.isActive()) {
            // read-only view of the pre-activations: computed only when someone listens
            NDArray pre = sae.weights().preActs(Losses.scaled(xIn, cfg), cfg.applyBDecToInput());
            NDArray seen = actsPre.run(pre);
            if (seen != pre && !isGradientProbe(seen, pre)) {
                throw new UnsupportedOperationException("a hook replaced '" + actsPre.name() + "'; pre-activations can be read "
                        + "but not edited (the activation rule belongs to the architecture): edit '" + actsPost.name() + "' instead");
            }
        }
        NDArray f = sae.encode(xIn);
        NDArray fOut = actsPost.run(f);
        edited |= fOut != f;
        NDArray r = sae.decode(fOut);
        double s = cfg.inputScale();
        if (s != 1.0) r = r.div((float) s);
        NDArray rOut = recons.run(r);
        edited |= rOut != r;
        NDArray out = rOut;
        if (useErrorTerm) {
            // the error against the unedited reconstruction (SAELens recomputes it with the SAE's hooks disabled), so
            // an edit changes the output by exactly the edit's contribution; with no edit, recon + (x - recon)
            NDArray clean = edited ? sae.reconstruct(x) : rOut;
            out = rOut.add(error.run(x.sub(clean)));
        }
        out = output.run(out);
        return out == x ? x0 : out.reshape(x0.getShape());
    }

    /** During a gradient run every hook point adds a zero probe: that is not an edit. */
    private static boolean isGradientProbe(NDArray seen, NDArray pre) {
        return seen.getShape().equals(pre.getShape()) && seen.hasGradient();
    }

    /** The spliced SAE. */
    public SparseCoder sae() {
        return sae;
    }

    /** The model hook point the SAE replaces. */
    public String hookName() {
        return hookName;
    }

    /** Whether the error term keeps the model's output unchanged. */
    public boolean useErrorTerm() {
        return useErrorTerm;
    }

    /** The SAE's hook-point names in the model while attached ({@code <hook>.hook_sae_acts_post}, ...). */
    public List<String> hookNames() {
        return saeHookNames;
    }

    /** The model hook-point name of one of the SAE's points, e.g. {@code hook(SaeSplice.ACTS_POST)}. */
    public String hook(String suffix) {
        String n = hookName + "." + suffix;
        if (!saeHookNames.contains(n)) {
            throw new IllegalArgumentException("no SAE hook point '" + suffix + "' here; this splice has " + saeHookNames);
        }
        return n;
    }

    /** Detaches the SAE and removes its hook points; closing twice is harmless. */
    @Override
    public void close() {
        attached.close();
        declared.close();
    }

    @Override
    public String toString() {
        return "SaeSplice[" + sae.cfg() + " at " + hookName + (useErrorTerm ? ", with error term" : "") + "]";
    }
}
