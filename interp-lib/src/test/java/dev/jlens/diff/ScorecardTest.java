package dev.jlens.diff;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

/** The scorecard's found / false-alarm rule, and the KL helpers it is fed from. */
class ScorecardTest {

    @Test
    void foundAndFalseAlarmCompareWithTheThreshold() {
        Scorecard s = new Scorecard()
                .add("KL top-20", "ft", "share in trigger contexts", 0.9, 0.1, 0.5, "points at the tokens")
                .add("lens", "ft", "rank", 0.2, 0.7, 0.5, "names a token")
                .add("crosscoder", "lora", "precision", Double.NaN, Double.NaN, 0.5, "no latent");
        List<Scorecard.Entry> e = s.entries();
        assertTrue(e.get(0).found());
        assertFalse(e.get(0).falseAlarm());
        assertFalse(e.get(1).found());
        assertTrue(e.get(1).falseAlarm());
        assertFalse(e.get(2).found(), "NaN is not found");
        assertFalse(e.get(2).falseAlarm());
        assertEquals(1, s.foundCount());
        assertEquals(1, s.falseAlarmCount());
        Table t = s.toTable();
        assertEquals(3, t.rowCount());
        assertTrue(t.name().contains("1 of 3 found, 1 false alarms"), t.name());
        assertEquals(List.of(true, false, false), t.booleanColumn("found").asList());
        assertThrows(IllegalArgumentException.class, () -> s.add("m", "f", "s", 1, 1, Double.NaN, "d"));
    }

    @Test
    void topShareAndFirstRankReadTheRankedPositions() {
        List<TokenKl.Row> rows = List.of(new TokenKl.Row(0, 0, 1, "a", 0.1), new TokenKl.Row(0, 1, 2, "b", 0.9),
                new TokenKl.Row(1, 0, 1, "a", 0.5), new TokenKl.Row(1, 1, 3, "c", 0.05));
        TokenKl kl = new TokenKl(List.of(new long[] {1, 2}, new long[] {1, 3}),
                List.of(new String[] {"a", "b"}, new String[] {"a", "c"}), rows);
        assertEquals(List.of(0.9, 0.5, 0.1, 0.05), kl.ranked().stream().map(TokenKl.Row::kl).toList());
        LatentCodes.Context prompt1 = (p, pos) -> p == 1;
        assertEquals(0.5, kl.topShare(2, prompt1), 1e-12);
        assertEquals(0.0, kl.topShare(1, prompt1), 1e-12);
        assertEquals(2, kl.firstRank(prompt1).getAsInt());
        assertTrue(kl.firstRank((p, pos) -> p == 7).isEmpty());
        assertEquals(0.275, kl.mean(prompt1), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> kl.topShare(0, prompt1));
    }
}
