package dev.jlens.kernel;

import java.util.Arrays;

/**
 * Thrown where cell code asked the JVM to exit. An {@link Error}, like Python's {@code SystemExit} outside
 * {@code Exception}: a {@code catch (Exception e)} in the cell does not swallow it and the cell stops.
 */
public final class SystemExit extends Error {

    private final int status;

    private SystemExit(String message, int status) {
        super(message);
        this.status = status;
    }

    static SystemExit of(String call, int status) {
        SystemExit e = new SystemExit(call + " was called: the kernel keeps running with its state"
                + " (use Kernel > Restart to restart it)", status);
        // The trap's own frame is noise: the trace starts where the cell called exit.
        StackTraceElement[] frames = e.getStackTrace();
        int skip = 0;
        while (skip < frames.length && frames[skip].getClassName().startsWith("dev.jlens.kernel.")) {
            skip++;
        }
        e.setStackTrace(Arrays.copyOfRange(frames, skip, frames.length));
        return e;
    }

    /** The status the cell passed to exit or halt. */
    public int status() {
        return status;
    }
}
