package dev.jlens.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.kernel.StreamBatcher.Stream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class StreamBatcherTest {

    /** What the sink received: one entry per stream message. */
    private record Sent(Stream stream, String text) {}

    private static final class Recorder {
        final List<Sent> sent = new ArrayList<>();

        synchronized void accept(Stream s, String text) {
            sent.add(new Sent(s, text));
        }

        synchronized List<Sent> snapshot() {
            return List.copyOf(sent);
        }
    }

    private static PrintStream print(StreamBatcher b, Stream s) {
        return new PrintStream(b.stream(s), false, StandardCharsets.UTF_8);
    }

    @Test
    void interleavedStreamsKeepTheirOrderAndSameStreamTextIsBatched() {
        Recorder r = new Recorder();
        try (StreamBatcher b = new StreamBatcher(1 << 20, 60_000)) {
            b.attach(r::accept);
            PrintStream out = print(b, Stream.STDOUT);
            PrintStream err = print(b, Stream.STDERR);
            out.println("o1");
            out.println("o2");
            err.println("e1");
            out.print("o3");
            err.print("e2");
            err.println();
            b.detach();
        }
        assertEquals(List.of(new Sent(Stream.STDOUT, "o1\no2\n"), new Sent(Stream.STDERR, "e1\n"),
                new Sent(Stream.STDOUT, "o3"), new Sent(Stream.STDERR, "e2\n")), r.snapshot());
    }

    @Test
    void manyLinesBecomeFewMessagesBoundedByTheCap() {
        Recorder r = new Recorder();
        StringBuilder expected = new StringBuilder();
        try (StreamBatcher b = new StreamBatcher(1000, 60_000)) {
            b.attach(r::accept);
            PrintStream out = print(b, Stream.STDOUT);
            for (int i = 0; i < 10_000; i++) {
                String line = "line " + i;
                out.println(line);
                expected.append(line).append('\n');
            }
            b.detach();
        }
        List<Sent> sent = r.snapshot();
        StringBuilder got = new StringBuilder();
        for (Sent s : sent) {
            assertTrue(s.text().length() < 1000 + 20, "a message passed the cap: " + s.text().length());
            got.append(s.text());
        }
        assertEquals(expected.toString(), got.toString());
        assertTrue(sent.size() < 200, "expected batches, got " + sent.size() + " messages");
    }

    @Test
    void multibyteCharactersSplitAcrossWritesDecodeWhole() {
        Recorder r = new Recorder();
        String text = "é€😀ü"; // 2-, 3-, 4- and 2-byte characters
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        try (StreamBatcher b = new StreamBatcher(1 << 20, 60_000)) {
            b.attach(r::accept);
            // One byte at a time, flushing between bytes: no half character may be sent.
            for (byte x : bytes) {
                b.write(Stream.STDOUT, new byte[] {x}, 0, 1);
                b.flush();
            }
            b.detach();
        }
        StringBuilder got = new StringBuilder();
        for (Sent s : r.snapshot()) {
            assertTrue(s.text().indexOf('\uFFFD') < 0, "a split character was sent broken: " + r.snapshot());
            got.append(s.text());
        }
        assertEquals(text, got.toString());
    }

    @Test
    void aDanglingPartialCharacterIsSentAsReplacementAtCellEnd() {
        Recorder r = new Recorder();
        try (StreamBatcher b = new StreamBatcher(1 << 20, 60_000)) {
            b.attach(r::accept);
            b.write(Stream.STDERR, new byte[] {'a', (byte) 0xE2, (byte) 0x82}, 0, 3); // "a" + 2 of €'s 3 bytes
            b.detach();
        }
        assertEquals("a\uFFFD", String.join("", r.snapshot().stream().map(Sent::text).toList()));
    }

    @Test
    void detachSendsEverythingPendingAndLaterTextIsDropped() {
        Recorder r = new Recorder();
        try (StreamBatcher b = new StreamBatcher(1 << 20, 60_000)) {
            b.attach(r::accept);
            PrintStream out = print(b, Stream.STDOUT);
            out.print("no newline yet");
            out.flush(); // a PrintStream flush alone does not send
            assertEquals(List.of(), r.snapshot());
            b.detach();
            assertEquals(List.of(new Sent(Stream.STDOUT, "no newline yet")), r.snapshot());
            out.println("after the cell");
            b.flush();
        }
        assertEquals(1, r.snapshot().size());
    }

    @Test
    void pendingTextIsSentAfterTheLingerTimeWithoutAFlush() throws InterruptedException {
        Recorder r = new Recorder();
        try (StreamBatcher b = new StreamBatcher(1 << 20, 50)) {
            b.attach(r::accept);
            print(b, Stream.STDOUT).println("progress 1/2");
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (r.snapshot().isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(List.of(new Sent(Stream.STDOUT, "progress 1/2\n")), r.snapshot());
            print(b, Stream.STDOUT).println("progress 2/2");
            deadline = System.nanoTime() + 5_000_000_000L;
            while (r.snapshot().size() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(new Sent(Stream.STDOUT, "progress 2/2\n"), r.snapshot().get(1));
        }
    }

    @Test
    void noTimedFlushBeforeTheLingerTime() throws InterruptedException {
        Recorder r = new Recorder();
        try (StreamBatcher b = new StreamBatcher(1 << 20, 60_000)) {
            b.attach(r::accept);
            print(b, Stream.STDOUT).println("held");
            Thread.sleep(200);
            assertEquals(List.of(), r.snapshot());
        }
        assertEquals(List.of(new Sent(Stream.STDOUT, "held\n")), r.snapshot()); // close sends it
    }
}
