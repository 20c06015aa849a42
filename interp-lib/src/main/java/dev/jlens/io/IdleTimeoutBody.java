package dev.jlens.io;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A response body read as an {@link InputStream} whose reads give up when no bytes arrive for a while. Java's
 * {@code HttpClient} has no read timeout: its request timeout ends when the headers arrive, and a server that stalls
 * in the middle of a body would block {@code read} forever. This stream subscribes to the body publisher
 * ({@code BodyHandlers.ofPublisher()}), asks for one chunk at a time, and waits for each at most {@code idle}; on
 * timeout it cancels the subscription (which closes the connection) and throws {@link SocketTimeoutException}.
 */
final class IdleTimeoutBody extends InputStream implements Flow.Subscriber<List<ByteBuffer>> {

    private static final Object END = new Object();

    private final BlockingQueue<Object> arrivals = new LinkedBlockingQueue<>();
    private final long idleNanos;
    private volatile Flow.Subscription subscription;
    private volatile boolean closed;
    private Iterator<ByteBuffer> chunk = List.<ByteBuffer>of().iterator();
    private ByteBuffer current;
    private boolean ended;

    private IdleTimeoutBody(Duration idle) {
        this.idleNanos = Objects.requireNonNull(idle, "idle").toNanos();
        if (idleNanos <= 0) {
            throw new IllegalArgumentException("idle timeout must be positive, got " + idle);
        }
    }

    /** Subscribes to {@code body}; the stream must be closed when not read to the end. */
    static IdleTimeoutBody of(Flow.Publisher<List<ByteBuffer>> body, Duration idle) {
        IdleTimeoutBody stream = new IdleTimeoutBody(idle);
        body.subscribe(stream);
        return stream;
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
        if (subscription != null) {
            s.cancel();
            return;
        }
        subscription = s;
        if (closed) {
            s.cancel();
        } else {
            s.request(1);
        }
    }

    @Override
    public void onNext(List<ByteBuffer> item) {
        arrivals.add(item);
    }

    @Override
    public void onError(Throwable t) {
        arrivals.add(t);
    }

    @Override
    public void onComplete() {
        arrivals.add(END);
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, b.length);
        if (closed) {
            throw new IOException("stream closed");
        }
        if (len == 0) {
            return 0;
        }
        while (current == null || !current.hasRemaining()) {
            if (chunk.hasNext()) {
                current = chunk.next();
                continue;
            }
            if (ended) {
                return -1;
            }
            Object next;
            try {
                next = arrivals.poll(idleNanos, TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                close();
                throw new InterruptedIOException("interrupted while waiting for the response body");
            }
            if (next == null) {
                close();
                throw new SocketTimeoutException("no data received for " + Duration.ofNanos(idleNanos).toMillis()
                        + " ms");
            }
            if (next == END) {
                ended = true;
            } else if (next instanceof Throwable t) {
                ended = true;
                throw t instanceof IOException io ? io : new IOException(t.toString(), t);
            } else {
                @SuppressWarnings("unchecked")
                List<ByteBuffer> buffers = (List<ByteBuffer>) next;
                chunk = buffers.iterator();
                Flow.Subscription s = subscription;
                if (s != null) {
                    s.request(1);
                }
            }
        }
        int n = Math.min(len, current.remaining());
        current.get(b, off, n);
        return n;
    }

    /** Cancels the subscription, so the client drops the connection instead of reading the rest. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        Flow.Subscription s = subscription;
        if (s != null && !ended) {
            s.cancel();
        }
    }
}
