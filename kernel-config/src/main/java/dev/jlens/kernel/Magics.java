package dev.jlens.kernel;

import ai.djl.ndarray.NDArray;
import java.io.File;
import java.io.IOException;
import java.lang.reflect.Array;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * The kernel's magics, with the names IPython and IJava users type: {@code %classpath}, {@code %jars},
 * {@code %maven}, {@code %mavenRepo}, {@code %time}/{@code %%time}, {@code %whos} ({@code %vars}) and
 * {@code %lsmagic}. An unknown magic is an error that lists these.
 */
final class Magics implements AutoCloseable {

    /** One magic as {@code %lsmagic} lists it. */
    private record Magic(String name, boolean cell, String usage, String help) {
        String shown() {
            return (cell ? "%%" : "%") + name;
        }
    }

    private static final List<Magic> ALL = List.of(
            new Magic("classpath", false, "%classpath PATH [PATH ...]",
                    "add jars or class directories to the classpath"),
            new Magic("jars", false, "%jars GLOB [GLOB ...]", "add the jars matching each glob (*, ?, **, ~/)"),
            new Magic("maven", false, "%maven [--offline] GROUP:ARTIFACT:VERSION [...]",
                    "resolve artifacts and their runtime dependencies and add them to the classpath"),
            new Magic("mavenRepo", false, "%mavenRepo ID URL", "also search this Maven repository in this session"),
            new Magic("time", false, "%time STATEMENT", "run a statement or expression, print its CPU and wall time"),
            new Magic("whos", false, "%whos", "a table of the session's variables: name, type, value"),
            new Magic("vars", false, "%vars", "the same as %whos"),
            new Magic("lsmagic", false, "%lsmagic", "list the magics"),
            new Magic("time", true, "%%time", "run the cell, print its CPU and wall time"));

    private static final long COMPILE_NOTE_NANOS = 100_000_000L;

    private final Session session;
    private final MavenResolver maven = new MavenResolver();

    Magics(Session session) {
        this.session = session;
    }

    /** Runs the line magic {@code %name args} found on cell line {@code line}. */
    Object line(String name, String args, int executionCount, int line) {
        return switch (name) {
            case "classpath" -> classpath(args);
            case "jars" -> jars(args);
            case "maven" -> maven(args);
            case "mavenRepo" -> mavenRepo(args);
            case "time" -> {
                if (args.isBlank()) {
                    throw usage("time", "%time needs a statement or expression to run");
                }
                yield timed(() -> session.evalLines(args, executionCount, line));
            }
            case "whos", "vars" -> whos();
            case "lsmagic" -> {
                System.out.println(listing());
                yield Session.NO_RESULT;
            }
            default -> throw unknown("%" + name);
        };
    }

    /** Runs the cell magic {@code %%name args} on the rest of the cell, which starts at cell line {@code line}. */
    Object cell(String name, String args, String body, int executionCount, int line) {
        if (name.equals("time")) {
            return timed(() -> session.evalLines(body, executionCount, line));
        }
        throw unknown("%%" + name);
    }

    /** Lines of {@code %lsmagic}: usage and purpose of each magic. */
    static String listing() {
        int width = ALL.stream().mapToInt(m -> m.usage().length()).max().orElse(0) + 2;
        StringBuilder sb = new StringBuilder("Line magics:\n");
        ALL.stream().filter(m -> !m.cell()).forEach(m -> sb.append(row(m, width)));
        sb.append("Cell magics (first line of a cell):\n");
        ALL.stream().filter(Magic::cell).forEach(m -> sb.append(row(m, width)));
        return sb.toString().stripTrailing();
    }

    private static String row(Magic m, int width) {
        return "  " + m.usage() + " ".repeat(width - m.usage().length()) + m.help() + "\n";
    }

    private static CellError unknown(String shown) {
        String available = ALL.stream().map(Magic::shown).distinct().collect(Collectors.joining(", "));
        String msg = "unknown magic " + shown + "; available: " + available;
        return new CellError("MagicError", msg, List.of("MagicError: " + msg, "(%lsmagic lists what each does)"));
    }

    private static CellError usage(String name, String problem) {
        String usages = ALL.stream().filter(m -> m.name().equals(name) && !m.cell()).map(Magic::usage)
                .collect(Collectors.joining(" | "));
        return new CellError("MagicError", problem, List.of("MagicError: " + problem, "usage: " + usages));
    }

