package dev.jlens.kernel;

import java.io.PrintStream;

/**
 * The kernel's own messages ("jlens: ..."), on the process's stderr, which Jupyter shows in its log. During a
 * cell {@code System.err} goes to the notebook, so this keeps the stream the JVM started with.
 */
final class KernelLog {

    /** The process's real stderr, captured before any cell can replace {@code System.err}. */
    static final PrintStream ERR = System.err;

    private KernelLog() {}

    static void warn(String message) {
        ERR.println("jlens: " + message);
        ERR.flush();
    }
}
