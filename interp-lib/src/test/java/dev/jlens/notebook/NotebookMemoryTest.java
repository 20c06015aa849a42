package dev.jlens.notebook;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Split;
import dev.jlens.data.Tasks;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Garbage-collected native memory as the kernel installs it. Installing changes DJL's system manager for the whole
 * JVM, so this class runs in a JVM of its own (the {@code notebook-memory} surefire execution), with a 16 MB
 * collection threshold.
 */
class NotebookMemoryTest {
    static HookedTransformer model;
    static Batch batch;

    @BeforeAll
    static void install() {
        NotebookMemory.install();
        model = Zoo.load("tinylang-4l");
        batch = Tasks.tinyLang().batch(Split.TEST, 0, 4).batch();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** Runs {@code body} as a notebook cell: user code on this thread, then idle. */
    static void cell(Runnable body) {
        try (AutoCloseable c = NotebookMemory.userCode()) {
            body.run();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void cachesNobodyHoldsAreFreedAndHeldOnesStayValid() {
        List<ActivationCache> held = new ArrayList<>();
        float[] expected = model.forward(batch).toFloatArray();
        NotebookMemory.collect();
        long before = NotebookMemory.stats().trackedBytes();
        long freedBefore = NotebookMemory.stats().freedArrays();
        long[] oneCache = new long[1];
        cell(() -> {
            for (int i = 0; i < 40; i++) {
                ActivationCache c = model.runWithCache(batch, NameFilter.all());
                if (i == 0) {
                    held.add(c);
                    oneCache[0] = NotebookMemory.stats().trackedBytes() - before;
                }
                model.forward(batch);
            }
        });
        NotebookMemory.collect();
        NotebookMemory.Stats after = NotebookMemory.stats();
        assertTrue(oneCache[0] > 1 << 20, "one cache tracks " + oneCache[0] + " bytes");
        // 40 caches were made; what stays tracked is the held one (and what a single iteration leaves in flight)
        assertTrue(after.trackedBytes() - before < 3 * oneCache[0],
                "tracked grew by " + (after.trackedBytes() - before) + " bytes, one cache is " + oneCache[0] + "; " + after);
        assertTrue(after.freedArrays() - freedBefore > 30L * held.get(0).size(), after.toString());
        // the cache a variable holds is intact: its logits-side activation equals a fresh run's
        try (ActivationCache fresh = model.runWithCache(batch, NameFilter.all())) {
            for (String name : List.of("blocks.0.hook_resid_pre", "blocks.3.hook_resid_post", "blocks.2.attn.hook_pattern")) {
                assertArrayEquals(fresh.get(name).toFloatArray(), held.get(0).get(name).toFloatArray(), 0f, name);
            }
        }
        assertArrayEquals(expected, model.forward(batch).toFloatArray(), 0f);
    }

    @Test
    void closeScopesAndManagersStillFreeAtOnce() {
        ActivationCache closed;
        try (ActivationCache c = model.runWithCache(batch, NameFilter.all())) {
            closed = c;
        }
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> closed.get("blocks.0.hook_resid_pre"));
        assertTrue(e.getMessage().contains("ActivationCache was closed"), e.getMessage());
        NDArray inScope;
        try (NDScope scope = new NDScope()) {
            inScope = model.forward(batch);
        }
        assertTrue(inScope.isReleased());
        NDArray a;
        try (NDManager m = NDManager.newBaseManager()) {
            a = m.ones(new Shape(3, 3));
            NDArray b = m.zeros(new Shape(2));
            b.close();
            assertEquals(9f, a.sum().getFloat());
        }
        assertTrue(a.isReleased());
    }

    @Test
    void arraysMadeFromJavaDataKeepTheirValuesAfterCollection() {
        NDArray[] view = new NDArray[1];
        cell(() -> view[0] = model.manager().create(new float[] {1, 2, 3, 4, 5, 6}).reshape(2, 3));
        for (int i = 0; i < 3; i++) {
            // the array the view was made from is garbage now, and so is its Java buffer
            byte[][] churn = new byte[64][];
            for (int j = 0; j < churn.length; j++) churn[j] = new byte[1 << 16];
            NotebookMemory.collect();
        }
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, view[0].toFloatArray());
        assertEquals(new Shape(2, 3), view[0].getShape());
        assertTrue(NotebookMemory.stats().copiedArrays() > 0);
    }

    /** On a thread of its own, as the kernel's cell thread: libtorch records gradients there by default. */
    @Test
    void dictionariesTrainAndResumeInsideACell(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        Throwable[] failure = new Throwable[1];
        Thread cellThread = new Thread(() -> {
            try {
                trainAndResume(dir);
            } catch (Throwable t) {
                failure[0] = t;
            }
        });
        cellThread.start();
        cellThread.join();
        if (failure[0] != null) throw new AssertionError("training on a new thread failed: " + failure[0], failure[0]);
    }

    private static void trainAndResume(java.nio.file.Path dir) {
        var data = new dev.jlens.sae.SyntheticActivations(64, 16, 3);
        var cfg = dev.jlens.sae.SaeTrainConfig.builder().steps(40).batchSize(64).lr(1e-3).checkpointEvery(20)
                .logEvery(10).build();
        double[] fvu = new double[2];
        cell(() -> {
            try (var t = dev.jlens.sae.SaeTrainer.of(data, cfg)
                    .add("topk", dev.jlens.sae.SaeConfig.of(16, 32, new dev.jlens.sae.SaeConfig.TopK(4)))) {
                t.trainOrResume(dir);
                fvu[0] = dev.jlens.sae.SaeMetrics.of(t.dictionary("topk"), data.batch(1000, 256, model.manager())).fvu();
            }
        });
        cell(() -> {
            try (var t = dev.jlens.sae.SaeTrainer.of(data, cfg)
                    .add("topk", dev.jlens.sae.SaeConfig.of(16, 32, new dev.jlens.sae.SaeConfig.TopK(4)))) {
                t.trainOrResume(dir);   // the run is complete: loads it
                fvu[1] = dev.jlens.sae.SaeMetrics.of(t.dictionary("topk"), data.batch(1000, 256, model.manager())).fvu();
            }
        });
        assertTrue(fvu[0] < 1, "fvu " + fvu[0]);
        assertEquals(fvu[0], fvu[1], 1e-9);
    }

    @Test
    void aLongUnclosedLoopStaysNearTheThreshold() {
        NotebookMemory.collect();
        long before = NotebookMemory.stats().trackedBytes();
        long[] peak = new long[1];
        cell(() -> {
            for (int i = 0; i < 300; i++) {
                model.runWithCache(batch, NameFilter.all());
                model.forward(batch);
                peak[0] = Math.max(peak[0], NotebookMemory.stats().trackedBytes() - before);
            }
        });
        // the threshold is 16 MB; a collection is forced on the cell's thread at four times it
        assertTrue(peak[0] < 80L << 20, "tracked bytes peaked " + (peak[0] >> 20) + " MB above the start");
        assertTrue(NotebookMemory.stats().collections() > 0);
    }
}
