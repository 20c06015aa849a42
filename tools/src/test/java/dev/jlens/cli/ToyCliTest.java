package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.cli.LabTest.Run;
import dev.jlens.toy.ToyModel;
import dev.jlens.toy.ToySuperposition;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Arrays;

import static dev.jlens.cli.LabTest.lab;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lab toy superposition}: the contract's one JSON line, the known limits, and errors that name the flag. */
class ToyCliTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode line(Run r) throws IOException {
        assertEquals(0, r.code(), r.err());
        String out = r.out();
        assertTrue(out.endsWith("\n"), out);
        assertEquals(1, out.split("\n", -1).length - 1, "exactly one line on stdout: " + out);
        return JSON.readTree(out);
    }

    private static double[][] w(JsonNode json, int rows, int cols) {
        JsonNode w = json.get("W");
        assertEquals(rows, w.size(), "W rows: " + w);
        double[][] out = new double[rows][cols];
        for (int d = 0; d < rows; d++) {
            assertEquals(cols, w.get(d).size(), "W row " + d);
            for (int i = 0; i < cols; i++) out[d][i] = w.get(d).get(i).asDouble();
        }
        return out;
    }

    @Test
    void printsTheLowestLossInstanceAsOneJsonLine() throws IOException {
        Run r = lab("toy", "superposition", "--features", "5", "--dims", "2", "--sparsity", "0.95",
                "--importance-decay", "0.9", "--instances", "3", "--seed", "3", "--steps", "1500", "--lr", "1e-2");
        JsonNode json = line(r);
        assertEquals(3, json.size(), json.toString());
        double[][] w = w(json, 2, 5);
        assertEquals(5, json.get("b").size());
        double loss = json.get("loss").asDouble();
        assertTrue(Double.isFinite(loss) && loss >= 0, "loss " + loss);
        double[] norms = new double[5];
        int represented = 0;
        for (int i = 0; i < 5; i++) {
            norms[i] = Math.hypot(w[0][i], w[1][i]);
            if (norms[i] > 0.5) represented++;
        }
        assertTrue(represented > 2, "sparse features in superposition: norms " + Arrays.toString(norms));

        // the line is the library's lowest-loss instance for the same setting and seed
        var cfg = ToySuperposition.Config.of(5, 2, 0.95, 0.9);
        var training = ToySuperposition.Training.defaults().withSteps(1500).withLr(1e-2).withSeed(3);
        ToyModel best = ToySuperposition.train(training, Arrays.asList(ToySuperposition.repeat(cfg, 3)),
                ProgressSink.none()).best();
        assertEquals(best.loss(), loss, 1e-12);
        for (int d = 0; d < 2; d++) for (int i = 0; i < 5; i++) assertEquals(best.w()[d][i], w[d][i], 1e-12);
        assertFalse(r.err().isEmpty(), "progress and the summary go to stderr");
    }

    @Test
    void theDefaultsReachTheAntipodalPair() throws IOException {
        long t0 = System.nanoTime();
        JsonNode json = line(lab("toy", "superposition", "--features", "2", "--dims", "1", "--sparsity", "0.95",
                "--importance-decay", "1", "--instances", "3", "--seed", "0"));
        double seconds = (System.nanoTime() - t0) / 1e9;
        double[][] w = w(json, 1, 2);
        assertEquals(1, Math.abs(w[0][0]), 0.05, Arrays.toString(w[0]));
        assertEquals(-w[0][0], w[0][1], 0.05, "antipodal: " + Arrays.toString(w[0]));
        assertTrue(seconds < 60, "took " + seconds + " s");
    }

    @Test
    void badFlagsExitWith2AndNameTheFlag() {
        String[] ok = {"--features", "5", "--dims", "2", "--sparsity", "0.5", "--importance-decay", "0.9"};
        assertUsage(lab("toy"), "valid: superposition");
        assertUsage(lab("toy", "superpositon"), "unknown toy model 'superpositon'", "valid: superposition");
        assertUsage(lab("toy", "superposition", "--dims", "2", "--sparsity", "0.5", "--importance-decay", "0.9"),
                "--features is required");
        assertUsage(lab("toy", "superposition", "--features", "5", "--dims", "2", "--importance-decay", "0.9"),
                "--sparsity is required");
        assertUsage(lab(concat(ok, "--sparsty", "0.5")), "unknown option --sparsty", "--sparsity <value>",
                "--importance-decay <value>", "--instances <value>", "--seed <value>");
        assertUsage(lab("toy", "superposition", "--features", "5", "--dims", "2", "--sparsity", "1",
                "--importance-decay", "0.9"), "--sparsity", "[0, 1)");
        assertUsage(lab("toy", "superposition", "--features", "five", "--dims", "2", "--sparsity", "0.5",
                "--importance-decay", "0.9"), "--features must be an integer");
        assertUsage(lab("toy", "superposition", "--features", "5", "--dims", "2", "--sparsity", "0.5",
                "--importance-decay", "0"), "--importance-decay must be finite and > 0");
        assertUsage(lab(concat(ok, "--instances", "0")), "--instances must be in");
        assertUsage(lab(concat(ok, "--correlation", "weird")), "independent, correlated or anticorrelated");
        assertUsage(lab(concat(ok, "--correlation", "correlated")), "even");
    }

    private static String[] concat(String[] flags, String... more) {
        String[] out = new String[2 + flags.length + more.length];
        out[0] = "toy";
        out[1] = "superposition";
        System.arraycopy(flags, 0, out, 2, flags.length);
        System.arraycopy(more, 0, out, 2 + flags.length, more.length);
        return out;
    }

    private static void assertUsage(Run r, String... expected) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err());
        for (String e : expected) assertTrue(r.err().contains(e), "stderr should mention '" + e + "': " + r.err());
        assertTrue(r.out().isEmpty(), "nothing on stdout: " + r.out());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
    }
}
