package dev.jlens.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookFn;
import dev.jlens.hook.NameFilter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static dev.jlens.testing.Models.maxAbsDiff;
import static dev.jlens.testing.Models.tokens;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Ablation hooks on the tiny GPT-2 fixture (3 layers, 4 heads of 16, d_mlp 256), checked against hand computations. */
class AblateTest {
    static HookedTransformer gpt2;
    static final int POS = 8;
    static final long[][] BATCH = {tokens(POS, 96, 11), tokens(POS, 96, 12)};
    static final long[][] OTHER = {tokens(POS, 96, 21), tokens(POS, 96, 22), tokens(POS, 96, 23)};

    @BeforeAll
    static void load() {
        gpt2 = dev.jlens.testing.Models.gpt2();
        assertEquals(4, gpt2.cfg().nHeads());
    }

    @AfterAll
    static void close() {
        gpt2.close();
    }

    /** The activation at {@code name} as the model sees it after {@code hooks} ran there (flattened, with its shape). */
    private static float[] seen(long[][] batch, String name, long[] shapeOut, Hook... hooks) {
        float[][] out = new float[1][];
        Hook[] all = Arrays.copyOf(hooks, hooks.length + 1);
        all[hooks.length] = Hook.fwd(name, HookFn.reader((a, hp) -> {
            out[0] = a.toFloatArray();
            System.arraycopy(a.getShape().getShape(), 0, shapeOut, 0, shapeOut.length);
        }));
        try (NDScope scope = new NDScope()) {
            gpt2.runWithHooks(batch, all);
        }
        return out[0];
    }

    private static float[] clean(long[][] batch, String name) {
        try (ActivationCache c = gpt2.runWithCache(batch, NameFilter.of(name))) {
            return c.get(name).toFloatArray();
        }
    }

    @Test
    void zeroingHeadsEqualsTheHandWrittenHookBitForBit() {
        try (NDScope scope = new NDScope()) {
            NDArray clean = gpt2.forward(BATCH);
            NDArray byHand = gpt2.runWithHooks(BATCH, Hook.fwd("blocks.1.attn.hook_z", (z, hp) -> {
                NDArray out = z.duplicate();
                out.set(new NDIndex(":, :, 0, :"), 0f);
                out.set(new NDIndex(":, :, 3, :"), 0f);
                return out;
            }));
            Hook hook = Ablate.heads(1, 0, 3).zero();
            assertEquals("blocks.1.attn.hook_z", hook.name());
            NDArray ablated = gpt2.runWithHooks(BATCH, hook);
            assertArrayEquals(byHand.toFloatArray(), ablated.toFloatArray());
            assertTrue(maxAbsDiff(clean, ablated) > 1e-3, "ablation had no effect");
        }
    }

    @Test
    void meanAblationWithTheBatchItselfPutsTheHeadsMeanOverBatchAndPosition() {
        String z = "blocks.1.attn.hook_z";
        float[] clean = clean(BATCH, z);
        long[] s = new long[4];
        float[] seen;
        try (ActivationCache ref = gpt2.runWithCache(BATCH, NameFilter.of(z))) {
            seen = seen(BATCH, z, s, Ablate.heads(1, 2).mean(ref));
        }
        int b = (int) s[0], p = (int) s[1], h = (int) s[2], d = (int) s[3];
        assertArrayEquals(new long[] {2, POS, 4, 16}, s);
        for (int k = 0; k < d; k++) {
            double mean = 0;
            for (int i = 0; i < b; i++) for (int j = 0; j < p; j++) mean += clean[((i * p + j) * h + 2) * d + k];
            mean /= b * p;
            for (int i = 0; i < b; i++) for (int j = 0; j < p; j++) {
                assertEquals(mean, seen[((i * p + j) * h + 2) * d + k], 1e-5, "b" + i + " p" + j + " d" + k);
            }
        }
        for (int i = 0; i < clean.length; i++) {
            if ((i / d) % h != 2) assertEquals(clean[i], seen[i], "other heads must be untouched, index " + i);
        }
    }

