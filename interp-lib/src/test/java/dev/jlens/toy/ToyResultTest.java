package dev.jlens.toy;

import dev.jlens.toy.ToySuperposition.Config;
import dev.jlens.toy.ToySuperposition.Correlation;
import dev.jlens.train.ProgressSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Tables and charts across instances, and the correlated-features finding. */
class ToyResultTest {

    @BeforeAll
    static void pin() {
        Threads.pinOne();
    }

    @AfterAll
    static void unpin() {
        Threads.restore();
    }

    @Test
    void correlatedPairsGoOrthogonalAndAnticorrelatedPairsAntipodal() {
        // Each kind at the sparsity where training finds its optimum most often: anticorrelated pairs are steered
        // apart only when features of different pairs co-occur, which a sparser setting makes rare.
        List<Config> cs = new ArrayList<>();
        cs.addAll(Arrays.asList(ToySuperposition.repeat(Config.of(4, 2, 0.9, 1), 2)));
        cs.addAll(Arrays.asList(ToySuperposition.repeat(Config.of(4, 2, 0.9, 1).withCorrelation(Correlation.CORRELATED), 4)));
        cs.addAll(Arrays.asList(ToySuperposition.repeat(Config.of(4, 2, 0.8, 1).withCorrelation(Correlation.ANTICORRELATED), 4)));
        ToyResult r = ToySuperposition.train(ToySuperpositionTest.FAST.withSteps(3000), cs, ProgressSink.none());
        Table f = r.correlationFindings();
        assertEquals(3, f.rowCount(), f.print());
        assertEquals("orthogonal", row(f, "correlated").getString("lowest_loss_arrangement"), f.print());
        assertEquals("antipodal", row(f, "anticorrelated").getString("lowest_loss_arrangement"), f.print());
        ToyModel anti = r.model(row(f, "anticorrelated").getInt("lowest_loss_instance"));
        assertTrue(anti.cosine(0, 1) < -0.99 && anti.cosine(2, 3) < -0.99, anti.toString());
        ToyModel corr = r.model(row(f, "correlated").getInt("lowest_loss_instance"));
        assertTrue(Math.abs(corr.cosine(0, 1)) < 0.1 && Math.abs(corr.cosine(2, 3)) < 0.1, corr.toString());
        assertTrue(row(f, "correlated").getDouble("fraction_orthogonal") >= 0.5, f.print());
        assertTrue(row(f, "anticorrelated").getDouble("fraction_antipodal") >= 0.5, f.print());
        assertEquals(20, r.correlationTable().rowCount());
    }

    private static tech.tablesaw.api.Row row(Table t, String correlation) {
        Table w = t.where(t.stringColumn("correlation").isEqualTo(correlation));
        assertEquals(1, w.rowCount(), t.print());
        return w.row(0);
    }

    @Test
    void tablesAndChartsCoverEveryInstanceAndFeature() {
        ToyResult r = ToySuperposition.train(ToySuperpositionTest.FAST.withSteps(200),
                Arrays.asList(ToySuperposition.sparsitySweep(5, 2, 0.9, 0, 0.5, 0.9)), ProgressSink.none());
        Table t = r.toTable();
        assertEquals(3, t.rowCount());
        assertEquals(2.0, t.doubleColumn("inverse_density").get(1), 1e-12);
        assertEquals(r.model(2).dimensionsPerFeature(), t.doubleColumn("dims_per_feature").get(2), 1e-12);
        assertEquals(15, r.featureTable().rowCount());
        assertEquals(5, r.model(0).toTable().rowCount());
        HeatMapChart norms = r.normsPlot();
        assertEquals(1, norms.getSeriesMap().size());
        XYChart dims = r.dimensionalityPlot();
        assertTrue(dims.getStyler().isXAxisLogarithmic());
        assertEquals(15, dims.getSeriesMap().get("D_i (each feature)").getXData().length);
        r.interferencePlot();
        r.lossPlot();
        r.model(1).normsPlot();
        r.model(1).gramHeatmap();
        r.model(1).lossPlot();
        assertTrue(r.toString().contains("3 instances"), r.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::phaseDiagram);
        assertTrue(e.getMessage().contains("2 features in 1 dimension"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, r::correlationFindings);
        assertTrue(e.getMessage().contains("correlationStudy"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> r.model(3));
    }
}
