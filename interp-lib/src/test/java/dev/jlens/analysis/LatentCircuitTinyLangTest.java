package dev.jlens.analysis;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.sae.eval.DenseLatents;
import dev.jlens.sae.eval.Explanations;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Comparator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The case study: the best-explained conjunctive latent of a briefly trained TopK dictionary after layer 2 of
 * tinylang-4l, its upstream circuit (attribution beside ablation, faithfulness, what the top head reads) and its
 * explanation from labels at its own token, at the token the top head reads, and both.
 */
class LatentCircuitTinyLangTest {
    static HookedTransformer model;
    static List<Example<TinyLang.Meta>> examples;
    static List<long[]> sequences;

    @BeforeAll
    static void load() {
        model = Zoo.load("tinylang-4l");
        examples = TinyLang.defaults().examples(Split.TRAIN, 0, 96);
        sequences = examples.stream().map(Example::ids).toList();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void aDictionaryLatentsCircuitAndItsInterpretation() {
        long t0 = System.nanoTime();
        String hook = "blocks.2.hook_resid_post";
        DenseLatents.Contexts ctx = DenseLatents.Contexts.harvest(model, hook, examples, 32);
        SaeTrainConfig cfg = SaeTrainConfig.builder().steps(200).batchSize(512).lr(4e-3).seed(0).build();
        try (SparseCoder sae = SparseCoder.create(SaeConfig.of(128, 256, new SaeConfig.TopK(8)), 0);
             SaeTrainer trainer = SaeTrainer.of(RowSource.of(ctx.x(), 0).withHookPoint(hook), cfg).add("sae", sae);
             NDManager nd = NDManager.newBaseManager()) {
            trainer.progress(ProgressSink.none());
            trainer.train();
            int n = ctx.size();
            float[] flat = new float[n * 128];
            for (int i = 0; i < n; i++) System.arraycopy(ctx.x()[i], 0, flat, i * 128, 128);
            float[] a = sae.encode(nd.create(flat, new Shape(n, 128))).toFloatArray();
            float[][] acts = new float[n][256];
            for (int i = 0; i < n; i++) System.arraycopy(a, i * 256, acts[i], 0, 256);
            var explained = Explanations.of(acts, ctx, true).explain(Explanations.Options.defaults());
            long t1 = System.nanoTime();
            // the best-explained latents that are not about the token's own word class alone
            List<Explanations.Score> picks = explained.explanations().stream()
                    .filter(s -> s.rule().terms().size() > 1 && s.f1() > 0.6)
                    .sorted(Comparator.comparingDouble(Explanations.Score::f1).reversed()).limit(1).toList();
            assertTrue(!picks.isEmpty(), "some latent has a conjunctive explanation");
            for (Explanations.Score own : picks) {
                int latent = own.latent();
                var readout = LatentCircuit.Readout.of(sae, hook, latent);
                // the readout is the latent's pre-activation: where the latent fires, they agree
                float[] col = LatentCircuit.latentActs(sae, latent, ctx.x());
                for (int i = 0; i < n; i++) {
                    if (col[i] > 0) assertEquals(col[i], readout.apply(ctx.x()[i]), 1e-3 + 1e-3 * col[i]);
                }
                long a0 = System.nanoTime();
                var firing = LatentCircuit.firing(model, readout, sequences, 12);
                long a1 = System.nanoTime();
                var r = LatentCircuit.trace(model, readout, firing.prompts(), firing.targets(), LatentCircuit.Ablation.MEAN);
                long a2 = System.nanoTime();
                var f = r.faithfulness(3);
                long a3 = System.nanoTime();
                System.out.printf("firing %.1f s, trace %.1f s, faithfulness %.1f s%n", (a1 - a0) / 1e9, (a2 - a1) / 1e9, (a3 - a2) / 1e9);
                LatentCircuit.Effect topHead = r.effects(LatentCircuit.Node.Kind.HEAD).get(0);
                var in = LatentCircuit.interpret(model, col, ctx, sequences, topHead.node().layer(),
                        topHead.node().index(), Explanations.Options.defaults());
                System.out.printf("latent %d (%s): clean %.3f; correlation all %.3f, heads %.3f, MLPs %.3f, tokens %.3f; %s%n",
                        latent, own, r.clean(), r.correlation(), r.correlation(LatentCircuit.Node.Kind.HEAD),
                        r.correlation(LatentCircuit.Node.Kind.MLP), r.correlation(LatentCircuit.Node.Kind.TOKEN), f);
                System.out.println(r.toTable().first(8).printAll());
                System.out.println(r.readsTable(5).printAll());
                System.out.println(in.toTable().printAll());
                System.out.println("circuit changes the reading: " + in.circuitChangesReading(0.05));
                assertTrue(r.clean() > 0, "the latent fires at its firing tokens");
                // explanations: own-token search reproduces the full search's rule; the joint one is never worse
                assertEquals(own.f1(), in.own().orElseThrow().f1(), 1e-9);
                assertTrue(in.both().orElseThrow().f1() >= in.own().orElseThrow().f1() - 1e-12);
                // ablating every head and MLP changes the latent; keeping the top 3 alone is bounded by the clean run
                assertTrue(Math.abs(f.clean() - f.none()) > 0.05 * Math.abs(f.clean()), f.toString());
                // first-order estimates track real ablations of the heads
                assertTrue(r.correlation(LatentCircuit.Node.Kind.HEAD) > 0.5, "heads " + r.correlation(LatentCircuit.Node.Kind.HEAD));
                assertEquals(3 * model.cfg().nHeads(), r.effects(LatentCircuit.Node.Kind.HEAD).size(), "heads of layers 0-2");
                assertEquals(3, r.effects(LatentCircuit.Node.Kind.MLP).size());
            }
            System.out.printf("harvest + dictionary + explanations %.1f s, traces %.1f s%n", (t1 - t0) / 1e9,
                    (System.nanoTime() - t1) / 1e9);
        }
    }
}
