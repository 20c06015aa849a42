package dev.jlens.useful;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/** What the task builders run on a model: batched by length (no padding), native memory scoped per batch. */
final class Runs {
    static final int BATCH = 256;

    private Runs() {}

    /** Indices of the sequences grouped by length, in chunks of at most {@link #BATCH}. */
    static List<int[]> byLength(long[][] seqs) {
        Map<Integer, List<Integer>> groups = new TreeMap<>();
        for (int i = 0; i < seqs.length; i++) groups.computeIfAbsent(seqs[i].length, k -> new ArrayList<>()).add(i);
        List<int[]> out = new ArrayList<>();
        for (List<Integer> g : groups.values()) {
            for (int s = 0; s < g.size(); s += BATCH) {
                out.add(g.subList(s, Math.min(g.size(), s + BATCH)).stream().mapToInt(Integer::intValue).toArray());
            }
        }
        return out;
    }

    static long[][] pick(long[][] seqs, int[] idx) {
        long[][] out = new long[idx.length][];
        for (int i = 0; i < idx.length; i++) out[i] = seqs[idx[i]];
        return out;
    }

    /** {@code blocks.L.hook_resid_post} at each prompt's last token, for every layer: {@code [layer][prompt][d]}. */
    static float[][][] lastTokenResid(HookedTransformer model, long[][] prompts) {
        int layers = model.nLayers(), d = model.cfg().dModel();
        float[][][] out = new float[layers][prompts.length][];
        String[] names = new String[layers];
        for (int l = 0; l < layers; l++) names[l] = "blocks." + l + ".hook_resid_post";
        for (int[] idx : byLength(prompts)) {
            long[][] ids = pick(prompts, idx);
            int last = ids[0].length - 1;
            try (ActivationCache cache = model.runWithCache(Batch.of(ids), NameFilter.of(names))) {
                for (int l = 0; l < layers; l++) {
                    NDArray a = cache.get(names[l]);
                    float[] flat = a.toFloatArray();   // [b, p, d]
                    int p = ids[0].length;
                    for (int b = 0; b < idx.length; b++) {
                        out[l][idx[b]] = Arrays.copyOfRange(flat, (b * p + last) * d, (b * p + last + 1) * d);
                    }
                }
            }
        }
        return out;
    }

    /** Activations at {@code hook} of every position of every sequence, as rows. */
    static float[][] allPositions(HookedTransformer model, String hook, long[][] seqs) {
        int d = model.cfg().dModel();
        List<float[]> rows = new ArrayList<>();
        for (int[] idx : byLength(seqs)) {
            long[][] ids = pick(seqs, idx);
            try (ActivationCache cache = model.runWithCache(Batch.of(ids), NameFilter.of(hook))) {
                float[] flat = cache.get(hook).toFloatArray();
                for (int r = 0; r < flat.length / d; r++) rows.add(Arrays.copyOfRange(flat, r * d, (r + 1) * d));
            }
        }
        return rows.toArray(float[][]::new);
    }

    /** Greedy continuations of the prompts and the logits of each step {@code [prompt][step][vocab]}. */
    record Continuations(long[][] tokens, float[][][] logits) {}

    static Continuations greedy(HookedTransformer model, long[][] prompts, int maxNewTokens, long stopToken) {
        long[][] tokens = new long[prompts.length][];
        float[][][] logits = new float[prompts.length][][];
        Generation.Config cfg = Generation.Config.greedy(maxNewTokens).withStopTokens(stopToken).withLogits(true);
        for (int[] idx : byLength(prompts)) {
            try (Generation.Result r = model.generate(pick(prompts, idx), cfg)) {
                NDArray lg = r.logits();
                Shape s = lg.getShape();
                int steps = (int) s.get(1), v = (int) s.get(2);
                float[] flat = lg.toFloatArray();
                for (int b = 0; b < idx.length; b++) {
                    tokens[idx[b]] = r.tokens()[b];
                    float[][] l = new float[steps][];
                    for (int t = 0; t < steps; t++) l[t] = Arrays.copyOfRange(flat, (b * steps + t) * v, (b * steps + t + 1) * v);
                    logits[idx[b]] = l;
                }
            }
        }
        return new Continuations(tokens, logits);
    }

    /** Next-token logits at every position of each sequence {@code [seq][pos][vocab]}. */
    static float[][][] logits(HookedTransformer model, long[][] seqs) {
        float[][][] out = new float[seqs.length][][];
        for (int[] idx : byLength(seqs)) {
            long[][] ids = pick(seqs, idx);
            try (NDArray lg = model.forward(Batch.of(ids))) {
                Shape s = lg.getShape();
                int p = (int) s.get(1), v = (int) s.get(2);
                float[] flat = lg.toFloatArray();
                for (int b = 0; b < idx.length; b++) {
                    float[][] l = new float[p][];
                    for (int t = 0; t < p; t++) l[t] = Arrays.copyOfRange(flat, (b * p + t) * v, (b * p + t + 1) * v);
                    out[idx[b]] = l;
                }
            }
        }
        return out;
    }

    /** Log-softmax of one row of logits. */
    static double[] logSoftmax(float[] logits) {
        double m = Double.NEGATIVE_INFINITY;
        for (float f : logits) m = Math.max(m, f);
        double sum = 0;
        for (float f : logits) sum += Math.exp(f - m);
        double lse = m + Math.log(sum);
        double[] out = new double[logits.length];
        for (int i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
        return out;
    }

    /** Largest probability and entropy (nats) of one row of logits. */
    static double[] maxProbEntropy(float[] logits) {
        double[] lp = logSoftmax(logits);
        double max = 0, h = 0;
        for (double v : lp) {
            double p = Math.exp(v);
            max = Math.max(max, p);
            if (p > 0) h -= p * v;
        }
        return new double[] {max, h};
    }

    /** A TopK dictionary of {@code dSae} latents trained on {@code rows} (seeded), quietly. */
    static SparseCoder trainSae(float[][] rows, String hook, int dSae, int k, int steps, long seed) {
        SaeTrainConfig cfg = SaeTrainConfig.builder().steps(steps).batchSize(512).seed(seed).build();
        SparseCoder sae = SparseCoder.create(SaeConfig.of(rows[0].length, dSae, new SaeConfig.TopK(k)), seed);
        try (SaeTrainer trainer = SaeTrainer.of(RowSource.of(rows, seed).withHookPoint(hook), cfg).add("sae", sae)) {
            trainer.progress(ProgressSink.none());
            trainer.train();
        }
        return sae;
    }

    /** A seeded permutation of {@code 0..n-1}. */
    static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    static float[][] rows(float[][] all, int[] idx) {
        float[][] out = new float[idx.length][];
        for (int i = 0; i < idx.length; i++) out[i] = all[idx[i]];
        return out;
    }

    static int[] labels(int[] all, int[] idx) {
        int[] out = new int[idx.length];
        for (int i = 0; i < idx.length; i++) out[i] = all[idx[i]];
        return out;
    }

    /** A view from rows over all examples and the three index sets. */
    static UsefulTask.View view(float[][] all, int[][] parts) {
        return new UsefulTask.View(rows(all, parts[0]), rows(all, parts[1]), rows(all, parts[2]));
    }

    static Map<String, String> notes(Object... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put(String.valueOf(kv[i]), String.valueOf(kv[i + 1]));
        return m;
    }
}
