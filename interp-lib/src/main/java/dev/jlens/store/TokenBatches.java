package dev.jlens.store;

import dev.jlens.corpus.Packing;
import dev.jlens.corpus.TokenShards;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;

import java.nio.file.Path;
import java.util.ArrayList;

import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;
import java.util.stream.Stream;

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

    /**
     * Texts tokenized by the model's tokenizer (BOS prepended, left-padded), {@code textsPerBatch} per batch. A text
     * longer than the model's context is truncated to its first {@code n_ctx} tokens (BOS included); to use all of a
     * long text, pack it into windows with {@link #packed}.
     */
    static TokenBatches texts(HookedTransformer model, List<String> texts, int textsPerBatch) {
        Objects.requireNonNull(model, "model");
        List<String> copy = List.copyOf(texts);
        requirePositive(textsPerBatch, "textsPerBatch");
        Tokenizer tokenizer = model.requireTokenizer();
        int nCtx = model.cfg().nCtx();
        return index -> {
            long from = index * textsPerBatch;
            if (index < 0 || from >= copy.size()) return null;
            List<String> part = copy.subList((int) from, (int) Math.min(copy.size(), from + textsPerBatch));
            long[][] rows = new long[part.size()][];
            for (int i = 0; i < rows.length; i++) {
                long[] ids = tokenizer.toTokens(part.get(i), true);
                rows[i] = ids.length > nCtx ? Arrays.copyOf(ids, nCtx) : ids;
            }
            return Batch.leftPadded(rows, tokenizer.padTokenId());
        };
    }

    /**
     * Documents packed into windows of {@code contextSize} tokens as SAELens packs them ({@link Packing}; e.g.
     * {@code Packing.saeLens(model.requireTokenizer())}), {@code windowsPerBatch} windows per batch. Texts are
     * tokenized as batches are asked for and the windows so far are kept, so batch {@code n} is the same whenever it
     * is asked for (a cache build resumes); for corpora too large to hold as tokens, pretokenize them into shards and
     * use {@link #fromShards}. A {@code contextSize} beyond the model's context is an error. With a packing that
     * keeps its tail, the last window is right-padded (mask false).
     */
    static TokenBatches packed(HookedTransformer model, Stream<String> texts, int contextSize, int windowsPerBatch,
            Packing packing) {
        Objects.requireNonNull(model, "model");
        int nCtx = model.cfg().nCtx();
        if (contextSize > nCtx) {
            throw new IllegalArgumentException("contextSize " + contextSize + " is larger than the context of model "
                    + model + ", " + nCtx + " tokens; pack into windows of at most " + nCtx);
        }
        return packed(model.requireTokenizer(), texts, contextSize, windowsPerBatch, packing);
    }

    /** {@link #packed(HookedTransformer, Stream, int, int, Packing)} over a list of texts. */
    static TokenBatches packed(HookedTransformer model, List<String> texts, int contextSize, int windowsPerBatch,
            Packing packing) {
        return packed(model, List.copyOf(texts).stream(), contextSize, windowsPerBatch, packing);
    }

    /** Documents packed with a tokenizer alone (no model context to check against); see the model overload. */
    static TokenBatches packed(Tokenizer tokenizer, Stream<String> texts, int contextSize, int windowsPerBatch,
            Packing packing) {
        Objects.requireNonNull(tokenizer, "tokenizer");
        Objects.requireNonNull(texts, "texts");
        Objects.requireNonNull(packing, "packing");
        requirePositive(windowsPerBatch, "windowsPerBatch");
        Packing.Packer packer = packing.packer(contextSize);
        Iterator<String> it = texts.iterator();
        List<long[]> windows = new ArrayList<>();
        long padId = tokenizer.padTokenId();
        return new TokenBatches() {
            private boolean ended;

            @Override
            public synchronized Batch get(long index) {
                if (index < 0) return null;
                long want = Math.multiplyExact(index + 1, (long) windowsPerBatch);
                while (windows.size() < want && !ended) {
                    if (it.hasNext()) {
                        packer.add(tokenizer.toTokens(it.next(), false), windows::add);
                    } else {
                        packer.finish(windows::add);
                        ended = true;
                    }
                }
                long from = index * windowsPerBatch;
                if (from >= windows.size()) return null;
                List<long[]> part = windows.subList((int) from, (int) Math.min(windows.size(), want));
                return Batch.rightPadded(part.toArray(long[][]::new), padId);
            }
        };
    }

    /**
     * Pretokenized windows ({@code ./lab pretokenize}, {@link dev.jlens.corpus.Pretokenize}), {@code windowsPerBatch}
     * per batch; each shard's checksum is checked when it is first read.
     */
    static TokenBatches fromShards(Path dir, int windowsPerBatch) {
        return fromShards(TokenShards.open(dir), windowsPerBatch);
    }

    /** {@link #fromShards(Path, int)} over shards already opened. */
    static TokenBatches fromShards(TokenShards shards, int windowsPerBatch) {
        Objects.requireNonNull(shards, "shards");
        requirePositive(windowsPerBatch, "windowsPerBatch");
        return index -> {
            if (index < 0) return null;
            long from = Math.multiplyExact(index, (long) windowsPerBatch);
            if (from >= shards.windows()) return null;
            return Batch.of(shards.windows(from, windowsPerBatch));
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
