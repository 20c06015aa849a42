package dev.jlens.probe;

import ai.djl.ndarray.NDScope;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookFn;
import dev.jlens.hook.HookScope;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Generation;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Steering hooks on the zoo's tinylang-4l (d_model 128): exact arithmetic, strength 0, generation. */
class SteeringTest {
    static HookedTransformer model;
    static final String HOOK = "blocks.1.hook_resid_post";
    static SteeringVector planted;

    @BeforeAll
    static void load() {
        model = Zoo.load("tinylang-4l");
        float[] u = Planted.unit(128, 21);
        for (int i = 0; i < u.length; i++) u[i] *= 10;   // about the residual's own size here
        planted = SteeringVector.of(HOOK, u);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static final String TEXT = "the big dog near the barn runs . the cats that Alice sees sleep .";

    private static float[] logits(long[][] tokens, Hook... hooks) {
        try (NDScope s = new NDScope()) {
            return model.runWithHooks(tokens, hooks).toFloatArray();
        }
    }

    @Test
    void strengthZeroChangesNothingBitForBit() {
        long[] t = model.toTokens(TEXT);
        long[][] batch = {t, t.clone()};
        float[] clean = logits(batch);
        for (Positions p : List.of(Positions.all(), Positions.from(3), Positions.at(1, 4))) {
            Steering zero = Steering.of(planted).positions(p).strength(0).atLayers(model, "resid_pre", 0, 2, 3);
            assertArrayEquals(clean, logits(batch, zero.hooks()), p.toString());
        }
        Generation.Config greedy = Generation.Config.greedy(12);
        long[] plain;
        try (Generation.Result r = model.generate("the dog", greedy)) {
            plain = r.first();
        }
        try (Generation.Result r = Steering.of(planted).strength(0).generate(model, "the dog", greedy)) {
            assertArrayEquals(plain, r.first());
        }
    }

    @Test
    void aPlantedVectorMovesTheResidualByExactlyStrengthTimesVectorAtTheChosenPositionsOnly() {
        long[] t = model.toTokens(TEXT);
        long[][] batch = {t, t.clone()};
        int len = t.length, d = 128;
        float[] clean, upstreamClean;
        try (ActivationCache c = model.runWithCache(batch, NameFilter.of(HOOK, "blocks.1.hook_resid_pre"))) {
            clean = c.get(HOOK).toFloatArray();
            upstreamClean = c.get("blocks.1.hook_resid_pre").toFloatArray();
        }
        float strength = 2.5f;
        for (Positions p : List.of(Positions.all(), Positions.from(4), Positions.at(2, 5, 11))) {
            Steering st = Steering.of(planted).positions(p).strength(strength);
            float[][] seen = new float[2][];
            Hook[] hooks = Arrays.copyOf(st.hooks(), 3);
            hooks[1] = Hook.fwd(HOOK, HookFn.reader((a, hp) -> seen[0] = a.toFloatArray()));
            hooks[2] = Hook.fwd("blocks.1.hook_resid_pre", HookFn.reader((a, hp) -> seen[1] = a.toFloatArray()));
            logits(batch, hooks);
            assertArrayEquals(upstreamClean, seen[1], "upstream of the steered point");
            int moved = 0;
            for (int b = 0; b < 2; b++) {
                for (int pos = 0; pos < len; pos++) {
                    for (int j = 0; j < d; j++) {
                        int i = (b * len + pos) * d + j;
                        float delta = (float) (strength * planted.vector()[j]);
                        float expected = p.contains(pos, len) ? clean[i] + delta : clean[i];
                        if (Float.floatToIntBits(expected) != Float.floatToIntBits(seen[0][i])) {
                            throw new AssertionError(p + ": batch " + b + " position " + pos + " dim " + j + ": "
                                    + seen[0][i] + " != " + expected);
                        }
                    }
                    if (p.contains(pos, len)) moved++;
                }
            }
            assertEquals(p instanceof Positions.All ? 2 * len : p instanceof Positions.From ? 2 * (len - 4) : 6, moved);
        }
    }

    @Test
    void steeredGenerationCountsPositionsAcrossTheKvCache() {
        Generation.Config greedy = Generation.Config.greedy(10);
        long[] prompt = model.toTokens("the dog that the cats");
        long[] unsteered;
        try (Generation.Result r = model.generate(prompt, greedy)) {
            unsteered = r.first();
        }
        for (Positions p : List.of(Positions.all(), Positions.from(4), Positions.from(prompt.length + 2))) {
            Steering st = Steering.of(planted).positions(p).strength(3);
            // reference: no KV cache, every step reruns the whole sequence, so plain hooks index true positions
            long[] reference;
            try (HookScope s = st.attach(model);
                 Generation.Result r = model.generate(prompt, greedy.withKvCache(false))) {
                reference = r.first();
            }
            try (Generation.Result cached = st.generate(model, new long[][] {prompt}, greedy)) {
                assertArrayEquals(reference, cached.first(), p + ": KV-cached steering differs from recomputation");
            }
            System.out.println(p + ": " + model.toString(reference) + "  (unsteered: " + model.toString(unsteered) + ")");
            assertFalse(Arrays.equals(unsteered, reference), p + ": a large strength should change the tokens");
        }
        // left-padded batch: positions count each prompt's own tokens
        long[] shorter = model.toTokens("Alice");
        Steering st = Steering.of(planted).positions(Positions.from(2)).strength(3);
        long[] alone;
        try (Generation.Result r = st.generate(model, new long[][] {shorter}, greedy)) {
            alone = r.first();
        }
        try (Generation.Result r = st.generate(model, new long[][] {prompt, shorter}, greedy)) {
            assertArrayEquals(alone, r.tokens()[1], "the padded prompt's steering positions moved with its padding");
        }
    }

    @Test
    void badSteeringInputNamesTheProblem() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Steering.of(planted).at("blocks.1.hook_resid_pots").attach(model));
        assertTrue(e.getMessage().contains("blocks.1.hook_resid_post"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Steering.of(planted).positions(Positions.last()));
        e = assertThrows(IllegalArgumentException.class, () -> logits(new long[][] {model.toTokens("the dog")},
                Steering.of(SteeringVector.of(HOOK, new float[7])).strength(1).hooks()));
        assertTrue(e.getMessage().contains("width 7"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SteeringVector.contrastive(model, HOOK,
                List.of("the dogs", "the cats"), List.of("the dog")));
        assertTrue(e.getMessage().contains("mismatched lengths"), e.getMessage());
    }
}
