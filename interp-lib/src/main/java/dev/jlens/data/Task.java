package dev.jlens.data;

import dev.jlens.model.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A deterministic synthetic task for training and dissecting tiny models.
 *
 * <p>Every task is a record holding its settings and a seed. {@link #example(Split, long)} gives random access:
 * example {@code i} of a split is a function of (seed, split, i) alone, so a trainer can ask for the examples of
 * step {@code s} in any order and get the same data. Train and test problems are disjoint by construction (see
 * {@link Split}). All tasks share the special tokens {@code <pad>} = 0, {@code <bos>} = 1, {@code <eos>} = 2 and a
 * word-level tokenizer (one vocabulary entry per whitespace-separated word).
 *
 * @param <M> the metadata each example carries
 */
public sealed interface Task<M> permits Induction, ArithCot, TinyLang, CyclicArith, Dialogues,
        HiddenRoles {

    /** Id of {@code <pad>}. */
    long PAD_ID = 0;
    /** Id of {@code <bos>}, the first token of every example. */
    long BOS_ID = 1;
    /** Id of {@code <eos>}. */
    long EOS_ID = 2;
    /** The special tokens, by id. */
    List<String> SPECIALS = List.of("<pad>", "<bos>", "<eos>");

    /** The task's name: {@code induction}, {@code arith-cot}, {@code tinylang}, {@code cyclic-arith},
     * {@code dialogues} or {@code hidden-roles}. */
    String name();

    /** The seed every example derives from. */
    long seed();

    /** The same task with another seed (the same problems per split, drawn in another order). */
    Task<M> withSeed(long seed);

    /** Every vocabulary entry, by id (specials first). */
    List<String> vocab();

    /** The id of a vocabulary entry; throws naming the task if it is not one. */
    long tokenId(String token);

    /** The longest sequence this task produces, in tokens: the length of every {@link #batch}. */
    int maxLength();

    /** Example {@code index} of a split, a pure function of (seed, split, index). */
    Example<M> example(Split split, long index);

    /** Number of vocabulary entries (the model's {@code d_vocab}). */
    default int vocabSize() {
        return vocab().size();
    }

    /** Examples {@code from .. from + count - 1} of a split. */
    default List<Example<M>> examples(Split split, long from, int count) {
        if (count < 0 || from < 0) {
            throw new IllegalArgumentException("need from >= 0 and count >= 0, got from " + from + ", count " + count);
        }
        List<Example<M>> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            out.add(example(split, from + i));
        }
        return out;
    }

    /**
     * Batch {@code step} of a split: examples {@code step * batchSize ..}, right-padded to {@link #maxLength()},
     * with next-token loss weights (see {@link TaskBatch}).
     */
    default TaskBatch<M> batch(Split split, long step, int batchSize) {
        if (batchSize <= 0 || step < 0) {
            throw new IllegalArgumentException("need step >= 0 and batchSize >= 1, got step " + step
                    + ", batchSize " + batchSize);
        }
        return TaskBatch.of(examples(split, Math.multiplyExact(step, (long) batchSize), batchSize), maxLength(),
                PAD_ID);
    }

    /** Writes this task's word-level {@code tokenizer.json} into {@code dir} (created if missing); returns the file. */
    default Path writeTokenizer(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot create tokenizer directory " + dir, e);
        }
        List<String> vocab = vocab();
        return Tokenizer.buildWordLevel(vocab.subList(SPECIALS.size(), vocab.size()),
                Map.of(SPECIALS.get(0), PAD_ID, SPECIALS.get(1), BOS_ID, SPECIALS.get(2), EOS_ID),
                dir.resolve("tokenizer.json"));
    }

    /** Writes this task's tokenizer into {@code dir} and loads it (close it when done). */
    default Tokenizer tokenizer(Path dir) {
        return Tokenizer.load(writeTokenizer(dir));
    }
}
