package dev.jlens.sae.eval;

import dev.jlens.data.Example;
import dev.jlens.data.TinyLang;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.probe.LayerSweep;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.TokenLabeller;
import dev.jlens.sae.LatentMatch;
import dev.jlens.sae.SaeConfig;
import dev.jlens.sae.SaeTrainConfig;
import dev.jlens.sae.SaeTrainer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.store.ActivationSource;
import dev.jlens.train.ProgressSink;
import dev.jlens.util.Numbers;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * High-frequency (dense) latents after Sun et al. 2025 ("dense SAE latents are features, not bugs"): the latents that
 * fire on more than {@link SaeTrainer#DENSE_FRACTION} of the tokens, the antipodal pairs among them (decoder rows
 * pointing in nearly opposite directions, so the pair together reads one signed direction) and what they carry:
 * the correlation of each one's activation with token position, with the position inside the sentence, with BOS
 * and with the ground-truth labels of a synthetic task (for tinylang: part of speech, number, tense, clause, role,
 * gap, depth, sentence index).
 *
 * <p>Density and every correlation except BOS's are over the tokens after BOS (what a dictionary trained on
 * {@link TinyLangConcepts#harvest} rows sees; BOS activations are far from those and would dominate a correlation);
 * the BOS correlation is over all tokens, with the indicator of position 0. Correlations are Pearson's, of the
 * activation (zero where the latent is silent).
 *
 * <pre>{@code
 * DenseLatents.Contexts ctx = DenseLatents.Contexts.harvest(model, "blocks.1.hook_resid_post", examples, 16);
 * DenseLatents.Result r = DenseLatents.run(sae, ctx, DenseLatents.Options.defaults());
 * display(r.toTable()); display(r.pairTable());
 * display(DenseLatents.compare(Map.of("topk", r, "jumprelu", r2)));
 * }</pre>
 */
public final class DenseLatents {
    /** The tinylang label columns read as concepts. */
    public static final List<String> TINYLANG_LABELS =
            List.of("pos", "number", "tense", "clause", "role", "gap", "depth", "sentence");

    private DenseLatents() {}

    /**
     * The tokens to measure on: raw activations with each token's position, position inside its sentence, sequence
     * and yes/no concepts, row for row.
     *
     * @param x                activations {@code [tokens][dIn]}
     * @param position         each token's position in its sequence (0 = BOS)
     * @param sentencePosition each token's position inside its sentence (0 = the sentence's first word; -1 where
     *                         there is none, e.g. BOS)
     * @param sequence         each token's sequence index
     * @param concepts         concept name to a yes/no per token ({@code "role=SUBJECT"})
     */
    public record Contexts(float[][] x, int[] position, int[] sentencePosition, int[] sequence,
                           Map<String, boolean[]> concepts) {
        /** Checks that every column has a value per token. */
        public Contexts {
            int n = x.length;
            if (n == 0) throw new IllegalArgumentException("no tokens");
            if (position.length != n || sentencePosition.length != n || sequence.length != n) {
                throw new IllegalArgumentException("position, sentencePosition and sequence need one value per token ("
                        + n + "), got " + position.length + ", " + sentencePosition.length + ", " + sequence.length);
            }
            for (var e : concepts.entrySet()) {
                if (e.getValue().length != n) {
                    throw new IllegalArgumentException("concept '" + e.getKey() + "' has " + e.getValue().length
                            + " values for " + n + " tokens");
                }
            }
            concepts = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(concepts));
        }

        /**
         * Activations at {@code hook} of every token of {@code examples}, BOS included, with tinylang's label columns
         * ({@link #TINYLANG_LABELS}; values on at least 1% of the tokens) as concepts.
         */
        public static Contexts harvest(HookedTransformer model, String hook, List<Example<TinyLang.Meta>> examples,
                                       int batchSize) {
            if (examples.isEmpty()) throw new IllegalArgumentException("no examples to harvest");
            List<Batch> batches = TinyLangConcepts.batches(examples, batchSize);
            TokenLabeller every = (seq, pos) -> Optional.of(new TokenLabeller.Row(pos == 0 ? 1 : 0, seq, pos));  // label: BOS
            ProbeData rows = LayerSweep.collect(model, List.of(hook), batches, every).get(hook);
            int n = rows.size();
            int[] position = rows.types().orElseThrow(), sequence = rows.groups(), inSentence = new int[n];
            for (int i = 0; i < n; i++) {
                inSentence[i] = -1;
                for (TinyLang.SentenceInfo s : examples.get(sequence[i]).meta().sentences()) {
                    if (position[i] >= s.start() && position[i] < s.end()) inSentence[i] = position[i] - s.start();
                }
            }
            Map<String, boolean[]> concepts = LatentMatch.concepts(examples, TINYLANG_LABELS,
                    LatentMatch.ConceptOptions.defaults().keepBos());
            return new Contexts(rows.x(), position, inSentence, sequence, concepts);
        }

        /** Number of tokens. */
        public int size() {
            return x.length;
        }
    }

    /**
     * @param denseFraction   a latent is dense when it fires on more than this fraction of the tokens after BOS
     * @param antipodalCosine two dense latents are an antipodal pair when their decoder cosine is below this
     */
    public record Options(double denseFraction, double antipodalCosine) {
        /** Validates the thresholds. */
        public Options {
            if (!(denseFraction > 0 && denseFraction < 1)) {
                throw new IllegalArgumentException("denseFraction must be in (0, 1), got " + denseFraction);
            }
            if (!(antipodalCosine > -1 && antipodalCosine < 0)) {
                throw new IllegalArgumentException("antipodalCosine must be in (-1, 0), got " + antipodalCosine);
            }
        }

        /** Dense above 10% of tokens ({@link SaeTrainer#DENSE_FRACTION}); antipodal below cosine -0.9. */
        public static Options defaults() {
            return new Options(SaeTrainer.DENSE_FRACTION, -0.9);
        }
    }

    /**
     * One dense latent.
     *
     * @param latent                its index
     * @param density               fraction of the tokens after BOS it fires on
     * @param meanActivation        its mean activation over them
     * @param partner               the other dense latent whose decoder row is most nearly opposite (none when it is
     *                              the only dense latent)
     * @param partnerCosine         their decoder cosine (NaN without a partner)
     * @param positionCorrelation   correlation of its activation with the token's position
     * @param sentencePositionCorrelation correlation with the position inside the sentence
     * @param bosCorrelation        correlation with "this is BOS" over all tokens (NaN when no BOS is among them)
     * @param bestConcept           the concept its activation correlates with most strongly (by absolute value)
     * @param bestConceptCorrelation that correlation (signed)
     */
    public record Latent(int latent, double density, double meanActivation, OptionalInt partner, double partnerCosine,
                         double positionCorrelation, double sentencePositionCorrelation, double bosCorrelation,
                         String bestConcept, double bestConceptCorrelation) {}

    /** Two dense latents with opposite decoder rows. */
    public record Pair(int a, int b, double cosine) {}

    /**
     * Dense latents of one dictionary.
     *
     * @param dSae    its number of latents
     * @param tokens  tokens after BOS measured on
     * @param dense   the dense latents, densest first
     * @param pairs   antipodal pairs among them, most opposite first
     * @param options the thresholds
     */
    public record Result(int dSae, int tokens, List<Latent> dense, List<Pair> pairs, Options options) {
        /** Copies the lists. */
        public Result {
            dense = List.copyOf(dense);
            pairs = List.copyOf(pairs);
        }

        /** Fraction of the latents that are dense. */
        public double denseFraction() {
            return (double) dense.size() / dSae;
        }

        /** Fraction of the dense latents that belong to an antipodal pair. */
        public double pairedFraction() {
            if (dense.isEmpty()) return Double.NaN;
            java.util.Set<Integer> in = new java.util.HashSet<>();
            for (Pair p : pairs) {
                in.add(p.a());
                in.add(p.b());
            }
            return (double) in.size() / dense.size();
        }

        /** The dense latent {@code i}, if it is dense. */
        public Optional<Latent> latent(int i) {
            return dense.stream().filter(l -> l.latent() == i).findFirst();
        }

        /** Largest absolute correlation with position over the dense latents (NaN when there are none). */
        public double maxAbsPositionCorrelation() {
            return dense.stream().mapToDouble(l -> Math.abs(l.positionCorrelation())).filter(v -> !Double.isNaN(v))
                    .max().orElse(Double.NaN);
        }

        /** One row per dense latent. */
        public Table toTable() {
            IntColumn latent = IntColumn.create("latent");
            DoubleColumn density = DoubleColumn.create("density"), mean = DoubleColumn.create("mean_act");
            StringColumn partner = StringColumn.create("partner");
            DoubleColumn cos = DoubleColumn.create("partner_cosine"), pos = DoubleColumn.create("r_position");
            DoubleColumn sent = DoubleColumn.create("r_sentence_position"), bos = DoubleColumn.create("r_bos");
            StringColumn concept = StringColumn.create("best_concept");
            DoubleColumn conceptR = DoubleColumn.create("r_concept");
            for (Latent l : dense) {
                latent.append(l.latent());
                density.append(Numbers.significant(l.density(), 3));
                mean.append(Numbers.significant(l.meanActivation(), 3));
                partner.append(l.partner().isPresent() ? Integer.toString(l.partner().getAsInt()) : "");
                cos.append(Numbers.significant(l.partnerCosine(), 3));
                pos.append(Numbers.significant(l.positionCorrelation(), 3));
                sent.append(Numbers.significant(l.sentencePositionCorrelation(), 3));
                bos.append(Numbers.significant(l.bosCorrelation(), 3));
                concept.append(l.bestConcept());
                conceptR.append(Numbers.significant(l.bestConceptCorrelation(), 3));
            }
            return Table.create("dense latents", latent, density, mean, partner, cos, pos, sent, bos, concept, conceptR);
        }

        /** One row per antipodal pair. */
        public Table pairTable() {
            IntColumn a = IntColumn.create("a"), b = IntColumn.create("b");
            DoubleColumn cos = DoubleColumn.create("decoder_cosine");
            for (Pair p : pairs) {
                a.append(p.a());
                b.append(p.b());
                cos.append(Numbers.significant(p.cosine(), 4));
            }
            return Table.create("antipodal pairs", a, b, cos);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "DenseLatents(%d of %d latents dense, %d antipodal pairs, max |r position| "
                    + "%.3f)", dense.size(), dSae, pairs.size(), maxAbsPositionCorrelation());
        }
    }

    /** Finds the dense latents of {@code sae} on {@code ctx}, pairs them and correlates them with the contexts. */
    public static Result run(SparseCoder sae, Contexts ctx, Options options) {
        float[][] f = Latents.encode(sae, ctx.x());
        float[][] dec = Latents.decoderRows(sae);
        int dSae = dec.length, n = ctx.size();
        boolean[] body = new boolean[n];
        boolean hasBos = false;
        int nBody = 0;
        for (int i = 0; i < n; i++) {
            body[i] = ctx.position()[i] > 0;
            if (body[i]) nBody++;
            else hasBos = true;
        }
        if (nBody == 0) throw new IllegalArgumentException("no tokens after BOS to measure density on");
        double[] fired = new double[dSae], sum = new double[dSae];
        for (int i = 0; i < n; i++) {
            if (!body[i]) continue;
            for (int j = 0; j < dSae; j++) {
                if (f[i][j] != 0) fired[j]++;
                sum[j] += f[i][j];
            }
        }
        List<Integer> denseIdx = new ArrayList<>();
        for (int j = 0; j < dSae; j++) if (fired[j] / nBody > options.denseFraction()) denseIdx.add(j);
        denseIdx.sort((a, b) -> Double.compare(fired[b], fired[a]));

        // decoder cosines among the dense latents
        int m = denseIdx.size();
        double[][] cos = new double[m][m];
        for (int a = 0; a < m; a++) {
            for (int b = 0; b < m; b++) {
                float[] da = dec[denseIdx.get(a)], db = dec[denseIdx.get(b)];
                cos[a][b] = dev.jlens.util.Vectors.cosine(da, db);
            }
        }
        List<Pair> pairs = new ArrayList<>();
        for (int a = 0; a < m; a++) {
            for (int b = a + 1; b < m; b++) {
                if (cos[a][b] < options.antipodalCosine()) {
                    int la = denseIdx.get(a), lb = denseIdx.get(b);
                    pairs.add(new Pair(Math.min(la, lb), Math.max(la, lb), cos[a][b]));
                }
            }
        }
        pairs.sort((p, q) -> Double.compare(p.cosine(), q.cosine()));

        // what they carry, over the tokens after BOS
        double[] pos = new double[nBody], sentPos = new double[nBody];
        boolean[] hasSentPos = new boolean[nBody];
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (!body[i]) continue;
            pos[k] = ctx.position()[i];
            sentPos[k] = ctx.sentencePosition()[i];
            hasSentPos[k] = ctx.sentencePosition()[i] >= 0;
            k++;
        }
        Map<String, double[]> concepts = new LinkedHashMap<>();
        for (var e : ctx.concepts().entrySet()) {
            double[] v = new double[nBody];
            int c = 0;
            for (int i = 0; i < n; i++) if (body[i]) v[c++] = e.getValue()[i] ? 1 : 0;
            concepts.put(e.getKey(), v);
        }
        double[] bos = new double[n];
        for (int i = 0; i < n; i++) bos[i] = body[i] ? 0 : 1;

        List<Latent> out = new ArrayList<>();
        for (int a = 0; a < m; a++) {
            int j = denseIdx.get(a);
            double[] act = new double[nBody], all = new double[n];
            int c = 0;
            for (int i = 0; i < n; i++) {
                all[i] = f[i][j];
                if (body[i]) act[c++] = f[i][j];
            }
            int partner = -1;
            double partnerCos = Double.NaN;
            for (int b = 0; b < m; b++) {
                if (b != a && (partner < 0 || cos[a][b] < partnerCos)) {
                    partner = denseIdx.get(b);
                    partnerCos = cos[a][b];
                }
            }
            String bestConcept = "";
            double bestR = Double.NaN;
            for (var e : concepts.entrySet()) {
                double r = correlation(act, e.getValue(), null);
                if (!Double.isNaN(r) && (Double.isNaN(bestR) || Math.abs(r) > Math.abs(bestR))) {
                    bestR = r;
                    bestConcept = e.getKey();
                }
            }
            out.add(new Latent(j, fired[j] / nBody, sum[j] / nBody,
                    partner < 0 ? OptionalInt.empty() : OptionalInt.of(partner), partnerCos,
                    correlation(act, pos, null), correlation(act, sentPos, hasSentPos),
                    hasBos ? correlation(all, bos, null) : Double.NaN, bestConcept, bestR));
        }
        return new Result(dSae, nBody, out, pairs, options);
    }

    /**
     * Notebook 02's four architectures at width {@code dSae}: {@code topk} and {@code batchtopk} with {@code k},
     * {@code jumprelu} (L0 coefficient 0.006, bandwidth 0.001, threshold 0.03), {@code relu} (L1 coefficient 0.1).
     */
    public static Map<String, SaeConfig> architectures(int dIn, int dSae, int k) {
        Map<String, SaeConfig> m = new LinkedHashMap<>();
        m.put("topk", SaeConfig.of(dIn, dSae, new SaeConfig.TopK(k)));
        m.put("batchtopk", SaeConfig.of(dIn, dSae, new SaeConfig.BatchTopK(k)));
        m.put("jumprelu", SaeConfig.of(dIn, dSae, new SaeConfig.JumpRelu(0.006, 0.001, 0.03)));
        m.put("relu", SaeConfig.of(dIn, dSae, new SaeConfig.Relu(0.1)));
        return m;
    }

    /**
     * Trains one dictionary per config on the same batches of {@code source} (one trainer) and finds each one's
     * dense latents on {@code ctx}; the dictionaries are closed afterwards.
     */
    public static Map<String, Result> trainAndRun(ActivationSource source, Map<String, SaeConfig> configs,
                                                  SaeTrainConfig train, Contexts ctx, Options options) {
        if (configs.isEmpty()) throw new IllegalArgumentException("no dictionaries to train");
        Map<String, Result> out = new LinkedHashMap<>();
        try (SaeTrainer trainer = SaeTrainer.of(source, train)) {
            for (var e : configs.entrySet()) trainer.add(e.getKey(), e.getValue());
            trainer.progress(ProgressSink.none());
            trainer.train();
            for (String name : configs.keySet()) out.put(name, run(trainer.dictionary(name), ctx, options));
        }
        return out;
    }

    /** Several dictionaries' dense latents side by side: one row per dictionary. */
    public static Table compare(Map<String, Result> results) {
        StringColumn name = StringColumn.create("dictionary");
        IntColumn dSae = IntColumn.create("d_sae"), dense = IntColumn.create("dense_latents");
        DoubleColumn frac = DoubleColumn.create("dense_fraction");
        IntColumn pairs = IntColumn.create("antipodal_pairs");
        DoubleColumn paired = DoubleColumn.create("paired_fraction"), minCos = DoubleColumn.create("min_pair_cosine");
        DoubleColumn pos = DoubleColumn.create("max_abs_r_position"), bos = DoubleColumn.create("max_abs_r_bos");
        DoubleColumn concept = DoubleColumn.create("mean_abs_r_best_concept");
        results.forEach((k, r) -> {
            name.append(k);
            dSae.append(r.dSae());
            dense.append(r.dense().size());
            frac.append(Numbers.significant(r.denseFraction(), 3));
            pairs.append(r.pairs().size());
            paired.append(Numbers.significant(r.pairedFraction(), 3));
            minCos.append(r.pairs().isEmpty() ? Double.NaN : Numbers.significant(r.pairs().get(0).cosine(), 4));
            pos.append(Numbers.significant(r.maxAbsPositionCorrelation(), 3));
            bos.append(Numbers.significant(r.dense().stream().mapToDouble(l -> Math.abs(l.bosCorrelation()))
                    .filter(v -> !Double.isNaN(v)).max().orElse(Double.NaN), 3));
            concept.append(Numbers.significant(r.dense().stream().mapToDouble(l -> Math.abs(l.bestConceptCorrelation()))
                    .filter(v -> !Double.isNaN(v)).average().orElse(Double.NaN), 3));
        });
        return Table.create("dense latents by dictionary", name, dSae, dense, frac, pairs, paired, minCos, pos, bos,
                concept);
    }

    /** Pearson correlation of {@code a} and {@code b} over the entries where {@code keep} holds (all when null). */
    static double correlation(double[] a, double[] b, boolean[] keep) {
        double sa = 0, sb = 0;
        int n = 0;
        for (int i = 0; i < a.length; i++) {
            if (keep != null && !keep[i]) continue;
            sa += a[i];
            sb += b[i];
            n++;
        }
        if (n < 2) return Double.NaN;
        double ma = sa / n, mb = sb / n, cab = 0, caa = 0, cbb = 0;
        for (int i = 0; i < a.length; i++) {
            if (keep != null && !keep[i]) continue;
            double da = a[i] - ma, db = b[i] - mb;
            cab += da * db;
            caa += da * da;
            cbb += db * db;
        }
        return caa > 0 && cbb > 0 ? cab / Math.sqrt(caa * cbb) : Double.NaN;
    }
}
