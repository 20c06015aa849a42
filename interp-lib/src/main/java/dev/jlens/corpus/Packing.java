package dev.jlens.corpus;

import dev.jlens.model.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.function.Consumer;

/**
 * How documents are packed into windows of exactly {@code contextSize} tokens, as SAELens's
 * {@code concat_and_batch_sequences} does: documents, tokenized without special tokens, are concatenated in order
 * and cut into windows;
 * <ul>
 *   <li>{@code beginBatchToken} is put at position 0 of every window, unless the content there already is it;</li>
 *   <li>{@code beginSequenceToken} is put before every document, unless the document already starts with it;</li>
 *   <li>{@code separatorToken} is put between two documents inside a window, unless the next one (after its
 *       begin-sequence token) already starts with it;</li>
 *   <li>the partial window at the end is dropped, or kept ({@code keepTail}, shorter than the others).</li>
 * </ul>
 * A document that runs past the end of a window continues in the next one (after its begin-batch token).
 * SAELens's defaults are {@link #saeLens(Tokenizer)}: begin-batch BOS, no begin-sequence token, separator BOS.
 */
public record Packing(OptionalLong beginBatchToken, OptionalLong beginSequenceToken, OptionalLong separatorToken,
        boolean keepTail) {

    /** Checks for nulls. */
    public Packing {
        Objects.requireNonNull(beginBatchToken, "beginBatchToken (OptionalLong.empty() for none)");
        Objects.requireNonNull(beginSequenceToken, "beginSequenceToken (OptionalLong.empty() for none)");
        Objects.requireNonNull(separatorToken, "separatorToken (OptionalLong.empty() for none)");
    }

    /** No special tokens at all: documents back to back. */
    public static Packing plain() {
        return new Packing(OptionalLong.empty(), OptionalLong.empty(), OptionalLong.empty(), false);
    }

    /**
     * SAELens's defaults for a tokenizer: begin-batch token BOS ({@code prepend_bos=True}), no begin-sequence token,
     * separator BOS ({@code sequence_separator_token="bos"}; EOS where the tokenizer has no BOS), tail dropped.
     */
    public static Packing saeLens(Tokenizer tokenizer) {
        Objects.requireNonNull(tokenizer, "tokenizer");
        OptionalLong bos = tokenizer.bosTokenId();
        return new Packing(bos, OptionalLong.empty(), bos.isPresent() ? bos : tokenizer.eosTokenId(), false);
    }

    /** This packing with another begin-batch token (empty: none). */
    public Packing withBeginBatchToken(OptionalLong id) {
        return new Packing(id, beginSequenceToken, separatorToken, keepTail);
    }

    /** This packing with another begin-sequence token (empty: none). */
    public Packing withBeginSequenceToken(OptionalLong id) {
        return new Packing(beginBatchToken, id, separatorToken, keepTail);
    }

    /** This packing with another separator token (empty: none). */
    public Packing withSeparatorToken(OptionalLong id) {
        return new Packing(beginBatchToken, beginSequenceToken, id, keepTail);
    }

    /** This packing keeping (true) or dropping the last, partial window. */
    public Packing withKeepTail(boolean keep) {
        return new Packing(beginBatchToken, beginSequenceToken, separatorToken, keep);
    }

    /** A packer that cuts windows of {@code contextSize} tokens. */
    public Packer packer(int contextSize) {
        return new Packer(this, contextSize);
    }

    /** Packs token documents into windows at once (small corpora, tests). */
    public List<long[]> pack(Iterable<long[]> documents, int contextSize) {
        Packer p = packer(contextSize);
        List<long[]> out = new ArrayList<>();
        for (long[] doc : documents) p.add(doc, out::add);
        p.finish(out::add);
        return out;
    }

    @Override
    public String toString() {
        return "Packing[beginBatch " + show(beginBatchToken) + ", beginSequence " + show(beginSequenceToken)
                + ", separator " + show(separatorToken) + ", tail " + (keepTail ? "kept" : "dropped") + "]";
    }

    private static String show(OptionalLong id) {
        return id.isPresent() ? String.valueOf(id.getAsLong()) : "none";
    }

    /**
     * Packs documents one at a time into windows, handing each full window to a consumer; not thread-safe. The
     * steps mirror SAELens's {@code _add_tokens_to_batch} one for one, so the windows are the same token for token.
     */
    public static final class Packer {
        private final Packing packing;
        private final int contextSize;
        private final long[] window;
        private int filled;
        private boolean open; // a window has been started (SAELens: batch is not None)
        private long documents;
        private long documentTokens;
        private long windows;

        Packer(Packing packing, int contextSize) {
            this.packing = packing;
            if (contextSize < 1) throw new IllegalArgumentException("contextSize must be >= 1, got " + contextSize);
            if (contextSize < 2 && packing.beginBatchToken.isPresent()) {
                // A one-token window holding only the begin-batch token would never take a document token.
                throw new IllegalArgumentException("contextSize must be >= 2 with a begin-batch token, got " + contextSize);
            }
            this.contextSize = contextSize;
            this.window = new long[contextSize];
        }

        /** Adds one document's tokens (no special tokens added by the tokenizer), emitting every window it fills. */
        public void add(long[] tokens, Consumer<long[]> out) {
            Objects.requireNonNull(tokens, "tokens");
            documents++;
            documentTokens += tokens.length;
            int offset = 0;
            boolean startOfSequence = true;
            long[] prefix = new long[3];
            while (tokens.length - offset > 0) {
                int nPrefix = 0;
                long first = tokens[offset];
                if (startOfSequence && packing.beginSequenceToken.isPresent()
                        && first != packing.beginSequenceToken.getAsLong()) {
                    first = packing.beginSequenceToken.getAsLong();
                    prefix[nPrefix++] = first; // prepended: the later insertions go before it
                }
                if (!open) {
                    if (packing.beginBatchToken.isPresent() && first != packing.beginBatchToken.getAsLong()) {
                        nPrefix = prepend(prefix, nPrefix, packing.beginBatchToken.getAsLong());
                    }
                    int need = Math.max(contextSize - nPrefix, 0);
                    filled = 0;
                    for (int i = 0; i < Math.min(nPrefix, contextSize); i++) window[filled++] = prefix[i];
                    int take = Math.min(need, tokens.length - offset);
                    System.arraycopy(tokens, offset, window, filled, take);
                    filled += take;
                    offset += need; // as SAELens: the offset moves by what was asked, past the end if the doc is short
                    open = true;
                } else {
                    if (packing.separatorToken.isPresent() && first != packing.separatorToken.getAsLong()) {
                        nPrefix = prepend(prefix, nPrefix, packing.separatorToken.getAsLong());
                    }
                    int need = Math.max(contextSize - filled - nPrefix, 0);
                    int prefixRoom = Math.max(contextSize - filled, 0);
                    for (int i = 0; i < Math.min(nPrefix, prefixRoom); i++) window[filled++] = prefix[i];
                    int take = Math.max(0, Math.min(need, tokens.length - offset));
                    System.arraycopy(tokens, offset, window, filled, take);
                    filled += take;
                    offset += need;
                }
                startOfSequence = false;
                if (filled == contextSize) {
                    windows++;
                    out.accept(window.clone());
                    open = false;
                    filled = 0;
                }
            }
        }

        /** Ends the stream: the partial window is handed over if the packing keeps its tail, else dropped. */
        public void finish(Consumer<long[]> out) {
            if (open && filled > 0 && packing.keepTail) {
                windows++;
                out.accept(Arrays.copyOf(window, filled));
            }
            open = false;
            filled = 0;
        }

        /** Tokens in the partial window not (yet) emitted. */
        public int pending() {
            return open ? filled : 0;
        }

        /** Documents added so far. */
        public long documents() {
            return documents;
        }

        /** Tokens of the documents added so far (special tokens not counted). */
        public long documentTokens() {
            return documentTokens;
        }

        /** Windows emitted so far. */
        public long windows() {
            return windows;
        }

        /** The window length. */
        public int contextSize() {
            return contextSize;
        }

        private static int prepend(long[] prefix, int n, long id) {
            System.arraycopy(prefix, 0, prefix, 1, n);
            prefix[0] = id;
            return n + 1;
        }
    }
}
