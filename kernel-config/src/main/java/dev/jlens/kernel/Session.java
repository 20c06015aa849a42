package dev.jlens.kernel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import jdk.jshell.DeclarationSnippet;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;
import jdk.jshell.VarSnippet;
import jdk.jshell.spi.ExecutionControl;
import jdk.jshell.spi.ExecutionControlProvider;
import jdk.jshell.spi.ExecutionEnv;

/**
 * One JShell session: splits cells into snippets, evaluates them in this JVM, and turns failures into
 * notebook-shaped errors ({@link CellError}).
 */
final class Session implements AutoCloseable {

    /** Packages imported on demand in every session; project packages only when they exist in this build. */
    static final List<String> IMPORTS = List.of(
            "java.util", "java.util.function", "java.util.stream", "java.nio.file", "java.io",
            "tech.tablesaw.api", "org.knowm.xchart",
            "ai.djl", "ai.djl.ndarray", "ai.djl.ndarray.types", "ai.djl.ndarray.index",
            "dev.jlens.model", "dev.jlens.model.arch", "dev.jlens.hook", "dev.jlens.store", "dev.jlens.io",
            "dev.jlens.train", "dev.jlens.sae", "dev.jlens.probe", "dev.jlens.analysis", "dev.jlens.data",
            "dev.jlens.lora", "dev.jlens.diff", "dev.jlens.zoo", "dev.jlens.cot", "dev.jlens.viz", "dev.jlens.notebook",
            "dev.jlens.corpus", "dev.jlens.toy", "dev.jlens.sae.eval", "dev.jlens.geometry", "dev.jlens.drift",
            "dev.jlens.useful");

    /** Static imports: {@code display(x)}, {@code updateDisplay(id, x)}, {@code html("...")}. */
    static final List<String> STATIC_IMPORTS = List.of(
            "dev.jlens.notebook.Display.display", "dev.jlens.notebook.Display.updateDisplay",
            "dev.jlens.notebook.Display.html");

    /** Returned for a cell with nothing to show (no expression at the end, or one ending in {@code ;}). */
    static final Object NO_RESULT = new Object();

    /** A magic line: {@code %name args} or {@code %%name args}; names start with a letter. */
    private static final Pattern MAGIC = Pattern.compile("^\\s*%(%?)([A-Za-z]\\w*)\\s*(.*)$");

    private static final Set<String> PRIMITIVES =
            Set.of("boolean", "byte", "char", "short", "int", "long", "float", "double");

    private final JShell shell;
    private final WorkerExecutionControl control;
    private final Magics magics;
    private final Map<String, Origin> origins = new HashMap<>();
    /** Variables the cell being evaluated declared: reset to free the heap if the cell runs out of it. */
    private final List<VarSnippet> declaredInCell = new ArrayList<>();

    /** Where a snippet came from: the cell's execution count and the cell line it starts on (1-based). */
    private record Origin(int executionCount, int firstLine) {}

    private Session(JShell shell, WorkerExecutionControl control) {
        this.shell = shell;
        this.control = control;
        this.magics = new Magics(this);
    }

    /** Starts JShell with the project's imports. */
    static Session start() {
        WorkerExecutionControl control = new WorkerExecutionControl();
        JShell shell = JShell.builder()
                .executionEngine(new ExecutionControlProvider() {
                    @Override
                    public String name() {
                        return "jlens";
                    }

                    @Override
                    public ExecutionControl generate(ExecutionEnv env, Map<String, String> parameters) {
                        return control;
                    }
                }, Map.of())
                .build();
        Trace.mark("jshell built");
        Session session = new Session(shell, control);
        // All imports in one snippet: one compile instead of one per import (startup is mostly javac
        // warming up, and each snippet costs a compile).
        List<String> imports = new ArrayList<>();
        imports.add("import " + Prelude.class.getName() + ";");
        for (String pkg : IMPORTS) {
            if (packageExists(pkg)) {
                imports.add("import " + pkg + ".*;");
            }
        }
        for (String member : STATIC_IMPORTS) {
            imports.add("import static " + member + ";");
        }
        if (!session.tryEval(String.join(" ", imports))) {
            // Import one by one, so that one bad package costs only its own names.
            for (String one : imports) {
                if (!session.tryEval(one)) {
                    System.err.println("jlens: startup import failed, skipped: " + one);
                }
            }
        }
        Trace.mark("imports done");
        return session;
    }

