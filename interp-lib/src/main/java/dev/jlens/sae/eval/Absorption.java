package dev.jlens.sae.eval;

import dev.jlens.probe.ProbeTask;

import dev.jlens.probe.LinearProbe;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.ProbeMethod;
import dev.jlens.sae.SparseCoder;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import java.util.stream.Collectors;

/**
 * Feature absorption (Chanin et al. 2024, "A is for Absorption"; SAEBench's {@code absorption_first_letter}): a parent
 * concept (words starting with s; nouns) whose main latents stay silent on some of its tokens because a more specific
 * latent (one word) has absorbed the parent's direction into its own decoder row.
 *
 * <p>Per parent (a {@link ProbeTask}, label 1 where the parent holds):
 * <ol>
 * <li>a logistic probe on the raw training rows gives the parent's direction {@code p} (unit length);</li>
 * <li>k-sparse probing picks the main latents: latents ranked by {@code mean(parent) - mean(rest)} on the training
 *     rows, a logistic probe on the top k for k = 1..maxK; k grows while the test F1 rises by more than
 *     {@code f1JumpThreshold} (SAEBench's feature splitting), and the top k are the parent's split latents;</li>
 * <li>on the test rows where the parent holds and the probe says so (its true positives), with latent {@code i}'s
 *     projection {@code f_i (d_i . p)} ({@code d_i} its raw-unit decoder row) and the token's
 *     {@code (x - b_dec) . p}:
 *     <ul>
 *     <li>absorption fraction: 0 when the main latents' projection covers the token's or the top
 *         {@code maxAbsorbingLatents} other latents with cosine to {@code p} of at least {@code absorberCosine}
 *         project less than {@code projectionShare} of it; 1 when the main latents project nothing; else the
 *         absorbers' part (capped by what the main latents leave) of absorbers plus main;</li>
 *     <li>full absorption: every main latent silent, and the single latent projecting most onto {@code p} has cosine
 *         of at least {@code fullAbsorptionCosine} and carries at least {@code projectionShare} of the token's
 *         projection.</li>
 *     </ul></li>
 * </ol>
 * The means are over the parents whose probe reaches a test F1 above 0.6 (SAEBench's {@code min_GT_probe_f1}); the
 * others are listed but not scored. Thresholds are SAEBench's (0.1, 0.025, 0.4, 3 latents, F1 jump 0.03). One
 * difference: projections are measured from {@code b_dec} (what the latents have to account for), where SAEBench
 * projects the raw activation; with unit-norm decoder rows {@code f_i (d_i . p)} is SAEBench's {@code f_i cos(d_i, p)}.
 *
 * <pre>{@code
 * Absorption.Result r = Absorption.run(sae, TinyLangConcepts.firstLetters(rows, 3, 40), Absorption.Options.defaults());
 * display(r.toTable()); r.meanAbsorptionFraction(); r.meanFullAbsorption(); r.meanSplitLatents();
 * }</pre>
 */
public final class Absorption {
    private static final double EPS = 1e-8;

    private Absorption() {}

    /**
     * SAEBench's thresholds.
     *
     * @param maxK                 most split latents considered ({@code max_k_value})
     * @param f1JumpThreshold      one more latent is a split latent when the k-sparse probe's F1 rises by more
     * @param absorberCosine       least cosine with the probe of a latent counted in the absorption fraction
     * @param fullAbsorptionCosine least cosine with the probe of the top latent in full absorption
     * @param projectionShare      least share of the token's probe projection the absorbing latents carry
     * @param maxAbsorbingLatents  most latents that together absorb one token (absorption fraction)
     * @param minProbeF1           a parent counts in the means only when its probe's test F1 is above this
     *                             ({@code min_GT_probe_f1}: a concept the model does not represent linearly has no
     *                             direction to absorb)
     * @param probe                how the parent's probe is fitted
     */
    public record Options(int maxK, double f1JumpThreshold, double absorberCosine, double fullAbsorptionCosine,
                          double projectionShare, int maxAbsorbingLatents, double minProbeF1, ProbeMethod probe) {
        /** Validates the settings. */
        public Options {
            if (maxK < 1) throw new IllegalArgumentException("maxK must be >= 1, got " + maxK);
            if (maxAbsorbingLatents < 1) {
                throw new IllegalArgumentException("maxAbsorbingLatents must be >= 1, got " + maxAbsorbingLatents);
            }
            if (!(f1JumpThreshold >= 0) || !(projectionShare > 0)) {
                throw new IllegalArgumentException("f1JumpThreshold must be >= 0 and projectionShare > 0");
            }
            if (probe == null) throw new IllegalArgumentException("probe must not be null (ProbeMethod.logistic())");
        }

        /**
         * SAEBench's defaults: maxK 10, F1 jump 0.03, cosines 0.1 and 0.025, share 0.4, 3 absorbing latents, probe F1
         * above 0.6.
         */
        public static Options defaults() {
            return new Options(10, 0.03, 0.1, 0.025, 0.4, 3, 0.6, ProbeMethod.logistic());
        }

        /** The same with another most number of split latents. */
        public Options withMaxK(int k) {
            return new Options(k, f1JumpThreshold, absorberCosine, fullAbsorptionCosine, projectionShare,
                    maxAbsorbingLatents, minProbeF1, probe);
        }
    }

