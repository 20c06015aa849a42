package dev.jlens.hook;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The hook points of one model, in forward order, looked up by name. */
public final class HookRegistry {
    private final Map<String, HookPoint> points = new LinkedHashMap<>();

    /** Declares a hook point; names must be unique. */
    public HookPoint declare(String name) {
        HookPoint p = new HookPoint(name);
        if (points.putIfAbsent(name, p) != null) throw new IllegalStateException("duplicate hook point " + name);
        return p;
    }

    /**
     * Declares hook points at run time, placed right after {@code anchor} in forward order (for components attached
     * to a model, such as an SAE's own hook points); closing the returned scope removes them with their hooks.
     */
    public HookScope declareAfter(String anchor, List<String> names) {
        if (!points.containsKey(anchor)) throw unknown(anchor);
        for (String n : names) {
            if (points.containsKey(n)) throw new IllegalStateException("duplicate hook point " + n);
        }
        if (new java.util.HashSet<>(names).size() != names.size()) {
            throw new IllegalArgumentException("hook point names repeat: " + names);
        }
        // LinkedHashMap cannot insert in the middle: rebuild it (a few hundred entries, once per attach).
        Map<String, HookPoint> rebuilt = new LinkedHashMap<>();
        for (Map.Entry<String, HookPoint> e : points.entrySet()) {
            rebuilt.put(e.getKey(), e.getValue());
            if (e.getKey().equals(anchor)) for (String n : names) rebuilt.put(n, new HookPoint(n));
        }
        points.clear();
        points.putAll(rebuilt);
        HookScope scope = new HookScope();
        for (String n : names) {
            HookPoint p = points.get(n);
            scope.added(n, () -> {
                // remove only the point this scope declared, even if the name was later reused
                if (points.get(n) == p) {
                    p.clear();
                    points.remove(n);
                }
            });
        }
        return scope;
    }

    /** The hook point {@code name}; an unknown name throws and suggests the nearest names. */
    public HookPoint get(String name) {
        HookPoint p = points.get(name);
        if (p == null) throw unknown(name);
        return p;
    }

    /** True if a hook point has this exact name. */
    public boolean contains(String name) {
        return points.containsKey(name);
    }

    /** All hook-point names in forward order. */
    public List<String> names() {
        return List.copyOf(points.keySet());
    }

    /** All hook points in forward order. */
    public Collection<HookPoint> points() {
        return points.values();
    }

    /** Attaches hooks inside a scope that removes them on close. */
    public HookScope attach(List<Hook> hooks) {
        // Resolve every name first so a typo attaches nothing.
        List<HookPoint> resolved = new ArrayList<>();
        for (Hook h : hooks) resolved.add(get(h.name()));
        HookScope scope = new HookScope();
        for (int i = 0; i < hooks.size(); i++) {
            Hook h = hooks.get(i);
            HookPoint p = resolved.get(i);
            Runnable remover = h.direction() == Hook.Direction.FORWARD ? p.addForward(h.fn()) : p.addBackward(h.fn());
            scope.added(h.name(), remover);
        }
        return scope;
    }

    /** Removes every hook from every point. */
    public void resetHooks() {
        points.values().forEach(HookPoint::clear);
    }

    /** Selected hook-point names. */
    public List<String> select(NameFilter filter) {
        List<String> out = new ArrayList<>();
        for (String n : points.keySet()) if (filter.test(n)) out.add(n);
        return out;
    }

    private IllegalArgumentException unknown(String name) {
        List<String> near = nearest(name, 5);
        return new IllegalArgumentException("unknown hook point '" + name + "'. Nearest: " + near
                + ". See model.hookNames() for all " + points.size() + " names.");
    }

    /** The {@code k} names closest to {@code name} by edit distance. */
    public List<String> nearest(String name, int k) {
        return dev.jlens.util.Names.nearest(name, points.keySet(), k);
    }
}
