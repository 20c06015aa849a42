package dev.jlens.sae.eval;

import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.ProbeData;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A hand-built dictionary over planted activations: sequences of 32 tokens, position {@code p} written along a
 * direction {@code v} as {@code (p - 16) / 10}, one of 20 words along its own direction, BOS along a direction of its
 * own. Latents 0 and 1 read {@code +v} and {@code -v} (decoder rows {@code +v} and {@code -v}: an antipodal pair,
 * each firing on nearly half the tokens); latents 2..21 read one word each (5% of the tokens).
 */
class DenseLatentsTest {
    static final int D = 24, WORDS = 20, SEQ = 32, SEQS = 40;

    @Test
    void plantedAntipodalPairOfPositionLatentsIsFoundAndPaired() {
        SplittableRandom r = new SplittableRandom(3);
        float[][] dirs = Planted.orthonormal(WORDS + 2, D, r);   // 0 = position, 1 = BOS, 2.. = words
        int n = SEQ * SEQS;
        float[][] x = new float[n][D];
        int[] position = new int[n], inSentence = new int[n], sequence = new int[n];
        boolean[] word0 = new boolean[n], late = new boolean[n];
        for (int s = 0, i = 0; s < SEQS; s++) {
            for (int p = 0; p < SEQ; p++, i++) {
                position[i] = p;
                sequence[i] = s;
                inSentence[i] = p == 0 ? -1 : (p - 1) % 8;
                late[i] = p >= 16;
                if (p == 0) {
                    add(x[i], dirs[1], 3);
                } else {
                    int w = r.nextInt(WORDS);
                    word0[i] = w == 0;
                    add(x[i], dirs[0], (p - 16) / 10.0);
                    add(x[i], dirs[2 + w], 1);
                }
                for (int k = 0; k < D; k++) x[i][k] += (float) (0.01 * Planted.gaussian(r));
            }
        }
        float[][] enc = new float[WORDS + 2][], dec = new float[WORDS + 2][];
        enc[0] = dirs[0].clone();
        dec[0] = dirs[0].clone();
        enc[1] = scaled(dirs[0], -1);
        dec[1] = scaled(dirs[0], -1);
        for (int w = 0; w < WORDS; w++) {
            enc[2 + w] = dirs[2 + w].clone();
            dec[2 + w] = dirs[2 + w].clone();
        }
        Map<String, boolean[]> concepts = new LinkedHashMap<>();
        concepts.put("word=0", word0);
        concepts.put("half=LATE", late);
        DenseLatents.Contexts ctx = new DenseLatents.Contexts(x, position, inSentence, sequence, concepts);
        try (SparseCoder sae = Planted.dictionary(enc, dec)) {
            DenseLatents.Result res = DenseLatents.run(sae, ctx, DenseLatents.Options.defaults());
            System.out.println(res);
            System.out.println(res.toTable().printAll());
            System.out.println(res.pairTable().printAll());
            assertEquals(2, res.dense().size(), "only the two position latents are dense: " + res.toTable());
            assertEquals(1, res.pairs().size());
            DenseLatents.Pair pair = res.pairs().get(0);
            assertEquals(0, pair.a());
            assertEquals(1, pair.b());
            assertEquals(-1.0, pair.cosine(), 1e-5);
            DenseLatents.Latent up = res.latent(0).orElseThrow(), down = res.latent(1).orElseThrow();
            assertEquals(1, up.partner().getAsInt());
            assertEquals(0, down.partner().getAsInt());
            // positions 18..31 and 1..14 of 1..31 fire (threshold 0.15 on |p - 16| / 10)
            assertEquals(14 / 31.0, up.density(), 0.01);
            assertEquals(14 / 31.0, down.density(), 0.01);
            assertTrue(up.positionCorrelation() > 0.8, "latent 0 rises with position: " + up.positionCorrelation());
            assertTrue(down.positionCorrelation() < -0.8, "latent 1 falls with position: " + down.positionCorrelation());
            assertEquals("half=LATE", up.bestConcept());
            assertTrue(up.bestConceptCorrelation() > 0.6, "" + up.bestConceptCorrelation());
            assertTrue(down.bestConceptCorrelation() < -0.6, "" + down.bestConceptCorrelation());
            // neither fires on BOS, which is every 32nd token: a small negative correlation
            assertTrue(up.bosCorrelation() < 0 && up.bosCorrelation() > -0.3, "" + up.bosCorrelation());
            assertEquals(1.0, res.pairedFraction(), 1e-12);
        }
    }

