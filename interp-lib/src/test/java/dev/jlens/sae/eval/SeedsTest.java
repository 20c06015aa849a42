package dev.jlens.sae.eval;

import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Mean and sample standard deviation over seeds, and metrics that must agree across seeds. */
class SeedsTest {
    @Test
    void meanAndSpreadOverSeeds() {
        Seeds.Result r = Seeds.run(List.of(1L, 2L, 3L), s -> Map.of("x", (double) s, "twice", 2.0 * s));
        assertEquals(2.0, r.mean("x"), 1e-12);
        assertEquals(1.0, r.sd("x"), 1e-12);   // sample sd of 1, 2, 3
        assertEquals(2.0, r.sd("twice"), 1e-12);
        Table t = r.toTable();
        assertEquals(2, t.rowCount());
        assertEquals(3, t.intColumn("seeds").get(0));
        assertEquals(3, r.perSeed().rowCount());
        assertEquals(0, Seeds.sd(new double[] {5}), 0);
        assertThrows(IllegalArgumentException.class, () -> r.values("y"));
        assertThrows(IllegalArgumentException.class, () -> Seeds.run(List.of(1L, 2L),
                s -> s == 1 ? Map.of("x", 1.0) : Map.of("y", 1.0)));
    }
}
