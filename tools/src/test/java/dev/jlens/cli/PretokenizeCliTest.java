package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.corpus.Corpus;
import dev.jlens.corpus.Packing;
import dev.jlens.corpus.TokenShards;
import dev.jlens.io.Safetensors;
import dev.jlens.model.Tokenizer;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lab pretokenize} end to end on a parquet file the test writes, with the real GPT-2 tokenizer. */
class PretokenizeCliTest {

    @TempDir
    Path tmp;

    private Path parquet(List<String> texts) {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (String t : texts) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("text", t);
            r.put("n", t.length());
            rows.add(r);
        }
        Path file = tmp.resolve("in/train.parquet");
        Corpus.writeParquet(file, rows);
        return file;
    }

    @Test
    void writesShardsAndAManifestThatMatchPackingTheTexts() throws IOException {
        List<String> texts = dev.jlens.bench.SampleCorpus.stories(120, 3);
        Path file = parquet(texts);
        Path tok = Fixtures.require("gpt2-tokenizer");
        Path out = tmp.resolve("out");
        LabTest.Run r = LabTest.lab("pretokenize", "--dataset", file.getParent().toString(), "--column", "text",
                "--tokenizer", tok.toString(), "--context", "32", "--separator-token", "none", "--out", out.toString(),
                "--windows-per-shard", "64");
        assertEquals(0, r.code(), r.err());
        JsonNode line = new ObjectMapper().readTree(r.out().strip());

        List<long[]> expected;
        try (Tokenizer gpt2 = Tokenizer.load(tok)) {
            List<long[]> docs = new ArrayList<>();
            for (String t : texts) docs.add(gpt2.toTokens(t, false));
            expected = Packing.saeLens(gpt2).withSeparatorToken(OptionalLong.empty()).pack(docs, 32);
            assertEquals(docs.stream().mapToLong(d -> d.length).sum(), line.get("document_tokens").asLong());
        }
        assertEquals(120, line.get("rows").asLong());
        assertEquals(expected.size(), line.get("windows").asLong());
        assertEquals(expected.size() * 32L, line.get("tokens").asLong());

        List<String> files;
        try (var s = Files.list(out)) {
            files = s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors")).sorted().toList();
        }
        assertEquals((expected.size() + 63) / 64, files.size());
        assertEquals("shard-00000.safetensors", files.get(0));
        List<long[]> read = new ArrayList<>();
        for (String f : files) {
            try (Safetensors st = Safetensors.open(out.resolve(f))) {
                assertEquals("I64", st.info("input_ids").dtype().name());
                long[] shape = st.info("input_ids").shape();
                assertEquals(32, shape[1]);
                long[] ids = st.loadLongs("input_ids");
                for (int w = 0; w < shape[0]; w++) read.add(java.util.Arrays.copyOfRange(ids, w * 32, (w + 1) * 32));
            }
        }
        assertEquals(expected.size(), read.size());
        for (int i = 0; i < read.size(); i++) assertArrayEquals(expected.get(i), read.get(i), "window " + i);

        JsonNode m = TokenShards.open(out).manifest();
        assertEquals(50256, m.at("/packing/begin_batch_token").asLong());
        assertTrue(m.at("/packing/separator_token").isNull());
        assertEquals(TokenShards.sha256(tok.resolve("tokenizer.json")), m.at("/tokenizer/sha256").asText());
        assertEquals(TokenShards.sha256(out.resolve(files.get(0))), m.at("/shards/0/sha256").asText());
        assertTrue(r.err().contains("rows/s") && r.err().contains("tokens/s"), "progress shows rates: " + r.err());
    }

    @Test
    void badFlagsAreUsageErrorsAndAMissingColumnIsNamed() {
        Path file = parquet(List.of("one text", "another"));
        String tok = Fixtures.require("gpt2-tokenizer").toString();
        String out = tmp.resolve("o").toString();
        LabTest.Run r = LabTest.lab("pretokenize", "--dataset", file.toString(), "--tokenizer", tok, "--context", "16",
                "--begin-batch-token", "bos", "--out", out);
        assertEquals(Lab.USAGE, r.code());
        assertTrue(r.err().contains("--begin-batch-token must be a token id or none"), r.err());

        r = LabTest.lab("pretokenize", "--dataset", file.toString(), "--column", "body", "--tokenizer", tok,
                "--context", "16", "--out", out);
        assertEquals(Lab.FAILED, r.code());
        assertTrue(r.err().contains("'body'") && r.err().contains("[text, n]"), r.err());
    }
}
