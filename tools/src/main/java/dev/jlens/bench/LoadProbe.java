package dev.jlens.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.model.HookedTransformer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Run in a fresh JVM by {@link ModelBench}: starts the engine, loads a saved model and prints one JSON line with
 * the process's resident memory before and after ({@code /proc/self/status}, Linux) and the Java heap in use.
 */
public final class LoadProbe {
    private LoadProbe() {}

    /** {@code LoadProbe MODEL_DIR}. */
    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: LoadProbe MODEL_DIR");
            System.exit(2);
        }
        try (NDManager m = NDManager.newBaseManager()) {
            m.create(1f).add(1f);   // loads the native engine, so "before" holds everything but the weights
        }
        long rssBefore = status("VmRSS");
        long hwmBefore = status("VmHWM");
        Map<String, Object> out = new LinkedHashMap<>();
        try (HookedTransformer model = HookedTransformer.load(Path.of(args[0]))) {
            long weightBytes = 0;
            for (NDArray p : model.parameters().values()) weightBytes += p.getShape().size() * Float.BYTES;
            Runtime rt = Runtime.getRuntime();
            out.put("rss_before_load_bytes", rssBefore);
            out.put("peak_rss_before_load_bytes", hwmBefore);
            out.put("rss_after_load_bytes", status("VmRSS"));
            out.put("peak_rss_bytes", status("VmHWM"));
            out.put("heap_used_bytes", rt.totalMemory() - rt.freeMemory());
            out.put("heap_committed_bytes", rt.totalMemory());
            out.put("weight_bytes", weightBytes);
        }
        System.out.println(new ObjectMapper().writeValueAsString(out));
    }

    /** A {@code kB} field of {@code /proc/self/status}, in bytes. */
    static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) {
                String[] parts = line.substring(field.length() + 1).trim().split("\\s+");
                return Long.parseLong(parts[0]) * 1024;
            }
        }
        throw new IllegalStateException("/proc/self/status has no " + field + " (the load probe needs Linux)");
    }
}
