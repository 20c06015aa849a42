package dev.jlens.hook;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static dev.jlens.hook.HookNames.actName;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HookNamesTest {

    @Test
    void shortNamesWithALayerGiveTransformerLensNames() {
        Map<String, String> expected = Map.ofEntries(
                Map.entry("resid_pre", "blocks.3.hook_resid_pre"),
                Map.entry("resid_mid", "blocks.3.hook_resid_mid"),
                Map.entry("resid_post", "blocks.3.hook_resid_post"),
                Map.entry("attn_out", "blocks.3.hook_attn_out"),
                Map.entry("mlp_out", "blocks.3.hook_mlp_out"),
                Map.entry("q", "blocks.3.attn.hook_q"),
                Map.entry("k", "blocks.3.attn.hook_k"),
                Map.entry("v", "blocks.3.attn.hook_v"),
                Map.entry("z", "blocks.3.attn.hook_z"),
                Map.entry("rot_q", "blocks.3.attn.hook_rot_q"),
                Map.entry("rot_k", "blocks.3.attn.hook_rot_k"),
                Map.entry("result", "blocks.3.attn.hook_result"),
                Map.entry("pattern", "blocks.3.attn.hook_pattern"),
                Map.entry("attn_scores", "blocks.3.attn.hook_attn_scores"),
                Map.entry("pre", "blocks.3.mlp.hook_pre"),
                Map.entry("post", "blocks.3.mlp.hook_post"),
                Map.entry("pre_linear", "blocks.3.mlp.hook_pre_linear"),
                // TransformerLens's aliases and the hook_ prefix
                Map.entry("attn", "blocks.3.attn.hook_pattern"),
                Map.entry("attn_logits", "blocks.3.attn.hook_attn_scores"),
                Map.entry("query", "blocks.3.attn.hook_q"),
                Map.entry("key", "blocks.3.attn.hook_k"),
                Map.entry("value", "blocks.3.attn.hook_v"),
                Map.entry("mlp_pre", "blocks.3.mlp.hook_pre"),
                Map.entry("mlp_post", "blocks.3.mlp.hook_post"),
                Map.entry("hook_resid_post", "blocks.3.hook_resid_post"));
        expected.forEach((shortName, full) -> assertEquals(full, actName(shortName, 3), shortName));
        assertEquals("blocks.0.ln1.hook_scale", actName("scale", 0, "ln1"));
        assertEquals("blocks.2.ln2.hook_normalized", actName("normalized", 2, "ln2"));
        // a sublayer that agrees with the name is accepted, TransformerLens's abbreviations included
        assertEquals("blocks.1.attn.hook_z", actName("z", 1, "attn"));
        assertEquals("blocks.1.attn.hook_z", actName("z", 1, "a"));
        assertEquals("blocks.1.mlp.hook_post", actName("post", 1, "m"));
        assertEquals("blocks.1.hook_resid_pre", actName("resid_pre", 1, "block"));
    }

    @Test
    void namesWithoutALayer() {
        assertEquals("hook_embed", actName("embed"));
        assertEquals("hook_pos_embed", actName("pos_embed"));
        assertEquals("ln_final.hook_scale", actName("scale"));
        assertEquals("ln_final.hook_normalized", actName("normalized"));
        assertEquals("hook_resid_pre", actName("resid_pre"));
        assertEquals("attn.hook_pattern", actName("pattern"));
        assertEquals("mlp.hook_post", actName("post"));
        // full names pass through, as in TransformerLens
        assertEquals("blocks.0.attn.hook_q", actName("blocks.0.attn.hook_q"));
        assertEquals("hook_embed", actName("hook_embed"));
        // what it gives selects the points of every layer
        assertTrue(NameFilter.of(actName("pattern")).test("blocks.5.attn.hook_pattern"));
    }

    @Test
    void mistakesAreExplained() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> actName("resid_prw", 0));
        assertTrue(e.getMessage().contains("unknown activation name 'resid_prw'")
                && e.getMessage().contains("resid_pre") && e.getMessage().contains("pattern")
                && e.getMessage().contains("pre_linear"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> actName("nonsense"));
        e = assertThrows(IllegalArgumentException.class, () -> actName("scale", 2));
        assertTrue(e.getMessage().contains("\"ln1\"") && e.getMessage().contains("\"ln2\""), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> actName("resid_pre", -1));
        assertTrue(e.getMessage().contains("model.actName"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> actName("embed", 1));
        assertTrue(e.getMessage().contains("has no layer"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> actName("pattern", 1, "mlp"));
        assertTrue(e.getMessage().contains("under attn"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> actName("blocks.0.attn.hook_q", 0));
        assertTrue(HookNames.shortNames().containsAll(java.util.List.of("embed", "resid_pre", "scale", "attn")));
    }
}