    /**
     * Compiles and runs one throwaway expression so that the first real cell finds javac's expression path
     * warm; the snippet is dropped again. Called while the kernel waits for its first cell.
     */
    void warmUp() {
        for (SnippetEvent e : shell.eval("String.valueOf(40 + 2).length()")) {
            shell.drop(e.snippet());
        }
        control.clearResults();
        Trace.mark("warm-up done");
    }

    /** Evaluates kernel-supplied code; false if it did not define cleanly. */
    private boolean tryEval(String code) {
        boolean ok = true;
        for (SnippetEvent e : shell.eval(code)) {
            if (e.causeSnippet() == null && e.status() != Snippet.Status.VALID) {
                ok = false;
            }
        }
        control.clearResults();
        return ok;
    }

    private static boolean packageExists(String pkg) {
        if (pkg.startsWith("java.")) {
            return true;
        }
        return ClassLoader.getSystemClassLoader().getResource(pkg.replace('.', '/') + "/") != null;
    }

    /**
     * Evaluates a cell and returns the value of its last expression, or {@link #NO_RESULT} when the cell ends
     * in a declaration or statement, or when its last expression ends with {@code ;}.
     */
    Object evalCell(String cell, int executionCount) {
        control.beginCell();
        declaredInCell.clear();
        try {
            Matcher first = MAGIC.matcher(firstNonBlankLine(cell));
            if (first.matches() && first.group(1).equals("%")) {
                // A cell magic owns the whole cell: its first line names it, the rest is its body.
                int bodyStart = cell.indexOf('\n', cell.indexOf("%%")) + 1;
                String body = bodyStart == 0 ? "" : cell.substring(bodyStart);
                return magics.cell(first.group(2), first.group(3).trim(), body, executionCount,
                        countNewlines(cell, bodyStart) + 1);
            }
            return evalLines(cell, executionCount, 1);
        } catch (CellError e) {
            if (e.ename().equals("OutOfMemoryError")) {
                throw afterHeapExhaustion(e);
            }
            throw e;
        } finally {
            declaredInCell.clear();
            control.endCell();
        }
    }

    /** Evaluates Java code with line magics between its statements; {@code firstLine} numbers its first line. */
    Object evalLines(String code, int executionCount, int firstLine) {
        Object result = NO_RESULT;
        String[] lines = code.split("\n", -1);
        StringBuilder chunk = new StringBuilder();
        int chunkFirstLine = firstLine;
        for (int i = 0; i < lines.length; i++) {
            Matcher m = MAGIC.matcher(lines[i]);
            if (!m.matches()) {
                chunk.append(lines[i]).append('\n');
                continue;
            }
            if (!chunk.toString().isBlank()) {
                evalJava(chunk.toString(), executionCount, chunkFirstLine);
            }
            if (!m.group(1).isEmpty()) {
                String msg = "cell magic %%" + m.group(2) + " must be on the cell's first line";
                throw new CellError("MagicError", msg, List.of("MagicError at line " + (firstLine + i) + ": " + msg));
            }
            result = magics.line(m.group(2), m.group(3).trim(), executionCount, firstLine + i);
            chunkFirstLine = firstLine + i + 1;
            chunk.setLength(0);
        }
        if (!chunk.toString().isBlank()) {
            result = evalJava(chunk.toString(), executionCount, chunkFirstLine);
        }
        return result;
    }

    private static String firstNonBlankLine(String cell) {
        for (String line : cell.split("\n")) {
            if (!line.isBlank()) {
                return line;
            }
        }
        return "";
    }

    /** Adds a jar or class directory to the compiler's and the class loader's path. */
    void addToClasspath(Path path) {
        shell.addToClasspath(path.toString());
    }

    /** The worker that runs cells, for magics that time them. */
    WorkerExecutionControl control() {
        return control;
    }

