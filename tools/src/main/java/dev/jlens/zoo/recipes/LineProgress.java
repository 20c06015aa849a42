package dev.jlens.zoo.recipes;

import dev.jlens.train.ProgressSink;

import java.io.PrintStream;
import java.util.Locale;

/** Progress as one plain line per update, for logs of background runs ({@code \r} lines make unreadable files). */
final class LineProgress implements ProgressSink {
    private final PrintStream out;
    private final String name;
    private long total, startDone = -1, startNanos;

    LineProgress(PrintStream out, String name) {
        this.out = out;
        this.name = name;
    }

    @Override
    public void start(long total, String description) {
        this.total = total;
        this.startDone = -1;
        this.startNanos = System.nanoTime();
    }

    @Override
    public void update(long done, String text) {
        if (startDone < 0) {
            startDone = done;
            if (done == 0) return;
        }
        double elapsed = (System.nanoTime() - startNanos) / 1e9;
        long sessionDone = done - startDone;
        String eta = sessionDone > 0 && done < total ? " eta " + clock(elapsed / sessionDone * (total - done)) : "";
        out.printf(Locale.ROOT, "[%s] step %d/%d %s  (%s%s)%n", name, done, total, text, clock(elapsed), eta);
        out.flush();
    }

    private static String clock(double seconds) {
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }

    @Override
    public void close() {
        out.flush();
    }
}
