package dev.jlens.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.HiddenRoles.Claim;
import dev.jlens.data.HiddenRoles.Layout;
import dev.jlens.data.HiddenRoles.Meta;
import dev.jlens.data.HiddenRoles.OptionalRole;
import dev.jlens.data.HiddenRoles.Veracity;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;

/** The hidden-role game's ground truth against an independent reading of its text. */
class HiddenRolesTest {

    private static final HiddenRoles TASK = HiddenRoles.defaults().withSeed(5);

    /** A claim as read from the text: speaker's name, subject's name, stated role, positions. */
    private record Read(String speaker, String subject, String role, boolean report, int start, int rolePos) {}

    @Test
    void everyLieIsALieAndOnlyTheWolfLies() {
        int lies = 0, truths = 0;
        for (Split split : Split.values()) {
            for (Example<Meta> ex : TASK.examples(split, 0, 400)) {
                List<String> w = ex.tokens();
                Meta m = ex.meta();
                // the deal: "deal : NAME ROLE , ... NAME ROLE ."
                assertEquals(List.of("<bos>", "deal", ":"), w.subList(0, 3));
                Map<String, String> role = new HashMap<>();
                List<String> seats = new ArrayList<>();
                int i = 3;
                while (true) {
                    seats.add(w.get(i));
                    role.put(w.get(i), w.get(i + 1));
                    i += 3;
                    if (w.get(i - 1).equals(".")) break;
                    assertEquals(",", w.get(i - 1));
                }
                assertEquals(m.layout().players(), seats.size());
                assertEquals(seats, m.names());
                assertEquals(1, role.values().stream().filter("wolf"::equals).count(), "one wolf: " + ex.text());
                assertEquals(1, role.values().stream().filter("seer"::equals).count(), "one seer: " + ex.text());
                // the claims: "NAME : i am ROLE ." or "NAME : OTHER is ROLE ."
                List<Read> reads = new ArrayList<>();
                while (!w.get(i).equals("<eos>")) {
                    assertEquals(":", w.get(i + 1));
                    assertEquals(".", w.get(i + 5));
                    boolean report = w.get(i + 3).equals("is");
                    if (!report) assertEquals(List.of("i", "am"), w.subList(i + 2, i + 4));
                    reads.add(new Read(w.get(i), report ? w.get(i + 2) : w.get(i), w.get(i + 4), report, i, i + 4));
                    i += 6;
                }
                assertEquals(w.size() - 1, i);
                assertEquals(reads.size(), m.claims().size());
                for (int c = 0; c < reads.size(); c++) {
                    Read r = reads.get(c);
                    Claim claim = m.claims().get(c);
                    boolean lie = !r.role().equals(role.get(r.subject()));
                    boolean wolfSpeaks = role.get(r.speaker()).equals("wolf");
                    assertEquals(wolfSpeaks, lie, "the wolf lies in every claim, no one else lies: " + ex.text());
                    assertEquals(lie, claim.lie());
                    assertEquals(seats.indexOf(r.speaker()), claim.speaker());
                    assertEquals(seats.indexOf(r.subject()), claim.subject());
                    assertEquals(r.role(), claim.claimedRole().word());
                    assertEquals(r.start(), claim.start());
                    assertEquals(r.rolePos(), claim.rolePos());
                    for (int p = r.start(); p < r.start() + 6; p++) {
                        HiddenRoles.TokenLabel l = m.labels().get(p);
                        assertEquals(lie ? Veracity.LIE : Veracity.TRUE, l.veracity());
                        assertEquals(seats.indexOf(r.speaker()), l.speaker());
                        assertEquals(role.get(r.speaker()), l.speakerRole().name().toLowerCase());
                        assertEquals(r.role(), l.claimedRole().name().toLowerCase());
                        assertEquals(p == r.rolePos(), l.roleWord());
                        assertEquals(ex.label("veracity").get(p), l.veracity());
                    }
                    lies += lie ? 1 : 0;
                    truths += lie ? 0 : 1;
                }
                for (int p = 0; p < 3 * seats.size() + 3; p++) {
                    assertEquals(Veracity.NONE, m.labels().get(p).veracity(), "the deal is no claim");
                }
                // every player claims a role once; exactly the players who claimed seer report once
                Set<String> claimedSeer = new HashSet<>();
                for (Read r : reads) if (!r.report() && r.role().equals("seer")) claimedSeer.add(r.speaker());
                assertEquals(seats.size(), reads.stream().filter(r -> !r.report()).map(Read::speaker).distinct().count());
                assertEquals(claimedSeer, new HashSet<>(reads.stream().filter(Read::report).map(Read::speaker).toList()));
                for (Read r : reads) if (r.report()) assertFalse(r.subject().equals(r.speaker()), ex.text());
                // the role columns: each seat's role on every token
                for (int s = 0; s < HiddenRoles.MAX_PLAYERS; s++) {
                    OptionalRole want = s < seats.size() ? OptionalRole.valueOf(role.get(seats.get(s)).toUpperCase())
                            : OptionalRole.NONE;
                    for (Object v : ex.label("role_p" + s)) assertEquals(want, v);
                }
            }
        }
        assertTrue(lies > 700 && truths > 2500, lies + " lies, " + truths + " truths in 800 games");
    }

