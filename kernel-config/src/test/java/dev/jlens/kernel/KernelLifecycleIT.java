package dev.jlens.kernel;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The kernel must not outlive the process that started it (Jupyter killed without a shutdown request). */
class KernelLifecycleIT {

    @TempDir
    Path dir;

    @Test
    void kernelExitsWhenItsParentDies() throws Exception {
        Path jar = Path.of(System.getProperty("jlens.kernel.jar", ""));
        assertTrue(Files.isRegularFile(jar), "kernel jar not built: " + jar);
        Path launcher = jar.getParent().getParent().resolve("bin/jlens-kernel");
        Path connection = dir.resolve("connection.json");
        int[] ports = new int[5];
        for (int i = 0; i < ports.length; i++) {
            try (ServerSocket s = new ServerSocket(0)) {
                ports[i] = s.getLocalPort();
            }
        }
        Files.writeString(connection, "{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"shell_port\":" + ports[0]
                + ",\"iopub_port\":" + ports[1] + ",\"stdin_port\":" + ports[2] + ",\"control_port\":" + ports[3]
                + ",\"hb_port\":" + ports[4] + ",\"signature_scheme\":\"hmac-sha256\",\"key\":\""
                + UUID.randomUUID() + "\"}");

        // A parent shell that starts the kernel in the background, reports its pid, then waits.
        ProcessBuilder pb = new ProcessBuilder("sh", "-c", "\"$0\" \"$1\" >/dev/null 2>&1 & echo $!; wait",
                launcher.toString(), connection.toString());
        pb.environment().put("JLENS_JAVA_OPTS", "-Xmx512m");
        pb.environment().put("JLENS_STATE_DIR", dir.resolve("state").toString());
        Process parent = pb.start();
        long kernelPid;
        try (BufferedReader r = new BufferedReader(
                new InputStreamReader(parent.getInputStream(), StandardCharsets.UTF_8))) {
            String line = r.readLine();
            assertNotNull(line, "parent shell printed no pid");
            kernelPid = Long.parseLong(line.trim());
        }
        Optional<ProcessHandle> kernel = ProcessHandle.of(kernelPid);
        assertTrue(kernel.isPresent() && kernel.get().isAlive(), "kernel did not start");
        Thread.sleep(3000); // let it get past startup and register its watch on the parent

        parent.destroyForcibly();
        parent.waitFor(10, TimeUnit.SECONDS);
        try {
            kernel.get().onExit().get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            kernel.get().destroyForcibly();
            throw new AssertionError("kernel still running 30 s after its parent was killed");
        }
    }
}
