package dev.jlens.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchCompareTest {

    @TempDir
    Path dir;

    private static final String HEADER = "{\"record\":\"header\",\"name\":\"model\",\"timestamp\":\"%s\","
            + "\"commit\":\"abc1234\",\"cores\":2}";

    private Path save(String name, String timestamp, String... records) throws IOException {
        StringBuilder sb = new StringBuilder(String.format(HEADER, timestamp)).append('\n');
        for (String r : records) {
            sb.append(r).append('\n');
        }
        return Files.writeString(dir.resolve(name), sb.toString());
    }

    private static String forward(int batch, double ms) {
        return "{\"bench\":\"model\",\"metric\":\"forward_djl_threads\",\"value\":" + ms
                + ",\"unit\":\"ms\",\"batch\":" + batch + ",\"threads\":2,\"runs\":5,\"note\":\"run " + ms + "\"}";
    }

    private record Result(int code, String out, String err) {}

    private Result compare(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = BenchCompare.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static String rowOf(String out, String key) {
        return out.lines().filter(l -> l.startsWith(key + " ")).findFirst()
                .orElseThrow(() -> new AssertionError("no row for " + key + " in:\n" + out));
    }

    @Test
    void aSlowerTimingBeyondTheThresholdIsARegression() throws IOException {
        Path a = save("a.jsonl", "t1", forward(1, 10.0), forward(8, 40.0));
        Path b = save("b.jsonl", "t2", forward(1, 12.0), forward(8, 40.4));
        Result r = compare(a.toString(), b.toString());
        assertEquals(BenchCompare.REGRESSED, r.code(), r.out() + r.err());
        assertTrue(rowOf(r.out(), "model forward_djl_threads batch=1 threads=2").contains("+20.0%"), r.out());
        assertTrue(rowOf(r.out(), "model forward_djl_threads batch=1 threads=2").endsWith("REGRESSED"), r.out());
        assertTrue(rowOf(r.out(), "model forward_djl_threads batch=8 threads=2").endsWith("same"), r.out());
        assertTrue(r.out().contains("verdict: REGRESSION (threshold 10%): 1 regressed"), r.out());
    }

    @Test
    void aHigherThresholdAcceptsTheSameChange() throws IOException {
        Path a = save("a.jsonl", "t1", forward(1, 10.0));
        Path b = save("b.jsonl", "t2", forward(1, 12.0));
        Result r = compare("--threshold", "25", a.toString(), b.toString());
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("verdict: no regression (threshold 25%)"), r.out());
    }

    @Test
    void fasterTimingsAndHigherRatesAreImprovements() throws IOException {
        String gflops = "{\"bench\":\"sae\",\"metric\":\"matmul_peak_gflops\",\"value\":%s,\"unit\":\"GFLOP/s\","
                + "\"threads\":2}";
        Path a = save("a.jsonl", "t1", forward(1, 10.0), String.format(gflops, "50.0"));
        Path b = save("b.jsonl", "t2", forward(1, 5.0), String.format(gflops, "80.0"));
        Result r = compare(a.toString(), b.toString());
        assertEquals(0, r.code(), r.out());
        assertTrue(rowOf(r.out(), "model forward_djl_threads batch=1 threads=2").endsWith("improved"), r.out());
        assertTrue(rowOf(r.out(), "sae matmul_peak_gflops threads=2").endsWith("improved"), r.out());

        // The other way round, the rate dropping is a regression too.
        Result back = compare(b.toString(), a.toString());
        assertEquals(BenchCompare.REGRESSED, back.code(), back.out());
        assertTrue(rowOf(back.out(), "sae matmul_peak_gflops threads=2").endsWith("REGRESSED"), back.out());
    }

    @Test
    void recordsInOneRunOnlyAreReportedAndNotJudged() throws IOException {
        String memory = "{\"bench\":\"model\",\"metric\":\"load_peak_rss\",\"value\":%s,\"unit\":\"MB\"}";
        Path a = save("a.jsonl", "t1", forward(1, 10.0), forward(8, 40.0), String.format(memory, "100"));
        Path b = save("b.jsonl", "t2", forward(1, 10.0), String.format(memory, "300"),
                "{\"bench\":\"model\",\"metric\":\"new_metric\",\"value\":1.0,\"unit\":\"ms\"}");
        Result r = compare(a.toString(), b.toString());
        assertEquals(0, r.code(), r.out());
        assertTrue(rowOf(r.out(), "model forward_djl_threads batch=8 threads=2").endsWith("only in A"), r.out());
        assertTrue(rowOf(r.out(), "model new_metric").endsWith("only in B"), r.out());
        assertTrue(rowOf(r.out(), "model load_peak_rss").contains("+200.0%"), r.out()); // shown, not judged
        assertTrue(r.out().contains("1 not timings, 2 in one run only"), r.out());
    }

    @Test
    void aNameComparesItsTwoLatestSavedRuns() throws IOException {
        save("20260101T000000Z-model.jsonl", "t1", forward(1, 100.0));
        Path older = save("20260102T000000Z-model.jsonl", "t2", forward(1, 10.0));
        Path newer = save("20260103T000000Z-model.jsonl", "t3", forward(1, 10.5));
        Files.writeString(dir.resolve("20260104T000000Z-sae.jsonl"),
                "{\"record\":\"header\",\"name\":\"sae\"}\n" + forward(1, 99.0) + "\n");
        assertEquals(List.of(older, newer), BenchCompare.savedRuns(dir, "model").subList(1, 3));
        Result r = compare("--dir", dir.toString(), "model");
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().startsWith("A: " + older + " (timestamp t2, commit abc1234, cores 2)"), r.out());
        assertTrue(r.out().contains("B: " + newer), r.out());
    }

    @Test
    void tooFewSavedRunsOrBadArgumentsAreUsageErrors() throws IOException {
        save("20260101T000000Z-model.jsonl", "t1", forward(1, 100.0));
        Result r = compare("--dir", dir.toString(), "model");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("need two saved runs of 'model'") && r.err().contains("found 1"), r.err());
        assertEquals(2, compare("--bogus").code());
        assertEquals(2, compare(dir.resolve("missing.jsonl").toString(), dir.resolve("gone.jsonl").toString()).code());
    }
}
