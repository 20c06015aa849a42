package dev.jlens.drift;

import static dev.jlens.util.Vectors.median;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jlens.sae.DictionaryMatch;
import dev.jlens.sae.SparseCoder;
import dev.jlens.viz.Plots;
import dev.jlens.util.Vectors;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;
import org.knowm.xchart.XYChart;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Drift of features from one layer to the next: is a feature's change mostly a fixed linear transform per layer plus
 * a non-linear component? Given a dictionary at layer {@code l}, one at layer {@code l+1}, a {@link LayerMap} fitted
 * on the residual stream from {@code l} to {@code l+1}, and rows of both layers' activations on the same tokens:
 *
 * <ol>
 *   <li>matches latents across the layers ({@link DictionaryMatch}, on the raw decoders or on {@code A d_l});</li>
 *   <li>for each matched pair {@code (d_l, d_{l+1})}: the decoder cosine raw, {@code cos(d_l, d_{l+1})}, and after the
 *       map, {@code cos(A d_l, d_{l+1})};</li>
 *   <li>in activation space, over the tokens where latent {@code i} fires at {@code l}: its contribution there
 *       {@code c_l = f_i d_l} and its partner's at {@code l+1}, {@code c_{l+1} = f_j d_{l+1}} (raw units), and the
 *       fraction of the energy of {@code c_{l+1}} the linear map of {@code c_l} explains,
 *       {@code 1 - sum ||c_{l+1} - A c_l||^2 / sum ||c_{l+1}||^2}; the rest is the non-linear remainder (the partner
 *       off where the latent was on, magnitudes that are not proportional, a direction the map misses). The same with
 *       the identity in place of {@code A} is the "no drift" baseline.</li>
 * </ol>
 *
 * The energy is uncentred: a contribution's zero (the latent off) is meaningful, so a prediction is judged against
 * nothing written, not against the mean contribution.
 */
public final class LayerDrift {

    /**
     * One matched pair.
     *
     * @param latentL           latent at layer l
     * @param latentNext        its match at layer l+1
     * @param rawCosine         {@code cos(d_l, d_{l+1})}
     * @param mappedCosine      {@code cos(A d_l, d_{l+1})}
     * @param tokens            tokens where latent l fires
     * @param coFiring          of those, the fraction where its match fires too
     * @param linearExplained   fraction of the energy of {@code c_{l+1}} explained by {@code A c_l} (NaN if it never fires)
     * @param identityExplained the same for {@code c_l} itself
     * @param scaledExplained   the same for {@code beta A c_l} with the best single factor {@code beta} for the pair:
     *                          what the map's direction explains when its gain is forgiven (at least 0)
     * @param mapGain           {@code ||A d_l|| / ||d_l||}: how much the map stretches the latent's direction
     */
    public record PairDrift(int latentL, int latentNext, double rawCosine, double mappedCosine, int tokens,
                            double coFiring, double linearExplained, double identityExplained, double scaledExplained,
                            double mapGain) {
        /** The non-linear remainder: {@code 1 - linearExplained}. */
        public double nonLinearRemainder() {
            return 1 - linearExplained;
        }
    }

