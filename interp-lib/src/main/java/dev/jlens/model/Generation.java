package dev.jlens.model;

import dev.jlens.model.arch.KvCache;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookScope;
import dev.jlens.hook.NameFilter;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Autoregressive generation: greedy, temperature, top-k and top-p sampling with a seeded sampler, stop tokens,
 * a KV cache, left-padded batches of prompts. Hooks attached to the model stay active at every step.
 */
public final class Generation {
    private Generation() {}

    /**
     * Generation settings. {@code temperature == 0} is greedy; {@code topK == 0} and {@code topP == 1} disable those
     * filters. {@code record} selects activations to keep for prompt and generated tokens (null: none).
     */
    public record Config(int maxNewTokens, double temperature, int topK, double topP, long seed, Set<Long> stopTokens,
                         boolean useKvCache, boolean keepLogits, NameFilter record) {
        public Config {
            if (maxNewTokens < 0) throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + maxNewTokens);
            if (temperature < 0) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
            if (topK < 0) throw new IllegalArgumentException("topK must be >= 0 (0 = off), got " + topK);
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
            stopTokens = stopTokens == null ? Set.of() : Set.copyOf(stopTokens);
        }

        /** Greedy decoding of up to {@code maxNewTokens} tokens, with KV cache. */
        public static Config greedy(int maxNewTokens) {
            return new Config(maxNewTokens, 0, 0, 1, 0, Set.of(), true, false, null);
        }

        /** Sampling at {@code temperature}, seeded. */
        public static Config sample(int maxNewTokens, double temperature, long seed) {
            return new Config(maxNewTokens, temperature, 0, 1, seed, Set.of(), true, false, null);
        }

        public Config withTemperature(double t) {
            return new Config(maxNewTokens, t, topK, topP, seed, stopTokens, useKvCache, keepLogits, record);
        }

        public Config withTopK(int k) {
            return new Config(maxNewTokens, temperature, k, topP, seed, stopTokens, useKvCache, keepLogits, record);
        }

        public Config withTopP(double p) {
            return new Config(maxNewTokens, temperature, topK, p, seed, stopTokens, useKvCache, keepLogits, record);
        }

        public Config withSeed(long s) {
            return new Config(maxNewTokens, temperature, topK, topP, s, stopTokens, useKvCache, keepLogits, record);
        }

        /** Stop a sequence after it emits any of these tokens (the stop token is kept in the output). */
        public Config withStopTokens(Long... ids) {
            return new Config(maxNewTokens, temperature, topK, topP, seed, new HashSet<>(Arrays.asList(ids)), useKvCache,
                    keepLogits, record);
        }

        public Config withKvCache(boolean on) {
            return new Config(maxNewTokens, temperature, topK, topP, seed, stopTokens, on, keepLogits, record);
        }

        /** Keep the logits of every step (see {@link Result#logits()}). */
        public Config withLogits(boolean keep) {
            return new Config(maxNewTokens, temperature, topK, topP, seed, stopTokens, useKvCache, keep, record);
        }

