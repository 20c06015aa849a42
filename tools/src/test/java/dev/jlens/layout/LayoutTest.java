package dev.jlens.layout;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.spi.ToolProvider;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The layout docs/ARCHITECTURE.md describes: the dev.jlens packages form a DAG and the library holds no tools. */
class LayoutTest {
    private static final Path ROOT = Path.of(System.getProperty("jlens.root", ".."));
    private static final List<String> MODULES = List.of("interp-lib", "kernel-config", "tools");
    private static final Pattern EDGE = Pattern.compile("^\\s+(dev\\.jlens[\\w.]*)\\s+->\\s+(dev\\.jlens[\\w.]*)\\s");

    /** Package dependencies among dev.jlens packages, from jdeps over the compiled modules. */
    static Map<String, Set<String>> packageGraph() {
        ToolProvider jdeps = ToolProvider.findFirst("jdeps").orElseThrow(() -> new AssertionError("this JDK has no jdeps"));
        List<String> args = new ArrayList<>(List.of("-verbose:package", "-filter:none"));
        for (String m : MODULES) {
            Path classes = ROOT.resolve(m).resolve("target/classes");
            // the kernel module builds before this one in the reactor; a build of this module alone may lack it
            if (m.equals("kernel-config") && !Files.isDirectory(classes)) continue;
            assertTrue(Files.isDirectory(classes), "missing compiled classes: " + classes + " (build the project first)");
            args.add(classes.toString());
        }
        StringWriter out = new StringWriter();
        int rc = jdeps.run(new PrintWriter(out), new PrintWriter(out), args.toArray(String[]::new));
        assertEquals(0, rc, out.toString());
        Map<String, Set<String>> g = new TreeMap<>();
        for (String line : out.toString().split("\n")) {
            Matcher m = EDGE.matcher(line);
            if (m.find() && !m.group(1).equals(m.group(2))) {
                g.computeIfAbsent(m.group(1), k -> new TreeSet<>()).add(m.group(2));
            }
        }
        return g;
    }

    /** A cycle as a list of packages (first == last), or empty. */
    static List<String> findCycle(Map<String, Set<String>> g) {
        Map<String, Integer> state = new HashMap<>();
        for (String start : g.keySet()) {
            List<String> path = new ArrayList<>();
            List<String> c = dfs(start, g, state, path);
            if (!c.isEmpty()) return c;
        }
        return List.of();
    }

    private static List<String> dfs(String u, Map<String, Set<String>> g, Map<String, Integer> state, List<String> path) {
        Integer s = state.get(u);
        if (s != null && s == 2) return List.of();
        if (s != null && s == 1) {
            List<String> c = new ArrayList<>(path.subList(path.indexOf(u), path.size()));
            c.add(u);
            return c;
        }
        state.put(u, 1);
        path.add(u);
        for (String v : g.getOrDefault(u, Set.of())) {
            List<String> c = dfs(v, g, state, path);
            if (!c.isEmpty()) return c;
        }
        path.remove(path.size() - 1);
        state.put(u, 2);
        return List.of();
    }

    @Test
    void thePackagesFormADag() {
        Map<String, Set<String>> g = packageGraph();
        assertTrue(g.size() >= 10, "jdeps found too few packages: " + g);
        assertTrue(g.get("dev.jlens.model").contains("dev.jlens.hook"), g.toString());
        assertEquals(List.of(), findCycle(g), "a dependency cycle among dev.jlens packages; the graph: " + g);
    }

    @Test
    void theCycleFinderFindsACycle() {
        Map<String, Set<String>> g = Map.of("a", Set.of("b"), "b", Set.of("c"), "c", Set.of("a"), "d", Set.of("a"));
        List<String> c = findCycle(g);
        assertFalse(c.isEmpty());
        assertEquals(c.get(0), c.get(c.size() - 1));
    }

    @Test
    void displayAndUtilitiesSitAtTheBottomAndTheLibraryHoldsNoTools() throws IOException {
        Map<String, Set<String>> g = packageGraph();
        for (String bottom : List.of("dev.jlens.notebook", "dev.jlens.util")) {
            assertTrue(g.getOrDefault(bottom, Set.of()).isEmpty(), bottom + " depends on " + g.get(bottom));
        }
        Path lib = ROOT.resolve("interp-lib/target/classes/dev/jlens");
        try (Stream<Path> dirs = Files.list(lib)) {
            Set<String> packages = new TreeSet<>(dirs.map(p -> p.getFileName().toString()).toList());
            for (String tool : List.of("cli", "bench", "recipes")) {
                assertFalse(packages.contains(tool), "the library jar holds dev.jlens." + tool + ": " + packages);
            }
            assertTrue(packages.contains("model"), packages.toString());
        }
        assertFalse(Files.exists(lib.resolve("zoo/recipes")), "zoo recipes belong to the tools module");
    }
}
