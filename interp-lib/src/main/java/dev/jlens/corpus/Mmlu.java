package dev.jlens.corpus;

import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVParser;
import org.apache.commons.csv.CSVRecord;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * MMLU (Hendrycks et al. 2021) from its published files, in either layout:
 * <ul>
 *   <li>Hugging Face's {@code cais/mmlu} parquet (or JSON Lines with the same fields): columns {@code question},
 *       {@code subject}, {@code choices} (a list of four strings) and {@code answer} (0-3, the class label of A-D;
 *       a letter is accepted too);</li>
 *   <li>the original CSV files ({@code data/test/abstract_algebra_test.csv}, ...): no header, six fields per row
 *       (question, the four choices, the answer letter), the subject in the file name before
 *       {@code _test}/{@code _val}/{@code _dev}.</li>
 * </ul>
 * A directory may hold either; CSV files are read as the original layout.
 */
public final class Mmlu {
    /** The choice letters, in order. */
    public static final String LETTERS = "ABCD";

    private Mmlu() {}

    /** One question: its subject, text, the four choices and the index (0-3) of the right one. */
    public record Question(String subject, String question, List<String> choices, int answer) {
        public Question {
            Objects.requireNonNull(subject, "subject");
            Objects.requireNonNull(question, "question");
            choices = List.copyOf(choices);
            if (choices.size() != 4) {
                throw new IllegalArgumentException("an MMLU question has 4 choices, got " + choices.size() + ": " + choices);
            }
            if (answer < 0 || answer > 3) throw new IllegalArgumentException("answer is 0-3 (A-D), got " + answer);
        }

        /** The right choice's letter, A-D. */
        public String letter() {
            return String.valueOf(LETTERS.charAt(answer));
        }

        /**
         * The question as the usual zero-shot prompt: the question, the choices as {@code A. ...} lines and
         * {@code Answer:} (the model's next token is graded against {@link #letter()}).
         */
        public String prompt() {
            StringBuilder s = new StringBuilder(question.strip()).append('\n');
            for (int i = 0; i < 4; i++) s.append(LETTERS.charAt(i)).append(". ").append(choices.get(i).strip()).append('\n');
            return s.append("Answer:").toString();
        }
    }

    /** Every question of a file or a directory (parquet, JSON Lines, or the original CSV files), in order. */
    public static List<Question> load(Path fileOrDir) {
        Objects.requireNonNull(fileOrDir, "fileOrDir");
        if (!Files.exists(fileOrDir)) throw new CorpusException("no such file or directory: " + fileOrDir);
        List<Path> csv;
        try (Stream<Path> walk = Files.isDirectory(fileOrDir) ? Files.walk(fileOrDir) : Stream.of(fileOrDir)) {
            csv = walk.filter(Files::isRegularFile).filter(p -> p.getFileName().toString().toLowerCase(Locale.ROOT)
                    .endsWith(".csv")).sorted().toList();
        } catch (IOException e) {
            throw new CorpusException("cannot list " + fileOrDir + ": " + e.getMessage(), e);
        }
        if (!csv.isEmpty()) {
            List<Question> out = new ArrayList<>();
            for (Path f : csv) out.addAll(readCsv(f));
            return out;
        }
        try (Stream<CorpusRow> rows = Corpus.open(fileOrDir).rows()) {
            return rows.map(Mmlu::question).toList();
        }
    }

    /** A parquet or JSON Lines row ({@code question}, {@code choices}, {@code answer}, optional {@code subject}). */
    public static Question question(CorpusRow row) {
        Object choices = row.get("choices");
        if (!(choices instanceof List<?> list)) {
            throw new CorpusException("column 'choices' in " + row.where() + " is not a list but " + choices);
        }
        List<String> c = list.stream().map(String::valueOf).toList();
        if (c.size() != 4) throw new CorpusException("column 'choices' in " + row.where() + " has " + c.size()
                + " entries, not 4: " + c);
        String subject = row.has("subject") && row.get("subject") != null ? row.getString("subject") : "";
        return new Question(subject, row.getString("question"), c, answerIndex(row.getString("answer"), row.where()));
    }

    /** The questions of one original CSV file (no header: question, A, B, C, D, letter). */
    static List<Question> readCsv(Path file) {
        String name = file.getFileName().toString().replaceFirst("(?i)\\.csv$", "");
        String subject = name.replaceFirst("_(test|val|dev)$", "");
        List<Question> out = new ArrayList<>();
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8);
             CSVParser p = CSVFormat.DEFAULT.builder().build().parse(r)) {
            for (CSVRecord rec : p) {
                String where = file + " line " + rec.getRecordNumber();
                if (rec.size() != 6) {
                    throw new CorpusException("MMLU CSV row in " + where + " has " + rec.size() + " fields; the original "
                            + "layout has 6 (question, A, B, C, D, answer letter) and no header");
                }
                out.add(new Question(subject, rec.get(0), List.of(rec.get(1), rec.get(2), rec.get(3), rec.get(4)),
                        answerIndex(rec.get(5), where)));
            }
        } catch (IOException | java.io.UncheckedIOException e) {
            throw new CorpusException("cannot read " + file + ": " + e.getMessage(), e);
        }
        return out;
    }

    /** {@code 0}-{@code 3} or {@code A}-{@code D} as an index. */
    static int answerIndex(String written, String where) {
        String s = written.strip();
        if (s.length() == 1 && LETTERS.indexOf(Character.toUpperCase(s.charAt(0))) >= 0) {
            return LETTERS.indexOf(Character.toUpperCase(s.charAt(0)));
        }
        if (s.matches("[0-3]")) return Integer.parseInt(s);
        throw new CorpusException("MMLU answer in " + where + " is '" + written + "'; expected 0-3 or A-D");
    }

    /** One row per question: subject, question, the right letter and its choice. */
    public static Table toTable(List<Question> questions) {
        StringColumn s = StringColumn.create("subject"), q = StringColumn.create("question"),
                l = StringColumn.create("answer"), c = StringColumn.create("answer_text");
        for (Question x : questions) {
            s.append(x.subject());
            q.append(x.question());
            l.append(x.letter());
            c.append(x.choices().get(x.answer()));
        }
        return Table.create("MMLU (" + questions.size() + " questions, "
                + questions.stream().map(Question::subject).distinct().count() + " subjects)", s, q, l, c);
    }

    /** The subjects present, sorted. */
    public static List<String> subjects(List<Question> questions) {
        return questions.stream().map(Question::subject).distinct().sorted().collect(Collectors.toList());
    }
}
