package dev.jlens.corpus;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jlens.model.Tokenizer;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pretokenized shards with the real GPT-2 tokenizer: round trip, manifest, corrupt and missing shards named. */
class TokenShardsTest {

    private static Tokenizer gpt2;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() {
        gpt2 = Tokenizer.load(Fixtures.require("gpt2-tokenizer/tokenizer.json"));
    }

    @AfterAll
    static void close() {
        if (gpt2 != null) gpt2.close();
    }

    private Path corpus(int rows) {
        Path file = tmp.resolve("corpus.parquet");
        Corpus.writeParquet(file, CorpusTest.table(rows));
        return file;
    }

    @Test
    void shardsRoundTripTheWindowsPackingProducesWithAChecksummedManifest() {
        Path file = corpus(300);
        Packing packing = Packing.saeLens(gpt2);
        Path out = tmp.resolve("shards");
        Pretokenize.Result r = Pretokenize.run(Corpus.open(file).texts("text"), file.toString(), "text", gpt2, 16,
                packing, out, 50);

        List<long[]> docs = new ArrayList<>();
        for (String t : CorpusTest.texts(CorpusTest.table(300))) docs.add(gpt2.toTokens(t, false));
        List<long[]> expected = packing.pack(docs, 16);
        long docTokens = docs.stream().mapToLong(d -> d.length).sum();

        TokenShards shards = TokenShards.open(out);
        assertEquals(expected.size(), shards.windows());
        assertEquals(expected.size(), r.windows());
        assertEquals(300, r.rows());
        assertEquals(docTokens, r.documentTokens());
        assertEquals((expected.size() + 49) / 50, shards.shards().size(), "50 windows per shard");
        for (int i = 0; i < expected.size(); i++) assertArrayEquals(expected.get(i), shards.window(i), "window " + i);
        assertEquals(50256L, shards.window(0)[0], "GPT-2's BOS <|endoftext|> begins each window");
        shards.verify();

        JsonNode m = shards.manifest();
        assertEquals(16, m.get("context_size").asInt());
        assertEquals(300, m.get("rows").asLong());
        assertEquals(docTokens, m.get("document_tokens").asLong());
        assertEquals(expected.size() * 16L, m.get("tokens").asLong());
        assertEquals(TokenShards.sha256(gpt2.file()), m.at("/tokenizer/sha256").asText());
        assertEquals(50256, m.at("/packing/begin_batch_token").asLong());
        assertTrue(m.at("/packing/begin_sequence_token").isNull());
        assertEquals(50256, m.at("/packing/separator_token").asLong());
        List<String> names = new ArrayList<>();
        m.get("shards").forEach(s -> names.add(s.get("file").asText()));
        List<String> sorted = new ArrayList<>(names);
        sorted.sort(null);
        assertEquals(sorted, names, "shard names sort in order");
        assertEquals("shard-00000.safetensors", names.get(0));
        assertEquals(64, m.at("/shards/0/sha256").asText().length());
    }

    @Test
    void aCorruptShardAndAMissingShardAreNamed() throws IOException {
        Path file = corpus(200);
        Path out = tmp.resolve("shards");
        Pretokenize.run(Corpus.open(file).texts("text"), "t", "text", gpt2, 16, Packing.saeLens(gpt2), out, 40);
        Path second = out.resolve("shard-00001.safetensors");
        byte[] bytes = Files.readAllBytes(second);
        bytes[bytes.length - 3] ^= 1; // one token id changes; the size does not
        Files.write(second, bytes, StandardOpenOption.TRUNCATE_EXISTING);
        TokenShards shards = TokenShards.open(out);
        assertArrayEquals(shards.window(0), shards.window(0), "the first shard still reads");
        CorpusException e = assertThrows(CorpusException.class, () -> shards.window(45));
        assertTrue(e.getMessage().contains(second.toString()) && e.getMessage().contains("corrupt"), e.getMessage());
        e = assertThrows(CorpusException.class, shards::verify);
        assertTrue(e.getMessage().contains("shard-00001.safetensors"), e.getMessage());

        Files.delete(second);
        e = assertThrows(CorpusException.class, () -> TokenShards.open(out));
        assertTrue(e.getMessage().contains(second.toString()) && e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void pretokenizeRefusesAKeptTailAndWritesNoShardForAnEmptyCorpus() {
        assertThrows(IllegalArgumentException.class, () -> Pretokenize.run(List.of("a").stream(), "t", "text", gpt2, 8,
                Packing.plain().withKeepTail(true), tmp.resolve("x"), 10));
        Pretokenize.Result r = Pretokenize.run(List.of("short").stream(), "t", "text", gpt2, 64,
                Packing.saeLens(gpt2), tmp.resolve("empty"), 10);
        assertEquals(0, r.windows());
        assertEquals(0, TokenShards.open(tmp.resolve("empty")).windows());
    }
}
