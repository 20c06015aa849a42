package dev.jlens.kernel;

import java.lang.management.ManagementFactory;
import java.math.BigDecimal;
import java.math.MathContext;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Wall and CPU time of the code a cell runs, for {@code %time} and {@code %%time}, printed as IPython prints them
 * ("CPU times: user 1.2 s, sys 24 ms, total: 1.22 s" / "Wall time: 1.3 s").
 *
 * <p>CPU time is the process's (Linux {@code /proc/self/stat}: every thread, including PyTorch's native compute
 * threads, at the kernel's 10 ms tick), as IPython's is; where that file does not exist it is the worker
 * thread's alone. Only the time the code runs counts: JShell's compilation is reported apart, as IPython reports
 * its compile time.
 */
final class ExecutionTimes {

    private static final Path PROC_STAT = Path.of("/proc/self/stat");
    private static final long NANOS_PER_TICK = 10_000_000L; // USER_HZ is 100 on every Linux ABI
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    private long wallNanos;
    private long userNanos;
    private long sysNanos;

    /** The start of one measured stretch, taken on the thread that runs the code. */
    final class Mark {
        private final long wall = System.nanoTime();
        private final long[] cpu = cpuNow();

        /** Adds the time since the mark. */
        void stop() {
            long[] end = cpuNow();
            synchronized (ExecutionTimes.this) {
                wallNanos += System.nanoTime() - wall;
                userNanos += end[0] - cpu[0];
                sysNanos += end[1] - cpu[1];
            }
        }
    }

    Mark start() {
        return new Mark();
    }

    synchronized long wallNanos() {
        return wallNanos;
    }

    /** IPython's two lines. */
    synchronized String format() {
        return "CPU times: user " + duration(userNanos) + ", sys " + duration(sysNanos) + ", total: "
                + duration(userNanos + sysNanos) + "\nWall time: " + duration(wallNanos);
    }

    /** User and system CPU nanoseconds so far. */
    private static long[] cpuNow() {
        try {
            String stat = Files.readString(PROC_STAT);
            // Fields after the command name, which is in parentheses and may itself contain spaces.
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return new long[] {Long.parseLong(f[11]) * NANOS_PER_TICK, Long.parseLong(f[12]) * NANOS_PER_TICK};
        } catch (Exception e) {
            long user = THREADS.getCurrentThreadUserTime();
            long total = THREADS.getCurrentThreadCpuTime();
            return new long[] {Math.max(0, user), Math.max(0, total - user)};
        }
    }

    /** A duration as IPython's _format_time writes it: 3 significant digits and a unit, or h/min/s. */
    static String duration(long nanos) {
        double seconds = nanos / 1e9;
        if (seconds >= 60) {
            long s = Math.round(seconds);
            long h = s / 3600;
            long min = s % 3600 / 60;
            s %= 60;
            return (h > 0 ? h + "h " : "") + (h > 0 || min > 0 ? min + "min " : "") + s + "s";
        }
        String[] units = {"s", "ms", "\u00b5s", "ns"};
        double[] scales = {1, 1e3, 1e6, 1e9};
        int order = seconds > 0 ? Math.min(3, Math.max(0, (int) -Math.floor(Math.log10(seconds) / 3))) : 3;
        BigDecimal value = new BigDecimal(seconds * scales[order]).round(new MathContext(3));
        return value.stripTrailingZeros().toPlainString() + " " + units[order];
    }
}
