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

    private static void sweep(BenchReport report, PrintStream log, String model, Patching p, PatchSite site,
                              boolean byPosition, Options o, boolean goal) {
        Patching one = p.rowsPerPass(p.prompts()).resume(false);   // a hand-written loop: full passes
        double[] tOne = new double[o.runs()], tMany = new double[o.runs()];
        PatchResult a = null, b = null;
        for (int i = -o.warmup(); i < o.runs(); i++) {
            long t0 = System.nanoTime();
            a = byPosition ? one.sweepByPosition(site, Direction.DENOISE) : one.sweep(site, Direction.DENOISE);
            long t1 = System.nanoTime();
            b = byPosition ? p.sweepByPosition(site, Direction.DENOISE) : p.sweep(site, Direction.DENOISE);
            long t2 = System.nanoTime();
            if (i >= 0) {
                tOne[i] = (t1 - t0) / 1e6;
                tMany[i] = (t2 - t1) / 1e6;
            }
        }
        double maxDiff = 0;
        for (int i = 0; i < a.values().length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.values()[i] - b.values()[i]));
        double one1 = median(tOne), many = median(tMany), speedup = one1 / many;
        int patches = a.values().length;
        Map<String, Object> x = BenchReport.extra(null, null, o.runs(), goal ? "speedup >= " + GOAL : null,
                goal ? speedup >= GOAL : null, "median ms of the whole sweep; baseline: one forward pass per patch");
        x.put("model", model);
        x.put("site", site.shortName() + (byPosition ? " per head and position" : ""));
        x.put("patches", patches);
        x.put("prompts", p.prompts());
        x.put("tokens", p.length());
        x.put("speedup", BenchReport.round(speedup));
        x.put("max_abs_diff", maxDiff);
        report.emit("sweep_ms", many, "ms", one1, x);
        log.printf("bench patching: %s %s: %d patches, one per pass %.1f ms, batched %.1f ms (%.1fx)%n", model, site,
                patches, one1, many, speedup);
    }

    private static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
