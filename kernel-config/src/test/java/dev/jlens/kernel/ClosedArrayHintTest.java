package dev.jlens.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The note the kernel adds to DJL's closed-array errors, on a failing rendering (the cell path is in SessionTest). */
class ClosedArrayHintTest {

    @Test
    void aRenderingThatHitAClosedArrayGetsTheNote() {
        IllegalStateException wrapped = new IllegalStateException("Rendering a ai.djl.pytorch.engine.PtNDArray as "
                + "text/html failed", new IllegalStateException(ClosedArrayHint.RELEASED));
        RenderFailure f = RenderFailure.of(wrapped);
        assertTrue(f.evalue().endsWith(ClosedArrayHint.EVALUE_SUFFIX), f.evalue());
        assertEquals(ClosedArrayHint.NOTE, f.traceback().get(f.traceback().size() - 1));
        assertTrue(f.traceback().contains("Caused by: java.lang.IllegalStateException: " + ClosedArrayHint.RELEASED),
                f.traceback().toString());
    }

    @Test
    void onlyTheClosedResourceMessagesGetIt() {
        assertTrue(ClosedArrayHint.applies(new IllegalStateException(ClosedArrayHint.MANAGER_CLOSED)));
        assertTrue(ClosedArrayHint.applies(new RuntimeException("outer",
                new IllegalStateException(ClosedArrayHint.RELEASED))));
        assertFalse(ClosedArrayHint.applies(new IllegalStateException("Tokenizer is closed")));
        assertFalse(ClosedArrayHint.applies(new IllegalStateException((String) null)));
        RenderFailure plain = RenderFailure.of(new IllegalArgumentException("bad"));
        assertEquals("bad", plain.evalue());
        assertEquals(List.of("java.lang.IllegalArgumentException: bad"), plain.traceback());
        // an exception whose getMessage throws is read safely
        RuntimeException hostile = new RuntimeException() {
            @Override
            public String getMessage() {
                throw new IllegalStateException("no");
            }
        };
        assertFalse(ClosedArrayHint.applies(hostile));
        assertTrue(ClosedArrayHint.NOTE.contains("kept.attach(model.manager())"));
    }
}
