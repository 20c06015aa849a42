package dev.jlens.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.bench.ModelBench;
import dev.jlens.bench.SaeBench;
import dev.jlens.cli.Args.UsageException;
import dev.jlens.model.Generation;
import dev.jlens.lora.Lora;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The {@code lab} command line: {@code generate}, {@code logits}, {@code patch}, {@code attribute},
 * {@code chat-template}, {@code toy}, {@code sae}, {@code zoo}, {@code bench NAME}, {@code help}. Bad arguments
 * print a message naming the valid choices and exit with code 2; a failure while running exits with 1.
 */
public final class Lab {
    /** Exit code for success. */
    public static final int OK = 0;
    /** Exit code when the command ran and failed (e.g. a model that cannot be loaded). */
    public static final int FAILED = 1;
    /** Exit code for bad arguments. */
    public static final int USAGE = 2;

    private static final String USAGE_TEXT = """
            usage: lab COMMAND [options]

            commands:
              generate --model DIR|REPO (--prompt TEXT | --ids 1,2,3) --max-new-tokens N
                       [--temperature T] [--top-k K] [--top-p P] [--seed S] [--no-kv-cache] [--revision REV]
                       [--adapter DIR]
                  Generates from a prompt; prints the generated ids on one line (comma-separated), then their text
                  when the model has a tokenizer. --temperature 0 (the default) is greedy decoding.
              logits --model DIR|REPO (--ids 1,2,3 | --prompt TEXT) [--revision REV] [--adapter DIR]
                  Prints the logits at every position as JSON: {"tokens":[...],"logits":[[...],...]}.
                  --adapter (generate and logits): a PEFT LoRA adapter directory (adapter_config.json,
                  adapter_model.safetensors) applied to --model.
              patch --model DIR|REPO --clean IDS --corrupt IDS --metric logit-diff:A,B
                    --site resid_pre|resid_mid|resid_post|attn_out|mlp_out|z [--direction denoise|noise]
                  Activation patching of every [layer, pos] (z: every [layer, head], all positions). IDS are
                  comma-separated token ids of equal length; the metric is logit[A] - logit[B] at the last position.
                  Prints one JSON line per patch, {"site":..,"direction":..,"layer":..,"pos":..,"value":..} ("head"
                  for z; value = the metric of the patched run), then {"metric_clean":..,"metric_corrupt":..}.
              attribute --method atp|atp-star|eap-ig [--steps M] (and the options of patch)
                  Estimates of the same patches from gradients, in the same line shapes: for denoise, value =
                  metric(corrupt) + sum (a_clean - a_corrupt) * dM/da with the gradient on the corrupt run (noise
                  mirrors it); atp-star adds the QK fix; eap-ig averages the gradient over M (default 16) inputs on
                  the line from the patched run's embeddings to the other's.
              pretokenize --dataset REPO|PATH --column text --tokenizer DIR|REPO --context N
                          [--begin-batch-token ID|none] [--begin-sequence-token ID|none] [--separator-token ID|none]
                          --out DIR [--files PATTERNS] [--revision REV] [--format parquet|jsonl|csv|text|text-file]
                          [--windows-per-shard N]
                  Tokenizes each row's text without special tokens and packs the tokens into windows of exactly N
                  as SAELens's concat_and_batch_sequences does (partial tail dropped); writes DIR/shard-00000.safetensors,
                  ... (int64 input_ids [windows, N]) and DIR/manifest.json (SHA-256 of each shard and of the
                  tokenizer, settings, counts); prints the counts as one JSON line. Defaults as SAELens: begin-batch
                  token BOS, no begin-sequence token, separator BOS (EOS without a BOS). --dataset is a file or
                  directory (parquet, jsonl[.gz], json, csv, txt), else a Hub dataset repo (--files picks files by
                  pattern, e.g. 'data/train-*.parquet'); --tokenizer a tokenizer.json, a directory or a Hub model repo.
              sample-corpus --out FILE [--rows N] [--seed S]
                  Writes N (default 400) generated short stories as parquet (columns id, text): the project's
                  data/corpus/stories.parquet was made this way.
              chat-template --tokenizer-config FILE --messages FILE.json [--add-generation-prompt]
                            [--template-kwargs JSON]
                  Renders the tokenizer's Jinja chat template (tokenizer_config.json's chat_template, or a
                  chat_template.jinja beside it) as transformers' apply_chat_template does; messages is a JSON
                  array of {"role":..,"content":..}. Prints one line {"prompt":"..."}. A template that raises exits 1
                  with its message; --template-kwargs passes template variables, e.g. '{"enable_thinking": false}'.
              toy superposition --features N --dims M --sparsity S --importance-decay D --instances K --seed X
                                [--steps N] [--batch B] [--lr LR] [--correlation independent|correlated|anticorrelated]
                  Trains K instances of Toy Models of Superposition's x' = ReLU(W^T W x + b) (W is M x N) with
                  different initialisations from the seed; feature i has importance D^i and is zero with
                  probability S, otherwise uniform in [0, 1]. Prints the lowest-loss instance as one JSON line,
                  {"W":[[...],...] (M rows of N),"b":[...] (N),"loss":...}; progress goes to stderr. Defaults:
                  --steps %d, --batch %d, --lr %s (Adam), --instances 1, --seed 0.
              sae train --activations FILE.safetensors --tensor NAME --arch topk|batchtopk|jumprelu|relu|matryoshka
                        --latents N [--k K] [--l1 C] --steps S --batch B --lr LR --seed X --out DIR
                  Trains a sparse dictionary on the rows of a [rows, d_in] F32 tensor and writes it in SAELens's
                  layout (cfg.json, sae_weights.safetensors) to DIR. --k (active latents per token) is required by
                  topk, batchtopk and matryoshka; --l1 is the sparsity coefficient of relu (L1, default %s) and
                  jumprelu (L0, default %s). Matryoshka groups: prefixes N/8, N/4, N/2, N. Rows are visited in a
                  seeded order; progress goes to stderr, one JSON line with the final mse, l0 and fvu to stdout.
              zoo list | train NAME | eval NAME
                  The project's tiny trained models in data/models (see ./lab zoo list).
              bench NAME [options]
                  Runs a benchmark; every output line is one JSON object. Benchmarks: %s.
                  bench model [--quick] [--shape small|tiny] [--seq N] [--batch 1,8] [--runs N] [--warmup N]
                              [--threads 1,2] [--python-threads 1,2] [--gen-tokens N] [--gen-runs N]
                              [--python EXE] [--python-script PATH] [--no-python] [--no-rss] [--seed S]
                  bench sae [--shape full|tiny] [--runs N] [--warmup N] [--threads 1,2] [--chunk N]
                            [--python EXE] [--python-script PATH] [--no-python] [--seed S]
                      TopK SAE training step vs matmul peak and PyTorch; sparse vs dense TopK decoding.
                  bench tokenize [--tokenizer DIR] [--texts N] [--runs N] [--warmup N] [--threads 1,2]
                      Tokens/s of the GPT-2 tokenizer (shared fixtures) over generated stories, 1 and 2 threads.
                  bench patching [--runs N] [--warmup N] [--small]
                      Patching sweeps with many patches per forward pass vs one pass per patch (goal: 5x on
                      tinylang-4l); --small adds a GPT-2-small-shaped random model.
                  bench cot [--shape default|tiny] [--samples N] [--prefix N] [--new-tokens N] [--rows N]
                            [--runs N] [--warmup N]
                      Resampling a chain of thought: 100 continuations of a 200-token prefix sharing its KV cache
                      vs recomputing it for each (goal: 3x); says whether both drew identical tokens.
              bench compare [--threshold PCT] (A.jsonl B.jsonl | NAME)
                  Two saved runs (./lab bench NAME --save keeps them in bench/results/) side by side, matched on
                  bench, metric, batch, threads, shape, ...; NAME takes its two latest runs. Timings worse by more
                  than PCT (default 10) are regressions: the exit code is then 3.
              device
                  One JSON line: the device asked for (JLENS_DEVICE) and the one arrays are made on, the engine,
                  the GPUs seen, the libtorch file loaded and the settings that chose it (see README, "A GPU").
              help
                  Prints this text.

            --model takes a local directory in Hugging Face layout or a Hub repo id (e.g. gpt2), looked up in the
            Hugging Face cache and downloaded if missing.
            """;

