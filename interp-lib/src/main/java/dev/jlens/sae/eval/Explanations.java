package dev.jlens.sae.eval;

import dev.jlens.data.Example;
import dev.jlens.data.TinyLang;
import dev.jlens.sae.SparseCoder;
import dev.jlens.util.Numbers;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * Interpretation correctness: each latent's best explanation as a rule over ground-truth labels, how much a
 * too-general explanation loses, and the false negatives of an explanation.
 *
 * <p>An explanation is a {@link Rule}: one label value ({@code "pos=NOUN"}) or a conjunction of values from different
 * label columns ({@code "pos=NOUN & number=PLURAL & role=SUBJECT"}). It is read as a prediction of where the latent
 * fires ({@code act > 0}) and scored over the measured tokens by F1, with <b>precision</b> (of the tokens where the
 * rule holds, the fraction the latent fires on) and <b>recall</b> (of the tokens the latent fires on, the fraction the
 * rule covers). A too-general explanation ("pos=NOUN" for a latent of plural nouns) keeps or gains recall and loses
 * precision; the tokens it loses precision on, where the rule holds and the latent is silent, are the latent's
 * <b>false negatives</b> against its explanation ({@link #falseNegatives}). (This is the explanation's view;
 * {@link dev.jlens.sae.LatentMatch} scores the latent as a detector of a concept, with the two names swapped. F1 is
 * the same either way.) The search
 * per latent is a beam: every single value, then conjunctions of two among the {@link Options#beam} best singles (by
 * F1), then the best pairs extended by a third of those singles; the best rule by F1 wins, ties going to the
 * shorter rule. Everything is counted on bitsets, so a few hundred latents over a few thousand tokens take well under
 * a second.
 *
 * <p>Tokens are measured after BOS by default (what a dictionary trained on {@link TinyLangConcepts#harvest} rows sees);
 * latents that fire on fewer than {@link Options#minFires} of them get no explanation. {@link #shuffledControl} is
 * the same search with the label rows permuted among the measured tokens (jointly, so the labels keep their
 * co-occurrences but lose their link to the activations): what F1 a search over this many rules finds by chance.
 *
 * <pre>{@code
 * DenseLatents.Contexts ctx = DenseLatents.Contexts.harvest(model, "blocks.1.hook_resid_post", examples, 16);
 * Explanations ex = Explanations.of(sae, ctx);
 * Explanations.Result r = ex.explain(Explanations.Options.defaults());
 * display(r.toTable()); r.count(0.8); r.meanF1();
 * display(ex.tooGeneral(r));                                       // each conjunction's general parts
 * display(ex.falseNegatives(r.explanation(12).orElseThrow(), examples, 20));
 * ex.shuffledControl(0).explain(Explanations.Options.defaults()).meanF1();
 * }</pre>
 */
public final class Explanations {
    private final float[][] acts;               // [tokens][dSae]
    private final DenseLatents.Contexts ctx;
    private final Map<String, long[]> concepts; // label value -> bitset over tokens, measured tokens only
    private final long[] measured;
    private final int nMeasured;

    private Explanations(float[][] acts, DenseLatents.Contexts ctx, Map<String, boolean[]> concepts, long[] measured) {
        if (acts.length != ctx.size()) {
            throw new IllegalArgumentException("activations have " + acts.length + " rows for " + ctx.size() + " tokens");
        }
        this.acts = acts;
        this.ctx = ctx;
        int n = ctx.size();
        this.measured = measured;
        nMeasured = count(measured);
        if (nMeasured == 0) throw new IllegalArgumentException("no tokens to measure on");
        this.concepts = new LinkedHashMap<>();
        for (var e : concepts.entrySet()) {
            if (!e.getKey().contains("=")) {
                throw new IllegalArgumentException("concepts are named column=value, got '" + e.getKey() + "'");
            }
            if (e.getValue().length != n) {
                throw new IllegalArgumentException("concept '" + e.getKey() + "' has " + e.getValue().length
                        + " values for " + n + " tokens");
            }
            long[] b = and(bits(e.getValue()), measured);
            if (count(b) > 0) this.concepts.put(e.getKey(), b);
        }
    }

    /** Explanations of {@code sae}'s latents on {@code ctx}'s tokens after BOS, against {@code ctx}'s concepts. */
    public static Explanations of(SparseCoder sae, DenseLatents.Contexts ctx) {
        return of(Latents.encode(sae, ctx.x()), ctx, true);
    }

    /**
     * Explanations of given latent activations {@code [tokens][latents]} (row for row with {@code ctx}); all tokens
     * are measured unless {@code skipBos} (then only those at position &gt; 0).
     */
    public static Explanations of(float[][] latentActs, DenseLatents.Contexts ctx, boolean skipBos) {
        long[] measured = new long[words(ctx.size())];
        for (int i = 0; i < ctx.size(); i++) if (!skipBos || ctx.position()[i] > 0) set(measured, i);
        return new Explanations(latentActs, ctx, ctx.concepts(), measured);
    }

    /**
     * The same latents against the same labels with the label rows permuted among the measured tokens (one
     * permutation for every column): the chance level of the search.
     */
    public Explanations shuffledControl(long seed) {
        int n = ctx.size();
        int[] idx = new int[nMeasured];
        for (int i = 0, k = 0; i < n; i++) if (get(measured, i)) idx[k++] = i;
        int[] perm = idx.clone();
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = perm.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        Map<String, boolean[]> shuffled = new LinkedHashMap<>();
        for (var e : concepts.entrySet()) {
            boolean[] v = new boolean[n];
            for (int k = 0; k < idx.length; k++) v[idx[k]] = get(e.getValue(), perm[k]);
            shuffled.put(e.getKey(), v);
        }
        return new Explanations(acts, ctx, shuffled, measured);
    }

    /** Number of latents. */
    public int dSae() {
        return acts.length == 0 ? 0 : acts[0].length;
    }

    /** Number of measured tokens. */
    public int tokens() {
        return nMeasured;
    }

    /** The label values rules are built from. */
    public Set<String> concepts() {
        return java.util.Collections.unmodifiableSet(concepts.keySet());
    }

    /**
     * A conjunction of label values ({@code column=value}), at most one per column, in a fixed (sorted) order.
     *
     * @param terms the values, e.g. {@code ["number=PLURAL", "pos=NOUN"]}
     */
    public record Rule(List<String> terms) {
        /** Sorts the terms and checks that they are from different columns. */
        public Rule {
            if (terms.isEmpty()) throw new IllegalArgumentException("a rule needs at least one term");
            TreeSet<String> sorted = new TreeSet<>(terms);
            Set<String> cols = new HashSet<>();
            for (String t : sorted) {
                if (!cols.add(column(t))) {
                    throw new IllegalArgumentException("two values of column '" + column(t) + "' in " + terms);
                }
            }
            terms = List.copyOf(sorted);
        }

        /** A rule of these terms. */
        public static Rule of(String... terms) {
            return new Rule(List.of(terms));
        }

        /** Parses {@code "pos=NOUN & number=PLURAL"}. */
        public static Rule parse(String text) {
            List<String> t = new ArrayList<>();
            for (String s : text.split("&")) t.add(s.strip());
            return new Rule(t);
        }

        /** Number of terms. */
        public int size() {
            return terms.size();
        }

        /** Its proper non-empty sub-rules (the more general rules it refines), shortest first. */
        public List<Rule> generalisations() {
            List<Rule> out = new ArrayList<>();
            int k = terms.size();
            for (int mask = 1; mask < (1 << k) - 1; mask++) {
                List<String> sub = new ArrayList<>();
                for (int i = 0; i < k; i++) if ((mask & (1 << i)) != 0) sub.add(terms.get(i));
                out.add(new Rule(sub));
            }
            out.sort(Comparator.comparingInt(Rule::size).thenComparing(Rule::toString));
            return out;
        }

        @Override
        public String toString() {
            return String.join(" & ", terms);
        }

        private static String column(String term) {
            int eq = term.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("a term is column=value, got '" + term + "'");
            return term.substring(0, eq);
        }
    }

    /**
     * A rule scored against one latent over the measured tokens.
     *
     * @param precision {@code both / holds}: how often the latent fires where the rule holds
     * @param recall    {@code both / fires}: how much of the latent's firing the rule covers
     * @param fires     tokens the latent fires on
     * @param holds     tokens the rule holds on
     * @param both      tokens where both happen (true positives)
     */
    public record Score(int latent, Rule rule, double f1, double precision, double recall, int fires, int holds,
                        int both) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "latent %d ~ %s: F1 %.3f, precision %.3f, recall %.3f", latent, rule,
                    f1, precision, recall);
        }
    }

    /**
     * Search settings.
     *
     * @param beam     singles (by F1) combined into conjunctions, and pairs extended to triples
     * @param maxTerms longest rule: 1, 2 or 3
     * @param minFires latents firing on fewer measured tokens get no explanation
     */
    public record Options(int beam, int maxTerms, int minFires) {
        /** Validates the settings. */
        public Options {
            if (beam < 1) throw new IllegalArgumentException("beam must be at least 1, got " + beam);
            if (maxTerms < 1 || maxTerms > 3) throw new IllegalArgumentException("maxTerms must be 1..3, got " + maxTerms);
            if (minFires < 1) throw new IllegalArgumentException("minFires must be at least 1, got " + minFires);
        }

        /** Beam 10, up to three terms, latents firing on at least 5 tokens. */
        public static Options defaults() {
            return new Options(10, 3, 5);
        }

        /** These options with rules of at most {@code n} terms. */
        public Options maxTerms(int n) {
            return new Options(beam, n, minFires);
        }
    }

    /**
     * The explanations of one dictionary.
     *
     * @param dSae         its number of latents
     * @param tokens       measured tokens
     * @param explanations the best rule of every latent that fires on at least {@code minFires} tokens, best F1 first
     * @param rulesTried   rules scored, all latents together
     */
    public record Result(int dSae, int tokens, List<Score> explanations, long rulesTried, Options options) {
        /** Copies the list. */
        public Result {
            explanations = List.copyOf(explanations);
        }

        /** The best explanation of latent {@code i}, if it fires often enough to have one. */
        public Optional<Score> explanation(int i) {
            return explanations.stream().filter(s -> s.latent() == i).findFirst();
        }

        /** Number of latents whose best explanation has F1 above {@code f1}. */
        public int count(double f1) {
            return (int) explanations.stream().filter(s -> s.f1() > f1).count();
        }

        /** Mean F1 of the best explanations (NaN when no latent has one). */
        public double meanF1() {
            return explanations.stream().mapToDouble(Score::f1).average().orElse(Double.NaN);
        }

        /** Explanations whose rule is a conjunction. */
        public List<Score> conjunctions() {
            return explanations.stream().filter(s -> s.rule().size() > 1).toList();
        }

        /** One row per explained latent: its rule, F1, precision, recall and how often it fires. */
        public Table toTable() {
            IntColumn latent = IntColumn.create("latent"), fires = IntColumn.create("fires"),
                    terms = IntColumn.create("terms");
            DoubleColumn density = DoubleColumn.create("density");
            StringColumn rule = StringColumn.create("explanation");
            DoubleColumn f1 = DoubleColumn.create("F1"), p = DoubleColumn.create("precision"),
                    r = DoubleColumn.create("recall");
            for (Score s : explanations) {
                latent.append(s.latent());
                fires.append(s.fires());
                density.append(Numbers.significant((double) s.fires() / tokens, 3));
                rule.append(s.rule().toString());
                terms.append(s.rule().size());
                f1.append(Numbers.significant(s.f1(), 3));
                p.append(Numbers.significant(s.precision(), 3));
                r.append(Numbers.significant(s.recall(), 3));
            }
            return Table.create("best explanation per latent", latent, fires, density, rule, terms, f1, p, r);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "Explanations(%d of %d latents explained over %d tokens, mean best F1 "
                    + "%.3f, %d above 0.8, %d conjunctions)", explanations.size(), dSae, tokens, meanF1(), count(0.8),
                    conjunctions().size());
        }
    }

    /** Scores {@code rule} against latent {@code latent}. */
    public Score score(int latent, Rule rule) {
        return score(latent, fired(latent), rule, mask(rule));
    }

    /** The best explanation of every latent that fires often enough. */
    public Result explain(Options options) {
        int dSae = dSae();
        List<String> names = new ArrayList<>(concepts.keySet());
        List<Score> out = new ArrayList<>();
        long tried = 0;
        for (int j = 0; j < dSae; j++) {
            long[] fired = fired(j);
            if (count(fired) < options.minFires()) continue;
            List<Score> singles = new ArrayList<>(names.size());
            for (String c : names) singles.add(score(j, fired, new Rule(List.of(c)), concepts.get(c)));
            tried += singles.size();
            singles.sort(BY_F1);
            Score best = singles.get(0);
            List<Score> top = singles.subList(0, Math.min(options.beam(), singles.size()));
            if (options.maxTerms() >= 2) {
                List<Score> pairs = new ArrayList<>();
                for (int a = 0; a < top.size(); a++) {
                    for (int b = a + 1; b < top.size(); b++) {
                        Optional<Rule> r = join(top.get(a).rule(), top.get(b).rule());
                        if (r.isEmpty()) continue;
                        pairs.add(score(j, fired, r.get(), mask(r.get())));
                    }
                }
                tried += pairs.size();
                pairs.sort(BY_F1);
                if (!pairs.isEmpty() && BY_F1.compare(pairs.get(0), best) < 0) best = pairs.get(0);
                if (options.maxTerms() >= 3) {
                    Set<Rule> seen = new HashSet<>();
                    for (Score p : pairs.subList(0, Math.min(options.beam(), pairs.size()))) {
                        for (Score s : top) {
                            Optional<Rule> r = join(p.rule(), s.rule());
                            if (r.isEmpty() || !seen.add(r.get())) continue;
                            Score t = score(j, fired, r.get(), mask(r.get()));
                            tried++;
                            if (BY_F1.compare(t, best) < 0) best = t;
                        }
                    }
                }
            }
            out.add(best);
        }
        out.sort(BY_F1.thenComparingInt(Score::latent));
        return new Result(dSae, nMeasured, out, tried, options);
    }

    /**
     * Too-general explanations: for every latent of {@code result} whose best rule is a conjunction, each of its more
     * general parts scored against the same latent, with the precision it loses and the recall it gains against the
     * specific rule. One row per (latent, general part), latents by the specific rule's F1.
     */
    public Table tooGeneral(Result result) {
        IntColumn latent = IntColumn.create("latent");
        StringColumn specific = StringColumn.create("specific"), general = StringColumn.create("general");
        DoubleColumn sf1 = DoubleColumn.create("specific_F1"), sp = DoubleColumn.create("specific_precision"),
                sr = DoubleColumn.create("specific_recall");
        DoubleColumn gf1 = DoubleColumn.create("general_F1"), gp = DoubleColumn.create("general_precision"),
                gr = DoubleColumn.create("general_recall");
        DoubleColumn lost = DoubleColumn.create("precision_lost"), gained = DoubleColumn.create("recall_gained");
        for (Score s : result.conjunctions()) {
            for (Rule g : s.rule().generalisations()) {
                Score t = score(s.latent(), g);
                latent.append(s.latent());
                specific.append(s.rule().toString());
                sf1.append(Numbers.significant(s.f1(), 3));
                sp.append(Numbers.significant(s.precision(), 3));
                sr.append(Numbers.significant(s.recall(), 3));
                general.append(g.toString());
                gf1.append(Numbers.significant(t.f1(), 3));
                gp.append(Numbers.significant(t.precision(), 3));
                gr.append(Numbers.significant(t.recall(), 3));
                lost.append(Numbers.significant(s.precision() - t.precision(), 3));
                gained.append(Numbers.significant(t.recall() - s.recall(), 3));
            }
        }
        return Table.create("too-general explanations", latent, specific, sf1, sp, sr, general, gf1, gp, gr, lost,
                gained);
    }

    /** The measured token indices (rows of the contexts) where {@code rule} holds and {@code latent} is silent. */
    public int[] falseNegativeRows(int latent, Rule rule) {
        long[] miss = andNot(mask(rule), fired(latent));
        int[] out = new int[count(miss)];
        for (int i = 0, k = 0; i < ctx.size(); i++) if (get(miss, i)) out[k++] = i;
        return out;
    }

    /**
     * The false negatives of an explanation, at most {@code limit} of them in token order: where the rule holds and
     * the latent is silent, with the token in its sentence ({@code [token]} marked) and the latent that fired most
     * strongly there instead. {@code examples} are those the contexts were harvested from, in the same order (checked
     * against the rule where the examples carry its label columns).
     */
    public Table falseNegatives(Score explanation, List<? extends Example<?>> examples, int limit) {
        return falseNegatives(explanation.latent(), explanation.rule(), examples, limit);
    }

    /** {@link #falseNegatives(Score, List, int)} for any rule. */
    public Table falseNegatives(int latent, Rule rule, List<? extends Example<?>> examples, int limit) {
        IntColumn seq = IntColumn.create("sequence"), pos = IntColumn.create("position");
        StringColumn token = StringColumn.create("token"), context = StringColumn.create("context");
        IntColumn other = IntColumn.create("strongest_latent");
        DoubleColumn otherAct = DoubleColumn.create("strongest_activation");
        int[] rows = falseNegativeRows(latent, rule);
        for (int k = 0; k < Math.min(limit, rows.length); k++) {
            int i = rows[k], s = ctx.sequence()[i], p = ctx.position()[i];
            if (s < 0 || s >= examples.size() || p >= examples.get(s).length()) {
                throw new IllegalArgumentException("token " + i + " (sequence " + s + ", position " + p
                        + ") is not in the examples given: pass those the contexts were harvested from");
            }
            Example<?> e = examples.get(s);
            for (String t : rule.terms()) {
                int eq = t.indexOf('=');
                List<?> col = e.labels().get(t.substring(0, eq));
                if (col != null && !String.valueOf(col.get(p)).equals(t.substring(eq + 1))) {
                    throw new IllegalArgumentException("the examples do not match the contexts: at sequence " + s
                            + ", position " + p + " the rule holds (" + t + ") but the example's label is "
                            + col.get(p) + "; pass the examples the contexts were harvested from, in order");
                }
            }
            seq.append(s);
            pos.append(p);
            token.append(e.tokens().get(p));
            context.append(context(e, p));
            int best = -1;
            for (int j = 0; j < acts[i].length; j++) if (acts[i][j] > 0 && (best < 0 || acts[i][j] > acts[i][best])) best = j;
            other.append(best);
            otherAct.append(best < 0 ? 0 : Numbers.significant(acts[i][best], 3));
        }
        return Table.create("false negatives of latent " + latent + " ~ " + rule, seq, pos, token, context, other,
                otherAct);
    }

    /** The sentence around position {@code p} (for tinylang; else 8 tokens either side) with {@code [token]} marked. */
    static String context(Example<?> e, int p) {
        int from = Math.max(0, p - 8), to = Math.min(e.length(), p + 9);
        if (e.meta() instanceof TinyLang.Meta m) {
            for (TinyLang.SentenceInfo si : m.sentences()) {
                if (p >= si.start() && p < si.end()) {
                    from = si.start();
                    to = si.end();
                }
            }
        }
        StringBuilder sb = new StringBuilder();
        for (int q = from; q < to; q++) {
            if (q > from) sb.append(' ');
            sb.append(q == p ? "[" + e.tokens().get(q) + "]" : e.tokens().get(q));
        }
        return sb.toString();
    }

    private static final Comparator<Score> BY_F1 = Comparator.comparingDouble((Score s) -> -s.f1())
            .thenComparingInt(s -> s.rule().size()).thenComparing(s -> s.rule().toString());

    private Score score(int latent, long[] fired, Rule rule, long[] holds) {
        int f = count(fired), h = count(holds), b = countAnd(fired, holds);
        double f1 = f + h == 0 ? 0 : 2.0 * b / (f + h);
        return new Score(latent, rule, f1, h == 0 ? 0 : (double) b / h, f == 0 ? 0 : (double) b / f, f, h, b);
    }

    private long[] fired(int latent) {
        if (latent < 0 || latent >= dSae()) {
            throw new IllegalArgumentException("latent " + latent + " is outside 0.." + (dSae() - 1));
        }
        long[] b = new long[measured.length];
        for (int i = 0; i < acts.length; i++) if (acts[i][latent] > 0 && get(measured, i)) set(b, i);
        return b;
    }

    private long[] mask(Rule rule) {
        long[] m = measured.clone();
        for (String t : rule.terms()) {
            long[] c = concepts.get(t);
            if (c == null) return new long[measured.length];   // a value on none of the measured tokens
            m = and(m, c);
        }
        return m;
    }

    private static Optional<Rule> join(Rule a, Rule b) {
        Set<String> cols = new HashSet<>();
        for (String t : a.terms()) cols.add(Rule.column(t));
        List<String> terms = new ArrayList<>(a.terms());
        for (String t : b.terms()) {
            if (a.terms().contains(t)) continue;
            if (!cols.add(Rule.column(t))) return Optional.empty();
            terms.add(t);
        }
        return terms.size() == a.size() ? Optional.empty() : Optional.of(new Rule(terms));
    }

    private static int words(int n) {
        return (n + 63) >>> 6;
    }

    private static long[] bits(boolean[] v) {
        long[] b = new long[words(v.length)];
        for (int i = 0; i < v.length; i++) if (v[i]) set(b, i);
        return b;
    }

    private static void set(long[] b, int i) {
        b[i >>> 6] |= 1L << (i & 63);
    }

    private static boolean get(long[] b, int i) {
        return (b[i >>> 6] & (1L << (i & 63))) != 0;
    }

    private static long[] and(long[] a, long[] b) {
        long[] o = new long[a.length];
        for (int i = 0; i < a.length; i++) o[i] = a[i] & b[i];
        return o;
    }

    private static long[] andNot(long[] a, long[] b) {
        long[] o = new long[a.length];
        for (int i = 0; i < a.length; i++) o[i] = a[i] & ~b[i];
        return o;
    }

    private static int count(long[] b) {
        int c = 0;
        for (long w : b) c += Long.bitCount(w);
        return c;
    }

    private static int countAnd(long[] a, long[] b) {
        int c = 0;
        for (int i = 0; i < a.length; i++) c += Long.bitCount(a[i] & b[i]);
        return c;
    }
}
