package dev.jlens.analysis;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Split;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Probes over thinker's own chains of thought on 2x2-digit multiplications. Planted: after the first step the units
 * digit of the answer has been written (it is the last token of step 1, and the answer's last token at the end), so
 * the digit probe reads it near-perfectly there; shuffled labels read nothing; after the last step the answer is
 * written, so resampling from there repeats it and its P(correct) tells right from wrong exactly.
 */
class ChainProbesTest {
    static HookedTransformer thinker;
    static ChainProbes.Result result;

    @BeforeAll
    static void run() {
        thinker = Zoo.load("thinker");
        List<ArithCot.Problem> ps = ChainProbes.mulProblems(Split.TEST, 160);
        result = ChainProbes.run(thinker, ps, ChainProbes.Options.defaults().withLayers(0, 3).withProbe(1e-2, 40)
                .withResampling(6, 3));
        System.out.println(result);
        System.out.println(result.toTable().printAll());
    }

    @AfterAll
    static void close() {
        thinker.close();
    }

    @Test
    void tracesHaveSixStepsAndEnoughWrongAnswers() {
        long six = result.traces().stream().filter(t -> t.steps() == 6).count();
        assertTrue(six > 0.95 * result.traces().size(), six + " of " + result.traces().size());
        assertTrue(result.accuracy() > 0.5 && result.accuracy() < 0.95, "thinker errs on some: " + result.accuracy());
        ChainProbes.ModelTrace t = result.traces().get(0);
        // k = 0 reads <think>; k = steps reads the answer's last digit
        long[] ids = t.trace().tokens();
        ArithCot task = ArithCot.defaults();
        assertEquals(task.tokenId(ArithCot.THINK), ids[t.position(0)]);
        assertEquals(task.tokenId(Long.toString(t.answer().orElseThrow() % 10)), ids[t.position(t.steps())]);
        assertEquals(task.tokenId("<eos>"), ids[ids.length - 1]);
    }

    @Test
    void theWrittenUnitsDigitIsReadNearPerfectlyAndShuffledLabelsReadNothing() {
        int last = result.maxK();
        for (int layer : new int[] {0, 3}) {
            for (int k : new int[] {1, last}) {
                ChainProbes.Row r = result.row(layer, k);
                assertTrue(r.digitAccuracy() > 0.9, "layer " + layer + " k " + k + ": " + r);
                assertTrue(r.digitShuffled() < r.digitMajority() + 0.15, "shuffled control: " + r);
            }
        }
        double shuffledAuroc = result.rows().stream().filter(r -> r.k() > 0)
                .mapToDouble(ChainProbes.Row::correctAurocShuffled).average().orElseThrow();
        assertTrue(Math.abs(shuffledAuroc - 0.5) < 0.12, "shuffled correctness AUROC " + shuffledAuroc);
    }

    @Test
    void resamplingAfterTheWrittenAnswerRepeatsIt() {
        ChainProbes.Row r = result.row(3, result.maxK());
        assertEquals(6, r.nResampled());
        assertEquals(1.0, r.resampledAuroc(), 1e-12, r.toString());
        double[][] p = result.pResampled();
        int[] idx = result.resampled();
        for (int j = 0; j < idx.length; j++) {
            ChainProbes.ModelTrace t = result.traces().get(idx[j]);
            assertTrue(result.heldOut(idx[j]));
            assertEquals(t.correct(), p[j][t.steps()], 1e-12, "P(correct | whole trace) of " + t.problem());
        }
        Table table = result.toTable();
        assertEquals(2 * (result.maxK() + 1), table.rowCount());
        assertEquals(2 + 2, result.plot().getSeriesMap().size());
        assertEquals(4, result.resamplingPlot(3).getSeriesMap().size());
        assertThrows(IllegalArgumentException.class, () -> result.resamplingPlot(2));
        assertThrows(IllegalArgumentException.class, () -> ChainProbes.Options.defaults().withDigitPlace(-1));
    }
}
