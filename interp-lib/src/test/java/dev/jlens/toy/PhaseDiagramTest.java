package dev.jlens.toy;

import dev.jlens.toy.PhaseDiagram.Phase;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Two features in one dimension: the classification of hand-built weights, and the corners of a trained grid. */
class PhaseDiagramTest {

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    @Test
    void classifiesHandBuiltWeights() {
        assertEquals(Phase.NOT_REPRESENTED, PhaseDiagram.classify(new double[][] {{1, 0.1}}));
        assertEquals(Phase.DEDICATED, PhaseDiagram.classify(new double[][] {{0.1, 1}}));
        assertEquals(Phase.SUPERPOSITION, PhaseDiagram.classify(new double[][] {{1, -1}}));
        assertEquals(Phase.DEDICATED, PhaseDiagram.classify(new double[][] {{1, 0}, {0, 1}}));   // two dimensions
        assertThrows(IllegalArgumentException.class, () -> PhaseDiagram.classify(new double[][] {{1, 0, 1}}));
    }

    @Test
    void aTrainedGridShowsThePaperPhases() {
        double[] sparsities = {0, 0.95};
        double[] importances = {0.25, 1, 4};
        ToyResult r = ToySuperposition.train(ToySuperpositionTest.FAST,
                Arrays.asList(ToySuperposition.phaseGrid(sparsities, importances, 3)), ProgressSink.none());
        PhaseDiagram p = r.phaseDiagram();
        String grid = p.toString();
        assertEquals(Phase.NOT_REPRESENTED, p.phase(0, 0.25).orElseThrow(), grid);   // dense, unimportant: dropped
        assertEquals(Phase.DEDICATED, p.phase(0, 4).orElseThrow(), grid);            // dense, important: takes it
        assertEquals(Phase.SUPERPOSITION, p.phase(0.95, 1).orElseThrow(), grid);     // sparse: antipodal pair
        assertEquals(6, p.toTable().rowCount());
        assertEquals(2, p.heatmap().getSeriesMap().values().iterator().next().getXData().size());
        assertTrue(grid.contains("D") && grid.contains("S") && grid.contains("."), grid);
        assertTrue(p.model(0.95, 1).orElseThrow().cosine(0, 1) < -0.9);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.phase(0.5, 1));
        assertTrue(e.getMessage().contains("sparsities [0.0, 0.95]"), e.getMessage());
    }
}
