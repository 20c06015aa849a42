package dev.jlens.train;

import dev.jlens.model.Batch;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.GradientCollector;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.Tokenizer;
import dev.jlens.model.arch.ModelConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.Table;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainerTest {
    private static final int K = 6, VOCAB = 16;
    private static final ModelConfig GPT2 = ModelConfig.gpt2(32, 2, 2, 64, VOCAB, 32);
    private static final ModelConfig LLAMA = ModelConfig.llama(32, 2, 4, 2, 64, VOCAB, 32);
    private static final BatchSource COPY = ToyTasks.copy(K, VOCAB);

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    private static TrainConfig.Builder small() {
        return TrainConfig.builder().batchSize(16).lr(1e-2).warmupSteps(2).logEvery(10);
    }

    private static TrainResult run(ModelConfig mc, TrainConfig cfg, BatchSource src) {
        try (HookedTransformer model = HookedTransformer.random(mc, cfg.seed());
             Trainer t = new Trainer(model, cfg, src).progress(ProgressSink.none())) {
            return t.train();
        }
    }

    // ------------------------------------------------------------------ 1. it learns

    /**
     * The copy task {@code x1..x6 SEP x1..x6} over 15 symbols, loss on the 6 copied tokens only. A model that has not
     * learned to copy can at best know the symbol distribution: loss log(15) = 2.71 nats on those tokens (log(16) =
     * 2.77 at initialisation). Mean loss below 0.1 nats over the last 20 steps means the right symbol gets ~90%
     * probability, which only copying from the first half achieves.
     */
    @Test
    void smallModelLearnsToCopy() {
        TrainConfig cfg = small().steps(300).warmupSteps(20).seed(1).build();
        TrainResult r = run(GPT2, cfg, COPY);
        assertEquals(300, r.steps());
        assertTrue(r.finished());
        assertTrue(r.losses()[0] > 2.5, "initial loss " + r.losses()[0] + " should be near log(16) = 2.77");
        assertTrue(r.meanLoss(20) < 0.1, "mean loss over the last 20 steps " + r.meanLoss(20) + " is not below 0.1 nats");
        assertTrue(r.tokensPerSecond() > 0);
    }

    @Test
    void llamaLearnsToCopyToo() {
        TrainResult r = run(LLAMA, small().steps(200).warmupSteps(20).seed(2).build(), COPY);
        assertTrue(r.meanLoss(20) < 0.1, "llama: mean loss over the last 20 steps " + r.meanLoss(20));
    }

    // ------------------------------------------------------------------ 2. kill and resume

    @Test
    void resumingAfterAKillReproducesTheUninterruptedRun(@TempDir Path tmp) {
        TrainConfig cfg = small().steps(40).seed(3).checkpointEvery(10).keepCheckpoints(2).build();
        float[][] reference;
        TrainResult full;
        try (HookedTransformer model = HookedTransformer.random(LLAMA, 3);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none())) {
            full = t.train();   // no run directory: checkpointing must not influence the numbers
            reference = weights(model);
        }

        Path runDir = tmp.resolve("run");
        try (HookedTransformer model = HookedTransformer.random(LLAMA, 3);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none()).runDir(runDir)) {
            t.trainUntil(27);   // then "killed": the work after the step-20 checkpoint is lost
        }
        assertEquals(List.of("step-00000010", "step-00000020"), checkpointNames(runDir));

        try (Trainer resumed = Trainer.resume(runDir, COPY).progress(ProgressSink.none())) {
            assertEquals(20, resumed.step());
            assertEquals(cfg, resumed.config());
            TrainResult r = resumed.train();
            assertEquals(40, r.steps());
            assertArrayEquals(full.losses(), r.losses(), "losses of the resumed run (1..20 restored, 21..40 recomputed)");
            assertEquals(full.finalLoss(), r.finalLoss(), 0.0);
            float[][] after = weights(resumed.model());
            for (int i = 0; i < reference.length; i++) assertArrayEquals(reference[i], after[i], "parameter " + i);
        }
        // keepCheckpoints = 2: the final checkpoint and the one before it
        assertEquals(List.of("step-00000030", "step-00000040"), checkpointNames(runDir));
    }

    @Test
    void aResumedRunKeepsItsTokenizerWhenTheCheckpointItCameFromIsPruned(@TempDir Path tmp) {
        TrainConfig cfg = small().steps(30).seed(3).checkpointEvery(10).keepCheckpoints(1).build();
        List<String> symbols = new java.util.ArrayList<>();
        for (int i = 0; i < VOCAB; i++) symbols.add("s" + i);
        Path tokFile = Tokenizer.buildWordLevel(symbols, java.util.Map.of(), tmp.resolve("tok"));
        Path runDir = tmp.resolve("run");
        try (HookedTransformer model = HookedTransformer.random(LLAMA, 3);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none()).runDir(runDir)) {
            model.setTokenizer(Tokenizer.load(tokFile));
            t.trainUntil(10);
        }
        try (Trainer resumed = Trainer.resume(runDir, COPY).progress(ProgressSink.none())) {
            // step-10 (where the tokenizer was loaded from) is pruned by the step-20 save; step 30 must still save it
            assertEquals(30, resumed.train().steps());
            assertTrue(java.nio.file.Files.isRegularFile(runDir.resolve("checkpoints/step-00000030/tokenizer.json")));
            assertEquals(VOCAB, resumed.model().requireTokenizer().vocabSize());
        }
        assertEquals(List.of("step-00000030"), checkpointNames(runDir));
    }

    @Test
    void aCrashWhileWritingACheckpointLeavesThePreviousOne(@TempDir Path tmp) throws IOException {
        TrainConfig cfg = small().steps(30).seed(4).checkpointEvery(10).build();
        TrainResult full = run(GPT2, cfg, COPY);
        Path runDir = tmp.resolve("run");
        int[] commits = {0};
        try (HookedTransformer model = HookedTransformer.random(GPT2, 4);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none()).runDir(runDir)
                     .beforeCheckpointCommit(() -> {
                         if (++commits[0] == 2) throw new IllegalStateException("simulated crash during the write");
                     })) {
            IllegalStateException e = assertThrows(IllegalStateException.class, t::train);
            assertTrue(e.getMessage().contains("simulated crash"));
        }
        assertEquals(List.of("step-00000010"), checkpointNames(runDir));
        // What a killed process leaves: a temporary directory with some files, and (from elsewhere) an incomplete step
        Path checkpoints = runDir.resolve("checkpoints");
        Files.createDirectories(checkpoints.resolve(".tmp-step-00000020-1-2"));
        Files.writeString(checkpoints.resolve(".tmp-step-00000020-1-2/config.json"), "{");
        Files.createDirectories(checkpoints.resolve("step-00000025"));
        Files.writeString(checkpoints.resolve("step-00000025/config.json"), "{}");
        try (Trainer resumed = Trainer.resume(runDir, COPY).progress(ProgressSink.none())) {
            assertEquals(10, resumed.step(), "resumes from the last complete checkpoint");
            assertFalse(Files.exists(checkpoints.resolve(".tmp-step-00000020-1-2")), "leftover temp dir removed");
            assertArrayEquals(full.losses(), resumed.train().losses());
        }
    }

    @Test
    void interruptSavesACheckpointAndResumesExactly(@TempDir Path tmp) {
        TrainConfig cfg = small().steps(30).seed(5).logEvery(5).build();
        TrainResult full = run(GPT2, cfg, COPY);
        Path runDir = tmp.resolve("run");
        ProgressSink interruptAt15 = interruptAt(15);
        try (HookedTransformer model = HookedTransformer.random(GPT2, 5);
             Trainer t = new Trainer(model, cfg, COPY).progress(interruptAt15).runDir(runDir)) {
            TrainingInterruptedException e = assertThrows(TrainingInterruptedException.class, t::train);
            assertTrue(Thread.interrupted(), "the interrupt flag is set again");
            assertEquals(15, e.result().steps());
            assertTrue(e.checkpoint().isPresent() && e.checkpoint().get().endsWith("step-00000015"), e.getMessage());
            assertTrue(e.getMessage().contains("Trainer.resume"), e.getMessage());
        }
        try (Trainer resumed = Trainer.resume(runDir, COPY).progress(ProgressSink.none())) {
            assertEquals(15, resumed.step());
            assertArrayEquals(full.losses(), resumed.train().losses());
        }
    }

    @Test
    void withoutARunDirectoryAnInterruptedTrainerContinuesInMemory() {
        TrainConfig cfg = small().steps(20).seed(6).logEvery(5).build();
        TrainResult full = run(GPT2, cfg, COPY);
        try (HookedTransformer model = HookedTransformer.random(GPT2, 6);
             Trainer t = new Trainer(model, cfg, COPY)) {
            t.progress(interruptAt(10));
            TrainingInterruptedException e = assertThrows(TrainingInterruptedException.class, t::train);
            assertTrue(Thread.interrupted());
            assertTrue(e.checkpoint().isEmpty());
            assertTrue(e.getMessage().contains("call train() on the same trainer"), e.getMessage());
            TrainResult r = t.progress(ProgressSink.none()).train();
            assertArrayEquals(full.losses(), r.losses());
        }
    }

    @Test
    void aRunDirectoryWithCheckpointsIsNotOverwritten(@TempDir Path tmp) {
        Path runDir = tmp.resolve("run");
        TrainConfig cfg = small().steps(5).seed(7).build();
        try (HookedTransformer model = HookedTransformer.random(GPT2, 7);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none()).runDir(runDir)) {
            t.train();
            assertTrue(t.lastCheckpoint().isPresent());
        }
        try (HookedTransformer model = HookedTransformer.random(GPT2, 7);
             Trainer t = new Trainer(model, cfg, COPY)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.runDir(runDir));
            assertTrue(e.getMessage().contains("Trainer.resume"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Trainer.resume(tmp.resolve("empty"), COPY));
        assertTrue(e.getMessage().contains("no complete checkpoint"), e.getMessage());
    }

    /** A notebook cell run twice: the second run continues the first, into the model the cell builds afresh. */
    @Test
    void trainOrResumeStartsARunAndContinuesItIntoTheGivenModel(@TempDir Path tmp) {
        TrainConfig cfg = small().steps(30).seed(5).logEvery(5).checkpointEvery(10).build();
        TrainResult full = run(GPT2, cfg, COPY);
        float[][] reference;
        try (HookedTransformer model = HookedTransformer.random(GPT2, 5);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none())) {
            t.train();
            reference = weights(model);
        }
        Path runDir = tmp.resolve("run");
        ProgressSink interruptAt15 = interruptAt(15);
        try (HookedTransformer model = HookedTransformer.random(GPT2, 5);
             Trainer t = new Trainer(model, cfg, COPY).progress(interruptAt15)) {
            TrainingInterruptedException e = assertThrows(TrainingInterruptedException.class, () -> t.trainOrResume(runDir));
            assertTrue(Thread.interrupted());
            assertTrue(e.checkpoint().orElseThrow().endsWith("step-00000015"));
            assertTrue(e.getMessage().contains("trainOrResume"), e.getMessage());
        }
        // another initialisation: the checkpoint's weights replace it
        try (HookedTransformer model = HookedTransformer.random(GPT2, 99);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none())) {
            TrainResult r = t.trainOrResume(runDir);
            assertEquals(30, r.steps());
            assertArrayEquals(full.losses(), r.losses(), "losses 1..15 restored, 16..30 recomputed");
            float[][] after = weights(model);
            for (int i = 0; i < reference.length; i++) assertArrayEquals(reference[i], after[i], "parameter " + i);
        }
        // a finished run: nothing left to train, the same result
        try (HookedTransformer model = HookedTransformer.random(GPT2, 5);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none())) {
            assertArrayEquals(full.losses(), t.trainOrResume(runDir).losses());
            assertEquals(List.of("step-00000020", "step-00000030"), checkpointNames(runDir));
        }
    }

    @Test
    void trainOrResumeRefusesAnotherRunNamingTheDifference(@TempDir Path tmp) {
        TrainConfig cfg = small().steps(3).seed(9).build();
        Path runDir = tmp.resolve("run");
        try (HookedTransformer model = HookedTransformer.random(GPT2, 9);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none())) {
            t.trainOrResume(runDir);
        }
        try (HookedTransformer model = HookedTransformer.random(GPT2, 9);
             Trainer t = new Trainer(model, cfg.toBuilder().lr(3e-3).build(), COPY)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.trainOrResume(runDir));
            assertTrue(e.getMessage().contains("train config: lr (0.01 in the run directory, 0.003 here)"), e.getMessage());
            assertEquals(0, t.step());
        }
        try (HookedTransformer model = HookedTransformer.random(LLAMA, 9);
             Trainer t = new Trainer(model, cfg, COPY)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.trainOrResume(runDir));
            assertTrue(e.getMessage().contains("model config") && e.getMessage().contains("model_type"), e.getMessage());
        }
        // more steps (and another cadence) continue the run
        try (HookedTransformer model = HookedTransformer.random(GPT2, 9);
             Trainer t = new Trainer(model, cfg.toBuilder().steps(5).logEvery(1).build(), COPY)
                     .progress(ProgressSink.none())) {
            assertEquals(5, t.trainOrResume(runDir).steps());
        }
    }

    @Test
    void checkpointsAreHuggingFaceModelDirectories(@TempDir Path tmp) {
        TrainConfig cfg = small().steps(5).seed(8).build();
        try (HookedTransformer model = HookedTransformer.random(LLAMA, 8);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none()).runDir(tmp.resolve("run"))) {
            t.train();
            Path ckpt = t.lastCheckpoint().orElseThrow();
            long[][] probe = COPY.batch(99, 0, 2).ids();
            try (HookedTransformer back = HookedTransformer.load(ckpt); NDScope s = new NDScope()) {
                assertEquals(0.0, maxAbsDiff(model.forward(probe), back.forward(probe)), "reloaded logits");
            }
            for (String f : List.of("config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json",
                    "metrics.json")) {
                assertTrue(Files.isRegularFile(ckpt.resolve(f)), f);
            }
        }
    }

    // ------------------------------------------------------------------ 3. seeds

    @Test
    void sameSeedSameCurveOtherSeedOtherCurve() {
        TrainConfig a = small().steps(25).seed(11).build();
        double[] first = run(GPT2, a, COPY).losses();
        double[] again = run(GPT2, a, COPY).losses();
        assertArrayEquals(first, again, "same seed: bit-for-bit the same loss curve");
        double[] other = run(GPT2, a.toBuilder().seed(12).build(), COPY).losses();
        assertFalse(Arrays.equals(first, other), "another seed gives another curve");
        assertNotEquals(first[0], other[0], "different initial weights and batches give a different first loss");
    }

    // ------------------------------------------------------------------ 4. clipping

    /**
     * With a clip far below the gradient norm, the recorded norm is the unclipped one, and what reaches the optimizer
     * has norm exactly the clip: after the first step AdamW's first moment is {@code (1 - beta1) * g_clipped}.
     */
    @Test
    void clippingBoundsTheGradientAndTheReportedNormIsBeforeClipping() {
        double clip = 0.05;
        TrainConfig cfg = small().steps(1).warmupSteps(0).gradClip(clip).seed(13).build();
        double expectedNorm;
        try (HookedTransformer twin = HookedTransformer.random(GPT2, 13)) {
            expectedNorm = manualGradNorm(twin, COPY.batch(13, 0, 16));
        }
        assertTrue(expectedNorm > 10 * clip, "test premise: the gradient norm " + expectedNorm + " exceeds the clip");
        for (boolean clipped : new boolean[] {true, false}) {
            TrainConfig c = clipped ? cfg : cfg.toBuilder().noGradClip().build();
            try (HookedTransformer model = HookedTransformer.random(GPT2, 13);
                 Trainer t = new Trainer(model, c, COPY).progress(ProgressSink.none())) {
                TrainResult r = t.train();
                assertEquals(expectedNorm, r.history().get(0).gradNorm(), 1e-5 * expectedNorm, "reported norm");
                double sq = 0;
                for (String n : model.parameters().keySet()) {
                    for (float m : t.optimizer().expAvg(n).toFloatArray()) sq += (double) m * m;
                }
                double firstMomentNorm = Math.sqrt(sq) / (1 - cfg.beta1());
                assertEquals(clipped ? clip : expectedNorm, firstMomentNorm, 1e-4 * firstMomentNorm,
                        clipped ? "clipped gradient norm" : "unclipped gradient norm");
            }
        }
    }

    private static double manualGradNorm(HookedTransformer model, Batch tb) {
        Map<String, NDArray> params = model.parameters();
        params.values().forEach(p -> p.setRequiresGradient(true));
        try (NDScope s = new NDScope()) {
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                gc.backward(LossFn.nextToken().loss(model.forward(tb), tb));
            }
            double sq = 0;
            for (NDArray p : params.values()) {
                try (NDArray g = p.getGradient()) {
                    for (float x : g.toFloatArray()) sq += (double) x * x;
                }
            }
            return Math.sqrt(sq);
        }
    }

    // ------------------------------------------------------------------ 5. memory

    @Test
    void nativeMemoryStaysFlatOverManySteps() {
        TrainConfig cfg = small().steps(260).seed(14).build();
        try (HookedTransformer model = HookedTransformer.random(GPT2, 14);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none())) {
            t.trainUntil(20);   // warm-up: lazily created state exists from here on
            int arrays = liveArrays();
            long rss = nativeRssBytes();
            t.trainUntil(260);
            int arraysAfter = liveArrays();
            long growth = nativeRssBytes() - rss;
            assertEquals(arrays, arraysAfter, "live NDArrays after 240 more steps");
            // Leaking what a step allocates (activations, logits, gradients: ~1 MB here) would add ~240 MB over 240
            // steps; flat runs measure 10-30 MB here, because resident heap pages do not track the heap in use.
            assertTrue(growth < 96L << 20, "native memory grew by " + (growth >> 20) + " MB over 240 steps");
        }
    }

    /** Every NDArray alive in this JVM (the system manager holds every base manager, which hold their arrays). */
    private static int liveArrays() {
        try (NDManager probe = NDManager.newBaseManager()) {
            return probe.getParentManager().getManagedArrays().size();
        }
    }

    /**
     * Anonymous resident memory minus the committed Java heap: mostly native (PyTorch) memory. File-backed pages
     * (memory-mapped checkpoints and shards of earlier tests, released when the collector unmaps them) and heap pages
     * the JVM touches as it grows are not native leaks; with them, tests run earlier in the same JVM moved this
     * figure by ~100 MB.
     */
    private static long nativeRssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("RssAnon:")) {
                    long rssKb = Long.parseLong(line.replaceAll("[^0-9]", ""));
                    return rssKb * 1024 - Runtime.getRuntime().totalMemory();
                }
            }
            throw new AssertionError("no RssAnon in /proc/self/status");
        } catch (IOException e) {
            throw new AssertionError("cannot read /proc/self/status (this test needs Linux)", e);
        }
    }

    // ------------------------------------------------------------------ autograd safety, eval, results

    /**
     * DJL arrays made from Java data borrow a direct buffer, which the garbage collector frees after close(); a
     * collection between the forward and the backward pass must not change the gradients (it did, giving NaN,
     * before the model kept the tensors the backward pass reads in engine-owned memory).
     */
    @Test
    void aGarbageCollectionBetweenForwardAndBackwardChangesNothing() {
        TrainConfig cfg = small().steps(4).seed(15).build();
        LossFn churn = (logits, tb) -> {
            System.gc();
            for (int i = 0; i < 64; i++) ByteBuffer.allocateDirect(4096).putLong(0, -1L);   // reuse freed memory
            System.gc();
            return LossFn.nextToken().loss(logits, tb);
        };
        for (ModelConfig mc : List.of(GPT2, LLAMA)) {
            double[] plain = run(mc, cfg, COPY).losses();
            double[] collected;
            try (HookedTransformer model = HookedTransformer.random(mc, 15);
                 Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none()).loss(churn)) {
                collected = t.train().losses();
            }
            assertArrayEquals(plain, collected, mc.modelType());
        }
    }

    @Test
    void evalLossIsRecordedAndResultsPrintAsTableAndChart() {
        TrainConfig cfg = small().steps(20).seed(16).evalEvery(10).evalBatches(2).build();
        try (HookedTransformer model = HookedTransformer.random(GPT2, 16);
             Trainer t = new Trainer(model, cfg, COPY).progress(ProgressSink.none()).evalSource(COPY)) {
            TrainResult r = t.train();
            assertTrue(r.history().get(9).evalLoss().isPresent());
            assertTrue(r.history().get(19).evalLoss().isPresent());
            assertFalse(r.history().get(10).evalLoss().isPresent());
            assertEquals(t.evalLoss(), r.finalEvalLoss().getAsDouble(), 0.0, "eval is deterministic");
            Table table = r.table();
            assertEquals(List.of("step", "loss", "lr", "grad_norm", "tokens_per_s", "eval_loss"), table.columnNames());
            assertEquals(20, table.rowCount());
            assertEquals(18, table.doubleColumn("eval_loss").countMissing());
            assertEquals(r.finalLoss(), table.doubleColumn("loss").get(19), 0.0);
            XYChart chart = r.lossCurve();
            assertEquals(2, chart.getSeriesMap().size());
            assertTrue(r.toString().contains("20/20 steps"), r.toString());
        }
    }

    @Test
    void batchSourceMistakesFailWithClearMessages() {
        TrainConfig cfg = small().steps(3).seed(17).build();
        BatchSource wrongSize = (seed, step, n) -> COPY.batch(seed, step, n + 1);
        try (HookedTransformer model = HookedTransformer.random(GPT2, 17);
             Trainer t = new Trainer(model, cfg, wrongSize).progress(ProgressSink.none())) {
            IllegalStateException e = assertThrows(IllegalStateException.class, t::train);
            assertTrue(e.getMessage().contains("batchSize is 16"), e.getMessage());
        }
        BatchSource noWeights = (seed, step, n) -> COPY.batch(seed, step, n).withTargetWeights(new float[n][2 * K]);
        try (HookedTransformer model = HookedTransformer.random(GPT2, 17);
             Trainer t = new Trainer(model, cfg, noWeights).progress(ProgressSink.none())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, t::train);
            assertTrue(e.getMessage().contains("loss weights are zero"), e.getMessage());
            assertEquals(0, t.step());
        }
    }

    @Test
    void weightDecayGroupsSkipBiasesNormsAndEmbeddings() {
        try (HookedTransformer gpt2 = HookedTransformer.random(GPT2, 0);
             HookedTransformer llama = HookedTransformer.random(LLAMA, 0)) {
            var g = Trainer.decayedTensors(gpt2, TrainConfig.DecayGroups.MATRICES);
            assertTrue(g.contains("transformer.h.0.attn.c_attn.weight"));
            assertFalse(g.contains("transformer.wte.weight"));
            assertFalse(g.contains("transformer.wpe.weight"));
            assertFalse(g.contains("transformer.h.0.attn.c_attn.bias"));
            assertFalse(g.contains("transformer.h.0.ln_1.weight"));
            var l = Trainer.decayedTensors(llama, TrainConfig.DecayGroups.MATRICES);
            assertTrue(l.contains("lm_head.weight"), "an untied unembedding is a weight matrix");
            assertFalse(l.contains("model.embed_tokens.weight"));
            assertFalse(l.contains("model.norm.weight"));
            assertTrue(Trainer.decayedTensors(llama, TrainConfig.DecayGroups.MATRICES_AND_EMBEDDINGS)
                    .contains("model.embed_tokens.weight"));
            assertEquals(llama.parameters().keySet(), Trainer.decayedTensors(llama, TrainConfig.DecayGroups.ALL));
        }
    }

    @Test
    void parametersRequireGradientsOnlyWhileTraining() {
        try (HookedTransformer model = HookedTransformer.random(GPT2, 18);
             Trainer t = new Trainer(model, small().steps(2).seed(18).build(), COPY).progress(ProgressSink.none())) {
            t.train();
            for (NDArray p : model.parameters().values()) assertFalse(p.hasGradient());
        }
    }

    // ------------------------------------------------------------------ helpers

    /** A silent progress sink that interrupts the training thread when {@code step} steps are done. */
    static ProgressSink interruptAt(int step) {
        return new ProgressSink() {
            @Override
            public void start(long total, String description) {}

            @Override
            public void update(long done, String text) {
                if (done == step) Thread.currentThread().interrupt();
            }

            @Override
            public void close() {}
        };
    }

    private static float[][] weights(HookedTransformer model) {
        return model.parameters().values().stream().map(NDArray::toFloatArray).toArray(float[][]::new);
    }

    private static List<String> checkpointNames(Path runDir) {
        try (Stream<Path> s = Files.list(runDir.resolve("checkpoints"))) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static double maxAbsDiff(NDArray a, NDArray b) {
        float[] x = a.toFloatArray(), y = b.toFloatArray();
        double m = 0;
        for (int i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
        return m;
    }
}