    /**
     * One parent's absorption.
     *
     * @param parent               the parent's name
     * @param probeAccuracy        the parent probe's test accuracy
     * @param probeF1              the parent probe's test F1
     * @param evaluated            whether the probe's F1 passed {@link Options#minProbeF1()}: only these count in the
     *                             means
     * @param probeTruePositives   test rows where the parent holds and the probe says so (the rows scored)
     * @param absorptionFraction   mean absorption fraction over them
     * @param fullAbsorptionRate   the fraction of them fully absorbed
     * @param fullAbsorptions      how many of them are fully absorbed
     * @param splitLatents         the main latents (best first); their number is the split-latent count
     * @param splitF1              test F1 of the k-sparse probe for k = 1..maxK
     * @param topAbsorber          the latent that most often projects most onto the probe on fully absorbed rows
     * @param absorbedTypes        on fully absorbed rows, how often each token type (e.g. word id) was absorbed
     */
    public record Parent(String parent, double probeAccuracy, double probeF1, boolean evaluated, int probeTruePositives,
                         double absorptionFraction, double fullAbsorptionRate, int fullAbsorptions, int[] splitLatents, double[] splitF1,
                         OptionalInt topAbsorber, Map<Integer, Integer> absorbedTypes) {
        /** The number of split latents. */
        public int numSplitLatents() {
            return splitLatents.length;
        }
    }

    /** Every parent's absorption and the means SAEBench reports (over the evaluated parents; NaN when none is). */
    public record Result(List<Parent> parents, Options options) {
        /** Copies the list. */
        public Result {
            parents = List.copyOf(parents);
        }

        /** The parents whose probe passed {@link Options#minProbeF1()}. */
        public List<Parent> evaluated() {
            return parents.stream().filter(Parent::evaluated).toList();
        }

        /** Mean over parents of the absorption fraction ({@code mean_absorption_fraction_score}). */
        public double meanAbsorptionFraction() {
            return mean(Parent::absorptionFraction);
        }

        /** Mean over parents of the full-absorption rate ({@code mean_full_absorption_score}). */
        public double meanFullAbsorption() {
            return mean(Parent::fullAbsorptionRate);
        }

        /** Mean over parents of the number of split latents ({@code mean_num_split_features}). */
        public double meanSplitLatents() {
            return mean(p -> p.numSplitLatents());
        }

        /** Sample standard deviation over parents of the absorption fraction (0 for one parent). */
        public double sdAbsorptionFraction() {
            return sd(Parent::absorptionFraction);
        }

        /** Sample standard deviation over parents of the full-absorption rate. */
        public double sdFullAbsorption() {
            return sd(Parent::fullAbsorptionRate);
        }

        /** Sample standard deviation over parents of the number of split latents. */
        public double sdSplitLatents() {
            return sd(p -> p.numSplitLatents());
        }

        /** The means and spreads by SAEBench's metric names. */
        public Map<String, Double> metrics() {
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("mean_absorption_fraction_score", meanAbsorptionFraction());
            m.put("mean_full_absorption_score", meanFullAbsorption());
            m.put("mean_num_split_features", meanSplitLatents());
            m.put("std_dev_absorption_fraction_score", sdAbsorptionFraction());
            m.put("std_dev_full_absorption_score", sdFullAbsorption());
            m.put("std_dev_num_split_features", sdSplitLatents());
            return m;
        }

