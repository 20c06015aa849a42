package dev.jlens.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.Dialogues.Attribute;
import dev.jlens.data.Dialogues.Meta;
import dev.jlens.data.Dialogues.Speaker;
import dev.jlens.data.Dialogues.TokenLabel;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.junit.jupiter.api.Test;

/**
 * The dialogues' labels against an independent reading of their text, and the statistics the generator promises:
 * the attributes drive the user's words so that a bag of words beats chance, yet no single word decides.
 */
class DialoguesTest {

    private static final Dialogues TASK = Dialogues.defaults().withSeed(3);

    /** The index of the list holding {@code word}, or -1: a lookup independent of the generator's labels. */
    private static int listOf(List<List<String>> lists, String word) {
        int found = -1;
        for (int i = 0; i < lists.size(); i++) {
            if (lists.get(i).contains(word)) {
                assertEquals(-1, found, word + " is in two lists");
                found = i;
            }
        }
        return found;
    }

    @Test
    void labelsAgreeWithAnIndependentReadingOfTheText() {
        int asked = 0;
        for (Split split : Split.values()) {
            for (Example<Meta> ex : TASK.examples(split, 0, 300)) {
                List<String> w = ex.tokens();
                Meta m = ex.meta();
                assertEquals("<bos>", w.get(0));
                assertEquals("<eos>", w.get(w.size() - 1));
                assertTrue(w.size() <= TASK.maxLength(), ex.text());
                // split the text into turns at "user :" / "assistant :"
                List<int[]> turns = new ArrayList<>();   // start, end, speaker (1 user, 2 assistant)
                for (int i = 1; i < w.size() - 1; i++) {
                    boolean user = w.get(i).equals("user"), assistant = w.get(i).equals("assistant");
                    if ((user || assistant) && w.get(i + 1).equals(":")) {
                        if (!turns.isEmpty()) turns.get(turns.size() - 1)[1] = i;
                        turns.add(new int[] {i, -1, user ? 1 : 2});
                    }
                }
                turns.get(turns.size() - 1)[1] = w.size() - 1;
                boolean hasQuestion = m.asked().isPresent();
                assertEquals(2 * TASK.turns() + (hasQuestion ? 2 : 0), turns.size(), ex.text());
                assertEquals(turns.size(), m.turns().size());
                for (int t = 0; t < turns.size(); t++) {
                    int[] turn = turns.get(t);
                    Speaker speaker = turn[2] == 1 ? Speaker.USER : Speaker.ASSISTANT;
                    assertEquals(t % 2 == 0 ? Speaker.USER : Speaker.ASSISTANT, speaker, "turns alternate");
                    assertEquals(new Dialogues.Turn(speaker, t / 2, turn[0], turn[1]), m.turns().get(t));
                    for (int i = turn[0]; i < turn[1]; i++) {
                        TokenLabel l = m.labels().get(i);
                        assertEquals(speaker, l.speaker(), "speaker at " + i + " of " + ex.text());
                        assertEquals(t / 2, l.turn());
                        assertEquals(m.age(), l.age());
                        assertEquals(m.expertise(), l.expertise());
                        assertEquals(m.moods().get(Math.min(t / 2, TASK.turns() - 1)), l.mood(), "mood of the exchange");
                    }
                    boolean question = hasQuestion && t >= 2 * TASK.turns();
                    if (speaker == Speaker.USER && !question) {
                        int words = turn[1] - turn[0] - 3;
                        assertTrue(words >= Dialogues.MIN_USER_WORDS && words <= Dialogues.MAX_USER_WORDS, ex.text());
                        assertEquals("?", w.get(turn[1] - 1));
                        for (int i = turn[0] + 2; i < turn[1] - 1; i++) checkUserWord(w.get(i), m.labels().get(i));
                    } else if (speaker == Speaker.ASSISTANT && !question) {
                        assertEquals(".", w.get(turn[1] - 1));
                        assertEquals("try", w.get(turn[1] - 3));
                        String opener = w.get(turn[0] + 2), rec = w.get(turn[1] - 2);
                        assertEquals(listOf(Dialogues.OPENERS, opener), m.labels().get(turn[0] + 2).cueValue());
                        assertEquals(listOf(Dialogues.RECOMMENDATIONS, rec), m.labels().get(turn[1] - 2).cueValue());
                        for (int i = turn[0] + 3; i < turn[1] - 3; i++) {
                            int depth = listOf(Dialogues.DEPTH, w.get(i));
                            assertEquals(depth, m.labels().get(i).cueValue(), w.get(i));
                            if (depth < 0 && !w.get(i).equals("sorry")) {
                                assertTrue(Dialogues.ASSISTANT_NEUTRAL.contains(w.get(i))
                                        || Dialogues.TOPIC_WORDS.get(m.topic().ordinal()).contains(w.get(i)), w.get(i));
                            }
                        }
                    } else if (speaker == Speaker.USER) {
                        // the question names the attribute; the answer is the true value's word
                        Attribute a = m.asked().orElseThrow();
                        assertEquals(Dialogues.QUESTIONS.get(a.ordinal()), w.subList(turn[0] + 2, turn[1] - 1));
                        int[] answer = turns.get(t + 1);
                        assertEquals(answer[0] + 2, m.answerPosition().orElseThrow());
                        String said = w.get(answer[0] + 2);
                        String truth = switch (a) {
                            case AGE -> List.of("teen", "adult", "senior").get(m.age().ordinal());
                            case EXPERTISE -> List.of("novice", "expert").get(m.expertise().ordinal());
                            case MOOD -> List.of("happy", "calm", "annoyed").get(m.moods().get(TASK.turns() - 1).ordinal());
                        };
                        assertEquals(truth, said, ex.text());
                        assertEquals(truth, a.answerWords().get(m.value(a)));
                        asked++;
                    }
                }
            }
        }
        assertTrue(asked > 120 && asked < 240, asked + " of 600 dialogues ask (askRate 0.3)");
    }

