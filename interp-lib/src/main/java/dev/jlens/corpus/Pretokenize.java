package dev.jlens.corpus;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.model.Tokenizer;
import dev.jlens.notebook.Progress;

import java.nio.file.Path;
import java.util.Iterator;
import java.util.Locale;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.stream.Stream;

/**
 * Tokenizes a corpus once and writes its packed windows as {@link TokenShards}: each row's text tokenized without
 * special tokens, packed by a {@link Packing} (SAELens's {@code concat_and_batch_sequences}; the partial tail
 * dropped), {@code windowsPerShard} windows per shard. What {@code ./lab pretokenize} runs. Progress shows rows/s and
 * tokens/s.
 */
public final class Pretokenize {

    private Pretokenize() {}

    /** What was written. */
    public record Result(Path dir, long rows, long documentTokens, long windows, int contextSize, int shards,
            double seconds) {
        /** Tokens in the windows ({@code windows * contextSize}). */
        public long tokens() {
            return windows * contextSize;
        }

        /** Document tokens tokenized per second. */
        public double tokensPerSecond() {
            return seconds > 0 ? documentTokens / seconds : 0;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%,d rows, %,d tokens -> %,d windows of %d in %d shard%s (%.1f s, %,.0f rows/s, %,.0f tokens/s)",
                    rows, documentTokens, windows, contextSize, shards, shards == 1 ? "" : "s", seconds,
                    seconds > 0 ? rows / seconds : 0, tokensPerSecond());
        }
    }

    /** Default shard size: about 64 MiB of int64 tokens. */
    public static int defaultWindowsPerShard(int contextSize) {
        return Math.max(1, (64 << 20) / (Long.BYTES * contextSize));
    }

    /** Pretokenizes column {@code column} of a corpus into {@code out} (shards of about 64 MiB). */
    public static Result run(Corpus corpus, String column, Tokenizer tokenizer, int contextSize, Packing packing,
            Path out) {
        Objects.requireNonNull(corpus, "corpus");
        try (Stream<String> texts = corpus.texts(column)) {
            return run(texts, corpus.toString(), column, tokenizer, contextSize, packing, out,
                    defaultWindowsPerShard(contextSize));
        }
    }

    /**
     * Pretokenizes texts into {@code out}; {@code source} and {@code column} are recorded in the manifest. Existing
     * shards in {@code out} are replaced.
     */
    public static Result run(Stream<String> texts, String source, String column, Tokenizer tokenizer, int contextSize,
            Packing packing, Path out, int windowsPerShard) {
        Objects.requireNonNull(texts, "texts");
        Objects.requireNonNull(tokenizer, "tokenizer");
        Objects.requireNonNull(packing, "packing");
        Objects.requireNonNull(out, "out");
        if (packing.keepTail()) {
            throw new IllegalArgumentException("token shards hold windows of exactly contextSize tokens: use a packing "
                    + "that drops the tail (withKeepTail(false))");
        }
        Packing.Packer packer = packing.packer(contextSize);
        TokenShards.Writer writer = new TokenShards.Writer(out, contextSize, windowsPerShard);
        long start = System.nanoTime();
        long rows = 0;
        int tail;
        try (Progress progress = Progress.start(0, "pretokenize " + out.getFileName())) {
            Iterator<String> it = texts.iterator();
            while (it.hasNext()) {
                packer.add(tokenizer.toTokens(it.next(), false), writer::add);
                rows++;
                if ((rows & 63) == 0) progress.update(rows, status(packer, start));
            }
            tail = packer.pending();
            packer.finish(writer::add);
            writer.flush();
            progress.finish(rows, status(packer, start) + ", " + writer.shards().size() + " shards");
        }
        ObjectNode fields = TokenShards.JSON.createObjectNode();
        fields.put("source", source);
        fields.put("column", column);
        ObjectNode tok = fields.putObject("tokenizer");
        tok.put("file", tokenizer.file().getFileName().toString());
        tok.put("sha256", TokenShards.sha256(tokenizer.file()));
        tok.put("vocab_size", tokenizer.vocabSize());
        ObjectNode p = fields.putObject("packing");
        put(p, "begin_batch_token", packing.beginBatchToken());
        put(p, "begin_sequence_token", packing.beginSequenceToken());
        put(p, "separator_token", packing.separatorToken());
        p.put("tail", "dropped");
        p.put("special_tokens_added_by_tokenizer", false);
        fields.put("rows", rows);
        fields.put("document_tokens", packer.documentTokens());
        fields.put("windows", packer.windows());
        fields.put("tokens", packer.windows() * contextSize);
        fields.put("dropped_tail_tokens", tail);
        writer.finish(fields);
        double seconds = (System.nanoTime() - start) / 1e9;
        return new Result(out, rows, packer.documentTokens(), packer.windows(), contextSize, writer.shards().size(),
                seconds);
    }

    private static void put(ObjectNode node, String key, OptionalLong id) {
        if (id.isPresent()) {
            node.put(key, id.getAsLong());
        } else {
            node.putNull(key);
        }
    }

    private static String status(Packing.Packer packer, long start) {
        double s = Math.max(1e-9, (System.nanoTime() - start) / 1e9);
        return String.format(Locale.ROOT, "%,.0f rows/s, %,.0f tokens/s, %,d windows", packer.documents() / s,
                packer.documentTokens() / s, packer.windows());
    }
}
