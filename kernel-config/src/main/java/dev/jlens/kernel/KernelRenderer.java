package dev.jlens.kernel;

import dev.jlens.notebook.Display;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;
import org.dflib.jjava.jupyter.kernel.display.DisplayDataRenderable;
import org.dflib.jjava.jupyter.kernel.display.Renderer;

/**
 * jjava's renderer, answering from interp-lib's {@link Display} registry, so that library types (and types
 * users register in a cell) render the same in cell results and in {@code display(...)}.
 */
final class KernelRenderer extends Renderer {

    /**
     * How long rendering one result may take (toString, registered renderers) before it is stopped and the
     * result shows as a plain summary: {@code -Djlens.render.timeoutMillis=...}, default 10 s.
     */
    static final long LIMIT_MILLIS = Long.getLong("jlens.render.timeoutMillis", 10_000);

    /** The limit as people say it: "10 s", or "1500 ms". */
    static String limitText() {
        return LIMIT_MILLIS % 1000 == 0 ? LIMIT_MILLIS / 1000 + " s" : LIMIT_MILLIS + " ms";
    }

    /** "Name@1b6d3586": what can be said about an object without calling any of its methods. */
    static String identity(Object value) {
        if (value == null) {
            return "null";
        }
        // Classes declared in cells live in JShell's wrapper classes (REPL.$JShell$12$Point): show Point.
        String name = value.getClass().getName().replaceFirst("^REPL\\.\\$JShell\\$\\d+\\$", "");
        return name + "@" + Integer.toHexString(System.identityHashCode(value));
    }

    /** The plain-text stand-in for a result that could not be rendered, with the reason. */
    static DisplayData summary(Object value, String why) {
        return new DisplayData(identity(value) + " (" + why + ")");
    }

    @Override
    public DisplayData render(Object value, Map<String, Object> params) {
        if (value instanceof DisplayData data) {
            return data;
        }
        if (value instanceof DisplayDataRenderable && !Display.hasRenderer(value.getClass())) {
            return super.render(value, params);
        }
        return toDisplayData(Display.render(value));
    }

    @Override
    public DisplayData renderAs(Object value, Map<String, Object> params, String... types) {
        if (value instanceof DisplayDataRenderable && !Display.hasRenderer(value.getClass())) {
            return super.renderAs(value, params, types);
        }
        Set<String> wanted = Arrays.stream(types).collect(Collectors.toSet());
        DisplayData out = new DisplayData();
        Display.render(value).forEach((mime, data) -> {
            if (mime.equals(Display.TEXT) || wanted.contains(mime)) {
                out.putData(mime, data);
            }
        });
        return out;
    }

    /** A MIME bundle as jjava's display data. */
    static DisplayData toDisplayData(Map<String, String> bundle) {
        DisplayData out = new DisplayData();
        bundle.forEach(out::putData);
        return out;
    }
}
