package dev.jlens.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A simplified hidden-role game as text, with the ground truth of every claim: players hold secret roles (one wolf,
 * one seer, the rest villagers), the deal is written first, then the players make claims, and the wolf must lie.
 *
 * <pre>
 * &lt;bos&gt; deal : ana villager , ben seer , cal wolf , dan villager .
 *       ana : i am villager . ben : i am seer . cal : i am seer . dan : i am villager .
 *       ben : cal is wolf . cal : ana is wolf . &lt;eos&gt;
 * </pre>
 *
 * <p>The generative rules (every choice independent):
 * <ul>
 * <li>The layout is uniform among {@code layouts}; it fixes the number of players and the order of the claims
 *     ({@link Layout}). The players are distinct names drawn uniformly from {@link #NAMES}, in seat order; the wolf's
 *     seat is uniform, the seer's uniform among the others, the rest are villagers. The deal lists every seat's
 *     name and role in seat order.</li>
 * <li>Every player makes one role claim, {@code NAME : i am ROLE .}: villagers and the seer claim their true role;
 *     the wolf claims {@code seer} with probability {@code wolfClaimsSeer}, else {@code villager} (always a lie).</li>
 * <li>Every player who claimed {@code seer} makes one report, {@code NAME : OTHER is ROLE .}, about another player
 *     chosen uniformly: the real seer reports the other's true role (a truth), the wolf posing as seer reports
 *     {@code wolf} (a lie, since the other is never the wolf).</li>
 * </ul>
 * A claim is a lie exactly when its role differs from the true role of the player it is about: every wolf claim is
 * a lie and every other claim is true. {@link Meta#logProb()} is the exact log-probability of the game's
 * derivation, which the text determines (the deal fixes seats and roles, the claims the order and choices), so
 * {@code -logProb} summed over games and divided by their targets is the generator's entropy per token, the floor of
 * a model's loss. A game belongs to a split by a hash of its words. Every position after BOS is a target.
 *
 * @param layouts        the layouts games are drawn from (at least one, no repeats)
 * @param wolfClaimsSeer probability that the wolf claims to be the seer (0..1)
 * @param seed           seed of every example
 */
public record HiddenRoles(List<Layout> layouts, double wolfClaimsSeer, long seed) implements Task<HiddenRoles.Meta> {

    /** A secret role. */
    public enum Role {
        VILLAGER, SEER, WOLF;

        /** The role's word in the text. */
        public String word() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * How a game is laid out. {@code ROUND_4}: 4 players claim their roles in seat order, then the claimed seers
     * report, in seat order. {@code SHUFFLED_5}: 5 players speak in a uniformly random order, and a player who
     * claims to be the seer reports right after the claim.
     */
    public enum Layout {
        ROUND_4(4, false), SHUFFLED_5(5, true);

        private final int players;
        private final boolean shuffled;

        Layout(int players, boolean shuffled) {
            this.players = players;
            this.shuffled = shuffled;
        }

        /** Number of players. */
        public int players() {
            return players;
        }

        /** True if the speaking order is random (else seat order). */
        public boolean shuffled() {
            return shuffled;
        }
    }

    /** What kind of claim a token belongs to. */
    public enum ClaimKind { NONE, ROLE_CLAIM, REPORT }

    /** Whether a token belongs to a lie, a true claim, or no claim (the deal, BOS, EOS). */
    public enum Veracity { NONE, TRUE, LIE }

    /**
     * One claim: its speaker's seat and true role, its kind, the seat it is about (the speaker for a role claim),
     * the role it states, whether it is a lie, and its positions: {@code start} (the speaker's name),
     * {@code rolePos} (the stated role word) and {@code end} (one past its period).
     */
    public record Claim(int speaker, Role speakerRole, ClaimKind kind, int subject, Role claimedRole, boolean lie,
            int start, int rolePos, int end) {
    }

    /**
     * Ground truth of one token: the speaker's seat (-1 outside claims) and true role ({@code NONE} outside
     * claims), the claim's kind, the seat it is about (-1 outside claims) and the role it states, its veracity
     * (every token of a claim, from the speaker's name to its period, carries the claim's), and whether this token
     * is the claim's stated role word.
     */
    public record TokenLabel(int speaker, OptionalRole speakerRole, ClaimKind kind, int subject,
            OptionalRole claimedRole, Veracity veracity, boolean roleWord) {
    }

    /** A role or none (labels outside claims), so label columns hold no nulls. */
    public enum OptionalRole {
        NONE, VILLAGER, SEER, WOLF;

        /** The role, as an optional role. */
        public static OptionalRole of(Role r) {
            return values()[r.ordinal() + 1];
        }
    }

    /**
     * Metadata: the layout, the players' names and roles in seat order, the speaking order (seats), the claims in
     * text order, the exact log-probability of the derivation (nats), and the labels of every token.
     */
    public record Meta(Layout layout, List<String> names, List<Role> roles, List<Integer> order, List<Claim> claims,
            double logProb, List<TokenLabel> labels) {
        /** Copies the lists. */
        public Meta {
            names = List.copyOf(names);
            roles = List.copyOf(roles);
            order = List.copyOf(order);
            claims = List.copyOf(claims);
            labels = List.copyOf(labels);
        }

        /** The wolf's seat. */
        public int wolf() {
            return roles.indexOf(Role.WOLF);
        }

        /** The seer's seat. */
        public int seer() {
            return roles.indexOf(Role.SEER);
        }
    }

    /** The names players are drawn from. */
    public static final List<String> NAMES = List.of("ana", "ben", "cal", "dan", "eve", "fay", "gus", "hal", "ivy",
            "jon");
    /** Most players of any layout: label columns {@code role_p0 .. role_p4} hold each seat's role. */
    public static final int MAX_PLAYERS = 5;
    /** Fixed words. */
    public static final String DEAL = "deal", COLON = ":", COMMA = ",", PERIOD = ".", I = "i", AM = "am", IS = "is";

    private static final Vocab VOCAB = new Vocab("hidden-roles", words());
    private static final int MAX_ATTEMPTS = 100_000;

    /** Validates the settings. */
    public HiddenRoles {
        Objects.requireNonNull(layouts, "layouts: e.g. List.of(Layout.ROUND_4, Layout.SHUFFLED_5)");
        layouts = List.copyOf(layouts);
        if (layouts.isEmpty() || layouts.stream().distinct().count() != layouts.size()) {
            throw new IllegalArgumentException("layouts must be one or more distinct layouts of "
                    + Arrays.toString(Layout.values()) + ", got " + layouts);
        }
        if (!(wolfClaimsSeer >= 0 && wolfClaimsSeer <= 1)) {
            throw new IllegalArgumentException("wolfClaimsSeer must be in 0..1, got " + wolfClaimsSeer);
        }
    }

    /** Both layouts, the wolf posing as seer half the time, seed 0. */
    public static HiddenRoles defaults() {
        return new HiddenRoles(List.of(Layout.values()), 0.5, 0);
    }

    @Override
    public HiddenRoles withSeed(long newSeed) {
        return new HiddenRoles(layouts, wolfClaimsSeer, newSeed);
    }

    /** The same game with only these layouts (e.g. one layout to train a probe on, another to test it). */
    public HiddenRoles withLayouts(Layout... only) {
        return new HiddenRoles(List.of(only), wolfClaimsSeer, seed);
    }

    @Override
    public String name() {
        return "hidden-roles";
    }

    @Override
    public List<String> vocab() {
        return VOCAB.list();
    }

    @Override
    public long tokenId(String token) {
        return VOCAB.id(token);
    }

    @Override
    public int maxLength() {
        int most = layouts.stream().mapToInt(Layout::players).max().orElseThrow();
        // bos, deal : (name role ,)* ., role claims of 6 tokens, at most 2 reports of 6, eos
        return 1 + 2 + 3 * most + 6 * most + 2 * 6 + 1;
    }

    /** The generator's entropy per target token, estimated from the exact log-probabilities of {@code n} games. */
    public double entropyPerToken(Split split, int n) {
        double nats = 0;
        long targets = 0;
        for (Example<Meta> ex : examples(split, 0, n)) {
            nats -= ex.meta().logProb();
            targets += ex.targetCount();
        }
        return nats / targets;
    }

    @Override
    public Example<Meta> example(Split split, long index) {
        Rng rng = Rng.of(seed, split.ordinal(), index);
        for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            Gen g = new Gen(rng);
            g.game();
            if (Split.ofTokens("hidden-roles", g.words.toArray(new String[0])) == split) return g.toExample();
        }
        throw new IllegalStateException("no " + split + " game in " + MAX_ATTEMPTS + " draws");
    }

    private final class Gen {
        final Rng rng;
        final List<String> words = new ArrayList<>();
        final List<TokenLabel> labels = new ArrayList<>();
        final List<Claim> claims = new ArrayList<>();
        final List<String> names = new ArrayList<>();
        final List<Role> roles = new ArrayList<>();
        final List<Integer> order = new ArrayList<>();
        Layout layout;
        double logProb;

        Gen(Rng rng) {
            this.rng = rng;
        }

        void game() {
            layout = layouts.get(uniform(layouts.size()));
            int n = layout.players();
            List<String> pool = new ArrayList<>(NAMES);
            for (int i = 0; i < n; i++) names.add(pool.remove(uniform(pool.size())));
            int wolf = uniform(n);
            int seer = (wolf + 1 + uniform(n - 1)) % n;
            for (int i = 0; i < n; i++) roles.add(i == wolf ? Role.WOLF : i == seer ? Role.SEER : Role.VILLAGER);
            List<Integer> seats = new ArrayList<>();
            for (int i = 0; i < n; i++) seats.add(i);
            if (layout.shuffled()) {
                while (!seats.isEmpty()) order.add(seats.remove(uniform(seats.size())));
            } else {
                order.addAll(seats);
            }

            plain(SPECIALS.get(1));
            plain(DEAL);
            plain(COLON);
            for (int i = 0; i < n; i++) {
                plain(names.get(i));
                plain(roles.get(i).word());
                plain(i + 1 < n ? COMMA : PERIOD);
            }
            List<Integer> claimedSeers = new ArrayList<>();
            for (int s : order) {
                Role claimed = roles.get(s);
                if (claimed == Role.WOLF) claimed = flip(wolfClaimsSeer) ? Role.SEER : Role.VILLAGER;
                claim(s, ClaimKind.ROLE_CLAIM, s, claimed);
                if (claimed == Role.SEER) {
                    if (layout.shuffled()) report(s);
                    else claimedSeers.add(s);
                }
            }
            for (int s : claimedSeers) report(s);
            plain(SPECIALS.get(2));
        }

        void report(int speaker) {
            int n = layout.players();
            int other = (speaker + 1 + uniform(n - 1)) % n;
            Role stated = roles.get(speaker) == Role.WOLF ? Role.WOLF : roles.get(other);
            claim(speaker, ClaimKind.REPORT, other, stated);
        }

        void claim(int speaker, ClaimKind kind, int subject, Role stated) {
            boolean lie = stated != roles.get(subject);
            int start = words.size();
            List<String> text = kind == ClaimKind.ROLE_CLAIM
                    ? List.of(names.get(speaker), COLON, I, AM, stated.word(), PERIOD)
                    : List.of(names.get(speaker), COLON, names.get(subject), IS, stated.word(), PERIOD);
            int rolePos = start + 4;
            for (int i = 0; i < text.size(); i++) {
                words.add(text.get(i));
                labels.add(new TokenLabel(speaker, OptionalRole.of(roles.get(speaker)), kind, subject,
                        OptionalRole.of(stated), lie ? Veracity.LIE : Veracity.TRUE, start + i == rolePos));
            }
            claims.add(new Claim(speaker, roles.get(speaker), kind, subject, stated, lie, start, rolePos,
                    words.size()));
        }

        void plain(String w) {
            words.add(w);
            labels.add(new TokenLabel(-1, OptionalRole.NONE, ClaimKind.NONE, -1, OptionalRole.NONE, Veracity.NONE,
                    false));
        }

        int uniform(int n) {
            logProb -= Math.log(n);
            return rng.nextInt(n);
        }

        boolean flip(double p) {
            boolean yes = rng.chance(p);
            logProb += Math.log(yes ? p : 1 - p);
            return yes;
        }

        Example<Meta> toExample() {
            boolean[] loss = new boolean[words.size()];
            Arrays.fill(loss, 1, loss.length, true);
            Map<String, List<?>> columns = new LinkedHashMap<>();
            columns.put("speaker", column(TokenLabel::speaker));
            columns.put("speakerRole", column(TokenLabel::speakerRole));
            columns.put("claimKind", column(TokenLabel::kind));
            columns.put("subject", column(TokenLabel::subject));
            columns.put("claimedRole", column(TokenLabel::claimedRole));
            columns.put("veracity", column(TokenLabel::veracity));
            columns.put("roleWord", column(TokenLabel::roleWord));
            for (int p = 0; p < MAX_PLAYERS; p++) {
                OptionalRole r = p < roles.size() ? OptionalRole.of(roles.get(p)) : OptionalRole.NONE;
                columns.put("role_p" + p, java.util.Collections.nCopies(words.size(), r));
            }
            Meta meta = new Meta(layout, names, roles, order, claims, logProb, labels);
            return new Example<>(VOCAB.ids(words), words, loss, columns, meta);
        }

        <T> List<T> column(java.util.function.Function<TokenLabel, T> f) {
            List<T> out = new ArrayList<>(labels.size());
            for (TokenLabel l : labels) out.add(f.apply(l));
            return out;
        }
    }

    private static List<String> words() {
        List<String> w = new ArrayList<>(List.of(DEAL, COLON, COMMA, PERIOD, I, AM, IS));
        for (Role r : Role.values()) w.add(r.word());
        w.addAll(NAMES);
        return w;
    }

    @Override
    public String toString() {
        return "HiddenRoles(layouts " + layouts + ", wolf claims seer " + wolfClaimsSeer + ", seed " + seed
                + ", vocab " + vocabSize() + ", length " + maxLength() + ")";
    }
}
