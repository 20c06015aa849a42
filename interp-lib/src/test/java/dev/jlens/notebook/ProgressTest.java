package dev.jlens.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressTest {

    /** A sink that records what the notebook would receive. */
    static final class Recorder implements Display.Sink {
        final List<String> shown = new ArrayList<>();
        final List<Map<String, String>> updates = new ArrayList<>();

        @Override
        public String show(Map<String, String> bundle) {
            shown.add(bundle.get(Display.TEXT));
            return "bar";
        }

        @Override
        public void update(String displayId, Map<String, String> bundle) {
            assertEquals("bar", displayId);
            updates.add(bundle);
        }
    }

    @Test
    void terminalRewritesOneLineAndEndsWithNewline() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
        AtomicLong clock = new AtomicLong();
        Progress p = new Progress(4, "train", clock::get, null, out);
        for (int i = 1; i <= 4; i++) {
            clock.addAndGet(200_000_000L); // 0.2 s per step: every update redraws
            p.update(i, "loss " + (5 - i));
        }
        p.close();
        String text = buf.toString(StandardCharsets.UTF_8);
        assertEquals(4, text.chars().filter(c -> c == '\r').count(), text);
        assertTrue(text.endsWith("\n"), text);
        assertEquals(1, text.chars().filter(c -> c == '\n').count(), text);
        String last = text.substring(text.lastIndexOf('\r') + 1).strip();
        assertTrue(last.startsWith("train |") && last.contains("4/4 100%") && last.contains("loss 1"), last);
        assertTrue(last.contains("5.0 it/s"), last);
    }

    @Test
    void notebookShowsOnceThenUpdatesAtMostTenTimesASecond() {
        Recorder sink = new Recorder();
        AtomicLong clock = new AtomicLong();
        Progress p = new Progress(1000, "cache", clock::get, sink, null);
        p.update(0); // first draw, as start() does
        for (int i = 1; i <= 1000; i++) {
            clock.addAndGet(1_000_000L); // 1 ms per step: 1 s in all
            p.update(i);
        }
        p.close();
        assertEquals(1, sink.shown.size());
        assertTrue(sink.updates.size() <= 11 && sink.updates.size() >= 9, "updates: " + sink.updates.size());
        Map<String, String> last = sink.updates.get(sink.updates.size() - 1);
        assertTrue(last.get(Display.TEXT).contains("1000/1000 100%"), last.get(Display.TEXT));
        assertTrue(last.get(Display.HTML).contains("<progress value=\"1000\" max=\"1000\""), last.get(Display.HTML));
        int before = sink.updates.size();
        p.update(5);
        p.close();
        assertEquals(before, sink.updates.size(), "a closed bar does not redraw");
    }

    @Test
    void closeRendersTheLastUpdateEvenWhenItWasThrottled() {
        Recorder sink = new Recorder();
        AtomicLong clock = new AtomicLong();
        Progress p = new Progress(20_000, "cache acts", clock::get, sink, null);
        p.update(0, "0 shards");
        clock.addAndGet(1_000_000L);
        p.update(20_000, "1 shard"); // 1 ms after the first draw: throttled
        assertEquals(0, sink.updates.size(), "the second update was throttled");
        p.close();
        assertEquals(1, sink.updates.size());
        String text = sink.updates.get(0).get(Display.TEXT);
        assertTrue(text.contains("20000/20000 100%") && text.endsWith("1 shard"), text);
        assertTrue(sink.updates.get(0).get(Display.HTML).contains("<progress value=\"20000\" max=\"20000\""),
                sink.updates.get(0).get(Display.HTML));
    }

    @Test
    void finishEndsABarWhoseWorkStoppedShortWithAFullBar() {
        Recorder sink = new Recorder();
        AtomicLong clock = new AtomicLong();
        Progress p = new Progress(20_000, "cache acts", clock::get, sink, null);
        p.update(0, "0 shards");
        clock.addAndGet(1_000_000L);
        p.finish(700, "1 shard, source ended");
        String text = sink.updates.get(sink.updates.size() - 1).get(Display.TEXT);
        assertTrue(text.contains("700/700 100%") && text.endsWith("1 shard, source ended"), text);
        assertTrue(text.contains("|" + "█".repeat(24) + "|"), text);
        assertEquals(700, p.total());
        int updates = sink.updates.size();
        p.update(5);
        p.close();
        assertEquals(updates, sink.updates.size(), "finish() closes the bar");

        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Progress unknown = new Progress(0, "rows", clock::get, null, new PrintStream(buf, true, StandardCharsets.UTF_8));
        unknown.update(3);
        unknown.finish(42, null);
        String out = buf.toString(StandardCharsets.UTF_8);
        String last = out.substring(out.lastIndexOf('\r') + 1).strip();
        assertTrue(last.contains("42/42 100%"), last);
        assertTrue(out.endsWith("\n"), out);
    }

    @Test
    void interruptStopsTheLoopWithAClearException() {
        Recorder sink = new Recorder();
        Progress p = new Progress(10, "sweep", System::nanoTime, sink, null);
        p.update(3);
        Thread.currentThread().interrupt();
        CellInterruptedException e = assertThrows(CellInterruptedException.class, () -> p.update(4));
        assertTrue(e.getMessage().contains("sweep") && e.getMessage().contains("4/10"), e.getMessage());
        assertFalse(Thread.currentThread().isInterrupted(), "the interrupt is consumed");
        String last = sink.updates.get(sink.updates.size() - 1).get(Display.TEXT);
        assertTrue(last.contains("(interrupted)"), last);
    }

    @Test
    void rangeAndOverVisitEveryItemInOrder() {
        List<Integer> seen = new ArrayList<>();
        for (int i : Progress.range(5, "r")) {
            seen.add(i);
        }
        assertEquals(List.of(0, 1, 2, 3, 4), seen);
        List<String> words = new ArrayList<>();
        for (String w : Progress.over(List.of("a", "b"), "w")) {
            words.add(w);
        }
        assertEquals(List.of("a", "b"), words);
        assertFalse(Progress.range(0, "empty").iterator().hasNext());
    }

    @Test
    void checkInterruptedThrowsOnlyWhenInterrupted() {
        Progress.checkInterrupted("nothing");
        Thread.currentThread().interrupt();
        CellInterruptedException e = assertThrows(CellInterruptedException.class,
                () -> Progress.checkInterrupted("patching sweep"));
        assertTrue(e.getMessage().contains("patching sweep"));
    }

    @Test
    void invalidArgumentsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> Progress.range(-1, "x"));
        Progress p = new Progress(0, "unknown total", System::nanoTime, null, null);
        p.update(7);
        assertTrue(p.toString().contains("7 it"), p.toString());
        assertThrows(IllegalArgumentException.class, () -> p.update(-1));
    }
}
