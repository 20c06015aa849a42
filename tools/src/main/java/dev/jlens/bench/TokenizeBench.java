package dev.jlens.bench;

import dev.jlens.model.Tokenizer;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code lab bench tokenize}: tokens per second of a real tokenizer (GPT-2's, from the shared fixtures, unless
 * {@code --tokenizer} names another) over generated stories, encoding without special tokens as pretokenizing does,
 * on 1 and 2 threads (the texts split between the threads). One JSON line per thread count; the 2-thread line's
 * baseline is the 1-thread figure.
 */
public final class TokenizeBench {

    /** The benchmark's name. */
    public static final String NAME = "tokenize";

    private TokenizeBench() {}

    /** Settings: tokenizer file or directory (empty: find the GPT-2 fixture), texts, runs, warmup, thread counts. */
    public record Options(Path tokenizer, int texts, int runs, int warmup, List<Integer> threads) {}

    /** Where the GPT-2 tokenizer fixture is: -Djlens.fixtures, else shared/fixtures beside a parent of the working dir. */
    public static Path findGpt2Tokenizer() {
        List<Path> tried = new ArrayList<>();
        String fixtures = System.getProperty("jlens.fixtures");
        if (fixtures != null) tried.add(Path.of(fixtures, "gpt2-tokenizer"));
        String root = System.getProperty("jlens.root");
        if (root != null) tried.add(Path.of(root).toAbsolutePath().resolveSibling("shared/fixtures/gpt2-tokenizer"));
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            tried.add(d.resolve("../shared/fixtures/gpt2-tokenizer").normalize());
        }
        for (Path p : tried) {
            if (Files.isRegularFile(p.resolve("tokenizer.json"))) return p;
        }
        throw new IllegalStateException("cannot find the GPT-2 tokenizer fixture (tried " + tried.subList(0,
                Math.min(4, tried.size())) + "); pass --tokenizer DIR or -Djlens.fixtures");
    }

    /** Runs the benchmark, one JSON line per thread count on {@code out}. */
    public static void run(Options o, PrintStream out, PrintStream err) throws Exception {
        Path tokPath = o.tokenizer() != null ? o.tokenizer() : findGpt2Tokenizer();
        List<String> texts = SampleCorpus.stories(o.texts(), 1);
        BenchReport report = new BenchReport(NAME, out);
        try (Tokenizer tok = Tokenizer.load(tokPath)) {
            long tokens = 0;
            long bytes = 0;
            for (String t : texts) {
                tokens += tok.toTokens(t, false).length;
                bytes += t.length();
            }
            err.printf("bench tokenize: %d texts, %d tokens, %d characters, %s%n", texts.size(), tokens, bytes, tok);
            Double single = null;
            for (int threads : o.threads()) {
                ExecutorService pool = Executors.newFixedThreadPool(threads);
                try {
                    for (int i = 0; i < o.warmup(); i++) encodeAll(tok, texts, threads, pool);
                    double[] rates = new double[o.runs()];
                    for (int i = 0; i < o.runs(); i++) {
                        long t0 = System.nanoTime();
                        long n = encodeAll(tok, texts, threads, pool);
                        rates[i] = n / ((System.nanoTime() - t0) / 1e9);
                    }
                    Arrays.sort(rates);
                    double median = rates[rates.length / 2];
                    report.emit("tokens_per_second", median, "tokens/s", threads == 1 ? null : single,
                            BenchReport.extra(null, threads, o.runs(), null, null, "GPT-2 tokenizer, "
                                    + texts.size() + " generated stories (" + tokens + " tokens), median of runs; "
                                    + "baseline = 1 thread"));
                    if (threads == 1) single = median;
                } finally {
                    pool.shutdownNow();
                }
            }
        }
    }

    private static long encodeAll(Tokenizer tok, List<String> texts, int threads, ExecutorService pool) throws Exception {
        List<Future<Long>> parts = new ArrayList<>();
        int per = (texts.size() + threads - 1) / threads;
        for (int t = 0; t < threads; t++) {
            List<String> part = texts.subList(Math.min(texts.size(), t * per), Math.min(texts.size(), (t + 1) * per));
            parts.add(pool.submit(() -> {
                long n = 0;
                for (String s : part) n += tok.toTokens(s, false).length;
                return n;
            }));
        }
        long n = 0;
        for (Future<Long> f : parts) n += f.get();
        return n;
    }
}