        private double mean(java.util.function.ToDoubleFunction<Parent> f) {
            return evaluated().stream().mapToDouble(f).average().orElse(Double.NaN);
        }

        private double sd(java.util.function.ToDoubleFunction<Parent> f) {
            List<Parent> e = evaluated();
            return e.isEmpty() ? Double.NaN : Seeds.sd(e.stream().mapToDouble(f).toArray());
        }

        /** One row per parent, then a {@code mean} row over the evaluated ones. */
        public Table toTable() {
            StringColumn parent = StringColumn.create("parent");
            DoubleColumn acc = DoubleColumn.create("probe_accuracy"), pf1 = DoubleColumn.create("probe_f1");
            StringColumn evaluated = StringColumn.create("evaluated");
            IntColumn tp = IntColumn.create("probe_true_positives");
            DoubleColumn frac = DoubleColumn.create("absorption_fraction"), full = DoubleColumn.create("full_absorption");
            DoubleColumn split = DoubleColumn.create("split_latents");
            StringColumn latents = StringColumn.create("main_latents"), absorber = StringColumn.create("top_absorber");
            for (Parent p : parents) {
                parent.append(p.parent());
                acc.append(p.probeAccuracy());
                pf1.append(p.probeF1());
                evaluated.append(p.evaluated() ? "yes" : "no");
                tp.append(p.probeTruePositives());
                frac.append(p.absorptionFraction());
                full.append(p.fullAbsorptionRate());
                split.append(p.numSplitLatents());
                latents.append(Arrays.stream(p.splitLatents()).mapToObj(Integer::toString).collect(Collectors.joining(" ")));
                absorber.append(p.topAbsorber().isPresent() ? Integer.toString(p.topAbsorber().getAsInt()) : "");
            }
            parent.append("mean");
            acc.append(mean(Parent::probeAccuracy));
            pf1.append(mean(Parent::probeF1));
            evaluated.append(evaluated().size() + " of " + parents.size());
            double meanTp = mean(Parent::probeTruePositives);
            if (Double.isNaN(meanTp)) tp.appendMissing();
            else tp.append((int) Math.round(meanTp));
            frac.append(meanAbsorptionFraction());
            full.append(meanFullAbsorption());
            split.append(meanSplitLatents());
            latents.append("");
            absorber.append("");
            return Table.create("feature absorption", parent, acc, pf1, evaluated, tp, frac, full, split, latents, absorber);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "Absorption(%d of %d parents evaluated: absorption fraction %.3f, full "
                    + "absorption %.3f, split latents %.2f)", evaluated().size(), parents.size(),
                    meanAbsorptionFraction(), meanFullAbsorption(), meanSplitLatents());
        }
    }

    /** Measures absorption of every parent in {@code sae}. */
    public static Result run(SparseCoder sae, List<ProbeTask> parents, Options options) {
        if (parents.isEmpty()) throw new IllegalArgumentException("no parent concepts to measure absorption on");
        float[][] dec = Latents.decoderRows(sae);
        float[] bDec = Latents.decoderBias(sae);
        List<Parent> out = new ArrayList<>();
        for (ProbeTask t : parents) {
            if (t.dim() != sae.cfg().dIn()) {
                throw new IllegalArgumentException("parent '" + t.name() + "' has " + t.dim() + "-wide rows; the "
                        + "dictionary reads " + sae.cfg().dIn());
            }
            out.add(parent(sae, t, dec, bDec, options));
        }
        return new Result(out, options);
    }

    private static Parent parent(SparseCoder sae, ProbeTask t, float[][] dec, float[] bDec, Options o) {
        ProbeData train = t.train(), test = t.test();
        LinearProbe probe = t.probe(o.probe());
        float[] p = probe.direction();
        double probeAccuracy = probe.accuracy(test);
        int[] predicted = probe.predict(test.x());
        double probeF1 = f1(predicted, test.labels());
        float[][] fTrain = Latents.encode(sae, train.x()), fTest = Latents.encode(sae, test.x());

        // main latents: grow k while the k-sparse probe's F1 jumps
        int[] rank = Latents.rankByMeanDifference(fTrain, train.labels(), false);
        int maxK = Math.min(o.maxK(), rank.length);
        double[] f1 = new double[maxK];
        for (int k = 1; k <= maxK; k++) {
            int[] cols = Arrays.copyOf(rank, k);
            LinearProbe kp = o.probe().fit(ProbeData.of(Latents.columns(fTrain, cols), train.labels(), train.groups(), 2));
            f1[k - 1] = f1(kp.predict(Latents.columns(fTest, cols)), test.labels());
        }
        int nMain = 1;
        while (nMain < maxK && f1[nMain] - f1[nMain - 1] > o.f1JumpThreshold()) nMain++;
        int[] main = Arrays.copyOf(rank, nMain);
        boolean[] isMain = new boolean[dec.length];
        for (int m : main) isMain[m] = true;

        double[] cos = new double[dec.length], along = new double[dec.length];
        for (int i = 0; i < dec.length; i++) {
            along[i] = dev.jlens.util.Vectors.dot(dec[i], p);
            double n = dev.jlens.util.Vectors.norm(dec[i]);
            cos[i] = n == 0 ? 0 : along[i] / n;
        }
        int tp = 0, full = 0;
        double fracSum = 0;
        Map<Integer, Integer> absorberCounts = new LinkedHashMap<>(), absorbedTypes = new LinkedHashMap<>();
        double[] proj = new double[dec.length];
        for (int r = 0; r < test.size(); r++) {
            if (test.labels()[r] != 1 || predicted[r] != 1) continue;
            tp++;
            float[] x = test.x()[r], f = fTest[r];
            double act = 0;
            for (int j = 0; j < x.length; j++) act += (x[j] - bDec[j]) * (double) p[j];
            double mainProj = 0;
            boolean mainSilent = true;
            int top = -1;
            for (int i = 0; i < dec.length; i++) {
                proj[i] = f[i] * along[i];
                if (isMain[i]) {
                    mainProj += proj[i];
                    if (f[i] >= EPS) mainSilent = false;
                }
                if (f[i] != 0 && (top < 0 || proj[i] > proj[top])) top = i;
            }
            fracSum += absorptionFraction(act, mainProj, proj, cos, isMain, o);
            boolean isFull = mainSilent && top >= 0 && cos[top] >= o.fullAbsorptionCosine() && act > 0
                    && proj[top] / act >= o.projectionShare();
            if (isFull) {
                full++;
                absorberCounts.merge(top, 1, Integer::sum);
                if (test.types().isPresent()) absorbedTypes.merge(test.types().get()[r], 1, Integer::sum);
            }
        }
        OptionalInt topAbsorber = absorberCounts.entrySet().stream().max(Map.Entry.comparingByValue())
                .map(e -> OptionalInt.of(e.getKey())).orElse(OptionalInt.empty());
        return new Parent(t.name(), probeAccuracy, probeF1, probeF1 > o.minProbeF1(), tp, tp == 0 ? 0 : fracSum / tp,
                tp == 0 ? 0 : (double) full / tp, full, main, f1, topAbsorber, absorbedTypes);
    }

    /** SAEBench's absorption fraction of one token. */
    static double absorptionFraction(double act, double mainProj, double[] proj, double[] cos, boolean[] isMain,
                                     Options o) {
        // the largest maxAbsorbingLatents positive projections among aligned non-main latents
        double[] best = new double[o.maxAbsorbingLatents()];
        for (int i = 0; i < proj.length; i++) {
            if (isMain[i] || cos[i] < o.absorberCosine() || !(proj[i] > 0)) continue;
            double v = proj[i];
            for (int s = 0; s < best.length; s++) {
                if (v > best[s]) {
                    double tmp = best[s];
                    best[s] = v;
                    v = tmp;
                }
            }
        }
        double absorbers = 0;
        for (double b : best) absorbers += b;
        if (!(act > 0) || mainProj >= act || absorbers / act < o.projectionShare()) return 0;
        if (mainProj <= 0) return 1;
        double absorbed = Math.min(absorbers, act - mainProj);
        return Math.max(0, Math.min(1, absorbed / (absorbed + mainProj)));
    }

    static double f1(int[] predicted, int[] labels) {
        int tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < labels.length; i++) {
            if (predicted[i] == 1 && labels[i] == 1) tp++;
            else if (predicted[i] == 1) fp++;
            else if (labels[i] == 1) fn++;
        }
        return tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
    }
}