    /**
     * Runs kernel code that calls into user objects (rendering a result) on the cell thread, interruptible and
     * stopped after {@code limitMillis}; see {@link WorkerExecutionControl#callOnWorker}.
     */
    <T> T callOnWorker(Callable<T> task, long limitMillis) throws WorkerExecutionControl.TimeLimitException,
            WorkerExecutionControl.InterruptedByUserException, ExecutionException {
        return control.callOnWorker(task, limitMillis);
    }

    /** A session variable and its current value. */
    record Variable(String name, String type, Object value) {}

    /** The session's variables in declaration order, without JShell's {@code $1}-style result variables. */
    List<Variable> variables() {
        List<Variable> out = new ArrayList<>();
        for (VarSnippet v : shell.variables().toList()) {
            if (v.name().startsWith("$") || shell.status(v) != Snippet.Status.VALID) {
                continue;
            }
            Object value;
            try {
                value = control.takeResult(shell.varValue(v));
            } catch (IllegalStateException | IllegalArgumentException e) {
                continue; // dropped or replaced in between
            }
            out.add(new Variable(v.name(), v.typeName(), value));
        }
        control.clearResults();
        return out;
    }

    /**
     * After an OutOfMemoryError: resets the reference variables this cell declared (their partial values would
     * keep the heap full, and a cell that failed has no result to keep) and says how full the heap is now.
     */
    private CellError afterHeapExhaustion(CellError e) {
        List<String> released = new ArrayList<>();
        for (VarSnippet v : List.copyOf(declaredInCell)) {
            if (!PRIMITIVES.contains(v.typeName()) && shell.status(v) == Snippet.Status.VALID
                    && tryEval(v.name() + " = null;")) {
                released.add(v.name());
            }
        }
        System.gc();
        Runtime rt = Runtime.getRuntime();
        long usedMb = (rt.totalMemory() - rt.freeMemory()) >> 20;
        long maxMb = rt.maxMemory() >> 20;
        List<String> tb = new ArrayList<>(e.traceback());
        if (!released.isEmpty()) {
            tb.add("note: the heap ran out; " + String.join(", ", released) + " (declared in this cell) "
                    + (released.size() == 1 ? "was" : "were") + " set to null so the memory can be reclaimed");
        }
        tb.add("note: heap in use now: " + usedMb + " MB of " + maxMb + " MB" + (usedMb > maxMb / 2
                ? " (variables from earlier cells still hold it: set them to null to free it)" : ""));
        return new CellError(e.ename(), e.evalue(), tb);
    }

    private Object evalJava(String code, int executionCount, int firstLine) {
        SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
        Object result = NO_RESULT;
        String remaining = code;
        int consumedChars = 0;
        while (true) {
            SourceCodeAnalysis.CompletionInfo info = sca.analyzeCompletion(remaining);
            SourceCodeAnalysis.Completeness completeness = info.completeness();
            if (completeness == SourceCodeAnalysis.Completeness.EMPTY) {
                break;
            }
            if (!completeness.isComplete()) {
                String rest = info.remaining().strip();
                int codeLine = firstLine + countNewlines(code, consumedChars + leadingBlank(remaining));
                throw new CellError("CompileError", "incomplete code at line " + codeLine
                        + " (an unclosed bracket, string or comment?)",
                        List.of("CompileError: incomplete code at line " + codeLine
                                + " (an unclosed bracket, string or comment?)", indent(rest)));
            }
            // JShell numbers stack-frame lines wrongly for a source that starts with a line break, so the
            // snippet goes in without leading whitespace. Positions in diagnostics and frames then count
            // from its first character: find where that is in the cell (without a semicolon JShell added).
            String source = info.source().stripLeading();
            String consumed = remaining.substring(0, remaining.length() - info.remaining().length());
            String typed = completeness == SourceCodeAnalysis.Completeness.COMPLETE_WITH_SEMI && source.endsWith(";")
                    ? source.substring(0, source.length() - 1) : source;
            int at = remaining.indexOf(typed);
            int snippetLine = firstLine + countNewlines(code, consumedChars + Math.max(0, at));
            boolean suppressed = completeness == SourceCodeAnalysis.Completeness.COMPLETE
                    && source.stripTrailing().endsWith(";");
            Object value = evalSnippet(source, executionCount, snippetLine);
            result = suppressed ? NO_RESULT : value;
            consumedChars += consumed.length();
            remaining = info.remaining();
        }
        return result;
    }

