package dev.jlens.bench;

import dev.jlens.analysis.Resampling;
import dev.jlens.cot.Steps;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code lab bench cot}: resampling a chain of thought with the prefix's keys and values computed once and repeated
 * to every continuation, against recomputing the prefix for each continuation, in one process, runs interleaved
 * (their order alternating). Both arms run the same sampling loop with the same rows per pass, so the comparison
 * isolates prefix sharing. The goal (speedup ≥ 3) is set for 100 continuations of a 200-token prefix, 32 new
 * tokens each at temperature 1, on a random GPT-2-shaped model (d_model 256, 4 layers, context 256); the line also
 * says whether both arms drew identical tokens ({@code identical_tokens}) and how many of three continuations drawn
 * alone (batch 1) equal the same rows drawn in the batch ({@code alone_equal}).
 *
 * @see Resampling
 */
public final class CotBench {
    /** The benchmark's name. */
    public static final String NAME = "cot";
    /** The goal at the default shape. */
    public static final double GOAL = 3.0;

    /** The model shape: {@code default} (the goal's) or {@code tiny} (a smoke test). */
    public enum Shape {
        DEFAULT(ModelConfig.gpt2(256, 4, 8, 1024, 2048, 256)),
        TINY(ModelConfig.gpt2(32, 1, 2, 64, 97, 64));

        final ModelConfig cfg;

        Shape(ModelConfig cfg) {
            this.cfg = cfg;
        }
    }

    /** Options: shape, continuations, prefix tokens, new tokens each, rows per pass, runs, warmup runs. */
    public record Options(Shape shape, int samples, int prefix, int newTokens, int rowsPerPass, int runs, int warmup) {
        public Options {
            if (samples < 1 || prefix < 2 || newTokens < 1 || rowsPerPass < 1 || runs < 1 || warmup < 0) {
                throw new IllegalArgumentException("samples, new tokens, rows per pass and runs must be >= 1, prefix"
                        + " >= 2 and warmup >= 0; got " + samples + ", " + newTokens + ", " + rowsPerPass + ", " + runs
                        + ", prefix " + prefix + ", warmup " + warmup);
            }
            if (prefix + newTokens > shape.cfg.nCtx()) {
                throw new IllegalArgumentException("prefix + new tokens = " + (prefix + newTokens) + " exceeds the "
                        + shape.name().toLowerCase() + " shape's context of " + shape.cfg.nCtx() + " tokens");
            }
        }

        /** The goal's setting: 100 continuations of a 200-token prefix, 32 new tokens each, 100 rows a pass. */
        public static Options defaults() {
            return new Options(Shape.DEFAULT, 100, 200, 32, 100, 5, 1);
        }
    }

    private CotBench() {}

    /** Runs the benchmark: one JSON line. */
    public static void run(Options o, PrintStream out, PrintStream log) {
        BenchReport report = new BenchReport(NAME, out);
        try (HookedTransformer m = HookedTransformer.random(o.shape().cfg, 0)) {
            Resampling.Trace trace = trace(o.prefix(), o.shape().cfg.dVocab());
            int k = trace.stepCount();
            Resampling.Options shared = Resampling.Options.of(o.samples(), o.newTokens(), 1.0)
                    .withRowsPerPass(o.rowsPerPass());
            Resampling.Options recompute = shared.sharePrefix(false);
            double[] tShared = new double[o.runs()], tRecompute = new double[o.runs()];
            boolean identical = true;
            long[][] sharedTokens = null;
            for (int i = -o.warmup(); i < o.runs(); i++) {
                long[][][] drawn = new long[2][][];
                double[] ms = new double[2];
                for (int j = 0; j < 2; j++) {
                    int arm = (i & 1) == 0 ? j : 1 - j;   // the order alternates from run to run
                    long t0 = System.nanoTime();
                    drawn[arm] = Resampling.resample(m, trace, k, arm == 0 ? shared : recompute).tokens();
                    ms[arm] = (System.nanoTime() - t0) / 1e6;
                }
                identical &= Arrays.deepEquals(drawn[0], drawn[1]);
                sharedTokens = drawn[0];
                if (i >= 0) {
                    tShared[i] = ms[0];
                    tRecompute[i] = ms[1];
                }
            }
            // a few continuations drawn alone (batch 1) against the same rows drawn in a batch: no batch effects
            int[] probe = {0, o.samples() / 2, o.samples() - 1};
            int alone = 0;
            for (int i : probe) {
                if (Arrays.equals(sharedTokens[i], Resampling.continuation(m, trace, k, i, shared).tokens())) alone++;
            }
            double s = median(tShared), r = median(tRecompute), speedup = r / s;
            boolean goal = o.shape() == Shape.DEFAULT;
            Map<String, Object> x = BenchReport.extra(null, null, o.runs(), goal ? "speedup >= " + GOAL : null,
                    goal ? speedup >= GOAL : null, "median ms to draw every continuation, runs interleaved; baseline:"
                            + " the prefix recomputed for each continuation, same sampling loop and rows per pass");
            ModelConfig c = o.shape().cfg;
            x.put("model", "gpt2-shape (random) d_model " + c.dModel() + ", " + c.nLayers() + " layers, d_vocab "
                    + c.dVocab() + ", n_ctx " + c.nCtx());
            x.put("shape", o.shape().name().toLowerCase());
            x.put("samples", o.samples());
            x.put("prefix_tokens", o.prefix());
            x.put("new_tokens", o.newTokens());
            x.put("rows_per_pass", o.rowsPerPass());
            x.put("temperature", 1.0);
            x.put("speedup", BenchReport.round(speedup));
            x.put("identical_tokens", identical);
            x.put("alone_equal", alone + "/" + probe.length);
            report.emit("resample_ms", s, "ms", r, x);
            log.printf("bench cot: %d continuations of a %d-token prefix, %d new tokens: shared prefix %.1f ms, "
                    + "recomputed %.1f ms (%.2fx), identical tokens: %s, drawn alone equal: %d/%d%n", o.samples(),
                    o.prefix(), o.newTokens(), s, r, speedup, identical, alone, probe.length);
        }
    }

    /** A random trace whose prefix after all its steps is {@code prefix} tokens: a prompt, then steps of 16. */
    static Resampling.Trace trace(int prefix, int vocab) {
        SplittableRandom rnd = new SplittableRandom(1);
        int prompt = Math.max(1, prefix % 16 == 0 ? 16 : prefix % 16);
        long[] p = new long[prompt], chain = new long[prefix - prompt];
        for (int i = 0; i < p.length; i++) p[i] = rnd.nextInt(vocab);
        for (int i = 0; i < chain.length; i++) chain[i] = rnd.nextInt(vocab);
        List<Steps.TokenRange> steps = new ArrayList<>();
        for (int s = 0; s < chain.length; s += 16) steps.add(new Steps.TokenRange(s, Math.min(chain.length, s + 16)));
        if (steps.isEmpty()) throw new IllegalArgumentException("prefix " + prefix + " leaves no steps");
        return Resampling.Trace.of(p, chain, steps);
    }

    private static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
