package dev.jlens.util;

import ai.djl.Device;
import ai.djl.engine.Engine;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The compute device, chosen once per process by {@code JLENS_DEVICE} ({@code auto}, {@code cpu} or {@code cuda})
 * and {@code JLENS_TORCH_LIB}, which the launchers turn into DJL's settings ({@code kernel-config/bin/jlens-env}).
 * Every array the library makes comes from a manager on DJL's default device, so models, activation caches, SAE
 * training and patching all follow it; nothing in the library names a device itself.
 */
public final class Devices {
    /** The values {@code JLENS_DEVICE} may take. */
    public static final List<String> CHOICES = List.of("auto", "cpu", "cuda");

    private static volatile boolean checked;

    private Devices() {}

    /** The device arrays are made on: DJL's default, GPU 0 where the loaded libtorch sees a GPU. */
    public static Device current() {
        return Engine.getInstance().defaultDevice();
    }

    /** The device asked for: {@code JLENS_DEVICE} (lower case), {@code auto} when unset. */
    public static String requested() {
        return requested(System.getenv("JLENS_DEVICE"));
    }

    static String requested(String env) {
        String v = env == null || env.isBlank() ? "auto" : env.trim().toLowerCase(Locale.ROOT);
        if (!CHOICES.contains(v)) {
            throw new IllegalStateException("JLENS_DEVICE='" + env + "' is not one of " + String.join(", ", CHOICES));
        }
        return v;
    }

    /**
     * Fails, naming what to fix, when the device asked for is not the one arrays are made on (for instance
     * {@code JLENS_DEVICE=cuda} with a CPU libtorch or no visible GPU). Checked once per process; models call it when
     * they are made.
     */
    public static void check() {
        if (checked) return;
        verify(requested(), current(), System.getenv("PYTORCH_LIBRARY_PATH"));
        checked = true;
    }

    static void verify(String requested, Device device, String libraryPath) {
        if (requested.equals("cuda") && !device.isGpu()) {
            throw new IllegalStateException("JLENS_DEVICE=cuda, but PyTorch sees no GPU: "
                    + (libraryPath == null
                    ? "start the lab through ./lab or the JLens kernel so JLENS_TORCH_LIB takes effect"
                    : "the libtorch in " + libraryPath + " found no CUDA device (check nvidia-smi and "
                    + "CUDA_VISIBLE_DEVICES)") + "; valid choices: " + String.join(", ", CHOICES));
        }
        if (requested.equals("cpu") && device.isGpu()) {
            throw new IllegalStateException("JLENS_DEVICE=cpu, but arrays are made on " + device
                    + ": start the JVM through ./lab or the JLens kernel, which hide the GPUs");
        }
    }

    /**
     * What this process computes on, for a report: the device asked for and the one used, the engine and its
     * version, the GPUs it sees, and the libtorch file it loaded with the settings that chose it.
     */
    public static Map<String, Object> describe() {
        Engine e = Engine.getInstance();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("requested", requested());
        m.put("device", e.defaultDevice().toString());
        m.put("engine", e.getEngineName() + " " + e.getVersion());
        m.put("gpus", e.getGpuCount());
        m.put("libtorch", NativeLibs.mappedLibraries().stream().filter(p -> p.endsWith("/libtorch_cpu.so"))
                .findFirst().orElse(null));
        m.put("cuda_libtorch", NativeLibs.mappedLibraries().stream().anyMatch(p -> p.endsWith("/libtorch_cuda.so")));
        m.put("torch_lib", System.getenv("PYTORCH_LIBRARY_PATH"));
        m.put("flavor", System.getenv("PYTORCH_FLAVOR"));
        m.put("mkl", NativeLibs.mklDispatch());
        return m;
    }
}
