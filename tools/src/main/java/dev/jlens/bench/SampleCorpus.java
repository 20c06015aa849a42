package dev.jlens.bench;

import dev.jlens.corpus.Corpus;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Short generated stories, a few sentences each from templates: the project's own small real-text corpus
 * ({@code data/corpus/stories.parquet}, written by {@code ./lab sample-corpus}) and the text of
 * {@code bench tokenize}. The same seed gives the same texts.
 */
public final class SampleCorpus {

    private static final String[] NAMES = {"Mia", "Leo", "Ava", "Sam", "Noah", "Lily", "Omar", "Zoe", "Ivan", "Nora",
        "Ben", "Ruth", "Kai", "Elena", "Tom", "Priya"};
    private static final String[] PLACES = {"the river", "the old mill", "the market", "the hill", "the library",
        "the harbour", "the garden", "the station", "the forest", "the bakery", "the school", "the bridge"};
    private static final String[] THINGS = {"a red kite", "a small key", "a lost dog", "an old map", "a blue bottle",
        "a broken clock", "a letter", "a paper boat", "a wooden box", "a silver coin", "a green umbrella", "a book"};
    private static final String[] FEELINGS = {"happy", "curious", "worried", "tired", "proud", "surprised", "calm"};
    private static final String[] WEATHER = {"It was raining", "The sun was warm", "A cold wind blew",
        "Snow covered the roofs", "The sky was grey", "Fog hid the street"};
    private static final String[] ENDINGS = {"and they laughed about it all evening.", "and the day felt shorter.",
        "and nobody ever asked about it again.", "and that was the end of the matter.",
        "so they walked home together.", "and it became a story they told every winter."};

    private SampleCorpus() {}

    /** {@code n} stories from {@code seed}. */
    public static List<String> stories(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            String a = pick(r, NAMES), b = pick(r, NAMES);
            while (b.equals(a)) b = pick(r, NAMES);
            String thing = pick(r, THINGS);
            StringBuilder s = new StringBuilder();
            s.append(pick(r, WEATHER)).append(" when ").append(a).append(" went to ").append(pick(r, PLACES)).append(". ");
            s.append("There ").append(a).append(" found ").append(thing).append(" and felt ").append(pick(r, FEELINGS))
                    .append(". ");
            int extra = r.nextInt(3);
            for (int k = 0; k < extra; k++) {
                s.append(a).append(" showed it to ").append(b).append(" near ").append(pick(r, PLACES)).append(", ");
                s.append(b).append(" was ").append(pick(r, FEELINGS)).append(". ");
            }
            s.append("In the end ").append(a).append(" gave ").append(thing.replaceFirst("^an? ", "the ")).append(" to ")
                    .append(b).append(", ").append(pick(r, ENDINGS));
            out.add(s.toString());
        }
        return out;
    }

    /** Writes {@code n} stories as parquet, columns {@code id} (int64) and {@code text}. */
    public static void write(Path file, int n, long seed) {
        List<Map<String, Object>> rows = new ArrayList<>();
        List<String> texts = stories(n, seed);
        for (int i = 0; i < texts.size(); i++) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("id", (long) i);
            row.put("text", texts.get(i));
            rows.add(row);
        }
        Corpus.writeParquet(file, rows);
    }

    private static String pick(SplittableRandom r, String[] xs) {
        return xs[r.nextInt(xs.length)];
    }
}
