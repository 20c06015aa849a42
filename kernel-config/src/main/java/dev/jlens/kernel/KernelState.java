package dev.jlens.kernel;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernel's state directory, which outlives the JVM, so that a restarted kernel can say what killed its
 * predecessor. The launcher ({@code bin/jlens-kernel}) keys it by the connection file (Jupyter restarts a kernel
 * with the same one), points HotSpot's crash report there ({@code -XX:ErrorFile}) and copies the JVM's stderr to
 * {@code stderr-PID.log} in it; the kernel passes it as {@code -Djlens.kernel.stateDir}.
 *
 * <p>A running kernel keeps a {@code running} marker there that only a clean exit removes. A marker found at
 * startup means the previous kernel died; what it left explains how. HotSpot writes a crash report
 * ({@code hs_err_pidPID.log}) for faults it catches (SIGSEGV, SIGBUS, its own internal errors) but none for an
 * abort in native code (C++ {@code std::terminate}, as a bad dtype in libtorch does): the process just gets
 * SIGABRT and exits with 134, and only its stderr ("terminate called ...") tells the story.
 */
final class KernelState {

    /** System property naming the directory; without it (warm-up, tests in-process) nothing is recorded. */
    static final String PROPERTY = "jlens.kernel.stateDir";

    private static final Pattern SIGNAL_LINE = Pattern.compile("^#\\s+(SIG[A-Z0-9]+) \\(0x[0-9a-f]+\\) at pc=");
    private static final Pattern FRAME_LIB = Pattern.compile("\\[([^+\\]]+)[^\\]]*\\]\\s*(.*)$");
    private static final int STDERR_LINES = 6;

    private final Path dir;
    private final long pid = ProcessHandle.current().pid();

    private KernelState(Path dir) {
        this.dir = dir;
    }

    /** The state directory the launcher chose, if any. */
    static Optional<KernelState> fromSystemProperty() {
        String d = System.getProperty(PROPERTY);
        return d == null || d.isBlank() ? Optional.empty() : Optional.of(new KernelState(Path.of(d)));
    }

    static KernelState in(Path dir) {
        return new KernelState(dir);
    }

    private Path marker() {
        return dir.resolve("running");
    }

    /**
     * Reads what the previous kernel left if it did not exit cleanly (a message for the user, or empty), then
     * marks this kernel as running.
     */
    Optional<String> takeOverFromPrevious() {
        Optional<String> death = previousDeath();
        try {
            Files.createDirectories(dir);
            Properties p = new Properties();
            p.setProperty("pid", Long.toString(pid));
            p.setProperty("started", Instant.now().toString());
            try (var out = Files.newBufferedWriter(marker(), StandardCharsets.UTF_8)) {
                p.store(out, "a JLens kernel runs with this connection file; removed on a clean exit");
            }
        } catch (IOException e) {
            KernelLog.warn("cannot write the kernel's running marker in " + dir + ": " + e);
        }
        return death;
    }

    /** A clean exit: the next kernel has nothing to report. This kernel's stderr copy is no longer needed. */
    void markCleanExit() {
        try {
            Files.deleteIfExists(marker());
            Files.deleteIfExists(stderrLog(pid));
            Files.deleteIfExists(dir); // only if empty: crash reports and kept logs of dead kernels stay
        } catch (IOException e) {
            // nothing to do about it while exiting
        }
    }

    private Path stderrLog(long ofPid) {
        return dir.resolve("stderr-" + ofPid + ".log");
    }

