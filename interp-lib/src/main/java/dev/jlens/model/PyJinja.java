package dev.jlens.model;

import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;

import java.beans.FeatureDescriptor;
import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * The parts of Python's Jinja that chat templates rely on and Jinjava lacks or spells differently: Python's string
 * and dict methods, transformers' {@code tojson}, {@code raise_exception}, {@code strftime_now} and
 * {@code {% generation %}}, Jinja's {@code items} and {@code trim} filters. Used by {@link ChatTemplate} only.
 */
final class PyJinja {
    private PyJinja() {}

    /** The message of the last {@code raise_exception} on this thread's render (Jinjava may wrap the throw). */
    static final ThreadLocal<String> RAISED = new ThreadLocal<>();

    /** Thrown by {@code raise_exception}; {@link ChatTemplate} turns it into a {@link ChatTemplateException}. */
    static final class RaisedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RaisedException(String message) {
            super(message);
        }
    }

    // ------------------------------------------------------------------------------------------ globals

    /** {@code raise_exception(message)}: aborts rendering with the template's message. */
    public static Object raiseException(Object message) {
        String text = String.valueOf(message);
        if (RAISED.get() == null) { // Jinjava may go on after a throw; the first raise is the one Python reports
            RAISED.set(text);
        }
        throw new RaisedException(text);
    }

    /** {@code strftime_now(format)}: the local time formatted with Python's strftime codes. */
    public static String strftimeNow(String format) {
        return strftime(LocalDateTime.now(), format);
    }

    static String strftime(LocalDateTime t, String format) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            char code = format.charAt(++i);
            boolean noPad = code == '-' && i + 1 < format.length();
            if (noPad) {
                code = format.charAt(++i);
            }
            String p = switch (code) {
                case 'a' -> "EEE";
                case 'A' -> "EEEE";
                case 'b', 'h' -> "MMM";
                case 'B' -> "MMMM";
                case 'd' -> noPad ? "d" : "dd";
                case 'e' -> null;
                case 'H' -> noPad ? "H" : "HH";
                case 'I' -> noPad ? "h" : "hh";
                case 'j' -> noPad ? "D" : "DDD";
                case 'm' -> noPad ? "M" : "MM";
                case 'M' -> noPad ? "m" : "mm";
                case 'p' -> "a";
                case 'S' -> noPad ? "s" : "ss";
                case 'y' -> "yy";
                case 'Y' -> "yyyy";
                case '%' -> "'%'";
                default -> throw new ChatTemplateException("strftime_now: format code %" + code
                        + " is not supported (supported: %a %A %b %B %d %e %H %I %j %m %M %p %S %y %Y %%, and %-d etc.)");
            };
            out.append(p == null ? String.format("%2d", t.getDayOfMonth())
                    : DateTimeFormatter.ofPattern(p, Locale.ENGLISH).format(t));
        }
        return out.toString();
    }

    // ------------------------------------------------------------------------------- values passed in

    /** A value handed to a template as plain Java collections with string keys (maps keep their order). */
    static Object plain(Object v) {
        if (v instanceof ChatTemplate.Message m) {
            return m.toMap();
        }
        if (v instanceof Map<?, ?> map) {
            Map<String, Object> out = new LinkedHashMap<>();
            map.forEach((k, x) -> out.put(String.valueOf(k), plain(x)));
            return out;
        }
        if (v instanceof Collection<?> c) {
            List<Object> out = new ArrayList<>(c.size());
            c.forEach(x -> out.add(plain(x)));
            return out;
        }
        if (v != null && v.getClass().isArray()) {
            List<Object> out = new ArrayList<>();
            for (int i = 0; i < Array.getLength(v); i++) {
                out.add(plain(Array.get(v, i)));
            }
            return out;
        }
        return v;
    }

    // ------------------------------------------------------------------------- Python's methods

    /** The EL resolver: Python's string and dict methods first, then Jinjava's own resolvers. */
    static ELResolver resolver() {
        CompositeELResolver r = new CompositeELResolver();
        r.add(new PythonMethods());
        r.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        return r;
    }

    /** Resolves method calls on strings and maps as Python would; leaves everything else to the next resolver. */
    private static final class PythonMethods extends ELResolver {
        @Override
        public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
            if (method == null) {
                return null;
            }
            Object[] args = params == null ? new Object[0] : params;
            String name = method.toString();
            Object result;
            if (base instanceof String s) {
                result = stringMethod(s, name, args);
            } else if (base instanceof Map<?, ?> m) {
                result = mapMethod(m, name, args);
            } else {
                return null;
            }
            if (result == NOT_HANDLED) {
                return null;
            }
            context.setPropertyResolved(true);
            return result;
        }

        @Override
        public Object getValue(ELContext context, Object base, Object property) {
            if (base instanceof String s && property != null && property.toString().matches("-?\\d+")) { // 'abc'[-1]
                int n = Integer.parseInt(property.toString());
                int i = n < 0 ? s.length() + n : n;
                if (i < 0 || i >= s.length()) {
                    throw new ChatTemplateException("string index " + n + " out of range for a string of length "
                            + s.length());
                }
                context.setPropertyResolved(true);
                return String.valueOf(s.charAt(i));
            }
            return null;
        }

        @Override
        public Class<?> getType(ELContext context, Object base, Object property) {
            return null;
        }

        @Override
        public void setValue(ELContext context, Object base, Object property, Object value) {}

        @Override
        public boolean isReadOnly(ELContext context, Object base, Object property) {
            return true;
        }

        @Override
        public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
            return null;
        }

        @Override
        public Class<?> getCommonPropertyType(ELContext context, Object base) {
            return null;
        }
    }

    private static final Object NOT_HANDLED = new Object();

    static Object stringMethod(String s, String name, Object[] a) {
        return switch (name) {
            case "strip" -> strip(s, arg(a, 0), true, true);
            case "lstrip" -> strip(s, arg(a, 0), true, false);
            case "rstrip" -> strip(s, arg(a, 0), false, true);
            case "split" -> split(s, arg(a, 0), a.length > 1 ? toInt(a[1]) : -1);
            case "rsplit" -> rsplit(s, arg(a, 0), a.length > 1 ? toInt(a[1]) : -1);
            case "startswith" -> affix(s, a, true);
            case "endswith" -> affix(s, a, false);
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s
                    : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
            case "replace" -> replace(s, String.valueOf(a[0]), String.valueOf(a[1]), a.length > 2 ? toInt(a[2]) : -1);
            case "find" -> (long) s.indexOf(String.valueOf(a[0]));
            case "rfind" -> (long) s.lastIndexOf(String.valueOf(a[0]));
            case "count" -> count(s, String.valueOf(a[0]));
            case "join" -> join(s, a[0]);
            case "splitlines" -> splitlines(s);
            case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isalpha" -> !s.isEmpty() && s.chars().allMatch(Character::isLetter);
            case "isalnum" -> !s.isEmpty() && s.chars().allMatch(Character::isLetterOrDigit);
            case "isspace" -> !s.isEmpty() && s.codePoints().allMatch(PyJinja::isPySpace);
            default -> NOT_HANDLED;
        };
    }

    static Object mapMethod(Map<?, ?> m, String name, Object[] a) {
        return switch (name) {
            case "items" -> {
                List<Object> out = new ArrayList<>();
                m.forEach((k, v) -> {
                    List<Object> pair = new ArrayList<>(2);
                    pair.add(k);
                    pair.add(v);
                    out.add(pair);
                });
                yield out;
            }
            case "keys" -> new ArrayList<>(m.keySet());
            case "values" -> new ArrayList<>(m.values());
            case "get" -> m.containsKey(a[0]) ? m.get(a[0]) : (a.length > 1 ? a[1] : null);
            default -> NOT_HANDLED;
        };
    }

    private static String arg(Object[] a, int i) {
        return a.length > i && a[i] != null ? String.valueOf(a[i]) : null;
    }

    private static int toInt(Object o) {
        return o instanceof Number n ? n.intValue() : Integer.parseInt(String.valueOf(o));
    }

    /** Python's str.isspace for one code point. */
    static boolean isPySpace(int c) {
        return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0
                || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f
                || c == 0x205f || c == 0x3000;
    }

    static String strip(String s, String chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        if (left) {
            while (start < end && stripped(s.charAt(start), chars)) {
                start++;
            }
        }
        if (right) {
            while (end > start && stripped(s.charAt(end - 1), chars)) {
                end--;
            }
        }
        return s.substring(start, end);
    }

    private static boolean stripped(char c, String chars) {
        return chars == null ? isPySpace(c) : chars.indexOf(c) >= 0;
    }

    static List<String> split(String s, String sep, int maxsplit) {
        List<String> out = new ArrayList<>();
        if (sep == null) { // runs of whitespace; no empty strings
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && isPySpace(s.charAt(i))) {
                    i++;
                }
                if (i == n) {
                    break;
                }
                if (maxsplit >= 0 && out.size() == maxsplit) {
                    out.add(strip(s.substring(i), null, false, true));
                    break;
                }
                int j = i;
                while (j < n && !isPySpace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (sep.isEmpty()) {
            throw new ChatTemplateException("split: empty separator");
        }
        int from = 0;
        while (maxsplit < 0 || out.size() < maxsplit) {
            int at = s.indexOf(sep, from);
            if (at < 0) {
                break;
            }
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    static List<String> rsplit(String s, String sep, int maxsplit) {
        if (maxsplit < 0) {
            return split(s, sep, -1);
        }
        if (sep == null) {
            String r = new StringBuilder(s).reverse().toString();
            List<String> parts = split(r, null, maxsplit);
            List<String> out = new ArrayList<>();
            for (int i = parts.size() - 1; i >= 0; i--) {
                out.add(new StringBuilder(parts.get(i)).reverse().toString());
            }
            return out;
        }
        List<String> out = new ArrayList<>();
        int end = s.length();
        while (out.size() < maxsplit) {
            int at = s.lastIndexOf(sep, end - sep.length());
            if (at < 0 || end - sep.length() < 0) {
                break;
            }
            out.add(0, s.substring(at + sep.length(), end));
            end = at;
        }
        out.add(0, s.substring(0, end));
        return out;
    }

    private static List<String> splitlines(String s) {
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\n' || c == '\r') {
                out.add(s.substring(start, i));
                if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') {
                    i++;
                }
                start = i + 1;
            }
        }
        if (start < s.length()) {
            out.add(s.substring(start));
        }
        return out;
    }

    private static boolean affix(String s, Object[] a, boolean prefix) {
        String t = s;
        if (a.length > 1 && a[1] != null) {
            int start = Math.max(0, Math.min(s.length(), toInt(a[1]) < 0 ? s.length() + toInt(a[1]) : toInt(a[1])));
            t = s.substring(start);
        }
        List<Object> options = new ArrayList<>();
        if (a[0] instanceof Collection<?> c) {
            options.addAll(c);
        } else if (a[0] != null && a[0].getClass().isArray()) {
            for (int i = 0; i < Array.getLength(a[0]); i++) {
                options.add(Array.get(a[0], i));
            }
        } else {
            options.add(a[0]);
        }
        for (Object o : options) {
            String x = String.valueOf(o);
            if (prefix ? t.startsWith(x) : t.endsWith(x)) {
                return true;
            }
        }
        return false;
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean prevCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            out.append(prevCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
            prevCased = Character.isLetter(c);
        }
        return out.toString();
    }

    private static String replace(String s, String old, String neu, int count) {
        if (count < 0) {
            return s.replace(old, neu);
        }
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int n = 0; n < count; n++) {
            int at = s.indexOf(old, from);
            if (at < 0) {
                break;
            }
            out.append(s, from, at).append(neu);
            from = at + old.length();
            if (old.isEmpty()) {
                if (from < s.length()) {
                    out.append(s.charAt(from));
                }
                from++;
            }
        }
        if (from <= s.length()) {
            out.append(s.substring(Math.min(from, s.length())));
        }
        return out.toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.length() + 1L;
        }
        long n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    private static String join(String sep, Object items) {
        List<String> parts = new ArrayList<>();
        if (items instanceof Iterable<?> it) {
            it.forEach(x -> parts.add(String.valueOf(x)));
        } else if (items != null && items.getClass().isArray()) {
            for (int i = 0; i < Array.getLength(items); i++) {
                parts.add(String.valueOf(Array.get(items, i)));
            }
        } else if (items instanceof String str) {
            str.codePoints().forEach(c -> parts.add(new String(Character.toChars(c))));
        }
        return String.join(sep, parts);
    }

    // ------------------------------------------------------------------------------------- filters

    /**
     * transformers' {@code tojson}: {@code json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
     * sort_keys=sort_keys)}, not HTML-escaped, Python's spacing ({@code ", "} and {@code ": "}, or {@code ","} between
     * items when indented).
     */
    static final class ToJson implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, (Object[]) args, Map.of());
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object ensureAscii = kw(args, kwargs, 0, "ensure_ascii");
            Object indent = kw(args, kwargs, 1, "indent");
            Object separators = kw(args, kwargs, 2, "separators");
            Object sortKeys = kw(args, kwargs, 3, "sort_keys");
            String ind = indent == null ? null
                    : indent instanceof Number n ? " ".repeat(Math.max(0, n.intValue())) : String.valueOf(indent);
            String itemSep = ind == null ? ", " : ",";
            String keySep = ": ";
            if (separators != null) {
                List<Object> seps = new ArrayList<>();
                if (separators instanceof Collection<?> c) {
                    seps.addAll(c);
                } else if (separators.getClass().isArray()) {
                    for (int i = 0; i < Array.getLength(separators); i++) {
                        seps.add(Array.get(separators, i));
                    }
                }
                if (seps.size() != 2) {
                    throw new ChatTemplateException("tojson: separators must be a pair (item, key), got " + separators);
                }
                itemSep = String.valueOf(seps.get(0));
                keySep = String.valueOf(seps.get(1));
            }
            StringBuilder out = new StringBuilder();
            new PyJson(truthy(ensureAscii), ind, itemSep, keySep, truthy(sortKeys)).write(var, 0, out);
            return out.toString();
        }

        private static Object kw(Object[] args, Map<String, Object> kwargs, int i, String name) {
            if (kwargs != null && kwargs.containsKey(name)) {
                return kwargs.get(name);
            }
            return args != null && args.length > i ? args[i] : null;
        }

        private static boolean truthy(Object o) {
            return o instanceof Boolean b ? b : o != null && !"false".equalsIgnoreCase(String.valueOf(o))
                    && !"0".equals(String.valueOf(o)) && !String.valueOf(o).isEmpty();
        }
    }

    /** Python's json.dumps. */
    record PyJson(boolean ensureAscii, String indent, String itemSep, String keySep, boolean sortKeys) {
        void write(Object v, int depth, StringBuilder out) {
            if (v == null) {
                out.append("null");
            } else if (v instanceof Boolean b) {
                out.append(b ? "true" : "false");
            } else if (v instanceof Double || v instanceof Float) {
                out.append(floatRepr(((Number) v).doubleValue()));
            } else if (v instanceof BigDecimal d) {
                out.append(floatRepr(d.doubleValue()));
            } else if (v instanceof Number n) {
                out.append(n instanceof BigInteger ? n.toString() : Long.toString(n.longValue()));
            } else if (v instanceof CharSequence s) {
                string(s.toString(), out);
            } else if (v instanceof Map<?, ?> m) {
                Map<?, ?> map = m;
                if (sortKeys) {
                    Map<String, Object> sorted = new TreeMap<>();
                    m.forEach((k, x) -> sorted.put(String.valueOf(k), x));
                    map = sorted;
                }
                if (map.isEmpty()) {
                    out.append("{}");
                    return;
                }
                out.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    if (!first) {
                        out.append(itemSep);
                    }
                    first = false;
                    newline(depth + 1, out);
                    Object k = e.getKey();
                    string(k instanceof Boolean b ? (b ? "true" : "false") : k == null ? "null" : String.valueOf(k), out);
                    out.append(keySep);
                    write(e.getValue(), depth + 1, out);
                }
                newline(depth, out);
                out.append('}');
            } else if (v instanceof Iterable<?> || v.getClass().isArray()) {
                List<Object> items = new ArrayList<>();
                if (v instanceof Iterable<?> it) {
                    it.forEach(items::add);
                } else {
                    for (int i = 0; i < Array.getLength(v); i++) {
                        items.add(Array.get(v, i));
                    }
                }
                if (items.isEmpty()) {
                    out.append("[]");
                    return;
                }
                out.append('[');
                for (int i = 0; i < items.size(); i++) {
                    if (i > 0) {
                        out.append(itemSep);
                    }
                    newline(depth + 1, out);
                    write(items.get(i), depth + 1, out);
                }
                newline(depth, out);
                out.append(']');
            } else if (v instanceof ChatTemplate.Message m) {
                write(m.toMap(), depth, out);
            } else {
                throw new ChatTemplateException("tojson: a " + v.getClass().getSimpleName()
                        + " is not JSON serializable");
            }
        }

        private void newline(int depth, StringBuilder out) {
            if (indent != null) {
                out.append('\n').append(indent.repeat(depth));
            }
        }

        private void string(String s, StringBuilder out) {
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    case '\b' -> out.append("\\b");
                    case '\f' -> out.append("\\f");
                    default -> {
                        if (c < 0x20 || (ensureAscii && c > 0x7e)) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            out.append('"');
        }
    }

    /** Python's repr of a float. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal b = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = b.unscaledValue().abs().toString();
        int exp = digits.length() - 1 - b.scale(); // decimal exponent of the first digit
        String sign = d < 0 ? "-" : "";
        if (exp < -4 || exp >= 16) {
            String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mant + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
        }
        String plain = b.abs().toPlainString();
        return sign + (plain.contains(".") ? plain : plain + ".0");
    }

    /** {@code __py(x)}: a printed value spelled as Python's Jinja prints it ({@code True}, {@code 2.5}, {@code ['a']}). */
    public static String printed(Object var) {
        if (var == null) {
            return ""; // Jinjava does not tell none from undefined; undefined prints nothing
        }
        if (var instanceof CharSequence s) {
            return s.toString();
        }
        return repr(var);
    }

    /** Python's repr (str for numbers and booleans), as Jinja prints lists, dicts and scalars. */
    static String repr(Object v) {
        if (v == null) {
            return "None";
        }
        if (v instanceof Boolean b) {
            return b ? "True" : "False";
        }
        if (v instanceof Double || v instanceof Float) {
            return floatRepr(((Number) v).doubleValue()).replace("Infinity", "inf").replace("NaN", "nan");
        }
        if (v instanceof Number n) {
            return n.toString();
        }
        if (v instanceof CharSequence cs) {
            String s = cs.toString();
            char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
            StringBuilder out = new StringBuilder().append(q);
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    default -> {
                        if (c == q) {
                            out.append('\\').append(c);
                        } else if (c < 0x20 || c == 0x7f) {
                            out.append(String.format("\\x%02x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            return out.append(q).toString();
        }
        if (v instanceof Map<?, ?> m) {
            List<String> parts = new ArrayList<>();
            m.forEach((k, x) -> parts.add(repr(k) + ": " + repr(x)));
            return "{" + String.join(", ", parts) + "}";
        }
        if (v instanceof Iterable<?> it) {
            List<String> parts = new ArrayList<>();
            it.forEach(x -> parts.add(repr(x)));
            return "[" + String.join(", ", parts) + "]";
        }
        if (v.getClass().isArray()) {
            List<String> parts = new ArrayList<>();
            for (int i = 0; i < Array.getLength(v); i++) {
                parts.add(repr(Array.get(v, i)));
            }
            return "[" + String.join(", ", parts) + "]";
        }
        if (v instanceof ChatTemplate.Message msg) {
            return repr(msg.toMap());
        }
        return v.toString();
    }

    /** Jinja's {@code items} filter: a mapping's (key, value) pairs. */
    static final class Items implements Filter {
        @Override
        public String getName() {
            return "items";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) {
                return List.of();
            }
            if (!(var instanceof Map<?, ?> m)) {
                throw new ChatTemplateException("items: expected a mapping, got " + var.getClass().getSimpleName());
            }
            return mapMethod(m, "items", new Object[0]);
        }
    }

    /** Jinja's {@code trim(chars=None)}: Python's str.strip. */
    static final class Trim implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) {
                return "";
            }
            return strip(String.valueOf(var), args.length > 0 ? args[0] : null, true, true);
        }
    }

    /** transformers' {@code {% generation %}...{% endgeneration %}}: marks assistant text; renders its body. */
    static final class GenerationTag implements Tag {
        @Override
        public String getName() {
            return "generation";
        }

        @Override
        public String getEndTagName() {
            return "endgeneration";
        }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder out = new StringBuilder();
            for (Node child : tagNode.getChildren()) {
                out.append(child.render(interpreter));
            }
            return out.toString();
        }
    }
}
