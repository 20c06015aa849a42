package dev.jlens.useful;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A binary task with train, validation and test rows, seen through several views of the same rows (residual stream
 * per layer, dictionary latents, problem features, output confidence, token counts, ...). Every method gets the same
 * rows of a view: it is fitted on train, its hyperparameters are chosen on validation, and it is scored on test.
 *
 * @param name       the task, e.g. {@code thinker-errors}
 * @param train      labels of the training rows (0 or 1)
 * @param validation labels of the validation rows
 * @param test       labels of the test rows
 * @param views      each view's rows, in the order of the labels
 * @param notes      how the task was built (sizes, rates, settings), for the notebook
 */
public record UsefulTask(String name, int[] train, int[] validation, int[] test, Map<String, View> views,
        Map<String, String> notes) {

    /** One view's rows for the three splits. */
    public record View(float[][] train, float[][] validation, float[][] test) {
        /** Checks that the three parts have rows of one width. */
        public View {
            if (train == null || validation == null || test == null) {
                throw new IllegalArgumentException("a view needs train, validation and test rows");
            }
            int d = -1;
            for (float[][] part : List.of(train, validation, test)) {
                for (float[] r : part) {
                    if (d < 0) d = r.length;
                    if (r.length != d) throw new IllegalArgumentException("a view's rows have " + d + " and "
                            + r.length + " columns");
                }
            }
        }

        /** Width of a row. */
        public int dim() {
            return train.length > 0 ? train[0].length : test[0].length;
        }
    }

    /** Checks that each view has one row per label. */
    public UsefulTask {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("a task needs a name");
        if (views == null || views.isEmpty()) throw new IllegalArgumentException("task '" + name + "' has no views");
        for (Map.Entry<String, View> e : views.entrySet()) {
            View v = e.getValue();
            if (v.train().length != train.length || v.validation().length != validation.length
                    || v.test().length != test.length) {
                throw new IllegalArgumentException("view '" + e.getKey() + "' of task '" + name + "' has "
                        + v.train().length + "/" + v.validation().length + "/" + v.test().length
                        + " rows; the labels are " + train.length + "/" + validation.length + "/" + test.length);
            }
        }
        requireTestBothClasses(name, test);
        views = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(views));
        notes = notes == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(notes));
    }

    /** The view called {@code name}; an unknown one throws naming those there are. */
    public View view(String viewName) {
        View v = views.get(viewName);
        if (v == null) {
            throw new IllegalArgumentException("task '" + name + "' has no view '" + viewName + "'; it has "
                    + views.keySet());
        }
        return v;
    }

    /** The same task with other test labels (rows unchanged): for checking that nothing reads them. */
    public UsefulTask withTestLabels(int[] labels) {
        return new UsefulTask(name, train, validation, labels, views, notes);
    }

    /** The same task with one view's test rows replaced. */
    public UsefulTask withTestRows(String viewName, float[][] rows) {
        View v = view(viewName);
        Map<String, View> m = new LinkedHashMap<>(views);
        m.put(viewName, new View(v.train(), v.validation(), rows));
        return new UsefulTask(name, train, validation, test, m, notes);
    }

    /** Positives among train, validation and test rows. */
    public int[] positives() {
        return new int[] {Arrays.stream(train).sum(), Arrays.stream(validation).sum(), Arrays.stream(test).sum()};
    }

    private static void requireTestBothClasses(String name, int[] test) {
        int pos = Arrays.stream(test).sum();
        if (pos == 0 || pos == test.length) {
            throw new IllegalArgumentException("task '" + name + "' needs both classes among its test rows; got "
                    + pos + " positives of " + test.length);
        }
    }

    @Override
    public String toString() {
        int[] p = positives();
        return "UsefulTask(" + name + ": train " + train.length + " (" + p[0] + " positive), validation "
                + validation.length + " (" + p[1] + "), test " + test.length + " (" + p[2] + "); views "
                + views.entrySet().stream().map(e -> e.getKey() + "[" + e.getValue().dim() + "]")
                .collect(Collectors.joining(", ")) + ")";
    }
}
