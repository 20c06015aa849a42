package dev.jlens.notebook;

import java.io.PrintStream;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * A progress bar for long loops: in a notebook it is one output that updates in place, in a terminal one line
 * rewritten with {@code \r} and ended with a newline.
 *
 * <pre>{@code
 * for (int step : Progress.range(1000, "train")) { ... }
 *
 * try (Progress p = Progress.start(total, "cache")) {
 *     for (...) { ...; p.update(done, "loss " + loss); }
 * }
 * }</pre>
 *
 * Redraws are throttled to at most {@value #MAX_REDRAWS_PER_SECOND} per second; {@link #close()} always shows the
 * last state set, and {@link #finish} ends a bar whose work stopped short of its total with a full bar.
 * Every update checks for interruption and throws {@link CellInterruptedException} when the cell was
 * interrupted, so loops that report progress also stop on request.
 */
public final class Progress implements AutoCloseable {

    /** Upper bound on redraws per second (notebook and terminal). */
    public static final int MAX_REDRAWS_PER_SECOND = 10;
    private static final long MIN_REDRAW_NANOS = 1_000_000_000L / MAX_REDRAWS_PER_SECOND;
    private static final int BAR_WIDTH = 24;

    private final String description;
    private long total;
    private final LongSupplier clock;
    private final Display.Sink sink;
    private final PrintStream terminal;
    private final long startNanos;

    private long done;
    private String status = "";
    private long lastRedrawNanos;
    private boolean drawn;
    private boolean dirty;
    private String displayId;
    private int lastLineLength;
    private boolean closed;
    private boolean interrupted;

    Progress(long total, String description, LongSupplier clock, Display.Sink sink, PrintStream terminal) {
        if (total < 0) {
            throw new IllegalArgumentException("total must be >= 0 (0 = unknown), got " + total);
        }
        this.total = total;
        this.description = description == null ? "" : description;
        this.clock = Objects.requireNonNull(clock, "clock");
        this.sink = sink;
        this.terminal = terminal;
        this.startNanos = clock.getAsLong();
    }

    /** Starts a progress bar over {@code total} items ({@code 0} if unknown), shown at once. */
    public static Progress start(long total, String description) {
        Progress p = new Progress(total, description, System::nanoTime, currentSink(), System.err);
        p.redraw(true);
        return p;
    }

    /** The integers {@code 0 .. n-1} with a progress bar: {@code for (int i : Progress.range(n, "train"))}. */
    public static Iterable<Integer> range(int n, String description) {
        if (n < 0) {
            throw new IllegalArgumentException("range size must be >= 0, got " + n);
        }
        return () -> new Iterator<>() {
            private final Progress p = Progress.start(n, description);
            private int next;

            @Override
            public boolean hasNext() {
                if (next > 0) {
                    p.update(next);
                }
                if (next >= n) {
                    p.close();
                    return false;
                }
                return true;
            }

            @Override
            public Integer next() {
                if (next >= n) {
                    throw new NoSuchElementException("range of " + n + " exhausted");
                }
                return next++;
            }
        };
    }

    /** The items of a list with a progress bar: {@code for (String s : Progress.over(prompts, "prompts"))}. */
    public static <T> Iterable<T> over(List<T> items, String description) {
        Objects.requireNonNull(items, "items");
        return () -> new Iterator<>() {
            private final Iterator<Integer> indices = range(items.size(), description).iterator();

            @Override
            public boolean hasNext() {
                return indices.hasNext();
            }

            @Override
            public T next() {
                return items.get(indices.next());
            }
        };
    }

    /**
     * Throws {@link CellInterruptedException} if the current thread was interrupted (clearing the flag); loops
     * without a progress bar call this to stay interruptible.
     */
    public static void checkInterrupted(String what) {
        if (Thread.interrupted()) {
            throw new CellInterruptedException("Interrupted: " + what);
        }
    }

    /** Sets the number of items done so far. */
    public synchronized void update(long doneSoFar) {
        update(doneSoFar, null);
    }

    /** Sets the number of items done so far and a short status (e.g. {@code "loss 1.23"}); null keeps the last. */
    public synchronized void update(long doneSoFar, String newStatus) {
        if (doneSoFar < 0) {
            throw new IllegalArgumentException("done must be >= 0, got " + doneSoFar);
        }
        this.done = doneSoFar;
        if (newStatus != null) {
            this.status = newStatus;
        }
        dirty = true;
        interruptCheck();
        redraw(false);
    }

    /** Advances by one item. */
    public synchronized void step() {
        update(done + 1, null);
    }

    /** Advances by one item and sets the status. */
    public synchronized void step(String newStatus) {
        update(done + 1, newStatus);
    }

    /** Items done so far. */
    public synchronized long done() {
        return done;
    }

    /** Total items ({@code 0} if unknown). */
    public synchronized long total() {
        return total;
    }

    /**
     * Ends the bar at {@code doneAtEnd} items and closes it, so its last render is the true final state. When the
     * work ended short of the total (its source ran out) or the total was unknown, the total becomes
     * {@code doneAtEnd} and the bar shows full ({@code 700/700 100%}); say why in {@code finalStatus} (null keeps
     * the last status). Does nothing on a closed bar.
     */
    public synchronized void finish(long doneAtEnd, String finalStatus) {
        if (doneAtEnd < 0) {
            throw new IllegalArgumentException("done must be >= 0, got " + doneAtEnd);
        }
        if (closed) {
            return;
        }
        done = doneAtEnd;
        if (total == 0 || done < total) {
            total = done;
        }
        if (finalStatus != null) {
            status = finalStatus;
        }
        dirty = true;
        close();
    }

    /** Shows the final state (and ends the terminal line); further updates are ignored. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        if (dirty || !drawn) {
            redraw(true);
        }
        closed = true;
        if (sink == null && terminal != null) {
            terminal.println();
            terminal.flush();
        }
    }

    private void interruptCheck() {
        if (!closed && Thread.interrupted()) {
            interrupted = true;
            dirty = true;
            close();
            throw new CellInterruptedException("Interrupted: " + (description.isEmpty() ? "loop" : description)
                    + " stopped at " + done + (total > 0 ? "/" + total : "") + " (state kept)");
        }
    }

    private void redraw(boolean force) {
        if (closed) {
            return;
        }
        long now = clock.getAsLong();
        if (!force && drawn && now - lastRedrawNanos < MIN_REDRAW_NANOS) {
            return;
        }
        lastRedrawNanos = now;
        drawn = true;
        dirty = false;
        View view = snapshot(now);
        if (sink != null) {
            if (displayId == null) {
                displayId = sink.show(Display.render(view));
            } else {
                sink.update(displayId, Display.render(view));
            }
        } else if (terminal != null) {
            String line = view.toString();
            int pad = Math.max(0, lastLineLength - line.length());
            terminal.print("\r" + line + " ".repeat(pad));
            terminal.flush();
            lastLineLength = line.length();
        }
    }

    private View snapshot(long now) {
        double seconds = Math.max(0, now - startNanos) / 1e9;
        return new View(description, done, total, seconds, status, interrupted);
    }

    private static Display.Sink currentSink() {
        return Display.currentSink();
    }

    @Override
    public synchronized String toString() {
        return snapshot(clock.getAsLong()).toString();
    }

    /** One frozen state of the bar; renders as text and HTML. */
    record View(String description, long done, long total, double seconds, String status, boolean interrupted)
            implements HtmlRenderable {

        double rate() {
            return seconds > 0 ? done / seconds : 0;
        }

        String timing() {
            StringBuilder sb = new StringBuilder("[").append(clockText(seconds));
            if (total > 0 && done > 0 && done < total) {
                sb.append('<').append(clockText((total - done) / rate()));
            }
            double r = rate();
            if (r > 0) {
                sb.append(", ").append(r >= 1 ? String.format(Locale.ROOT, "%.1f it/s", r)
                        : String.format(Locale.ROOT, "%.1f s/it", 1 / r));
            }
            return sb.append(']').toString();
        }

        String counts() {
            return total > 0
                    ? String.format(Locale.ROOT, "%d/%d %3d%%", done, total, Math.min(100, done * 100 / total))
                    : done + " it";
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder();
            if (!description.isEmpty()) {
                sb.append(description).append(' ');
            }
            if (total > 0) {
                int filled = (int) Math.min(BAR_WIDTH, done * BAR_WIDTH / total);
                sb.append('|').append("█".repeat(filled)).append(" ".repeat(BAR_WIDTH - filled)).append("| ");
            }
            sb.append(counts()).append(' ').append(timing());
            if (!status.isEmpty()) {
                sb.append(' ').append(status);
            }
            if (interrupted) {
                sb.append(" (interrupted)");
            }
            return sb.toString();
        }

        @Override
        public String toHtml() {
            StringBuilder sb = new StringBuilder("<div class=\"jlens-progress\" style=\"font-family:monospace;"
                    + "font-size:12px;white-space:nowrap\">");
            if (!description.isEmpty()) {
                sb.append(Display.escapeHtml(description)).append(' ');
            }
            if (total > 0) {
                sb.append("<progress value=\"").append(Math.min(done, total)).append("\" max=\"").append(total)
                        .append("\" style=\"width:240px;vertical-align:middle\"></progress> ");
            }
            sb.append(Display.escapeHtml(counts())).append(' ').append(Display.escapeHtml(timing()));
            if (!status.isEmpty()) {
                sb.append(' ').append(Display.escapeHtml(status));
            }
            if (interrupted) {
                sb.append(" <span style=\"color:#b00\">(interrupted)</span>");
            }
            return sb.append("</div>").toString();
        }

        private static String clockText(double seconds) {
            if (!Double.isFinite(seconds)) {
                return "?";
            }
            long s = Math.round(seconds);
            return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60)
                    : String.format(Locale.ROOT, "%02d:%02d", s / 60, s % 60);
        }
    }
}