    @Test
    void meanPerPositionAveragesOverTheBatchOnly() {
        String z = "blocks.0.attn.hook_z";
        float[] ref = clean(OTHER, z);
        float[] clean = clean(BATCH, z);
        long[] s = new long[4];
        float[] seen;
        try (ActivationCache cache = gpt2.runWithCache(OTHER, NameFilter.of(z))) {
            seen = seen(BATCH, z, s, Ablate.heads(0, 1).meanPerPosition(cache));
        }
        int p = POS, h = 4, d = 16, rb = OTHER.length;
        boolean positionsDiffer = false;
        for (int j = 0; j < p; j++) for (int k = 0; k < d; k++) {
            double mean = 0;
            for (int i = 0; i < rb; i++) mean += ref[((i * p + j) * h + 1) * d + k];
            mean /= rb;
            for (int i = 0; i < BATCH.length; i++) {
                assertEquals(mean, seen[((i * p + j) * h + 1) * d + k], 1e-5, "b" + i + " p" + j + " d" + k);
            }
            if (j > 0 && seen[(j * h + 1) * d + k] != seen[((j - 1) * h + 1) * d + k]) positionsDiffer = true;
        }
        assertTrue(positionsDiffer, "a per-position mean should vary along the positions");
        for (int i = 0; i < clean.length; i++) if ((i / d) % h != 1) assertEquals(clean[i], seen[i]);
    }

    @Test
    void resampleTakesTheHeadFromPermutedRowsOfOtherInputsAndChangesNothingElse() {
        String z = "blocks.1.attn.hook_z";
        float[] ref = clean(OTHER, z);
        float[] clean = clean(BATCH, z);
        long seed = 7;
        int[] rows = Ablate.resampleRows(BATCH.length, OTHER.length, seed);
        long[] s = new long[4];
        float[] seen;
        float[] again;
        try (ActivationCache cache = gpt2.runWithCache(OTHER, NameFilter.of(z))) {
            seen = seen(BATCH, z, s, Ablate.heads(1, 3).resample(cache, seed));
            again = seen(BATCH, z, s, Ablate.heads(1, 3).resample(cache.get(z), seed));
        }
        assertArrayEquals(seen, again, "same seed, same reference: same values");
        int p = POS, h = 4, d = 16;
        for (int b = 0; b < BATCH.length; b++) for (int j = 0; j < p; j++) for (int k = 0; k < d; k++) {
            int at = ((b * p + j) * h + 3) * d + k;
            assertEquals(ref[((rows[b] * p + j) * h + 3) * d + k], seen[at], "b" + b + " p" + j + " d" + k);
            assertNotEquals(clean[at], seen[at]);
        }
        for (int i = 0; i < clean.length; i++) if ((i / d) % h != 3) assertEquals(clean[i], seen[i]);
        // and downstream the logits move
        try (NDScope scope = new NDScope(); ActivationCache cache = gpt2.runWithCache(OTHER, NameFilter.of(z))) {
            assertTrue(maxAbsDiff(gpt2.forward(BATCH), gpt2.runWithHooks(BATCH, Ablate.heads(1, 3).resample(cache,
                    seed))) > 1e-3);
        }
    }

    @Test
    void resampleRowsArePermutationsDrawnFromTheSeed() {
        int[] rows = Ablate.resampleRows(5, 5, 1);
        assertEquals(Set.of(0, 1, 2, 3, 4), new HashSet<>(Arrays.stream(rows).boxed().toList()));
        assertArrayEquals(rows, Ablate.resampleRows(5, 5, 1));
        boolean anyDiffers = false;
        for (long seed = 2; seed < 6; seed++) anyDiffers |= !Arrays.equals(rows, Ablate.resampleRows(5, 5, seed));
        assertTrue(anyDiffers, "different seeds should give different permutations");
        int[] cycled = Ablate.resampleRows(7, 3, 4);
        for (int b = 3; b < 7; b++) assertEquals(cycled[b - 3], cycled[b]);
        assertEquals(3, new HashSet<>(Arrays.stream(cycled).boxed().toList()).size());
        assertThrows(IllegalArgumentException.class, () -> Ablate.resampleRows(2, 0, 0));
    }

