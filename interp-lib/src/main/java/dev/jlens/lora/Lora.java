package dev.jlens.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import dev.jlens.io.TensorInfo;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.WeightDelta;
import dev.jlens.model.arch.LinearModule;
import dev.jlens.model.arch.LowRank;
import dev.jlens.train.BatchSource;
import dev.jlens.train.TrainConfig;
import dev.jlens.train.Trainer;
import dev.jlens.util.Names;
import dev.jlens.util.Tensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * A LoRA adapter on a {@link HookedTransformer}: for each targeted linear layer, {@code A} {@code [r, in]} and
 * {@code B} {@code [out, r]}, and the layer computing what {@code W + (alpha / r) B A} computes (the stored change
 * transposed for GPT-2's Conv1D layers, PEFT's {@code fan_in_fan_out}). While attached and not merged, every forward
 * pass of the model adds the low-rank path {@code (x A^T)((alpha / r) B)^T} to each adapted layer's output, as PEFT
 * does (hooks, caches, per-head results and generation see the adapted model; the model's parameters stay the base
 * weights). Saved and loaded in PEFT's layout, so adapters move between JLens and Python.
 *
 * <p>The path costs {@code r (in + out)} multiply-adds per token and layer plus two small matmuls' overhead (about
 * 10-20% of a forward pass measured on a 4-layer d_model 768 model with r = 8 on a shared 2-core machine);
 * {@link #merge} removes it. {@link HookedTransformer#save} writes the weights the parameters
 * hold: the base weights, or the merged ones.
 *
 * <pre>{@code
 * Lora lora = Lora.attach(model, LoraConfig.of(8, 16, "c_attn", "c_proj"));
 * lora.trainer(TrainConfig.builder().steps(200).lr(1e-3).build(), source).train();   // only A and B change
 * lora.save(Path.of("my-adapter"));                  // adapter_config.json + adapter_model.safetensors
 * Lora again = Lora.load(otherModel, Path.of("my-adapter"));
 * again.merge();                                     // W += scale B A in place; unmerge() restores W bit for bit
 * }</pre>
 */
public final class Lora implements WeightDelta, AutoCloseable {
    /** PEFT's file names. */
    public static final String CONFIG_FILE = "adapter_config.json", WEIGHTS_FILE = "adapter_model.safetensors";
    /** PEFT's prefix of tensor names: {@code PeftModel.base_model} (LoraModel) {@code .model} (the transformer). */
    public static final String PREFIX = "base_model.model.";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** One adapted layer: where its weight lives and its two factors. */
    private record Layer(LinearModule module, NDArray a, NDArray b) {}

    private final HookedTransformer model;
    private final LoraConfig config;
    private final NDManager manager;
    private final List<Layer> layers;
    private final NDArray scale;
    private final Map<String, NDArray> originals = new LinkedHashMap<>();   // the base weights while merged
    private boolean attached = true;

    private Lora(HookedTransformer model, LoraConfig config, NDManager manager, List<Layer> layers) {
        this.model = model;
        this.config = config;
        this.manager = manager;
        this.layers = layers;
        this.scale = Tensors.scalar(manager, (float) config.scaling());
        model.addWeightDelta(this);
    }

    // ------------------------------------------------------------------ making and loading

    /**
     * A fresh adapter on every linear layer of {@code model} that {@code config} targets, attached: {@code A} is
     * Kaiming-uniform with {@code a = sqrt(5)} (uniform in {@code ±1/sqrt(in)}, PEFT's default), seeded by the
     * config's seed and the layer's name, and {@code B} is zero, so the model is unchanged until trained.
     */
    public static Lora attach(HookedTransformer model, LoraConfig config) {
        if (config.dropout() != 0) {
            throw new IllegalArgumentException("JLens trains LoRA without dropout: lora_dropout must be 0, got "
                    + config.dropout());
        }
        List<LinearModule> targets = targets(model, config);
        NDManager m = model.manager().newSubManager();
        try {
            List<Layer> layers = new ArrayList<>();
            for (LinearModule t : targets) {
                NDArray a = kaimingUniform(m, config.seed(), t.module(), config.r(), t.inFeatures());
                NDArray b = m.zeros(new Shape(t.outFeatures(), config.r()), DataType.FLOAT32);
                layers.add(new Layer(t, a, b));
            }
            return new Lora(model, config, m, layers);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /**
     * Loads a PEFT LoRA adapter directory ({@code adapter_config.json}, {@code adapter_model.safetensors}) onto
     * {@code model}, attached. Fails naming both sides on a missing file, a target that matches no layer of the
     * model, a tensor of a layer the model does not have, or a rank or shape that does not fit the model's layer.
     */
    public static Lora load(HookedTransformer model, Path dir) {
        Path cfgFile = dir.resolve(CONFIG_FILE), weights = dir.resolve(WEIGHTS_FILE);
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException("adapter directory " + dir + " does not exist");
        for (Path f : List.of(cfgFile, weights)) {
            if (!Files.isRegularFile(f)) {
                throw new IllegalArgumentException("adapter directory " + dir + " has no " + f.getFileName()
                        + " (a PEFT LoRA adapter has " + CONFIG_FILE + " and " + WEIGHTS_FILE + ")");
            }
        }
        LoraConfig config = readConfig(cfgFile, model);
        List<LinearModule> targets = targets(model, config);
        Map<String, LinearModule> byModule = new LinkedHashMap<>();
        for (LinearModule t : targets) byModule.put(t.module(), t);
        NDManager m = model.manager().newSubManager();
        try (Safetensors st = Safetensors.open(weights)) {
            Set<String> expected = new LinkedHashSet<>();
            for (LinearModule t : targets) {
                expected.add(tensorName(t, "lora_A"));
                expected.add(tensorName(t, "lora_B"));
            }
            Set<String> modelModules = new LinkedHashSet<>();
            for (LinearModule l : model.linearModules()) modelModules.add(l.module());
            for (String name : st.names()) {
                if (expected.contains(name)) continue;
                String module = moduleOf(name);
                if (module == null) {
                    throw new IllegalArgumentException(weights + ": tensor '" + name + "' is not a LoRA factor named "
                            + "as PEFT names them (" + PREFIX + "MODULE.lora_A.weight / .lora_B.weight)");
                }
                if (!modelModules.contains(module)) {
                    throw new IllegalArgumentException(weights + ": tensor '" + name + "' adapts layer '" + module
                            + "', which model '" + model.name() + "' does not have; its nearest layers: "
                            + Names.nearest(module, modelModules, 3));
                }
                throw new IllegalArgumentException(weights + ": tensor '" + name + "' adapts layer '" + module
                        + "', which target_modules " + config.targetModules() + " in " + cfgFile.getFileName()
                        + " does not name");
            }
            List<Layer> layers = new ArrayList<>();
            for (LinearModule t : targets) {
                NDArray a = read(st, weights, tensorName(t, "lora_A"), config.r(), t.inFeatures(), t, true, m);
                NDArray b = read(st, weights, tensorName(t, "lora_B"), t.outFeatures(), config.r(), t, false, m);
                layers.add(new Layer(t, a, b));
            }
            return new Lora(model, config, m, layers);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private static NDArray read(Safetensors st, Path file, String name, long rows, long cols, LinearModule t,
                                boolean isA, NDManager m) {
        if (!st.contains(name)) {
            throw new IllegalArgumentException(file + " lacks '" + name + "' for layer '" + t.module()
                    + "', which the adapter's target_modules select in the model");
        }
        TensorInfo info = st.info(name);
        long[] got = info.shape();
        if (got.length != 2) {
            throw new IllegalArgumentException(file + ": '" + name + "' has shape " + new Shape(got) + ", not a matrix");
        }
        int rankAxis = isA ? 0 : 1;
        if (got[rankAxis] != (isA ? rows : cols)) {
            throw new IllegalArgumentException("rank mismatch: " + file + " holds '" + name + "' with shape "
                    + new Shape(got) + " (rank " + got[rankAxis] + ") but adapter_config.json says r = "
                    + (isA ? rows : cols));
        }
        if (got[0] != rows || got[1] != cols) {
            throw new IllegalArgumentException("shape mismatch: " + file + " holds '" + name + "' with shape "
                    + new Shape(got) + " but the model's layer '" + t.module() + "' (in_features " + t.inFeatures()
                    + ", out_features " + t.outFeatures() + ") needs " + new Shape(rows, cols));
        }
        return st.load(name, m);
    }

    /** The layer a PEFT tensor name adapts, or null if the name is not {@code PREFIX MODULE .lora_A|B.weight}. */
    private static String moduleOf(String tensor) {
        for (String suffix : List.of(".lora_A.weight", ".lora_B.weight")) {
            if (tensor.startsWith(PREFIX) && tensor.endsWith(suffix)) {
                return tensor.substring(PREFIX.length(), tensor.length() - suffix.length());
            }
        }
        return null;
    }

    private static LoraConfig readConfig(Path file, HookedTransformer model) {
        JsonNode c;
        try {
            c = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        String type = c.path("peft_type").asText("");
        if (!type.equals("LORA")) {
            throw new IllegalArgumentException(file + ": peft_type is '" + type + "'; only LORA adapters are supported");
        }
        for (String unsupported : List.of("use_dora", "use_rslora")) {
            if (c.path(unsupported).asBoolean(false)) {
                throw new IllegalArgumentException(file + ": " + unsupported + " is true; JLens loads plain LoRA only");
            }
        }
        for (String empty : List.of("rank_pattern", "alpha_pattern")) {
            if (c.path(empty).isObject() && !c.path(empty).isEmpty()) {
                throw new IllegalArgumentException(file + ": " + empty + " is set; JLens loads one rank and alpha for "
                        + "every layer");
            }
        }
        if (c.hasNonNull("layers_to_transform")) {
            throw new IllegalArgumentException(file + ": layers_to_transform is set; JLens adapts every layer that "
                    + "target_modules names");
        }
        if (c.hasNonNull("modules_to_save") && !c.path("modules_to_save").isEmpty()) {
            throw new IllegalArgumentException(file + ": modules_to_save is set; JLens loads LoRA factors only");
        }
        String bias = c.path("bias").asText("none");
        if (!bias.equals("none")) {
            throw new IllegalArgumentException(file + ": bias is '" + bias + "'; JLens loads adapters with bias \"none\"");
        }
        JsonNode targets = c.path("target_modules");
        List<String> names = new ArrayList<>();
        if (targets.isTextual()) {
            // PEFT: a string is a regular expression over full layer names (re.fullmatch); list the ones it selects
            java.util.regex.Pattern re = java.util.regex.Pattern.compile(targets.asText());
            for (LinearModule l : model.linearModules()) if (re.matcher(l.module()).matches()) names.add(l.module());
            if (names.isEmpty()) {
                throw new IllegalArgumentException(file + ": target_modules regex '" + targets.asText() + "' matches "
                        + "no linear layer of model '" + model.name() + "', e.g. "
                        + model.linearModules().get(0).module());
            }
        } else if (targets.isArray()) {
            targets.forEach(t -> names.add(t.asText()));
        } else {
            throw new IllegalArgumentException(file + ": target_modules must be a list of layer names or a regular "
                    + "expression, got " + targets);
        }
        if (!c.hasNonNull("r")) throw new IllegalArgumentException(file + " has no r (the adapter's rank)");
        return new LoraConfig(c.get("r").asInt(), c.path("lora_alpha").asDouble(8), names,
                c.path("lora_dropout").asDouble(0), 0);
    }

    /** The model's linear layers that {@code config} targets; a target that matches none throws. */
    private static List<LinearModule> targets(HookedTransformer model, LoraConfig config) {
        List<LinearModule> all = model.linearModules();
        List<LinearModule> out = new ArrayList<>();
        for (LinearModule l : all) if (config.targets(l.module())) out.add(l);
        Set<String> shortNames = new TreeSet<>();
        for (LinearModule l : all) shortNames.add(shortName(l.module()));
        for (String t : config.targetModules()) {
            boolean hit = all.stream().anyMatch(l -> l.module().equals(t) || l.module().endsWith("." + t));
            if (!hit) {
                throw new IllegalArgumentException("target module '" + t + "' matches no linear layer of model '"
                        + model.name() + "' (" + model.cfg().modelType() + "); its linear layers: " + shortNames
                        + " (nearest: " + Names.nearest(t, shortNames, 3) + ")");
            }
        }
        return out;
    }

    /** A layer's name after its block index ({@code transformer.h.3.attn.c_proj} → {@code attn.c_proj}). */
    static String shortName(String module) {
        String[] parts = module.split("\\.");
        for (int i = 0; i < parts.length - 1; i++) {
            if (!parts[i].isEmpty() && parts[i].chars().allMatch(Character::isDigit)) {
                return String.join(".", java.util.Arrays.copyOfRange(parts, i + 1, parts.length));
            }
        }
        return module;
    }

    private static String tensorName(LinearModule t, String factor) {
        return PREFIX + t.module() + "." + factor + ".weight";
    }

    /** Uniform in {@code ±1/sqrt(fanIn)}: torch's {@code kaiming_uniform_(a=sqrt(5))} bound for a {@code [r, in]} weight. */
    private static NDArray kaimingUniform(NDManager m, long seed, String stream, int rows, long cols) {
        double bound = 1.0 / Math.sqrt(cols);
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ stream.hashCode());
        long n = rows * cols;
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.toIntExact(n * 4)).order(ByteOrder.nativeOrder());
        for (long i = 0; i < n; i++) buf.putFloat((float) ((2 * rnd.nextDouble() - 1) * bound));
        buf.flip();
        NDArray borrowed = m.create(buf, new Shape(rows, cols), DataType.FLOAT32);
        return Tensors.owned(borrowed);   // engine-owned: it goes on autograd's tape when trained
    }

    // ------------------------------------------------------------------ the update

    /**
     * Per adapted parameter, the low-rank path {@code a = A}, {@code b = (alpha / r) B}; a fused parameter (Llama's
     * q/k/v, gate/up) gets its adapted layers' {@code A}s stacked and their {@code B}s placed in their rows and
     * columns of one block matrix, zero elsewhere.
     */
    @Override
    public Map<String, LowRank> deltas() {
        if (!attached || !originals.isEmpty()) return Map.of();
        Map<String, List<Layer>> byParam = new LinkedHashMap<>();
        for (Layer l : layers) byParam.computeIfAbsent(l.module().parameter(), k -> new ArrayList<>()).add(l);
        Map<String, LowRank> out = new LinkedHashMap<>();
        Map<String, NDArray> params = model.parameters();
        for (Map.Entry<String, List<Layer>> e : byParam.entrySet()) {
            List<Layer> ls = e.getValue();
            Layer first = ls.get(0);
            long rows = first.module().conv1d() ? first.module().outFeatures() : params.get(e.getKey()).getShape().get(0);
            if (ls.size() == 1 && first.module().outFeatures() == rows) {
                out.put(e.getKey(), new LowRank(first.a(), first.b().mul(scale)));
                continue;
            }
            List<Layer> sorted = new ArrayList<>(ls);
            sorted.sort((x, y) -> Long.compare(x.module().rowOffset(), y.module().rowOffset()));
            int r = config.r(), k = sorted.size() * r;
            NDManager m = first.a().getManager();
            NDList as = new NDList(), rowBlocks = new NDList();
            long at = 0;
            for (int i = 0; i < sorted.size(); i++) {
                Layer l = sorted.get(i);
                as.add(l.a());
                long gap = l.module().rowOffset() - at;
                if (gap > 0) rowBlocks.add(m.zeros(new Shape(gap, k), DataType.FLOAT32));
                long out0 = l.module().outFeatures();
                NDList cols = new NDList();
                if (i > 0) cols.add(m.zeros(new Shape(out0, (long) i * r), DataType.FLOAT32));
                cols.add(l.b().mul(scale));
                if (i < sorted.size() - 1) cols.add(m.zeros(new Shape(out0, (long) (sorted.size() - 1 - i) * r),
                        DataType.FLOAT32));
                rowBlocks.add(NDArrays.concat(cols, 1));
                at = l.module().rowOffset() + out0;
            }
            if (at < rows) rowBlocks.add(m.zeros(new Shape(rows - at, k), DataType.FLOAT32));
            out.put(e.getKey(), new LowRank(NDArrays.concat(as, 0), NDArrays.concat(rowBlocks, 0)));
        }
        return out;
    }

    /** {@code scale * (B @ A)} {@code [out, in]}, as PEFT's {@code get_delta_weight} before its transpose. */
    private NDArray torchDelta(Layer l) {
        return l.b().matMul(l.a()).mul(scale);
    }

    /**
     * The update of layer {@code module} as torch's {@code [out, in]} linear map, {@code (alpha / r) B A} (a copy
     * owned by the caller's scope): the ΔW to read for top singular directions. {@code module} is the full name or a
     * unique suffix of it.
     */
    public NDArray deltaWeight(String module) {
        return torchDelta(layer(module));
    }

    /**
     * The singular value decomposition of layer {@code module}'s update {@code ΔW = (alpha / r) B A} (torch's
     * {@code [out, in]} layout): at most {@code r} non-zero singular values, largest first, with their output
     * directions (columns of {@code U}, {@code out} long: for a layer that writes the residual stream, such as
     * {@code o_proj} or {@code down_proj}, directions in {@code d_model}) and input directions ({@code in} long). It
     * is computed from the factors (thin QR of {@code B} and {@code A^T}, then the SVD of an {@code r x r} matrix), so
     * it costs {@code O((out + in) r^2)} however wide the layer. {@code module} is a full name or a unique suffix.
     */
    public Svd svd(String module) {
        Layer l = layer(module);
        float[] bf, af;
        int out, in, r = config.r();
        try (NDScope s = new NDScope()) {
            bf = l.b().toFloatArray();                                  // [out, r]
            af = l.a().toFloatArray();                                  // [r, in]
            out = (int) l.b().getShape().get(0);
            in = (int) l.a().getShape().get(1);
        }
        double[][] b = new double[r][out], a = new double[r][in];   // columns of B and of A^T
        for (int i = 0; i < out; i++) for (int j = 0; j < r; j++) b[j][i] = bf[i * r + j];
        for (int j = 0; j < r; j++) for (int i = 0; i < in; i++) a[j][i] = af[j * in + i];
        double[][] rb = new double[r][r], ra = new double[r][r];
        double[][] qb = thinQr(b, rb), qa = thinQr(a, ra);
        // ΔW = s Qb Rb (Qa Ra)^T = Qb (s Rb Ra^T) Qa^T; the SVD of the small middle gives ΔW's
        double sc = config.scaling();
        double[][] mid = new double[r][r];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < r; j++) {
                double v = 0;
                for (int k = 0; k < r; k++) v += rb[i][k] * ra[j][k];
                mid[i][j] = sc * v;
            }
        }
        org.apache.commons.math3.linear.SingularValueDecomposition svd =
                new org.apache.commons.math3.linear.SingularValueDecomposition(
                        new org.apache.commons.math3.linear.Array2DRowRealMatrix(mid, false));
        double[] sv = svd.getSingularValues();                        // descending
        double[][] u = svd.getU().getData(), v = svd.getV().getData();
        double[][] left = new double[r][out], right = new double[r][in];
        for (int c = 0; c < r; c++) {
            for (int k = 0; k < r; k++) {
                for (int i = 0; i < out; i++) left[c][i] += qb[k][i] * u[k][c];
                for (int i = 0; i < in; i++) right[c][i] += qa[k][i] * v[k][c];
            }
        }
        return new Svd(l.module().module(), sv, left, right);
    }

    /**
     * A layer's update by singular value decomposition: {@code values} largest first, {@code left[i]} the output
     * direction and {@code right[i]} the input direction of value {@code i} (unit vectors, zero where the value is).
     */
    public record Svd(String module, double[] values, double[][] left, double[][] right) {
        /** The share of {@code ΔW}'s squared Frobenius norm in each singular value. */
        public double[] energy() {
            double total = 0;
            for (double x : values) total += x * x;
            double[] e = new double[values.length];
            for (int i = 0; i < e.length; i++) e[i] = total == 0 ? 0 : values[i] * values[i] / total;
            return e;
        }

        /** |cosine| of {@code vector} with each output direction (sign-free: a singular vector's sign is arbitrary). */
        public double[] outputCosines(float[] vector) {
            if (vector.length != left[0].length) {
                throw new IllegalArgumentException(module + " writes vectors of " + left[0].length + " but the vector has "
                        + vector.length + " entries");
            }
            double n = 0;
            for (float x : vector) n += (double) x * x;
            double[] c = new double[values.length];
            for (int i = 0; i < c.length; i++) {
                double d = 0;
                for (int j = 0; j < vector.length; j++) d += left[i][j] * vector[j];
                c[i] = n == 0 || values[i] == 0 ? 0 : Math.abs(d) / Math.sqrt(n);
            }
            return c;
        }

        /** One row per singular value: index, value, share of the squared norm. */
        public tech.tablesaw.api.Table toTable() {
            tech.tablesaw.api.IntColumn idx = tech.tablesaw.api.IntColumn.create("index");
            tech.tablesaw.api.DoubleColumn val = tech.tablesaw.api.DoubleColumn.create("singular_value"),
                    en = tech.tablesaw.api.DoubleColumn.create("energy");
            double[] e = energy();
            for (int i = 0; i < values.length; i++) {
                idx.append(i);
                val.append(values[i]);
                en.append(e[i]);
            }
            return tech.tablesaw.api.Table.create("singular values of the LoRA update of " + module, idx, val, en);
        }
    }

    /**
     * Modified Gram-Schmidt, twice, on the columns {@code cols[j]}: returns orthonormal columns {@code Q} and fills
     * the upper-triangular {@code r} with {@code cols = Q r}. A column in the span of earlier ones gets a zero
     * {@code Q} column and a zero diagonal.
     */
    private static double[][] thinQr(double[][] cols, double[][] r) {
        int k = cols.length, n = cols[0].length;
        double[][] q = new double[k][];
        for (int j = 0; j < k; j++) {
            double[] v = cols[j].clone();
            double before = 0;
            for (double x : v) before += x * x;
            for (int pass = 0; pass < 2; pass++) {
                for (int i = 0; i < j; i++) {
                    double d = 0;
                    for (int t = 0; t < n; t++) d += q[i][t] * v[t];
                    r[i][j] += d;
                    for (int t = 0; t < n; t++) v[t] -= d * q[i][t];
                }
            }
            double norm = 0;
            for (double x : v) norm += x * x;
            norm = Math.sqrt(norm);
            if (norm <= 1e-12 * Math.sqrt(before) || norm == 0) {
                q[j] = new double[n];
                r[j][j] = 0;
            } else {
                for (int t = 0; t < n; t++) v[t] /= norm;
                q[j] = v;
                r[j][j] = norm;
            }
        }
        return q;
    }

    private Layer layer(String module) {
        Layer hit = null;
        for (Layer l : layers) {
            if (l.module().module().equals(module) || l.module().module().endsWith("." + module)) {
                if (hit != null && !l.module().module().equals(module)) {
                    throw new IllegalArgumentException("'" + module + "' names several adapted layers (" 
                            + hit.module().module() + ", " + l.module().module() + ", ...): give the full name");
                }
                hit = l;
                if (l.module().module().equals(module)) break;
            }
        }
        if (hit == null) {
            throw new IllegalArgumentException("no adapted layer '" + module + "'; adapted: nearest "
                    + Names.nearest(module, modules(), 5) + " (" + layers.size() + " in all)");
        }
        return hit;
    }

    // ------------------------------------------------------------------ merge

    /**
     * Adds {@code scale B A} into the model's weights in place (forward passes then read the merged weights with no
     * per-pass cost); the base weights are kept so that {@link #unmerge} restores them bit for bit.
     */
    public void merge() {
        requireAttached();
        if (!originals.isEmpty()) throw new IllegalStateException("this adapter is already merged");
        Map<String, NDArray> params = model.parameters();
        Map<String, Boolean> conv1d = new LinkedHashMap<>();
        for (Layer l : layers) conv1d.put(l.module().parameter(), l.module().conv1d());
        try (NDScope scope = new NDScope()) {
            Map<String, NDArray> d = new LinkedHashMap<>();
            deltas().forEach((name, lr) -> d.put(name, conv1d.get(name) ? lr.delta().transpose() : lr.delta()));
            for (Map.Entry<String, NDArray> e : d.entrySet()) {
                NDArray w = params.get(e.getKey());
                NDArray copy = w.duplicate();
                NDScope.unregister(copy);
                copy.attach(manager);
                originals.put(e.getKey(), copy);
            }
            for (Map.Entry<String, NDArray> e : d.entrySet()) params.get(e.getKey()).addi(e.getValue());
        }
    }

    /** Puts back the weights {@link #merge} saw, bit for bit (the adapter then applies per forward pass again). */
    public void unmerge() {
        requireAttached();
        if (originals.isEmpty()) throw new IllegalStateException("this adapter is not merged");
        Map<String, NDArray> params = model.parameters();
        for (Map.Entry<String, NDArray> e : originals.entrySet()) {
            params.get(e.getKey()).set(new NDIndex(":"), e.getValue());
            e.getValue().close();
        }
        originals.clear();
    }

    /** True between {@link #merge} and {@link #unmerge}. */
    public boolean merged() {
        return !originals.isEmpty();
    }

    // ------------------------------------------------------------------ training

    /**
     * A {@link Trainer} of this adapter's {@code A} and {@code B} only (the model's weights stay frozen), on the
     * model's next-token loss.
     */
    public Trainer trainer(TrainConfig config, BatchSource source) {
        requireAttached();
        if (merged()) throw new IllegalStateException("unmerge the adapter before training it");
        return new Trainer(model, parameters(), config, source);
    }

    // ------------------------------------------------------------------ saving

    /**
     * Writes PEFT's {@code adapter_config.json} and {@code adapter_model.safetensors} into {@code dir} (created if
     * missing), with {@code base_model_name_or_path} the model's name.
     */
    public void save(Path dir) {
        save(dir, model.name());
    }

    /** As {@link #save(Path)} with an explicit {@code base_model_name_or_path}. */
    public void save(Path dir, String baseModelNameOrPath) {
        ObjectNode c = JSON.createObjectNode();
        c.put("peft_type", "LORA");
        c.put("task_type", "CAUSAL_LM");
        c.put("base_model_name_or_path", baseModelNameOrPath);
        c.put("r", config.r());
        if (config.alpha() == Math.rint(config.alpha())) c.put("lora_alpha", (long) config.alpha());
        else c.put("lora_alpha", config.alpha());
        var targets = c.putArray("target_modules");
        config.targetModules().forEach(targets::add);
        c.put("lora_dropout", config.dropout());
        c.put("fan_in_fan_out", layers.stream().anyMatch(l -> l.module().conv1d()));
        c.put("bias", "none");
        c.put("use_rslora", false);
        c.put("use_dora", false);
        c.put("init_lora_weights", true);
        c.put("inference_mode", true);
        c.putNull("modules_to_save");
        c.putNull("layers_to_transform");
        try {
            Files.createDirectories(dir);
            JSON.writeValue(dir.resolve(CONFIG_FILE).toFile(), c);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + dir.resolve(CONFIG_FILE), e);
        }
        Safetensors.write(dir.resolve(WEIGHTS_FILE), parameters(), Map.of("format", "pt"), DType.F32);
    }

    // ------------------------------------------------------------------ accessors

    /** {@code A} and {@code B} of every adapted layer under PEFT's tensor names (the live arrays). */
    public Map<String, NDArray> parameters() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Layer l : layers) {
            out.put(tensorName(l.module(), "lora_A"), l.a());
            out.put(tensorName(l.module(), "lora_B"), l.b());
        }
        return Collections.unmodifiableMap(out);
    }

    /** The adapted layers' names, in forward order. */
    public List<String> modules() {
        return layers.stream().map(l -> l.module().module()).toList();
    }

    /** The adapter's settings. */
    public LoraConfig config() {
        return config;
    }

    /** The model it adapts. */
    public HookedTransformer model() {
        return model;
    }

    /** Number of trainable scalars ({@code r (in + out)} per layer). */
    public long parameterCount() {
        return layers.stream().mapToLong(l -> l.a().size() + l.b().size()).sum();
    }

    /** True until {@link #detach} or {@link #close}. */
    public boolean attached() {
        return attached;
    }

    /** Removes the adapter from the model (unmerging first if merged); its tensors stay readable until closed. */
    public void detach() {
        if (!attached) return;
        if (merged()) unmerge();
        model.removeWeightDelta(this);
        attached = false;
    }

    /** Detaches and frees the adapter's tensors. */
    @Override
    public void close() {
        detach();
        manager.close();
    }

    private void requireAttached() {
        if (!attached) throw new IllegalStateException("this adapter was detached from its model");
    }

    @Override
    public String toString() {
        return "Lora(r " + config.r() + ", alpha " + config.alpha() + ", " + layers.size() + " layers "
                + new TreeSet<>(layers.stream().map(l -> shortName(l.module().module())).toList()) + ", "
                + parameterCount() + " parameters" + (merged() ? ", merged" : "") + (attached ? "" : ", detached")
                + ")";
    }
}
