package dev.jlens.train;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TerminalProgressTest {

    @Test
    void rewritesOneLineAndEndsIt() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        long hour = 3_600_000_000_000L;   // so the throttling below does not depend on the machine's speed
        TerminalProgress p = new TerminalProgress(new PrintStream(bytes, true, StandardCharsets.UTF_8), hour);
        p.start(10, "train");
        p.update(0, "");
        p.update(3, "loss 2.0");    // too soon after the last draw: skipped
        p.update(10, "loss 1.2345");  // the last unit is always drawn
        p.close();
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(2, out.chars().filter(c -> c == '\r').count(), out);
        assertTrue(out.contains("train 100% [####################] 10/10"), out);
        assertTrue(out.contains("loss 1.2345"), out);
        assertTrue(out.endsWith(System.lineSeparator()), "close() ends the line");
        p.update(10, "after close");   // ignored
        assertEquals(out, bytes.toString(StandardCharsets.UTF_8));
    }

    @Test
    void closeDrawsALastUpdateThatWasThrottled() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        long hour = 3_600_000_000_000L;
        TerminalProgress p = new TerminalProgress(new PrintStream(bytes, true, StandardCharsets.UTF_8), hour);
        p.start(100, "train");
        p.update(0, "");
        p.update(40, "loss 3.0");   // skipped
        p.update(60, "loss 2.5");   // skipped: a run stopped at step 60 of 100 (trainUntil)
        String beforeClose = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(beforeClose.contains("0/100") && !beforeClose.contains("60/100"), beforeClose);
        p.close();
        String out = bytes.toString(StandardCharsets.UTF_8);
        String last = out.substring(out.lastIndexOf('\r') + 1).strip();
        assertTrue(last.startsWith("train  60% [############........] 60/100") && last.endsWith("loss 2.5"), last);
        assertTrue(out.endsWith(System.lineSeparator()), out);
        assertEquals(2, out.chars().filter(c -> c == '\r').count(), out);
    }
}
