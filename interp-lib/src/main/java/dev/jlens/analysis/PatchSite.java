package dev.jlens.analysis;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Where an activation is patched: the residual stream and the sublayer outputs per [layer, position], or one
 * attention head's {@code z}, {@code q}, {@code k}, {@code v} or {@code pattern} per [layer, head] (every position)
 * or per [layer, head, position] (for {@code pattern} the position is the query's).
 */
public enum PatchSite {
    RESID_PRE("resid_pre", false),
    RESID_MID("resid_mid", false),
    RESID_POST("resid_post", false),
    ATTN_OUT("attn_out", false),
    MLP_OUT("mlp_out", false),
    Z("z", true),
    Q("q", true),
    K("k", true),
    V("v", true),
    PATTERN("pattern", true);

    private final String shortName;
    private final boolean head;

    PatchSite(String shortName, boolean head) {
        this.shortName = shortName;
        this.head = head;
    }

    /** TransformerLens's short hook name ({@code resid_pre}, {@code z}, ...). */
    public String shortName() {
        return shortName;
    }

    /** True for per-head sites ({@code z q k v pattern}). */
    public boolean isHead() {
        return head;
    }

    /** The site called {@code name} ({@code resid_pre}, {@code RESID_PRE}, {@code z}, ...). */
    public static PatchSite parse(String name) {
        if (name != null) {
            String n = name.trim().toLowerCase(Locale.ROOT);
            for (PatchSite s : values()) {
                if (s.shortName.equals(n) || s.name().toLowerCase(Locale.ROOT).equals(n)) return s;
            }
        }
        throw new IllegalArgumentException("unknown patch site '" + name + "': valid sites are " + names());
    }

    /** Every site's short name, comma-separated. */
    public static String names() {
        return Arrays.stream(values()).map(PatchSite::shortName).collect(Collectors.joining(", "));
    }

    @Override
    public String toString() {
        return shortName;
    }
}