    @Test
    void noDenseLatentsInADictionaryOfSparseOnes() {
        SplittableRandom r = new SplittableRandom(4);
        float[][] dirs = Planted.orthonormal(WORDS, D, r);
        int n = 400;
        float[][] x = new float[n][D];
        int[] position = new int[n], inSentence = new int[n], sequence = new int[n];
        for (int i = 0; i < n; i++) {
            position[i] = 1 + i % 10;
            inSentence[i] = i % 10;
            sequence[i] = i / 10;
            add(x[i], dirs[r.nextInt(WORDS)], 1);
        }
        try (SparseCoder sae = Planted.dictionary(dirs, dirs)) {
            DenseLatents.Result res = DenseLatents.run(sae,
                    new DenseLatents.Contexts(x, position, inSentence, sequence, Map.of()), DenseLatents.Options.defaults());
            assertEquals(0, res.dense().size(), res.toString());
            assertTrue(res.pairs().isEmpty());
            assertTrue(Double.isNaN(res.pairedFraction()));
        }
    }

    /**
     * Four architectures trained briefly (300 steps) on the same tinylang-4l activations (resid_post of layer 1):
     * their dense latents on held-out sequences, BOS included.
     */
    @Test
    void denseLatentsOfFourArchitecturesOnTinyLang() {
        long t0 = System.nanoTime();
        String hook = "blocks.1.hook_resid_post";
        ProbeData trainRows;
        DenseLatents.Contexts ctx;
        try (HookedTransformer model = Zoo.load("tinylang-4l")) {
            TinyLang lang = TinyLang.defaults();
            trainRows = TinyLangConcepts.harvest(model, hook, lang.examples(Split.TRAIN, 0, 128), 32);
            ctx = DenseLatents.Contexts.harvest(model, hook, lang.examples(Split.TEST, 0, 48), 16);
        }
        assertEquals(48 * 64, ctx.size(), "every token, BOS included");
        boolean[] bos = ctx.concepts().get("pos=BOS");
        for (int i = 0; i < ctx.size(); i++) {
            assertEquals(ctx.position()[i] == 0, bos[i], "labels line up with the harvested rows at " + i);
            assertEquals(i / 64, ctx.sequence()[i]);
        }
        RowSource source = RowSource.of(trainRows.x(), 0).withHookPoint(hook);
        SaeTrainConfig cfg = SaeTrainConfig.builder().steps(300).batchSize(512).lr(4e-3).sparsityWarmupSteps(100)
                .seed(0).build();
        Map<String, DenseLatents.Result> res = DenseLatents.trainAndRun(source,
                DenseLatents.architectures(trainRows.dim(), 256, 8), cfg, ctx, DenseLatents.Options.defaults());
        System.out.println(DenseLatents.compare(res).printAll());
        for (var e : res.entrySet()) {
            System.out.println(e.getKey() + ": " + e.getValue());
            System.out.println(e.getValue().toTable().printAll());
            if (!e.getValue().pairs().isEmpty()) System.out.println(e.getValue().pairTable().printAll());
        }
        System.out.printf("total %.1f s%n", (System.nanoTime() - t0) / 1e9);
        assertEquals(List.of("topk", "batchtopk", "jumprelu", "relu"), List.copyOf(res.keySet()));
        // Sun et al.: dense latents carry position. Measured: the densest position latent of TopK (density 0.51)
        // r = 0.76, of BatchTopK (0.69) r = 0.82; every dense latent of JumpReLU and ReLU at most 0.49
        for (String k : List.of("topk", "batchtopk")) {
            assertTrue(res.get(k).maxAbsPositionCorrelation() > 0.5, k + ": a dense latent tracks position: "
                    + res.get(k));
        }
        for (DenseLatents.Result r : res.values()) {
            assertEquals(ctx.size() - 48, r.tokens(), "density is over the tokens after BOS");
            for (DenseLatents.Latent l : r.dense()) {
                assertTrue(l.density() > 0.1, l.toString());
                assertTrue(!Double.isNaN(l.bosCorrelation()) && !Double.isNaN(l.positionCorrelation()), l.toString());
            }
            for (DenseLatents.Pair p : r.pairs()) {
                assertTrue(p.cosine() < -0.9, p.toString());
                assertTrue(r.latent(p.a()).isPresent() && r.latent(p.b()).isPresent(), "pairs are of dense latents");
            }
        }
    }

    @Test
    void correlationIsPearsons() {
        assertEquals(1.0, DenseLatents.correlation(new double[] {1, 2, 3}, new double[] {2, 4, 6}, null), 1e-12);
        assertEquals(-1.0, DenseLatents.correlation(new double[] {1, 2, 3, 9}, new double[] {3, 2, 1, 0},
                new boolean[] {true, true, true, false}), 1e-12);
        assertTrue(Double.isNaN(DenseLatents.correlation(new double[] {1, 1}, new double[] {1, 2}, null)));
    }

    private static void add(float[] x, float[] dir, double c) {
        for (int k = 0; k < x.length; k++) x[k] += (float) (c * dir[k]);
    }

    private static float[] scaled(float[] v, double c) {
        float[] o = new float[v.length];
        for (int k = 0; k < v.length; k++) o[k] = (float) (c * v[k]);
        return o;
    }
}
