package dev.jlens.probe;

import dev.jlens.probe.LinearProbe;
import dev.jlens.probe.ProbeData;
import dev.jlens.probe.ProbeMethod;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * One binary concept to evaluate a dictionary on: raw activation rows labelled 1 where the concept holds, split into
 * training rows (probes are fitted and latents chosen on them) and held-out test rows (everything is scored on them).
 *
 * @param name  the concept ({@code "s"} for words starting with s, {@code "noun"}, ...)
 * @param train rows to fit on (both classes present)
 * @param test  held-out rows (both classes present), of the same width
 */
public record ProbeTask(String name, ProbeData train, ProbeData test) {

    /** Checks the classes and widths. */
    public ProbeTask {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("a task needs a name");
        if (train == null || test == null) throw new IllegalArgumentException("task '" + name + "' needs train and test rows");
        if (train.nClasses() != 2 || test.nClasses() != 2) {
            throw new IllegalArgumentException("task '" + name + "' must be binary (label 1 where the concept holds); "
                    + "got " + train.nClasses() + " and " + test.nClasses() + " classes");
        }
        if (train.dim() != test.dim()) {
            throw new IllegalArgumentException("task '" + name + "': train rows have " + train.dim() + " values, test rows "
                    + test.dim());
        }
    }

    /**
     * Splits labelled rows by group: a row goes to test when its group (e.g. its sequence) is in the test part
     * ({@code group % folds == 0}), so no sequence is on both sides.
     */
    public static ProbeTask byGroup(String name, ProbeData rows, int folds) {
        if (folds < 2) throw new IllegalArgumentException("folds must be >= 2 (1 / folds of the groups are test), got " + folds);
        List<Integer> tr = new ArrayList<>(), te = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) (Math.floorMod(rows.groups()[i], folds) == 0 ? te : tr).add(i);
        return new ProbeTask(name, rows.subset(tr.stream().mapToInt(Integer::intValue).toArray()),
                rows.subset(te.stream().mapToInt(Integer::intValue).toArray()));
    }

    // Probe fits are deterministic, so the full probe of a task is fitted once per method and shared by every
    // evaluation and seed that asks for it (keyed by the training rows' identity: a record of arrays).
    private static final Map<ProbeData, Map<ProbeMethod, LinearProbe>> FITTED = new WeakHashMap<>();

    /** The probe {@code method} fits on the training rows (fitted once, then reused). */
    public LinearProbe probe(ProbeMethod method) {
        synchronized (FITTED) {
            Map<ProbeMethod, LinearProbe> byMethod = FITTED.computeIfAbsent(train, k -> new HashMap<>());
            LinearProbe p = byMethod.get(method);
            if (p == null) {
                p = method.fit(train);
                byMethod.put(method, p);
            }
            return p;
        }
    }

    /** Dimension of a row. */
    public int dim() {
        return train.dim();
    }

    @Override
    public String toString() {
        return "ProbeTask(" + name + ": train " + train + ", test " + test + ")";
    }
}
