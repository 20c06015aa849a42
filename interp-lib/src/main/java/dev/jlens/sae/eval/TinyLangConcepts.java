package dev.jlens.sae.eval;

import dev.jlens.probe.ProbeTask;

import dev.jlens.data.Example;
import dev.jlens.data.TinyLang;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.LayerSweep;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.TokenLabeller;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.IntPredicate;

/**
 * Parent concepts with known children in tinylang, for {@link Absorption} and {@link SparseProbing}: every word is
 * one token, so a parent is a set of token ids and its children are those words. First letters (Chanin et al.'s
 * task: {@code s} is {@code sad, sees, saw, ...}) and word classes (a noun is {@code dog, cats, ...}) from the
 * grammar's lexicon.
 *
 * <pre>{@code
 * ProbeData rows = TinyLangConcepts.harvest(model, "blocks.1.hook_resid_post", examples, 16);
 * List<ProbeTask> letters = TinyLangConcepts.firstLetters(rows, 3, 40);
 * List<ProbeTask> classes = TinyLangConcepts.wordClasses(rows);
 * }</pre>
 */
public final class TinyLangConcepts {
    /** Every fifth sequence is held out. */
    public static final int FOLDS = 5;

    private static final List<String> VOCAB = TinyLang.defaults().vocab();

    private TinyLangConcepts() {}

    /** The examples' token ids in batches of {@code batchSize} sequences (of one length, as tinylang's are). */
    static List<Batch> batches(List<? extends Example<?>> examples, int batchSize) {
        if (batchSize < 1) throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
        List<Batch> batches = new ArrayList<>();
        for (int i = 0; i < examples.size(); i += batchSize) {
            int n = Math.min(batchSize, examples.size() - i);
            long[][] ids = new long[n][];
            for (int b = 0; b < n; b++) ids[b] = examples.get(i + b).ids();
            batches.add(Batch.of(ids));
        }
        return batches;
    }

    /**
     * Activations at {@code hook} of every token after BOS of {@code examples}: row type = token id, group = sequence
     * index; the labels are a placeholder (1 for a noun) that the concept builders replace.
     */
    public static ProbeData harvest(HookedTransformer model, String hook, List<Example<TinyLang.Meta>> examples,
                                    int batchSize) {
        if (examples.isEmpty()) throw new IllegalArgumentException("no examples to harvest");
        List<Batch> batches = batches(examples, batchSize);
        TokenLabeller every = (seq, pos) -> {
            if (pos == 0) return Optional.empty();
            TinyLang.TokenLabel l = examples.get(seq).meta().labels().get(pos);
            int id = (int) examples.get(seq).ids()[pos];
            return Optional.of(new TokenLabeller.Row(l.pos() == TinyLang.Pos.NOUN ? 1 : 0, seq, id));
        };
        return LayerSweep.collect(model, List.of(hook), batches, every).get(hook);
    }

    /** The word of a token id. */
    public static String word(int tokenId) {
        return VOCAB.get(tokenId);
    }

    /**
     * One parent per first letter (lower-cased: {@code Alice} is an {@code a} word) that at least {@code minWords}
     * distinct words of {@code rows} start with and that holds on at least {@code minRows} test rows; label 1 where
     * the token starts with the letter. Split by sequence ({@link #FOLDS}).
     */
    public static List<ProbeTask> firstLetters(ProbeData rows, int minWords, int minRows) {
        int[] types = types(rows);
        Map<Character, Set<Integer>> byLetter = new TreeMap<>();
        for (int t : new TreeSet<>(ints(types))) {
            String w = word(t);
            if (w.isEmpty() || !Character.isLetter(w.charAt(0))) continue;
            byLetter.computeIfAbsent(Character.toLowerCase(w.charAt(0)), c -> new TreeSet<>()).add(t);
        }
        List<ProbeTask> out = new ArrayList<>();
        for (Map.Entry<Character, Set<Integer>> e : byLetter.entrySet()) {
            if (e.getValue().size() < minWords) continue;
            Set<Integer> ids = e.getValue();
            task(String.valueOf(e.getKey()), rows, types, ids::contains, minRows).ifPresent(out::add);
        }
        return out;
    }

    /**
     * One parent per word class of the lexicon with at least two words: {@code name}, {@code determiner},
     * {@code adjective}, {@code noun}, {@code place}, {@code preposition}, {@code verb}; label 1 on the class's words.
     */
    public static List<ProbeTask> wordClasses(ProbeData rows) {
        int[] types = types(rows);
        List<ProbeTask> out = new ArrayList<>();
        for (Map.Entry<String, Set<Integer>> e : classes().entrySet()) {
            Set<Integer> ids = e.getValue();
            task(e.getKey(), rows, types, ids::contains, 1).ifPresent(out::add);
        }
        return out;
    }

    /** The label columns {@link #all} makes one concept per value of. */
    public static final List<String> LABEL_COLUMNS = List.of("pos", "number", "tense", "clause", "depth", "role", "gap",
            "subjectHead");

