package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import dev.jlens.util.Names;

import java.util.AbstractMap;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * An unmodifiable, ordered name-to-tensor map whose {@link #get} of an unknown name throws naming the nearest valid
 * names instead of returning null ({@code getOrDefault} and {@code containsKey} still ask without throwing).
 */
final class WeightMap extends AbstractMap<String, NDArray> {
    private final Map<String, NDArray> map;
    private final String what;

    /** {@code what} names the entries in errors, e.g. "parameter". */
    WeightMap(Map<String, NDArray> entries, String what) {
        this.map = Collections.unmodifiableMap(new LinkedHashMap<>(entries));
        this.what = what;
    }

    @Override
    public NDArray get(Object name) {
        NDArray v = map.get(name);
        if (v == null) throw unknown(String.valueOf(name), map.keySet(), what);
        return v;
    }

    /** The error for a name that is not among {@code valid}: it names the nearest ones. */
    static IllegalArgumentException unknown(String name, Set<String> valid, String what) {
        return new IllegalArgumentException("unknown " + what + " '" + name + "'; nearest: "
                + Names.nearest(name, valid, 5) + " (" + valid.size() + " in all)");
    }

    @Override
    public NDArray getOrDefault(Object name, NDArray fallback) {
        return map.getOrDefault(name, fallback);
    }

    @Override
    public boolean containsKey(Object name) {
        return map.containsKey(name);
    }

    @Override
    public Set<Entry<String, NDArray>> entrySet() {
        return map.entrySet();
    }

    @Override
    public int size() {
        return map.size();
    }

    // Compares through the plain map: AbstractMap.equals would call get(), which throws for names not here.
    @Override
    public boolean equals(Object o) {
        return o instanceof WeightMap w ? map.equals(w.map) : map.equals(o);
    }

    @Override
    public int hashCode() {
        return map.hashCode();
    }
}
