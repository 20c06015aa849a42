package dev.jlens.zoo;

import dev.jlens.data.Split;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a {@link Recipe} measured on a model: named metrics over the first {@code examples} examples of a split.
 *
 * @param model    the zoo model's name
 * @param split    the split evaluated (always {@link Split#TEST} for the zoo's numbers)
 * @param examples how many examples (or problems) per measurement
 * @param metrics  metric name to value, in a stable order
 * @param seconds  wall time of the evaluation
 */
public record Evaluation(String model, Split split, int examples, Map<String, Double> metrics, double seconds) {

    public Evaluation {
        metrics = Collections.unmodifiableMap(new LinkedHashMap<>(metrics));
    }

    /** The metric {@code name}; throws naming the metrics there are. */
    public double get(String name) {
        Double v = metrics.get(name);
        if (v == null) throw new IllegalArgumentException("no metric '" + name + "'; " + model + " has " + metrics.keySet());
        return v;
    }

    /** The bars that this evaluation misses (empty when every bar is met). */
    public List<Bar> missed(List<Bar> bars) {
        List<Bar> out = new ArrayList<>();
        for (Bar b : bars) if (!b.met(metrics)) out.add(b);
        return out;
    }

    /** The metrics as a two-column table. */
    public Table table() {
        StringColumn names = StringColumn.create("metric");
        DoubleColumn values = DoubleColumn.create("value");
        metrics.forEach((k, v) -> {
            names.append(k);
            values.append(v);
        });
        return Table.create(model + " on " + split.name().toLowerCase(Locale.ROOT) + " (" + examples + " examples)",
                names, values);
    }

    /** A metric as the manifest and the tables print it (4 significant digits). */
    public static String format(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e9) return Long.toString((long) v);
        String s = String.format(Locale.ROOT, "%.4g", v);
        // 4 significant digits without padding zeros: 0.125, not 0.1250
        if (s.contains(".") && !s.contains("e")) s = s.replaceAll("0+$", "").replaceAll("\\.$", "");
        return s;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("Evaluation(").append(model).append(", ").append(examples)
                .append(" ").append(split.name().toLowerCase(Locale.ROOT)).append(" examples");
        metrics.forEach((k, v) -> s.append(", ").append(k).append('=').append(format(v)));
        return s.append(String.format(Locale.ROOT, ", %.1f s)", seconds)).toString();
    }
}
