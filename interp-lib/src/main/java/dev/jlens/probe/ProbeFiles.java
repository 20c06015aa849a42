package dev.jlens.probe;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A probe on disk: one JSON file, metadata and weights together.
 *
 * <pre>{@code
 * {"format": "jlens-probe", "version": 1, "method": "logistic", "n_classes": 2, "d": 128,
 *  "weights": [[...d floats...]], "bias": [0.12], "info": {"hook": "blocks.2.hook_resid_post"}}
 * }</pre>
 *
 * <p>All JSON rather than JSON plus safetensors: a probe is at most a few classes times {@code d_model} floats (8 KB
 * of numbers for GPT-2 small's binary probe), one file is easier to move, diff and read than two, and floats are
 * written in their shortest round-trip form and read back through {@link java.math.BigDecimal}, so a save and load
 * round trip is exact. Writing goes to a temporary file renamed over the target, so a reader never sees half a
 * probe.
 */
final class ProbeFiles {
    static final String FORMAT = "jlens-probe";
    static final int VERSION = 1;
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);

    private ProbeFiles() {}

    static void save(LinearProbe p, Path file) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", VERSION);
        root.put("method", p.method());
        root.put("n_classes", p.nClasses());
        root.put("d", p.dim());
        ArrayNode w = root.putArray("weights");
        for (float[] row : p.weights()) {
            ArrayNode r = w.addArray();
            for (float f : row) r.add(f);
        }
        ArrayNode b = root.putArray("bias");
        for (float f : p.bias()) b.add(f);
        ObjectNode info = root.putObject("info");
        p.info().forEach(info::put);
        try {
            Path abs = file.toAbsolutePath();
            if (abs.getParent() != null) Files.createDirectories(abs.getParent());
            Path tmp = abs.resolveSibling("." + abs.getFileName() + ".tmp");
            Files.writeString(tmp, JSON.writeValueAsString(root));
            Files.move(tmp, abs, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write probe to " + file + ": " + e.getMessage(), e);
        }
    }

    static LinearProbe load(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("probe file " + file + " does not exist (or is not a file)");
        }
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw bad(file, "it is not valid JSON (" + e.getOriginalMessage() + ")");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read probe file " + file + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw bad(file, "it holds no JSON object");
        String format = root.path("format").asText("");
        if (!FORMAT.equals(format)) {
            throw bad(file, "its format is '" + format + "', expected '" + FORMAT + "' (write probes with probe.save)");
        }
        int version = root.path("version").asInt(-1);
        if (version != VERSION) throw bad(file, "version " + version + " is not supported (this build reads " + VERSION + ")");
        String method = text(file, root, "method");
        int nClasses = integer(file, root, "n_classes");
        int d = integer(file, root, "d");
        int rows = nClasses == 2 ? 1 : nClasses;
        JsonNode w = root.get("weights");
        if (w == null || !w.isArray() || w.size() != rows) {
            throw bad(file, "'weights' must be an array of " + rows + " row(s) for " + nClasses + " classes, got "
                    + (w == null ? "none" : w.size() + ""));
        }
        float[][] weights = new float[rows][];
        for (int c = 0; c < rows; c++) weights[c] = floats(file, w.get(c), "weights[" + c + "]", d);
        float[] bias = floats(file, root.get("bias"), "bias", rows);
        Map<String, String> info = new LinkedHashMap<>();
        JsonNode in = root.path("info");
        for (Iterator<Map.Entry<String, JsonNode>> it = in.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            info.put(e.getKey(), e.getValue().asText());
        }
        try {
            return new LinearProbe(method, nClasses, weights, bias, info);
        } catch (IllegalArgumentException e) {
            throw bad(file, e.getMessage());
        }
    }

    private static float[] floats(Path file, JsonNode a, String what, int n) {
        if (a == null || !a.isArray() || a.size() != n) {
            throw bad(file, "'" + what + "' must be an array of " + n + " numbers, got "
                    + (a == null ? "none" : a.isArray() ? a.size() + " entries" : a.getNodeType().toString()));
        }
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            JsonNode v = a.get(i);
            if (!v.isNumber()) throw bad(file, "'" + what + "'[" + i + "] is " + v + ", not a number");
            out[i] = v.isBigDecimal() ? v.decimalValue().floatValue() : v.floatValue();
            if (!Float.isFinite(out[i])) throw bad(file, "'" + what + "'[" + i + "] is not finite");
        }
        return out;
    }

    private static String text(Path file, JsonNode root, String field) {
        JsonNode v = root.get(field);
        if (v == null || !v.isTextual()) throw bad(file, "field '" + field + "' is missing or not a string");
        return v.asText();
    }

    private static int integer(Path file, JsonNode root, String field) {
        JsonNode v = root.get(field);
        if (v == null || !v.isInt() || v.asInt() < 1) throw bad(file, "field '" + field + "' is missing or not a positive integer");
        return v.asInt();
    }

    private static IllegalArgumentException bad(Path file, String problem) {
        return new IllegalArgumentException("cannot load probe from " + file + ": " + problem);
    }
}