    private Object evalSnippet(String source, int executionCount, int snippetLine) {
        List<SnippetEvent> events;
        try {
            events = shell.eval(source);
        } catch (IllegalStateException e) {
            throw new CellError("KernelError", "JShell failed: " + e.getMessage(), List.of(e.toString()));
        }
        Object value = NO_RESULT;
        try {
            for (SnippetEvent e : events) {
                if (e.causeSnippet() != null) {
                    continue; // a dependent snippet updated as a side effect
                }
                Snippet s = e.snippet();
                origins.put(s.id(), new Origin(executionCount, snippetLine));
                if (e.status() == Snippet.Status.REJECTED) {
                    throw compileError(s, snippetLine);
                }
                if (s instanceof VarSnippet v && e.status().isDefined()) {
                    declaredInCell.add(v);
                }
                JShellException ex = e.exception();
                if (ex != null) {
                    throw runtimeError(ex);
                }
                if (e.status() == Snippet.Status.RECOVERABLE_NOT_DEFINED && s instanceof DeclarationSnippet d) {
                    throw unresolvedError(d, snippetLine);
                }
                if (e.status() == Snippet.Status.RECOVERABLE_DEFINED && s instanceof DeclarationSnippet d) {
                    System.err.println("note: " + describe(d) + " can be used once "
                            + String.join(", ", shell.unresolvedDependencies(d).toList()) + " is declared");
                }
                if (hasDisplayableValue(s.subKind())) {
                    value = control.takeResult(e.value());
                }
            }
        } finally {
            control.clearResults();
        }
        return value;
    }

    private static boolean hasDisplayableValue(Snippet.SubKind kind) {
        return kind == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND
                || kind == Snippet.SubKind.VAR_VALUE_SUBKIND
                || kind == Snippet.SubKind.OTHER_EXPRESSION_SUBKIND;
    }

    // ---- errors ---------------------------------------------------------------------------------------------

    private CellError compileError(Snippet s, int snippetLine) {
        List<Diag> diags = shell.diagnostics(s).filter(Diag::isError).toList();
        if (diags.isEmpty()) {
            diags = shell.diagnostics(s).toList();
        }
        String source = s.source();
        List<String> tb = new ArrayList<>();
        String first = diags.isEmpty() ? "the code was rejected" : diagMessage(diags.get(0));
        for (Diag d : diags) {
            String message = diagMessage(d);
            int pos = (int) Math.max(0, Math.min(d.getStartPosition(), source.length()));
            int end = (int) Math.max(pos, Math.min(d.getEndPosition(), source.length()));
            int lineStart = source.lastIndexOf('\n', pos - 1) + 1;
            int lineEnd = source.indexOf('\n', pos);
            if (lineEnd < 0) {
                lineEnd = source.length();
            }
            int line = snippetLine + countNewlines(source, lineStart);
            String text = source.substring(lineStart, lineEnd);
            int caretEnd = Math.min(end, lineEnd);
            String marker = " ".repeat(pos - lineStart)
                    + (caretEnd - pos > 1 ? "^" + "-".repeat(caretEnd - pos - 2) + "^" : "^");
            tb.add("CompileError at line " + line + ": " + message);
            tb.add("    " + text.stripTrailing());
            tb.add("    " + marker);
        }
        return new CellError("CompileError", first, tb);
    }

    /** The compiler's message without the "location: class" line that names JShell's hidden wrapper. */
    private static String diagMessage(Diag d) {
        return d.getMessage(Locale.ENGLISH).lines()
                .filter(l -> !l.matches("\\s*location: class\\s*"))
                .collect(Collectors.joining("\n"));
    }