    // ---- %classpath, %jars ----------------------------------------------------------------------------------

    private Object classpath(String args) {
        if (args.isEmpty()) {
            throw usage("classpath", "%classpath needs a path (" + File.pathSeparator + "-separated also works)");
        }
        List<String> added = new ArrayList<>();
        for (String part : args.split("[\\s" + File.pathSeparator + "]+")) {
            Path p = expandHome(part).toAbsolutePath().normalize();
            if (!Files.exists(p)) {
                throw new CellError("MagicError", "%classpath: no such file or directory: " + p,
                        List.of("%classpath: no such file or directory: " + p));
            }
            session.addToClasspath(p);
            added.add(p.toString());
        }
        System.out.println("added to classpath: " + String.join(", ", added));
        return Session.NO_RESULT;
    }

    private Object jars(String args) {
        if (args.isBlank()) {
            throw usage("jars", "%jars needs a glob, e.g. %jars lib/*.jar");
        }
        List<Path> added = new ArrayList<>();
        for (String glob : args.split("\\s+")) {
            List<Path> jars = glob(glob).stream().filter(p -> p.getFileName().toString().endsWith(".jar")).toList();
            if (jars.isEmpty()) {
                Path where = expandHome(glob).toAbsolutePath().normalize();
                throw new CellError("MagicError", "%jars: no jar matches " + glob,
                        List.of("%jars: no jar matches " + glob + " (looked for " + where + ")"));
            }
            for (Path jar : jars) {
                session.addToClasspath(jar);
                added.add(jar);
            }
        }
        System.out.println("added to classpath: " + added.size() + " jar" + (added.size() == 1 ? "" : "s") + " ("
                + added.stream().map(p -> p.getFileName().toString()).collect(Collectors.joining(", ")) + ")");
        return Session.NO_RESULT;
    }