    @Test
    void layoutsDifferInPlayersAndOrderOfClaims() {
        Map<Layout, Integer> games = new HashMap<>();
        Set<List<Integer>> shuffledOrders = new HashSet<>();
        int wolfAsSeer = 0, n = 1000;
        for (Example<Meta> ex : TASK.examples(Split.TRAIN, 0, n)) {
            Meta m = ex.meta();
            games.merge(m.layout(), 1, Integer::sum);
            List<Claim> roleClaims = m.claims().stream().filter(c -> c.kind() == HiddenRoles.ClaimKind.ROLE_CLAIM).toList();
            List<Integer> speakers = roleClaims.stream().map(Claim::speaker).toList();
            assertEquals(m.order(), speakers);
            if (m.layout() == Layout.ROUND_4) {
                assertEquals(List.of(0, 1, 2, 3), speakers, "round: seat order");
                // reports come after every role claim
                int lastRoleClaim = roleClaims.get(roleClaims.size() - 1).start();
                for (Claim c : m.claims()) {
                    if (c.kind() == HiddenRoles.ClaimKind.REPORT) assertTrue(c.start() > lastRoleClaim);
                }
            } else {
                shuffledOrders.add(speakers);
                // a report follows its speaker's seer claim at once
                for (int c = 0; c < m.claims().size(); c++) {
                    Claim claim = m.claims().get(c);
                    if (claim.kind() == HiddenRoles.ClaimKind.REPORT) {
                        Claim before = m.claims().get(c - 1);
                        assertEquals(claim.speaker(), before.speaker());
                        assertEquals(HiddenRoles.Role.SEER, before.claimedRole());
                    }
                }
            }
            Claim wolfClaim = roleClaims.get(speakers.indexOf(m.wolf()));
            wolfAsSeer += wolfClaim.claimedRole() == HiddenRoles.Role.SEER ? 1 : 0;
        }
        assertTrue(Math.abs(games.get(Layout.ROUND_4) - n / 2) < 80, "layouts " + games);
        assertTrue(shuffledOrders.size() > 60, "only " + shuffledOrders.size() + " speaking orders of 5 players");
        assertTrue(Math.abs(wolfAsSeer - n / 2) < 80, "the wolf posed as seer in " + wolfAsSeer + " of " + n);
        for (Example<Meta> ex : TASK.withLayouts(Layout.SHUFFLED_5).examples(Split.TEST, 0, 50)) {
            assertEquals(Layout.SHUFFLED_5, ex.meta().layout());
        }
    }

    /** The recorded log-probability, recomputed from the text by counting the generator's choices. */
    @Test
    void logProbabilityIsTheDerivationsRecomputedFromTheText() {
        for (Example<Meta> ex : TASK.examples(Split.TRAIN, 0, 200)) {
            Meta m = ex.meta();
            int n = m.names().size();
            double nll = Math.log(TASK.layouts().size());
            for (int k = 0; k < n; k++) nll += Math.log(HiddenRoles.NAMES.size() - k);   // names in seat order
            nll += Math.log(n) + Math.log(n - 1);   // wolf's seat, seer's seat
            if (m.layout().shuffled()) for (int k = 2; k <= n; k++) nll += Math.log(k);   // speaking order
            nll += Math.log(2);   // the wolf's claim, with wolfClaimsSeer 0.5
            long reports = ex.tokens().stream().filter("is"::equals).count();
            nll += reports * Math.log(n - 1);   // each report's subject
            assertEquals(nll, -m.logProb(), 1e-9, ex.text());
        }
        double h = TASK.entropyPerToken(Split.TRAIN, 500);
        assertTrue(h > 0.1 && h < 1.0, "entropy per token " + h);
    }

    @Test
    void badSettingsAreRejectedNamingTheOptions() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new HiddenRoles(List.of(), 0.5, 0));
        assertTrue(e.getMessage().contains("ROUND_4") && e.getMessage().contains("SHUFFLED_5"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new HiddenRoles(List.of(Layout.ROUND_4, Layout.ROUND_4), 0.5, 0));
        assertTrue(e.getMessage().contains("distinct"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new HiddenRoles(List.of(Layout.ROUND_4), 2, 0));
        assertTrue(e.getMessage().contains("wolfClaimsSeer"), e.getMessage());
    }
}
