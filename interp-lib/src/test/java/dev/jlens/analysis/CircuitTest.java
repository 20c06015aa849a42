package dev.jlens.analysis;

import dev.jlens.data.Agreement;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.HashSet;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CircuitTest {
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
    void theFullCircuitIsFaithfulAndTheEmptyOneIsTheCorruptRun() {
        Circuit full = new Circuit(new HashSet<>(Circuit.allNodes(model)));
        assertEquals(1.0, full.faithfulness(patching), 1e-6);
        double[] m = Circuit.metrics(patching, List.of(full), true);
        assertEquals(patching.metricCorrupt(), m[1], 1e-4, "every node from the corrupt run is the corrupt run");
    }

    @Test
    void aFewNodesCarryAgreementAndTheCurveShowsIt() {
        Map<Node, Double> exact = Circuit.nodeScores(patching, true);
        Map<Node, Double> atp = Circuit.nodeScores(patching, false);
        FaithfulnessCurve byExact = Circuit.curve(patching, exact);
        FaithfulnessCurve byAtp = Circuit.curve(patching, atp);
        System.out.println(byExact.toTable().first(8));
        System.out.printf("CPR exact %.3f AtP %.3f; CMD exact %.3f AtP %.3f%n", byExact.cpr(), byAtp.cpr(),
                byExact.cmd(), byAtp.cmd());
        assertEquals(0.0, byExact.faithfulness()[0], 1e-9);
        assertEquals(1.0, byExact.faithfulness()[byExact.sizes().length - 1], 1e-6);
        int k = byExact.smallestReaching(0.8).orElseThrow();
        // measured: 8 of the 21 nodes (L2H0, input, MLP0, MLP2, MLP3, L1H2, MLP1, ...) restore 80%; CPR 0.746
        assertTrue(k <= 10, "nodes needed for 80%: " + k);
        assertTrue(byExact.cpr() > 0.7 && byExact.cmd() < 0.3, byExact.cpr() + " " + byExact.cmd());
        Circuit top = Circuit.top(exact, k);
        Table min = top.minimality(patching, 0.02);
        System.out.println(top + "\n" + min);
        assertEquals(k, min.rowCount());
        byExact.plot();
    }

    @Test
    void unknownNodesAreNamed() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> Circuit.of(Node.head(7, 0)).faithfulness(patching));
        assertTrue(e.getMessage().contains("L0H0..L3H3"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Circuit.of(Node.logits(4)));
    }
}
