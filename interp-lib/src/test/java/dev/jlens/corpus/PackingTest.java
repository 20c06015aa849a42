package dev.jlens.corpus;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Packing against SAELens's {@code concat_and_batch_sequences}: small examples worked by hand through its
 * {@code _add_tokens_to_batch} steps, and properties over random documents.
 */
class PackingTest {

    private static final OptionalLong NONE = OptionalLong.empty();

    private static Packing packing(Long beginBatch, Long beginSequence, Long separator) {
        return new Packing(opt(beginBatch), opt(beginSequence), opt(separator), false);
    }

    private static OptionalLong opt(Long id) {
        return id == null ? NONE : OptionalLong.of(id);
    }

    private static void assertWindows(long[][] expected, List<long[]> actual) {
        assertEquals(expected.length, actual.size(), () -> "windows " + actual.stream().map(Arrays::toString).toList());
        for (int i = 0; i < expected.length; i++) {
            assertArrayEquals(expected[i], actual.get(i), "window " + i);
        }
    }

    @Test
    void bosAtEachWindowAndBetweenDocumentsAsSaeLensDefaults() {
        // context 5, begin-batch 0, separator 0. By hand:
        //  doc [1,2,3]: new window, prefix [0], take 4 -> [0,1,2,3]
        //  doc [4..9]: separator 0 fills the window (no room for tokens) -> yield [0,1,2,3,0]; new window
        //     [0,4,5,6,7] -> yield; new window [0,8,9]
        //  doc [10,11]: separator + 1 token -> yield [0,8,9,0,10]; new window [0,11] is the tail, dropped
        List<long[]> docs = List.of(new long[] {1, 2, 3}, new long[] {4, 5, 6, 7, 8, 9}, new long[] {10, 11});
        assertWindows(new long[][] {{0, 1, 2, 3, 0}, {0, 4, 5, 6, 7}, {0, 8, 9, 0, 10}},
                packing(0L, null, 0L).pack(docs, 5));
        List<long[]> kept = packing(0L, null, 0L).withKeepTail(true).pack(docs, 5);
        assertEquals(4, kept.size());
        assertArrayEquals(new long[] {0, 11}, kept.get(3), "the kept tail");
    }

    @Test
    void aDocumentThatAlreadyStartsWithTheTokenGetsNoSecondOne() {
        // context 4, begin-batch 0, separator 0; both documents start with 0 already:
        //  [0,1,2] opens the window as is; [0,3,4,5,6] needs no separator: 1 token fits -> [0,1,2,0];
        //  then [0,3,4,5], and the tail [0,6] is dropped
        List<long[]> docs = List.of(new long[] {0, 1, 2}, new long[] {0, 3, 4, 5, 6});
        assertWindows(new long[][] {{0, 1, 2, 0}, {0, 3, 4, 5}}, packing(0L, null, 0L).pack(docs, 4));
    }

    @Test
    void beginSequenceSeparatorAndBeginBatchTogether() {
        // context 6, begin-batch 100, begin-sequence 101, separator 102:
        //  [1,2]: prefix [100,101] -> [100,101,1,2]
        //  [3..7]: prefix [102,101] fills the window -> [100,101,1,2,102,101]; the document continues in a new
        //  window with begin-batch only (no second begin-sequence): [100,3,4,5,6,7]
        List<long[]> docs = List.of(new long[] {1, 2}, new long[] {3, 4, 5, 6, 7});
        assertWindows(new long[][] {{100, 101, 1, 2, 102, 101}, {100, 3, 4, 5, 6, 7}},
                packing(100L, 101L, 102L).pack(docs, 6));
    }

    @Test
    void plainPackingIsAStraightCutOfTheConcatenation() {
        List<long[]> docs = List.of(new long[] {1, 2, 3}, new long[] {4, 5}, new long[] {6, 7, 8, 9, 10, 11, 12});
        assertWindows(new long[][] {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}}, Packing.plain().pack(docs, 4));
    }

    @Test
    void everyWindowIsFullStartsWithBosAndLosesNothingButTheTail() {
        SplittableRandom r = new SplittableRandom(16);
        for (int trial = 0; trial < 50; trial++) {
            int n = 2 + r.nextInt(40);
            List<long[]> docs = new ArrayList<>();
            List<Long> concatenation = new ArrayList<>();
            for (int d = 0, nDocs = 1 + r.nextInt(30); d < nDocs; d++) {
                long[] doc = new long[r.nextInt(3 * n)]; // empty documents and ones longer than a window too
                for (int i = 0; i < doc.length; i++) doc[i] = 1 + r.nextInt(1000); // 0 is BOS, never in a document
                docs.add(doc);
                for (long t : doc) concatenation.add(t);
            }
            Packing bos = packing(0L, null, 0L);
            List<long[]> windows = bos.pack(docs, n);
            List<long[]> withTail = bos.withKeepTail(true).pack(docs, n);
            List<Long> content = new ArrayList<>();
            for (long[] w : windows) {
                assertEquals(n, w.length, "every window holds exactly contextSize tokens");
                assertEquals(0L, w[0], "BOS at position 0 of every window");
                for (long t : w) if (t != 0) content.add(t);
            }
            List<Long> tailContent = new ArrayList<>(content);
            long[] tail = withTail.size() > windows.size() ? withTail.get(withTail.size() - 1) : new long[0];
            for (long t : tail) if (t != 0) tailContent.add(t);
            assertEquals(concatenation, tailContent, "documents in order, nothing lost when the tail is kept");
            assertEquals(concatenation.subList(0, content.size()), content, "without the tail: a prefix");
            assertEquals(concatenation.size() - content.size(), Arrays.stream(tail).filter(t -> t != 0).count(),
                    "what is missing is exactly the tail's tokens");
            assertEquals(withTail.size() - windows.size() == 1, tail.length > 0);
            for (int i = 0; i < windows.size(); i++) assertArrayEquals(windows.get(i), withTail.get(i));
        }
    }

    @Test
    void aOneTokenWindowWithABeginBatchTokenIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> packing(0L, null, null).packer(1));
        assertEquals(List.of(1L, 2L), Packing.plain().pack(List.of(new long[] {1, 2}), 1).stream().map(w -> w[0]).toList());
    }
}
