package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Agreement;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.RowSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The number of a noun in tinylang-4l's residual stream after layer 1: directions from a probe, the difference of
 * means, a briefly trained TopK dictionary's best-matching latent, and a random control, each steered at the subject
 * of agreement prompts.
 */
class ConceptDirectionsTinyLangTest {
    static final String HOOK = "blocks.1.hook_resid_post";

    @Test
    void steeringAlongTheNumberDirectionsMovesVerbAgreementAndARandomDirectionDoesNot() {
        long t0 = System.nanoTime();
        try (HookedTransformer model = Zoo.load("tinylang-4l")) {
            List<Example<TinyLang.Meta>> examples = TinyLang.defaults().examples(Split.TRAIN, 0, 128);
            List<Batch> batches = new ArrayList<>();
            for (int i = 0; i < examples.size(); i += 32) {
                long[][] ids = new long[32][];
                for (int b = 0; b < 32; b++) ids[b] = examples.get(i + b).ids();
                batches.add(Batch.of(ids));
            }
            // every token after BOS, label 1 for a singular noun; type 1 marks a noun
            TokenLabeller every = (seq, pos) -> {
                if (pos == 0) return Optional.empty();
                TinyLang.TokenLabel l = examples.get(seq).meta().labels().get(pos);
                boolean noun = l.pos() == TinyLang.Pos.NOUN;
                return Optional.of(new TokenLabeller.Row(noun && l.number() == TinyLang.Num.SINGULAR ? 1 : 0, seq,
                        noun ? 1 : 0));
            };
            ProbeData all = LayerSweep.collect(model, List.of(HOOK), batches, every).get(HOOK);
            int[] types = all.types().orElseThrow();
            List<Integer> nounRows = new ArrayList<>();
            for (int i = 0; i < types.length; i++) if (types[i] == 1) nounRows.add(i);
            ProbeData nouns = all.subset(nounRows.stream().mapToInt(Integer::intValue).toArray());
            long t1 = System.nanoTime();

            SaeTrainConfig cfg = SaeTrainConfig.builder().steps(300).batchSize(512).lr(4e-3).seed(0).build();
            ConceptDirections dirs;
            try (SparseCoder sae = SparseCoder.create(SaeConfig.of(128, 256, new SaeConfig.TopK(8)), 0);
                 SaeTrainer trainer = SaeTrainer.of(RowSource.of(all.x(), 0).withHookPoint(HOOK), cfg).add("sae", sae);
                 NDManager nd = NDManager.newBaseManager()) {
                trainer.progress(ProgressSink.none());
                trainer.train();
                float[] flat = new float[all.size() * 128];
                for (int i = 0; i < all.size(); i++) System.arraycopy(all.x()[i], 0, flat, i * 128, 128);
                NDArray acts = sae.encode(nd.create(flat, new Shape(all.size(), 128)));
                boolean[] singularNoun = new boolean[all.size()];
                for (int i = 0; i < singularNoun.length; i++) singularNoun[i] = all.labels()[i] == 1;
                System.out.println("best latent: " + dev.jlens.sae.LatentMatch.best(acts,
                        java.util.Map.of("singular noun", singularNoun)).get(0));
                dirs = ConceptDirections.of("singular noun", nouns).withSaeLatent(sae, acts, singularNoun)
                        .withRandom(7);
            }
            long t2 = System.nanoTime();

            double norm = SteeringVector.typicalNorm(model, HOOK, batches.subList(0, 1)) / 4;
            List<Agreement.Pair> pairs = new Agreement(Agreement.Template.OBJECT_GAP, 0).pairs(0, 64);
            dirs = dirs.steerAgreement(model, HOOK, pairs, Positions.at(Agreement.SUBJECT_POS), norm);
            long t3 = System.nanoTime();
            System.out.printf("%d rows (%d nouns); steering norm %.3f; harvest %.1f s, probe and SAE %.1f s, "
                    + "steering %.1f s%n", all.size(), nouns.size(), norm, (t1 - t0) / 1e9, (t2 - t1) / 1e9,
                    (t3 - t2) / 1e9);
            System.out.println(dirs.cosineTable().printAll());
            System.out.println(dirs.toTable().printAll());

            double random = Math.abs(dirs.effect(ConceptDirections.RANDOM));
            for (String m : List.of(ConceptDirections.PROBE, ConceptDirections.DIFF_MEANS)) {
                double e = dirs.effect(m);
                assertTrue(e > 0, m + " towards singular raises logit(singular verb) - logit(plural verb): " + e);
                assertTrue(e > 5 * random, m + " " + e + " against random " + random);
            }
            assertTrue(dirs.cosine(ConceptDirections.PROBE, ConceptDirections.DIFF_MEANS) > 0.5, dirs.toString());
            assertTrue(Math.abs(dirs.cosine(ConceptDirections.RANDOM, ConceptDirections.PROBE)) < 0.35);
            assertTrue(dirs.chart().getSeriesMap().size() == 1);
        }
    }
}
