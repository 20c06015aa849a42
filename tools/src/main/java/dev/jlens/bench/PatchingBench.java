package dev.jlens.bench;

import dev.jlens.analysis.Direction;
import dev.jlens.analysis.Metric;
import dev.jlens.analysis.PatchResult;
import dev.jlens.analysis.PatchSite;
import dev.jlens.analysis.Patching;
import dev.jlens.data.Agreement;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.zoo.Zoo;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code lab bench patching}: a patching sweep with many patches per forward pass against the same sweep with one
 * forward pass per patch (what TransformerLens's patching module does), measured side by side in one process, runs
 * alternating. The goal (speedup ≥ 5) is set on the zoo model the notebooks patch, {@code tinylang-4l} with 8 prompt
 * pairs; {@code --shape small} adds a GPT-2-small-shaped random model, where a forward pass is dominated by
 * arithmetic rather than per-pass overhead, reported without a goal.
 */
public final class PatchingBench {
    /** The benchmark's name. */
    public static final String NAME = "patching";
    /** The goal on the zoo model. */
    public static final double GOAL = 5.0;

    /** Options: runs per arm, warmup runs, prompt pairs on the zoo model, whether to add the GPT-2-small shape. */
    public record Options(int runs, int warmup, int pairs, boolean small) {
        public Options {
            if (runs < 1 || warmup < 0) throw new IllegalArgumentException("runs must be >= 1 and warmup >= 0");
            if (pairs < 1) throw new IllegalArgumentException("pairs must be >= 1, got " + pairs);
        }
    }

    private PatchingBench() {}

    /** Runs the benchmark, one JSON line per sweep. */
    public static void run(Options o, PrintStream out, PrintStream log) {
        BenchReport report = new BenchReport(NAME, out);
        try (HookedTransformer tiny = Zoo.load("tinylang-4l")) {
            List<Agreement.Pair> pairs = new Agreement(Agreement.Template.OBJECT_GAP, 0).pairs(0, o.pairs());
            Patching p = Patching.of(tiny, Agreement.clean(pairs), Agreement.corrupt(pairs),
                    Metric.logitDiff(Agreement.singularVerbs(pairs), Agreement.pluralVerbs(pairs)));
            sweep(report, log, "tinylang-4l", p, PatchSite.RESID_PRE, false, o, true);
            sweep(report, log, "tinylang-4l", p, PatchSite.Z, true, o, true);
        }
        if (o.small()) {
            ModelConfig cfg = ModelConfig.gpt2(768, 12, 12, 3072, 50257, 1024);
            try (HookedTransformer m = HookedTransformer.random(cfg, 0)) {
                SplittableRandom r = new SplittableRandom(0);
                long[][] clean = new long[4][16], corrupt = new long[4][16];
                for (int i = 0; i < 4; i++) {
                    for (int j = 0; j < 16; j++) {
                        clean[i][j] = r.nextInt(50257);
                        corrupt[i][j] = j == 3 ? r.nextInt(50257) : clean[i][j];
                    }
                }
                Patching p = Patching.of(m, clean, corrupt, Metric.logitDiff(11, 13)).rowsPerPass(64);
                sweep(report, log, "gpt2-small-shape (random)", p, PatchSite.RESID_PRE, false, o, false);
            }
        }
    }

    /** Intra-op thread counts each sweep is timed at: tiny passes run fastest on one, large ones may use two. */
    static final int[] THREADS = {1, 2};

    private static void sweep(BenchReport report, PrintStream log, String model, Patching p, PatchSite site,
                              boolean byPosition, Options o, boolean goal) {
        Patching one = p.rowsPerPass(p.prompts()).resume(false);   // a hand-written loop: full passes
        int nt = THREADS.length;
        double[][] tOne = new double[nt][o.runs()], tMany = new double[nt][o.runs()];
        PatchResult a = null, b = null;
        int threadsBefore = ai.djl.pytorch.jni.JniUtils.getNumThreads();
        try {
            for (int i = -o.warmup(); i < o.runs(); i++) {
                for (int t = 0; t < nt; t++) {   // runs alternate between the arms and the thread counts
                    ai.djl.pytorch.jni.JniUtils.setNumThreads(THREADS[t]);
                    long t0 = System.nanoTime();
                    a = byPosition ? one.sweepByPosition(site, Direction.DENOISE) : one.sweep(site, Direction.DENOISE);
                    long t1 = System.nanoTime();
                    b = byPosition ? p.sweepByPosition(site, Direction.DENOISE) : p.sweep(site, Direction.DENOISE);
                    long t2 = System.nanoTime();
                    if (i >= 0) {
                        tOne[t][i] = (t1 - t0) / 1e6;
                        tMany[t][i] = (t2 - t1) / 1e6;
                    }
                }
            }
        } finally {
            ai.djl.pytorch.jni.JniUtils.setNumThreads(threadsBefore);
        }
        double maxDiff = 0;
        for (int i = 0; i < a.values().length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.values()[i] - b.values()[i]));
        int patches = a.values().length;
        String what = site.shortName() + (byPosition ? " per head and position" : "");
        double bestOne = Double.POSITIVE_INFINITY, bestMany = Double.POSITIVE_INFINITY;
        int bestOneT = 0, bestManyT = 0;
        for (int t = 0; t < nt; t++) {
            double one1 = median(tOne[t]), many = median(tMany[t]);
            if (one1 < bestOne) {
                bestOne = one1;
                bestOneT = THREADS[t];
            }
            if (many < bestMany) {
                bestMany = many;
                bestManyT = THREADS[t];
            }
            Map<String, Object> x = line(goal, one1 / many, o, "median ms of the whole sweep at this intra-op thread "
                    + "count; baseline: one forward pass per patch at the same count", model, what, patches, p, maxDiff);
            x.put("threads", THREADS[t]);
            report.emit("sweep_ms", many, "ms", one1, x);
            log.printf("bench patching: %s %s, %d thread(s): %d patches, one per pass %.1f ms, batched %.1f ms (%.1fx)%n",
                    model, what, THREADS[t], patches, one1, many, one1 / many);
        }
        // the fair comparison: each arm at the thread count that suits it best
        Map<String, Object> x = line(goal, bestOne / bestMany, o, "median ms of the whole sweep, each arm at its "
                + "fastest thread count; baseline: one forward pass per patch", model, what, patches, p, maxDiff);
        x.put("threads", bestManyT);
        x.put("baseline_threads", bestOneT);
        report.emit("sweep_ms_best_threads", bestMany, "ms", bestOne, x);
        log.printf("bench patching: %s %s, each at its best thread count: one per pass %.1f ms (%d), batched %.1f ms "
                + "(%d) (%.1fx)%n", model, what, bestOne, bestOneT, bestMany, bestManyT, bestOne / bestMany);
    }

    private static Map<String, Object> line(boolean goal, double speedup, Options o, String note, String model,
                                            String what, int patches, Patching p, double maxDiff) {
        Map<String, Object> x = BenchReport.extra(null, null, o.runs(), goal ? "speedup >= " + GOAL : null,
                goal ? speedup >= GOAL : null, note);
        x.put("model", model);
        x.put("site", what);
        x.put("patches", patches);
        x.put("prompts", p.prompts());
        x.put("tokens", p.length());
        x.put("speedup", BenchReport.round(speedup));
        x.put("max_abs_diff", maxDiff);
        return x;
    }

    private static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
