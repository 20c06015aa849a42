package dev.jlens.util;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** What this process runs with natively: the facts benchmarks and bug reports need next to their numbers. */
public final class NativeLibs {
    /** The file name of the library that lets MKL take its fast paths on non-Intel CPUs (see the kernel launcher). */
    public static final String MKL_SHIM = "libjlens-mkl-cpu.so";

    private NativeLibs() {}

    /**
     * Whether this process has the MKL vendor-check library loaded ({@code LD_PRELOAD}, set by {@code ./lab} and the
     * kernel launcher on x86-64 CPUs not made by Intel; {@code JLENS_MKL_SHIM=off} leaves it out). False where
     * {@code /proc/self/maps} cannot be read (not Linux).
     */
    public static boolean mklShimLoaded() {
        return mappedLibraries().stream().anyMatch(p -> p.endsWith("/" + MKL_SHIM));
    }

    /** {@code "intel-paths"} with the library loaded, {@code "vendor-default"} without: a label for benchmark lines. */
    public static String mklDispatch() {
        return mklShimLoaded() ? "intel-paths" : "vendor-default";
    }

    /** The paths of the files this process has mapped (Linux), empty elsewhere. */
    static List<String> mappedLibraries() {
        Path maps = Path.of("/proc/self/maps");
        if (!Files.isReadable(maps)) return List.of();
        try (var lines = Files.lines(maps)) {
            return lines.map(l -> {
                int slash = l.indexOf('/');
                return slash < 0 ? "" : l.substring(slash).trim();
            }).filter(s -> !s.isEmpty()).distinct().toList();
        } catch (IOException e) {
            return List.of();
        }
    }
}
