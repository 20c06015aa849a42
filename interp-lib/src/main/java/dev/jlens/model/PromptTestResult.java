package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.notebook.Display;
import dev.jlens.notebook.HtmlRenderable;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;

/**
 * What {@link HookedTransformer#testPrompt} found, as TransformerLens's {@code utils.test_prompt} prints it: for each
 * answer token, its rank, logit and probability among the model's predictions at the position before it, and the
 * top predictions there. {@code toString()} reads like TransformerLens's printout; in a notebook it renders as the
 * table of {@link #toTable()}. Holds plain Java values only (nothing to close).
 *
 * @param promptTokens the prompt's tokens as text, BOS first
 * @param answerTokens the answer's tokens as text (with the space prepended, if it was)
 * @param answers      one entry per answer token
 */
public record PromptTestResult(List<String> promptTokens, List<String> answerTokens, List<AnswerToken> answers)
        implements HtmlRenderable {

    /** One prediction: {@code rank} 0 is the most likely token; {@code prob} is the softmax of the logits. */
    public record Candidate(int rank, long id, String token, float logit, float prob) {}

    /**
     * The model's prediction of one answer token (teacher-forced: the earlier answer tokens are in its input).
     *
     * @param position the position whose logits predict this token (the one before it)
     * @param answer   the answer token's rank, logit and probability
     * @param top      the best {@code topK} predictions at {@code position}
     */
    public record AnswerToken(int position, Candidate answer, List<Candidate> top) {}

    public PromptTestResult {
        promptTokens = List.copyOf(promptTokens);
        answerTokens = List.copyOf(answerTokens);
        answers = List.copyOf(answers);
    }

    static PromptTestResult run(HookedTransformer model, String prompt, String answer, int topK, boolean prependSpace) {
        if (topK < 0) throw new IllegalArgumentException("topK must be >= 0, got " + topK);
        Tokenizer tok = model.requireTokenizer();
        String a = prependSpace && !answer.startsWith(" ") ? " " + answer : answer;
        long[] promptIds = tok.toTokens(prompt, true);
        long[] answerIds = tok.toTokens(a, false);
        if (answerIds.length == 0) throw new IllegalArgumentException("the answer " + Vocabulary.quote(a) + " has no tokens");
        if (promptIds.length == 0) throw new IllegalArgumentException("the prompt has no tokens and the model no BOS");
        long[] ids = Arrays.copyOf(promptIds, promptIds.length + answerIds.length);
        System.arraycopy(answerIds, 0, ids, promptIds.length, answerIds.length);
        List<String> answerStr = tok.toStrTokens(answerIds);
        List<AnswerToken> out = new ArrayList<>();
        try (NDScope scope = new NDScope()) {
            NDArray logits = model.forward(ids);                                          // [1, pos, d_vocab]
            for (int i = 0; i < answerIds.length; i++) {
                int pos = promptIds.length - 1 + i;
                NDArray row = logits.get(0, pos);
                float[] l = row.toFloatArray();
                float[] p = row.softmax(-1).toFloatArray();
                Integer[] order = IntStream.range(0, l.length).boxed().toArray(Integer[]::new);
                Arrays.sort(order, Comparator.<Integer>comparingDouble(j -> -l[j]).thenComparingInt(j -> j));
                List<Candidate> top = new ArrayList<>();
                int k = Math.min(topK, l.length);
                List<String> topStr = k == 0 ? List.of()
                        : tok.toStrTokens(Arrays.stream(order, 0, k).mapToLong(Integer::longValue).toArray());
                for (int r = 0; r < k; r++) top.add(new Candidate(r, order[r], topStr.get(r), l[order[r]], p[order[r]]));
                int id = (int) answerIds[i];
                int rank = 0;
                for (int r = 0; r < order.length; r++) if (order[r] == id) rank = r;
                out.add(new AnswerToken(pos, new Candidate(rank, id, answerStr.get(i), l[id], p[id]), top));
            }
        }
        return new PromptTestResult(tok.toStrTokens(promptIds), answerStr, out);
    }

    /** The first answer token's rank (0: the model's top prediction). */
    public int answerRank() {
        return answers.get(0).answer().rank();
    }

    /** The first answer token's probability. */
    public float answerProb() {
        return answers.get(0).answer().prob();
    }

    /** The first answer token's logit. */
    public float answerLogit() {
        return answers.get(0).answer().logit();
    }

    /** The rank of every answer token. */
    public List<Integer> answerRanks() {
        return answers.stream().map(a -> a.answer().rank()).toList();
    }

    /**
     * One row per top prediction at each answer token, plus the answer token's own row when it is not among them:
     * columns {@code answer} (which answer token, as {@code |text|}), {@code rank}, {@code token}, {@code logit},
     * {@code prob}, {@code is_answer}.
     */
    public Table toTable() {
        StringColumn answer = StringColumn.create("answer");
        IntColumn rank = IntColumn.create("rank");
        StringColumn token = StringColumn.create("token");
        DoubleColumn logit = DoubleColumn.create("logit");
        DoubleColumn prob = DoubleColumn.create("prob");
        BooleanColumn isAnswer = BooleanColumn.create("is_answer");
        for (AnswerToken a : answers) {
            List<Candidate> rows = new ArrayList<>(a.top());
            if (a.answer().rank() >= a.top().size()) rows.add(a.answer());
            for (Candidate c : rows) {
                answer.append(bars(a.answer().token()));
                rank.append(c.rank());
                token.append(bars(c.token()));
                logit.append(c.logit());
                prob.append(c.prob());
                isAnswer.append(c.id() == a.answer().id());
            }
        }
        return Table.create("testPrompt", answer, rank, token, logit, prob, isAnswer);
    }

    /** The summary line and the table. */
    @Override
    public String toHtml() {
        StringBuilder sb = new StringBuilder("<div><pre>");
        sb.append(Display.escapeHtml("Tokenized prompt: " + listed(promptTokens) + "\nTokenized answer: "
                + listed(answerTokens) + "\nRanks of the answer tokens: " + ranks()));
        sb.append("</pre>");
        sb.append(Display.render(toTable()).get(Display.HTML));
        return sb.append("</div>").toString();
    }

    /** TransformerLens's printout of {@code test_prompt}. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        sb.append("Tokenized prompt: ").append(listed(promptTokens)).append('\n');
        sb.append("Tokenized answer: ").append(listed(answerTokens)).append('\n');
        for (AnswerToken a : answers) {
            Candidate c = a.answer();
            sb.append("Performance on answer token:\n");
            sb.append(String.format(Locale.ROOT, "Rank: %-8d Logit: %5.2f Prob: %6.2f%% Token: %s\n", c.rank(),
                    c.logit(), 100.0 * c.prob(), bars(c.token())));
            for (Candidate t : a.top()) {
                sb.append(String.format(Locale.ROOT, "Top %dth token. Logit: %5.2f Prob: %6.2f%% Token: %s\n",
                        t.rank(), t.logit(), 100.0 * t.prob(), bars(t.token())));
            }
        }
        return sb.append("Ranks of the answer tokens: ").append(ranks()).toString();
    }

    private String ranks() {
        List<String> out = new ArrayList<>();
        for (AnswerToken a : answers) out.add("('" + a.answer().token() + "', " + a.answer().rank() + ")");
        return "[" + String.join(", ", out) + "]";
    }

    private static String listed(List<String> tokens) {
        return tokens.stream().map(t -> "'" + t + "'").toList().toString();
    }

    private static String bars(String token) {
        return "|" + token + "|";
    }
}
