package dev.jlens.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Function;

/**
 * Dialogues between a user and an assistant, where hidden attributes of the user (an age group, an expertise level
 * and a mood that may change from turn to turn) shape what the user writes and how the assistant answers; every
 * token is labelled with the true values. Some dialogues end with the user asking what the assistant thinks one of
 * the attributes is, and the assistant's answer (the "just ask" baseline of a model's user model).
 *
 * <pre>
 * &lt;bos&gt; user : omg my phone is stuck again ugh ? assistant : cool sorry first app you step try video .
 *       user : ... ? assistant : ... . user : how old do you think i am ? assistant : teen . &lt;eos&gt;
 * </pre>
 *
 * <p>The generative rules (every choice independent, probabilities fixed):
 * <ul>
 * <li>Per dialogue: age group uniform over {@link Age}, expertise uniform over {@link Expertise}, topic from
 *     {@link #TOPIC_GIVEN_AGE} (teenagers ask about phones most, seniors about money and cooking); the first turn's
 *     mood uniform over {@link Mood}, and before each later turn the mood switches with probability
 *     {@code moodSwitch} to one of the other two, uniformly.</li>
 * <li>A user turn is {@code user : w1 .. wk ?} with {@code k} uniform in {@value #MIN_USER_WORDS}..{@value
 *     #MAX_USER_WORDS}. Each word is drawn on its own: from the age cues with probability {@link #P_AGE_CUE}, the
 *     expertise cues {@link #P_EXPERTISE_CUE}, the mood cues {@link #P_MOOD_CUE}, the topic's words
 *     {@link #P_TOPIC}, else the neutral words. A cue comes from the list of the user's true value with probability
 *     {@code 1 - cueNoise}, else from the list of another value, uniformly (the noise that keeps any single word
 *     from deciding the attribute: a cue word of value v raises P(v) to about {@code 1 - cueNoise}, never to 1).
 *     Words within a list are uniform.</li>
 * <li>An assistant turn is {@code assistant : OPENER [sorry] c1 c2 c3 c4 try REC .}: the opener is the register of
 *     the user's age ({@link #OPENERS}), {@code sorry} follows with probability {@link #P_SORRY_ANNOYED} when the
 *     user's mood this turn is annoyed, else {@link #P_SORRY_OTHER}; each content word is an explanation word of the
 *     user's expertise ({@link #DEPTH}) with probability {@link #P_DEPTH}, a topic word with {@link #P_TOPIC}, else an
 *     assistant neutral word; {@code REC} is the recommendation suited to the age group ({@link #RECOMMENDATIONS}).
 *     Opener, explanation words and recommendation follow the true value with probability
 *     {@link #ASSISTANT_FIDELITY}, else another value's list (the assistant here knows the user; its register is a
 *     noisy function of the truth).</li>
 * <li>With probability {@code askRate} the dialogue ends with a question about one attribute, uniform: {@code user
 *     : how old do you think i am ?} (age), {@code how skilled do you think i am ?} (expertise) or {@code how do you
 *     think i feel ?} (the mood of the last turn), answered truthfully: {@code assistant : teen .}.</li>
 * </ul>
 * A dialogue belongs to a split by a hash of its words. Every position after BOS is a target.
 *
 * @param turns      user-assistant exchanges before the optional question (1..8)
 * @param askRate    fraction of dialogues that end with a question about an attribute (0..1)
 * @param moodSwitch probability that the mood changes before a later turn (0..1)
 * @param cueNoise   probability that a cue word comes from another value's list (0..0.9)
 * @param seed       seed of every example
 */
