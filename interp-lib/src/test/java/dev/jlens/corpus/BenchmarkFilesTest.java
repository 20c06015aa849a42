package dev.jlens.corpus;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GSM8K and MMLU read from fixtures written in each published layout. */
class BenchmarkFilesTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String Q1 = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips to "
            + "her friends in May. How many clips did Natalia sell altogether in April and May?";
    static final String A1 = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 "
            + "clips altogether in April and May.\n#### 72";
    static final String Q2 = "A shop sells 1,000 pens a day. How many pens does it sell in 3 days?";
    static final String A2 = "It sells 1,000*3 = <<1000*3=3000>>3000 pens.\n#### 3,000";

    static Map<String, Object> row(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    @Test
    void gsm8kReadsTheJsonLinesAndTheParquetAlike(@TempDir Path tmp) throws IOException {
        List<Map<String, Object>> rows = List.of(row("question", Q1, "answer", A1), row("question", Q2, "answer", A2));
        Path jsonl = tmp.resolve("test.jsonl");
        Files.writeString(jsonl, JSON.writeValueAsString(rows.get(0)) + "\n" + JSON.writeValueAsString(rows.get(1)) + "\n");
        Path parquet = tmp.resolve("main/test-00000-of-00001.parquet");
        Corpus.writeParquet(parquet, rows);
        for (Path p : List.of(jsonl, parquet)) {
            List<Gsm8k.Problem> ps = Gsm8k.load(p);
            assertEquals(2, ps.size(), p.toString());
            assertEquals(Q1, ps.get(0).question());
            assertEquals("72", ps.get(0).answer());
            assertEquals("3000", ps.get(1).answer(), "thousands separators are normalised");
            assertEquals(A1, ps.get(0).solution());
            assertEquals("Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.",
                    ps.get(0).reasoning());
        }
        assertEquals(2, Gsm8k.toTable(Gsm8k.load(jsonl)).rowCount());
        // graded as cot.Answers reads a model's output
        assertEquals("72", dev.jlens.cot.Answers.requireNumber("... so the total is\n#### 72").value());
    }

    @Test
    void aGsm8kRowWithoutItsFinalAnswerOrColumnIsNamed(@TempDir Path tmp) throws IOException {
        Path bad = tmp.resolve("bad.jsonl");
        Files.writeString(bad, JSON.writeValueAsString(row("question", Q1, "answer", "no marker here")) + "\n");
        CorpusException e = assertThrows(CorpusException.class, () -> Gsm8k.load(bad));
        assertTrue(e.getMessage().contains("####") && e.getMessage().contains("bad.jsonl"), e.getMessage());
        Path noColumn = tmp.resolve("nocol.jsonl");
        Files.writeString(noColumn, JSON.writeValueAsString(row("problem", Q1, "answer", A1)) + "\n");
        CorpusException e2 = assertThrows(CorpusException.class, () -> Gsm8k.load(noColumn));
        assertTrue(e2.getMessage().contains("question"), e2.getMessage());
    }

    @Test
    void mmluReadsHuggingFacesParquetAndTheOriginalCsvAlike(@TempDir Path tmp) throws IOException {
        List<Map<String, Object>> rows = List.of(
                row("question", "Find the degree of Q(sqrt(2)) over Q.", "subject", "abstract_algebra",
                        "choices", List.of("0", "4", "2", "6"), "answer", 2L),
                row("question", "Which bone is in the arm?", "subject", "anatomy",
                        "choices", List.of("Femur", "Humerus", "Tibia", "Fibula"), "answer", 1L));
        Path parquet = tmp.resolve("all/test-00000-of-00001.parquet");
        Corpus.writeParquet(parquet, rows);
        Path csvDir = tmp.resolve("data/test");
        Files.createDirectories(csvDir);
        Files.writeString(csvDir.resolve("abstract_algebra_test.csv"), "Find the degree of Q(sqrt(2)) over Q.,0,4,2,6,C\n");
        Files.writeString(csvDir.resolve("anatomy_test.csv"), "\"Which bone is in the arm?\",Femur,Humerus,Tibia,Fibula,B\n");
        Path jsonl = tmp.resolve("mmlu.jsonl");
        Files.writeString(jsonl, JSON.writeValueAsString(rows.get(0)) + "\n" + JSON.writeValueAsString(rows.get(1)) + "\n");
        for (Path p : List.of(parquet, csvDir, jsonl)) {
            List<Mmlu.Question> qs = Mmlu.load(p);
            assertEquals(2, qs.size(), p.toString());
            assertEquals("abstract_algebra", qs.get(0).subject(), p.toString());
            assertEquals(List.of("0", "4", "2", "6"), qs.get(0).choices());
            assertEquals(2, qs.get(0).answer());
            assertEquals("C", qs.get(0).letter());
            assertEquals("B", qs.get(1).letter());
            assertEquals("anatomy", qs.get(1).subject());
        }
        assertEquals("Which bone is in the arm?\nA. Femur\nB. Humerus\nC. Tibia\nD. Fibula\nAnswer:",
                Mmlu.load(parquet).get(1).prompt());
        assertEquals(List.of("abstract_algebra", "anatomy"), Mmlu.subjects(Mmlu.load(csvDir)));
        assertEquals(2, Mmlu.toTable(Mmlu.load(parquet)).rowCount());
        // the model's letter, read as cot.Answers reads it
        assertEquals("B", dev.jlens.cot.Answers.requireLetter("The answer is (B)", Mmlu.LETTERS).value());
    }

    @Test
    void badMmluRowsAreNamed(@TempDir Path tmp) throws IOException {
        Path five = tmp.resolve("x_test.csv");
        Files.writeString(five, "q,a,b,c,A\n");
        CorpusException e = assertThrows(CorpusException.class, () -> Mmlu.load(five));
        assertTrue(e.getMessage().contains("5 fields") && e.getMessage().contains("x_test.csv"), e.getMessage());
        Path letter = tmp.resolve("y_test.csv");
        Files.writeString(letter, "q,a,b,c,d,E\n");
        CorpusException e2 = assertThrows(CorpusException.class, () -> Mmlu.load(letter));
        assertTrue(e2.getMessage().contains("'E'") && e2.getMessage().contains("A-D"), e2.getMessage());
        Path three = tmp.resolve("three.parquet");
        Corpus.writeParquet(three, List.of(row("question", "q", "choices", List.of("a", "b", "c"), "answer", 0L)));
        CorpusException e3 = assertThrows(CorpusException.class, () -> Mmlu.load(three));
        assertTrue(e3.getMessage().contains("3 entries"), e3.getMessage());
        assertThrows(CorpusException.class, () -> Mmlu.load(tmp.resolve("missing")));
    }
}
