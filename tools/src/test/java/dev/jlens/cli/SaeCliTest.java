package dev.jlens.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.cli.LabTest.Run;
import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;
import dev.jlens.sae.JumpReluSae;
import dev.jlens.sae.SaeLens;
import dev.jlens.sae.SparseCoder;
import dev.jlens.sae.SyntheticActivations;
import dev.jlens.sae.TopKSae;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.jlens.cli.LabTest.lab;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code lab sae train}: trains on a tensor from a safetensors file written here, writes SAELens's layout that loads
 * back and recovers the planted dictionary; bad input gets an error that names the problem and the valid options.
 */
class SaeCliTest {
    private static final int D = 16, FEATURES = 24, ROWS = 8192;
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static Path acts;
    static SyntheticActivations truth;

    @BeforeAll
    static void writeActivations() {
        truth = new SyntheticActivations(FEATURES, D, 0.02, 0.08, 5);
        acts = dir.resolve("acts.safetensors");
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = truth.batch(0, ROWS, m);
            NDArray cube = m.zeros(new Shape(2, 3, 4));
            Safetensors.write(acts, Map.of("resid", x, "cube", cube), Map.of(), DType.F32);
            Safetensors.write(dir.resolve("f16.safetensors"), Map.of("resid", x), Map.of(), DType.F16);
        }
    }

    private static String[] train(String... extra) {
        List<String> a = new java.util.ArrayList<>(List.of("sae", "train", "--activations", acts.toString(),
                "--tensor", "resid", "--steps", "1500", "--batch", "256", "--lr", "3e-3", "--seed", "1"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @Test
    void trainsTopKAndWritesSaeLensLayout() throws IOException {
        Path out = dir.resolve("topk");
        Run r = lab(train("--arch", "topk", "--latents", "48", "--k", "4", "--out", out.toString()));
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(out.resolve(SaeLens.CFG_FILE)));
        assertTrue(Files.isRegularFile(out.resolve(SaeLens.WEIGHTS_FILE)));
        JsonNode cfg = JSON.readTree(out.resolve(SaeLens.CFG_FILE).toFile());
        assertEquals("topk", cfg.get("architecture").asText());
        assertEquals(D, cfg.get("d_in").asInt());
        assertEquals(48, cfg.get("d_sae").asInt());
        assertEquals(4, cfg.get("k").asInt());
        JsonNode line = JSON.readTree(r.out());
        assertEquals(1500, line.get("steps").asInt());
        assertTrue(line.get("fvu").asDouble() < 0.2, r.out());
        try (SparseCoder sae = SaeLens.load(out)) {
            assertInstanceOf(TopKSae.class, sae);
            assertEquals(48, sae.cfg().dSae());
            double cos = truth.meanMaxCosine(sae);
            assertTrue(cos > 0.9, "the trained dictionary recovers the planted directions: mean max cosine " + cos);
            // raw units in the file: reconstructions of raw rows are close to them
            try (NDManager m = NDManager.newBaseManager()) {
                NDArray x = truth.batch(99, 512, m);
                double fvu = x.sub(sae.reconstruct(x)).pow(2).sum().getFloat()
                        / x.sub(x.mean(new int[] {0})).pow(2).sum().getFloat();
                assertTrue(fvu < 0.2, "fvu of the loaded dictionary " + fvu);
            }
        }
    }

    @Test
    void everyArchitectureWritesALoadableDictionary() {
        for (String[] arch : List.of(new String[] {"relu", "--l1", "0.05"}, new String[] {"jumprelu"},
                new String[] {"batchtopk", "--k", "4"}, new String[] {"matryoshka", "--k", "4"})) {
            Path out = dir.resolve("arch-" + arch[0]);
            String[] extra = new String[arch.length + 5];
            extra[0] = "--arch";
            System.arraycopy(arch, 0, extra, 1, arch.length);
            System.arraycopy(new String[] {"--latents", "32", "--out", out.toString()}, 0, extra, arch.length + 1, 4);
            Run r = lab(withSteps(train(extra), "200"));
            assertEquals(0, r.code(), arch[0] + ": " + r.err());
            try (SparseCoder sae = SaeLens.load(out)) {
                assertEquals(32, sae.cfg().dSae(), arch[0]);
                assertEquals(D, sae.cfg().dIn(), arch[0]);
                if (!arch[0].equals("relu")) assertInstanceOf(JumpReluSae.class, sae, arch[0] + " infers with a threshold");
            }
        }
    }

    private static String[] withSteps(String[] args, String steps) {
        for (int i = 0; i < args.length - 1; i++) if (args[i].equals("--steps")) args[i + 1] = steps;
        return args;
    }

    @Test
    void badInputNamesTheProblemAndTheValidOptions() {
        String out = dir.resolve("never").toString();
        assertUsage(lab(train("--arch", "gated", "--latents", "8", "--out", out)),
                "unknown --arch 'gated'", "topk, batchtopk, jumprelu, relu, matryoshka");
        assertUsage(lab("sae", "train", "--activations", acts.toString(), "--tensor", "resid", "--arch", "relu"),
                "missing required flags --latents, --steps, --batch, --lr, --seed, --out");
        assertUsage(lab(train("--arch", "topk", "--latents", "8", "--out", out)), "--arch topk needs --k");
        assertUsage(lab(train("--arch", "relu", "--latents", "8", "--k", "2", "--out", out)),
                "--k applies to topk, batchtopk and matryoshka");
        assertUsage(lab(train("--arch", "topk", "--latents", "8", "--k", "2", "--l1", "1", "--out", out)),
                "--l1 applies to relu and jumprelu");
        String[] wrongTensor = train("--arch", "relu", "--latents", "8", "--out", out);
        wrongTensor[5] = "resid_post";
        assertUsage(lab(wrongTensor), "--tensor 'resid_post' is not in", "tensors present: cube, resid");
        String[] cube = train("--arch", "relu", "--latents", "8", "--out", out);
        cube[5] = "cube";
        assertUsage(lab(cube), "shape [2, 3, 4]", "2-d [rows, d_in]");
        String[] f16 = train("--arch", "relu", "--latents", "8", "--out", out);
        f16[3] = dir.resolve("f16.safetensors").toString();
        assertUsage(lab(f16), "is F16", "F32");
        String[] missingFile = train("--arch", "relu", "--latents", "8", "--out", out);
        missingFile[3] = dir.resolve("nope.safetensors").toString();
        assertUsage(lab(missingFile), "no such file");
        assertUsage(lab("sae", "fit"), "unknown subcommand 'fit'", "valid: train");
        assertUsage(lab(train("--arch", "relu", "--latents", "8", "--out", out, "--layers", "3")),
                "unknown option --layers", "--activations <value>");
        assertFalse(Files.exists(Path.of(out)), "nothing written on bad input");
    }

    private static void assertUsage(Run r, String... expected) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err());
        for (String e : expected) assertTrue(r.err().contains(e), "stderr should mention '" + e + "': " + r.err());
        assertTrue(r.out().isEmpty(), "nothing on stdout: " + r.out());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
    }
}