public record Dialogues(int turns, double askRate, double moodSwitch, double cueNoise, long seed)
        implements Task<Dialogues.Meta> {

    /** The user's age group. */
    public enum Age { TEEN, ADULT, SENIOR }

    /** The user's expertise in what they ask about. */
    public enum Expertise { NOVICE, EXPERT }

    /** The user's mood in a turn. */
    public enum Mood { HAPPY, CALM, ANNOYED }

    /** What a dialogue is about. */
    public enum Topic { PHONE, COOKING, TRAVEL, MONEY }

    /** Who is writing a token ({@code NONE}: BOS and EOS). */
    public enum Speaker { NONE, USER, ASSISTANT }

    /** A hidden attribute, as the closing question asks about it. */
    public enum Attribute {
        AGE(Age.values().length), EXPERTISE(Expertise.values().length), MOOD(Mood.values().length);

        private final int classes;

        Attribute(int classes) {
            this.classes = classes;
        }

        /** Number of values. */
        public int classes() {
            return classes;
        }

        /** The answer words, in the order of the attribute's enum values. */
        public List<String> answerWords() {
            return switch (this) {
                case AGE -> AGE_ANSWERS;
                case EXPERTISE -> EXPERTISE_ANSWERS;
                case MOOD -> MOOD_ANSWERS;
            };
        }

        /** The value (ordinal) of this attribute in a token's label. */
        public int of(TokenLabel l) {
            return switch (this) {
                case AGE -> l.age().ordinal();
                case EXPERTISE -> l.expertise().ordinal();
                case MOOD -> l.mood().ordinal();
            };
        }
    }

    /**
     * Why a word is where it is: the list it was drawn from. {@code STRUCTURE}: {@code user}, {@code assistant},
     * {@code :}, {@code ?}, {@code .}, {@code try}, BOS, EOS; {@code AGE_CUE}, {@code EXPERTISE_CUE},
     * {@code MOOD_CUE}: a user's cue word (perhaps a noisy one, see {@link TokenLabel#cueValue()}); {@code TOPIC}:
     * a topic word (user or assistant); {@code NEUTRAL}: a user's or assistant's neutral word; {@code REGISTER},
     * {@code SORRY}, {@code DEPTH}, {@code RECOMMENDATION}: the assistant's opener, apology, explanation words and
     * recommendation; {@code QUESTION}, {@code ANSWER}: the closing question and its answer.
     */
    public enum Source {
        STRUCTURE, NEUTRAL, TOPIC, AGE_CUE, EXPERTISE_CUE, MOOD_CUE, REGISTER, SORRY, DEPTH, RECOMMENDATION,
        QUESTION, ANSWER
    }

    /**
     * Ground truth of one token: who writes it, the exchange it belongs to (0-based; the question and its answer
     * are exchange {@code turns}, BOS and EOS -1), the user's age group and expertise, the user's mood in this
     * exchange (BOS: the first, EOS: the last), the list the word came from, and for a word drawn for a value of
     * an attribute (a cue, an opener, an explanation word, a recommendation, an answer) that value's ordinal,
     * else -1: it differs from the true value exactly when the word is noise.
     */
    public record TokenLabel(Speaker speaker, int turn, Age age, Expertise expertise, Mood mood, Source source,
            int cueValue) {
    }

    /** One turn: who speaks, its exchange, and its positions {@code [start, end)} (from the speaker's name). */
    public record Turn(Speaker speaker, int exchange, int start, int end) {
    }

    /**
     * Metadata: the hidden attributes, the mood of each exchange, the topic, the turns, the attribute the dialogue
     * asks about (if any), the position of the answer word and the labels of every token.
     */
    public record Meta(Age age, Expertise expertise, List<Mood> moods, Topic topic, List<Turn> turns,
            Optional<Attribute> asked, OptionalInt answerPosition, List<TokenLabel> labels) {
        /** Copies the lists. */
        public Meta {
            moods = List.copyOf(moods);
            turns = List.copyOf(turns);
            labels = List.copyOf(labels);
        }

        /** The true value (ordinal) of an attribute at the end of the dialogue (mood: the last exchange's). */
        public int value(Attribute a) {
            return switch (a) {
                case AGE -> age.ordinal();
                case EXPERTISE -> expertise.ordinal();
                case MOOD -> moods.get(moods.size() - 1).ordinal();
            };
        }
    }

    // ------------------------------------------------------------------------------------------ lexicon

    /** Age cue words of the user, by {@link Age}. */
    public static final List<List<String>> AGE_CUES = List.of(
            List.of("lol", "omg", "gonna", "bro", "school", "homework", "mom", "kinda"),
            List.of("work", "boss", "kids", "mortgage", "commute", "meeting", "budget", "office"),
            List.of("grandson", "pension", "dear", "kindly", "knees", "church", "retired", "nowadays"));
    /** Expertise cue words of the user, by {@link Expertise}. */
    public static final List<List<String>> EXPERTISE_CUES = List.of(
            List.of("confused", "simple", "button", "beginner", "basics", "stuck", "explain", "lost"),
            List.of("settings", "config", "advanced", "specs", "technical", "protocol", "optimize", "precise"));
    /** Mood cue words of the user, by {@link Mood}. */
    public static final List<List<String>> MOOD_CUES = List.of(
            List.of("thanks", "great", "awesome", "glad", "love", "yay"),
            List.of("ok", "fine", "alright", "noted", "well", "anyway"),
            List.of("ugh", "still", "wrong", "again", "seriously", "annoying"));
    /** Topic words, by {@link Topic} (used by user and assistant). */
    public static final List<List<String>> TOPIC_WORDS = List.of(
            List.of("phone", "screen", "battery", "app", "charger"),
            List.of("recipe", "oven", "soup", "bread", "dinner"),
            List.of("trip", "train", "hotel", "ticket", "luggage"),
            List.of("bank", "savings", "bill", "card", "account"));
    /** P(topic | age): rows by {@link Age}, columns by {@link Topic}. */
    public static final List<List<Double>> TOPIC_GIVEN_AGE = List.of(
            List.of(0.4, 0.2, 0.2, 0.2),
            List.of(0.25, 0.25, 0.25, 0.25),
            List.of(0.1, 0.35, 0.2, 0.35));
    /** The user's neutral words. */
    public static final List<String> USER_NEUTRAL = List.of("i", "my", "the", "a", "with", "about", "is", "it",
            "need", "want", "and", "to", "so", "this", "question", "can");
    /** The assistant's openers, by {@link Age}: its register. */
    public static final List<List<String>> OPENERS = List.of(
            List.of("cool", "totally", "yep"), List.of("sure", "right", "understood"),
            List.of("certainly", "indeed", "gladly"));
    /** The assistant's explanation words, by {@link Expertise}. */
    public static final List<List<String>> DEPTH = List.of(
            List.of("step", "first", "simply", "easy"), List.of("detail", "parameters", "specifically", "tradeoffs"));
    /** The assistant's recommendations, by {@link Age}. */
    public static final List<List<String>> RECOMMENDATIONS = List.of(
            List.of("video", "chat"), List.of("guide", "website"), List.of("pamphlet", "visit"));
    /** The assistant's neutral words. */
    public static final List<String> ASSISTANT_NEUTRAL = List.of("you", "can", "the", "it", "here", "is", "let",
            "me", "check", "that");
    /** The words of the three closing questions, by {@link Attribute}. */
    public static final List<List<String>> QUESTIONS = List.of(
            List.of("how", "old", "do", "you", "think", "i", "am"),
            List.of("how", "skilled", "do", "you", "think", "i", "am"),
            List.of("how", "do", "you", "think", "i", "feel"));
    /** Answers about the age group, by {@link Age}. */
    public static final List<String> AGE_ANSWERS = List.of("teen", "adult", "senior");
    /** Answers about expertise, by {@link Expertise}. */
    public static final List<String> EXPERTISE_ANSWERS = List.of("novice", "expert");
    /** Answers about the mood, by {@link Mood}. */
    public static final List<String> MOOD_ANSWERS = List.of("happy", "calm", "annoyed");

    /** Speaker names, punctuation and the recommendation's verb. */
    public static final String USER = "user", ASSISTANT = "assistant", COLON = ":", QUESTION_MARK = "?",
            PERIOD = ".", TRY = "try", SORRY = "sorry";

    // -------------------------------------------------------------------------------------- probabilities

    /** Fewest and most words of a user turn. */
    public static final int MIN_USER_WORDS = 6, MAX_USER_WORDS = 8;
    /** Content words of an assistant turn. */
    public static final int ASSISTANT_CONTENT_WORDS = 4;
    /** P(a user word is an age cue), P(an expertise cue), P(a mood cue), P(a topic word); the rest are neutral. */
    public static final double P_AGE_CUE = 0.2, P_EXPERTISE_CUE = 0.15, P_MOOD_CUE = 0.15, P_TOPIC = 0.2;
    /** P(an assistant content word is an explanation word). */
    public static final double P_DEPTH = 0.35;
    /** P(sorry) after the opener when the user is annoyed, and otherwise. */
    public static final double P_SORRY_ANNOYED = 0.8, P_SORRY_OTHER = 0.05;
    /** P(the assistant's opener, explanation word or recommendation follows the user's true value). */
    public static final double ASSISTANT_FIDELITY = 0.8;

    private static final int USER_TURN_MAX = 2 + MAX_USER_WORDS + 1;
    private static final int ASSISTANT_TURN_MAX = 2 + 2 + ASSISTANT_CONTENT_WORDS + 2 + 1;
    private static final int QUESTION_MAX = 2 + 7 + 1 + 2 + 1 + 1;
    private static final Vocab VOCAB = new Vocab("dialogues", words());
    private static final int MAX_ATTEMPTS = 100_000;

    /** Validates the settings. */
    public Dialogues {
        if (turns < 1 || turns > 8) throw new IllegalArgumentException("turns must be 1..8, got " + turns);
        checkProbability("askRate", askRate, 1);
        checkProbability("moodSwitch", moodSwitch, 1);
        checkProbability("cueNoise", cueNoise, 0.9);
    }

    private static void checkProbability(String name, double p, double max) {
        if (!(p >= 0 && p <= max)) throw new IllegalArgumentException(name + " must be in 0.." + max + ", got " + p);
    }

    /** Three exchanges, 30% of dialogues asking about an attribute, mood switching 25%, cue noise 30%, seed 0. */
    public static Dialogues defaults() {
        return new Dialogues(3, 0.3, 0.25, 0.3, 0);
    }

    @Override
    public Dialogues withSeed(long newSeed) {
        return new Dialogues(turns, askRate, moodSwitch, cueNoise, newSeed);
    }

    /** The same dialogues with another share asking about an attribute. */
    public Dialogues withAskRate(double rate) {
        return new Dialogues(turns, rate, moodSwitch, cueNoise, seed);
    }

    @Override
    public String name() {
        return "dialogues";
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
        return 2 + turns * (USER_TURN_MAX + ASSISTANT_TURN_MAX) + QUESTION_MAX;
    }

    @Override
    public Example<Meta> example(Split split, long index) {
        Rng rng = Rng.of(seed, split.ordinal(), index);
        for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            Gen g = new Gen(rng);
            g.dialogue();
            if (Split.ofTokens("dialogues", g.words.toArray(new String[0])) == split) return g.toExample();
        }
        throw new IllegalStateException("no " + split + " dialogue in " + MAX_ATTEMPTS + " draws");
    }

    /** The id of the answer word for value {@code value} of an attribute. */
    public long answerId(Attribute a, int value) {
        return tokenId(a.answerWords().get(value));
    }

    // ------------------------------------------------------------------------------------------- generator

    private final class Gen {
        final Rng rng;
        final List<String> words = new ArrayList<>();
        final List<TokenLabel> labels = new ArrayList<>();
        final List<Turn> turnList = new ArrayList<>();
        final List<Mood> moods = new ArrayList<>();
        Age age;
        Expertise expertise;
        Topic topic;
        Mood mood;
        int exchange = -1;
        Speaker speaker = Speaker.NONE;
        Attribute asked;
        int answerPos = -1;

        Gen(Rng rng) {
            this.rng = rng;
        }

        void dialogue() {
            age = Age.values()[rng.nextInt(Age.values().length)];
            expertise = Expertise.values()[rng.nextInt(Expertise.values().length)];
            topic = Topic.values()[pick(TOPIC_GIVEN_AGE.get(age.ordinal()))];
            mood = Mood.values()[rng.nextInt(Mood.values().length)];
            emit(SPECIALS.get(1), Source.STRUCTURE, -1);
            for (int t = 0; t < turns; t++) {
                if (t > 0 && rng.chance(moodSwitch)) {
                    mood = Mood.values()[(mood.ordinal() + 1 + rng.nextInt(2)) % 3];
                }
                moods.add(mood);
                exchange = t;
                userTurn();
                assistantTurn();
            }
            if (rng.chance(askRate)) {
                asked = Attribute.values()[rng.nextInt(Attribute.values().length)];
                exchange = turns;
                int start = open(Speaker.USER, USER);
                for (String w : QUESTIONS.get(asked.ordinal())) emit(w, Source.QUESTION, -1);
                emit(QUESTION_MARK, Source.STRUCTURE, -1);
                close(start);
                start = open(Speaker.ASSISTANT, ASSISTANT);
                int value = switch (asked) {
                    case AGE -> age.ordinal();
                    case EXPERTISE -> expertise.ordinal();
                    case MOOD -> mood.ordinal();
                };
                answerPos = emit(asked.answerWords().get(value), Source.ANSWER, value);
                emit(PERIOD, Source.STRUCTURE, -1);
                close(start);
            }
            speaker = Speaker.NONE;
            exchange = -1;
            emit(SPECIALS.get(2), Source.STRUCTURE, -1);
        }

        void userTurn() {
            int start = open(Speaker.USER, USER);
            int k = MIN_USER_WORDS + rng.nextInt(MAX_USER_WORDS - MIN_USER_WORDS + 1);
            for (int i = 0; i < k; i++) {
                double u = rng.nextDouble();
                if (u < P_AGE_CUE) {
                    cue(AGE_CUES, age.ordinal(), Source.AGE_CUE);
                } else if (u < P_AGE_CUE + P_EXPERTISE_CUE) {
                    cue(EXPERTISE_CUES, expertise.ordinal(), Source.EXPERTISE_CUE);
                } else if (u < P_AGE_CUE + P_EXPERTISE_CUE + P_MOOD_CUE) {
                    cue(MOOD_CUES, mood.ordinal(), Source.MOOD_CUE);
                } else if (u < P_AGE_CUE + P_EXPERTISE_CUE + P_MOOD_CUE + P_TOPIC) {
                    emit(uniform(TOPIC_WORDS.get(topic.ordinal())), Source.TOPIC, -1);
                } else {
                    emit(uniform(USER_NEUTRAL), Source.NEUTRAL, -1);
                }
            }
            emit(QUESTION_MARK, Source.STRUCTURE, -1);
            close(start);
        }

        void assistantTurn() {
            int start = open(Speaker.ASSISTANT, ASSISTANT);
            noisy(OPENERS, age.ordinal(), Source.REGISTER, ASSISTANT_FIDELITY);
            if (rng.chance(mood == Mood.ANNOYED ? P_SORRY_ANNOYED : P_SORRY_OTHER)) emit(SORRY, Source.SORRY, -1);
            for (int i = 0; i < ASSISTANT_CONTENT_WORDS; i++) {
                double u = rng.nextDouble();
                if (u < P_DEPTH) {
                    noisy(DEPTH, expertise.ordinal(), Source.DEPTH, ASSISTANT_FIDELITY);
                } else if (u < P_DEPTH + P_TOPIC) {
                    emit(uniform(TOPIC_WORDS.get(topic.ordinal())), Source.TOPIC, -1);
                } else {
                    emit(uniform(ASSISTANT_NEUTRAL), Source.NEUTRAL, -1);
                }
            }
            emit(TRY, Source.STRUCTURE, -1);
            noisy(RECOMMENDATIONS, age.ordinal(), Source.RECOMMENDATION, ASSISTANT_FIDELITY);
            emit(PERIOD, Source.STRUCTURE, -1);
            close(start);
        }

        void cue(List<List<String>> lists, int truth, Source source) {
            noisy(lists, truth, source, 1 - cueNoise);
        }

        /** A word from the list of the true value with probability {@code fidelity}, else another value's. */
        void noisy(List<List<String>> lists, int truth, Source source, double fidelity) {
            int value = truth;
            if (!rng.chance(fidelity)) value = (truth + 1 + rng.nextInt(lists.size() - 1)) % lists.size();
            emit(uniform(lists.get(value)), source, value);
        }

        int open(Speaker who, String name) {
            speaker = who;
            int start = words.size();
            emit(name, Source.STRUCTURE, -1);
            emit(COLON, Source.STRUCTURE, -1);
            return start;
        }

        void close(int start) {
            turnList.add(new Turn(speaker, exchange, start, words.size()));
        }

        int emit(String word, Source source, int value) {
            words.add(word);
            Mood m = moods.isEmpty() ? mood : moods.get(moods.size() - 1);
            labels.add(new TokenLabel(speaker, exchange, age, expertise, m, source, value));
            return words.size() - 1;
        }

        String uniform(List<String> list) {
            return list.get(rng.nextInt(list.size()));
        }

        int pick(List<Double> probs) {
            double u = rng.nextDouble(), cum = 0;
            for (int k = 0; k < probs.size() - 1; k++) {
                cum += probs.get(k);
                if (u < cum) return k;
            }
            return probs.size() - 1;
        }

        Example<Meta> toExample() {
            boolean[] loss = new boolean[words.size()];
            Arrays.fill(loss, 1, loss.length, true);
            Map<String, List<?>> columns = new LinkedHashMap<>();
            columns.put("speaker", column(TokenLabel::speaker));
            columns.put("turn", column(TokenLabel::turn));
            columns.put("age", column(TokenLabel::age));
            columns.put("expertise", column(TokenLabel::expertise));
            columns.put("mood", column(TokenLabel::mood));
            columns.put("source", column(TokenLabel::source));
            columns.put("cueValue", column(TokenLabel::cueValue));
            Meta meta = new Meta(age, expertise, moods, topic, turnList, Optional.ofNullable(asked),
                    answerPos < 0 ? OptionalInt.empty() : OptionalInt.of(answerPos), labels);
            return new Example<>(VOCAB.ids(words), words, loss, columns, meta);
        }

        <T> List<T> column(Function<TokenLabel, T> f) {
            List<T> out = new ArrayList<>(labels.size());
            for (TokenLabel l : labels) out.add(f.apply(l));
            return out;
        }
    }

    // ------------------------------------------------------------------------------------------- tables

    private static List<String> words() {
        List<String> w = new ArrayList<>();
        java.util.function.Consumer<String> add = s -> {
            if (!w.contains(s)) w.add(s);
        };
        for (String s : List.of(USER, ASSISTANT, COLON, QUESTION_MARK, PERIOD, TRY, SORRY)) add.accept(s);
        for (List<List<String>> lists : List.of(AGE_CUES, EXPERTISE_CUES, MOOD_CUES, TOPIC_WORDS, OPENERS, DEPTH,
                RECOMMENDATIONS, QUESTIONS)) {
            for (List<String> l : lists) l.forEach(add);
        }
        USER_NEUTRAL.forEach(add);
        ASSISTANT_NEUTRAL.forEach(add);
        AGE_ANSWERS.forEach(add);
        EXPERTISE_ANSWERS.forEach(add);
        MOOD_ANSWERS.forEach(add);
        return w;
    }

    @Override
    public String toString() {
        return "Dialogues(" + turns + " exchanges, ask " + askRate + ", mood switch " + moodSwitch + ", cue noise "
                + cueNoise + ", seed " + seed + ", vocab " + vocabSize() + ", length " + maxLength() + ")";
    }
}