    @Test
    void neuronsAreZeroedOrMeanedAndTheRestKept() {
        String post = "blocks.1.mlp.hook_post";
        float[] clean = clean(BATCH, post);
        long[] s = new long[3];
        float[] zeroed = seen(BATCH, post, s, Ablate.neurons(1, 17, 40).zero());
        int n = (int) s[2];
        assertEquals(4 * gpt2.cfg().dModel(), n);
        for (int i = 0; i < clean.length; i++) {
            int neuron = i % n;
            assertEquals(neuron == 17 || neuron == 40 ? 0f : clean[i], zeroed[i], "index " + i);
        }
        // a reference array with another batch size and length: the mean is over all its rows and positions
        long[][] longer = {tokens(12, 96, 31), tokens(12, 96, 32), tokens(12, 96, 33)};
        float[] longRef = clean(longer, post);
        float[] meaned;
        try (ActivationCache cache = gpt2.runWithCache(longer, NameFilter.of(post))) {
            meaned = seen(BATCH, post, s, Ablate.neurons(1, 40).mean(cache.get(post)));
        }
        double mean = 0;
        for (int i = 40; i < longRef.length; i += n) mean += longRef[i];
        mean /= longRef.length / n;
        for (int i = 0; i < clean.length; i++) {
            if (i % n == 40) assertEquals(mean, meaned[i], 1e-5);
            else assertEquals(clean[i], meaned[i]);
        }
    }

    @Test
    void zeroingAPositionLeavesEarlierPositionsExactlyAlone() {
        try (NDScope scope = new NDScope()) {
            float[] clean = gpt2.forward(BATCH).toFloatArray();
            float[] ablated = gpt2.runWithHooks(BATCH, Ablate.positions("blocks.0.hook_resid_pre", 3).zero())
                    .toFloatArray();
            int v = gpt2.cfg().dVocab();
            for (int b = 0; b < BATCH.length; b++) {
                for (int j = 0; j < POS; j++) {
                    float[] c = Arrays.copyOfRange(clean, (b * POS + j) * v, (b * POS + j + 1) * v);
                    float[] a = Arrays.copyOfRange(ablated, (b * POS + j) * v, (b * POS + j + 1) * v);
                    if (j < 3) assertArrayEquals(c, a, "causal: position " + j + " cannot see position 3");
                    else assertFalse(Arrays.equals(c, a), "position " + j + " attends to the ablated position");
                }
            }
            // negative positions count from the end
            assertArrayEquals(gpt2.runWithHooks(BATCH, Ablate.positions("blocks.1.hook_resid_mid", POS - 1).zero())
                    .toFloatArray(), gpt2.runWithHooks(BATCH, Ablate.positions("blocks.1.hook_resid_mid", -1).zero())
                    .toFloatArray());
        }
    }

    @Test
    void resampledPositionsComeFromTheSamePositionOfTheReferenceRows() {
        String resid = "blocks.0.hook_resid_pre";
        float[] ref = clean(OTHER, resid);
        float[] clean = clean(BATCH, resid);
        int[] rows = Ablate.resampleRows(BATCH.length, OTHER.length, 3);
        long[] s = new long[3];
        float[] seen;
        try (ActivationCache cache = gpt2.runWithCache(OTHER, NameFilter.of(resid))) {
            seen = seen(BATCH, resid, s, Ablate.positions(resid, 2, 5).resample(cache, 3));
        }
        int d = gpt2.cfg().dModel();
        for (int b = 0; b < BATCH.length; b++) for (int j = 0; j < POS; j++) for (int k = 0; k < d; k++) {
            int at = (b * POS + j) * d + k;
            float expected = j == 2 || j == 5 ? ref[(rows[b] * POS + j) * d + k] : clean[at];
            assertEquals(expected, seen[at], "b" + b + " p" + j + " d" + k);
        }
    }

    @Test
    void severalLayersGiveOneHookEachAndActTogether() {
        Hook[] hooks = Ablate.heads(0, 1).and(2, 3).zero();
        assertEquals(2, hooks.length);
        assertEquals("blocks.0.attn.hook_z", hooks[0].name());
        assertEquals("blocks.2.attn.hook_z", hooks[1].name());
        Hook[] neurons = Ablate.neurons(0, 5).and(1, 6).and(Ablate.neurons(2, 7)).zero();
        assertEquals(3, neurons.length);
        try (NDScope scope = new NDScope()) {
            NDArray together = gpt2.runWithHooks(BATCH, hooks);
            NDArray separately = gpt2.runWithHooks(BATCH, Ablate.heads(0, 1).zero(), Ablate.heads(2, 3).zero());
            assertArrayEquals(separately.toFloatArray(), together.toFloatArray());
            NDArray one = gpt2.runWithHooks(BATCH, Ablate.heads(0, 1).zero());
            assertTrue(maxAbsDiff(one, together) > 1e-4, "the second layer's ablation had no effect");
        }
    }

