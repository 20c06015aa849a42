package dev.jlens.data;

import java.util.ArrayList;
import java.util.List;

/**
 * Subject-verb number agreement across a relative clause, as clean/corrupt prompt pairs in {@link TinyLang}'s
 * vocabulary: the planted ground truth of a patching experiment.
 *
 * <p>Every prompt is {@code <bos> the N1 that ...} cut just before the main verb, so the next token is the verb,
 * which must agree with {@code N1}. The two prompts of a pair differ only in the number of {@code N1}
 * ({@code dog} / {@code dogs}; the determiner is {@code the}, shared by both numbers) and, in a subject-gap clause in
 * the present tense, in the relative clause's verb, which agrees with {@code N1} too. The noun inside the relative
 * clause ({@code N2}, the "attractor") keeps its number in both prompts. Two templates, each of one length so a
 * set of prompts stacks into a batch:
 * <pre>
 * OBJECT_GAP   &lt;bos&gt; the N1 that the N2 V_rc        (7 tokens; V_rc agrees with N2, or is past)
 * SUBJECT_GAP  &lt;bos&gt; the N1 that V_rc the N2        (7 tokens; V_rc agrees with N1, or is past)
 * </pre>
 * The answer pair of a prompt is one intransitive verb's singular and plural forms ({@code runs}, {@code run});
 * the metric is {@code logit(singular) - logit(plural)} at the last position, positive when the model expects a
 * singular subject. Where the number is known to be: at {@link #SUBJECT_POS} in both templates, and also at the
 * relative clause's verb ({@link Pair#rcVerbPos()}) of a present-tense subject-gap clause.
 *
 * @param template which relative clause
 * @param seed seed of every pair
 */
public record Agreement(Template template, long seed) {

    /** Which argument of the relative clause's verb is missing. */
    public enum Template { OBJECT_GAP, SUBJECT_GAP }

    /** Position of the subject noun {@code N1} (after {@code <bos> the}). */
    public static final int SUBJECT_POS = 2;
    /** Tokens per prompt, BOS included. */
    public static final int LENGTH = 7;

    /**
     * One pair. {@code clean} has a singular subject, {@code corrupt} a plural one (same words otherwise);
     * {@code singularVerb}/{@code pluralVerb} are the answer's two forms; {@code clean/corruptWords} the prompts as
     * words; {@code rcVerbPos} where the relative clause's verb is; {@code rcPresent} whether it is in the present
     * tense; {@code attractorPlural} the number of {@code N2}.
     */
    public record Pair(long[] clean, long[] corrupt, long singularVerb, long pluralVerb, List<String> cleanWords,
                       List<String> corruptWords, int rcVerbPos, boolean rcPresent, boolean attractorPlural) {
        /** Copies the word lists. */
        public Pair {
            cleanWords = List.copyOf(cleanWords);
            corruptWords = List.copyOf(corruptWords);
        }

        /** Positions where the two prompts differ. */
        public int[] differing() {
            int n = 0;
            int[] out = new int[clean.length];
            for (int i = 0; i < clean.length; i++) {
                if (clean[i] != corrupt[i]) out[n++] = i;
            }
            return java.util.Arrays.copyOf(out, n);
        }
    }

    /** Validates the arguments. */
    public Agreement {
        if (template == null) {
            throw new IllegalArgumentException("template is null: valid templates are "
                    + java.util.Arrays.toString(Template.values()));
        }
    }

    /** The {@code i}-th pair, the same for every call. */
    public Pair pair(long i) {
        Rng rng = Rng.of(seed, template.ordinal(), i);
        TinyLang.NounForms n1 = TinyLang.NOUNS.get(uniform(rng, TinyLang.NOUNS.size()));
        TinyLang.NounForms n2;
        do {
            n2 = TinyLang.NOUNS.get(uniform(rng, TinyLang.NOUNS.size()));
        } while (n2.equals(n1));
        boolean attractorPlural = rng.nextDouble() < 0.5;
        boolean rcPresent = rng.nextDouble() < TinyLang.P_PRESENT;
        TinyLang.VerbForms rcVerb = TinyLang.TRANSITIVE.get(uniform(rng, TinyLang.TRANSITIVE.size()));
        TinyLang.VerbForms answer = TinyLang.INTRANSITIVE.get(uniform(rng, TinyLang.INTRANSITIVE.size()));
        List<String> clean = words(n1, n2, rcVerb, false, attractorPlural, rcPresent);
        List<String> corrupt = words(n1, n2, rcVerb, true, attractorPlural, rcPresent);
        TinyLang lang = TinyLang.defaults();
        int rcVerbPos = template == Template.OBJECT_GAP ? 6 : 4;
        return new Pair(ids(lang, clean), ids(lang, corrupt), lang.tokenId(answer.singular()),
                lang.tokenId(answer.plural()), clean, corrupt, rcVerbPos, rcPresent, attractorPlural);
    }

    /** Pairs {@code from .. from + count - 1}. */
    public List<Pair> pairs(long from, int count) {
        if (count < 1) throw new IllegalArgumentException("count must be at least 1, got " + count);
        List<Pair> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) out.add(pair(from + i));
        return out;
    }

    /** The clean prompts of {@code pairs} as a {@code [n, LENGTH]} array. */
    public static long[][] clean(List<Pair> pairs) {
        return pairs.stream().map(Pair::clean).toArray(long[][]::new);
    }

    /** The corrupt prompts of {@code pairs}. */
    public static long[][] corrupt(List<Pair> pairs) {
        return pairs.stream().map(Pair::corrupt).toArray(long[][]::new);
    }

    /** The singular answer of each pair. */
    public static long[] singularVerbs(List<Pair> pairs) {
        return pairs.stream().mapToLong(Pair::singularVerb).toArray();
    }

    /** The plural answer of each pair. */
    public static long[] pluralVerbs(List<Pair> pairs) {
        return pairs.stream().mapToLong(Pair::pluralVerb).toArray();
    }

    private List<String> words(TinyLang.NounForms n1, TinyLang.NounForms n2, TinyLang.VerbForms v, boolean plural,
                               boolean attractorPlural, boolean present) {
        TinyLang.Num subj = plural ? TinyLang.Num.PLURAL : TinyLang.Num.SINGULAR;
        TinyLang.Num attr = attractorPlural ? TinyLang.Num.PLURAL : TinyLang.Num.SINGULAR;
        TinyLang.Tense tense = present ? TinyLang.Tense.PRESENT : TinyLang.Tense.PAST;
        List<String> w = new ArrayList<>(List.of(Task.SPECIALS.get(1), "the", n1.form(subj), TinyLang.THAT));
        if (template == Template.OBJECT_GAP) {
            w.addAll(List.of("the", n2.form(attr), v.form(attr, tense)));
        } else {
            w.addAll(List.of(v.form(subj, tense), "the", n2.form(attr)));
        }
        return w;
    }

    private static long[] ids(TinyLang lang, List<String> words) {
        long[] out = new long[words.size()];
        for (int i = 0; i < out.length; i++) out[i] = lang.tokenId(words.get(i));
        return out;
    }

    private static int uniform(Rng rng, int n) {
        return (int) Math.floor(rng.nextDouble() * n);
    }
}
