package dev.jlens.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.model.ActivationCache;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.Batch;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.util.NativeLibs;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * {@code lab bench model}: the hooked transformer's costs, each measured side by side with its reference in the same
 * run, on a GPT-2-small-shaped random model. Prints one JSON object per line:
 * {@code {"bench":"model","metric":...,"value":...,"unit":...,"baseline":...,"ratio":...}} (ratio = value /
 * baseline; values are medians of wall time), with extra keys where they apply: {@code batch}, {@code threads},
 * {@code runs}, {@code goal} and {@code ok}, and {@code cpu_ms} / {@code baseline_cpu_ms} / {@code cpu_ratio} (CPU time
 * of the process, all threads: on a shared machine wall time also counts waiting for a core).
 *
 * <ol>
 *   <li>{@code hook_points_forward}: forward with every hook point present and empty vs {@link PlainGpt2} (no hook
 *       calls); {@code plain_max_abs_diff} checks both give the same logits.</li>
 *   <li>{@code run_with_cache_resid_post}: {@code runWithCache(resid_post)} vs a plain {@code forward}.</li>
 *   <li>{@code generate_kv_cache}: greedy generation with vs without the KV cache.</li>
 *   <li>{@code forward_vs_python}: the forward vs plain PyTorch eager in a Python subprocess
 *       ({@code tools/bench/python/gpt2_forward.py --serve}) whose runs alternate with the JVM's, each at its best thread
 *       count; {@code forward_djl_threads} and {@code forward_python_threads} report every setting, and
 *       {@code forward_matmul_ms}, {@code forward_other_ms} and {@code forward_matmul_bound} where each side's time
 *       goes, from one profiled forward each ({@link #profiles}).</li>
 *   <li>{@code load_peak_rss}: peak RSS of a fresh JVM that loads the saved model ({@link LoadProbe}) vs the weights'
 *       bytes; {@code load_rss_growth} and {@code load_jvm_heap_used} split it up.</li>
 * </ol>
 * Measurements 1-3 run at the DJL thread count that was fastest in 4. Progress goes to the log stream; only metric
 * lines go to the output stream.
 */
public final class ModelBench {
    /** The bench's name in {@code lab bench NAME} and in every output line. */
    public static final String NAME = "model";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SCRIPT = "tools/bench/python/gpt2_forward.py";
    private static final long[] PROMPT = {464, 3290, 318, 257};   // any few ids; taken modulo the vocabulary

    private ModelBench() {}

    /**
     * What to measure and how often. {@code python} runs the Python baseline ({@code pythonExe} empty: the first of
     * {@code $JLENS_PYTHON}, {@code python3}, {@code /usr/bin/python3} that imports torch; {@code pythonScript}
     * empty: {@code tools/bench/python/gpt2_forward.py} under {@code -Djlens.root} or a parent of the working directory).
     */
    public record Options(ModelConfig cfg, int seq, List<Integer> batches, int warmup, int runs, int genTokens,
                          int genRuns, List<Integer> djlThreads, List<Integer> pythonThreads, boolean python,
                          Optional<String> pythonExe, Optional<Path> pythonScript, boolean rss, long seed) {
        public Options {
            if (cfg.family() != ModelConfig.Family.GPT2) throw new IllegalArgumentException("bench model needs a GPT-2 config");
            if (seq < 1 || seq > cfg.nCtx()) throw new IllegalArgumentException("seq must be in [1, " + cfg.nCtx() + "], got " + seq);
            batches = List.copyOf(batches);
            djlThreads = List.copyOf(djlThreads);
            pythonThreads = List.copyOf(pythonThreads);
            if (batches.isEmpty() || batches.stream().anyMatch(b -> b < 1)) {
                throw new IllegalArgumentException("batches must be positive, got " + batches);
            }
            if (djlThreads.isEmpty() || pythonThreads.isEmpty()
                    || Stream.concat(djlThreads.stream(), pythonThreads.stream()).anyMatch(t -> t < 1)) {
                throw new IllegalArgumentException("thread counts must be positive, got DJL " + djlThreads + ", Python "
                        + pythonThreads);
            }
            if (warmup < 0 || runs < 1 || genRuns < 1) {
                throw new IllegalArgumentException("need warmup >= 0, runs >= 1, genRuns >= 1; got " + warmup + ", "
                        + runs + ", " + genRuns);
            }
            if (genTokens < 1 || genTokens + PROMPT.length > cfg.nCtx()) {
                throw new IllegalArgumentException("genTokens must be in [1, " + (cfg.nCtx() - PROMPT.length) + "], got "
                        + genTokens);
            }
            pythonExe = pythonExe == null ? Optional.empty() : pythonExe;
            pythonScript = pythonScript == null ? Optional.empty() : pythonScript;
        }

        /**
         * GPT-2 small (124M parameters), seq 128, batches 1 and 8, 2 warmup + 7 timed runs, 128 generated tokens:
         * about 15 minutes on a busy 2-core machine, mostly batch 8 and generation without a cache.
         */
        public static Options full() {
            return new Options(ModelConfig.gpt2(768, 12, 12, 3072, 50257, 1024), 128, List.of(1, 8), 2, 7, 128, 3,
                    List.of(1, 2), List.of(1, 2), true, Optional.empty(), Optional.empty(), true, 0);
        }

        /** GPT-2 small, batch 1 only, fewer runs and a 32-token generation: a smoke test of the real shapes. */
        public static Options quick() {
            return new Options(ModelConfig.gpt2(768, 12, 12, 3072, 50257, 1024), 128, List.of(1), 1, 3, 32, 1,
                    List.of(1, 2), List.of(1, 2), true, Optional.empty(), Optional.empty(), true, 0);
        }

        /** A 2-layer, d_model 64 GPT-2 with seq 32: seconds, for tests of the bench itself. */
        public static Options tiny() {
            return new Options(ModelConfig.gpt2(64, 2, 4, 256, 96, 64), 32, List.of(1, 2), 1, 2, 8, 1, List.of(1, 2),
                    List.of(1), true, Optional.empty(), Optional.empty(), true, 0);
        }
    }

    /** Runs every measurement, printing metric lines to {@code out} and progress to {@code log}. */
    public static void run(Options o, PrintStream out, PrintStream log) {
        Engine.getInstance();   // the engine must be up before its thread count can be read or set
        int threadsBefore = JniUtils.getNumThreads();
        BenchReport rep = new BenchReport(NAME, out);
        try (HookedTransformer model = HookedTransformer.random(o.cfg(), o.seed())) {
            log.printf("bench model: %s, seq %d, batches %s, %d warmup + %d runs, DJL threads %s (default %d)%n",
                    o.cfg(), o.seq(), o.batches(), o.warmup(), o.runs(), o.djlThreads(), threadsBefore);
            PlainGpt2 plain = PlainGpt2.of(model);
            Map<Integer, long[][]> inputs = new LinkedHashMap<>();
            for (int b : o.batches()) inputs.put(b, randomIds(b, o.seq(), o.cfg().dVocab(), o.seed() + b));

            // 4 first: it picks the DJL thread count the other measurements use.
            int threads = forwardVsPython(o, model, inputs, rep, log);
            JniUtils.setNumThreads(threads);
            for (int b : o.batches()) hookPoints(o, model, plain, inputs.get(b), threads, rep, log);
            for (int b : o.batches()) runWithCache(o, model, inputs.get(b), threads, rep, log);
            generation(o, model, threads, rep, log);
            if (o.rss()) loadRss(o, model, rep, log);
        } finally {
            JniUtils.setNumThreads(threadsBefore);
        }
    }

    // ------------------------------------------------------------------ 1. hook points

    private static void hookPoints(Options o, HookedTransformer model, PlainGpt2 plain, long[][] ids, int threads,
                                   BenchReport rep, PrintStream log) {
        int b = ids.length;
        log.printf("hook points, batch %d ...%n", b);
        double diff;
        try (NDScope scope = new NDScope()) {
            NDArray hooked = model.forward(ids);
            NDArray ref = plain.forward(ids);
            diff = hooked.sub(ref).abs().max().getFloat();
        }
        Timing[] t = interleaved(o.warmup(), o.runs(), List.of(
                timed(() -> forwardOnce(model, ids)),
                timed(() -> {
                    try (NDScope s = new NDScope()) {
                        plain.forward(ids);
                    }
                })));
        Map<String, Object> x = BenchReport.extra(b, threads, o.runs(), "ratio <= 1.02", t[0].median / t[1].median <= 1.02,
                "baseline: the same GPT-2 forward written without hook points");
        putCpu(x, t[0], t[1]);
        rep.emit("hook_points_forward", t[0].median, "ms", t[1].median, x);
        rep.emit("plain_max_abs_diff", diff, "logit", null, BenchReport.extra(b, threads, 1, "value <= 1e-4", diff <= 1e-4,
                "max |hooked logits - plain logits|"));
    }

    // ------------------------------------------------------------------ 2. runWithCache

    private static void runWithCache(Options o, HookedTransformer model, long[][] ids, int threads, BenchReport rep,
                                     PrintStream log) {
        int b = ids.length;
        log.printf("runWithCache(resid_post), batch %d ...%n", b);
        NameFilter residPost = NameFilter.of("resid_post");
        Batch batch = Batch.of(ids);
        Timing[] t = interleaved(o.warmup(), o.runs(), List.of(
                timed(() -> {
                    try (NDScope s = new NDScope(); ActivationCache c = model.runWithCache(batch, residPost)) {
                        if (c.size() != model.cfg().nLayers()) throw new IllegalStateException("cached " + c.names());
                    }
                }),
                timed(() -> forwardOnce(model, ids))));
        Map<String, Object> x = BenchReport.extra(b, threads, o.runs(), "ratio <= 1.10", t[0].median / t[1].median <= 1.10,
                "baseline: forward without a cache");
        putCpu(x, t[0], t[1]);
        rep.emit("run_with_cache_resid_post", t[0].median, "ms", t[1].median, x);
    }

    // ------------------------------------------------------------------ 3. generation

    private static void generation(Options o, HookedTransformer model, int threads, BenchReport rep, PrintStream log) {
        long[][] prompt = {Arrays.stream(PROMPT).map(id -> id % model.cfg().dVocab()).toArray()};
        log.printf("generation of %d tokens with and without KV cache ...%n", o.genTokens());
        Generation.Config withCache = Generation.Config.greedy(o.genTokens());
        Generation.Config noCache = withCache.withKvCache(false);
        long[][] produced = new long[2][];
        // warm up on a short generation: the long one is the measurement
        for (Generation.Config c : List.of(Generation.Config.greedy(4), Generation.Config.greedy(4).withKvCache(false))) {
            for (int i = 0; i < Math.min(1, o.warmup()); i++) generate(model, prompt, c);
        }
        Timing[] t = interleaved(0, o.genRuns(), List.of(
                timed(() -> produced[0] = generate(model, prompt, withCache)),
                timed(() -> produced[1] = generate(model, prompt, noCache))));
        boolean same = Arrays.equals(produced[0], produced[1]);
        double ratio = t[0].median / t[1].median;
        Map<String, Object> x = BenchReport.extra(1, threads, o.genRuns(), "ratio <= 0.2 (>= 5x faster)", ratio <= 0.2 && same,
                "baseline: the same generation recomputing every position (no KV cache)");
        x.put("tokens", o.genTokens());
        x.put("prompt_tokens", PROMPT.length);
        x.put("same_tokens", same);
        x.put("speedup", BenchReport.round(1 / ratio));
        putCpu(x, t[0], t[1]);
        rep.emit("generate_kv_cache", t[0].median, "ms", t[1].median, x);
    }

    private static long[] generate(HookedTransformer model, long[][] prompt, Generation.Config c) {
        try (Generation.Result r = model.generate(prompt, c)) {
            return r.first();
        }
    }

    // ------------------------------------------------------------------ 4. versus Python

    /**
     * Times the forward at every DJL thread count and, run by run in between, the Python baseline at every torch
     * thread count, so that load from other processes falls on both alike. Returns the best DJL thread count.
     */
    private static int forwardVsPython(Options o, HookedTransformer model, Map<Integer, long[][]> inputs, BenchReport rep,
                                       PrintStream log) {
        int bestThreads = -1;
        try (PythonServer py = o.python() ? PythonServer.start(o, log) : null) {
            for (var e : inputs.entrySet()) {
                int b = e.getKey();
                log.printf("forward, batch %d: DJL threads %s%s ...%n", b, o.djlThreads(),
                        py == null ? "" : ", Python torch threads " + o.pythonThreads());
                List<Timed> tasks = new ArrayList<>();
                for (int t : o.djlThreads()) {
                    tasks.add(timed(() -> JniUtils.setNumThreads(t), () -> forwardOnce(model, e.getValue())));
                }
                if (py != null) for (int t : o.pythonThreads()) tasks.add(() -> py.forward(b, t));
                Timing[] ts = interleaved(o.warmup(), o.runs(), tasks);
                int nd = o.djlThreads().size();
                int dBest = 0, pBest = nd;
                for (int i = 0; i < nd; i++) if (ts[i].median < ts[dBest].median) dBest = i;
                for (int i = nd; i < ts.length; i++) if (ts[i].median < ts[pBest].median) pBest = i;
                Double pyMs = py == null ? null : ts[pBest].median;
                for (int i = 0; i < nd; i++) {
                    Map<String, Object> x = BenchReport.extra(b, o.djlThreads().get(i), o.runs(), null, null,
                            "DJL forward (hook points empty) at this intra-op thread count; baseline: Python's best");
                    if (py != null) putCpu(x, ts[i], ts[pBest]);
                    rep.emit("forward_djl_threads", ts[i].median, "ms", pyMs, x);
                }
                for (int i = nd; i < ts.length; i++) {
                    Map<String, Object> x = BenchReport.extra(b, o.pythonThreads().get(i - nd), o.runs(), null, null,
                            "plain PyTorch eager at this torch thread count (OpenBLAS threads: " + py.blasThreads + ")");
                    x.put("cpu_ms", BenchReport.round(ts[i].cpuMedian()));
                    rep.emit("forward_python_threads", ts[i].median, "ms", null, x);
                }
                if (py != null) {
                    double v = ts[dBest].median, goal = forwardGoal(b);
                    Map<String, Object> x = BenchReport.extra(b, o.djlThreads().get(dBest), o.runs(), "ratio <= " + goal,
                            v / pyMs <= goal, "each at its best thread count, runs interleaved; torch " + py.torchVersion);
                    x.put("python_threads", o.pythonThreads().get(pBest - nd));
                    x.put("mkl", NativeLibs.mklDispatch());
                    x.put("djl_min_ms", BenchReport.round(ts[dBest].min));
                    x.put("python_min_ms", BenchReport.round(ts[pBest].min));
                    putCpu(x, ts[dBest], ts[pBest]);
                    rep.emit("forward_vs_python", v, "ms", pyMs, x);
                    profiles(model, e.getValue(), b, o.djlThreads().get(dBest), py, o.pythonThreads().get(pBest - nd),
                            o.runs(), rep);
                }
                if (bestThreads < 0) bestThreads = o.djlThreads().get(dBest);
            }
        }
        return bestThreads;
    }

    /**
     * Where the forward's time goes on each side: forwards under each engine's profiler (libtorch's, through DJL,
     * and torch's in the baseline), alternating, each at its best thread count, their ops' self time split into the
     * matrix products ({@link #MATMUL_OPS}) and everything else; medians of {@code runs}. {@code forward_matmul_bound}
     * is JLens's matrix products alone against the baseline's whole forward: the ratio {@code forward_vs_python} could
     * reach if everything else took no time.
     */
    private static void profiles(HookedTransformer model, long[][] ids, int batch, int djlThreads, PythonServer py,
                                 int pyThreads, int runs, BenchReport rep) {
        JniUtils.setNumThreads(djlThreads);
        forwardOnce(model, ids);
        double[] om = new double[runs], oo = new double[runs], pm = new double[runs], po = new double[runs];
        for (int r = 0; r < runs; r++) {
            double[] ours = profiledForward(model, ids);
            om[r] = ours[0];
            oo[r] = ours[1];
            JsonNode theirs = py.profile(batch, pyThreads);
            pm[r] = theirs.path("matmul_ms").asDouble(Double.NaN);
            po[r] = theirs.path("other_ms").asDouble(Double.NaN);
        }
        double ourMatmul = median(om), theirMatmul = median(pm), theirOther = median(po);
        String how = "median self time of the ops in " + runs + " forwards under each engine's profiler, alternating, "
                + "each at its best thread count (DJL " + djlThreads + ", torch " + pyThreads + "); ";
        rep.emit("forward_matmul_ms", ourMatmul, "ms", theirMatmul, BenchReport.extra(batch, djlThreads, runs, null,
                null, how + "matrix products: " + String.join(", ", MATMUL_OPS)));
        rep.emit("forward_other_ms", median(oo), "ms", theirOther, BenchReport.extra(batch, djlThreads, runs, null, null,
                how + "every other op"));
        rep.emit("forward_matmul_bound", ourMatmul, "ms", theirMatmul + theirOther, BenchReport.extra(batch,
                djlThreads, runs, null, null, "JLens's matrix products alone against the baseline's whole profiled "
                        + "forward (medians): the smallest forward_vs_python ratio reachable without faster matrix "
                        + "products"));
    }

    /** Op names counted as matrix products in {@link #profiles} (the same set as the Python baseline's). */
    static final List<String> MATMUL_OPS = List.of("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
            "aten::matmul", "aten::linear");

    /** Self time (ms) of the matrix products and of every other op in one forward under libtorch's profiler. */
    static double[] profiledForward(HookedTransformer model, long[][] ids) {
        Path trace;
        try {
            trace = Files.createTempFile("jlens-forward-profile", ".json");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            JniUtils.startProfile(false, false, false);
            try {
                forwardOnce(model, ids);
            } finally {
                JniUtils.stopProfile(trace.toString());
            }
            return selfTimes(JSON.readTree(trace.toFile()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the profiler's trace " + trace, e);
        } finally {
            try {
                Files.deleteIfExists(trace);
            } catch (IOException ignored) {
                // a temporary file
            }
        }
    }

    /**
     * From a Chrome trace (complete events, {@code "ph":"X"}, microseconds): each op's self time (its duration less
     * its directly nested ops', per thread), summed into {matrix products, everything else}, in milliseconds.
     */
    static double[] selfTimes(JsonNode trace) {
        record Ev(long tid, double ts, double dur, String name) {}
        List<Ev> evs = new ArrayList<>();
        for (JsonNode e : trace.isArray() ? trace : trace.path("traceEvents")) {
            if (!"X".equals(e.path("ph").asText())) continue;
            evs.add(new Ev(e.path("tid").asLong(), e.path("ts").asDouble(), e.path("dur").asDouble(), e.path("name").asText()));
        }
        evs.sort(Comparator.comparingLong(Ev::tid).thenComparingDouble(Ev::ts)
                .thenComparing(Comparator.comparingDouble(Ev::dur).reversed()));
        double[] out = new double[2];
        double[] self = new double[evs.size()];
        List<Integer> open = new ArrayList<>();
        for (int i = 0; i < evs.size(); i++) {
            Ev e = evs.get(i);
            while (!open.isEmpty()) {
                Ev top = evs.get(open.get(open.size() - 1));
                if (top.tid() == e.tid() && top.ts() + top.dur() > e.ts()) break;
                open.remove(open.size() - 1);
            }
            self[i] = e.dur();
            if (!open.isEmpty()) self[open.get(open.size() - 1)] -= e.dur();
            open.add(i);
        }
        for (int i = 0; i < evs.size(); i++) out[MATMUL_OPS.contains(evs.get(i).name()) ? 0 : 1] += self[i] / 1e3;
        return out;
    }

    /** The forward's goal against PyTorch eager: 0.8 of its time at batch 1, 0.7 from batch 8 (more work per op call). */
    static double forwardGoal(int batch) {
        return batch >= 8 ? 0.7 : batch == 1 ? 0.8 : 0.75;
    }

    /** The Python baseline as a subprocess that times one forward pass per request ({@code --serve}). */
    private static final class PythonServer implements AutoCloseable {
        private final PythonProcess process;
        private final String torchVersion;
        private final String blasThreads;

        private PythonServer(PythonProcess process) {
            this.process = process;
            torchVersion = process.ready().path("torch").asText("?");
            blasThreads = process.ready().path("openblas_threads").asText("?");
        }

        static PythonServer start(Options o, PrintStream log) {
            Path script = o.pythonScript().orElseGet(ModelBench::findScript);
            if (!Files.isRegularFile(script)) throw new IllegalStateException("Python bench script " + script + " not found");
            String exe = o.pythonExe().orElseGet(ModelBench::findPython);
            ModelConfig c = o.cfg();
            List<String> cmd = List.of(exe, script.toString(), "--serve", "--d-model", "" + c.dModel(),
                    "--layers", "" + c.nLayers(), "--heads", "" + c.nHeads(), "--d-mlp", "" + c.dMlp(),
                    "--vocab", "" + c.dVocab(), "--ctx", "" + c.nCtx(), "--seq", "" + o.seq(), "--seed", "" + o.seed());
            log.println("Python baseline: " + String.join(" ", cmd));
            try {
                return new PythonServer(PythonProcess.start(cmd));
            } catch (IOException e) {
                throw new IllegalStateException("cannot start the Python baseline " + exe + ": " + e.getMessage(), e);
            }
        }

        /** One profiled forward: {@code {"matmul_ms": ..., "other_ms": ...}}, self CPU time by torch's profiler. */
        JsonNode profile(int batch, int threads) {
            JsonNode r = process.request("profile " + batch + " " + threads);
            if (!r.has("matmul_ms")) throw process.failure("answered " + r);
            return r;
        }

        /** Wall and process CPU milliseconds of one forward pass of {@code batch} sequences at {@code threads}. */
        Sample forward(int batch, int threads) {
            JsonNode r = process.request("run " + batch + " " + threads);
            if (!r.has("ms")) throw process.failure("answered " + r);
            return new Sample(r.get("ms").asDouble(), r.path("cpu_ms").asDouble(Double.NaN));
        }

        @Override
        public void close() {
            process.close();
        }
    }

    private static Path findScript() {
        List<Path> tried = BenchReport.scriptPlaces(SCRIPT);
        return tried.stream().filter(Files::isRegularFile).findFirst().orElseThrow(() -> new IllegalStateException(
                "cannot find " + SCRIPT + " (tried " + tried + "); run from the project, set -Djlens.root, or pass "
                        + "--python-script PATH"));
    }

    private static String findPython() {
        return PythonProcess.pythonWithTorch().orElseThrow(() -> new IllegalStateException("no Python with torch found "
                + "(tried " + BenchReport.pythonCandidates() + "); install python3-torch and libopenblas0-pthread, pass "
                + "--python PATH, or skip the baseline with --no-python"));
    }

    // ------------------------------------------------------------------ 5. load RSS

    private static void loadRss(Options o, HookedTransformer model, BenchReport rep, PrintStream log) {
        Path dir;
        try {
            dir = Files.createTempDirectory("jlens-bench-model");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            log.println("saving the model to " + dir + " and loading it in a fresh JVM ...");
            model.save(dir);
            long weightBytes = 0;
            for (NDArray p : model.parameters().values()) weightBytes += p.getShape().size() * Float.BYTES;
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            List<String> cmd = List.of(java, "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"),
                    LoadProbe.class.getName(), dir.toString());
            Proc r = Proc.run(cmd, 600);
            if (r.exit != 0) throw new IllegalStateException("load probe failed (exit " + r.exit + "): " + BenchReport.tail(r.err));
            JsonNode n = Arrays.stream(r.out.split("\n")).filter(l -> l.startsWith("{")).reduce((a, b) -> b)
                    .map(ModelBench::readJson)
                    .orElseThrow(() -> new IllegalStateException("load probe printed no JSON: " + BenchReport.tail(r.out + r.err)));
            double mb = 1024 * 1024;
            double weights = weightBytes / mb;
            double peak = n.get("peak_rss_bytes").asLong() / mb;
            double before = n.get("rss_before_load_bytes").asLong() / mb;
            double after = n.get("rss_after_load_bytes").asLong() / mb;
            double heap = n.get("heap_used_bytes").asLong() / mb;
            Map<String, Object> x = BenchReport.extra(null, null, 1, "ratio <= 1.3", peak / weights <= 1.3,
                    "VmHWM of a fresh JVM after HookedTransformer.load; baseline: float32 weight bytes");
            x.put("rss_before_load_mb", before);
            x.put("rss_after_load_mb", after);
            x.put("file_mb", Files.size(dir.resolve("model.safetensors")) / mb);
            rep.emit("load_peak_rss", peak, "MB", weights, x);
            rep.emit("load_rss_growth", after - before, "MB", weights, BenchReport.extra(null, null, 1, null, null,
                    "VmRSS after load minus VmRSS before (JVM and engine already up)"));
            rep.emit("load_jvm_heap_used", heap, "MB", weights, BenchReport.extra(null, null, 1, null, null,
                    "Java heap in use after load (the weights live in native memory)"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            deleteTree(dir);
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a leftover temp directory is harmless
        }
    }

    // ------------------------------------------------------------------ timing and output

    private static void forwardOnce(HookedTransformer model, long[][] ids) {
        try (NDScope s = new NDScope()) {
            model.forward(ids);
        }
    }

    /**
     * Median and minimum wall time of one task's runs, and the median CPU time its process used (all threads), in
     * milliseconds. On a shared machine wall time includes waiting for the cores; CPU time is the work itself.
     */
    record Timing(double median, double min, double cpuMedian) {}

    /** Wall and process CPU milliseconds of one run. */
    record Sample(double wallMs, double cpuMs) {}

    /** One run of a measured task. */
    @FunctionalInterface
    interface Timed {
        Sample run();
    }

    /** {@code body} timed in this process, after an untimed {@code setup}. */
    static Timed timed(Runnable setup, Runnable body) {
        return () -> {
            setup.run();
            long c0 = processCpuNanos();
            long t0 = System.nanoTime();
            body.run();
            long t1 = System.nanoTime();
            long c1 = processCpuNanos();
            return new Sample((t1 - t0) / 1e6, c0 < 0 ? Double.NaN : (c1 - c0) / 1e6);
        };
    }

    private static final Path TASKS = Path.of("/proc/self/task");

    /**
     * CPU time of this JVM, all threads (native intra-op threads included), or -1 where unsupported: on Linux the sum
     * of every thread's {@code schedstat} (nanoseconds; the JMX process CPU time counts in 10 ms ticks).
     */
    static long processCpuNanos() {
        if (Files.isDirectory(TASKS)) {
            long sum = 0;
            try (Stream<Path> tasks = Files.list(TASKS)) {
                for (Path t : (Iterable<Path>) tasks::iterator) {
                    try {
                        String stat = Files.readString(t.resolve("schedstat"));
                        sum += Long.parseLong(stat.substring(0, stat.indexOf(' ')));
                    } catch (IOException | RuntimeException e) {
                        // the thread ended between listing and reading: its time is lost, a few microseconds at most
                    }
                }
                return sum;
            } catch (IOException e) {
                // fall back to JMX below
            }
        }
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return -1;
    }

    private static Timed timed(Runnable body) {
        return timed(() -> {}, body);
    }

    /**
     * Runs tasks round-robin (task 0, task 1, ..., then again) so that load from other processes falls on all of
     * them alike; {@code warmup} untimed rounds first.
     */
    static Timing[] interleaved(int warmup, int runs, List<Timed> tasks) {
        int n = tasks.size();
        for (int w = 0; w < warmup; w++) for (Timed t : tasks) t.run();
        double[][] wall = new double[n][runs], cpu = new double[n][runs];
        for (int r = 0; r < runs; r++) {
            for (int i = 0; i < n; i++) {
                Sample s = tasks.get(i).run();
                wall[i][r] = s.wallMs();
                cpu[i][r] = s.cpuMs();
            }
        }
        Timing[] out = new Timing[n];
        for (int i = 0; i < n; i++) out[i] = new Timing(median(wall[i]), Arrays.stream(wall[i]).min().orElseThrow(),
                median(cpu[i]));
        return out;
    }

    private static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);   // NaNs sort last; a task measures CPU on all of its runs or none
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    /** CPU-time keys comparing a measurement with its baseline. */
    private static void putCpu(Map<String, Object> x, Timing value, Timing baseline) {
        if (Double.isNaN(value.cpuMedian()) || Double.isNaN(baseline.cpuMedian())) return;
        x.put("cpu_ms", BenchReport.round(value.cpuMedian()));
        x.put("baseline_cpu_ms", BenchReport.round(baseline.cpuMedian()));
        x.put("cpu_ratio", BenchReport.round(value.cpuMedian() / baseline.cpuMedian()));
    }

    private static long[][] randomIds(int batch, int seq, int vocab, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        long[][] ids = new long[batch][seq];
        for (long[] row : ids) for (int i = 0; i < seq; i++) row[i] = rnd.nextInt(vocab);
        return ids;
    }

    private static String join(List<Integer> xs) {
        return String.join(",", xs.stream().map(String::valueOf).toList());
    }

    private static JsonNode readJson(String line) {
        try {
            return JSON.readTree(line);
        } catch (IOException e) {
            throw new IllegalStateException("not a JSON line: " + line, e);
        }
    }

    /** A finished subprocess: exit code and everything it printed. */
    record Proc(int exit, String out, String err) {
        static Proc run(List<String> cmd, long timeoutS) {
            Proc p = tryRun(cmd, timeoutS);
            if (p == null) throw new IllegalStateException("cannot start " + cmd.get(0));
            return p;
        }

        /** Runs {@code cmd}; null if it cannot be started. */
        static Proc tryRun(List<String> cmd, long timeoutS) {
            Process p;
            try {
                p = new ProcessBuilder(cmd).start();
                p.getOutputStream().close();   // the child reads nothing from us
            } catch (IOException e) {
                return null;
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
            Thread to = pump(p.getInputStream(), out), te = pump(p.getErrorStream(), err);
            try {
                if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    throw new IllegalStateException(cmd.get(0) + " did not finish within " + timeoutS + " s");
                }
                to.join();
                te.join();
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + cmd.get(0), e);
            }
            return new Proc(p.exitValue(), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        }

        static Thread pump(InputStream in, ByteArrayOutputStream sink) {
            Thread t = new Thread(() -> {
                try (in) {
                    in.transferTo(sink);
                } catch (IOException ignored) {
                    // the process went away; what was read is kept
                }
            }, "bench-subprocess-output");
            t.setDaemon(true);
            t.start();
            return t;
        }
    }
}
