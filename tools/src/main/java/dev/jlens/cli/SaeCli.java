package dev.jlens.cli;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import dev.jlens.io.TensorInfo;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeLens;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.train.TerminalProgress;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code lab sae train}: trains a sparse dictionary on the rows of a {@code [rows, d_in]} F32 tensor in a safetensors
 * file and writes it in SAELens's layout ({@code cfg.json}, {@code sae_weights.safetensors}) to {@code --out}. The
 * flags are a contract read by scripts outside the project:
 * <pre>
 * lab sae train --activations FILE.safetensors --tensor NAME --arch topk|batchtopk|jumprelu|relu|matryoshka
 *     --latents N [--k K] [--l1 C] --steps S --batch B --lr LR --seed X --out DIR
 * </pre>
 * {@code --k} is required by (and only accepted for) topk, batchtopk and matryoshka; {@code --l1} is the sparsity
 * coefficient of relu (L1, default {@value #DEFAULT_L1_RELU}) and jumprelu (L0, default
 * {@value #DEFAULT_L0_JUMPRELU}) and refused for the others. Matryoshka nests its latents in groups whose prefixes are
 * N/8, N/4, N/2 and N. Rows are visited in a seeded order, every row once per epoch; the input is scaled to unit mean
 * squared norm while training and the scale folded into the saved weights. Progress goes to standard error and one
 * JSON line with the final step's measures to standard output.
 */
final class SaeCli {
    static final double DEFAULT_L1_RELU = 0.1;
    static final double DEFAULT_L0_JUMPRELU = 0.05;
    static final List<String> ARCHS = List.of("topk", "batchtopk", "jumprelu", "relu", "matryoshka");
    private static final Set<String> NEEDS_K = Set.of("topk", "batchtopk", "matryoshka");

    private SaeCli() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        if (argv.length == 0 || !argv[0].equals("train")) {
            throw new Args.UsageException("sae: " + (argv.length == 0 ? "name a subcommand" : "unknown subcommand '"
                    + argv[0] + "'") + "; valid: train (lab sae train --activations FILE.safetensors --tensor NAME "
                    + "--arch " + String.join("|", ARCHS) + " --latents N [--k K] [--l1 C] --steps S --batch B "
                    + "--lr LR --seed X --out DIR)");
        }
        Args a = Args.parse("sae train", Arrays.copyOfRange(argv, 1, argv.length),
                Set.of("activations", "tensor", "arch", "latents", "k", "l1", "steps", "batch", "lr", "seed", "out"),
                Set.of());
        if (!a.positional().isEmpty()) throw a.usage("unexpected argument '" + a.positional().get(0) + "'");
        // every required flag is checked before any file is read, so one run names all that is missing
        List<String> missing = new ArrayList<>();
        for (String f : List.of("activations", "tensor", "arch", "latents", "steps", "batch", "lr", "seed", "out")) {
            if (!a.has(f)) missing.add("--" + f);
        }
        if (!missing.isEmpty()) {
            throw a.usage("missing required flag" + (missing.size() == 1 ? " " : "s ") + String.join(", ", missing));
        }
        String arch = a.require("arch").trim().toLowerCase(Locale.ROOT);
        if (!ARCHS.contains(arch)) {
            throw a.usage("unknown --arch '" + a.require("arch") + "'; valid architectures: " + String.join(", ", ARCHS));
        }
        int latents = a.requireInt("latents", 1, 1 << 24);
        int steps = a.requireInt("steps", 1, 100_000_000);
        int batch = a.requireInt("batch", 1, 1 << 20);
        double lr = a.doubleOpt("lr", Double.NaN, Double.MIN_VALUE, 10);
        long seed = a.longOpt("seed", 0);
        Path outDir = Path.of(a.require("out"));
        if (NEEDS_K.contains(arch) && !a.has("k")) {
            throw a.usage("--arch " + arch + " needs --k (active latents per token)");
        }
        if (!NEEDS_K.contains(arch) && a.has("k")) {
            throw a.usage("--k applies to topk, batchtopk and matryoshka, not " + arch + " (use --l1 for its sparsity)");
        }
        if (NEEDS_K.contains(arch) && a.has("l1")) {
            throw a.usage("--l1 applies to relu and jumprelu, not " + arch + " (its sparsity is --k)");
        }
        int k = NEEDS_K.contains(arch) ? a.requireInt("k", 1, latents) : 0;
        SaeConfig.Kind kind = switch (arch) {
            case "topk" -> new SaeConfig.TopK(k);
            case "batchtopk" -> new SaeConfig.BatchTopK(k);
            case "matryoshka" -> new SaeConfig.Matryoshka(k, matryoshkaGroups(latents));
            case "relu" -> new SaeConfig.Relu(a.doubleOpt("l1", DEFAULT_L1_RELU, 0, Double.MAX_VALUE));
            case "jumprelu" -> new SaeConfig.JumpRelu(a.doubleOpt("l1", DEFAULT_L0_JUMPRELU, 0, Double.MAX_VALUE));
            default -> throw new IllegalStateException(arch);
        };

        Path file = Path.of(a.require("activations"));
        if (!Files.isRegularFile(file)) throw a.usage("--activations " + file + ": no such file");
        String tensor = a.require("tensor");
        float[] rows;
        int dIn;
        try (Safetensors st = Safetensors.open(file)) {
            if (!st.contains(tensor)) {
                throw a.usage("--tensor '" + tensor + "' is not in " + file + "; tensors present: "
                        + String.join(", ", st.names().stream().sorted().toList()));
            }
            TensorInfo info = st.info(tensor);
            if (info.dtype() != DType.F32) {
                throw a.usage("tensor '" + tensor + "' is " + info.dtype() + "; lab sae train reads F32 activations "
                        + "[rows, d_in] (convert it first, e.g. x.float() in PyTorch)");
            }
            if (info.rank() != 2 || info.dim(0) < 1 || info.dim(1) < 1) {
                throw a.usage("tensor '" + tensor + "' has shape " + Arrays.toString(info.shape()) + "; lab sae train "
                        + "needs a 2-d [rows, d_in] tensor (flatten batch and position first)");
            }
            if (info.numel() > Integer.MAX_VALUE - 8) {
                throw a.usage("tensor '" + tensor + "' has " + info.numel() + " values, more than one Java array holds");
            }
            dIn = (int) info.dim(1);
            rows = st.loadFloats(tensor);
        }
        SaeConfig cfg;
        try {
            cfg = SaeConfig.of(dIn, latents, kind);
        } catch (IllegalArgumentException e) {
            throw a.usage(e.getMessage());
        }
        SaeTrainConfig train = SaeTrainConfig.builder().steps(steps).batchSize(batch).lr(lr).seed(seed)
                .logEvery(Math.max(1, steps / 100)).build();
        RowSource source = RowSource.of(rows, dIn, seed);
        long t0 = System.nanoTime();
        SaeTrainer.StepStats last;
        try (SparseCoder sae = SparseCoder.create(cfg, seed);
             SaeTrainer trainer = SaeTrainer.of(source, train).add("sae", sae)) {
            trainer.progress(new TerminalProgress(err));
            last = trainer.train().last("sae");
            SaeLens.save(sae, outDir);
        }
        err.printf(Locale.ROOT, "sae train: %s %d latents on %d rows x %d in %.1f s; wrote %s%n", arch, latents,
                source.rows(), dIn, (System.nanoTime() - t0) / 1e9, outDir);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("out", outDir.toString());
        json.put("architecture", cfg.kind().architecture());
        json.put("d_in", dIn);
        json.put("d_sae", latents);
        json.put("rows", source.rows());
        json.put("steps", last.step());
        json.put("mse", last.mse());
        json.put("l0", last.l0());
        json.put("fvu", last.fvu());
        json.put("dead_fraction", last.deadFraction());
        try {
            out.println(new ObjectMapper().configure(JsonGenerator.Feature.AUTO_CLOSE_TARGET, false)
                    .writeValueAsString(json));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Lab.OK;
    }

    /** Nested group sizes whose prefixes are N/8, N/4, N/2 and N (empty groups of a small N left out). */
    static List<Integer> matryoshkaGroups(int latents) {
        List<Integer> sizes = new ArrayList<>();
        int prev = 0;
        for (int prefix : new int[] {latents / 8, latents / 4, latents / 2, latents}) {
            if (prefix > prev) {
                sizes.add(prefix - prev);
                prev = prefix;
            }
        }
        return sizes;
    }
}
