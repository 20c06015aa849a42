package dev.jlens.store;

import dev.jlens.corpus.Packing;
import dev.jlens.corpus.Pretokenize;
import dev.jlens.data.TinyLang;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.train.ProgressSink;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Token batches from real text: truncated texts, packed documents, pretokenized shards, through stores and trainers. */
class TokenBatchesTest {

    private static final String HOOK = "blocks.1.hook_resid_post";
    private static HookedTransformer tiny;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() {
        tiny = Zoo.load("tinylang-4l"); // n_ctx 64, a word-level tokenizer
    }

    @AfterAll
    static void close() {
        if (tiny != null) tiny.close();
    }

    /** TinyLang contexts decoded to text: documents of about 60 tokens each. */
    private static List<String> sentences(int n) {
        Batch b = TokenBatches.of(TinyLang.defaults(), n).get(0);
        List<String> out = new ArrayList<>();
        for (long[] ids : b.ids()) out.add(tiny.toString(Arrays.stream(ids).filter(t -> t > 2).toArray()));
        return out;
    }

    /** Documents several times longer than the model's context. */
    private static List<String> longDocuments(int n) {
        List<String> s = sentences(4 * n);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(String.join(" ", s.subList(4 * i, 4 * i + 4)));
        return out;
    }

    @Test
    void aTextLongerThanTheContextIsTruncatedToIt() {
        String longText = longDocuments(1).get(0);
        long[] all = tiny.toTokens(longText);
        assertTrue(all.length > 64, "the text is longer than the context: " + all.length);
        Batch b = TokenBatches.texts(tiny, List.of(longText, "Alice sees the dog ."), 2).get(0);
        assertEquals(64, b.length());
        assertArrayEquals(Arrays.copyOf(all, 64), b.ids()[0]);
        assertEquals(64 - tiny.toTokens("Alice sees the dog .").length, 64 - b.lengths()[1], "the short one is padded");
        try (var logits = tiny.forward(b.ids(), b.mask())) {
            assertEquals(64, logits.getShape().get(1), "the model runs the truncated batch");
        }
    }

    @Test
    void packedBatchesArePureFunctionsOfTheirIndexAndCheckTheContext() {
        List<String> docs = longDocuments(6);
        Packing packing = Packing.saeLens(tiny.requireTokenizer());
        TokenBatches a = TokenBatches.packed(tiny, docs, 32, 3, packing);
        Batch third = a.get(2);
        Batch first = a.get(0);
        TokenBatches fresh = TokenBatches.packed(tiny, docs, 32, 3, packing);
        assertEquals(first, fresh.get(0));
        assertEquals(third, fresh.get(2));
        assertEquals(3, first.size());
        assertEquals(32, first.length());
        assertEquals(1L, first.ids()[0][0], "tinylang's BOS at position 0");
        List<long[]> tokens = new ArrayList<>();
        for (String d : docs) tokens.add(tiny.requireTokenizer().toTokens(d, false));
        List<long[]> windows = packing.pack(tokens, 32);
        long n = 0;
        while (a.get(n) != null) n++;
        assertEquals((windows.size() + 2) / 3, n, "every window served, the last batch partial");
        assertNull(a.get(n));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TokenBatches.packed(tiny, docs, 65, 3, packing));
        assertTrue(e.getMessage().contains("65") && e.getMessage().contains("64"), e.getMessage());
    }

    @Test
    void documentsLongerThanTheContextTrainAnSae() {
        TokenBatches tokens = TokenBatches.packed(tiny, longDocuments(40), 64, 4, Packing.saeLens(tiny.requireTokenizer()));
        SaeTrainConfig tc = SaeTrainConfig.builder().steps(30).batchSize(64).lr(3e-3).warmupSteps(3).logEvery(10).build();
        try (StreamingStore store = ActivationStore.builder().source(tiny, HOOK).tokens(tokens).bufferRows(512)
                .normSamples(256).build();
             SaeTrainer t = SaeTrainer.of(store, tc).add("sae", SaeConfig.of(128, 256, new SaeConfig.TopK(8)))
                     .progress(ProgressSink.none())) {
            SaeTrainer.Result r = t.train();
            List<SaeTrainer.StepStats> h = r.history().get("sae");
            assertEquals(30, h.size());
            assertTrue(Double.isFinite(h.get(29).loss()) && h.get(29).fvu() < h.get(0).fvu(),
                    "trains: FVU " + h.get(0).fvu() + " -> " + h.get(29).fvu());
        }
    }

    @Test
    void pretokenizedShardsFeedTheStoreAnSaeAndACrosscoder() {
        List<String> docs = longDocuments(30);
        Packing packing = Packing.saeLens(tiny.requireTokenizer());
        Path dir = tmp.resolve("shards");
        Pretokenize.run(docs.stream(), "tinylang", "text", tiny.requireTokenizer(), 32, packing, dir, 16);
        TokenBatches shards = TokenBatches.fromShards(dir, 4);
        TokenBatches packed = TokenBatches.packed(tiny, docs, 32, 4, packing);
        for (long i = 0; ; i++) {
            Batch s = shards.get(i);
            assertEquals(packed.get(i), s, "batch " + i);
            if (s == null) break;
        }
        SaeTrainConfig tc = SaeTrainConfig.builder().steps(10).batchSize(64).lr(3e-3).warmupSteps(2).logEvery(5).build();
        try (StreamingStore store = ActivationStore.builder().source(tiny, HOOK).tokens(shards).bufferRows(512)
                .normSamples(128).build();
             SaeTrainer t = SaeTrainer.of(store, tc).add("sae", SaeConfig.of(128, 256, new SaeConfig.TopK(8)))
                     .progress(ProgressSink.none())) {
            assertTrue(Double.isFinite(t.train().last("sae").loss()));
        }
        try (HookedTransformer same = Zoo.load("tinylang-4l");
             StreamingStore store = ActivationStore.builder().source("base", tiny, HOOK).source("same", same, HOOK)
                     .tokens(TokenBatches.fromShards(dir, 4)).bufferRows(512).normSamples(128).build();
             SaeTrainer t = SaeTrainer.of(store, tc)
                     .add("cc", SaeConfig.of(256, 256, new SaeConfig.BatchTopK(8)).withSources(2))
                     .progress(ProgressSink.none())) {
            assertEquals(256, store.width());
            assertTrue(Double.isFinite(t.train().last("cc").loss()));
        }
    }
}