    /** A user word is in exactly one of the lists its label names, and a cue's value is its list's index. */
    private static void checkUserWord(String word, TokenLabel l) {
        switch (l.source()) {
            case AGE_CUE -> assertEquals(listOf(Dialogues.AGE_CUES, word), l.cueValue(), word);
            case EXPERTISE_CUE -> assertEquals(listOf(Dialogues.EXPERTISE_CUES, word), l.cueValue(), word);
            case MOOD_CUE -> assertEquals(listOf(Dialogues.MOOD_CUES, word), l.cueValue(), word);
            case TOPIC -> assertTrue(listOf(Dialogues.TOPIC_WORDS, word) >= 0, word);
            case NEUTRAL -> assertTrue(Dialogues.USER_NEUTRAL.contains(word), word);
            default -> throw new AssertionError("a user word from " + l.source() + ": " + word);
        }
        if (l.source() != Dialogues.Source.NEUTRAL) assertTrue(!Dialogues.USER_NEUTRAL.contains(word), word);
    }

    /** The attribute values of the user words of each unit (a dialogue, or one user turn for the mood). */
    private record Bag(List<String> words, int label) {}

    private static List<Bag> bags(Split split, int n, Attribute a) {
        List<Bag> out = new ArrayList<>();
        for (Example<Meta> ex : TASK.examples(split, 0, n)) {
            Meta m = ex.meta();
            List<String> dialogueWords = new ArrayList<>();
            for (Dialogues.Turn t : m.turns()) {
                if (t.speaker() != Speaker.USER || t.exchange() >= TASK.turns()) continue;
                List<String> turnWords = ex.tokens().subList(t.start() + 2, t.end() - 1);
                if (a == Attribute.MOOD) out.add(new Bag(turnWords, m.moods().get(t.exchange()).ordinal()));
                dialogueWords.addAll(turnWords);
            }
            if (a != Attribute.MOOD) out.add(new Bag(dialogueWords, a == Attribute.AGE ? m.age().ordinal()
                    : m.expertise().ordinal()));
        }
        return out;
    }

