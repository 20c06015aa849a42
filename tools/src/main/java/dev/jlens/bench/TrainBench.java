package dev.jlens.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.train.ProgressSink;
import dev.jlens.train.TrainConfig;
import dev.jlens.train.TrainResult;
import dev.jlens.train.Trainer;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Training throughput of {@link Trainer} against the same model and step in plain PyTorch eager mode
 * ({@code tools/bench/python/train_step.py}): same initial weights (saved here, loaded there), same batches, same loss,
 * clipping, AdamW groups and learning rate per step. Java and Python rounds alternate so that both see the same
 * load on a shared machine; the figures are medians over rounds. Prints JSON lines
 * {@code {"bench":"train","metric":...,"value":...,"unit":...,"baseline":...,"ratio":...}} (ratio = value / baseline)
 * on stdout, and a readable summary on stderr.
 *
 * <pre>
 *   java ... dev.jlens.bench.TrainBench [--d-model 128 --layers 4 --heads 4 --kv-heads 2 --d-mlp 384 --vocab 64
 *        --seq 128 --batch 16 --rounds 5 --steps-per-round 10 --warmup 3 --threads 1 --torch-threads 1
 *        --python /usr/bin/python3 --script tools/bench/python/train_step.py]
 * </pre>
 *
 * {@code --threads} sets {@code ai.djl.pytorch.num_threads} for the Java side; {@code --torch-threads} is the
 * baseline's {@code torch.set_num_threads} (its BLAS keeps its own default). The baseline needs a Python with
 * PyTorch (Debian: {@code apt-get install python3-torch libopenblas0-pthread}).
 */
