package dev.jlens.hook;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Full hook-point names from short ones, as TransformerLens's {@code utils.get_act_name}:
 * {@code actName("resid_pre", 3)} is {@code "blocks.3.hook_resid_pre"}, {@code actName("pattern", 0)} is
 * {@code "blocks.0.attn.hook_pattern"}, {@code actName("scale", 2, "ln1")} is {@code "blocks.2.ln1.hook_scale"}
 * and {@code actName("scale")} is {@code "ln_final.hook_scale"}.
 *
 * <p>Short names: {@code embed}, {@code pos_embed} (no layer); {@code resid_pre}, {@code resid_mid},
 * {@code resid_post}, {@code attn_out}, {@code mlp_out} (block level); {@code q}, {@code k}, {@code v}, {@code z},
 * {@code rot_q}, {@code rot_k}, {@code result}, {@code pattern}, {@code attn_scores} (under {@code attn.});
 * {@code pre}, {@code post}, {@code pre_linear} (under {@code mlp.}); {@code scale}, {@code normalized} (under
 * {@code ln1.}/{@code ln2.} with a layer, {@code ln_final.} without). TransformerLens's aliases work too:
 * {@code attn} for {@code pattern}, {@code attn_logits} for {@code attn_scores}, {@code query}/{@code key}/
 * {@code value}, {@code mlp_pre}/{@code mlp_post}. Without a layer, a block name gives its suffix
 * ({@code actName("resid_pre")} is {@code "hook_resid_pre"}), which {@link NameFilter#of} accepts for every
 * layer. A name that already holds a dot or starts with {@code hook_} is returned as it is when no layer is given.
 * TransformerLens's compact forms ({@code "pattern3"}) are not parsed.
 *
 * <p>These names are what the models here declare; {@code HookedTransformer.actName} also resolves negative layers
 * and checks that the model has the point (GPT-2 has no {@code rot_q}, Llama no {@code pos_embed}).
 */
public final class HookNames {
    private HookNames() {}

    private static final Set<String> EMBEDS = Set.of("embed", "pos_embed");
    private static final Set<String> BLOCK = Set.of("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out");
    private static final Set<String> ATTN = Set.of("q", "k", "v", "z", "rot_q", "rot_k", "result", "pattern",
            "attn_scores");
    private static final Set<String> MLP = Set.of("pre", "post", "pre_linear");
    private static final Set<String> NORM = Set.of("scale", "normalized");
    private static final Map<String, String> ALIASES = new LinkedHashMap<>();

    static {
        ALIASES.put("attn", "pattern");
        ALIASES.put("attn_logits", "attn_scores");
        ALIASES.put("query", "q");
        ALIASES.put("key", "k");
        ALIASES.put("value", "v");
        ALIASES.put("mlp_pre", "pre");
        ALIASES.put("mlp_post", "post");
    }

    /** Every short name {@link #actName} accepts (aliases included), sorted. */
    public static Set<String> shortNames() {
        Set<String> all = new TreeSet<>();
        for (Set<String> s : List.of(EMBEDS, BLOCK, ATTN, MLP, NORM)) all.addAll(s);
        all.addAll(ALIASES.keySet());
        return all;
    }

    /**
     * The name without a layer: {@code "embed"} gives {@code "hook_embed"}, {@code "scale"} gives
     * {@code "ln_final.hook_scale"}, a block name its suffix ({@code "hook_resid_pre"}, {@code "attn.hook_pattern"}).
     */
    public static String actName(String name) {
        String n = canonical(name, true);
        if (n.contains(".") || n.startsWith("hook_")) return n;
        if (NORM.contains(n)) return "ln_final.hook_" + n;
        return sublayer(n) + "hook_" + n;
    }

    /** The name in block {@code layer}: {@code actName("resid_pre", 3)} is {@code "blocks.3.hook_resid_pre"}. */
    public static String actName(String name, int layer) {
        return actName(name, layer, null);
    }

    /**
     * The name in block {@code layer} of a sublayer: {@code actName("scale", 3, "ln1")} is
     * {@code "blocks.3.ln1.hook_scale"}. {@code sublayer} is needed for {@code scale} and {@code normalized}
     * ({@code ln1} or {@code ln2}); for other names it may be null or must agree ({@code attn}, {@code mlp}, or
     * TransformerLens's {@code a}/{@code m}). {@code layer} must be {@code >= 0}: negative layers need the model
     * ({@code model.actName}).
     */
    public static String actName(String name, int layer, String sublayer) {
        String n = canonical(name, false);
        if (layer < 0) {
            throw new IllegalArgumentException("layer " + layer + " is negative; HookNames cannot know the number of "
                    + "layers: use model.actName(\"" + name + "\", " + layer + ") to count from the last layer");
        }
        if (EMBEDS.contains(n)) {
            throw new IllegalArgumentException("'" + n + "' has no layer: use actName(\"" + n + "\") (hook_" + n + ")");
        }
        String sub = sublayer == null ? null : switch (sublayer) {
            case "a", "attention" -> "attn";
            case "m" -> "mlp";
            case "b", "block", "blocks", "" -> "";
            default -> sublayer;
        };
        String prefix = "blocks." + layer + ".";
        if (NORM.contains(n)) {
            if (!"ln1".equals(sub) && !"ln2".equals(sub)) {
                throw new IllegalArgumentException("'" + n + "' of a layer needs its norm: actName(\"" + n + "\", "
                        + layer + ", \"ln1\") (before attention) or \"ln2\" (before the MLP)"
                        + (sublayer == null ? "" : "; got sublayer '" + sublayer + "'")
                        + ". The final norm's: actName(\"" + n + "\")");
            }
            return prefix + sub + ".hook_" + n;
        }
        String implied = sublayer(n);
        String impliedName = implied.isEmpty() ? "" : implied.substring(0, implied.length() - 1);
        if (sub != null && !sub.equals(impliedName)) {
            throw new IllegalArgumentException("'" + n + "' is " + (impliedName.isEmpty() ? "a block-level point"
                    : "under " + impliedName) + ", not under sublayer '" + sublayer + "': leave the sublayer out");
        }
        return prefix + implied + "hook_" + n;
    }

    /** The name with aliases resolved, or a full name passed through; unknown names throw listing the valid ones. */
    private static String canonical(String name, boolean allowFull) {
        if (name == null) throw new IllegalArgumentException("name is null; " + valid());
        String n = ALIASES.getOrDefault(name, name);
        if (n.startsWith("hook_") && !n.contains(".")) {
            String bare = n.substring("hook_".length());
            if (isShort(bare)) n = bare;
            else if (allowFull) return n;
        }
        if (isShort(n)) return n;
        if (allowFull && n.contains(".")) return n;
        throw new IllegalArgumentException("unknown activation name '" + name + "'"
                + (n.contains(".") ? " (a full name takes no layer)" : "") + "; " + valid());
    }

    private static boolean isShort(String n) {
        return EMBEDS.contains(n) || BLOCK.contains(n) || ATTN.contains(n) || MLP.contains(n) || NORM.contains(n);
    }

    private static String sublayer(String n) {
        if (ATTN.contains(n)) return "attn.";
        if (MLP.contains(n)) return "mlp.";
        return "";
    }

    private static String valid() {
        return "valid short names: " + String.join(", ", shortNames());
    }
}
