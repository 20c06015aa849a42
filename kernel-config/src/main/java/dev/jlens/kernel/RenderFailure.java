package dev.jlens.kernel;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * A rendering that threw, described on the thread that ran it: an exception's message and causes are user code
 * (an overridden {@code getMessage} or {@code toString}) and must not be read on the kernel's shell thread.
 */
final class RenderFailure extends RuntimeException {

    private final String ename;
    private final String evalue;
    private final List<String> traceback;

    private RenderFailure(String ename, String evalue, List<String> traceback) {
        super(ename + ": " + evalue, null, false, false);
        this.ename = ename;
        this.evalue = evalue;
        this.traceback = List.copyOf(traceback);
    }

    static RenderFailure of(Throwable t) {
        if (t instanceof RenderFailure f) {
            return f;
        }
        List<String> tb = new ArrayList<>();
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Throwable c = t; c != null && seen.add(c) && tb.size() < 6; c = c.getCause()) {
            tb.add((c == t ? "" : "Caused by: ") + text(c));
        }
        String evalue = String.valueOf(message(t));
        if (ClosedArrayHint.applies(t)) {
            evalue += ClosedArrayHint.EVALUE_SUFFIX;
            tb.add(ClosedArrayHint.NOTE);
        }
        return new RenderFailure(t.getClass().getSimpleName(), evalue, tb);
    }

    private static String message(Throwable t) {
        try {
            return t.getMessage();
        } catch (RuntimeException | StackOverflowError e) {
            return "(its getMessage() threw " + e.getClass().getName() + ")";
        }
    }

    private static String text(Throwable t) {
        String m = message(t);
        return t.getClass().getName() + (m == null ? "" : ": " + m);
    }

    String ename() {
        return ename;
    }

    String evalue() {
        return evalue;
    }

    List<String> traceback() {
        return traceback;
    }
}