    /** Files matching a glob ({@code *} and {@code ?} within a name, {@code **} across directories), sorted. */
    static List<Path> glob(String pattern) {
        Path path = expandHome(pattern).toAbsolutePath().normalize();
        int literal = 0;
        while (literal < path.getNameCount() && !hasGlobChars(path.getName(literal).toString())) {
            literal++;
        }
        if (literal == path.getNameCount()) {
            return Files.isRegularFile(path) ? List.of(path) : List.of();
        }
        Path base = literal == 0 ? path.getRoot() : path.getRoot().resolve(path.subpath(0, literal));
        int depth = pattern.contains("**") ? Integer.MAX_VALUE : path.getNameCount() - literal;
        PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + path);
        if (!Files.isDirectory(base)) {
            return List.of();
        }
        try (Stream<Path> files = Files.walk(base, depth)) {
            return files.filter(Files::isRegularFile).filter(matcher::matches).sorted().toList();
        } catch (IOException | java.io.UncheckedIOException e) {
            throw new CellError("MagicError", "%jars: cannot list " + base + ": " + e.getMessage(),
                    List.of("%jars: cannot list " + base + ": " + e));
        }
    }

    private static boolean hasGlobChars(String s) {
        return s.chars().anyMatch(c -> c == '*' || c == '?' || c == '[' || c == '{');
    }

    private static Path expandHome(String path) {
        if (path.equals("~") || path.startsWith("~/")) {
            return Path.of(System.getProperty("user.home") + path.substring(1));
        }
        return Path.of(path);
    }

    // ---- %maven, %mavenRepo ---------------------------------------------------------------------------------

    private Object maven(String args) {
        List<String> coordinates = new ArrayList<>();
        boolean offline = false;
        for (String a : args.split("\\s+")) {
            if (a.isEmpty()) {
                continue;
            }
            if (a.equals("--offline")) {
                offline = true;
            } else if (a.startsWith("-")) {
                throw usage("maven", "%maven: unknown option " + a + " (the only option is --offline)");
            } else {
                coordinates.add(a);
            }
        }
        if (coordinates.isEmpty()) {
            throw usage("maven", "%maven needs coordinates, e.g. %maven com.google.guava:guava:33.4.0-jre");
        }
        MavenResolver.Resolution r = maven.resolve(coordinates, offline);
        for (Path jar : r.jars()) {
            session.addToClasspath(jar);
        }
        for (String note : r.notes()) {
            System.out.println(note);
        }
        System.out.println("added to classpath: " + r.jars().size() + " jar" + (r.jars().size() == 1 ? "" : "s")
                + (r.jars().isEmpty() ? "" : " (" + r.jars().stream().map(p -> p.getFileName().toString())
                        .collect(Collectors.joining(", ")) + ")"));
        return Session.NO_RESULT;
    }

    private Object mavenRepo(String args) {
        String[] parts = args.split("\\s+");
        if (parts.length != 2 || parts[0].isEmpty()) {
            throw usage("mavenRepo", "%mavenRepo needs an id and a URL, e.g. %mavenRepo jitpack https://jitpack.io");
        }
        maven.addRepository(parts[0], parts[1]);
        System.out.println("Maven repositories: " + String.join(", ", maven.repositoryUrls()));
        return Session.NO_RESULT;
    }

    // ---- %time, %%time --------------------------------------------------------------------------------------

    /** Runs code, then prints IPython's CPU and wall time lines (also when the code fails). */
    private Object timed(Supplier<Object> code) {
        ExecutionTimes times = new ExecutionTimes();
        long start = System.nanoTime();
        session.control().measure(times);
        try {
            return code.get();
        } finally {
            session.control().measure(null);
            long compile = System.nanoTime() - start - times.wallNanos();
            System.out.println(times.format());
            if (compile > COMPILE_NOTE_NANOS) {
                System.out.println("Compiler time: " + ExecutionTimes.duration(compile));
            }
        }
    }

    // ---- %whos ----------------------------------------------------------------------------------------------

    private Object whos() {
        List<Session.Variable> vars = session.variables();
        if (vars.isEmpty()) {
            System.out.println("Interactive namespace is empty.");
            return Session.NO_RESULT;
        }
        List<String> infos;
        try {
            // Summaries read user objects (toString, size): on the cell thread, within the rendering time limit.
            infos = session.callOnWorker(() -> vars.stream().map(v -> summarize(v.value())).toList(),
                    KernelRenderer.LIMIT_MILLIS);
        } catch (WorkerExecutionControl.TimeLimitException | WorkerExecutionControl.InterruptedByUserException
                 | ExecutionException e) {
            infos = vars.stream().map(v -> KernelRenderer.identity(v.value())).toList();
        }
        return Table.create("variables",
                StringColumn.create("Variable", vars.stream().map(Session.Variable::name).toList()),
                StringColumn.create("Type", vars.stream().map(Session.Variable::type).toList()),
                StringColumn.create("Data/Info", infos));
    }

    /** A one-line description of a value: sizes for arrays, collections, tables and tensors; else toString. */
    static String summarize(Object v) {
        try {
            if (v == null) {
                return "null";
            }
            if (v.getClass().isArray()) {
                int n = Array.getLength(v);
                StringBuilder sb = new StringBuilder(n + (n == 1 ? " element" : " elements"));
                if (n > 0 && !v.getClass().getComponentType().isArray()) {
                    sb.append(": [");
                    for (int i = 0; i < Math.min(n, 5); i++) {
                        sb.append(i == 0 ? "" : ", ").append(clip(String.valueOf(Array.get(v, i)), 20));
                    }
                    sb.append(n > 5 ? ", ...]" : "]");
                }
                return sb.toString();
            }
            if (v instanceof CharSequence s) {
                return clip("\"" + s + "\"", 80);
            }
            if (v instanceof Collection<?> c) {
                return c.size() + (c.size() == 1 ? " element" : " elements");
            }
            if (v instanceof Map<?, ?> m) {
                return m.size() + (m.size() == 1 ? " entry" : " entries");
            }
            if (v instanceof Table t) {
                return t.rowCount() + " rows \u00d7 " + t.columnCount() + " columns";
            }
            if (v instanceof NDArray a) {
                return a.isReleased() ? "released NDArray" : a.getDataType() + " " + a.getShape();
            }
            String text = String.valueOf(v).lines().findFirst().orElse("");
            return clip(text.replaceAll("REPL\\.\\$JShell\\$\\d+\\$", ""), 80); // JShell's wrapper-class prefix
        } catch (RuntimeException e) {
            return KernelRenderer.identity(v) + " (summary failed: " + e.getClass().getSimpleName() + ")";
        }
    }

    private static String clip(String s, int max) {
        return s.length() <= max ? s : s.substring(0, max - 3) + "...";
    }

    @Override
    public void close() {
        maven.close();
    }
}