    /** {@code lab device}: what this process computes on, as one JSON line. */
    private static int device(PrintStream out) {
        try {
            out.println(new ObjectMapper().writeValueAsString(dev.jlens.util.Devices.describe()));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return OK;
    }

    /** A benchmark runnable as {@code lab bench NAME}. */
    @FunctionalInterface
    interface Bench {
        int run(String[] args, PrintStream out, PrintStream err);
    }

    private static final Map<String, Bench> BENCHES = new LinkedHashMap<>();

    static {
        BENCHES.put(ModelBench.NAME, Lab::benchModel);
        BENCHES.put(SaeBench.NAME, Lab::benchSae);
        BENCHES.put(dev.jlens.bench.PatchingBench.NAME, Lab::benchPatching);
        BENCHES.put(dev.jlens.bench.TokenizeBench.NAME, Lab::benchTokenize);
        BENCHES.put(dev.jlens.bench.CotBench.NAME, Lab::benchCot);
        BENCHES.put("train", (args, out, err) -> {
            try {
                dev.jlens.bench.TrainBench.main(args);
                return 0;
            } catch (Exception e) {
                err.println("bench train: " + e.getMessage());
                return 1;
            }
        });
    }

    private Lab() {}

    /** Runs the command line and exits with its status. */
    public static void main(String[] args) {
        int code = run(args, System.out, System.err);
        System.out.flush();
        System.exit(code);
    }

    /** Runs the command line, writing results to {@code out} and messages to {@code err}; returns the exit code. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0) {
            out.print(usage());
            return OK;
        }
        String cmd = args[0];
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        try {
            return switch (cmd) {
                case "generate" -> generate(rest, out);
                case "logits" -> logits(rest, out);
                case "bench" -> bench(rest, out, err);
                case "zoo" -> ZooCli.run(rest, out, err);
                case "patch" -> PatchCli.patch(rest, out);
                case "attribute" -> PatchCli.attribute(rest, out);
                case "pretokenize" -> PretokenizeCli.run(rest, out, err);
                case "sample-corpus" -> sampleCorpus(rest, out);
                case "chat-template" -> ChatTemplateCli.run(rest, out);
                case "toy" -> ToyCli.run(rest, out, err);
                case "sae" -> SaeCli.run(rest, out, err);
                case "device" -> device(out);
                case "help", "--help", "-h" -> {
                    out.print(usage());
                    yield OK;
                }
                default -> throw new UsageException("unknown command '" + cmd + "'; valid commands: generate, logits, "
                        + "patch, attribute, pretokenize, sample-corpus, chat-template, toy, sae, bench, zoo, device, help");
            };
        } catch (UsageException e) {
            err.println("lab: " + e.getMessage());
            err.println("run 'lab help' for usage");
            return USAGE;
        } catch (RuntimeException e) {
            // a message, not a stack trace: this is a command line
            err.println("lab " + cmd + ": " + describe(e));
            return FAILED;
        }
    }

    /** The usage text. */
    public static String usage() {
        return USAGE_TEXT.formatted(ToyCli.DEFAULT_STEPS, ToyCli.DEFAULT_BATCH, ToyCli.DEFAULT_LR,
                SaeCli.DEFAULT_L1_RELU, SaeCli.DEFAULT_L0_JUMPRELU,
                String.join(", ", BENCHES.keySet()));
    }

    // ------------------------------------------------------------------ generate

    private static int generate(String[] argv, PrintStream out) {
        Args a = Args.parse("generate", argv,
                Set.of("model", "prompt", "ids", "max-new-tokens", "temperature", "top-k", "top-p", "seed", "revision",
                        "adapter"),
                Set.of("no-kv-cache"));
        noPositional(a);
        String model = requireModel(a);
        boolean hasPrompt = a.has("prompt"), hasIds = a.has("ids");
        if (hasPrompt == hasIds) throw a.usage("give exactly one of --prompt TEXT or --ids 1,2,3");
        int maxNew = a.requireInt("max-new-tokens", 0, 1_000_000);
        double temperature = a.doubleOpt("temperature", 0, 0, 1e6);
        int topK = a.intOpt("top-k", 0, 0, Integer.MAX_VALUE);
        double topP = a.doubleOpt("top-p", 1, 0, 1);
        if (topP == 0) throw a.usage("--top-p must be in (0, 1], got 0");
        long seed = a.longOpt("seed", 0);
        long[] ids = hasIds ? parseIds(a) : null;
        Generation.Config config = Generation.Config.sample(maxNew, temperature, seed).withTopK(topK).withTopP(topP)
                .withKvCache(!a.flag("no-kv-cache"));
        try (HookedTransformer m = load(model, a)) {
            long[] prompt = hasIds ? checkIds(a, ids, m.cfg()) : tokenize(a, m);
            if (prompt.length + maxNew > m.cfg().nCtx()) {
                throw a.usage("prompt (" + prompt.length + " tokens) plus --max-new-tokens " + maxNew
                        + " exceeds the model's context of " + m.cfg().nCtx() + " tokens");
            }
            try (Generation.Result r = m.generate(new long[][] {prompt}, config)) {
                out.println(Arrays.stream(r.first()).mapToObj(Long::toString).collect(Collectors.joining(",")));
                if (!r.texts().isEmpty()) out.println(r.texts().get(0));
            }
        }
        return OK;
    }

    // ------------------------------------------------------------------ logits

    private static int logits(String[] argv, PrintStream out) {
        Args a = Args.parse("logits", argv, Set.of("model", "ids", "prompt", "revision", "adapter"), Set.of());
        noPositional(a);
        String model = requireModel(a);
        if (a.has("prompt") == a.has("ids")) throw a.usage("give exactly one of --ids 1,2,3 or --prompt TEXT");
        long[] ids = a.has("ids") ? parseIds(a) : null;
        try (HookedTransformer m = load(model, a); NDScope scope = new NDScope()) {
            long[] tokens = ids != null ? checkIds(a, ids, m.cfg()) : tokenize(a, m);
            if (tokens.length > m.cfg().nCtx()) {
                throw a.usage(tokens.length + " tokens exceed the model's context of " + m.cfg().nCtx());
            }
            NDArray logits = m.forward(tokens);   // [1, pos, d_vocab]
            int v = (int) logits.getShape().get(2);
            float[] flat = logits.toFloatArray();
            float[][] rows = new float[tokens.length][];
            for (int p = 0; p < tokens.length; p++) rows[p] = Arrays.copyOfRange(flat, p * v, (p + 1) * v);
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("tokens", tokens);
            json.put("logits", rows);
            ObjectMapper mapper = new ObjectMapper().configure(JsonGenerator.Feature.AUTO_CLOSE_TARGET, false);
            mapper.writeValue(out, json);
            out.println();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return OK;
    }

    // ------------------------------------------------------------------ bench

    private static int bench(String[] argv, PrintStream out, PrintStream err) {
        if (argv.length == 0 || argv[0].startsWith("-")) {
            throw new UsageException("bench: name a benchmark; valid benchmarks: " + String.join(", ", BENCHES.keySet()));
        }
        if (argv[0].equals("compare")) {
            return dev.jlens.bench.BenchCompare.run(Arrays.copyOfRange(argv, 1, argv.length), out, err);
        }
        Bench b = BENCHES.get(argv[0]);
        if (b == null) {
            throw new UsageException("bench: unknown benchmark '" + argv[0] + "'; valid benchmarks: "
                    + String.join(", ", BENCHES.keySet()));
        }
        return b.run(Arrays.copyOfRange(argv, 1, argv.length), out, err);
    }

    private static int benchModel(String[] argv, PrintStream out, PrintStream err) {
        Args a = Args.parse("bench model", argv,
                Set.of("shape", "seq", "batch", "runs", "warmup", "threads", "python-threads", "gen-tokens", "gen-runs",
                        "python", "python-script", "seed"),
                Set.of("quick", "no-python", "no-rss"));
        noPositional(a);
        String shape = a.get("shape").orElse("small");
        ModelBench.Options base = switch (shape) {
            case "small" -> a.flag("quick") ? ModelBench.Options.quick() : ModelBench.Options.full();
            case "tiny" -> ModelBench.Options.tiny();
            default -> throw a.usage("--shape must be small or tiny, got '" + shape + "'");
        };
        if (a.flag("no-python") && (a.has("python") || a.has("python-script") || a.has("python-threads"))) {
            throw a.usage("--no-python cannot be combined with --python, --python-script or --python-threads");
        }
        ModelConfig cfg = base.cfg();
        // parse everything first, so that a usage error is reported before any option combination is checked
        int seq = a.intOpt("seq", base.seq(), 1, cfg.nCtx());
        List<Integer> batches = boxed(a.intList("batch", unboxed(base.batches()), 1, 4096));
        int warmup = a.intOpt("warmup", base.warmup(), 0, 1000);
        int runs = a.intOpt("runs", base.runs(), 1, 100_000);
        int genTokens = a.intOpt("gen-tokens", base.genTokens(), 1, cfg.nCtx());
        int genRuns = a.intOpt("gen-runs", base.genRuns(), 1, 1000);
        List<Integer> djlThreads = boxed(a.intList("threads", unboxed(base.djlThreads()), 1, 1024));
        List<Integer> pyThreads = boxed(a.intList("python-threads", unboxed(base.pythonThreads()), 1, 1024));
        long seed = a.longOpt("seed", base.seed());
        ModelBench.Options o;
        try {
            o = new ModelBench.Options(cfg, seq, batches, warmup, runs, genTokens, genRuns, djlThreads, pyThreads,
                    !a.flag("no-python"), a.get("python"), a.get("python-script").map(Path::of), !a.flag("no-rss"), seed);
        } catch (IllegalArgumentException e) {
            throw a.usage(e.getMessage());   // a combination the options record rejects, e.g. too many tokens
        }
        ModelBench.run(o, out, err);
        return OK;
    }

    private static int benchPatching(String[] argv, PrintStream out, PrintStream err) {
        Args a = Args.parse("bench patching", argv, Set.of("runs", "warmup", "pairs"), Set.of("small"));
        noPositional(a);
        dev.jlens.bench.PatchingBench.run(new dev.jlens.bench.PatchingBench.Options(a.intOpt("runs", 5, 1, 1000),
                a.intOpt("warmup", 1, 0, 100), a.intOpt("pairs", 8, 1, 256), a.flag("small")), out, err);
        return OK;
    }

    private static int benchCot(String[] argv, PrintStream out, PrintStream err) {
        Args a = Args.parse("bench cot", argv, Set.of("shape", "samples", "prefix", "new-tokens", "rows", "runs",
                "warmup"), Set.of());
        noPositional(a);
        String shape = a.get("shape").orElse("default");
        dev.jlens.bench.CotBench.Shape s = switch (shape) {
            case "default" -> dev.jlens.bench.CotBench.Shape.DEFAULT;
            case "tiny" -> dev.jlens.bench.CotBench.Shape.TINY;
            default -> throw a.usage("--shape must be default or tiny, got '" + shape + "'");
        };
        boolean tiny = s == dev.jlens.bench.CotBench.Shape.TINY;
        int samples = a.intOpt("samples", tiny ? 8 : 100, 1, 100_000);
        var o = new dev.jlens.bench.CotBench.Options(s, samples, a.intOpt("prefix", tiny ? 40 : 200, 2, 100_000),
                a.intOpt("new-tokens", tiny ? 4 : 32, 1, 100_000), a.intOpt("rows", samples, 1, 100_000),
                a.intOpt("runs", tiny ? 1 : 5, 1, 1000), a.intOpt("warmup", tiny ? 0 : 1, 0, 100));
        dev.jlens.bench.CotBench.run(o, out, err);
        return OK;
    }

    private static int benchTokenize(String[] argv, PrintStream out, PrintStream err) {
        Args a = Args.parse("bench tokenize", argv, Set.of("tokenizer", "texts", "runs", "warmup", "threads"), Set.of());
        noPositional(a);
        var o = new dev.jlens.bench.TokenizeBench.Options(a.get("tokenizer").map(Path::of).orElse(null),
                a.intOpt("texts", 2000, 1, 10_000_000), a.intOpt("runs", 5, 1, 1000), a.intOpt("warmup", 1, 0, 100),
                boxed(a.intList("threads", new int[] {1, 2}, 1, 256)));
        try {
            dev.jlens.bench.TokenizeBench.run(o, out, err);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
        return OK;
    }

    private static int sampleCorpus(String[] argv, PrintStream out) {
        Args a = Args.parse("sample-corpus", argv, Set.of("out", "rows", "seed"), Set.of());
        noPositional(a);
        Path file = Path.of(a.require("out"));
        int rows = a.intOpt("rows", 400, 1, 10_000_000);
        dev.jlens.bench.SampleCorpus.write(file, rows, a.longOpt("seed", 1));
        out.println(file);
        return OK;
    }

    private static int benchSae(String[] argv, PrintStream out, PrintStream err) {
        Args a = Args.parse("bench sae", argv,
                Set.of("shape", "runs", "warmup", "threads", "chunk", "python", "python-script", "seed"),
                Set.of("no-python"));
        noPositional(a);
        String shape = a.get("shape").orElse("full");
        SaeBench.Options base = switch (shape) {
            case "full" -> SaeBench.Options.full();
            case "tiny" -> SaeBench.Options.tiny();
            default -> throw a.usage("--shape must be full or tiny, got '" + shape + "'");
        };
        if (a.flag("no-python") && (a.has("python") || a.has("python-script"))) {
            throw a.usage("--no-python cannot be combined with --python or --python-script");
        }
        int runs = a.intOpt("runs", base.runs(), 1, 100_000);
        int warmup = a.intOpt("warmup", base.warmup(), 0, 1000);
        int chunk = a.intOpt("chunk", base.chunk(), 1, 1 << 20);
        List<Integer> threads = boxed(a.intList("threads", unboxed(base.threads()), 1, 1024));
        long seed = a.longOpt("seed", base.seed());
        SaeBench.Options o = new SaeBench.Options(base.dIn(), base.dSae(), base.k(), base.batch(), base.decodeDSae(),
                base.decodeBatch(), base.peakN(), warmup, runs, threads, chunk, !a.flag("no-python"), a.get("python"),
                a.get("python-script").map(Path::of), seed);
        SaeBench.run(o, out, err);
        return OK;
    }

    // ------------------------------------------------------------------ helpers

    private static String requireModel(Args a) {
        String model = a.require("model");
        boolean looksLikePath = model.startsWith(".") || model.startsWith("/") || model.startsWith("~")
                || model.contains("\\") || model.chars().filter(c -> c == '/').count() > 1;
        if (looksLikePath && !Files.isDirectory(Path.of(model))) {
            throw a.usage("--model " + model + ": no such directory (give a model directory in Hugging Face layout "
                    + "or a Hub repo id such as gpt2)");
        }
        return model;
    }

    /** The model, with the {@code --adapter} LoRA merged into its weights when given. */
    private static HookedTransformer load(String model, Args a) {
        Optional<Path> adapter = a.get("adapter").map(Path::of);
        if (adapter.isPresent() && !Files.isDirectory(adapter.get())) {
            throw a.usage("--adapter " + adapter.get() + ": no such directory (give a PEFT LoRA adapter directory with "
                    + Lora.CONFIG_FILE + " and " + Lora.WEIGHTS_FILE + ")");
        }
        HookedTransformer m = HookedTransformer.fromPretrained(model, a.get("revision").orElse("main"));
        if (adapter.isPresent()) {
            try {
                // merged once: the same weights as applying it per forward pass, without the per-pass cost
                Lora.load(m, adapter.get()).merge();
            } catch (RuntimeException e) {
                m.close();
                throw e;
            }
        }
        return m;
    }

    private static long[] parseIds(Args a) {
        long[] ids = a.longList("ids", a.require("ids"));
        if (ids.length == 0) throw a.usage("--ids needs at least one token id");
        return ids;
    }

    private static long[] checkIds(Args a, long[] ids, ModelConfig cfg) {
        for (long id : ids) {
            if (id < 0 || id >= cfg.dVocab()) {
                throw a.usage("--ids: token id " + id + " is outside the model's vocabulary [0, " + cfg.dVocab() + ")");
            }
        }
        return ids;
    }

    private static long[] tokenize(Args a, HookedTransformer m) {
        if (m.tokenizer().isEmpty()) {
            throw a.usage("--prompt needs a tokenizer but the model has none (no tokenizer.json); pass --ids instead");
        }
        long[] t = m.toTokens(a.require("prompt"));
        if (t.length == 0) throw a.usage("--prompt tokenizes to no tokens");
        return t;
    }

    private static void noPositional(Args a) {
        if (!a.positional().isEmpty()) throw a.usage("unexpected argument '" + a.positional().get(0) + "'");
    }

    private static List<Integer> boxed(int[] xs) {
        List<Integer> out = new ArrayList<>();
        for (int x : xs) out.add(x);
        return out;
    }

    private static int[] unboxed(List<Integer> xs) {
        return xs.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The exception's message, with its causes' messages where they add something. */
    private static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder(Optional.ofNullable(e.getMessage()).orElse(e.getClass().getSimpleName()));
        for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
            if (c.getMessage() != null && !sb.toString().contains(c.getMessage())) sb.append(": ").append(c.getMessage());
        }
        return sb.toString();
    }
}
