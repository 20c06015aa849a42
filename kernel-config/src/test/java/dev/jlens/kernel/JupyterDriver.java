package dev.jlens.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs the packaged kernel (jar + launcher + kernel.json, installed as Jupyter would find it) through Jupyter's
 * own client library: {@code kernel_driver.py} plays a list of steps and reports every message.
 */
final class JupyterDriver {

    static final ObjectMapper JSON = new ObjectMapper();
    static final String PYTHON = "/usr/bin/python3";

    /** The driver's report ({@code results}, {@code alive_at_end}) and the kernel's stderr. */
    record Session(JsonNode report, String kernelStderr) {}

    private JupyterDriver() {}

    /**
     * Installs the kernel spec under {@code dir}, runs the steps with {@code env} added to the kernel's
     * environment (the kernel's state directory is kept under {@code dir} too) and returns the report.
     */
    static Session run(Path dir, ArrayNode steps, Map<String, String> env, int minutes) throws Exception {
        Path jar = Path.of(requiredProperty("jlens.kernel.jar"));
        assertTrue(Files.isRegularFile(jar), "kernel jar not built: " + jar);
        Path moduleDir = jar.getParent().getParent();
        Path launcher = moduleDir.resolve("bin/jlens-kernel");
        assertTrue(Files.isExecutable(launcher), "launcher missing or not executable: " + launcher);
        String spec = Files.readString(moduleDir.resolve("src/main/jupyter/kernel.json"))
                .replace("@LAUNCHER@", launcher.toString());
        Path specDir = Files.createDirectories(dir.resolve("kernels/jlens-it"));
        Files.writeString(specDir.resolve("kernel.json"), spec);
        assertTrue(Files.isExecutable(Path.of(PYTHON)), PYTHON + " is missing; install: apt-get install -y "
                + "jupyter-notebook jupyter-nbconvert python3-nbclient");

        ProcessBuilder pb = new ProcessBuilder(PYTHON, resource("kernel_driver.py").toString(), "jlens-it");
        pb.environment().put("JUPYTER_PATH", dir.toString());
        pb.environment().put("JUPYTER_RUNTIME_DIR", dir.resolve("runtime").toString());
        pb.environment().put("JUPYTER_DATA_DIR", dir.resolve("data").toString());
        pb.environment().put("JLENS_STATE_DIR", dir.resolve("state").toString());
        pb.environment().put("JLENS_JAVA_OPTS", "-Xmx2g");
        pb.environment().putAll(env);
        Path out = dir.resolve("session.json");
        Path err = dir.resolve("session.err");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        p.getOutputStream().write(JSON.writeValueAsBytes(steps));
        p.getOutputStream().close();
        if (!p.waitFor(minutes, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            fail("kernel session did not finish in " + minutes + " minutes; stderr:\n" + Files.readString(err));
        }
        assertEquals(0, p.exitValue(), "kernel driver failed; stderr:\n" + Files.readString(err));
        return new Session(JSON.readTree(out.toFile()), Files.readString(err));
    }

    static String requiredProperty(String name) {
        String v = System.getProperty(name);
        if (v == null || v.isBlank()) {
            fail("system property " + name + " is not set (run through Maven: mvn verify)");
        }
        return v;
    }

    private static Path resource(String name) throws URISyntaxException, IOException {
        URL url = JupyterDriver.class.getResource(name);
        assertNotNull(url, "test resource missing: " + name);
        return Path.of(url.toURI());
    }
}
