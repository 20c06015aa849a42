package dev.jlens.store;

import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;

import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * Token batches by index, the input of an {@link ActivationStore}: {@code get(i)} is a pure function of {@code i}
 * (so a cache build can resume at any batch without replaying the ones before), and {@code null} past the end of a
 * finite source.
 */
@FunctionalInterface
public interface TokenBatches {

    /** Batch number {@code index}, or {@code null} if the source has fewer batches. */
    Batch get(long index);

    /** Training contexts of a synthetic task ({@code TinyLang}, ...), {@code contextsPerBatch} per batch; endless. */
    static TokenBatches of(Task<?> task, int contextsPerBatch) {
        return of(task, Split.TRAIN, contextsPerBatch);
    }

    /** Contexts of one split of a task, {@code contextsPerBatch} per batch; endless. */
    static TokenBatches of(Task<?> task, Split split, int contextsPerBatch) {
        Objects.requireNonNull(task, "task");
        Objects.requireNonNull(split, "split");
        requirePositive(contextsPerBatch, "contextsPerBatch");
        return index -> task.batch(split, index, contextsPerBatch).batch();
    }

    /** Texts tokenized by the model's tokenizer (BOS prepended, left-padded), {@code textsPerBatch} per batch. */
    static TokenBatches texts(HookedTransformer model, List<String> texts, int textsPerBatch) {
        Objects.requireNonNull(model, "model");
        List<String> copy = List.copyOf(texts);
        requirePositive(textsPerBatch, "textsPerBatch");
        model.requireTokenizer();
        return index -> {
            long from = index * textsPerBatch;
            if (index < 0 || from >= copy.size()) return null;
            return model.toBatch(copy.subList((int) from, (int) Math.min(copy.size(), from + textsPerBatch)));
        };
    }

    /** Rows of token ids (equal lengths, no padding), {@code rowsPerBatch} per batch. */
    static TokenBatches of(long[][] ids, int rowsPerBatch) {
        Objects.requireNonNull(ids, "ids");
        requirePositive(rowsPerBatch, "rowsPerBatch");
        long[][] copy = Arrays.stream(ids).map(long[]::clone).toArray(long[][]::new);
        return index -> {
            long from = index * rowsPerBatch;
            if (index < 0 || from >= copy.length) return null;
            return Batch.of(Arrays.copyOfRange(copy, (int) from, (int) Math.min(copy.length, from + rowsPerBatch)));
        };
    }

    /**
     * Batches from an iterator, made addressable: reading forward continues the iterator, asking for an earlier
     * batch restarts it from {@code iterators.get()} and skips ahead. The iterators must all yield the same batches.
     */
    static TokenBatches fromIterator(Supplier<? extends Iterator<Batch>> iterators) {
        Objects.requireNonNull(iterators, "iterators");
        return new TokenBatches() {
            private Iterator<Batch> it;
            private long next; // index of the batch it.next() returns

            @Override
            public synchronized Batch get(long index) {
                if (index < 0) return null;
                if (it == null || index < next) {
                    it = iterators.get();
                    next = 0;
                }
                while (next < index) {
                    if (!it.hasNext()) return null;
                    it.next();
                    next++;
                }
                if (!it.hasNext()) return null;
                next++;
                return it.next();
            }
        };
    }

    private static void requirePositive(int n, String what) {
        if (n <= 0) throw new IllegalArgumentException(what + " must be >= 1, got " + n);
    }
}
