package dev.jlens.hook;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HookRegistryTest {

    @Test
    void scopesAttachAndDetachAndATypoAttachesNothing() {
        HookRegistry r = new HookRegistry();
        HookPoint a = r.declare("blocks.0.hook_resid_pre");
        HookPoint b = r.declare("blocks.0.hook_resid_post");
        try (HookScope s = r.attach(List.of(Hook.fwd(a.name(), (x, h) -> null), Hook.bwd(b.name(), (x, h) -> null)))) {
            assertTrue(a.isActive());
            assertEquals(1, b.backwardHooks().size());
        }
        assertFalse(a.isActive());
        assertEquals(0, b.backwardHooks().size());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.attach(List.of(
                Hook.fwd(a.name(), (x, h) -> null), Hook.fwd("blocks.0.hook_resid_psot", (x, h) -> null))));
        assertTrue(e.getMessage().startsWith("unknown hook point 'blocks.0.hook_resid_psot'. Nearest: [blocks.0.hook_resid_post"),
                e.getMessage());
        assertFalse(a.isActive(), "a failed attach must not leave the valid hooks attached");
        assertThrows(IllegalStateException.class, () -> r.declare("blocks.0.hook_resid_pre"));
    }

    @Test
    void runTimeHookPointsSitAfterTheirAnchorUntilTheScopeCloses() {
        HookRegistry r = new HookRegistry();
        r.declare("blocks.0.hook_resid_pre");
        r.declare("blocks.0.hook_resid_post");
        List<String> before = r.names();
        List<String> extra = List.of("blocks.0.hook_resid_pre.hook_sae_input", "blocks.0.hook_resid_pre.hook_sae_acts_post");
        try (HookScope s = r.declareAfter("blocks.0.hook_resid_pre", extra)) {
            assertEquals(List.of("blocks.0.hook_resid_pre", extra.get(0), extra.get(1), "blocks.0.hook_resid_post"), r.names());
            HookPoint p = r.get(extra.get(1));
            try (HookScope h = r.attach(List.of(Hook.fwd(extra.get(1), (x, hp) -> null)))) {
                assertTrue(p.isActive());
            }
            r.attach(List.of(Hook.fwd(extra.get(1), (x, hp) -> null)));
            assertThrows(IllegalStateException.class, () -> r.declareAfter("blocks.0.hook_resid_post", List.of(extra.get(0))));
            assertEquals(4, r.names().size(), "a refused declaration adds nothing");
            s.close();
            assertFalse(p.isActive(), "removing a point drops its hooks");
        }
        assertEquals(before, r.names());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.get(extra.get(1)));
        assertTrue(e.getMessage().startsWith("unknown hook point"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> r.declareAfter("blocks.0.hook_resid_psot", List.of("x")));
        assertTrue(e.getMessage().contains("Nearest: [blocks.0.hook_resid_post"), e.getMessage());
    }

    @Test
    void editDistanceCountsSingleEdits() {
        assertEquals(0, dev.jlens.util.Names.editDistance("abc", "abc"));
        assertEquals(1, dev.jlens.util.Names.editDistance("abc", "abd"));
        assertEquals(2, dev.jlens.util.Names.editDistance("post", "psot"));
        assertEquals(3, dev.jlens.util.Names.editDistance("", "abc"));
        assertEquals(0, new HookPoint("hook_embed").layer() + 1);
        assertEquals(12, new HookPoint("blocks.12.attn.hook_q").layer());
    }
}
