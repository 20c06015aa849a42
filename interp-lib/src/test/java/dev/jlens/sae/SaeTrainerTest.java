package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jlens.store.ActivationSource;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.Table;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SaeTrainerTest {
    private static final SyntheticActivations DATA = new SyntheticActivations(64, 16, 0.01, 0.1, 11);

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    /** Small dictionaries of every architecture that has training state beyond its weights. */
    private static Map<String, SaeConfig> dictionaries() {
        Map<String, SaeConfig> m = new LinkedHashMap<>();
        m.put("topk", SaeConfig.of(16, 128, new SaeConfig.TopK(2)));
        m.put("batchtopk", SaeConfig.of(16, 128, new SaeConfig.BatchTopK(2)));
        m.put("jumprelu", SaeConfig.of(16, 48, new SaeConfig.JumpRelu(0.01, 0.05, 0.05)));
        return m;
    }

    private static SaeTrainConfig.Builder small() {
        // dead after 2 batches and resampling every 15 steps: the counters, AuxK and resampling all take part
        return SaeTrainConfig.builder().steps(40).batchSize(64).lr(3e-3).warmupSteps(5).sparsityWarmupSteps(10)
                .deadAfterTokens(128).densityWindowSteps(8).resampleEvery(15).logEvery(5);
    }

    private static SaeTrainer fresh(SaeTrainConfig cfg) {
        SaeTrainer t = SaeTrainer.of(DATA, cfg).progress(ProgressSink.none());
        dictionaries().forEach(t::add);
        return t;
    }

    private static Map<String, Map<String, float[]>> weights(SaeTrainer t) {
        Map<String, Map<String, float[]>> out = new LinkedHashMap<>();
        t.dictionaries().forEach((n, sae) -> {
            Map<String, float[]> w = new LinkedHashMap<>();
            sae.weights().params().forEach((k, v) -> w.put(k, v.toFloatArray()));
            out.put(n, w);
        });
        return out;
    }

    /** A silent progress sink that interrupts the training thread when {@code step} steps are done. */
    private static ProgressSink interruptAt(int step) {
        return new ProgressSink() {
            public void start(long total, String description) {}

            public void update(long done, String text) {
                if (done == step) Thread.currentThread().interrupt();
            }

            public void close() {}
        };
    }

    private static void assertSameWeights(Map<String, Map<String, float[]>> a, Map<String, Map<String, float[]>> b) {
        assertEquals(a.keySet(), b.keySet());
        a.forEach((n, w) -> w.forEach((k, v) -> assertArrayEquals(v, b.get(n).get(k), n + "." + k)));
    }

    @Test
    void aResumedRunEndsWhereTheUninterruptedRunEnds(@TempDir Path dir) {
        SaeTrainConfig cfg = small().checkpointEvery(10).build();
        Map<String, Map<String, float[]>> straight;
        SaeTrainer.Result straightResult;
        Map<String, long[]> straightDead = new LinkedHashMap<>();
        try (SaeTrainer t = fresh(cfg)) {
            straightResult = t.train();
            straight = weights(t);
            t.dictionaries().keySet().forEach(n -> straightDead.put(n, t.tokensSinceFired(n)));
        }
        assertTrue(straightResult.history("topk").stream().anyMatch(s -> s.deadFraction() > 0),
                "the run should see dead latents, so that AuxK and resampling are exercised");

        try (SaeTrainer t = fresh(cfg).runDir(dir)) {
            t.trainUntil(23);   // checkpoints at 10 and 20; steps 21..23 are lost and redone
        }
        try (SaeTrainer t = SaeTrainer.resume(dir, DATA)) {
            assertEquals(20, t.step());
            SaeTrainer.Result r = t.progress(ProgressSink.none()).train();
            assertSameWeights(straight, weights(t));
            assertEquals(straightResult.history(), r.history());
            straightDead.forEach((n, d) -> assertArrayEquals(d, t.tokensSinceFired(n), n));
            assertEquals(DATA.normalizationScale(), t.dictionary("topk").cfg().inputScale(), 0.0);
            assertTrue(r.lastCheckpoint().orElseThrow().endsWith("step-00000040"));
        }
    }

    @Test
    void anInterruptSavesACheckpointToResumeFrom(@TempDir Path dir) {
        SaeTrainConfig cfg = small().build();
        Map<String, Map<String, float[]>> straight;
        try (SaeTrainer t = fresh(cfg)) {
            t.train();
            straight = weights(t);
        }
        ProgressSink interruptAt15 = interruptAt(15);
        try (SaeTrainer t = fresh(cfg).runDir(dir).progress(interruptAt15)) {
            SaeTrainer.Interrupted e = assertThrows(SaeTrainer.Interrupted.class, t::train);
            assertTrue(Thread.interrupted(), "the interrupt flag is set again");
            assertEquals(15, t.step());
            assertTrue(e.checkpoint().orElseThrow().endsWith("step-00000015"));
            assertEquals(15, e.result().history("topk").size());
        }
        try (SaeTrainer t = SaeTrainer.resume(dir, DATA)) {
            t.progress(ProgressSink.none()).train();
            assertSameWeights(straight, weights(t));
        }
    }

    /** A notebook cell run twice: the second run continues the first, into dictionaries the cell made afresh. */
    @Test
    void trainOrResumeContinuesARunIntoTheDictionariesItIsGiven(@TempDir Path dir) {
        SaeTrainConfig cfg = small().checkpointEvery(10).build();
        Map<String, Map<String, float[]>> straight;
        SaeTrainer.Result straightResult;
        try (SaeTrainer t = fresh(cfg)) {
            straightResult = t.train();
            straight = weights(t);
        }
        ProgressSink interruptAt15 = interruptAt(15);
        try (SaeTrainer t = fresh(cfg).progress(interruptAt15)) {
            assertThrows(SaeTrainer.Interrupted.class, () -> t.trainOrResume(dir));
            assertTrue(Thread.interrupted(), "the interrupt flag is set again");
        }
        // dictionaries the caller owns, initialised otherwise: the checkpoint's state replaces theirs
        List<SparseCoder> mine = new ArrayList<>();
        try (SaeTrainer t = SaeTrainer.of(DATA, cfg).progress(ProgressSink.none())) {
            dictionaries().forEach((n, c) -> {
                SparseCoder sae = SparseCoder.create(c, 1234);
                mine.add(sae);
                t.add(n, sae);
            });
            SaeTrainer.Result r = t.trainOrResume(dir);
            assertEquals(straightResult.history(), r.history());
            assertSameWeights(straight, weights(t));
            assertEquals(((BatchTopKSae) t.dictionary("batchtopk")).thresholdEstimate(),
                    TestSaes.get(t.dictionary("batchtopk"), SaeWeights.THRESHOLD)[0], 0f);
        } finally {
            mine.forEach(SparseCoder::close);
        }
    }

    @Test
    void trainOrResumeRefusesAnotherRunNamingTheDifference(@TempDir Path dir) {
        SaeTrainConfig cfg = small().steps(2).warmupSteps(0).build();
        try (SaeTrainer t = fresh(cfg)) {
            t.trainOrResume(dir);
        }
        try (SaeTrainer t = SaeTrainer.of(DATA, cfg).add("topk", dictionaries().get("topk"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.trainOrResume(dir));
            assertTrue(e.getMessage().contains("[topk, batchtopk, jumprelu]") && e.getMessage().contains("[topk]"),
                    e.getMessage());
        }
        try (SaeTrainer empty = SaeTrainer.of(DATA, cfg)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> empty.trainOrResume(dir));
            assertTrue(e.getMessage().contains("add them first"), e.getMessage());
        }
        try (SaeTrainer t = SaeTrainer.of(DATA, cfg)) {
            dictionaries().forEach((n, c) -> t.add(n, n.equals("topk") ? SaeConfig.of(16, 128, new SaeConfig.TopK(3)) : c));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.trainOrResume(dir));
            assertTrue(e.getMessage().contains("dictionary 'topk'") && e.getMessage().contains("k (2 in the run directory, 3 here)"),
                    e.getMessage());
        }
        try (SaeTrainer t = fresh(cfg.toBuilder().lr(1e-3).build())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.trainOrResume(dir));
            assertTrue(e.getMessage().contains("lr (0.003 in the run directory, 0.001 here)"), e.getMessage());
            assertEquals(0, t.step());
        }
        try (SaeTrainer t = fresh(cfg.toBuilder().steps(4).build())) {
            assertEquals(4, t.trainOrResume(dir).history("topk").size(), "more steps continue the run");
        }
    }

    @Test
    void dictionariesTrainedTogetherMatchEachTrainedAlone() {
        SaeTrainConfig cfg = small().build();
        AtomicInteger reads = new AtomicInteger();
        ActivationSource counting = new ActivationSource() {
            public int width() {
                return DATA.width();
            }

            public NDArray batch(long step, int batchSize, NDManager manager) {
                reads.incrementAndGet();
                return DATA.batch(step, batchSize, manager);
            }

            public double normalizationScale() {
                return DATA.normalizationScale();
            }
        };
        Map<String, Map<String, float[]>> together;
        SaeTrainer.Result r;
        try (SaeTrainer t = SaeTrainer.of(counting, cfg).progress(ProgressSink.none())) {
            dictionaries().forEach(t::add);
            r = t.train();
            together = weights(t);
        }
        assertEquals(cfg.steps(), reads.get(), "each batch is read once for all dictionaries");
        for (var e : dictionaries().entrySet()) {
            try (SparseCoder sae = SparseCoder.create(e.getValue(), cfg.seed())) {
                SaeTrainer.Result alone = SaeTrainer.train(sae, DATA, cfg.toBuilder().build());
                sae.weights().params().forEach((k, v) ->
                        assertArrayEquals(together.get(e.getKey()).get(k), v.toFloatArray(), e.getKey() + "." + k));
                assertEquals(r.history(e.getKey()), alone.history("sae"));
            }
        }
        Table table = r.table();
        assertEquals(3 * cfg.steps(), table.rowCount());
        assertEquals(List.of("dictionary", "step", "loss", "mse", "l0", "fvu", "dead", "dense", "lr"), table.columnNames());
        assertEquals(cfg.steps(), r.table("jumprelu").rowCount());
        assertTrue(r.toString().contains("L0"), r.toString());
    }

    @Test
    void historyMeasuresWhatTheDictionaryDoes() {
        SaeTrainConfig cfg = small().steps(30).build();
        try (SaeTrainer t = SaeTrainer.of(DATA, cfg).progress(ProgressSink.none())) {
            t.add("topk", SaeConfig.of(16, 48, new SaeConfig.TopK(4)));
            List<SaeTrainer.StepStats> h = t.train().history("topk");
            assertEquals(30, h.size());
            for (int i = 0; i < h.size(); i++) {
                SaeTrainer.StepStats s = h.get(i);
                assertEquals(i + 1, s.step());
                assertTrue(s.l0() <= 4 && s.l0() > 3, "L0 " + s.l0());
                assertEquals(cfg.lrAt(i), s.lr(), 0);
                assertTrue(s.fvu() > 0 && s.fvu() < 1.5, "FVU " + s.fvu());
            }
            assertTrue(h.get(29).fvu() < h.get(0).fvu(), "training lowers the FVU");
            // the trainer's FVU and SaeMetrics agree on the same batch (training rule = inference rule for TopK)
            try (NDManager m = NDManager.newBaseManager()) {
                SaeMetrics.Result after = SaeMetrics.of(t.dictionary("topk"), DATA.batch(29, 64, m));
                assertTrue(after.fvu() < h.get(0).fvu());
            }
        }
    }

    @Test
    void resamplingReinitialisesDeadLatentsAndTheirAdamMoments() {
        SaeConfig c = SaeConfig.of(16, 48, new SaeConfig.Relu(0.01));
        SaeTrainConfig cfg = small().steps(10).resampleEvery(5).deadAfterTokens(128).build();
        float[] bEnc = new float[48];
        for (int j = 0; j < 8; j++) bEnc[j] = -100f;   // latents 0..7 never fire
        try (SparseCoder init = SparseCoder.create(c, 1);
             SparseCoder sae = TestSaes.of(c, TestSaes.get(init, SaeWeights.W_ENC), bEnc, TestSaes.get(init, SaeWeights.W_DEC),
                     new float[16], null);
             SaeTrainer t = SaeTrainer.of(DATA, cfg).add("relu", sae).progress(ProgressSink.none())) {
            t.trainUntil(5);
            float[] b = TestSaes.get(sae, SaeWeights.B_ENC);
            float[] norms = sae.weights().decoderNorms().toFloatArray();
            float[] m = t.optimizer("relu").expAvg(SaeWeights.B_ENC).toFloatArray();
            float[] v = t.optimizer("relu").expAvgSq(SaeWeights.W_DEC).toFloatArray();
            for (int j = 0; j < 8; j++) {
                assertEquals(0f, b[j], 0f, "b_enc of resampled latent " + j);
                assertEquals(1f, norms[j], 1e-5f);
                assertEquals(0f, m[j], 0f);
                for (int d = 0; d < 16; d++) assertEquals(0f, v[j * 16 + d], 0f);
                assertEquals(0, t.tokensSinceFired("relu")[j]);
            }
            assertTrue(b[20] != 0f && m[20] != 0f, "live latents keep their state");
            t.train();
        }
    }

    @Test
    void rejectsMismatchesAndExistingRuns(@TempDir Path dir) throws Exception {
        try (SparseCoder wide = SparseCoder.create(SaeConfig.of(32, 48, new SaeConfig.TopK(4)), 1);
             SparseCoder scaled = SparseCoder.create(SaeConfig.of(16, 48, new SaeConfig.TopK(4)).withInputScale(3.0), 1);
             SaeTrainer t = SaeTrainer.of(DATA, small().build())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.add("wide", wide));
            assertTrue(e.getMessage().contains("32-wide"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> t.add("scaled", scaled));
            assertTrue(e.getMessage().contains("scaled by 3.0"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> t.add("bad name/", SaeConfig.of(16, 8, new SaeConfig.TopK(2))));
            assertThrows(IllegalStateException.class, t::train);
        }
        try (SaeTrainer t = fresh(small().steps(2).warmupSteps(0).build()).runDir(dir)) {
            t.train();
        }
        assertTrue(Files.isRegularFile(dir.resolve("checkpoints/step-00000002/topk.safetensors")));
        try (SaeTrainer t = fresh(small().build())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.runDir(dir));
            assertTrue(e.getMessage().contains("resume"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> SaeTrainer.resume(dir.resolve("nothing"), DATA));
        List<String> names = new ArrayList<>();
        try (var s = Files.list(dir.resolve("checkpoints"))) {
            s.forEach(p -> names.add(p.getFileName().toString()));
        }
        assertFalse(names.stream().anyMatch(n -> n.startsWith(".")), "no temporary directories left: " + names);
    }
}