    private CellError unresolvedError(DeclarationSnippet d, int snippetLine) {
        String missing = String.join(", ", shell.unresolvedDependencies(d).toList());
        String msg = "cannot find symbol: " + missing + " (needed by " + describe(d) + ")";
        List<String> tb = new ArrayList<>();
        tb.add("CompileError at line " + snippetLine + ": " + msg);
        tb.add(indent(d.source().strip()));
        return new CellError("CompileError", msg, tb);
    }

    private CellError runtimeError(JShellException ex) {
        if (ex instanceof EvalException ee && WorkerExecutionControl.INTERRUPTED.equals(ee.getExceptionClassName())) {
            return new CellError("Interrupted", ee.getMessage(), List.of("Interrupted: " + ee.getMessage()));
        }
        if (ex instanceof UnresolvedReferenceException ure) {
            DeclarationSnippet d = ure.getSnippet();
            String msg = describe(d) + " cannot be used until "
                    + String.join(", ", shell.unresolvedDependencies(d).toList()) + " is declared";
            return new CellError("UnresolvedReference", msg, List.of("UnresolvedReference: " + msg));
        }
        List<String> tb = new ArrayList<>();
        String className = ex instanceof EvalException ee ? ee.getExceptionClassName() : ex.getClass().getName();
        String message = ex.getMessage();
        appendThrowable(tb, ex, "", new LinkedHashSet<>());
        String simple = className.substring(className.lastIndexOf('.') + 1);
        String evalue = message == null ? "" : message;
        if (ClosedArrayHint.applies(ex)) {
            evalue += ClosedArrayHint.EVALUE_SUFFIX;
            tb.add(ClosedArrayHint.NOTE);
        }
        return new CellError(simple, evalue, tb);
    }

    private void appendThrowable(List<String> tb, Throwable t, String prefix, Set<Throwable> seen) {
        if (!seen.add(t)) {
            return;
        }
        String className = t instanceof EvalException ee ? ee.getExceptionClassName() : t.getClass().getName();
        if (className.equals(SystemExit.class.getName())) {
            className = SystemExit.class.getSimpleName(); // the kernel's class, not the user's concern
        }
        tb.add(prefix + className + (t.getMessage() == null ? "" : ": " + t.getMessage()));
        // Deep recursion (a StackOverflowError has 1024 frames) shows as one frame and a count.
        String previous = null;
        int repeats = 0;
        for (StackTraceElement f : userFrames(t.getStackTrace())) {
            String line = "    at " + frameText(f);
            if (line.equals(previous)) {
                repeats++;
                continue;
            }
            if (repeats > 0) {
                tb.add(repeatedNote(repeats));
            }
            tb.add(line);
            previous = line;
            repeats = 0;
        }
        if (repeats > 0) {
            tb.add(repeatedNote(repeats));
        }
        if (t.getCause() != null) {
            appendThrowable(tb, t.getCause(), "Caused by: ", seen);
        }
    }

    private static String repeatedNote(int repeats) {
        return "    ... the frame above repeated " + repeats + " more time" + (repeats == 1 ? "" : "s");
    }

    /** The frames down to the last one in cell code; without cell frames, those above the kernel's. */
    private static List<StackTraceElement> userFrames(StackTraceElement[] frames) {
        int last = -1;
        for (int i = 0; i < frames.length; i++) {
            if (isCellFrame(frames[i])) {
                last = i;
            }
        }
        List<StackTraceElement> out = new ArrayList<>();
        for (int i = 0; i < frames.length; i++) {
            if (last >= 0 ? i > last : isMachinery(frames[i])) {
                break;
            }
            out.add(frames[i]);
        }
        return out;
    }

    private static boolean isCellFrame(StackTraceElement f) {
        return f.getFileName() != null && f.getFileName().startsWith("#");
    }

    private static boolean isMachinery(StackTraceElement f) {
        String c = f.getClassName();
        return c.startsWith("jdk.internal.reflect.") || c.startsWith("java.lang.reflect.")
                || c.startsWith("jdk.jshell.") || c.startsWith("dev.jlens.kernel.");
    }