        /** Record the selected activations over prompt and generated tokens (see {@link Result#activations()}). */
        public Config recording(NameFilter filter) {
            return new Config(maxNewTokens, temperature, topK, topP, seed, stopTokens, useKvCache, keepLogits, filter);
        }
    }

    /**
     * What generation produced: the new tokens of each prompt (up to and including a stop token), their text when
     * the model has a tokenizer, and optionally the step logits and recorded activations. Close it to free those.
     */
    public static final class Result implements AutoCloseable {
        private final long[][] prompts;
        private final long[][] tokens;
        private final List<String> texts;
        private final NDManager manager;
        private final NDArray logits;
        private final Map<String, NDArray> activations;

        Result(long[][] prompts, long[][] tokens, List<String> texts, NDManager manager, NDArray logits,
               Map<String, NDArray> activations) {
            this.prompts = prompts;
            this.tokens = tokens;
            this.texts = texts;
            this.manager = manager;
            this.logits = logits;
            this.activations = activations;
        }

        /** Generated ids per prompt (without the prompt). */
        public long[][] tokens() {
            return tokens;
        }

        /** Generated ids of the first prompt. */
        public long[] first() {
            return tokens[0];
        }

        /** Prompt followed by generated ids, per prompt. */
        public long[][] sequences() {
            long[][] out = new long[prompts.length][];
            for (int b = 0; b < prompts.length; b++) {
                out[b] = Arrays.copyOf(prompts[b], prompts[b].length + tokens[b].length);
                System.arraycopy(tokens[b], 0, out[b], prompts[b].length, tokens[b].length);
            }
            return out;
        }

        /** Decoded generated text per prompt (empty list without a tokenizer). */
        public List<String> texts() {
            return texts;
        }

        /** Logits of every step {@code [batch, steps, d_vocab]} (with {@code Config.withLogits(true)}). */
        public NDArray logits() {
            if (logits == null) throw new IllegalStateException("generate with config.withLogits(true) to keep logits");
            return logits;
        }

        /**
         * Recorded activations over the padded prompt and every generated position, concatenated along the position
         * axis ({@code [batch, prompt_len + steps - 1, ...]}: the last token is sampled, never fed); attention patterns are kept per step under
         * {@code name + "@step"}.
         */
        public Map<String, NDArray> activations() {
            return activations;
        }

        @Override
        public void close() {
            manager.close();
        }

        @Override
        public String toString() {
            return "Generation.Result(" + tokens.length + " sequences, " + (texts.isEmpty()
                    ? Arrays.toString(tokens[0]) : texts.get(0)) + ")";
        }
    }

    static Result run(HookedTransformer model, String prompt, Config config) {
        return run(model, new long[][] {model.toTokens(prompt)}, config);
    }

    static Result run(HookedTransformer model, long[][] prompts, Config config) {
        int b = prompts.length;
        long pad = model.tokenizer().map(Tokenizer::padTokenId).orElse(0L);
        Batch batch = Batch.leftPadded(prompts, pad);
        NDManager resultManager = model.manager().newSubManager();
        Map<String, List<NDArray>> recorded = new LinkedHashMap<>();
        List<Hook> recorders = new ArrayList<>();
        if (config.record() != null) {
            for (String name : model.hookNames()) {
                if (!config.record().test(name)) continue;
                boolean positional = !name.endsWith("hook_pattern") && !name.endsWith("hook_attn_scores");
                recorders.add(Hook.fwd(name, (act, hp) -> {
                    // Without a KV cache every step reruns the whole sequence: keep only the new position.
                    boolean onlyLast = !config.useKvCache() && positional && recorded.containsKey(name);
                    NDArray copy = onlyLast ? act.get(":, -1:").duplicate() : act.duplicate();
                    NDScope.unregister(copy);
                    copy.attach(resultManager);
                    recorded.computeIfAbsent(name, k -> new ArrayList<>()).add(copy);
                    return null;
                }));
            }
        }
        long[][] out = new long[b][config.maxNewTokens()];
        int[] produced = new int[b];
        boolean[] done = new boolean[b];
        SplittableRandom rnd = new SplittableRandom(config.seed());
        List<float[][]> stepLogits = new ArrayList<>();
        long[][] ids = batch.ids();
        boolean[][] mask = batch.mask();
        try (HookScope recording = model.hooks(recorders.toArray(Hook[]::new));
             KvCache cache = config.useKvCache() ? model.newKvCache() : null) {
            Batch step = batch;
            for (int t = 0; t < config.maxNewTokens(); t++) {
                if (Thread.currentThread().isInterrupted()) throw new GenerationInterruptedException(t);
                float[][] last;
                try (NDScope scope = new NDScope()) {
                    NDArray logits = cache != null ? model.forward(step, cache) : model.forward(Batch.of(ids, mask));
                    long p = logits.getShape().get(1);
                    NDArray lastBV = logits.get(":, " + (p - 1) + ", :");
                    float[] flat = lastBV.toFloatArray();
                    int v = (int) lastBV.getShape().get(1);
                    last = new float[b][];
                    for (int r = 0; r < b; r++) last[r] = Arrays.copyOfRange(flat, r * v, (r + 1) * v);
                }
                if (config.keepLogits()) stepLogits.add(last);
                long[] next = new long[b];
                for (int r = 0; r < b; r++) {
                    next[r] = done[r] ? pad : sample(last[r], config, rnd);
                    if (!done[r]) {
                        out[r][produced[r]++] = next[r];
                        if (config.stopTokens().contains(next[r])) done[r] = true;
                    }
                }
                ids = append(ids, next);
                mask = appendTrue(mask);
                step = Batch.of(column(next), trueColumn(b));
                boolean all = true;
                for (boolean d : done) all &= d;
                if (all) break;
            }
        } catch (RuntimeException e) {
            resultManager.close();
            throw e;
        }
        long[][] tokens = new long[b][];
        for (int r = 0; r < b; r++) tokens[r] = Arrays.copyOf(out[r], produced[r]);
        List<String> texts = new ArrayList<>();
        model.tokenizer().ifPresent(tok -> {
            for (long[] row : tokens) texts.add(tok.decode(row));
        });
        NDArray logits = null;
        if (config.keepLogits() && !stepLogits.isEmpty()) {
            int steps = stepLogits.size(), v = stepLogits.get(0)[0].length;
            float[] flat = new float[b * steps * v];
            for (int s = 0; s < steps; s++) {
                for (int r = 0; r < b; r++) System.arraycopy(stepLogits.get(s)[r], 0, flat, (r * steps + s) * v, v);
            }
            logits = resultManager.create(flat, new Shape(b, steps, v));
        }
        Map<String, NDArray> acts = new LinkedHashMap<>();
        recorded.forEach((name, parts) -> joinSteps(name, parts, acts, resultManager));
        return new Result(prompts, tokens, texts, resultManager, logits, acts);
    }

    /** Joins per-step activations along positions; per-step shapes that cannot be joined stay a list. */
    private static void joinSteps(String name, List<NDArray> parts, Map<String, NDArray> acts, NDManager m) {
        boolean positional = !name.endsWith("hook_pattern") && !name.endsWith("hook_attn_scores");
        if (positional && parts.size() > 0 && parts.get(0).getShape().dimension() >= 2) {
            NDArray joined = NDArrays.concat(new NDList(parts), 1);
            NDScope.unregister(joined);
            joined.attach(m);
            acts.put(name, joined);
        } else {
            for (int i = 0; i < parts.size(); i++) acts.put(name + "@" + i, parts.get(i));
        }
    }

    /**
     * Picks the next token from one row of logits as {@link #run} does: the argmax when {@code c.temperature() == 0}
     * (no draw), else one {@code rnd.nextDouble()} against the temperature-scaled, top-k and top-p filtered
     * distribution. Public so that methods sampling many rows (resampling) give each row its own generator and
     * reproduce, token for token, what {@code generate} draws for that row alone with the same seed.
     */
    public static long sample(float[] logits, Config c, SplittableRandom rnd) {
        if (c.temperature() == 0) {
            int best = 0;
            for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
            return best;
        }
        int n = logits.length;
        int[] order = descendingOrder(logits);
        int keep = c.topK() > 0 ? Math.min(c.topK(), n) : n;
        double max = logits[order[0]] / c.temperature();
        double[] probs = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            probs[i] = Math.exp(logits[order[i]] / c.temperature() - max);
            sum += probs[i];
        }
        if (c.topP() < 1) {
            double cum = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++) {
                cum += probs[i] / sum;
                if (cum >= c.topP()) {
                    cut = i + 1;
                    break;
                }
            }
            keep = cut;
            sum = 0;
            for (int i = 0; i < keep; i++) sum += probs[i];
        }
        double u = rnd.nextDouble() * sum;
        for (int i = 0; i < keep; i++) {
            u -= probs[i];
            if (u <= 0) return order[i];
        }
        return order[keep - 1];
    }

    /**
     * Indices of {@code logits} from the largest value down, ties by index: the order of a stable sort by
     * {@code Float.compare}, computed as one primitive sort of (value, index) keys instead of boxed comparisons.
     */
    static int[] descendingOrder(float[] logits) {
        int n = logits.length;
        long[] keys = new long[n];
        for (int i = 0; i < n; i++) {
            int bits = Float.floatToIntBits(logits[i]);
            bits ^= (bits >> 31) & 0x7fffffff;   // as ints, ordered as Float.compare orders the floats
            keys[i] = ((long) ~bits << 32) | i;   // ascending keys: descending values, then ascending index
        }
        Arrays.sort(keys);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = (int) keys[i];
        return order;
    }

    private static long[][] append(long[][] ids, long[] next) {
        long[][] out = new long[ids.length][];
        for (int r = 0; r < ids.length; r++) {
            out[r] = Arrays.copyOf(ids[r], ids[r].length + 1);
            out[r][ids[r].length] = next[r];
        }
        return out;
    }

    private static boolean[][] appendTrue(boolean[][] mask) {
        boolean[][] out = new boolean[mask.length][];
        for (int r = 0; r < mask.length; r++) {
            out[r] = Arrays.copyOf(mask[r], mask[r].length + 1);
            out[r][mask[r].length] = true;
        }
        return out;
    }

    private static long[][] column(long[] v) {
        long[][] out = new long[v.length][1];
        for (int r = 0; r < v.length; r++) out[r][0] = v[r];
        return out;
    }

    private static boolean[][] trueColumn(int b) {
        boolean[][] out = new boolean[b][1];
        for (boolean[] row : out) row[0] = true;
        return out;
    }

    /** Generation stopped because the thread was interrupted (e.g. a notebook cell interrupt). */
    public static final class GenerationInterruptedException extends RuntimeException {
        public GenerationInterruptedException(int step) {
            super("generation interrupted after " + step + " tokens");
        }
    }
}