    /**
     * Every binary ground-truth concept of tinylang on rows from {@link #harvest} of {@code examples}: one per word
     * ({@code word=dog}), one per previous word ({@code prev=dog}, {@code prev=<bos>}), one per word class ({@code class=noun}) and one per value of each of {@link #LABEL_COLUMNS}
     * ({@code number=PLURAL}), each kept if it holds on at least {@code minRows} held-out rows and is not the same
     * set of rows as a concept before it (a one-word class, {@code pos=NOUN} beside {@code class=noun}). All share
     * the rows of {@code rows}, split by sequence ({@link #FOLDS}).
     */
    public static List<ProbeTask> all(ProbeData rows, List<Example<TinyLang.Meta>> examples, int minRows) {
        int[] types = types(rows);
        int[] groups = rows.groups();
        // the position of each row in its sequence: rows run in order, BOS skipped
        int[] position = new int[types.length];
        for (int i = 0; i < types.length; i++) {
            if (groups[i] < 0 || groups[i] >= examples.size()) {
                throw new IllegalArgumentException("row " + i + " is from sequence " + groups[i] + " but there are "
                        + examples.size() + " examples: give the examples the rows were harvested from");
            }
            position[i] = i > 0 && groups[i - 1] == groups[i] ? position[i - 1] + 1 : 1;
            if (examples.get(groups[i]).ids()[position[i]] != types[i]) {
                throw new IllegalArgumentException("row " + i + " does not match its example's token at position "
                        + position[i] + ": give the examples the rows were harvested from, in order");
            }
        }
        Map<String, IntPredicate> byRow = new LinkedHashMap<>();
        for (int t : new TreeSet<>(ints(types))) byRow.put("word=" + word(t), i -> types[i] == t);
        // the previous token's identity: what a previous-token head copies forward
        int[] prev = new int[types.length];
        for (int i = 0; i < types.length; i++) prev[i] = (int) examples.get(groups[i]).ids()[position[i] - 1];
        for (int t : new TreeSet<>(ints(prev))) byRow.put("prev=" + word(t), i -> prev[i] == t);
        for (Map.Entry<String, Set<Integer>> e : classes().entrySet()) {
            Set<Integer> ids = e.getValue();
            byRow.put("class=" + e.getKey(), i -> ids.contains(types[i]));
        }
        for (String col : LABEL_COLUMNS) {
            Set<String> values = new TreeSet<>();
            for (int i = 0; i < types.length; i++) values.add(String.valueOf(examples.get(groups[i]).labels().get(col).get(position[i])));
            for (String v : values) {
                byRow.put(col + "=" + v, i -> v.equals(String.valueOf(examples.get(groups[i]).labels().get(col).get(position[i]))));
            }
        }
        List<ProbeTask> out = new ArrayList<>();
        Set<String> seen = new java.util.HashSet<>();
        int[] index = new int[types.length];
        for (int i = 0; i < index.length; i++) index[i] = i;
        for (Map.Entry<String, IntPredicate> e : byRow.entrySet()) {
            IntPredicate rowHolds = e.getValue();
            StringBuilder key = new StringBuilder(types.length);
            for (int i = 0; i < types.length; i++) key.append(rowHolds.test(i) ? '1' : '0');
            if (!seen.add(key.toString())) continue;
            task(e.getKey(), rows, index, rowHolds, minRows).ifPresent(out::add);
        }
        return out;
    }

    /** The word classes' token ids. */
    public static Map<String, Set<Integer>> classes() {
        TinyLang lang = TinyLang.defaults();
        Map<String, Set<Integer>> m = new LinkedHashMap<>();
        m.put("name", ids(lang, TinyLang.NAMES));
        Set<String> dets = new TreeSet<>(TinyLang.DETERMINERS_SINGULAR);
        dets.addAll(TinyLang.DETERMINERS_PLURAL);
        m.put("determiner", ids(lang, List.copyOf(dets)));
        m.put("adjective", ids(lang, TinyLang.ADJECTIVES));
        m.put("noun", ids(lang, TinyLang.NOUNS.stream().flatMap(n -> List.of(n.singular(), n.plural()).stream()).toList()));
        m.put("place", ids(lang, TinyLang.PLACES.stream().flatMap(n -> List.of(n.singular(), n.plural()).stream()).toList()));
        m.put("preposition", ids(lang, TinyLang.PREPOSITIONS));
        List<String> verbs = new ArrayList<>();
        for (TinyLang.VerbForms v : TinyLang.INTRANSITIVE) verbs.addAll(List.of(v.singular(), v.plural(), v.past()));
        for (TinyLang.VerbForms v : TinyLang.TRANSITIVE) verbs.addAll(List.of(v.singular(), v.plural(), v.past()));
        m.put("verb", ids(lang, verbs));
        return m;
    }

    private static Set<Integer> ids(TinyLang lang, List<String> words) {
        Set<Integer> s = new TreeSet<>();
        for (String w : words) s.add((int) lang.tokenId(w));
        return s;
    }

    private static Optional<ProbeTask> task(String name, ProbeData rows, int[] types, IntPredicate holds, int minRows) {
        int[] labels = new int[types.length];
        int testPos = 0, testNeg = 0, trainPos = 0, trainNeg = 0;
        for (int i = 0; i < types.length; i++) {
            labels[i] = holds.test(types[i]) ? 1 : 0;
            boolean test = Math.floorMod(rows.groups()[i], FOLDS) == 0;
            if (test) {
                if (labels[i] == 1) testPos++;
                else testNeg++;
            } else if (labels[i] == 1) {
                trainPos++;
            } else {
                trainNeg++;
            }
        }
        if (testPos < minRows || testNeg == 0 || trainPos == 0 || trainNeg == 0) return Optional.empty();
        return Optional.of(ProbeTask.byGroup(name, new ProbeData(rows.x(), labels, rows.groups(), rows.types(), 2), FOLDS));
    }

    private static int[] types(ProbeData rows) {
        return rows.types().orElseThrow(() -> new IllegalArgumentException("rows need token ids as types "
                + "(TinyLangConcepts.harvest gives them; or data.withTypes(tokenIds))"));
    }

    private static List<Integer> ints(int[] a) {
        List<Integer> l = new ArrayList<>(a.length);
        for (int v : a) l.add(v);
        return l;
    }
}
