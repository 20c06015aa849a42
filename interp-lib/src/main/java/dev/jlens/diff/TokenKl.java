package dev.jlens.diff;

import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/**
 * Per-token KL(base || tuned) of the next-token distributions over a batch of prompts: the value at position
 * {@code p} compares the two models' predictions after reading tokens {@code 0..p}. Padding positions are left out.
 */
public final class TokenKl {
    /** One scored position. */
    public record Row(int prompt, int position, long tokenId, String token, double kl) {}

    private final List<long[]> ids;
    private final List<String[]> tokens;
    private final List<Row> rows;

    private final String label;

    TokenKl(List<long[]> ids, List<String[]> tokens, List<Row> rows) {
        this(ids, tokens, rows, "base || tuned");
    }

    /** {@code label} names the two models, e.g. {@code "thinker || thinker-ft"}, in titles. */
    TokenKl(List<long[]> ids, List<String[]> tokens, List<Row> rows, String label) {
        this.label = label;
        this.ids = List.copyOf(ids);
        this.tokens = List.copyOf(tokens);
        this.rows = List.copyOf(rows);
    }

    /** Every scored position, prompt by prompt. */
    public List<Row> rows() {
        return rows;
    }

    /** KL at each position of prompt {@code prompt} (NaN at padding). */
    public double[] of(int prompt) {
        double[] out = new double[ids.get(prompt).length];
        Arrays.fill(out, Double.NaN);
        for (Row r : rows) if (r.prompt() == prompt) out[r.position()] = r.kl();
        return out;
    }

    /** Mean KL over every scored position. */
    public double mean() {
        return rows.stream().mapToDouble(Row::kl).average().orElse(Double.NaN);
    }

    /** Largest KL over every scored position. */
    public double max() {
        return rows.stream().mapToDouble(Row::kl).max().orElse(Double.NaN);
    }

    /** The positions in order of KL, largest first. */
    public List<Row> ranked() {
        List<Row> sorted = new ArrayList<>(rows);
        sorted.sort(Comparator.comparingDouble(Row::kl).reversed());
        return sorted;
    }

    /**
     * Of the {@code k} positions of largest KL, the fraction {@code context} marks (by prompt and position): how much
     * of what KL points at lies in the contexts of a behaviour.
     */
    public double topShare(int k, LatentCodes.Context context) {
        if (k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
        List<Row> top = ranked().subList(0, Math.min(k, rows.size()));
        if (top.isEmpty()) return Double.NaN;
        return top.stream().filter(r -> context.test(r.prompt(), r.position())).count() / (double) top.size();
    }

    /**
     * The rank (1 = largest KL) of the first position {@code context} marks: how far down the list of top-KL tokens
     * one reads before reaching the behaviour. Empty if it marks none.
     */
    public java.util.OptionalInt firstRank(LatentCodes.Context context) {
        List<Row> sorted = ranked();
        for (int i = 0; i < sorted.size(); i++) {
            if (context.test(sorted.get(i).prompt(), sorted.get(i).position())) return java.util.OptionalInt.of(i + 1);
        }
        return java.util.OptionalInt.empty();
    }

    /** Mean KL over the positions {@code context} marks (NaN if none). */
    public double mean(LatentCodes.Context context) {
        return rows.stream().filter(r -> context.test(r.prompt(), r.position())).mapToDouble(Row::kl).average()
                .orElse(Double.NaN);
    }

    /**
     * Prompts {@code prompts} (all when none are given) as text with each token shaded by its KL (darker is larger;
     * hover for the value), on one scale: where in each prompt the two models disagree. The value on a token is the
     * KL of the predictions made after reading it.
     */
    public dev.jlens.viz.Html.View highlight(int... prompts) {
        int[] which = prompts.length == 0 ? java.util.stream.IntStream.range(0, ids.size()).toArray() : prompts;
        List<List<String>> rowsOut = new ArrayList<>();
        List<double[]> values = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        for (int p : which) {
            if (p < 0 || p >= ids.size()) {
                throw new IndexOutOfBoundsException("prompt " + p + " of " + ids.size() + " (0.." + (ids.size() - 1) + ")");
            }
            double[] v = of(p);
            int n = v.length;
            while (n > 0 && Double.isNaN(v[n - 1])) n--;                 // trailing padding
            rowsOut.add(Arrays.asList(tokens.get(p)).subList(0, n));
            values.add(Arrays.copyOf(v, n));
            labels.add("#" + p);
        }
        return dev.jlens.viz.Html.tokens(rowsOut, values, labels, 0, "per-token KL(" + label + ")");
    }

    /** One row per scored position: prompt, position, token_id, token, kl. */
    public Table table() {
        return toTable("token KL(" + label + ")", rows, 0);
    }

    /**
     * The {@code k} positions of largest KL, largest first, each with up to {@code context} tokens before it and the
     * token itself in brackets ({@code "... the cat [sat]"}).
     */
    public Table top(int k, int context) {
        if (k < 1 || context < 0) throw new IllegalArgumentException("need k >= 1 and context >= 0, got " + k + ", "
                + context);
        List<Row> sorted = ranked();
        return toTable("top-" + k + " KL(" + label + ") tokens", sorted.subList(0, Math.min(k, sorted.size())), context);
    }

    private Table toTable(String name, List<Row> rs, int context) {
        IntColumn prompt = IntColumn.create("prompt"), position = IntColumn.create("position");
        LongColumn tokenId = LongColumn.create("token_id");
        StringColumn token = StringColumn.create("token"), ctx = StringColumn.create("context");
        DoubleColumn kl = DoubleColumn.create("kl");
        for (Row r : rs) {
            prompt.append(r.prompt());
            position.append(r.position());
            tokenId.append(r.tokenId());
            token.append(r.token());
            kl.append(r.kl());
            if (context > 0) ctx.append(context(r, context));
        }
        Table t = Table.create(name, prompt, position, tokenId, token, kl);
        if (context > 0) t.addColumns(ctx);
        return t;
    }

    private String context(Row r, int context) {
        String[] toks = tokens.get(r.prompt());
        StringBuilder s = new StringBuilder();
        int from = Math.max(0, r.position() - context);
        if (from > 0) s.append("...");
        for (int i = from; i < r.position(); i++) s.append(toks[i]);
        return s.append('[').append(toks[r.position()]).append(']').toString();
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "TokenKl(%d prompts, %d positions, mean %.4g, max %.4g)", ids.size(),
                rows.size(), mean(), max());
    }
}