    /**
     * The figures of one layer pair.
     *
     * @param label               e.g. {@code "0 -> 1"}
     * @param matchedFraction     matched latents of layer l over its latents
     * @param medianRawCosine     median {@code cos(d_l, d_{l+1})} over matched pairs
     * @param medianMappedCosine  median {@code cos(A d_l, d_{l+1})}
     * @param linearExplained     pooled over pairs that fire: {@code 1 - sum SSE / sum energy} with the map
     * @param identityExplained   the same with the identity
     * @param medianLinearExplained median of the pairs' own fractions
     * @param medianScaledExplained median of the pairs' best-scale fractions
     * @param medianMapGain       median {@code ||A d_l|| / ||d_l||}
     * @param mapFit              the residual-stream map's fit
     */
    public record Summary(String label, int pairs, double matchedFraction, double medianRawCosine,
                          double medianMappedCosine, double linearExplained, double identityExplained,
                          double medianLinearExplained, double medianScaledExplained, double medianMapGain,
                          LayerMap.Fit mapFit) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%s: %d pairs (%.0f%% matched), median cosine raw %.3f -> mapped %.3f; "
                            + "contribution explained linear %.3f (identity %.3f, median pair %.3f, best scale %.3f, "
                            + "median map gain %.2f); map %s", label, pairs, 100 * matchedFraction, medianRawCosine,
                    medianMappedCosine, linearExplained, identityExplained, medianLinearExplained,
                    medianScaledExplained, medianMapGain, mapFit);
        }
    }

    private final String label;
    private final DictionaryMatch match;
    private final List<PairDrift> pairs;
    private final Summary summary;

    private LayerDrift(String label, DictionaryMatch match, List<PairDrift> pairs, Summary summary) {
        this.label = label;
        this.match = match;
        this.pairs = List.copyOf(pairs);
        this.summary = summary;
    }

    /**
     * Measures the drift from dictionary {@code saeL} to {@code saeNext} over rows {@code xL}, {@code xNext}
     * (row-major {@code [n, dModel]} raw activations of the two layers on the same tokens).
     *
     * @param map                {@code l -> l+1} map (fitted on these rows or others)
     * @param options            how latents are matched
     * @param mapBeforeMatching  match {@code A d_l} (folded or not, as the criterion says) to {@code d_{l+1}} instead of
     *                           {@code d_l}: the pairs a fixed linear transform predicts
     */
    public static LayerDrift measure(String label, SparseCoder saeL, SparseCoder saeNext, LayerMap map, float[] xL,
                                     float[] xNext, DictionaryMatch.Options options, boolean mapBeforeMatching) {
        int d = saeL.cfg().dIn();
        if (saeNext.cfg().dIn() != d || map.dIn() != d || map.dOut() != d) {
            throw new IllegalArgumentException("the dictionaries (" + d + ", " + saeNext.cfg().dIn() + ") and the map ("
                    + map.dIn() + " -> " + map.dOut() + ") must share one width");
        }
        if (xL.length != xNext.length || xL.length % d != 0) {
            throw new IllegalArgumentException("xL and xNext must hold the same number of rows of " + d);
        }
        boolean folded = options.criterion() == DictionaryMatch.Criterion.FOLDED_MSE;
        float[][] rowsL = folded ? DictionaryMatch.fold(saeL).decoder() : DictionaryMatch.decoder(saeL);
        float[][] rowsNext = folded ? DictionaryMatch.fold(saeNext).decoder() : DictionaryMatch.decoder(saeNext);
        if (mapBeforeMatching) {
            float[][] mapped = new float[rowsL.length][];
            for (int i = 0; i < rowsL.length; i++) mapped[i] = map.applyLinear(rowsL[i]);
            rowsL = mapped;
        }
        DictionaryMatch match = DictionaryMatch.ofRows(rowsL, rowsNext, options);

        float[][] decL = DictionaryMatch.decoder(saeL), decNext = DictionaryMatch.decoder(saeNext);
        double sL = saeL.cfg().inputScale(), sNext = saeNext.cfg().inputScale();
        int n = xL.length / d;
        // Per pair: sums over tokens where latent l fires of f^2, f g, g^2 (f at l, g its partner at l+1).
        List<DictionaryMatch.Pair> mp = match.pairs();
        int[] a = new int[mp.size()], b = new int[mp.size()];
        for (int k = 0; k < a.length; k++) {
            a[k] = mp.get(k).a();
            b[k] = mp.get(k).b();
        }
        double[] ff = new double[a.length], fg = new double[a.length], gg = new double[a.length];
        int[] fires = new int[a.length], both = new int[a.length];
        int chunk = 4096;
        try (NDManager m = NDManager.newBaseManager()) {
            for (int start = 0; start < n; start += chunk) {
                int rows = Math.min(chunk, n - start);
                float[] fL, fN;
                try (NDManager c = m.newSubManager()) {
                    fL = encode(saeL, c, xL, start, rows, d);
                    fN = encode(saeNext, c, xNext, start, rows, d);
                }
                int dL = saeL.cfg().dSae(), dN = saeNext.cfg().dSae();
                for (int r = 0; r < rows; r++) {
                    for (int k = 0; k < a.length; k++) {
                        double f = fL[r * dL + a[k]];
                        if (f <= 0) continue;
                        double g = fN[r * dN + b[k]];
                        fires[k]++;
                        if (g > 0) both[k]++;
                        ff[k] += f * f;
                        fg[k] += f * g;
                        gg[k] += g * g;
                    }
                }
            }
        }
        List<PairDrift> out = new ArrayList<>();
        double sseLin = 0, sseId = 0, energy = 0;
        double[] raw = new double[a.length], mapped = new double[a.length];
        List<Double> perPair = new ArrayList<>();
        for (int k = 0; k < a.length; k++) {
            float[] u = scaled(decNext[b[k]], 1 / sNext);          // c_{l+1} = g u
            float[] v = scaled(decL[a[k]], 1 / sL);                // c_l = f v
            float[] w = map.applyLinear(v);                        // A c_l = f w
            raw[k] = Vectors.cosine(decL[a[k]], decNext[b[k]]);
            mapped[k] = Vectors.cosine(map.applyLinear(decL[a[k]]), decNext[b[k]]);
            double uu = Vectors.dot(u, u), uw = Vectors.dot(u, w), ww = Vectors.dot(w, w), uv = Vectors.dot(u, v), vv = Vectors.dot(v, v);
            double e = gg[k] * uu;
            double lin = e - 2 * fg[k] * uw + ff[k] * ww;
            double id = e - 2 * fg[k] * uv + ff[k] * vv;
            double linEx = Double.NaN, idEx = Double.NaN, scEx = Double.NaN;
            if (fires[k] > 0 && e > 0) {
                linEx = 1 - lin / e;
                idEx = 1 - id / e;
                scEx = ff[k] * ww == 0 ? 0 : (fg[k] * uw) * (fg[k] * uw) / (e * ff[k] * ww);
                perPair.add(linEx);
            }
            if (fires[k] > 0) {
                sseLin += lin;
                sseId += id;
                energy += e;
            }
            out.add(new PairDrift(a[k], b[k], raw[k], mapped[k], fires[k],
                    fires[k] == 0 ? Double.NaN : (double) both[k] / fires[k], linEx, idEx, scEx, Math.sqrt(ww / vv)));
        }
        Summary s = new Summary(label, a.length, match.matchedFraction(), median(raw), median(mapped),
                energy > 0 ? 1 - sseLin / energy : Double.NaN, energy > 0 ? 1 - sseId / energy : Double.NaN,
                median(perPair.stream().mapToDouble(Double::doubleValue).toArray()),
                median(out.stream().mapToDouble(PairDrift::scaledExplained).filter(v -> !Double.isNaN(v)).toArray()),
                median(out.stream().mapToDouble(PairDrift::mapGain).toArray()), map.fit());
        return new LayerDrift(label, match, out, s);
    }

    /**
     * Drift between every pair of consecutive layers: {@code saes.get(l)} reads rows {@code fitRows.get(l)} and
     * {@code evalRows.get(l)} (row-major {@code [n, dModel]}, the same tokens at every layer); the map
     * {@code l -> l+1} is fitted on {@code fitRows} with relative ridge {@code ridge} and the drift measured on
     * {@code evalRows} (pass the same lists to measure on the fitted rows). Labels are {@code "l -> l+1"}.
     */
    public static List<LayerDrift> acrossLayers(List<SparseCoder> saes, List<float[]> fitRows, List<float[]> evalRows,
                                                double ridge, DictionaryMatch.Options options,
                                                boolean mapBeforeMatching) {
        if (saes.size() < 2 || fitRows.size() != saes.size() || evalRows.size() != saes.size()) {
            throw new IllegalArgumentException("need one dictionary and one set of fit and eval rows per layer, at least "
                    + "two layers; got " + saes.size() + " dictionaries, " + fitRows.size() + " fit and "
                    + evalRows.size() + " eval row sets");
        }
        List<LayerDrift> out = new ArrayList<>();
        for (int l = 0; l + 1 < saes.size(); l++) {
            int d = saes.get(l).cfg().dIn();
            LayerMap map = LayerMap.fit(fitRows.get(l), d, fitRows.get(l + 1), d, ridge);
            out.add(measure(l + " -> " + (l + 1), saes.get(l), saes.get(l + 1), map, evalRows.get(l),
                    evalRows.get(l + 1), options, mapBeforeMatching));
        }
        return out;
    }

    private static float[] encode(SparseCoder sae, NDManager c, float[] x, int start, int rows, int d) {
        float[] slice = new float[rows * d];
        System.arraycopy(x, start * d, slice, 0, rows * d);
        NDArray in = c.create(slice, new Shape(rows, d));
        return sae.encode(in).toFloatArray();
    }

    private static float[] scaled(float[] v, double s) {
        float[] o = new float[v.length];
        for (int i = 0; i < v.length; i++) o[i] = (float) (v[i] * s);
        return o;
    }

    public String label() {
        return label;
    }

    /** The latent matching the pairs come from. */
    public DictionaryMatch match() {
        return match;
    }

    /** Every matched pair's figures. */
    public List<PairDrift> pairs() {
        return pairs;
    }

    public Summary summary() {
        return summary;
    }

    /** One row per matched pair. */
    public Table toTable() {
        IntColumn l = IntColumn.create("latent l"), next = IntColumn.create("latent l+1"), tok = IntColumn.create("tokens");
        DoubleColumn raw = DoubleColumn.create("raw cosine"), mapped = DoubleColumn.create("mapped cosine"),
                co = DoubleColumn.create("co-firing"), lin = DoubleColumn.create("linear explained"),
                id = DoubleColumn.create("identity explained"), rem = DoubleColumn.create("non-linear remainder"),
                sc = DoubleColumn.create("best-scale explained"), gain = DoubleColumn.create("map gain");
        for (PairDrift p : pairs) {
            l.append(p.latentL());
            next.append(p.latentNext());
            raw.append(LayerMap.round(p.rawCosine()));
            mapped.append(LayerMap.round(p.mappedCosine()));
            tok.append(p.tokens());
            co.append(LayerMap.round(p.coFiring()));
            lin.append(LayerMap.round(p.linearExplained()));
            id.append(LayerMap.round(p.identityExplained()));
            rem.append(LayerMap.round(p.nonLinearRemainder()));
            sc.append(LayerMap.round(p.scaledExplained()));
            gain.append(LayerMap.round(p.mapGain()));
        }
        return Table.create("drift " + label, l, next, raw, mapped, tok, co, lin, id, rem, sc, gain);
    }

    /** One row per layer pair: the {@link Summary} figures. */
    public static Table summaryTable(List<LayerDrift> drifts) {
        StringColumn label = StringColumn.create("layers");
        IntColumn pairs = IntColumn.create("pairs");
        Map<String, DoubleColumn> cols = new LinkedHashMap<>();
        for (String c : List.of("matched fraction", "median raw cosine", "median mapped cosine", "linear explained",
                "identity explained", "median pair linear explained", "median best-scale explained", "median map gain",
                "map R^2", "map drift explained")) {
            cols.put(c, DoubleColumn.create(c));
        }
        for (LayerDrift ld : drifts) {
            Summary s = ld.summary();
            label.append(s.label());
            pairs.append(s.pairs());
            double[] v = {s.matchedFraction(), s.medianRawCosine(), s.medianMappedCosine(), s.linearExplained(),
                    s.identityExplained(), s.medianLinearExplained(), s.medianScaledExplained(), s.medianMapGain(),
                    s.mapFit().r2(), s.mapFit().driftExplained()};
            int i = 0;
            for (DoubleColumn c : cols.values()) c.append(LayerMap.round(v[i++]));
        }
        Table t = Table.create("drift across layers", label, pairs);
        cols.values().forEach(t::addColumns);
        return t;
    }

    /** Each matched pair's decoder cosine, raw against after the map. */
    public XYChart chart() {
        double[] x = pairs.stream().mapToDouble(PairDrift::rawCosine).toArray();
        double[] y = pairs.stream().mapToDouble(PairDrift::mappedCosine).toArray();
        return Plots.scatter("decoder cosine " + label, "cos(d_l, d_l+1)", "cos(A d_l, d_l+1)", x, y, null);
    }

    /** Each firing pair's explained fraction of its contribution: identity against the linear map. */
    public XYChart explainedChart() {
        List<PairDrift> firing = pairs.stream().filter(p -> !Double.isNaN(p.linearExplained())).toList();
        double[] x = firing.stream().mapToDouble(PairDrift::identityExplained).toArray();
        double[] y = firing.stream().mapToDouble(PairDrift::linearExplained).toArray();
        return Plots.scatter("contribution explained " + label, "identity", "linear map", x, y, null);
    }

    @Override
    public String toString() {
        return "LayerDrift[" + summary + "]";
    }
}
