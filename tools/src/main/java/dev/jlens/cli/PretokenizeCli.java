package dev.jlens.cli;

import dev.jlens.corpus.Corpus;
import dev.jlens.corpus.Format;
import dev.jlens.corpus.Packing;
import dev.jlens.corpus.Pretokenize;
import dev.jlens.io.HfHub;
import dev.jlens.io.HubException;
import dev.jlens.model.Tokenizer;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.Set;

/**
 * {@code lab pretokenize}: a dataset's text column tokenized once, packed as SAELens packs it, written as token
 * shards ({@code DIR/shard-NNNNN.safetensors} with {@code input_ids [windows, N]} int64, and
 * {@code DIR/manifest.json}). The flags are a contract read by checks outside the project:
 * <pre>
 * lab pretokenize --dataset REPO|PATH --column text --tokenizer DIR|REPO --context N
 *     [--begin-batch-token ID|none] [--begin-sequence-token ID|none] [--separator-token ID|none] --out DIR
 * </pre>
 * Defaults follow SAELens: the begin-batch token is the tokenizer's BOS, no begin-sequence token, the separator
 * BOS (EOS where there is no BOS). Prints the manifest's counts as one JSON line when done.
 */
final class PretokenizeCli {

    private PretokenizeCli() {}

    static int run(String[] argv, PrintStream stdout, PrintStream err) {
        Args a = Args.parse("pretokenize", argv, Set.of("dataset", "column", "tokenizer", "context", "begin-batch-token",
                "begin-sequence-token", "separator-token", "out", "revision", "files", "format", "windows-per-shard"),
                Set.of());
        if (!a.positional().isEmpty()) throw a.usage("unexpected arguments " + a.positional());
        String dataset = a.require("dataset");
        String column = a.get("column").orElse("text");
        String tokenizerArg = a.require("tokenizer");
        int context = a.requireInt("context", 2, 1 << 20);
        Path out = Path.of(a.require("out"));
        Format format = a.get("format").map(f -> parseFormat(a, f)).orElse(null);
        int perShard = a.intOpt("windows-per-shard", Pretokenize.defaultWindowsPerShard(context), 1, 1 << 24);
        // Parse the token flags before any download, so a typo fails at once.
        String bb = a.get("begin-batch-token").orElse(null);
        String bs = a.get("begin-sequence-token").orElse(null);
        String sep = a.get("separator-token").orElse(null);
        OptionalLong bbId = bb == null ? null : tokenId(a, "begin-batch-token", bb);
        OptionalLong bsId = bs == null ? null : tokenId(a, "begin-sequence-token", bs);
        OptionalLong sepId = sep == null ? null : tokenId(a, "separator-token", sep);

        try (Tokenizer tokenizer = loadTokenizer(tokenizerArg, a.get("revision").orElse(null))) {
            Packing packing = Packing.saeLens(tokenizer);
            if (bbId != null) packing = packing.withBeginBatchToken(bbId);
            if (bsId != null) packing = packing.withBeginSequenceToken(bsId);
            if (sepId != null) packing = packing.withSeparatorToken(sepId);
            for (OptionalLong id : List.of(packing.beginBatchToken(), packing.beginSequenceToken(), packing.separatorToken())) {
                if (id.isPresent() && (id.getAsLong() < 0 || id.getAsLong() >= tokenizer.vocabSize())) {
                    throw a.usage("token id " + id.getAsLong() + " is outside the tokenizer's vocabulary of "
                            + tokenizer.vocabSize());
                }
            }
            Corpus corpus = openDataset(dataset, format, a.get("revision").orElse(null), a.get("files").orElse(null));
            err.println("pretokenize: " + corpus + ", column '" + column + "', " + tokenizer + ", " + packing
                    + ", windows of " + context);
            Pretokenize.Result r;
            try (var texts = corpus.texts(column)) {
                r = Pretokenize.run(texts, dataset, column, tokenizer, context, packing, out, perShard);
            }
            err.println("pretokenize: " + r + " -> " + out);
            String line = String.format(Locale.ROOT,
                    "{\"out\":%s,\"rows\":%d,\"document_tokens\":%d,\"windows\":%d,\"tokens\":%d,\"shards\":%d,"
                            + "\"seconds\":%.3f,\"tokens_per_second\":%.1f}",
                    quote(r.dir().toString()), r.rows(), r.documentTokens(), r.windows(), r.tokens(), r.shards(),
                    r.seconds(), r.tokensPerSecond());
            stdout.println(line);
        }
        return Lab.OK;
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    private static Format parseFormat(Args a, String f) {
        try {
            return Format.valueOf(f.toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw a.usage("--format must be one of " + Arrays.toString(Format.values()).toLowerCase(Locale.ROOT)
                    + ", got '" + f + "'");
        }
    }

    private static OptionalLong tokenId(Args a, String flag, String v) {
        if (v.equalsIgnoreCase("none")) return OptionalLong.empty();
        try {
            long id = Long.parseLong(v);
            if (id < 0) throw a.usage("--" + flag + " must be a token id >= 0 or none, got " + v);
            return OptionalLong.of(id);
        } catch (NumberFormatException e) {
            throw a.usage("--" + flag + " must be a token id or none, got '" + v + "'");
        }
    }

    /** A local tokenizer.json or directory, else a Hub model repo's tokenizer files (not its weights). */
    static Tokenizer loadTokenizer(String arg, String revision) {
        Path p = Path.of(arg);
        if (Files.exists(p)) return Tokenizer.load(p);
        HfHub hub = HfHub.fromEnvironment();
        String rev = revision == null ? "main" : revision;
        Path file = hub.download(arg, "tokenizer.json", rev);
        for (String extra : List.of("tokenizer_config.json", "config.json", "special_tokens_map.json")) {
            try {
                hub.download(arg, extra, rev);
            } catch (HubException e) {
                // optional: the tokenizer falls back to tokenizer.json's own special tokens
            }
        }
        return Tokenizer.load(file);
    }

    /** A local file or directory, else a Hub dataset repo (every data file, or those matching --files). */
    static Corpus openDataset(String arg, Format format, String revision, String files) {
        Path p = Path.of(arg);
        if (Files.exists(p)) return Corpus.open(p, format);
        List<String> patterns = files == null ? List.of() : List.of(files.split(","));
        return Corpus.fromHub(HfHub.fromEnvironment(), arg, revision, patterns);
    }
}