    /** What killed the previous kernel, if it died. */
    Optional<String> previousDeath() {
        if (!Files.isRegularFile(marker())) {
            return Optional.empty();
        }
        Properties p = new Properties();
        try (var in = Files.newBufferedReader(marker(), StandardCharsets.UTF_8)) {
            p.load(in);
        } catch (IOException e) {
            return Optional.of("jlens: the previous kernel did not shut down cleanly (its marker is unreadable: " + e
                    + ")");
        }
        String oldPid = p.getProperty("pid", "?");
        String started = p.getProperty("started");
        String who = "the previous kernel (pid " + oldPid + (started == null ? "" : ", started " + time(started))
                + ")";
        Path crashReport = dir.resolve("hs_err_pid" + oldPid + ".log");
        Path stderr = stderrLog(parsePid(oldPid));
        List<String> errLines = lastLines(stderr);
        String nativeAbort = errLines.stream().filter(l -> l.startsWith("terminate called")).findFirst()
                .orElse(null);
        StringBuilder msg = new StringBuilder("jlens: ").append(who).append(" died: ");
        if (Files.isRegularFile(crashReport)) {
            msg.append(describeCrashReport(crashReport)).append("; crash report: ").append(crashReport);
        } else if (nativeAbort != null) {
            msg.append("SIGABRT, an abort in native code (").append(nativeAbort);
            errLines.stream().filter(l -> l.trim().startsWith("what():")).findFirst()
                    .ifPresent(w -> msg.append("; ").append(w.trim()));
            msg.append("); HotSpot writes no crash report for a native abort; its stderr: ").append(stderr);
        } else if (!errLines.isEmpty()) {
            msg.append("it left no crash report; the last lines on its stderr (").append(stderr).append("):");
            errLines.forEach(l -> msg.append("\n  ").append(l));
        } else {
            msg.append("it left no crash report and nothing on stderr, so it was most likely killed from outside"
                    + " (SIGKILL: by the kernel manager after an unanswered shutdown, or by the system's"
                    + " out-of-memory killer)");
        }
        return Optional.of(msg.toString());
    }

    /** "SIGSEGV in libjvm.so (Unsafe_PutLong+0x124)" or the report's first error line. */
    static String describeCrashReport(Path report) {
        List<String> lines;
        try {
            lines = Files.readAllLines(report, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            return "a fatal error (crash report unreadable: " + e.getMessage() + ")";
        }
        String signal = null;
        String frame = null;
        String firstError = null;
        for (int i = 0; i < lines.size() && i < 60; i++) {
            String l = lines.get(i);
            Matcher m = SIGNAL_LINE.matcher(l);
            if (signal == null && m.find()) {
                signal = m.group(1);
            }
            if (l.startsWith("# Problematic frame:") && i + 1 < lines.size()) {
                Matcher f = FRAME_LIB.matcher(lines.get(i + 1));
                frame = f.find() ? f.group(1) + (f.group(2).isBlank() ? "" : " (" + f.group(2).trim() + ")")
                        : lines.get(i + 1).substring(1).trim();
            }
            if (firstError == null && l.startsWith("#  ") && !l.startsWith("#  SIG") && !l.isBlank()
                    && i > 1 && !l.contains("JRE version") && !l.contains("Java VM:")) {
                firstError = l.substring(1).trim();
            }
        }
        if (signal != null) {
            return signal + (frame == null ? "" : " in " + frame);
        }
        return firstError != null ? firstError : "a fatal error in the JVM";
    }

    /** The last lines of a file (at most {@value #STDERR_LINES}, without routine lines). */
    private static List<String> lastLines(Path file) {
        if (!Files.isRegularFile(file)) {
            return List.of();
        }
        List<String> all;
        try {
            all = Files.readAllLines(file, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            return List.of();
        }
        List<String> kept = new ArrayList<>();
        for (String l : all) {
            // Routine startup lines, and the dead kernel's own report about its predecessor, explain nothing.
            if (!l.isBlank() && !l.startsWith("SLF4J") && !l.startsWith("WARNING:")
                    && !l.startsWith("jlens: the previous kernel")) {
                kept.add(l);
            }
        }
        return kept.subList(Math.max(0, kept.size() - STDERR_LINES), kept.size());
    }

    private static long parsePid(String pid) {
        try {
            return Long.parseLong(pid);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static String time(String instant) {
        try {
            return DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneId.systemDefault())
                    .format(Instant.parse(instant));
        } catch (RuntimeException e) {
            return instant;
        }
    }
}
