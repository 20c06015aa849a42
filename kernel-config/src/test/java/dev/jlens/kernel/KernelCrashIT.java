package dev.jlens.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * A kernel that dies in native code is restarted by Jupyter with the same connection file; the new kernel's
 * first output says what killed the old one. Provoked for real: a bfloat16 array aborts libtorch on the CPU
 * (C++ std::terminate, SIGABRT, no HotSpot crash report), and a write to address 0 is a SIGSEGV that HotSpot
 * reports in an hs_err file. A kernel killed by the kernel manager leaves neither. A clean restart must report
 * nothing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KernelCrashIT {

    private static final Pattern PATH_AFTER = Pattern.compile("(?:crash report|its stderr): (\\S+)");

    private final ArrayNode steps = JupyterDriver.JSON.createArrayNode();

    @TempDir
    static Path dir;

    private JsonNode results;

    private int code(String code) {
        steps.addObject().put("code", code);
        return steps.size() - 1;
    }

    private int fatal(String code) {
        steps.addObject().put("code", code).put("expect_death", true).put("timeout", 60);
        return steps.size() - 1;
    }

    private int restart(boolean now) {
        steps.addObject().put("restart", true).put("now", now);
        return steps.size() - 1;
    }

    private final int first = code("40 + 2");
    private final int cleanRestart = restart(false);
    private final int afterCleanRestart = code("1 + 1");
    private final int abort = fatal("NDManager.newBaseManager().zeros(new Shape(2), DataType.BFLOAT16)");
    private final int restartAfterAbort = restart(true);
    private final int afterAbort = code("40 + 2");
    private final int secondCellAfterAbort = code("2 + 2");
    private final int segfault = fatal("var field = sun.misc.Unsafe.class.getDeclaredField(\"theUnsafe\");\n"
            + "field.setAccessible(true);\n((sun.misc.Unsafe) field.get(null)).putAddress(0, 1);");
    private final int restartAfterSegfault = restart(true);
    private final int afterSegfault = code("3 + 3");
    private final int killLiveKernel = restart(true);
    private final int afterKill = code("4 + 4");

    @BeforeAll
    void runSession() throws Exception {
        results = JupyterDriver.run(dir, steps, Map.of(), 8).report().path("results");
    }

    @Test
    void cleanRestartReportsNothing() {
        JsonNode restart = results.path(cleanRestart);
        assertTrue(restart.path("restarted").asBoolean(), restart.toString());
        // The old kernel exits on the shutdown request by itself (its halt(0) is not the cell trap's business);
        // jupyter_client would kill it after 5 s.
        assertTrue(restart.path("restart_s").asDouble() < 4.5, "the kernel did not exit on shutdown: " + restart);
        assertEquals("", stderr(afterCleanRestart));
        assertEquals("2", value(afterCleanRestart));
        assertEquals("42", value(first));
    }

    @Test
    void nativeAbortIsNamedByTheRestartedKernel() throws Exception {
        JsonNode died = results.path(abort);
        assertTrue(died.path("died").asBoolean(), "the bf16 cell should abort the JVM: " + died);
        assertTrue(results.path(restartAfterAbort).path("restarted").asBoolean());

        String notice = stderr(afterAbort);
        assertTrue(notice.startsWith("jlens: the previous kernel (pid "), notice);
        assertTrue(notice.contains("died: SIGABRT") && notice.contains("terminate called without an active exception"),
                notice);
        assertTrue(Files.isRegularFile(pathIn(notice)), "the kept stderr should exist: " + notice);
        assertEquals("42", value(afterAbort), "the notice comes with the first cell's own result");
        assertEquals("", stderr(secondCellAfterAbort), "the notice is shown once");
    }

    @Test
    void segfaultIsNamedWithItsCrashReport() throws Exception {
        assertTrue(results.path(segfault).path("died").asBoolean(), results.path(segfault).toString());
        String notice = stderr(afterSegfault);
        assertTrue(notice.contains("died: SIGSEGV in "), notice);
        Path report = pathIn(notice);
        assertTrue(report.getFileName().toString().matches("hs_err_pid\\d+\\.log"), notice);
        assertTrue(Files.readString(report).contains("SIGSEGV"), "not HotSpot's crash report: " + report);
        assertFalse(notice.contains("SIGABRT"), notice);
        assertEquals("6", value(afterSegfault));
    }

    @Test
    void killedKernelIsReportedAsKilledFromOutside() {
        assertTrue(results.path(killLiveKernel).path("restarted").asBoolean());
        String notice = stderr(afterKill);
        assertTrue(notice.contains("died: it left no crash report and nothing on stderr")
                && notice.contains("killed from outside"), notice);
        assertEquals("8", value(afterKill));
    }

    private static Path pathIn(String notice) {
        Matcher m = PATH_AFTER.matcher(notice);
        assertTrue(m.find(), "no path in: " + notice);
        return Path.of(m.group(1));
    }

    private String stderr(int step) {
        JsonNode r = results.path(step);
        assertEquals("ok", r.path("status").asText(), r.toString());
        StringBuilder sb = new StringBuilder();
        for (JsonNode o : r.path("outputs")) {
            if (o.path("type").asText().equals("stream") && o.path("name").asText().equals("stderr")) {
                sb.append(o.path("text").asText());
            }
        }
        return sb.toString();
    }

    private String value(int step) {
        for (JsonNode o : results.path(step).path("outputs")) {
            if (o.path("type").asText().equals("execute_result")) {
                return o.path("data").path("text/plain").asText();
            }
        }
        return "(no result in " + results.path(step) + ")";
    }
}