    private String frameText(StackTraceElement f) {
        if (!isCellFrame(f)) {
            return f.toString();
        }
        String cls = f.getClassName();
        String method = f.getMethodName();
        String where;
        if (cls.isEmpty() && method.isEmpty()) {
            where = "<cell>";
        } else if (cls.isEmpty()) {
            where = method;
        } else {
            where = cls + "." + method;
        }
        return where + " (" + locate(f.getFileName().substring(1), f.getLineNumber()) + ")";
    }

    private String locate(String snippetId, int lineInSnippet) {
        Origin o = origins.get(snippetId);
        if (o == null) {
            return "snippet #" + snippetId + ", line " + lineInSnippet;
        }
        return "In [" + o.executionCount() + "] line " + (o.firstLine() + Math.max(1, lineInSnippet) - 1);
    }

    private static String describe(DeclarationSnippet d) {
        String kind = switch (d.kind()) {
            case METHOD -> "method";
            case VAR -> "variable";
            case TYPE_DECL -> "type";
            default -> d.kind().toString().toLowerCase(Locale.ROOT);
        };
        return kind + " " + d.name();
    }

    // ---- editor support -------------------------------------------------------------------------------------

    /** Completion candidates at {@code cursor}: the replacements and the start of the text they replace. */
    Completion complete(String code, int cursor) {
        int[] anchor = new int[1];
        List<String> options = shell.sourceCodeAnalysis().completionSuggestions(code, cursor, anchor).stream()
                .map(SourceCodeAnalysis.Suggestion::continuation).distinct().toList();
        return new Completion(options, anchor[0], cursor);
    }

    /** Completion candidates and the range they replace. */
    record Completion(List<String> options, int start, int end) {}

    /** Signatures (and javadoc where the JDK has it) of the symbol at {@code cursor}, or null. */
    String inspect(String code, int cursor) {
        List<SourceCodeAnalysis.Documentation> docs =
                shell.sourceCodeAnalysis().documentation(code, cursor, true);
        if (docs.isEmpty()) {
            return null;
        }
        return docs.stream().map(d -> d.javadoc() == null ? d.signature() : d.signature() + "\n" + d.javadoc())
                .collect(Collectors.joining("\n\n"));
    }

    /** Jupyter's is_complete: "complete", "incomplete" (with indent) or "invalid". */
    String isComplete(String code) {
        SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
        SourceCodeAnalysis.CompletionInfo info = sca.analyzeCompletion(code);
        while (info.completeness().isComplete() && info.completeness() != SourceCodeAnalysis.Completeness.UNKNOWN) {
            info = sca.analyzeCompletion(info.remaining());
        }
        return switch (info.completeness()) {
            case UNKNOWN -> "invalid";
            case DEFINITELY_INCOMPLETE, CONSIDERED_INCOMPLETE -> "incomplete";
            default -> "complete";
        };
    }

    /** Interrupts the running cell, if any. */
    void interrupt() {
        control.interrupt();
    }

    /** Whether cell code is running on the worker right now. */
    boolean isRunning() {
        return control.isRunning();
    }

    /** Whether a cell is being evaluated: compiled or run. */
    boolean isEvaluating() {
        return control.isCellActive();
    }

    @Override
    public void close() {
        magics.close();
        shell.close();
    }

    // ---- helpers --------------------------------------------------------------------------------------------

    private static int countNewlines(String s, int end) {
        int n = 0;
        for (int i = 0; i < Math.min(end, s.length()); i++) {
            if (s.charAt(i) == '\n') {
                n++;
            }
        }
        return n;
    }

    /** Length of the leading whitespace and comments that analyzeCompletion skips before a snippet. */
    private static int leadingBlank(String s) {
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
            } else if (s.startsWith("//", i)) {
                int nl = s.indexOf('\n', i);
                i = nl < 0 ? s.length() : nl + 1;
            } else if (s.startsWith("/*", i)) {
                int close = s.indexOf("*/", i + 2);
                i = close < 0 ? s.length() : close + 2;
            } else {
                break;
            }
        }
        return i;
    }

    private static String indent(String text) {
        return text.lines().map(l -> "    " + l).collect(Collectors.joining("\n"));
    }
}
