package dev.jlens.probe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.jlens.data.Agreement;
import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.LatentMatch;
import dev.jlens.sae.SaeWeights;
import dev.jlens.sae.SparseCoder;
import dev.jlens.util.SplitMix;
import dev.jlens.viz.Plots;
import dev.jlens.util.Vectors;
import org.knowm.xchart.CategoryChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * One binary concept's direction at one hook, found several ways, compared with each other and by what steering along
 * each does: is there a "true" direction, and can we tell which candidate is closest to it?
 *
 * <pre>{@code
 * var dirs = ConceptDirections.of("singular subject", rows)            // rows: label 1 = the concept holds
 *         .withSaeLatent(sae, latentActs, conceptMask)                  // the best-matching latent's decoder row
 *         .withRandom(7);                                               // a control
 * dirs.cosineTable();                                                   // pairwise cosines
 * dirs = dirs.steerAgreement(model, hook, pairs, Positions.at(Agreement.SUBJECT_POS), norm);
 * dirs.toTable(); dirs.chart();                                         // effect per unit of steering
 * }</pre>
 *
 * <p>Every direction is stored with unit length, oriented towards class 1 (the SAE latent's decoder row and the random
 * control keep their own sign). The candidates: {@link #PROBE}, the unit weight vector of an L2 logistic probe (which
 * discounts directions where the classes differ but the within-class spread is large); {@link #DIFF_MEANS}, the
 * difference of the class means (which takes every direction whose mean shifts with the label, correlated nuisances
 * included); {@link #SAE}, the decoder row of the latent whose firing best predicts the concept ({@link LatentMatch},
 * F1); {@link #RANDOM}, a seeded Gaussian direction. Steering effects are measured at one norm for all of them, so
 * the effects compare directions, not lengths.
 */
public final class ConceptDirections {
    public static final String PROBE = "logistic probe";
    public static final String DIFF_MEANS = "difference of means";
    public static final String SAE = "SAE latent";
    public static final String RANDOM = "random";

    private final String concept;
    private final Map<String, float[]> directions;
    private final Map<String, Double> effects;

    private ConceptDirections(String concept, Map<String, float[]> directions, Map<String, Double> effects) {
        this.concept = concept;
        this.directions = directions;
        this.effects = effects;
    }

    /** Default L2 strength of the probe, on raw-unit weights (see {@link #of(String, ProbeData, double)}). */
    public static final double DEFAULT_L2 = 1e-2;

    /** The logistic probe (L2 {@link #DEFAULT_L2}) and difference-of-means directions of a binary concept. */
    public static ConceptDirections of(String concept, ProbeData rows) {
        return of(concept, rows, DEFAULT_L2);
    }

    /**
     * The logistic probe and difference-of-means directions of a binary concept. The probe here is fitted on centred,
     * not standardised, columns with the L2 penalty {@code l2 / 2 |w|^2} on raw-unit weights: per-column
     * standardisation (as {@link ProbeMethod.Logistic} does) weighs the penalty differently along each axis of the
     * activation basis, which bends the direction towards low-variance axes (on planted data with a dense true
     * direction, cosine about 0.8 instead of above 0.99).
     */
    public static ConceptDirections of(String concept, ProbeData rows, double l2) {
        if (rows.nClasses() != 2) {
            throw new IllegalArgumentException("a concept direction needs two classes, the rows have " + rows.nClasses());
        }
        Map<String, float[]> d = new LinkedHashMap<>();
        d.put(PROBE, LinearProbe.unit(LogisticFit.fit(rows, l2, 500, false).weights()[0]));
        d.put(DIFF_MEANS, ProbeMethod.diffMeans().fit(rows).direction());
        return new ConceptDirections(concept, d, Map.of());
    }

    /** These directions with one more (made unit; an existing name is replaced). */
    public ConceptDirections with(String name, float[] direction) {
        if (direction.length != dim()) {
            throw new IllegalArgumentException(name + " has width " + direction.length + ", the others " + dim());
        }
        Map<String, float[]> d = new LinkedHashMap<>(directions);
        d.put(name, LinearProbe.unit(direction));
        return new ConceptDirections(concept, d, Map.of());
    }

    /**
     * Adds {@link #SAE}: the decoder row of the latent whose firing ({@code act > 0}) best predicts {@code concept}
     * by F1. {@code latentActs} is {@code [tokens, dSae]} over the same tokens as {@code concept}.
     */
    public ConceptDirections withSaeLatent(SparseCoder sae, NDArray latentActs, boolean[] concept) {
        return withBestLatent(latentActs, sae.weights().get(SaeWeights.W_DEC), concept);
    }

    /**
     * Adds {@link #SAE} from any dictionary: row {@code m} of {@code decoder [dSae, d]} for the latent {@code m} whose
     * firing in {@code latentActs [tokens, dSae]} best predicts {@code concept} by F1.
     */
    public ConceptDirections withBestLatent(NDArray latentActs, NDArray decoder, boolean[] concept) {
        LatentMatch.Match m = LatentMatch.best(latentActs, Map.of(this.concept, concept)).get(0);
        try (NDArray r = decoder.get(m.latent())) {
            return with(SAE, r.toFloatArray());
        }
    }

    /** Adds {@link #SAE} as row {@code latent} of the coder's decoder. */
    public ConceptDirections withDecoderRow(SparseCoder sae, int latent) {
        NDArray wDec = sae.weights().get(SaeWeights.W_DEC);
        try (NDArray r = wDec.get(latent)) {
            return with(SAE, r.toFloatArray());
        }
    }

    /** Adds {@link #RANDOM}, a seeded Gaussian direction. */
    public ConceptDirections withRandom(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[dim()];
        for (int j = 0; j < v.length; j++) v[j] = (float) SplitMix.gaussian(r);
        return with(RANDOM, v);
    }

    /** The concept's name. */
    public String concept() {
        return concept;
    }

    /** Width of the directions. */
    public int dim() {
        return directions.values().iterator().next().length;
    }

    /** The names of the directions, in the order added. */
    public List<String> names() {
        return List.copyOf(directions.keySet());
    }

    /** A unit direction (a copy). */
    public float[] direction(String name) {
        float[] d = directions.get(name);
        if (d == null) throw new IllegalArgumentException("no direction '" + name + "'; there are " + names());
        return d.clone();
    }

    /** The direction as a steering vector of length {@code norm} at {@code hook}. */
    public SteeringVector vector(String name, String hook, double norm) {
        return new SteeringVector(hook, direction(name), name + " direction of " + concept).normalizedTo(norm);
    }

    /** Cosine of two stored directions. */
    public double cosine(String a, String b) {
        return Vectors.cosine(direction(a), direction(b));
    }

    /** Cosine of a stored direction with any vector of the same width (a planted truth, say). */
    public double cosineWith(String name, float[] v) {
        return Vectors.cosine(direction(name), v);
    }

    /** Pairwise cosines: one row per direction, one column per direction. */
    public Table cosineTable() {
        List<String> names = names();
        StringColumn row = StringColumn.create("direction", names);
        Table t = Table.create("cosines between " + concept + " directions", row);
        for (String b : names) {
            double[] col = new double[names.size()];
            for (int i = 0; i < col.length; i++) col[i] = round(cosine(names.get(i), b));
            t.addColumns(DoubleColumn.create(b, col));
        }
        return t;
    }

    /**
     * Steering effect per unit on subject-verb agreement: each direction (length {@code norm}) is added at
     * {@code hook} and {@code positions} with strength {@code +1} and {@code -1} to the clean (singular-subject) and
     * corrupt (plural-subject) prompts of {@code pairs}; the effect is the mean change of
     * {@code logit(singular verb) - logit(plural verb)} at the last position, {@code (LD(+) - LD(-)) / (2 norm)}.
     * Positive: the direction pushes towards a singular verb.
     */
    public ConceptDirections steerAgreement(HookedTransformer model, String hook, List<Agreement.Pair> pairs,
                                            Positions positions, double norm) {
        if (!(norm > 0)) throw new IllegalArgumentException("norm must be > 0, got " + norm);
        long[][] prompts = new long[2 * pairs.size()][];
        long[] sing = new long[prompts.length], plur = new long[prompts.length];
        for (int i = 0; i < pairs.size(); i++) {
            Agreement.Pair p = pairs.get(i);
            prompts[2 * i] = p.clean();
            prompts[2 * i + 1] = p.corrupt();
            sing[2 * i] = sing[2 * i + 1] = p.singularVerb();
            plur[2 * i] = plur[2 * i + 1] = p.pluralVerb();
        }
        Map<String, Double> eff = new LinkedHashMap<>();
        for (String name : names()) {
            Steering s = Steering.of(vector(name, hook, norm)).positions(positions);
            double up = logitDiff(model, prompts, sing, plur, s.strength(1));
            double down = logitDiff(model, prompts, sing, plur, s.strength(-1));
            eff.put(name, (up - down) / (2 * norm));
        }
        return new ConceptDirections(concept, directions, eff);
    }

    /** The steering effect per unit of a direction ({@link #steerAgreement} must have run). */
    public double effect(String name) {
        Double e = effects.get(name);
        if (e == null) {
            throw new IllegalStateException("no steering effect for '" + name + "': call steerAgreement first");
        }
        return e;
    }

    /** Mean logit difference with an optional steering attached. */
    static double logitDiff(HookedTransformer model, long[][] prompts, long[] a, long[] b, Steering steering) {
        float[] logits;
        long[] shape;
        try (NDScope scope = new NDScope()) {
            NDArray out = steering == null ? model.runWithHooks(prompts) : model.runWithHooks(prompts, steering.hooks());
            shape = out.getShape().getShape();
            logits = out.toFloatArray();
        }
        int len = (int) shape[1], vocab = (int) shape[2];
        double sum = 0;
        for (int i = 0; i < prompts.length; i++) {
            int base = (i * len + len - 1) * vocab;
            sum += logits[base + (int) a[i]] - logits[base + (int) b[i]];
        }
        return sum / prompts.length;
    }

    /**
     * One row per direction: its cosine with the probe and with the difference of means, and (after
     * {@link #steerAgreement}) the change of the agreement logit difference per unit of steering.
     */
    public Table toTable() {
        StringColumn name = StringColumn.create("direction");
        DoubleColumn cosProbe = DoubleColumn.create("cos probe"), cosMeans = DoubleColumn.create("cos diff-means"),
                eff = DoubleColumn.create("d logit diff / unit");
        for (String n : names()) {
            name.append(n);
            cosProbe.append(directions.containsKey(PROBE) ? round(cosine(n, PROBE)) : Double.NaN);
            cosMeans.append(directions.containsKey(DIFF_MEANS) ? round(cosine(n, DIFF_MEANS)) : Double.NaN);
            eff.append(effects.containsKey(n) ? round(effects.get(n)) : Double.NaN);
        }
        return Table.create(concept + " directions", name, cosProbe, cosMeans, eff);
    }

    /** Steering effect per unit by direction (after {@link #steerAgreement}), else the cosines with the probe. */
    public CategoryChart chart() {
        List<String> names = names();
        double[] v = new double[names.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = effects.isEmpty() ? cosine(names.get(i), names.get(0)) : effects.get(names.get(i));
        }
        String title = effects.isEmpty() ? concept + ": cosine with " + names.get(0)
                : concept + ": change in logit diff per unit of steering";
        return Plots.bar(title, names, v);
    }


    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("ConceptDirections(" + concept + ": ");
        for (String n : names()) {
            sb.append(n);
            if (effects.containsKey(n)) sb.append(String.format(Locale.ROOT, " %.3f/unit", effects.get(n)));
            sb.append("; ");
        }
        return sb.append(")").toString();
    }
}
