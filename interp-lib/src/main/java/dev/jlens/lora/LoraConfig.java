package dev.jlens.lora;

import java.util.List;

/**
 * A LoRA adapter's settings, as PEFT's {@code LoraConfig} names them.
 *
 * @param r             rank of the update {@code B A} ({@code A} is {@code [r, in]}, {@code B} {@code [out, r]})
 * @param alpha         {@code lora_alpha}; the update is scaled by {@code alpha / r}
 * @param targetModules layer names as PEFT matches them: a module is adapted when its name equals an entry or ends
 *                      with {@code "." + entry} ({@code c_attn}, {@code attn.c_proj}, {@code q_proj}, ...)
 * @param dropout       {@code lora_dropout}, recorded in the saved config; JLens trains without dropout, so an
 *                      adapter made here must have 0 (a loaded one may have any: dropout does not act at inference)
 * @param seed          seed of {@code A}'s initialisation (Kaiming-uniform with {@code a = sqrt(5)}, as PEFT)
 */
public record LoraConfig(int r, double alpha, List<String> targetModules, double dropout, long seed) {
    public LoraConfig {
        if (r <= 0) throw new IllegalArgumentException("LoRA rank r must be positive, got " + r);
        if (!(alpha > 0) || Double.isInfinite(alpha)) {
            throw new IllegalArgumentException("lora_alpha must be positive and finite, got " + alpha);
        }
        if (targetModules == null || targetModules.isEmpty()) {
            throw new IllegalArgumentException("name at least one target module (e.g. c_attn for GPT-2, q_proj and "
                    + "v_proj for Llama)");
        }
        targetModules = List.copyOf(targetModules);
        for (String t : targetModules) {
            if (t.isBlank() || t.startsWith(".") || t.endsWith(".")) {
                throw new IllegalArgumentException("bad target module name '" + t + "'");
            }
        }
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("lora_dropout must be in [0, 1), got "
                + dropout);
    }

    /** Rank {@code r}, {@code alpha}, these targets, no dropout, seed 0. */
    public static LoraConfig of(int r, double alpha, String... targetModules) {
        return new LoraConfig(r, alpha, List.of(targetModules), 0, 0);
    }

    /** The same settings with another initialisation seed. */
    public LoraConfig withSeed(long newSeed) {
        return new LoraConfig(r, alpha, targetModules, dropout, newSeed);
    }

    /** The factor of the update, {@code alpha / r}. */
    public double scaling() {
        return alpha / r;
    }

    /** True if PEFT's rule adapts the layer named {@code module} (a full name such as {@code model.layers.0.self_attn.q_proj}). */
    public boolean targets(String module) {
        for (String t : targetModules) if (module.equals(t) || module.endsWith("." + t)) return true;
        return false;
    }
}
