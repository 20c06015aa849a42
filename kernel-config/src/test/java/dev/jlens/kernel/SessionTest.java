package dev.jlens.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.Table;

/** The cell evaluator on its own (no Jupyter): splitting, results, errors, magics, interrupts, exit calls. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SessionTest {

    private Session session;
    private int count;

    @BeforeAll
    void start() {
        session = Session.start();
    }

    @AfterAll
    void stop() {
        session.close();
    }

    private Object eval(String cell) {
        return session.evalCell(cell, ++count);
    }

    private CellError fails(String cell) {
        return assertThrows(CellError.class, () -> eval(cell));
    }

    /** What the code prints on System.out (where magics print, as in a notebook cell). */
    private static String stdout(Runnable code) {
        PrintStream old = System.out;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buffer, true, StandardCharsets.UTF_8));
        try {
            code.run();
        } finally {
            System.setOut(old);
        }
        return buffer.toString(StandardCharsets.UTF_8);
    }

    private static double wallMillis(String timeOutput) {
        return millis(timeOutput.replaceFirst("(?s).*Wall time: (\\S+ \\S+).*", "$1"));
    }

    private static double millis(String duration) {
        String[] p = duration.trim().split(" ");
        double v = Double.parseDouble(p[0]);
        return switch (p[1]) {
            case "s" -> v * 1e3;
            case "ms" -> v;
            case "\u00b5s" -> v / 1e3;
            case "ns" -> v / 1e6;
            default -> throw new AssertionError("unit in " + duration);
        };
    }

    /** Waits until the cell's code runs (JShell compiles first; an interrupt test must not race that). */
    private void awaitRunning(CompletableFuture<Object> cell) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!session.isRunning() && !cell.isDone() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        Thread.sleep(200);
    }

    @Test
    void lastExpressionIsTheResultUnlessItEndsWithSemicolon() {
        assertEquals(42, eval("40 + 2"));
        assertEquals(7, eval("int a = 3;\nint b = 4;\n// the sum\na + b"));
        assertSame(Session.NO_RESULT, eval("a + b;"));
        assertSame(Session.NO_RESULT, eval("int c = 9"));
        assertSame(Session.NO_RESULT, eval("c = 10"));
        assertEquals(10, eval("c"));
        assertSame(Session.NO_RESULT, eval("   \n// only a comment\n"));
        assertEquals("x", eval("String s() { return \"x\"; }\ns()"));
    }

    @Test
    void projectAndLibraryPackagesAreImported() {
        Object t = eval("Table.create(\"t\", IntColumn.create(\"a\", 1, 2))");
        assertTrue(t instanceof Table, String.valueOf(t));
        assertEquals(2, ((Table) t).rowCount());
        assertEquals(true, eval("Display.hasRenderer(Table.class)"));
        assertEquals("[2, 3]", eval("new Shape(2, 3).toString()").toString().replace("(", "[").replace(")", "]"));
    }

    @Test
    void compileErrorNamesTheLineAndShowsTheCode() {
        CellError e = fails("int ok = 1;\n\n// comment\nint bad = missing * 2;");
        assertEquals("CompileError", e.ename());
        assertTrue(e.evalue().startsWith("cannot find symbol"), e.evalue());
        assertEquals(List.of("CompileError at line 4: cannot find symbol\n  symbol:   variable missing",
                "    int bad = missing * 2;", "              ^-----^"), e.traceback());
        assertEquals(1, eval("ok"), "snippets before the error stay defined");
    }

    @Test
    void incompleteCodeIsACompileError() {
        CellError e = fails("int q = 1;\nfoo(1,");
        assertEquals("CompileError", e.ename());
        assertTrue(e.evalue().contains("incomplete code at line 2"), e.evalue());
    }

    @Test
    void runtimeErrorShowsUserFramesAndCauses() {
        CellError e = fails("void inner() {\n  throw new IllegalArgumentException(\"bad arg\",\n"
                + "      new java.io.IOException(\"disk\"));\n}\nvoid outer() { inner(); }\nouter();");
        assertEquals("IllegalArgumentException", e.ename());
        assertEquals("bad arg", e.evalue());
        List<String> tb = e.traceback();
        assertEquals("java.lang.IllegalArgumentException: bad arg", tb.get(0));
        assertEquals("    at inner (In [" + count + "] line 2)", tb.get(1));
        assertEquals("    at outer (In [" + count + "] line 5)", tb.get(2));
        assertEquals("    at <cell> (In [" + count + "] line 6)", tb.get(3));
        assertTrue(tb.contains("Caused by: java.io.IOException: disk"), tb.toString());
        assertFalse(String.join("\n", tb).contains("dev.jlens.kernel"), tb.toString());
    }

    @Test
    void libraryFramesAreKeptAboveTheCell() {
        CellError e = fails("java.util.List.of(1).get(5)");
        assertEquals("IndexOutOfBoundsException", e.ename());
        assertTrue(e.traceback().stream().anyMatch(l -> l.contains("at java.base/java.util.ImmutableCollections")),
                e.traceback().toString());
        assertTrue(e.traceback().get(e.traceback().size() - 1).contains("<cell> (In [" + count + "] line 1)"));
    }

    @Test
    void usingAClosedArrayExplainsWhatClosedItAndHowToKeepOne() {
        eval("var closedMgr = ai.djl.ndarray.NDManager.newBaseManager();\n"
                + "var closedArr = closedMgr.ones(new ai.djl.ndarray.types.Shape(2));\nclosedMgr.close();");
        for (String use : List.of("closedArr.toFloatArray()", "closedArr.add(1)")) {
            CellError e = fails(use);
            assertEquals("IllegalStateException", e.ename(), use);
            assertTrue(e.evalue().endsWith(ClosedArrayHint.EVALUE_SUFFIX), e.evalue());
            assertTrue(e.evalue().startsWith(ClosedArrayHint.RELEASED)
                    || e.evalue().startsWith(ClosedArrayHint.MANAGER_CLOSED), e.evalue());
            List<String> tb = e.traceback();
            assertTrue(tb.get(0).startsWith("java.lang.IllegalStateException: "), tb.toString());
            assertEquals(ClosedArrayHint.NOTE, tb.get(tb.size() - 1));
        }
        CellError other = fails("throw new IllegalStateException(\"something else\")");
        assertEquals("something else", other.evalue());
        assertFalse(other.traceback().contains(ClosedArrayHint.NOTE));
    }

    @Test
    void magics() throws Exception {
        CellError unknown = fails("%timeit 1 + 1");
        assertEquals("MagicError", unknown.ename());
        assertTrue(unknown.evalue().contains("%timeit"), unknown.evalue());
        for (String magic : List.of("%classpath", "%jars", "%maven", "%mavenRepo", "%time", "%whos", "%vars",
                "%lsmagic", "%%time")) {
            assertTrue(unknown.evalue().contains(magic), "unknown-magic error should list " + magic + ": "
                    + unknown.evalue());
        }
        CellError unknownCell = fails("%%nope\n1 + 1");
        assertTrue(unknownCell.evalue().contains("%%nope") && unknownCell.evalue().contains("%%time"),
                unknownCell.evalue());
        CellError misplaced = fails("int before = 1;\n%%time\n2");
        assertTrue(misplaced.evalue().contains("first line"), misplaced.evalue());
        CellError missing = fails("%classpath /definitely/not/here.jar");
        assertTrue(missing.evalue().contains("/definitely/not/here.jar"), missing.evalue());
    }

    @Test
    void lsmagicListsEveryMagicWithItsUsage() {
        String out = stdout(() -> eval("%lsmagic"));
        for (String usage : List.of("%classpath PATH", "%jars GLOB", "%maven [--offline] GROUP:ARTIFACT:VERSION",
                "%mavenRepo ID URL", "%time STATEMENT", "%whos", "%vars", "%lsmagic", "%%time")) {
            assertTrue(out.contains(usage), usage + " missing from:\n" + out);
        }
    }

    @Test
    void timeMagicsPrintCpuAndWallTimeAndKeepTheValue() {
        Object[] value = new Object[1];
        String line = stdout(() -> value[0] = eval("%time Thread.sleep(300); 6 * 7"));
        assertEquals(42, value[0], "%time returns the value of what it ran");
        assertTrue(line.matches("(?s)CPU times: user \\S+ \\S+, sys \\S+ \\S+, total: \\S+ \\S+\nWall time: .*"), line);
        double wallMs = wallMillis(line);
        assertTrue(wallMs >= 300 && wallMs < 10_000, "wall time of a 300 ms sleep: " + line);

        String cell = stdout(() -> value[0] = eval("%%time\nlong spin = 0;\n"
                + "for (long t = System.nanoTime(); System.nanoTime() - t < 400_000_000L; ) { spin++; }\nspin > 0"));
        assertEquals(true, value[0]);
        assertTrue(wallMillis(cell) >= 400, cell);
        double userMs = millis(cell.replaceFirst("(?s).*CPU times: user (\\S+ \\S+),.*", "$1"));
        assertTrue(userMs >= 50, "a 400 ms busy loop should show CPU time: " + cell);
        CellError usage = fails("%time");
        assertTrue(usage.evalue().contains("statement"), usage.evalue());
    }

    @Test
    void durationsReadLikeIpython() {
        assertEquals("0 ns", ExecutionTimes.duration(0));
        assertEquals("1.5 \u00b5s", ExecutionTimes.duration(1_500));
        assertEquals("301 ms", ExecutionTimes.duration(301_000_000));
        assertEquals("12.3 s", ExecutionTimes.duration(12_345_000_000L));
        assertEquals("2min 5s", ExecutionTimes.duration(125_000_000_000L));
    }

    @Test
    void whosListsVariablesWithTypesAndSummaries() {
        eval("int count = 3;\nString greeting = \"hi\";\nlong[] ids = {5, 6, 7};\n"
                + "var scores = Table.create(\"scores\", IntColumn.create(\"a\", 1, 2));\nObject nothing = null;");
        for (String magic : List.of("%whos", "%vars")) {
            Object r = eval(magic);
            assertTrue(r instanceof Table, magic + " should give a Table: " + r);
            Table t = (Table) r;
            assertEquals(List.of("Variable", "Type", "Data/Info"), t.columnNames());
            List<String> names = t.stringColumn("Variable").asList();
            int i = names.indexOf("ids");
            assertTrue(i >= 0 && names.containsAll(List.of("count", "greeting", "scores", "nothing")), names.toString());
            assertFalse(names.stream().anyMatch(n -> n.startsWith("$")), "JShell's $ variables are not listed");
            assertEquals("long[]", t.stringColumn("Type").get(i));
            assertEquals("3 elements: [5, 6, 7]", t.stringColumn("Data/Info").get(i));
            assertEquals("\"hi\"", t.stringColumn("Data/Info").get(names.indexOf("greeting")));
            assertEquals("2 rows \u00d7 1 columns", t.stringColumn("Data/Info").get(names.indexOf("scores")));
            assertEquals("null", t.stringColumn("Data/Info").get(names.indexOf("nothing")));
        }
    }

    @Test
    void jarsMagicAddsEveryJarMatchingAGlob(@TempDir Path dir) throws Exception {
        Path src = dir.resolve("src/globbed/Hello.java");
        Files.createDirectories(src.getParent());
        Files.writeString(src, "package globbed; public class Hello { public static int two() { return 2; } }");
        Path classes = Files.createDirectories(dir.resolve("classes"));
        assertEquals(0, ToolProvider.getSystemJavaCompiler().run(null, null, null, "-d", classes.toString(),
                src.toString()));
        Path lib = Files.createDirectories(dir.resolve("lib/nested"));
        try (var out = new java.util.jar.JarOutputStream(Files.newOutputStream(lib.resolve("hello-1.0.jar")))) {
            out.putNextEntry(new java.util.jar.JarEntry("globbed/Hello.class"));
            out.write(Files.readAllBytes(classes.resolve("globbed/Hello.class")));
            out.closeEntry();
        }
        Files.writeString(lib.resolve("notes.txt"), "not a jar");
        assertEquals(List.of(lib.resolve("hello-1.0.jar")), Magics.glob(dir + "/lib/**/*.jar"));
        assertEquals(List.of(), Magics.glob(dir + "/lib/*.jar"), "* does not cross directories");
        String out = stdout(() -> assertEquals(2, eval("%jars " + dir + "/lib/*/hello-*.jar\nglobbed.Hello.two()")));
        assertTrue(out.contains("hello-1.0.jar"), out);
        CellError none = fails("%jars " + dir + "/nothing/*.jar");
        assertTrue(none.evalue().contains("no jar matches") && none.evalue().contains("nothing/*.jar"), none.evalue());
    }

    @Test
    void mavenMagicResolvesTransitiveRuntimeDependenciesFromARepository(@TempDir Path dir) throws Exception {
        Path localRepo = dir.resolve("m2");
        try (FakeMavenRepository repo = new FakeMavenRepository(dir.resolve("fake"))) {
            System.setProperty("maven.repo.local", localRepo.toString());
            System.setProperty("jlens.maven.repos", repo.url());
            try {
                String out = stdout(() -> assertSame(Session.NO_RESULT, eval("%maven test.fake:greeter:1.0")));
                assertTrue(out.contains("greeter-1.0.jar") && out.contains("greeter-api-1.0.jar"), out);
                assertEquals("hello, session", eval("fake.Greeter.greet(\"session\")"),
                        "the artifact and its dependency are on the classpath");
                assertTrue(Files.isRegularFile(localRepo.resolve("test/fake/greeter-api/1.0/greeter-api-1.0.jar")),
                        "downloads go to maven.repo.local");
                assertTrue(repo.requests().contains("GET /test/fake/greeter/1.0/greeter-1.0.jar"), repo.requests().toString());
                assertFalse(repo.requests().stream().anyMatch(r -> r.contains("absent")),
                        "a test-scoped dependency is not resolved: " + repo.requests());

                int before = repo.requests().size();
                stdout(() -> eval("%maven --offline test.fake:greeter:1.0"));
                assertEquals(before, repo.requests().size(), "--offline must not contact the repository");
                CellError offline = fails("%maven --offline test.fake:nowhere:2.0");
                assertEquals("MavenError", offline.ename());
                assertTrue(offline.evalue().contains("test.fake:nowhere"), offline.evalue());
                assertTrue(String.join("\n", offline.traceback()).contains("offline"), offline.traceback().toString());
                assertEquals(before, repo.requests().size(), "--offline must not contact the repository");

                CellError missing = fails("%maven test.fake:nowhere:2.0");
                assertTrue(missing.evalue().contains("test.fake:nowhere:jar:2.0"), missing.evalue());
                assertTrue(String.join("\n", missing.traceback()).contains(repo.url()), missing.traceback().toString());
                CellError bad = fails("%maven not-coordinates");
                assertTrue(bad.evalue().contains("group:artifact:version"), bad.evalue());
            } finally {
                System.clearProperty("maven.repo.local");
                System.clearProperty("jlens.maven.repos");
            }
        }
    }

    @Test
    void mavenRepoMagicAddsARepositoryForTheSession() {
        String out = stdout(() -> eval("%mavenRepo extra https://example.invalid/maven2/"));
        assertTrue(out.contains(MavenResolver.CENTRAL) && out.contains("https://example.invalid/maven2/"), out);
        CellError bad = fails("%mavenRepo onlyone");
        assertTrue(bad.traceback().stream().anyMatch(l -> l.contains("%mavenRepo ID URL")), bad.traceback().toString());
    }

    @Test
    void exitCallsInCellsAreErrorsAndTheSessionLivesOn() {
        eval("int survivor = 41;");
        List<String> cells = List.of(
                "System.exit(3)",
                "Runtime.getRuntime().exit(4);",
                "Runtime.getRuntime().halt(5);",
                "void quit(int s) { System.exit(s); }\nquit(6);",
                "class Quitter { void go() { Runtime.getRuntime().halt(7); } }\nnew Quitter().go();",
                "java.util.function.IntConsumer q = System::exit;\nq.accept(8);",
                "java.util.function.IntConsumer h = Runtime.getRuntime()::halt;\nh.accept(9);",
                "Runnable r = () -> Runtime.getRuntime().exit(10);\nr.run();",
                "try { System.exit(11); } catch (Exception e) { System.out.println(\"swallowed\"); }");
        for (int i = 0; i < cells.size(); i++) {
            CellError e = fails(cells.get(i));
            assertEquals("SystemExit", e.ename(), cells.get(i));
            assertTrue(e.evalue().contains("(" + (i + 3) + ") was called") && e.evalue().contains("keeps running")
                    && e.evalue().contains("Restart"), e.evalue());
            assertFalse(String.join("\n", e.traceback()).contains("ExitTrap"), e.traceback().toString());
        }
        assertEquals(42, eval("survivor + 1"), "state is kept");
    }

    @Test
    void stackOverflowIsReportedCompactly() {
        CellError e = fails("int down(int n) { return down(n + 1) + 1; }\ndown(0)");
        assertEquals("StackOverflowError", e.ename());
        assertTrue(e.traceback().size() < 10, "recursion should collapse: " + e.traceback().size() + " lines");
        assertTrue(e.traceback().stream().anyMatch(l -> l.matches(".*repeated \\d+ more times")), e.traceback().toString());
        assertEquals(3, eval("1 + 2"));
    }

    @Test
    void kernelCodeOnTheWorkerIsStoppedAtItsTimeLimit() throws Exception {
        long start = System.nanoTime();
        assertThrows(WorkerExecutionControl.TimeLimitException.class,
                () -> session.callOnWorker(() -> { while (true) { Thread.onSpinWait(); } }, 300));
        assertTrue((System.nanoTime() - start) / 1e9 < 10, "time limit overrun");
        assertEquals("ok", session.callOnWorker(() -> "ok", 1000));
        assertEquals(5, eval("2 + 3"), "cells run after a stopped render");
    }

    @Test
    void classpathMagicMakesNewClassesUsable(@TempDir Path dir) throws Exception {
        Path src = dir.resolve("src/extra/Greeter.java");
        Files.createDirectories(src.getParent());
        Files.writeString(src, "package extra; public class Greeter { public static String hi() { return \"hi!\"; } }");
        Path classes = Files.createDirectories(dir.resolve("classes"));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertEquals(0, javac.run(null, null, null, "-d", classes.toString(), src.toString()));
        assertEquals("hi!", eval("%classpath " + classes + "\nextra.Greeter.hi()"));
    }

    @Test
    void interruptStopsBlockingAndBusyCodeAndKeepsState() throws Exception {
        eval("int kept = 11;");
        for (String cell : List.of("Thread.sleep(60_000);", "long n = 0;\nwhile (true) { n++; }")) {
            CompletableFuture<Object> running = CompletableFuture.supplyAsync(() -> eval(cell));
            awaitRunning(running);
            long start = System.nanoTime();
            session.interrupt();
            Exception e = assertThrows(Exception.class, () -> running.get(20, TimeUnit.SECONDS));
            assertTrue(e.getCause() instanceof CellError ce && ce.ename().equals("Interrupted"), e.toString());
            assertTrue((System.nanoTime() - start) / 1e9 < 10, "interrupt was slow");
        }
        assertEquals(11, eval("kept"));
    }

    @Test
    void interruptWhileTheCellCompilesIsNotLost() throws Exception {
        // The interrupt lands while JShell compiles (or runs) one of the first snippets: the rest must not run.
        StringBuilder cell = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            cell.append("int pad").append(i).append(" = ").append(i).append(";\n");
        }
        cell.append("Thread.sleep(60_000);");
        CompletableFuture<Object> running = CompletableFuture.supplyAsync(() -> eval(cell.toString()));
        while (!session.isEvaluating() && !running.isDone()) {
            Thread.onSpinWait();
        }
        session.interrupt();
        Exception e = assertThrows(Exception.class, () -> running.get(20, TimeUnit.SECONDS));
        assertTrue(e.getCause() instanceof CellError ce && ce.ename().equals("Interrupted"), e.toString());
        assertEquals(4, eval("2 + 2"));
    }

    @Test
    void isCompleteAndCompletion() {
        assertEquals("complete", session.isComplete("1 + 1"));
        assertEquals("incomplete", session.isComplete("for (int i = 0; i < 3; i++) {"));
        assertEquals("invalid", session.isComplete("int x = ;"));
        Session.Completion c = session.complete("Strin", 5);
        assertTrue(c.options().contains("String"), c.options().toString());
        assertEquals(0, c.start());
    }
}
