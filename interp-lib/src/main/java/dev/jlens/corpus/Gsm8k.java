package dev.jlens.corpus;

import dev.jlens.cot.Answers;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * GSM8K (Cobbe et al. 2021) from its published files: the original JSON Lines ({@code train.jsonl},
 * {@code test.jsonl}) or Hugging Face's parquet ({@code main/test-00000-of-00001.parquet}), both with the columns
 * {@code question} and {@code answer}. The answer column is a worked solution whose last line is {@code #### N};
 * {@link Problem#answer()} is N normalised ({@code "1,200"} → {@code "1200"}), the form {@code cot.Answers} extracts
 * from a model's output, so grading is a string comparison.
 *
 * <pre>{@code
 * List<Gsm8k.Problem> test = Gsm8k.load(Path.of("gsm8k/main/test-00000-of-00001.parquet"));
 * Answers.number(modelOutput).map(a -> a.value().equals(test.get(0).answer()))
 * }</pre>
 */
public final class Gsm8k {
    /** The marker before the final answer on the solution's last line. */
    public static final String MARKER = "####";

    private Gsm8k() {}

    /**
     * One problem: the question, the worked solution as published (with its {@code <<48/2=24>>} calculator
     * annotations), and the final answer normalised.
     */
    public record Problem(String question, String solution, String answer) {
        public Problem {
            Objects.requireNonNull(question, "question");
            Objects.requireNonNull(solution, "solution");
            Objects.requireNonNull(answer, "answer");
        }

        /** The solution without its calculator annotations and without the {@code #### N} line. */
        public String reasoning() {
            String s = solution.replaceAll("<<[^>]*>>", "");
            int at = s.lastIndexOf(MARKER);
            return (at < 0 ? s : s.substring(0, at)).strip();
        }
    }

    /** Every problem of a file or a directory of files (JSON Lines, parquet; gzipped JSON Lines too), in order. */
    public static List<Problem> load(Path fileOrDir) {
        try (Stream<CorpusRow> rows = Corpus.open(fileOrDir).rows()) {
            return rows.map(Gsm8k::problem).toList();
        }
    }

    /** A row with {@code question} and {@code answer} as a problem; a solution without {@code #### N} is refused. */
    public static Problem problem(CorpusRow row) {
        String question = row.getString("question"), solution = row.getString("answer");
        return new Problem(question, solution, finalAnswer(solution).orElseThrow(() -> new CorpusException(
                "GSM8K solution in " + row.where() + " has no final line '" + MARKER + " N' with a number: '"
                        + tail(solution) + "'")));
    }

    /** The number after the last {@code ####} of a solution, normalised. */
    public static Optional<String> finalAnswer(String solution) {
        int at = solution.lastIndexOf(MARKER);
        if (at < 0) return Optional.empty();
        String rest = solution.substring(at + MARKER.length()).strip();
        int nl = rest.indexOf('\n');
        return Answers.normalizeNumber(nl < 0 ? rest : rest.substring(0, nl));
    }

    /** One row per problem: question, answer. */
    public static Table toTable(List<Problem> problems) {
        StringColumn q = StringColumn.create("question"), a = StringColumn.create("answer");
        for (Problem p : problems) {
            q.append(p.question());
            a.append(p.answer());
        }
        return Table.create("GSM8K (" + problems.size() + " problems)", q, a);
    }

    private static String tail(String s) {
        String t = s.strip();
        return t.length() <= 80 ? t : "..." + t.substring(t.length() - 80);
    }
}
