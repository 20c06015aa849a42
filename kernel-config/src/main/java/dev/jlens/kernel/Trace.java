package dev.jlens.kernel;

/** Startup timing on stderr when JLENS_TRACE is set: milliseconds since the JVM started, per milestone. */
final class Trace {

    private static final boolean ON = System.getenv("JLENS_TRACE") != null;
    private static final long JVM_START_MILLIS = ProcessHandle.current().info().startInstant()
            .map(java.time.Instant::toEpochMilli).orElse(System.currentTimeMillis());

    private Trace() {}

    static void mark(String what) {
        if (ON) {
            KernelLog.ERR.printf("jlens-trace %6d ms  %s%n", System.currentTimeMillis() - JVM_START_MILLIS, what);
        }
    }
}
