package dev.jlens.harvest;

import dev.jlens.corpus.TokenShards;
import dev.jlens.model.HookedTransformer;
import dev.jlens.store.ActivationStore;
import dev.jlens.store.CachedStore;
import dev.jlens.store.PartitionedCache;
import dev.jlens.store.StreamingStore;
import dev.jlens.store.TokenBatches;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Activation harvesting as a Spark job: the driver plans the cache over pretokenized token shards
 * ({@link PartitionedCache#plan}), each Spark task writes one part's activation shards with a model its executor
 * keeps loaded ({@link ModelPool}), and the driver writes the one manifest when every task has succeeded. The result
 * is the directory {@code store.cache(out, rows)} writes in one process, byte for byte, so
 * {@link ActivationStore#open(Path, long)} and the SAE trainer read it as they read a local cache.
 *
 * <p>The model, token and output directories must be paths that the driver and every executor see (a local disk in
 * local mode; a shared file system such as NFS on a cluster).
 */
public final class Harvest {

    private Harvest() {}

    /**
     * What to harvest: hook {@code hook} of the model in {@code model} over the token shards in {@code tokens},
     * {@code windowsPerBatch} windows per forward pass, into the new cache {@code out}. {@code rows} 0 takes every row;
     * {@code rowsPerShard} 0 makes shards of about 64 MiB; {@code partitions} 0 makes twice Spark's default
     * parallelism; at most one part per shard.
     */
    public record Request(Path model, Path tokens, String hook, Path out, int windowsPerBatch, long rows,
            int rowsPerShard, int partitions, boolean excludeBos, int normSamples) {

        /** Checks the numbers; paths are checked by {@link #check()}. */
        public Request {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(tokens, "tokens");
            Objects.requireNonNull(hook, "hook");
            Objects.requireNonNull(out, "out");
            model = model.toAbsolutePath().normalize();
            tokens = tokens.toAbsolutePath().normalize();
            out = out.toAbsolutePath().normalize();
            if (windowsPerBatch < 1) throw new IllegalArgumentException("windowsPerBatch must be >= 1, got " + windowsPerBatch);
            if (rows < 0) throw new IllegalArgumentException("rows must be >= 1, or 0 for every row; got " + rows);
            if (rowsPerShard < 0) {
                throw new IllegalArgumentException("rowsPerShard must be >= 1, or 0 for about 64 MiB; got " + rowsPerShard);
            }
            if (partitions < 0) {
                throw new IllegalArgumentException("partitions must be >= 1, or 0 for twice Spark's parallelism; got "
                        + partitions);
            }
            if (normSamples < 1) throw new IllegalArgumentException("normSamples must be >= 1, got " + normSamples);
        }

        /** Every row, 8 windows per batch, ~64 MiB shards, BOS excluded, the scale from 16,384 rows. */
        public static Request of(Path model, Path tokens, String hook, Path out) {
            return new Request(model, tokens, hook, out, 8, 0, 0, 0, true,
                    ActivationStore.Options.defaults().normSamples());
        }

        /** The same request with {@code n} rows per shard. */
        public Request withRowsPerShard(int n) {
            return new Request(model, tokens, hook, out, windowsPerBatch, rows, n, partitions, excludeBos, normSamples);
        }

        /** The same request in {@code n} parts. */
        public Request withPartitions(int n) {
            return new Request(model, tokens, hook, out, windowsPerBatch, rows, rowsPerShard, n, excludeBos, normSamples);
        }

        /** The same request with {@code n} windows per forward pass. */
        public Request withWindowsPerBatch(int n) {
            return new Request(model, tokens, hook, out, n, rows, rowsPerShard, partitions, excludeBos, normSamples);
        }

        /** The same request with the scale estimated from {@code n} rows. */
        public Request withNormSamples(int n) {
            return new Request(model, tokens, hook, out, windowsPerBatch, rows, rowsPerShard, partitions, excludeBos, n);
        }

        /**
         * Fails fast, before any Spark work, on a model directory without {@code config.json}, a token directory
         * that is not token shards, tokens from a tokenizer with more ids than the model has, windows longer than
         * the model's context, an unknown hook (naming the nearest hook points) or an output directory that is not
         * empty.
         */
        public void check() {
            if (!Files.isDirectory(model)) {
                throw new IllegalArgumentException("model directory " + model + " does not exist (give a directory with "
                        + "config.json and model.safetensors, e.g. data/models/tinylang-4l)");
            }
            if (!Files.isRegularFile(model.resolve("config.json"))) {
                throw new IllegalArgumentException("model directory " + model + " has no config.json: not a model "
                        + "directory (e.g. data/models/tinylang-4l, or a Hugging Face snapshot)");
            }
            TokenShards shards = TokenShards.open(tokens); // names what is missing
            if (Files.exists(out)) {
                if (!Files.isDirectory(out)) {
                    throw new IllegalArgumentException("output " + out + " is a file; give a new or empty directory");
                }
                try (Stream<Path> s = Files.list(out)) {
                    List<String> there = s.limit(3).map(p -> p.getFileName().toString()).toList();
                    if (!there.isEmpty()) {
                        throw new IllegalArgumentException("output directory " + out + " is not empty (it holds "
                                + String.join(", ", there) + (there.size() == 3 ? ", ..." : "") + "): harvest writes "
                                + "a new cache; give a new or empty directory");
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot list " + out, e);
                }
            }
            try (ModelPool.Lease lease = ModelPool.borrow(model)) {
                HookedTransformer m = lease.model();
                if (shards.contextSize() > m.cfg().nCtx()) {
                    throw new IllegalArgumentException("the token windows in " + tokens + " are " + shards.contextSize()
                            + " tokens, longer than the context of " + model.getFileName() + ", " + m.cfg().nCtx()
                            + "; pretokenize with --context " + m.cfg().nCtx() + " or less");
                }
                int vocab = m.cfg().dVocab();
                long tokenizerVocab = shards.manifest().path("tokenizer").path("vocab_size").asLong(0);
                long maxId = shards.windows() == 0 ? 0 : Arrays.stream(shards.windows(0, 1)[0]).max().orElse(0);
                if (tokenizerVocab > vocab || maxId >= vocab) {
                    throw new IllegalArgumentException("the tokens in " + tokens + " do not fit " + model.getFileName()
                            + ", whose vocabulary has " + vocab + " ids: they come from a tokenizer of "
                            + tokenizerVocab + " ids (the first window's largest id is " + maxId + "); pretokenize "
                            + "with this model's tokenizer (--tokenizer " + model + ")");
                }
                m.hook(hook); // an unknown name throws, naming the nearest hook points
            }
        }

        /** A streaming store over this request's tokens for {@code model}: what every part and the driver build. */
        StreamingStore store(HookedTransformer m) {
            ActivationStore.Builder b = ActivationStore.builder().source(m, hook)
                    .tokens(TokenBatches.fromShards(tokens, windowsPerBatch))
                    .excludeBos(excludeBos).normSamples(normSamples);
            return (rowsPerShard > 0 ? b.rowsPerShard(rowsPerShard) : b).build();
        }
    }

    /**
     * What a harvest did: {@code rows} rows in {@code shards} shards written by {@code parts} tasks from
     * {@code tokens} token positions; {@code seconds} of wall time, {@code taskSeconds} summed over the tasks;
     * {@code modelLoads} model loads over {@code jvms} executor JVMs.
     */
    public record Report(Path out, long rows, int width, int shards, int parts, long tokens, double seconds,
            double taskSeconds, int modelLoads, int jvms, double normalizationScale) {

        /** Rows per second of wall time. */
        public double rowsPerSecond() {
            return rows / seconds;
        }

        /** Rows per second of one task, i.e. per core when each task has one core (one PyTorch thread). */
        public double rowsPerTaskSecond() {
            return rows / taskSeconds;
        }

        /** Token positions fed to the model per second of one task. */
        public double tokensPerTaskSecond() {
            return tokens / taskSeconds;
        }

        /** The report as one flat JSON-ready map. */
        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("out", out.toString());
            m.put("rows", rows);
            m.put("width", width);
            m.put("shards", shards);
            m.put("parts", parts);
            m.put("tokens", tokens);
            m.put("seconds", round(seconds));
            m.put("task_seconds", round(taskSeconds));
            m.put("rows_per_s", round(rowsPerSecond()));
            m.put("rows_per_task_s", round(rowsPerTaskSecond()));
            m.put("tokens_per_task_s", round(tokensPerTaskSecond()));
            m.put("model_loads", modelLoads);
            m.put("executor_jvms", jvms);
            m.put("normalization_scale", normalizationScale);
            return m;
        }

        private static double round(double x) {
            return Math.round(x * 100) / 100.0;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "Harvest(%,d rows x %d in %d shards by %d tasks, %.1f s: %,.0f rows/s; "
                    + "per task %,.0f rows/s, %,.0f tokens/s; %d model loads in %d JVMs)", rows, width, shards, parts,
                    seconds, rowsPerSecond(), rowsPerTaskSecond(), tokensPerTaskSecond(), modelLoads, jvms);
        }
    }

    /** What one task sends back: its part's result, which JVM ran it and whether it loaded the model. */
    record TaskResult(PartitionedCache.PartResult part, String jvm, boolean loadedModel) implements Serializable {
        private static final long serialVersionUID = 1L;
    }

    /** The task: one part, written with a pooled model. It carries the request as strings (paths do not serialize). */
    private static final class WritePart implements Function<PartitionedCache.Part, TaskResult> {
        private static final long serialVersionUID = 1L;
        private final String model, tokens, hook, out;
        private final int windowsPerBatch, rowsPerShard, normSamples;
        private final boolean excludeBos;

        WritePart(Request r) {
            this.model = r.model().toString();
            this.tokens = r.tokens().toString();
            this.hook = r.hook();
            this.out = r.out().toString();
            this.windowsPerBatch = r.windowsPerBatch();
            this.rowsPerShard = r.rowsPerShard();
            this.normSamples = r.normSamples();
            this.excludeBos = r.excludeBos();
        }

        @Override
        public TaskResult call(PartitionedCache.Part part) {
            Request request = new Request(Path.of(model), Path.of(tokens), hook, Path.of(out), windowsPerBatch, 0,
                    rowsPerShard, 0, excludeBos, normSamples);
            try (ModelPool.Lease lease = ModelPool.borrow(request.model());
                 StreamingStore store = request.store(lease.model())) {
                return new TaskResult(PartitionedCache.write(store, request.out(), part),
                        ManagementFactory.getRuntimeMXBean().getName(), lease.loaded());
            }
        }
    }

    /** Runs the harvest on {@code sc} (checks the request first) and returns what it did. */
    public static Report run(JavaSparkContext sc, Request request) {
        Objects.requireNonNull(sc, "sc");
        request.check();
        long start = System.nanoTime();
        int parts = request.partitions() > 0 ? request.partitions() : 2 * sc.defaultParallelism();
        PartitionedCache.Plan plan;
        // The driver's model goes back to the pool before the tasks run: in local mode they reuse it.
        try (ModelPool.Lease lease = ModelPool.borrow(request.model());
             StreamingStore store = request.store(lease.model())) {
            plan = request.rows() > 0 ? PartitionedCache.plan(store, request.rows(), parts)
                    : PartitionedCache.plan(store, parts);
        }
        List<TaskResult> results = sc.parallelize(plan.parts(), plan.parts().size())
                .map(new WritePart(request)).collect();
        List<PartitionedCache.PartResult> partResults = new ArrayList<>();
        Set<String> jvms = new HashSet<>();
        int loads = 0;
        long tokens = 0;
        double taskSeconds = 0;
        for (TaskResult r : results) {
            partResults.add(r.part());
            jvms.add(r.jvm());
            if (r.loadedModel()) loads++;
            tokens += r.part().tokens();
            taskSeconds += r.part().seconds();
        }
        double scale;
        int width;
        try (ModelPool.Lease lease = ModelPool.borrow(request.model());
             StreamingStore store = request.store(lease.model());
             CachedStore cache = PartitionedCache.finish(store, request.out(), plan, partResults)) {
            scale = cache.normalizationScale();
            width = cache.width();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return new Report(request.out(), plan.rows(), width, plan.shards(), plan.parts().size(), tokens, seconds,
                taskSeconds, loads, jvms.size(), scale);
    }
}
