package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.data.Example;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Matches latents to known per-token concepts: for each concept (a yes/no per token, e.g. "pos=NOUN" from a
 * synthetic task's ground-truth labels) the latent whose firing ({@code act > 0}) predicts it best, scored by F1.
 * One matrix product over all latents and concepts, so it is cheap for thousands of latents.
 */
public final class LatentMatch {

    /** One concept's best latent. */
    public record Match(String concept, double frequency, int latent, double f1, double precision, double recall) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%s (%.1f%% of tokens) -> latent %d: F1 %.3f, precision %.3f, recall %.3f",
                    concept, 100 * frequency, latent, f1, precision, recall);
        }
    }

    private LatentMatch() {}

    /**
     * How concepts are read from task labels.
     *
     * @param skipBos      leave out position 0 of every example (the BOS token), as activation stores do
     * @param minFrequency drop label values on fewer than this fraction of the tokens
     */
    public record ConceptOptions(boolean skipBos, double minFrequency) {
        public ConceptOptions {
            if (!(minFrequency >= 0 && minFrequency < 1)) {
                throw new IllegalArgumentException("minFrequency must be in [0, 1), got " + minFrequency);
            }
        }

        /** Skip BOS; keep values on at least 1% of the tokens. */
        public static ConceptOptions defaults() {
            return new ConceptOptions(true, 0.01);
        }

        /** These options, counting position 0 too. */
        public ConceptOptions keepBos() {
            return new ConceptOptions(false, minFrequency);
        }

        /** These options, keeping values on at least {@code fraction} of the tokens. */
        public ConceptOptions minFrequency(double fraction) {
            return new ConceptOptions(skipBos, fraction);
        }
    }

    /**
     * Concepts from task labels with {@link ConceptOptions#defaults()}: for each named label column, one concept per
     * value ({@code "pos=NOUN"}), over the tokens after BOS of {@code examples} in order, values on at least 1% of them.
     */
    public static Map<String, boolean[]> concepts(List<? extends Example<?>> examples, List<String> labelNames) {
        return concepts(examples, labelNames, ConceptOptions.defaults());
    }

    /**
     * The positional form of {@link #concepts(List, List, ConceptOptions)}, kept for notebooks written before it.
     *
     * @deprecated name the settings: {@code concepts(examples, labelNames)} for BOS skipped and 1%, or
     *             {@code ConceptOptions.defaults().keepBos().minFrequency(f)}
     */
    @Deprecated(forRemoval = true)
    public static Map<String, boolean[]> concepts(List<? extends Example<?>> examples, List<String> labelNames,
                                                  boolean skipBos, double minFrequency) {
        return concepts(examples, labelNames, new ConceptOptions(skipBos, minFrequency));
    }

    /**
     * Concepts from task labels: for each named label column, one concept per value ({@code "pos=NOUN"}), over the
     * tokens of {@code examples} in order (without position 0 when {@code options.skipBos()}). Values on fewer than
     * {@code options.minFrequency()} of the tokens are dropped, and so are values on every token.
     */
    public static Map<String, boolean[]> concepts(List<? extends Example<?>> examples, List<String> labelNames,
                                                  ConceptOptions options) {
        boolean skipBos = options.skipBos();
        double minFrequency = options.minFrequency();
        if (examples.isEmpty()) throw new IllegalArgumentException("no examples");
        int n = 0;
        for (Example<?> e : examples) n += e.length() - (skipBos ? 1 : 0);
        final int total = n;
        Map<String, boolean[]> out = new TreeMap<>();
        for (String label : labelNames) {
            if (!examples.get(0).labels().containsKey(label)) {
                throw new IllegalArgumentException("no label column '" + label + "'; the examples have "
                        + examples.get(0).labels().keySet());
            }
            int row = 0;
            for (Example<?> e : examples) {
                List<?> col = e.labels().get(label);
                for (int i = skipBos ? 1 : 0; i < e.length(); i++, row++) {
                    boolean[] v = out.computeIfAbsent(label + "=" + col.get(i), k -> new boolean[total]);
                    v[row] = true;
                }
            }
        }
        Map<String, boolean[]> kept = new LinkedHashMap<>();
        for (var e : out.entrySet()) {
            int c = 0;
            for (boolean b : e.getValue()) if (b) c++;
            if (c >= minFrequency * n && c < n) kept.put(e.getKey(), e.getValue());
        }
        return kept;
    }

    /**
     * The best latent for every concept. {@code acts} is {@code [tokens, dSae]} latent activations over the same
     * tokens, in the same order, as the concept vectors.
     */
    public static List<Match> best(NDArray acts, Map<String, boolean[]> concepts) {
        if (acts.getShape().dimension() != 2) {
            throw new IllegalArgumentException("acts must be [tokens, dSae], got " + acts.getShape());
        }
        long n = acts.getShape().get(0);
        int k = concepts.size();
        if (k == 0) return List.of();
        List<String> names = new ArrayList<>(concepts.keySet());
        float[] c = new float[(int) n * k];
        for (int j = 0; j < k; j++) {
            boolean[] v = concepts.get(names.get(j));
            if (v.length != n) {
                throw new IllegalArgumentException("concept '" + names.get(j) + "' has " + v.length
                        + " tokens but acts has " + n + " rows");
            }
            for (int i = 0; i < n; i++) if (v[i]) c[i * k + j] = 1f;
        }
        List<Match> out = new ArrayList<>();
        try (NDManager m = NDManager.newBaseManager(acts.getDevice())) {
            NDArray fired = acts.gt(0f).toType(DataType.FLOAT32, false);
            fired.attach(m);
            NDArray conceptsNK = m.create(c, new Shape(n, k));
            float[] tp = conceptsNK.transpose().matMul(fired).toFloatArray();      // [k, dSae]
            float[] fires = fired.sum(new int[]{0}).toFloatArray();               // [dSae]
            int dSae = fires.length;
            for (int j = 0; j < k; j++) {
                boolean[] v = concepts.get(names.get(j));
                int count = 0;
                for (boolean b : v) if (b) count++;
                int bestLatent = -1;
                double bestF1 = -1;
                for (int s = 0; s < dSae; s++) {
                    double f1 = 2.0 * tp[j * dSae + s] / (fires[s] + count);
                    if (f1 > bestF1) {
                        bestF1 = f1;
                        bestLatent = s;
                    }
                }
                double t = tp[j * dSae + bestLatent];
                double precision = fires[bestLatent] == 0 ? 0 : t / fires[bestLatent];
                out.add(new Match(names.get(j), (double) count / n, bestLatent, bestF1, precision, t / count));
            }
        }
        out.sort(Comparator.comparingDouble(Match::f1).reversed());
        return out;
    }

    /** The matches as a table: concept, frequency, latent, F1, precision, recall. */
    public static Table table(List<Match> matches) {
        StringColumn concept = StringColumn.create("concept");
        DoubleColumn freq = DoubleColumn.create("frequency"), f1 = DoubleColumn.create("F1"),
                precision = DoubleColumn.create("precision"), recall = DoubleColumn.create("recall");
        IntColumn latent = IntColumn.create("latent");
        for (Match mt : matches) {
            concept.append(mt.concept());
            freq.append(round(mt.frequency()));
            latent.append(mt.latent());
            f1.append(round(mt.f1()));
            precision.append(round(mt.precision()));
            recall.append(round(mt.recall()));
        }
        return Table.create("best latent per concept", concept, freq, latent, f1, precision, recall);
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
