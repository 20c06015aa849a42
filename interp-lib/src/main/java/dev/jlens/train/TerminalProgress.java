package dev.jlens.train;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A progress line rewritten in place with {@code \r}:
 * {@code train  37% [#######.............] 370/1000 01:12<02:03 loss 1.2345 | lr 9.1e-04 | 12.3k tok/s}.
 * Redraws at most ten times a second (and always for the last unit) so a fast loop does not flood the terminal;
 * {@link #close()} draws the last update if it was skipped, so the line always ends in its true final state.
 */
public final class TerminalProgress implements ProgressSink {
    private static final int BAR = 20;
    private static final long MIN_REDRAW_NANOS = 100_000_000L;

    private final PrintStream out;
    private final long minRedrawNanos;
    private long total;
    private String description = "";
    private long startNanos, lastDraw, startDone = -1;
    private int lastWidth;
    private boolean open;
    private boolean pending;
    private long pendingDone;
    private String pendingText;

    /** A progress line on {@code out}. */
    public TerminalProgress(PrintStream out) {
        this(out, MIN_REDRAW_NANOS);
    }

    TerminalProgress(PrintStream out, long minRedrawNanos) {
        this.out = out;
        this.minRedrawNanos = minRedrawNanos;
    }

    @Override
    public void start(long total, String description) {
        this.total = Math.max(0, total);
        this.description = description == null ? "" : description;
        this.startNanos = System.nanoTime();
        this.lastDraw = 0;
        this.startDone = -1;
        this.lastWidth = 0;
        this.open = true;
        this.pending = false;
    }

    @Override
    public void update(long done, String text) {
        if (!open) return;
        long now = System.nanoTime();
        if (startDone < 0) startDone = done;   // a resumed run starts part-way: the rate counts this session only
        boolean last = total > 0 && done >= total;
        if (!last && lastDraw != 0 && now - lastDraw < minRedrawNanos) {
            pending = true;
            pendingDone = done;
            pendingText = text;
            return;
        }
        draw(done, text, now);
    }

    private void draw(long done, String text, long now) {
        pending = false;
        lastDraw = now;
        String line = render(done, text, now);
        int pad = Math.max(0, lastWidth - line.length());
        out.print("\r" + line + " ".repeat(pad));
        out.flush();
        lastWidth = line.length();
    }

    private String render(long done, String text, long now) {
        StringBuilder s = new StringBuilder(description);
        double elapsed = (now - startNanos) / 1e9;
        if (total > 0) {
            double frac = Math.min(1.0, (double) done / total);
            int filled = (int) Math.round(frac * BAR);
            s.append(String.format(Locale.ROOT, " %3d%% [", (int) Math.floor(frac * 100)))
                    .append("#".repeat(filled)).append(".".repeat(BAR - filled)).append("] ")
                    .append(done).append('/').append(total).append(' ').append(clock(elapsed));
            long sessionDone = done - startDone;
            if (sessionDone > 0 && done < total) s.append('<').append(clock(elapsed / sessionDone * (total - done)));
        } else {
            s.append(' ').append(done).append(' ').append(clock(elapsed));
        }
        if (text != null && !text.isEmpty()) s.append("  ").append(text);
        return s.toString();
    }

    private static String clock(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%02d:%02d", s / 60, s % 60);
    }

    @Override
    public void close() {
        if (!open) return;
        if (pending) draw(pendingDone, pendingText, System.nanoTime());
        open = false;
        out.println();
        out.flush();
    }

    @Override
    public String toString() {
        return "TerminalProgress(" + description + ")";
    }
}