    @Test
    void outOfRangeIndicesNameTheValidRange() {
        IllegalArgumentException head = assertThrows(IllegalArgumentException.class,
                () -> gpt2.runWithHooks(BATCH, Ablate.heads(1, 4).zero()));
        assertTrue(head.getMessage().contains("head 4") && head.getMessage().contains("0..3")
                && head.getMessage().contains("blocks.1.attn.hook_z"), head.getMessage());
        IllegalArgumentException neuron = assertThrows(IllegalArgumentException.class,
                () -> gpt2.runWithHooks(BATCH, Ablate.neurons(0, 256).zero()));
        assertTrue(neuron.getMessage().contains("neuron 256") && neuron.getMessage().contains("0..255"),
                neuron.getMessage());
        IllegalArgumentException pos = assertThrows(IllegalArgumentException.class,
                () -> gpt2.runWithHooks(BATCH, Ablate.positions("blocks.0.hook_resid_pre", -9).zero()));
        assertTrue(pos.getMessage().contains("0..7") && pos.getMessage().contains("-8..-1"), pos.getMessage());
        IllegalArgumentException layer = assertThrows(IllegalArgumentException.class,
                () -> gpt2.runWithHooks(BATCH, Ablate.heads(3, 0).zero()));
        assertTrue(layer.getMessage().contains("blocks.3.attn.hook_z"), layer.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Ablate.heads(0));
        assertThrows(IllegalArgumentException.class, () -> Ablate.heads(0, -1));
        assertThrows(IllegalArgumentException.class, () -> Ablate.heads(-1, 0));
        assertThrows(IllegalArgumentException.class, () -> Ablate.positions("blocks.0.attn.hook_pattern", 1));
        assertThrows(IllegalArgumentException.class, () -> Ablate.positions("blocks.0.hook_resid_pre", 1).and(1, 2));
        // a failed run leaves no hook behind
        try (NDScope scope = new NDScope()) {
            try (ActivationCache c = gpt2.runWithCache(BATCH, NameFilter.of("blocks.1.attn.hook_z"))) {
                assertEquals(0, maxAbsDiff(c.logits(), gpt2.forward(BATCH)));
            }
        }
    }

    @Test
    void referenceShapeMismatchIsAClearError() {
        String z = "blocks.1.attn.hook_z";
        try (NDScope scope = new NDScope()) {
            NDArray wrongHeads = gpt2.manager().zeros(new Shape(2, POS, 3, 16));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> gpt2.runWithHooks(BATCH, Ablate.heads(1, 0).mean(wrongHeads)));
            assertTrue(e.getMessage().contains("(2, 8, 3, 16)") && e.getMessage().contains("[*, *, 4, 16]"),
                    e.getMessage());
            // per-position means and resampling need the run's sequence length; the overall mean does not
            NDArray shorter = gpt2.manager().zeros(new Shape(3, POS - 2, 4, 16));
            IllegalArgumentException perPos = assertThrows(IllegalArgumentException.class,
                    () -> gpt2.runWithHooks(BATCH, Ablate.heads(1, 0).meanPerPosition(shorter)));
            assertTrue(perPos.getMessage().contains("[*, 8, 4, 16]"), perPos.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> gpt2.runWithHooks(BATCH, Ablate.heads(1, 0).resample(shorter, 0)));
            gpt2.runWithHooks(BATCH, Ablate.heads(1, 0).mean(shorter));
        }
        try (ActivationCache other = gpt2.runWithCache(BATCH, NameFilter.of("blocks.0.attn.hook_z"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Ablate.heads(1, 0).mean(other));
            assertTrue(e.getMessage().contains(z), e.getMessage());
        }
        ActivationCache closed = gpt2.runWithCache(BATCH, NameFilter.of(z));
        Hook late = Ablate.heads(1, 0).resample(closed, 1);
        closed.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> gpt2.runWithHooks(BATCH, late));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
}
