package dev.jlens.corpus;

import dev.jlens.io.HfHub;
import dev.jlens.io.HfHubFake;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reading rows and texts from parquet, JSON Lines, CSV and text files, locally and from a (fake) Hub. */
class CorpusTest {

    @TempDir
    Path tmp;

    static List<Map<String, Object>> table(int n) {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("id", (long) i);
            r.put("text", "Document number " + i + " says " + "word ".repeat(i % 7).trim() + ".");
            r.put("score", i / 4.0);
            rows.add(r);
        }
        return rows;
    }

    static List<String> texts(List<Map<String, Object>> rows) {
        return rows.stream().map(r -> (String) r.get("text")).toList();
    }

    private static List<String> read(Corpus c, String column) {
        try (Stream<String> s = c.texts(column)) {
            return s.collect(Collectors.toList());
        }
    }

    @Test
    void parquetStreamsEveryRowInOrderAcrossRowGroupsWithTypedFields() {
        List<Map<String, Object>> rows = table(3000);
        Path file = tmp.resolve("data.parquet");
        Corpus.writeParquet(file, rows, 4096); // small row groups: the reader must walk many
        Corpus c = Corpus.open(file);
        assertEquals(texts(rows), read(c, "text"));
        try (Stream<CorpusRow> s = c.rows()) {
            List<CorpusRow> all = s.toList();
            assertEquals(3000, all.size());
            CorpusRow r = all.get(1234);
            assertEquals(1234L, r.get("id"));
            assertEquals(1234 / 4.0, r.get("score"));
            assertEquals(List.of("id", "text", "score"), List.copyOf(r.columns()));
            assertEquals(1234, r.index());
        }
    }

    @Test
    void jsonlPlainAndGzippedAndJsonArrayReadTheSameRows() throws IOException {
        List<Map<String, Object>> rows = table(50);
        StringBuilder lines = new StringBuilder();
        for (Map<String, Object> r : rows) lines.append(TokenShards.JSON.writer().without(
                com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT).writeValueAsString(r)).append("\n\n");
        Files.writeString(tmp.resolve("a.jsonl"), lines);
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(tmp.resolve("b.jsonl.gz")))) {
            out.write(lines.toString().getBytes(StandardCharsets.UTF_8));
        }
        Files.writeString(tmp.resolve("c.json"), TokenShards.JSON.writeValueAsString(rows));
        for (String name : List.of("a.jsonl", "b.jsonl.gz", "c.json")) {
            Corpus c = Corpus.open(tmp.resolve(name));
            assertEquals(texts(rows), read(c, "text"), name);
            try (Stream<CorpusRow> s = c.rows()) {
                assertEquals(7, ((Number) s.skip(7).findFirst().orElseThrow().get("id")).intValue(), name);
            }
        }
    }

    @Test
    void csvAndTextFilesAndADirectoryInSortedOrder() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("mixed"));
        Files.writeString(dir.resolve("1.csv"), "id,text\n1,\"Hello, world\"\n2,\"two\nlines\"\n");
        Files.writeString(dir.resolve("2.txt"), "first line\n\nsecond line\n");
        Files.writeString(dir.resolve("README.md"), "# not data\n");
        Corpus c = Corpus.open(dir);
        assertEquals(List.of(dir.resolve("1.csv"), dir.resolve("2.txt")), c.files());
        assertEquals(List.of("Hello, world", "two\nlines", "first line", "second line"), read(c, "text"));
        assertEquals(List.of("first line\n\nsecond line\n"), read(Corpus.open(dir.resolve("2.txt"), Format.TEXT_FILE), "text"));
        assertEquals(List.of("1:Hello, world"), Corpus.open(dir.resolve("1.csv"))
                .texts(r -> r.getString("id") + ":" + r.getString("text")).limit(1).toList());
    }

    @Test
    void aMissingColumnNamesTheFileTheRowAndTheColumns() throws IOException {
        Path jsonl = tmp.resolve("rows.jsonl");
        Files.writeString(jsonl, "{\"text\": \"a\"}\n{\"txt\": \"b\"}\n");
        CorpusException e = assertThrows(CorpusException.class, () -> read(Corpus.open(jsonl), "text"));
        assertTrue(e.getMessage().contains("row 1 of " + jsonl), e.getMessage());
        assertTrue(e.getMessage().contains("[txt]"), e.getMessage());

        Path parquet = tmp.resolve("t.parquet");
        Corpus.writeParquet(parquet, table(3));
        e = assertThrows(CorpusException.class, () -> read(Corpus.open(parquet), "txt"));
        assertTrue(e.getMessage().contains(parquet.toString()) && e.getMessage().contains("[id, text, score]")
                && e.getMessage().contains("nearest: text"), e.getMessage());

        Files.writeString(tmp.resolve("bad.jsonl"), "{\"text\": \"a\"}\n{not json\n");
        e = assertThrows(CorpusException.class, () -> read(Corpus.open(tmp.resolve("bad.jsonl")), "text"));
        assertTrue(e.getMessage().contains("line 2 of " + tmp.resolve("bad.jsonl")), e.getMessage());

        e = assertThrows(CorpusException.class, () -> Corpus.open(tmp.resolve("nothing.parquet")));
        assertTrue(e.getMessage().contains("nothing.parquet"), e.getMessage());
    }

    @Test
    void parquetAndJsonlDatasetsFromTheHubLandInTheDatasetsCacheLayoutAndStream() throws IOException {
        List<Map<String, Object>> rows = table(400);
        Path local = tmp.resolve("local");
        Corpus.writeParquet(local.resolve("train-0.parquet"), rows.subList(0, 250), 8192);
        Corpus.writeParquet(local.resolve("train-1.parquet"), rows.subList(250, 400), 8192);
        String jsonl = rows.stream().map(r -> "{\"text\": " + TokenShards.JSON.valueToTree(r.get("text")) + "}")
                .collect(Collectors.joining("\n"));
        Path cache = tmp.resolve("cache");
        try (HfHubFake fake = HfHubFake.start()) {
            fake.dataset("org/stories")
                    .file("README.md", "# stories\n")
                    .lfs("data/train-00000-of-00002.parquet", Files.readAllBytes(local.resolve("train-0.parquet")))
                    .lfs("data/train-00001-of-00002.parquet", Files.readAllBytes(local.resolve("train-1.parquet")));
            fake.dataset("org/lines").file("train.jsonl", jsonl);
            HfHub hub = HfHub.builder().env(Map.of("HF_HUB_CACHE", cache.toString(), "HF_ENDPOINT", fake.endpoint()))
                    .userHome(tmp.resolve("home")).build();

            Corpus stories = Corpus.fromHub(hub, "org/stories", null, List.of("data/*.parquet"));
            assertEquals(2, stories.files().size());
            for (Path f : stories.files()) {
                assertTrue(f.startsWith(cache.resolve("datasets--org--stories").resolve("snapshots")), f.toString());
            }
            assertEquals(texts(rows), read(stories, "text"));

            Corpus lines = Corpus.fromHub(hub, "org/lines", "main", List.of());
            assertEquals(List.of(cache.resolve("datasets--org--lines/snapshots")
                    .resolve(Files.readString(cache.resolve("datasets--org--lines/refs/main"))).resolve("train.jsonl")),
                    lines.files());
            assertEquals(texts(rows), read(lines, "text"));
            // The snapshot directory opens as a corpus too.
            assertEquals(texts(rows), read(Corpus.open(lines.files().get(0).getParent()), "text"));
        }
    }
}
