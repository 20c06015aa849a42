package dev.jlens.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.model.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Properties every task shares: determinism, tokenizer round trips, batches. */
class TaskTest {

    private static final List<Task<?>> TASKS = List.of(
            new Induction(64, 12, 7),
            ArithCot.defaults().withSeed(7).withBacktrackRate(0.3).withTriggerRate(0.3),
            ArithCot.defaults().withSeed(7).withFormat(ArithCot.Format.DIRECT),
            new TinyLang(48, 2, 7),
            new CyclicArith(13, 3, 7),
            new Dialogues(2, 0.5, 0.25, 0.3, 7),
            HiddenRoles.defaults().withSeed(7));

    @Test
    void sameSeedAndIndexGiveTheSameExampleInAnyOrder() {
        for (Task<?> task : TASKS) {
            for (Split split : Split.values()) {
                List<? extends Example<?>> forward = task.examples(split, 0, 20);
                for (int i = 19; i >= 0; i--) {
                    Example<?> again = task.example(split, i);
                    assertEquals(forward.get(i), again, task + " " + split + " example " + i);
                    assertArrayEquals(forward.get(i).ids(), again.ids());
                }
            }
        }
    }

    @Test
    void differentSeedsAndSplitsGiveDifferentExamples() {
        for (Task<?> task : TASKS) {
            Task<?> other = task.withSeed(8);
            assertEquals(8, other.seed());
            int differ = 0;
            int differSplit = 0;
            for (int i = 0; i < 20; i++) {
                String a = task.example(Split.TRAIN, i).text();
                differ += a.equals(other.example(Split.TRAIN, i).text()) ? 0 : 1;
                differSplit += a.equals(task.example(Split.TEST, i).text()) ? 0 : 1;
            }
            // Short arithmetic problems can coincide by chance, so ask for most, not all.
            assertTrue(differ >= 18, task + ": only " + differ + " of 20 examples change with the seed");
            assertTrue(differSplit >= 18, task + ": only " + differSplit + " of 20 examples differ between splits");
        }
    }

    @Test
    void tokenizerRoundTripsEveryExample(@TempDir Path tmp) {
        for (Task<?> task : TASKS) {
            Path dir = tmp.resolve(task.name() + "-" + task.hashCode());
            Path file = task.writeTokenizer(dir);
            assertTrue(Files.isRegularFile(file), "no tokenizer written at " + file);
            try (Tokenizer tok = task.tokenizer(dir)) {
                assertEquals(task.vocabSize(), tok.vocabSize(), task.toString());
                assertEquals(OptionalLong.of(Task.BOS_ID), tok.bosTokenId());
                assertEquals(OptionalLong.of(Task.EOS_ID), tok.eosTokenId());
                assertEquals(Task.PAD_ID, tok.padTokenId());
                List<String> vocab = task.vocab();
                for (int id = 0; id < vocab.size(); id++) {
                    assertEquals(id, tok.tokenId(vocab.get(id)), "vocabulary entry " + vocab.get(id));
                    assertEquals(id, task.tokenId(vocab.get(id)), "vocabulary entry " + vocab.get(id));
                }
                for (Split split : Split.values()) {
                    for (Example<?> ex : task.examples(split, 0, 25)) {
                        assertArrayEquals(ex.ids(), tok.toTokens(ex.text(), false), ex.text());
                        assertEquals(ex.text(), tok.decode(ex.ids()));
                        for (int i = 0; i < ex.length(); i++) {
                            assertEquals(ex.tokens().get(i), vocab.get((int) ex.ids()[i]));
                        }
                        assertEquals(Task.BOS_ID, ex.ids()[0]);
                    }
                }
            }
        }
    }

    @Test
    void unknownTokensAreRejectedNamingTheTask() {
        for (Task<?> task : TASKS) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> task.tokenId("zebra"));
            assertTrue(e.getMessage().contains("zebra") && e.getMessage().contains(task.name()), e.getMessage());
        }
    }

    @Test
    void batchesArePaddedToMaxLengthWithAlignedTargetWeights() {
        for (Task<?> task : TASKS) {
            TaskBatch<?> tb = task.batch(Split.TRAIN, 3, 8);
            int length = task.maxLength();
            assertEquals(8, tb.size());
            assertEquals(length, tb.batch().length(), task.toString());
            int targets = 0;
            for (int b = 0; b < 8; b++) {
                Example<?> ex = task.example(Split.TRAIN, 3 * 8 + b);
                assertEquals(ex, tb.examples().get(b));
                assertTrue(ex.length() <= length);
                for (int j = 0; j < length; j++) {
                    boolean real = j < ex.length();
                    assertEquals(real, tb.batch().mask()[b][j]);
                    assertEquals(real ? ex.ids()[j] : Task.PAD_ID, tb.batch().ids()[b][j]);
                    if (j > 0) {
                        float w = tb.targetWeights()[b][j - 1];
                        assertEquals(real && ex.lossMask()[j] ? 1f : 0f, w, "row " + b + " target " + j);
                    }
                }
                assertFalse(ex.lossMask()[0], "BOS is never a target");
                targets += ex.targetCount();
            }
            assertEquals(targets, tb.targetCount());
        }
        assertThrows(IllegalArgumentException.class, () -> Tasks.tinyLang().batch(Split.TRAIN, -1, 4));
        assertThrows(IllegalArgumentException.class, () -> Tasks.tinyLang().batch(Split.TRAIN, 0, 0));
    }

    @Test
    void tasksByName() {
        for (String name : Tasks.names()) {
            assertEquals(name, Tasks.named(name).name());
        }
        assertEquals(Tasks.names().size(), Tasks.all().size());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tasks.named("tinylan"));
        assertTrue(e.getMessage().contains("tinylang") && e.getMessage().contains("arith-cot"), e.getMessage());
        assertNotEquals(Tasks.arithCot(), Tasks.arithCot().withSeed(1));
    }

    @Test
    void exampleValidatesItsColumns() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Example<>(
                new long[] {1, 3}, List.of("<bos>", "x"), new boolean[] {false, true},
                java.util.Map.of("pos", List.of("A")), "meta"));
        assertTrue(e.getMessage().contains("pos"), e.getMessage());
        Example<String> ex = new Example<>(new long[] {1, 3}, List.of("<bos>", "x"), new boolean[] {false, true},
                java.util.Map.of("pos", List.of("B", "X")), "meta");
        assertEquals("<bos> x", ex.text());
        assertEquals(1, ex.targetCount());
        e = assertThrows(IllegalArgumentException.class, () -> ex.label("role"));
        assertTrue(e.getMessage().contains("pos"), e.getMessage());
    }
}
