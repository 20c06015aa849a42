package dev.jlens.kernel;

/**
 * What cell code calls instead of {@code System.exit}, {@code Runtime.exit} and {@code Runtime.halt} (see
 * {@link ExitGuard}): each throws {@link SystemExit}, so the cell ends with an error and the kernel keeps its
 * state. Public because snippet classes, loaded by JShell's class loader, call it.
 */
public final class ExitTrap {

    private ExitTrap() {}

    /** Replaces {@code System.exit(status)}. */
    public static void systemExit(int status) {
        throw SystemExit.of("System.exit(" + status + ")", status);
    }

    /** Replaces {@code runtime.exit(status)}. */
    public static void runtimeExit(Runtime runtime, int status) {
        throw SystemExit.of("Runtime.exit(" + status + ")", status);
    }

    /** Replaces {@code runtime.halt(status)}. */
    public static void runtimeHalt(Runtime runtime, int status) {
        throw SystemExit.of("Runtime.halt(" + status + ")", status);
    }
}
