package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Example;
import dev.jlens.data.Split;
import dev.jlens.data.TinyLang;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class LatentMatchTest {

    @Test
    void findsThePlantedLatentForEachConcept() {
        TinyLang task = TinyLang.defaults();
        List<Example<TinyLang.Meta>> examples = new ArrayList<>();
        for (int i = 0; i < 8; i++) examples.add(task.example(Split.TEST, i));
        Map<String, boolean[]> concepts = LatentMatch.concepts(examples, List.of("pos", "number"));
        assertTrue(concepts.containsKey("pos=NOUN"), concepts.keySet().toString());
        assertFalse(concepts.containsKey("pos=BOS"), "BOS is skipped");
        int n = concepts.get("pos=NOUN").length;
        assertEquals(8 * (task.seqLength() - 1), n);

        // 20 latents of noise; latent 7 fires exactly on nouns, latent 3 on verbs with 20% of its firings wrong
        SplittableRandom r = new SplittableRandom(1);
        float[] acts = new float[n * 20];
        boolean[] noun = concepts.get("pos=NOUN"), verb = concepts.get("pos=VERB");
        for (int i = 0; i < n; i++) {
            for (int s = 0; s < 20; s++) acts[i * 20 + s] = r.nextDouble() < 0.1 ? (float) r.nextDouble() : 0f;
            acts[i * 20 + 7] = noun[i] ? 2f : 0f;
            acts[i * 20 + 3] = verb[i] ? 1f : (r.nextDouble() < 0.05 ? 1f : 0f);
        }
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray a = m.create(acts, new Shape(n, 20));
            List<LatentMatch.Match> matches = LatentMatch.best(a, concepts);
            LatentMatch.Match nounMatch = matches.stream().filter(x -> x.concept().equals("pos=NOUN")).findFirst().orElseThrow();
            assertEquals(7, nounMatch.latent());
            assertEquals(1.0, nounMatch.f1(), 1e-9);
            LatentMatch.Match verbMatch = matches.stream().filter(x -> x.concept().equals("pos=VERB")).findFirst().orElseThrow();
            assertEquals(3, verbMatch.latent());
            assertEquals(1.0, verbMatch.recall(), 1e-9);
            assertTrue(verbMatch.precision() < 1.0 && verbMatch.precision() > 0.5, verbMatch.toString());
            assertEquals(matches.size(), LatentMatch.table(matches).rowCount());
            assertTrue(matches.get(0).f1() >= matches.get(matches.size() - 1).f1(), "sorted by F1");
        }
    }

    @Test
    void optionsKeepBosAndSetTheFrequencyFloor() {
        TinyLang task = TinyLang.defaults();
        List<Example<TinyLang.Meta>> examples = List.of(task.example(Split.TEST, 0), task.example(Split.TEST, 1));
        var withBos = LatentMatch.concepts(examples, List.of("pos"), LatentMatch.ConceptOptions.defaults().keepBos());
        assertEquals(2 * task.seqLength(), withBos.values().iterator().next().length);
        var common = LatentMatch.concepts(examples, List.of("pos"), LatentMatch.ConceptOptions.defaults().minFrequency(0.2));
        assertTrue(common.size() < LatentMatch.concepts(examples, List.of("pos")).size(), "rare values are dropped");
        assertThrows(IllegalArgumentException.class, () -> LatentMatch.ConceptOptions.defaults().minFrequency(1.5));
    }

    @Test
    void unknownLabelNamesTheOptions() {
        TinyLang task = TinyLang.defaults();
        var e = assertThrows(IllegalArgumentException.class,
                () -> LatentMatch.concepts(List.of(task.example(Split.TEST, 0)), List.of("colour")));
        assertTrue(e.getMessage().contains("pos"), e.getMessage());
    }
}
