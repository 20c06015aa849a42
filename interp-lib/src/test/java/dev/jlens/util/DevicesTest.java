package dev.jlens.util;

import ai.djl.Device;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device is chosen once, by JLENS_DEVICE and JLENS_TORCH_LIB through the launchers' shell function
 * (kernel-config/bin/jlens-env), and DJL then loads the libtorch named there. No GPU here: the CUDA path is checked
 * up to the point where a GPU is needed (its errors), and the external-libtorch path with a CPU libtorch in a folder
 * of our own, which a child JVM must load instead of the bundled one.
 */
class DevicesTest {

    @Test
    void theRequestIsOneOfTheChoicesAndAMismatchNamesWhatToFix() {
        assertEquals("auto", Devices.requested(null));
        assertEquals("auto", Devices.requested(" "));
        assertEquals("cuda", Devices.requested("CUDA"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Devices.requested("gpu"));
        assertTrue(e.getMessage().contains("'gpu'") && e.getMessage().contains("auto, cpu, cuda"), e.getMessage());

        Devices.verify("auto", Device.cpu(), null);
        Devices.verify("cpu", Device.cpu(), null);
        e = assertThrows(IllegalStateException.class, () -> Devices.verify("cuda", Device.cpu(), null));
        assertTrue(e.getMessage().contains("sees no GPU") && e.getMessage().contains("JLENS_TORCH_LIB"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> Devices.verify("cuda", Device.cpu(), "/opt/torch/lib"));
        assertTrue(e.getMessage().contains("/opt/torch/lib"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> Devices.verify("cpu", Device.gpu(), null));
        assertTrue(e.getMessage().contains("gpu"), e.getMessage());

        Map<String, Object> d = Devices.describe();
        assertEquals("cpu()", d.get("device"));
        assertEquals(0, d.get("gpus"));
        assertTrue(String.valueOf(d.get("libtorch")).endsWith("/libtorch_cpu.so"), d.toString());
    }

    @Test
    void theShellFunctionRefusesWhatItCannotHonour() throws Exception {
        Path lib = Files.createTempDirectory("jlens-torch-lib");
        Files.createFile(lib.resolve("libtorch_cpu.so"));
        try {
            assertRefused(Map.of("JLENS_DEVICE", "gpu"), "is not one of auto, cpu, cuda");
            assertRefused(Map.of("JLENS_DEVICE", "cuda", "JLENS_TORCH_LIB", lib.toString()), "is a CPU build");
            assertRefused(Map.of("JLENS_TORCH_LIB", lib.resolve("nowhere").toString()), "holds no libtorch_cpu.so");
            assertRefused(Map.of("JLENS_DEVICE", "cuda", "JLENS_TORCH_PYTHON", "false"), "needs a CUDA build");
            // a libtorch of another version: found from the zip's build-version file beside lib/
            Path zipRoot = Files.createTempDirectory("jlens-libtorch");
            Path zipLib = Files.createDirectory(zipRoot.resolve("lib"));
            Files.createFile(zipLib.resolve("libtorch_cpu.so"));
            Files.writeString(zipRoot.resolve("build-version"), "2.5.1+cu124\n");
            assertRefused(Map.of("JLENS_TORCH_LIB", zipLib.toString()), "PyTorch 2.5.1");
            deleteTree(zipRoot.resolve("build-version"));
            Files.writeString(zipRoot.resolve("build-version"), "2.7.1+cu128\n");
            Files.createFile(zipLib.resolve("libtorch_cuda.so"));
            String env = shell(Map.of("JLENS_DEVICE", "cuda", "JLENS_TORCH_LIB", zipLib.toString()),
                    "jlens_device && echo \"$PYTORCH_LIBRARY_PATH|$PYTORCH_VERSION|$PYTORCH_FLAVOR|$JLENS_DEVICE\"", 0);
            assertEquals(zipLib + "|2.7.1|cu128|cuda", env.strip());
            deleteTree(zipRoot);
            String cpu = shell(Map.of("JLENS_DEVICE", "cpu"),
                    "jlens_device && echo \"[${CUDA_VISIBLE_DEVICES-unset}]\"", 0);
            assertEquals("[]", cpu.strip(), "JLENS_DEVICE=cpu hides the GPUs");
        } finally {
            deleteTree(lib);
        }
    }

    @Test
    void aChildJvmLoadsTheLibtorchNamedByJlensTorchLib() throws Exception {
        // the bundled libtorch this JVM loaded, hard-linked (or copied) file by file into a folder of our own without DJL's bridge
        Path bundled = Path.of(String.valueOf(Devices.describe().get("libtorch"))).getParent();
        Path lib = Files.createTempDirectory("jlens-own-libtorch");
        try (var files = Files.list(bundled)) {
            for (Path f : files.toList()) {
                String n = f.getFileName().toString();
                if (n.endsWith(".so") || n.contains(".so.")) {
                    if (n.contains("djl_torch")) continue;
                    try {
                        Files.createLink(lib.resolve(n), f);   // a hard link keeps our path in the process's maps
                    } catch (IOException | UnsupportedOperationException e) {
                        Files.copy(f, lib.resolve(n));
                    }
                }
            }
        }
        try {
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            String out = shell(Map.of("JLENS_TORCH_LIB", lib.toString(), "JLENS_DEVICE", "auto"),
                    "jlens_device && exec '" + java + "' -Dai.djl.offline=true -cp '"
                            + System.getProperty("java.class.path") + "' '" + Describe.class.getName() + "'", 0);
            String last = out.strip().lines().reduce((a, b) -> b).orElse("");
            assertTrue(last.startsWith(lib + "/libtorch_cpu.so|cpu()|"), "child loaded: " + out);
            assertTrue(last.endsWith("|cpu"), "flavor: " + out);
        } finally {
            deleteTree(lib);
        }
    }

    /** Prints the libtorch it loaded, its device and the flavor DJL was given. */
    public static final class Describe {
        public static void main(String[] args) {
            Map<String, Object> d = Devices.describe();
            System.out.println(d.get("libtorch") + "|" + d.get("device") + "|" + d.get("flavor"));
        }
    }

    private static void assertRefused(Map<String, String> env, String message) throws Exception {
        String out = shell(env, "jlens_device; echo \"rc=$?\"", 0);
        assertTrue(out.contains(message), "expected '" + message + "' in: " + out);
        assertTrue(out.strip().endsWith("rc=2"), out);
    }

    /** Runs {@code script} in bash after sourcing jlens-env with a clean device environment; stdout and stderr. */
    private static String shell(Map<String, String> env, String script, int expectRc) throws Exception {
        Path envFile = Zoo.root().resolve("kernel-config/bin/jlens-env");
        assertTrue(Files.isRegularFile(envFile), "missing " + envFile);
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", "source '" + envFile + "'; " + script);
        for (String k : List.of("JLENS_DEVICE", "JLENS_TORCH_LIB", "JLENS_TORCH_PYTHON", "PYTORCH_LIBRARY_PATH",
                "PYTORCH_VERSION", "PYTORCH_FLAVOR", "CUDA_VISIBLE_DEVICES")) {
            pb.environment().remove(k);
        }
        pb.environment().putAll(env);
        pb.redirectErrorStream(true);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "timed out");
        String s = new String(out, StandardCharsets.UTF_8);
        assertEquals(expectRc, p.exitValue(), s);
        assertNotNull(s);
        return s;
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        try (var w = Files.walk(p)) {
            for (Path f : w.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
        }
    }
}
