package dev.jlens.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import dev.jlens.sae.SparseDecode;
import dev.jlens.train.AdamW;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@code lab bench sae}: the cost of training and decoding a TopK SAE, against this machine's matmul peak and plain
 * PyTorch measured in the same run. Prints one JSON object per line, {@code {"bench":"sae","metric":...,"value":...,
 * "unit":...,"baseline":...,"ratio":...}} (ratio = value / baseline; values are medians of interleaved runs), with
 * {@code threads}, {@code runs}, {@code goal}/{@code ok} and a {@code note} where they apply.
 *
 * <ol>
 *   <li>{@code matmul_peak_gflops}: an {@code n x n} fp32 matmul at each DJL thread count; the fastest count is used
 *       for everything after.</li>
 *   <li>{@code sae_train_step}, {@code sae_auxk_train_step} and {@code sae_dense_train_step}: one TopK training step
 *       (forward, backward under a {@code GradientCollector} in one {@code NDScope}, {@link AdamW} update). The first
 *       two are the trainer's ({@link SparseCoder#trainStep} through {@link SparseDecode#trainTopK}): while no latent
 *       is dead, and with half the latents dead (AuxK at {@code k_aux = 2k}, coefficient 1/32); the third is the
 *       general dense route ({@link SparseCoder#trainForward} with dense latents, AuxK on the same dead latents), which
 *       the other architectures take, reported without a goal. Baselines: the dense step in Python
 *       ({@code tools/bench/python/sae_step.py}, torch at one thread, its BLAS at its default), with AuxK for the
 *       last two. {@code *_gflops}: FLOPs a dense step performs, {@code 10 B dIn dSae} (encoder and decoder
 *       {@code 2 B dIn dSae} each forward; backward: decoder input and weight gradients and the encoder weight
 *       gradient, the input needs none), {@code 16 B dIn dSae} with AuxK's dense decoder forward and backward, per
 *       second, against the peak.</li>
 *   <li>{@code topk_decode}: decoding {@code k} active latents with {@link SparseDecode#decode} vs the dense scatter
 *       and matmul.</li>
 * </ol>
 * The dense route allocates several fresh {@code [B, dSae]} blocks per step; on virtual machines their first-touch page
 * faults cost as much as the matmuls. {@code GLIBC_TUNABLES=glibc.malloc.hugetlb=1} (glibc 2.35+) makes malloc use
 * transparent huge pages and removes most of that cost for JLens and the Python baseline alike (the child inherits
 * the environment); the step lines report the setting as {@code glibc_tunables}.
 */
public final class SaeBench {
    /** The bench's name in {@code lab bench NAME} and in every output line. */
    public static final String NAME = "sae";

    private static final String SCRIPT = "tools/bench/python/sae_step.py";

    private SaeBench() {}

    /**
     * What to measure. {@code pythonExe} empty: the first of {@code $JLENS_PYTHON}, {@code python3},
     * {@code /usr/bin/python3} that imports torch; {@code pythonScript} empty: {@code tools/bench/python/sae_step.py}
     * under {@code -Djlens.root} or a parent of the working directory. Without a usable Python the baseline
     * fields are null and the note says why.
     */
    public record Options(int dIn, int dSae, int k, int batch, int decodeDSae, int decodeBatch, int peakN,
                          int warmup, int runs, List<Integer> threads, int chunk, boolean python,
                          Optional<String> pythonExe, Optional<Path> pythonScript, long seed) {
        public Options {
            if (dIn < 1 || dSae < 1 || k < 1 || k > dSae || k > decodeDSae || batch < 1 || decodeDSae < 1
                    || decodeBatch < 1 || peakN < 1) {
                throw new IllegalArgumentException("sizes must be positive with k <= dSae; got dIn " + dIn + ", dSae "
                        + dSae + ", k " + k + ", batch " + batch + ", decode dSae " + decodeDSae + ", decode batch "
                        + decodeBatch + ", peak n " + peakN);
            }
            threads = List.copyOf(threads);
            if (threads.isEmpty() || threads.stream().anyMatch(t -> t < 1)) {
                throw new IllegalArgumentException("thread counts must be positive, got " + threads);
            }
            if (warmup < 0 || runs < 1 || chunk < 1) {
                throw new IllegalArgumentException("need warmup >= 0, runs >= 1, chunk >= 1; got " + warmup + ", " + runs
                        + ", " + chunk);
            }
            pythonExe = pythonExe == null ? Optional.empty() : pythonExe;
            pythonScript = pythonScript == null ? Optional.empty() : pythonScript;
        }

        /** d_in 512, d_sae 8192, batch 4096, k 32; decoding at d_sae 16384; 2048 matmul; 1 warm-up + 5 runs. */
        public static Options full() {
            return new Options(512, 8192, 32, 4096, 16384, 4096, 2048, 1, 5, List.of(1, 2), SparseDecode.DEFAULT_CHUNK,
                    true, Optional.empty(), Optional.empty(), 0);
        }

        /** Tiny sizes, for tests of the bench itself (seconds). */
        public static Options tiny() {
            return new Options(32, 256, 8, 128, 512, 128, 128, 1, 2, List.of(1), 64, true, Optional.empty(),
                    Optional.empty(), 0);
        }

        /** A copy with other thread counts / repetitions / baseline settings. */
        public Options with(List<Integer> newThreads, int newWarmup, int newRuns, boolean newPython) {
            return new Options(dIn, dSae, k, batch, decodeDSae, decodeBatch, peakN, newWarmup, newRuns, newThreads, chunk,
                    newPython, pythonExe, pythonScript, seed);
        }
    }

    /** Runs every measurement, printing metric lines to {@code out} and progress to {@code log}. */
    public static void run(Options o, PrintStream out, PrintStream log) {
        Engine.getInstance();   // the engine must be up before its thread count can be read or set
        int threadsBefore = JniUtils.getNumThreads();
        BenchReport rep = new BenchReport(NAME, out);
        try {
            log.printf("bench sae: TopK d_in %d, d_sae %d, k %d, batch %d; decode d_sae %d; DJL threads %s (default %d)%n",
                    o.dIn(), o.dSae(), o.k(), o.batch(), o.decodeDSae(), o.threads(), threadsBefore);
            double[] peak = new double[1];
            int threads = peak(o, rep, log, peak);
            JniUtils.setNumThreads(threads);
            training(o, threads, peak[0], rep, log);
            decode(o, threads, rep, log);
        } finally {
            JniUtils.setNumThreads(threadsBefore);
        }
    }

    // ------------------------------------------------------------------ 1. matmul peak

    /** Times the square matmul at every thread count; returns the fastest count and puts its GFLOP/s in peakOut. */
    private static int peak(Options o, BenchReport rep, PrintStream log, double[] peakOut) {
        int n = o.peakN();
        log.printf("matmul peak: %dx%d fp32 at DJL threads %s ...%n", n, n, o.threads());
        double flops = 2.0 * n * n * n;
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray a = m.randomUniform(-1, 1, new Shape(n, n)), b = m.randomUniform(-1, 1, new Shape(n, n));
            List<ModelBench.Timed> tasks = new ArrayList<>();
            for (int t : o.threads()) {
                tasks.add(ModelBench.timed(() -> JniUtils.setNumThreads(t), () -> {
                    try (NDScope s = new NDScope()) {
                        a.matMul(b);
                    }
                }));
            }
            // at least 3 runs: the peak is the denominator of everything after
            ModelBench.Timing[] ts = ModelBench.interleaved(Math.max(1, o.warmup()), Math.max(3, o.runs()), tasks);
            int best = 0;
            for (int i = 0; i < ts.length; i++) {
                double gf = flops / ts[i].median() / 1e6;
                Map<String, Object> x = extra(o.threads().get(i), Math.max(3, o.runs()), null, null,
                        "fp32 matmul " + n + "x" + n + " @ " + n + "x" + n + ", median; 2 n^3 FLOPs");
                x.put("best_gflops", BenchReport.round(flops / ts[i].min() / 1e6));
                rep.emit("matmul_peak_gflops", gf, "GFLOP/s", null, x);
                if (ts[i].median() < ts[best].median()) best = i;
            }
            peakOut[0] = flops / ts[best].median() / 1e6;
            return o.threads().get(best);
        }
    }

    // ------------------------------------------------------------------ 2. training step

    private static void training(Options o, int threads, double peak, BenchReport rep, PrintStream log) {
        log.printf("training step: no dead latents, AuxK (sparse), AuxK (general dense route) and Python, interleaved, "
                + "DJL threads %d ...%n", threads);
        int auxK = 2 * o.k();
        SaeConfig cfg = SaeConfig.of(o.dIn(), o.dSae(), new SaeConfig.TopK(o.k(), auxK, 1.0 / 32));
        double flops = 10.0 * o.batch() * o.dIn() * o.dSae();
        double auxFlops = 16.0 * o.batch() * o.dIn() * o.dSae();
        String formula = "10 * B * d_in * d_sae (forward 2 matmuls, backward 3; the input needs no gradient)";
        String auxFormula = "16 * B * d_in * d_sae (the step's 10, and AuxK's dense decoder forward and its 2 backward "
                + "matmuls)";
        try (NDManager m = NDManager.newBaseManager();
             SparseCoder sparse = SparseCoder.create(cfg, o.seed());
             SparseCoder aux = copy(sparse);
             SparseCoder dense = copy(sparse);
             AdamW sparseOpt = optimizer(sparse);
             AdamW auxOpt = optimizer(aux);
             AdamW denseOpt = optimizer(dense);
             PythonServer py = o.python() ? PythonServer.start(o, auxK, log) : null) {
            NDArray x = m.randomNormal(new Shape(o.batch(), o.dIn()));
            // every other latent dead, as the Python baseline marks them
            boolean[] deadFlags = new boolean[o.dSae()];
            for (int j = 0; j < deadFlags.length; j += 2) deadFlags[j] = true;
            NDArray dead = m.create(deadFlags);
            float[] losses = new float[3];
            List<ModelBench.Timed> tasks = new ArrayList<>();
            tasks.add(ModelBench.timed(() -> {}, () -> losses[0] = sparseStep(sparse, sparseOpt, x, null, o.chunk())));
            tasks.add(ModelBench.timed(() -> {}, () -> losses[1] = sparseStep(aux, auxOpt, x, dead, o.chunk())));
            tasks.add(ModelBench.timed(() -> {}, () -> losses[2] = denseStep(dense, denseOpt, x, dead, m)));
            boolean withPython = py != null && py.ok();
            if (withPython) {
                tasks.add(() -> py.step("step"));
                tasks.add(() -> py.step("auxstep"));
            }
            ModelBench.Timing[] ts = ModelBench.interleaved(o.warmup(), o.runs(), tasks);
            Double pyMs = withPython ? ts[3].median() : null;
            Double pyAuxMs = withPython ? ts[4].median() : null;
            String pyNote = py == null ? "Python baseline off (--no-python)"
                    : py.ok() ? "baseline: plain PyTorch eager " + py.torchVersion + ", dense TopK step%s, torch threads "
                    + py.threads + " (BLAS threads: " + py.blasThreads + ")" : "no Python baseline: " + py.problem;
            String[] names = {"sae_train_step", "sae_auxk_train_step", "sae_dense_train_step"};
            String[] hows = {
                "SparseDecode.trainTopK (chunks of " + o.chunk() + " tokens) + AdamW: the trainer's TopK step while no "
                        + "latent is dead",
                "SparseDecode.trainTopK with AuxK (k_aux " + auxK + ", half the latents dead) + AdamW: the trainer's "
                        + "TopK step while some latents are dead",
                "TopKSae.trainForward (dense latents, AuxK on the same dead latents) + GradientCollector.backward + "
                        + "AdamW: the general dense route, which the trainer no longer takes for TopK (BatchTopK, "
                        + "Matryoshka and the other architectures do); no goal"};
            for (int i = 0; i < 3; i++) {
                double ms = ts[i].median();
                Double base = i == 0 ? pyMs : pyAuxMs;
                boolean goal = i < 2;
                String note = hows[i] + "; " + String.format(pyNote, i == 0 ? "" : " with AuxK");
                // the performance issue's goal: at most 0.8 of plain PyTorch's time for a training step
                Map<String, Object> x1 = extra(threads, o.runs(), goal && base != null ? "ratio <= 0.8" : null,
                        goal && base != null ? ms / base <= 0.8 : null, note);
                x1.put("tokens_per_s", BenchReport.round(o.batch() / ms * 1e3));
                if (base != null) x1.put("baseline_tokens_per_s", BenchReport.round(o.batch() / base * 1e3));
                x1.put("loss", losses[i]);
                x1.put("batch", o.batch());
                // large fresh allocations fault in page by page unless malloc asks for huge pages; both sides inherit it
                x1.put("glibc_tunables", Optional.ofNullable(System.getenv("GLIBC_TUNABLES")).orElse(""));
                rep.emit(names[i], ms, "ms", base, x1);
                double f = i == 0 ? flops : auxFlops;
                double gf = f / ms / 1e6;
                Map<String, Object> x2 = extra(threads, o.runs(), goal ? "ratio >= 0.8" : null, goal ? gf / peak >= 0.8 : null,
                        (i == 2 ? "" : "dense-equivalent: the sparse step executes far fewer; ") + "FLOPs = "
                                + (i == 0 ? formula : auxFormula) + " = " + BenchReport.round(f / 1e9)
                                + " GFLOP per step; baseline: matmul peak");
                if (i < 2) {
                    // what the sparse step really computes: the encoder's dense pre-activations (to choose the top k),
                    // the rest touches only the k (and k_aux) active latents
                    double executed = 2.0 * o.batch() * o.dIn() * o.dSae() + 8.0 * o.batch() * (i == 0 ? o.k()
                            : o.k() + auxK) * o.dIn();
                    x2.put("executed_gflop_per_step", BenchReport.round(executed / 1e9));
                    x2.put("executed_gflops", BenchReport.round(executed / ms / 1e6));
                }
                rep.emit(names[i] + "_gflops", gf, "GFLOP/s", peak, x2);
            }
        }
    }

    private static SparseCoder copy(SparseCoder s) {
        Map<String, NDArray> t = new LinkedHashMap<>();
        s.weights().params().forEach((name, a) -> t.put(name, a.duplicate()));
        return SparseCoder.wrap(s.cfg(), new SaeWeights(s.cfg(), t));
    }

    private static AdamW optimizer(SparseCoder s) {
        s.weights().params().values().forEach(p -> p.setRequiresGradient(true));
        return new AdamW(s.weights().params(), Set.of(), 0.9, 0.999, 1e-8, 0);
    }

    /** One general-route step: one scope around forward and backward, the update after it. */
    private static float denseStep(SparseCoder sae, AdamW opt, NDArray x, NDArray dead, NDManager m) {
        float loss;
        try (NDScope scope = new NDScope(); GradientCollector gc = dev.jlens.util.Tensors.gradientCollector()) {
            SparseCoder.Output out = sae.trainForward(x, new SparseCoder.Context(0, 1f, dead, m));
            gc.backward(out.loss());
            loss = out.loss().getFloat();
        }
        opt.step(1e-4, 1.0);
        return loss;
    }

    /** One step exactly as the trainer runs a TopK dictionary's (dead latents, or null for none). */
    private static float sparseStep(SparseCoder sae, AdamW opt, NDArray x, NDArray dead, int chunk) {
        float loss;
        try (NDScope scope = new NDScope(); GradientCollector gc = dev.jlens.util.Tensors.gradientCollector()) {
            loss = SparseDecode.trainTopK(sae, x, gc, chunk, dead).loss();
        }
        opt.step(1e-4, 1.0);
        return loss;
    }

    // ------------------------------------------------------------------ 3. sparse decode

    private static void decode(Options o, int threads, BenchReport rep, PrintStream log) {
        int b = o.decodeBatch(), d = o.decodeDSae(), k = o.k();
        log.printf("TopK decode: batch %d, d_sae %d, k %d, sparse vs dense ...%n", b, d, k);
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray wDec = m.randomNormal(new Shape(d, o.dIn())), bDec = m.randomNormal(new Shape(o.dIn()));
            NDArray values, indices;
            try (NDArray pre = m.randomNormal(new Shape(b, d))) {
                NDList tk = pre.topK(k, -1, true, false);   // distinct latents per token, as an encoder gives
                values = Activation.relu(tk.get(0));
                indices = tk.get(1);
            }
            NDArray[] outs = new NDArray[2];
            ModelBench.Timing[] ts = ModelBench.interleaved(o.warmup(), o.runs(), List.of(
                    ModelBench.timed(() -> {}, () -> {
                        try (NDScope s = new NDScope()) {
                            NDArray r = SparseDecode.decode(values, indices, wDec, bDec);
                            keep(outs, 0, r);
                        }
                    }),
                    ModelBench.timed(() -> {}, () -> {
                        try (NDScope s = new NDScope()) {
                            NDArray acts = m.zeros(new Shape(b, d)).scatter(indices, values, -1);
                            keep(outs, 1, acts.matMul(wDec).add(bDec));
                        }
                    })));
            double diff = outs[0].sub(outs[1]).abs().max().getFloat();
            double speedup = ts[1].median() / ts[0].median();
            Map<String, Object> x = extra(threads, o.runs(), "speedup >= 2", speedup >= 2,
                    "SparseDecode.decode (COO x W_dec) vs dense scatter + matmul; batch " + b + ", d_sae " + d + ", d_in "
                            + o.dIn() + ", k " + k);
            x.put("speedup", BenchReport.round(speedup));
            rep.emit("topk_decode", ts[0].median(), "ms", ts[1].median(), x);
            rep.emit("topk_decode_max_abs_diff", diff, "value", null, extra(threads, 1, "value <= 1e-3", diff <= 1e-3,
                    "max |sparse - dense| reconstruction"));
        }
    }

    /** Keeps the last result of a timed run past its scope (for the equality check). */
    private static void keep(NDArray[] slots, int i, NDArray r) {
        NDScope.unregister(r);
        if (slots[i] != null) slots[i].close();
        slots[i] = r;
    }

    // ------------------------------------------------------------------ the Python baseline

    /** The Python baseline as a subprocess timing one step per request; {@code ok()} false when it is unavailable. */
    private static final class PythonServer implements AutoCloseable {
        private PythonProcess process;
        private String torchVersion = "?", blasThreads = "?", problem;
        private int threads;

        boolean ok() {
            return problem == null;
        }

        static PythonServer start(Options o, int auxK, PrintStream log) {
            PythonServer s = new PythonServer();
            Path script = o.pythonScript().orElseGet(() -> BenchReport.findScript(SCRIPT));
            if (script == null || !Files.isRegularFile(script)) {
                s.problem = "cannot find " + SCRIPT + "; run from the project, set -Djlens.root or pass --python-script";
                log.println("bench sae: " + s.problem);
                return s;
            }
            String exe = o.pythonExe().or(PythonProcess::pythonWithTorch).orElse(null);
            if (exe == null) {
                s.problem = "no Python with torch found ($JLENS_PYTHON, python3, /usr/bin/python3); install "
                        + "python3-torch and libopenblas0-pthread, or pass --python EXE";
                log.println("bench sae: " + s.problem);
                return s;
            }
            List<String> cmd = List.of(exe, script.toString(), "--d-in", "" + o.dIn(), "--d-sae", "" + o.dSae(),
                    "--k", "" + o.k(), "--batch", "" + o.batch(), "--aux-k", "" + auxK, "--threads", "1", "--seed",
                    "" + o.seed());
            log.println("Python baseline: " + String.join(" ", cmd));
            try {
                s.process = PythonProcess.start(cmd);
                JsonNode ready = s.process.ready();
                s.torchVersion = ready.path("torch").asText("?");
                s.blasThreads = ready.path("openblas_threads").asText("?");
                s.threads = ready.path("threads").asInt();
            } catch (IOException | RuntimeException e) {
                s.problem = "the baseline " + exe + " failed to start: " + e.getMessage();
                log.println("bench sae: " + s.problem);
            }
            return s;
        }

        /** One training step ({@code step}, or {@code auxstep} with AuxK); the script's own timing (wall ms only). */
        ModelBench.Sample step(String command) {
            JsonNode r = process.request(command + " 1");
            if (!r.has("ms")) throw process.failure("answered " + r);
            return new ModelBench.Sample(r.get("ms").get(0).asDouble(), Double.NaN);
        }

        @Override
        public void close() {
            if (process != null) process.close();
        }
    }




    // ------------------------------------------------------------------ output

    private static Map<String, Object> extra(Integer threads, int runs, String goal, Boolean ok, String note) {
        return BenchReport.extra(null, threads, runs, goal, ok, note);
    }
}
