package dev.jlens.analysis;

import dev.jlens.data.Agreement;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EdgeCircuitTest {
    static HookedTransformer model;
    static Patching patching;

    @BeforeAll
    static void load() {
        model = Zoo.load("tinylang-4l");
        patching = AgreementPatching.of(model, Agreement.Template.SUBJECT_GAP, 8);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void everyEdgeIsTheCleanRunAndNoEdgeTheCorruptOne() {
        Set<Edge> all = new HashSet<>(EdgeAttribution.edges(model));
        assertEquals(1.0, new EdgeCircuit(all).faithfulness(patching), 1e-6);
        double empty = EdgeCircuit.metrics(patching, List.of(new EdgeCircuit(Set.of())))[0];
        assertEquals(patching.metricCorrupt(), empty, 1e-3);
    }

    @Test
    void leavingOneEdgeOutEqualsPatchingThatEdge() {
        List<Edge> all = EdgeAttribution.edges(model);
        List<Edge> probes = List.of(new Edge(Node.mlp(0), Node.head(2, 0), "v"), new Edge(Node.input(), Node.mlp(0), ""),
                new Edge(Node.head(2, 0), Node.logits(4), ""), new Edge(Node.head(0, 3), Node.head(1, 2), "q"),
                new Edge(Node.mlp(1), Node.head(2, 0), "k"));
        List<EdgeCircuit> circuits = probes.stream().map(e -> {
            Set<Edge> s = new HashSet<>(all);
            s.remove(e);
            return new EdgeCircuit(s);
        }).toList();
        double[] m = EdgeCircuit.metrics(patching, circuits);
        EdgeResult exact = EdgeAttribution.exact(patching, Direction.NOISE, probes);
        for (int i = 0; i < probes.size(); i++) {
            assertEquals(exact.values()[i], m[i], 2e-3, probes.get(i).label());
        }
    }

    @Test
    void aFewEdgesRankedByEapIgCarryAgreement() {
        EdgeResult ig = EdgeAttribution.eapIg(patching, Direction.DENOISE, 16);
        FaithfulnessCurve curve = EdgeCircuit.curve(patching, ig.importance());
        System.out.println(curve.toTable().first(12));
        System.out.printf("edge curve: CPR %.3f CMD %.3f, 80%% at %s edges of %d%n", curve.cpr(), curve.cmd(),
                curve.smallestReaching(0.8), ig.edges().size());
        int k = curve.smallestReaching(0.8).orElseThrow();
        assertTrue(k <= 32, "edges for 80%: " + k);
        assertTrue(curve.cpr() > 0.8, "CPR " + curve.cpr());
        var e = assertThrows(IllegalArgumentException.class, () -> new EdgeCircuit(
                Set.of(new Edge(Node.head(5, 0), Node.logits(6), ""))).faithfulness(patching));
        assertTrue(e.getMessage().contains("not in this model's graph"), e.getMessage());
    }
}