public final class TrainBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TrainBench() {}

    /** Runs the benchmark; see the class comment for the arguments. */
    public static void main(String[] args) throws Exception {
        Map<String, String> a = parse(args);
        int dModel = intArg(a, "d-model", 128), layers = intArg(a, "layers", 4), heads = intArg(a, "heads", 4);
        int kvHeads = intArg(a, "kv-heads", 2), dMlp = intArg(a, "d-mlp", 384), vocab = intArg(a, "vocab", 64);
        int seq = intArg(a, "seq", 128), batch = intArg(a, "batch", 16);
        int rounds = intArg(a, "rounds", 5), perRound = intArg(a, "steps-per-round", 10), warmup = intArg(a, "warmup", 3);
        int optReps = intArg(a, "opt-reps", 10);
        int threads = intArg(a, "threads", 1), torchThreads = intArg(a, "torch-threads", 1);
        boolean foreach = Boolean.parseBoolean(a.getOrDefault("foreach", "false"));
        String python = a.getOrDefault("python", "/usr/bin/python3");
        Path script = Path.of(a.getOrDefault("script", "tools/bench/python/train_step.py"));
        long seed = Long.parseLong(a.getOrDefault("seed", "0"));
        if (!Files.isRegularFile(script)) {
            throw new IllegalArgumentException("baseline script " + script.toAbsolutePath() + " not found; run from the "
                    + "repository root or pass --script PATH");
        }
        // Must be set before the engine starts (the first NDArray).
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
        System.setProperty("ai.djl.offline", "true");

        int steps = warmup + rounds * perRound;
        ModelConfig mc = ModelConfig.llama(dModel, layers, heads, kvHeads, dMlp, vocab, seq);
        TrainConfig cfg = TrainConfig.builder().steps(steps).batchSize(batch).lr(1e-3).warmupSteps(Math.min(5, steps))
                .seed(seed).build();
        long[][][] data = copyTask(steps, batch, seq, vocab, seed);
        Path work = Files.createTempDirectory("jlens-trainbench");
        try (HookedTransformer model = HookedTransformer.random(mc, seed)) {
            model.save(work.resolve("init"));
            writeTokens(work.resolve("tokens.bin"), data);
            Path spec = work.resolve("spec.json");
            JSON.writeValue(spec.toFile(), spec(mc, cfg, model, work, steps, batch, seq, torchThreads, foreach));

            Process py = new ProcessBuilder(python, script.toString(), "--spec", spec.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            try (Trainer trainer = new Trainer(model, cfg, (s, step, n) -> Batch.of(data[step]))
                    .progress(ProgressSink.none());
                 BufferedReader pyOut = new BufferedReader(new InputStreamReader(py.getInputStream(), StandardCharsets.UTF_8));
                 OutputStream pyIn = py.getOutputStream()) {
                List<Double> pyLosses = new ArrayList<>();
                // warm-up: first calls allocate, JIT-compile and size caches on both sides
                trainer.trainUntil(warmup);
                pyLosses.addAll(losses(ask(pyIn, pyOut, "run " + warmup)));
                double[] javaTps = new double[rounds], pyTps = new double[rounds];
                long tokensPerRound = (long) perRound * batch * seq;
                for (int r = 0; r < rounds; r++) {
                    long t0 = System.nanoTime();
                    trainer.trainUntil(trainer.step() + perRound);
                    javaTps[r] = tokensPerRound / ((System.nanoTime() - t0) / 1e9);
                    JsonNode res = ask(pyIn, pyOut, "run " + perRound);
                    pyTps[r] = tokensPerRound / res.get("seconds").asDouble();
                    pyLosses.addAll(losses(res));
                }
                TrainResult result = trainer.result();
                double[] javaLosses = result.losses();
                double maxDiff = 0;
                for (int i = 0; i < steps; i++) maxDiff = Math.max(maxDiff, Math.abs(javaLosses[i] - pyLosses.get(i)));

                // optimizer step alone, on the gradients of the last step (zeroed on the Java side: same work),
                // alternating blocks as above
                model.parameters().values().forEach(p -> p.setRequiresGradient(true));
                double[] javaOpt = new double[rounds], pyOpt = new double[rounds];
                for (int r = 0; r < rounds; r++) {
                    long t0 = System.nanoTime();
                    for (int i = 0; i < optReps; i++) trainer.optimizer().step(1e-4, 1.0);
                    javaOpt[r] = (System.nanoTime() - t0) / 1e6 / optReps;
                    pyOpt[r] = ask(pyIn, pyOut, "opt " + optReps).get("seconds").asDouble() * 1e3 / optReps;
                }
                double javaOptMs = median(javaOpt), pyOptMs = median(pyOpt);
                pyIn.write("quit\n".getBytes(StandardCharsets.UTF_8));
                pyIn.flush();

                double jt = median(javaTps), pt = median(pyTps);
                double jMs = batch * seq / jt * 1e3, pMs = batch * seq / pt * 1e3;
                line("train_tokens_per_s", jt, "tokens/s", pt);
                line("train_step_ms", jMs, "ms", pMs);
                line("optimizer_step_ms", javaOptMs, "ms", pyOptMs);
                line("final_loss", javaLosses[steps - 1], "nats", pyLosses.get(steps - 1));
                line("loss_max_abs_diff", maxDiff, "nats", Double.NaN);
                System.err.printf(Locale.ROOT, "train bench: llama d_model %d, %d layers, %d heads (%d kv), d_mlp %d, "
                                + "vocab %d, seq %d, batch %d (%,d params); %d rounds x %d steps after %d warm-up; "
                                + "DJL threads %d, torch threads %d (BLAS default), foreach %s%n",
                        dModel, layers, heads, kvHeads, dMlp, vocab, seq, batch, mc.parameterCount(), rounds, perRound,
                        warmup, threads, torchThreads, foreach);
                System.err.printf(Locale.ROOT, "  JLens tokens/s per round %s%n  torch tokens/s per round %s%n",
                        fmt(javaTps), fmt(pyTps));
                System.err.printf(Locale.ROOT, "  losses agree to %.2e over %d steps (first %.4f / %.4f, last %.4f / %.4f)%n",
                        maxDiff, steps, javaLosses[0], pyLosses.get(0), javaLosses[steps - 1], pyLosses.get(steps - 1));
            } finally {
                py.destroy();
            }
        } finally {
            deleteTree(work);
        }
    }

    /** The copy task at full length: the second half of each sequence repeats the first. */
    private static long[][][] copyTask(int steps, int batch, int seq, int vocab, long seed) {
        long[][][] out = new long[steps][batch][seq];
        int half = seq / 2;
        for (int s = 0; s < steps; s++) {
            SplittableRandom r = new SplittableRandom(seed * 1_000_003L + s);
            for (int b = 0; b < batch; b++) {
                for (int p = 0; p < seq; p++) out[s][b][p] = p < half ? r.nextInt(vocab) : out[s][b][p - half];
            }
        }
        return out;
    }

    private static ObjectNode spec(ModelConfig mc, TrainConfig cfg, HookedTransformer model, Path work, int steps,
                                   int batch, int seq, int torchThreads, boolean foreach) {
        ObjectNode s = JSON.createObjectNode();
        ObjectNode m = s.putObject("model");
        m.put("d_model", mc.dModel());
        m.put("n_layers", mc.nLayers());
        m.put("n_heads", mc.nHeads());
        m.put("n_kv_heads", mc.nKvHeads());
        m.put("d_head", mc.dHead());
        m.put("d_mlp", mc.dMlp());
        m.put("vocab", mc.dVocab());
        m.put("n_ctx", mc.nCtx());
        m.put("norm_eps", mc.normEps());
        m.put("rope_theta", mc.ropeTheta());
        s.put("weights", work.resolve("init").resolve("model.safetensors").toString());
        s.put("tokens", work.resolve("tokens.bin").toString());
        s.put("steps", steps);
        s.put("batch", batch);
        s.put("seq", seq);
        ArrayNode lrs = s.putArray("lrs");
        for (int i = 0; i < steps; i++) lrs.add(cfg.lrAt(i));
        s.putArray("betas").add(cfg.beta1()).add(cfg.beta2());
        s.put("eps", cfg.eps());
        s.put("weight_decay", cfg.weightDecay());
        ArrayNode decayed = s.putArray("decayed");
        Trainer.decayedTensors(model, cfg.decayGroups()).forEach(decayed::add);
        if (cfg.gradClip().isPresent()) s.put("grad_clip", cfg.gradClip().getAsDouble()); else s.putNull("grad_clip");
        s.put("torch_threads", torchThreads);
        s.put("foreach", foreach);
        return s;
    }

    private static void writeTokens(Path file, long[][][] data) throws IOException {
        int n = data.length * data[0].length * data[0][0].length;
        ByteBuffer buf = ByteBuffer.allocate(n * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (long[][] step : data) for (long[] row : step) for (long t : row) buf.putLong(t);
        Files.write(file, buf.array());
    }

    private static JsonNode ask(OutputStream in, BufferedReader out, String command) throws IOException {
        in.write((command + "\n").getBytes(StandardCharsets.UTF_8));
        in.flush();
        String reply = out.readLine();
        if (reply == null) throw new IllegalStateException("the Python baseline exited (see its error above) after: " + command);
        return JSON.readTree(reply);
    }

    private static List<Double> losses(JsonNode reply) {
        List<Double> out = new ArrayList<>();
        reply.get("losses").forEach(x -> out.add(x.asDouble()));
        return out;
    }

    private static void line(String metric, double value, String unit, double baseline) {
        ObjectNode o = JSON.createObjectNode();
        o.put("bench", "train");
        o.put("metric", metric);
        o.put("value", value);
        o.put("unit", unit);
        if (Double.isNaN(baseline)) {
            o.putNull("baseline");
            o.putNull("ratio");
        } else {
            o.put("baseline", baseline);
            o.put("ratio", value / baseline);
        }
        System.out.println(o);
    }

    private static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static String fmt(double[] xs) {
        StringBuilder s = new StringBuilder("[");
        for (int i = 0; i < xs.length; i++) s.append(i > 0 ? ", " : "").append(String.format(Locale.ROOT, "%.0f", xs[i]));
        return s.append(']').toString();
    }

    private static final List<String> OPTIONS = List.of("d-model", "layers", "heads", "kv-heads", "d-mlp", "vocab",
            "seq", "batch", "rounds", "steps-per-round", "warmup", "opt-reps", "threads", "torch-threads", "foreach",
            "python", "script", "seed");

    private static Map<String, String> parse(String[] args) {
        Map<String, String> out = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("arguments are --name value pairs; got '" + args[i] + "'");
            }
            String name = args[i].substring(2);
            if (!OPTIONS.contains(name)) throw new IllegalArgumentException("unknown option --" + name + "; options: " + OPTIONS);
            out.put(name, args[++i]);
        }
        return out;
    }

    private static int intArg(Map<String, String> a, String name, int dflt) {
        String v = a.get(name);
        if (v == null) return dflt;
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be an integer, got '" + v + "'");
        }
    }

    private static void deleteTree(Path p) {
        try (var walk = Files.walk(p)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
