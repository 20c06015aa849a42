package dev.jlens.drift;

import ai.djl.ndarray.NDManager;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.DictionaryMatch;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.ActivationStore;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Drift across the layers of tinylang-4l: one small BatchTopK dictionary per layer on {@code resid_post}, trained
 * briefly on the same tokens; ridge maps {@code resid_post l -> resid_post l+1}; latents matched by decoder cosine.
 * Prints the figures (matched fraction, median cosine raw and after the map, explained fraction) and checks what must
 * hold whatever the model learned: the map beats the identity on held-out tokens, the figures are in range.
 */
class LayerDriftTinyLangTest {
    static final int LAYERS = 4, TRAIN_ROWS = 3 * 4096, TEST_ROWS = 4096;

    @Test
    void driftAcrossTheLayersOfTinyLang4l() {
        long t0 = System.nanoTime();
        String[] hooks = new String[LAYERS];
        for (int l = 0; l < LAYERS; l++) hooks[l] = "blocks." + l + ".hook_resid_post";
        float[][] train = new float[LAYERS][], test = new float[LAYERS][];
        int d;
        try (HookedTransformer model = Zoo.load("tinylang-4l");
             ActivationStore store = ActivationStore.builder().hooks(model, hooks).tokens(TinyLang.defaults(), 32)
                     .bufferRows(8192).normSamples(2048).build();
             NDManager m = NDManager.newBaseManager()) {
            d = model.cfg().dModel();
            float[] all = new float[(TRAIN_ROWS + TEST_ROWS) * LAYERS * d];
            int filled = 0;
            for (int step = 0; step < (TRAIN_ROWS + TEST_ROWS) / 4096; step++) {
                float[] b = store.batch(step, 4096, m).toFloatArray();
                System.arraycopy(b, 0, all, filled, b.length);
                filled += b.length;
            }
            for (int l = 0; l < LAYERS; l++) {
                train[l] = columns(all, LAYERS * d, l * d, d, 0, TRAIN_ROWS);
                test[l] = columns(all, LAYERS * d, l * d, d, TRAIN_ROWS, TEST_ROWS);
            }
        }
        double tData = (System.nanoTime() - t0) / 1e9;

        SaeTrainConfig tc = SaeTrainConfig.builder().steps(300).batchSize(256).lr(3e-3).warmupSteps(20)
                .deadAfterTokens(20_000).logEvery(100).build();
        List<SparseCoder> saes = new ArrayList<>();
        try {
            for (int l = 0; l < LAYERS; l++) {
                SparseCoder sae = SparseCoder.create(SaeConfig.of(d, 256, new SaeConfig.BatchTopK(8)), 10 + l);
                saes.add(sae);
                try (SaeTrainer t = SaeTrainer.of(RowSource.of(train[l], d, l).withHookPoint(hooks[l]), tc)
                        .add("l" + l, sae).progress(ProgressSink.none())) {
                    SaeTrainer.StepStats last = t.train().last("l" + l);
                    System.out.printf("LayerDriftTinyLangTest: layer %d dictionary FVU %.3f, L0 %.1f%n", l, last.fvu(),
                            last.l0());
                    assertTrue(last.fvu() < 0.5, "layer " + l + " dictionary learned to reconstruct: FVU " + last.fvu());
                }
            }
            double tTrain = (System.nanoTime() - t0) / 1e9 - tData;

            List<float[]> trainRows = List.of(train), testRows = List.of(test);
            List<LayerDrift> drifts = LayerDrift.acrossLayers(saes, trainRows, testRows, 1e-4,
                    DictionaryMatch.Options.defaults(), false);
            List<LayerDrift> mappedFirst = LayerDrift.acrossLayers(saes, trainRows, testRows, 1e-4,
                    DictionaryMatch.Options.defaults(), true);
            assertEquals(LAYERS - 1, drifts.size());
            List<String> folded = new ArrayList<>();
            for (int l = 0; l + 1 < LAYERS; l++) {
                LayerMap map = LayerMap.fit(train[l], d, train[l + 1], d, 1e-4);
                LayerMap.Fit held = map.evaluate(test[l], test[l + 1]);
                System.out.printf("LayerDriftTinyLangTest: map %d -> %d fitted %s; held out %s%n", l, l + 1, map.fit(),
                        held);
                assertTrue(held.r2() > held.identityR2(), "the fitted map beats the identity on held-out tokens: " + held);
                assertTrue(held.r2() > 0.5 && held.r2() <= 1, held.toString());
                // The prediction at the level of the whole residual stream: most of the change is one linear map.
                assertTrue(held.driftExplained() > 0.5 && held.driftExplained() <= 1, held.toString());
                assertEquals(map.fit(), drifts.get(l).summary().mapFit(), "acrossLayers fits the same map");

                LayerDrift drift = drifts.get(l);
                String label = drift.label();
                assertEquals(l + " -> " + (l + 1), label);
                // BatchTopK has one threshold for all latents and unit decoder rows, so folding cannot change the
                // pairs here (see DictionaryMatch); the agreement printed below is that check, not a finding.
                DictionaryMatch f = DictionaryMatch.of(saes.get(l), saes.get(l + 1),
                        DictionaryMatch.Options.defaults().criterion(DictionaryMatch.Criterion.FOLDED_MSE));
                DictionaryMatch c = drift.match();
                int agree = 0;
                for (DictionaryMatch.Pair p : c.pairs()) if (f.partner(p.a()).equals(java.util.OptionalInt.of(p.b()))) agree++;
                assertEquals(c.pairs().size(), agree, "one shared threshold: folded distance orders pairs as cosine does");
                folded.add(String.format(java.util.Locale.ROOT, "%s folded-MSE matching: %d pairs (cos >= 0.5), %d "
                        + "the same as by cosine", label, f.pairs().size(), agree));

                LayerDrift.Summary s = drift.summary();
                assertTrue(s.pairs() > 0, "some latents persist from layer " + l + ": " + s);
                assertTrue(s.medianRawCosine() >= 0.5 && s.medianRawCosine() <= 1, s.toString());
                assertTrue(s.medianMappedCosine() >= -1 && s.medianMappedCosine() <= 1, s.toString());
                assertTrue(s.linearExplained() <= 1 && s.identityExplained() <= 1, s.toString());
                assertEquals(s.pairs(), drift.toTable().rowCount());
            }
            System.out.println(LayerDrift.summaryTable(drifts));
            System.out.println(LayerDrift.summaryTable(mappedFirst));
            folded.forEach(line -> System.out.println("LayerDriftTinyLangTest: " + line));
            for (LayerDrift ld : drifts) System.out.println("LayerDriftTinyLangTest: " + ld.summary());
            System.out.printf("LayerDriftTinyLangTest: data %.1f s, dictionaries %.1f s, total %.1f s%n", tData, tTrain,
                    (System.nanoTime() - t0) / 1e9);
        } finally {
            saes.forEach(SparseCoder::close);
        }
    }

    /** Columns {@code [from, from + cols)} of rows {@code [first, first + count)} of a row-major array. */
    static float[] columns(float[] all, int width, int from, int cols, int first, int count) {
        float[] out = new float[count * cols];
        for (int r = 0; r < count; r++) System.arraycopy(all, (first + r) * width + from, out, r * cols, cols);
        return out;
    }
}
