package dev.jlens.kernel;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.BiConsumer;

/**
 * Collects a cell's stdout and stderr and passes them on as few stream messages as keeps them live and in order.
 * One buffer serves both streams: text is sent when the stream switches (so stdout and stderr stay interleaved as
 * written), when the buffer passes {@code capChars}, when the oldest pending text is {@code lingerMillis} old (a
 * daemon thread sends it, so a slow cell still shows its output as it goes), and on {@link #flush()} (the kernel
 * calls it before a display, a result, an error and the reply). One message per line, as before, made 200,000
 * printed lines take minutes; batched they take about a second.
 *
 * <p>Bytes are decoded as UTF-8 per stream; a multibyte character split across two writes is held back until its
 * last byte arrives. Text written while no sink is attached (between cells) is dropped.
 */
final class StreamBatcher implements AutoCloseable {

    /** The two output streams, by their Jupyter names. */
    enum Stream {
        STDOUT("stdout"), STDERR("stderr");

        final String jupyterName;

        Stream(String jupyterName) {
            this.jupyterName = jupyterName;
        }
    }

    static final int DEFAULT_CAP_CHARS = 64 * 1024;
    static final long DEFAULT_LINGER_MILLIS = 50;

    private final int capChars;
    private final long lingerNanos;
    private final StringBuilder pending = new StringBuilder();
    private final Utf8Carry[] carries = {new Utf8Carry(), new Utf8Carry()};
    private final Thread flusher;
    private Stream pendingStream;
    private long pendingSinceNanos;
    private BiConsumer<Stream, String> sink;
    private boolean closed;

    StreamBatcher() {
        this(DEFAULT_CAP_CHARS, DEFAULT_LINGER_MILLIS);
    }

    StreamBatcher(int capChars, long lingerMillis) {
        if (capChars < 1 || lingerMillis < 1) {
            throw new IllegalArgumentException("capChars and lingerMillis must be positive, got " + capChars
                    + " and " + lingerMillis);
        }
        this.capChars = capChars;
        this.lingerNanos = lingerMillis * 1_000_000L;
        this.flusher = new Thread(this::flushLoop, "jlens-stream-flusher");
        flusher.setDaemon(true);
        flusher.start();
    }

    /** Sends text to {@code sink} (one call per stream message) until {@link #detach()}. */
    synchronized void attach(BiConsumer<Stream, String> sink) {
        flushLocked(false);
        this.sink = sink;
    }

    /** Sends what is pending (a character still incomplete is sent as U+FFFD) and stops sending. */
    synchronized void detach() {
        flushLocked(true);
        sink = null;
    }

    /** An output stream writing to {@code stream} through this batcher. */
    OutputStream stream(Stream stream) {
        return new OutputStream() {
            @Override
            public void write(int b) {
                StreamBatcher.this.write(stream, new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                StreamBatcher.this.write(stream, b, off, len);
            }

            // A PrintStream's flush lands here: the time limit, not the caller, decides when text goes out.
            @Override
            public void flush() {}
        };
    }

    /** Appends UTF-8 bytes written to {@code stream}. */
    synchronized void write(Stream stream, byte[] b, int off, int len) {
        if (closed || sink == null) {
            return;
        }
        String text = carries[stream.ordinal()].decode(b, off, len);
        if (text.isEmpty()) {
            return;
        }
        if (pendingStream != stream) {
            flushLocked(false);
            pendingStream = stream;
        }
        if (pending.length() == 0) {
            pendingSinceNanos = System.nanoTime();
            notifyAll(); // wakes the flusher, which sleeps while nothing is pending
        }
        pending.append(text);
        if (pending.length() >= capChars) {
            flushLocked(false);
        }
    }

    /** Sends all complete text now. */
    synchronized void flush() {
        flushLocked(false);
    }

    private void flushLocked(boolean endOfInput) {
        if (endOfInput) {
            for (Stream s : Stream.values()) {
                String rest = carries[s.ordinal()].drain();
                if (!rest.isEmpty()) {
                    if (pendingStream != s) {
                        flushLocked(false);
                        pendingStream = s;
                    }
                    pending.append(rest);
                }
            }
        }
        if (pending.length() == 0) {
            return;
        }
        String text = pending.toString();
        pending.setLength(0);
        if (sink != null) {
            try {
                sink.accept(pendingStream, text);
            } catch (RuntimeException e) {
                // A sink that fails (a socket closing at shutdown) must not reach user code or end the flusher.
                KernelLog.warn("could not send cell output: " + e);
            }
        }
    }

    private synchronized void flushLoop() {
        while (!closed) {
            try {
                if (pending.length() == 0) {
                    wait();
                } else {
                    long waitNanos = pendingSinceNanos + lingerNanos - System.nanoTime();
                    if (waitNanos <= 0) {
                        flushLocked(false);
                    } else {
                        wait(waitNanos / 1_000_000L, (int) (waitNanos % 1_000_000L));
                    }
                }
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /** Sends what is pending and stops the flusher thread. */
    @Override
    public synchronized void close() {
        flushLocked(true);
        closed = true;
        notifyAll();
    }

    /** Bytes of one stream not yet decoded: the start of a UTF-8 character whose other bytes are still to come. */
    private static final class Utf8Carry {
        private final byte[] held = new byte[3];
        private int count;

        String decode(byte[] b, int off, int len) {
            byte[] bytes = b;
            int start = off;
            int end = off + len;
            if (count > 0) {
                bytes = new byte[count + len];
                System.arraycopy(held, 0, bytes, 0, count);
                System.arraycopy(b, off, bytes, count, len);
                start = 0;
                end = bytes.length;
                count = 0;
            }
            int complete = completeEnd(bytes, start, end);
            for (int i = complete; i < end; i++) {
                held[count++] = bytes[i];
            }
            return new String(bytes, start, complete - start, StandardCharsets.UTF_8);
        }

        /** The held bytes, decoded as they are (an incomplete character becomes U+FFFD). */
        String drain() {
            String s = new String(held, 0, count, StandardCharsets.UTF_8);
            count = 0;
            return s;
        }

        /** Where the last complete character ends: before a trailing lead byte whose continuation is missing. */
        private static int completeEnd(byte[] b, int start, int end) {
            // Look back over at most 3 continuation bytes (10xxxxxx) for the last character's lead byte.
            int i = end - 1;
            int continuation = 0;
            while (i >= start && continuation < 3 && (b[i] & 0xC0) == 0x80) {
                i--;
                continuation++;
            }
            if (i < start) {
                return end;
            }
            int lead = b[i] & 0xFF;
            int need = lead >= 0xF0 && lead <= 0xF7 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
            if (lead >= 0xF8) {
                need = 0; // not a lead byte; the decoder replaces it
            }
            return need > continuation ? i : end;
        }
    }
}
