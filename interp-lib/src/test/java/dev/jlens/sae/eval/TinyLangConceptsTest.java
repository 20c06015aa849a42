package dev.jlens.sae.eval;

import dev.jlens.probe.ProbeTask;

import dev.jlens.data.TinyLang;
import dev.jlens.probe.ProbeData;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Parents from token ids: labels follow the words' first letters and the lexicon's classes; splits by sequence. */
class TinyLangConceptsTest {
    @Test
    void parentsLabelTheirWordsAndHoldOutWholeSequences() {
        List<String> vocab = TinyLang.defaults().vocab();
        int n = vocab.size() * 10;
        float[][] x = new float[n][2];
        int[] types = new int[n], groups = new int[n], labels = new int[n];
        for (int i = 0; i < n; i++) {
            types[i] = i % vocab.size();
            groups[i] = i / vocab.size();   // ten "sequences", each with every token once
            labels[i] = i % 2;
            x[i][0] = i;
        }
        ProbeData rows = new ProbeData(x, labels, groups, Optional.of(types), 2);
        List<ProbeTask> letters = TinyLangConcepts.firstLetters(rows, 3, 1);
        assertFalse(letters.isEmpty());
        for (ProbeTask t : letters) {
            assertEquals(1, t.name().length());
            for (ProbeData d : List.of(t.train(), t.test())) {
                for (int i = 0; i < d.size(); i++) {
                    String w = TinyLang.defaults().vocab().get(d.types().get()[i]);
                    boolean starts = Character.toLowerCase(w.charAt(0)) == t.name().charAt(0);
                    assertEquals(starts ? 1 : 0, d.labels()[i], t.name() + " / " + w);
                }
            }
            // every fifth sequence is test: 2 of 10
            assertEquals(2 * vocab.size(), t.test().size(), t.name());
            assertTrue(java.util.Arrays.stream(t.test().groups()).allMatch(g -> g % TinyLangConcepts.FOLDS == 0));
        }
        List<String> names = letters.stream().map(ProbeTask::name).toList();
        assertTrue(names.contains("b") && names.contains("s"), names.toString());   // b: Bob (lower-cased), big, ...
        assertFalse(names.contains("a"), "only 'a' and 'Alice' start with a: fewer than 3 words");
        Map<String, Set<Integer>> classes = TinyLangConcepts.classes();
        assertTrue(classes.get("noun").contains((int) TinyLang.defaults().tokenId("dogs")));
        assertTrue(classes.get("verb").contains((int) TinyLang.defaults().tokenId("ran")));
        ProbeTask noun = TinyLangConcepts.wordClasses(rows).stream().filter(t -> t.name().equals("noun")).findFirst()
                .orElseThrow();
        assertEquals(2 * TinyLang.NOUNS.size() * 8, noun.train().classCounts()[1], "both forms of 30 nouns, 8 sequences");
        assertThrows(IllegalArgumentException.class, () -> TinyLangConcepts.firstLetters(ProbeData.of(x, labels, groups), 3, 1));
    }
}