    @Test
    void bagOfWordsBeatsChanceButNoSingleWordDecides() {
        for (Attribute a : Attribute.values()) {
            int k = a.classes();
            List<Bag> train = bags(Split.TRAIN, 3000, a), test = bags(Split.TEST, 600, a);
            // naive Bayes with add-one smoothing over the user's words
            Map<String, double[]> counts = new HashMap<>();
            double[] totals = new double[k], prior = new double[k];
            for (Bag b : train) {
                prior[b.label()]++;
                for (String word : b.words()) {
                    counts.computeIfAbsent(word, x -> new double[k])[b.label()]++;
                    totals[b.label()]++;
                }
            }
            int right = 0;
            for (Bag b : test) {
                double[] score = new double[k];
                for (int c = 0; c < k; c++) {
                    score[c] = Math.log(prior[c]);
                    for (String word : b.words()) {
                        double[] cnt = counts.getOrDefault(word, new double[k]);
                        score[c] += Math.log((cnt[c] + 1) / (totals[c] + counts.size()));
                    }
                }
                int best = 0;
                for (int c = 1; c < k; c++) if (score[c] > score[best]) best = c;
                right += best == b.label() ? 1 : 0;
            }
            double accuracy = right / (double) test.size(), chance = 1.0 / k;
            assertTrue(accuracy > chance + 0.25, String.format(Locale.ROOT,
                    "%s: bag-of-words accuracy %.3f, chance %.3f", a, accuracy, chance));
            // no word decides: P(value | word) stays well below 1 for every frequent word
            double worst = 0;
            String worstWord = "";
            for (Map.Entry<String, double[]> e : counts.entrySet()) {
                double sum = 0, max = 0;
                for (int c = 0; c < k; c++) {
                    double p = e.getValue()[c] / prior[c];   // class-balanced
                    sum += p;
                    max = Math.max(max, p);
                }
                if (e.getValue().length > 0 && sumOf(e.getValue()) >= 100 && max / sum > worst) {
                    worst = max / sum;
                    worstWord = e.getKey();
                }
            }
            assertTrue(worst < 0.85, a + ": '" + worstWord + "' gives P(value | word) = " + worst);
            assertTrue(worst > chance + 0.1, a + ": no word carries the attribute at all (best " + worstWord + " "
                    + worst + ")");
        }
    }

    private static double sumOf(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return s;
    }

    @Test
    void moodSwitchesAtTheConfiguredRateAndOnlyBetweenExchanges() {
        int changes = 0, chances = 0;
        for (Example<Meta> ex : TASK.examples(Split.TRAIN, 0, 2000)) {
            List<Dialogues.Mood> moods = ex.meta().moods();
            assertEquals(TASK.turns(), moods.size());
            for (int t = 1; t < moods.size(); t++) {
                chances++;
                changes += moods.get(t) != moods.get(t - 1) ? 1 : 0;
            }
        }
        double rate = changes / (double) chances;
        assertTrue(Math.abs(rate - TASK.moodSwitch()) < 0.03, "mood changed in " + rate + " of exchanges");
        Dialogues calm = new Dialogues(3, 0.3, 0, 0.3, 1);
        for (Example<Meta> ex : calm.examples(Split.TRAIN, 0, 50)) {
            assertEquals(1, ex.meta().moods().stream().distinct().count(), "moodSwitch 0 keeps the mood");
        }
    }

    @Test
    void badSettingsAreRejectedNamingTheRange() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Dialogues(0, 0.3, 0.2, 0.3, 0));
        assertTrue(e.getMessage().contains("turns must be 1..8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Dialogues(3, 1.5, 0.2, 0.3, 0));
        assertTrue(e.getMessage().contains("askRate"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Dialogues(3, 0.3, 0.2, 0.95, 0));
        assertTrue(e.getMessage().contains("cueNoise must be in 0..0.9"), e.getMessage());
    }
}
