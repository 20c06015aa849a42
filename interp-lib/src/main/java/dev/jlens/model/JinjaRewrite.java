package dev.jlens.model;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Rewrites a Jinja template's expressions so that Jinjava parses them as Python's Jinja does. Jinjava's grammar
 * (JUEL's) binds {@code not} tighter than comparisons and tests, so Jinja's {@code not x is defined} (not (x is
 * defined)) would read as {@code (not x) is defined}; and it reads a keyword argument {@code k=a - 1} as
 * {@code (k=a) - 1}. Both get explicit parentheses: {@code not (x is defined)}, {@code k=(a - 1)}. Reversal slices
 * {@code [::-1]} become the {@code reverse} filter. Text outside {@code {{ }}} and {@code {% %}} is untouched.
 */
final class JinjaRewrite {
    private JinjaRewrite() {}

    private static final Pattern TAG = Pattern.compile("(\\{\\{)([-+]?)(.*?)([-+]?)(\\}\\})"
            + "|(\\{%)([-+]?)(.*?)([-+]?)(%\\})|(\\{#)([-+]?)(.*?)([-+]?)(#\\})", Pattern.DOTALL);
    private static final Pattern TOKEN = Pattern.compile(
            "\\s+|'(?:[^'\\\\]|\\\\.)*'|\"(?:[^\"\\\\]|\\\\.)*\"|[A-Za-z_][A-Za-z0-9_]*|\\d+(?:\\.\\d+)?"
                    + "|==|!=|<=|>=|//|\\*\\*|.", Pattern.DOTALL);
    private static final Set<String> KEYWORDS = Set.of("and", "or", "not", "if", "else", "elif", "in", "is", "set",
            "for", "return", "with", "import", "from", "as", "call", "macro", "filter", "recursive");
    private static final Set<String> NOT_STOP = Set.of("and", "or", "if", "else", ",", ":");
    private static final Pattern REVERSE_SLICE = Pattern.compile("\\[\\s*:\\s*:\\s*-\\s*1\\s*\\]");
    private static final Pattern STEP_SLICE = Pattern.compile("\\[[^\\[\\]'\"]*:[^\\[\\]'\"]*:[^\\[\\]'\"]*\\]");

    /**
     * The template with Jinja's whitespace handling applied to its text (trim_blocks, lstrip_blocks and the
     * {@code -}/{@code +} markers, exactly as jinja2's lexer does; Jinjava's own lstrip_blocks also strips spaces
     * between two tags on one line) and every tag's expression rewritten. Printed values go through the
     * {@code __py} function, which spells them as Python does ({@code True}, {@code None}, {@code ['a']}).
     */
    static String rewrite(String template, String origin) {
        Matcher m = TAG.matcher(template);
        StringBuilder out = new StringBuilder();
        int pos = 0;
        boolean lineStarting = true;
        String pendingText = null;
        while (m.find()) {
            int g = m.group(1) != null ? 1 : m.group(6) != null ? 6 : 11; // {{ }}, {% %} or {# #}
            String open = m.group(g);
            String openMark = m.group(g + 1);
            String inner = m.group(g + 2);
            String closeMark = m.group(g + 3);
            String close = m.group(g + 4);
            String text = template.substring(pos, m.start());
            if (pendingText != null) {
                text = pendingText + text;
                pendingText = null;
            }
            boolean block = !open.equals("{{");
            if (openMark.equals("-")) {
                text = PyJinja.strip(text, null, false, true);
            } else if (block && !openMark.equals("+")) { // lstrip_blocks
                int lineStart = text.lastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && text.substring(lineStart).chars().allMatch(c -> c == ' ' || c == '\t')) {
                    text = text.substring(0, lineStart);
                }
            }
            out.append(text);
            if (open.equals("{#")) {
                // a comment renders nothing
            } else if (block && inner.strip().startsWith("raw")) {
                throw new ChatTemplateException("Chat template in " + origin + " uses {% raw %}, which is not supported");
            } else {
                out.append(open).append(block ? tagBody(inner, origin) : printed(inner, origin)).append(close);
            }
            pos = m.end();
            // what follows the tag: "-" strips all whitespace, trim_blocks one newline after a block or comment
            int after = pos;
            if (closeMark.equals("-")) {
                while (after < template.length() && PyJinja.isPySpace(template.charAt(after))) {
                    after++;
                }
                lineStarting = after > pos && template.charAt(after - 1) == '\n';
            } else if (block && !closeMark.equals("+") && after < template.length() && template.charAt(after) == '\n') {
                after++;
                lineStarting = true;
            } else {
                lineStarting = false;
            }
            pos = after;
        }
        out.append(template.substring(pos));
        return out.toString();
    }

    private static String tagBody(String inner, String origin) {
        return expression(slices(inner, origin));
    }

    /** {@code {{ x }}} becomes {@code {{ __py(x) }}}: printed as Python's Jinja prints it. */
    private static String printed(String inner, String origin) {
        String body = expression(slices(inner, origin));
        return body.isBlank() ? body : " __py(" + body + ") ";
    }

    private static String slices(String inner, String origin) {
        String body = REVERSE_SLICE.matcher(inner).replaceAll("|reverse");
        Matcher step = STEP_SLICE.matcher(body);
        if (step.find()) {
            throw new ChatTemplateException("Chat template in " + origin + " uses the slice " + step.group()
                    + ", which is not supported (only [::-1] and slices without a step are)");
        }
        return body;
    }

    /**
     * The filters ({@code |name}) and tests ({@code is [not] name}) a prepared template uses, as "filter name" and
     * "test name": Jinjava renders an unknown one as nothing where Jinja refuses the template, so they are checked.
     */
    static java.util.Set<String> filtersAndTests(String prepared) {
        java.util.Set<String> out = new java.util.TreeSet<>();
        Matcher m = TAG.matcher(prepared);
        while (m.find()) {
            int g = m.group(1) != null ? 1 : m.group(6) != null ? 6 : 11;
            if (g == 11) {
                continue;
            }
            List<String> sig = new ArrayList<>();
            Matcher t = TOKEN.matcher(m.group(g + 2));
            while (t.find()) {
                if (!t.group().isBlank()) {
                    sig.add(t.group());
                }
            }
            for (int i = 0; i + 1 < sig.size(); i++) {
                String next = sig.get(i + 1);
                boolean name = Character.isJavaIdentifierStart(next.charAt(0));
                if (sig.get(i).equals("|") && name) {
                    out.add("filter " + next);
                } else if (sig.get(i).equals("is") && name) {
                    String test = next.equals("not") && i + 2 < sig.size() ? sig.get(i + 2) : next;
                    if (Character.isJavaIdentifierStart(test.charAt(0))) {
                        out.add("test " + test);
                    }
                }
            }
        }
        return out;
    }

    /** One tag's inside, with parentheses added around unary {@code not}'s operand and keyword arguments' values. */
    static String expression(String text) {
        List<String> toks = new ArrayList<>();
        Matcher t = TOKEN.matcher(text);
        while (t.find()) {
            toks.add(t.group());
        }
        for (int i = 0; i < toks.size(); i++) {
            String tok = toks.get(i);
            if (tok.equals("not") && isUnary(toks, i) && !next(toks, i).equals("in")) {
                int end = extent(toks, i + 1, NOT_STOP);
                if (needsParens(toks, i + 1, end)) {
                    toks.add(end, ")");
                    toks.add(i + 1, "(");
                }
            } else if (tok.equals("=") && isKeywordArgument(toks, i)) {
                int end = extent(toks, i + 1, Set.of(","));
                if (needsParens(toks, i + 1, end)) {
                    toks.add(end, ")");
                    toks.add(i + 1, "(");
                }
            }
        }
        return String.join("", toks);
    }

    private static boolean isBlank(String tok) {
        return tok.isBlank();
    }

    private static int prevIndex(List<String> toks, int i) {
        int j = i - 1;
        while (j >= 0 && isBlank(toks.get(j))) {
            j--;
        }
        return j;
    }

    private static String next(List<String> toks, int i) {
        int j = i + 1;
        while (j < toks.size() && isBlank(toks.get(j))) {
            j++;
        }
        return j < toks.size() ? toks.get(j) : "";
    }

    /** Whether {@code not} at i is the unary operator (not the binary {@code not in}): nothing operand-like before. */
    private static boolean isUnary(List<String> toks, int i) {
        int p = prevIndex(toks, i);
        if (p < 0) {
            return true;
        }
        String prev = toks.get(p);
        if (prev.equals("is")) {
            return false; // "is not defined": a negated test
        }
        boolean operandEnd = prev.equals(")") || prev.equals("]") || prev.equals("}") || prev.startsWith("'")
                || prev.startsWith("\"") || Character.isDigit(prev.charAt(0))
                || (Character.isJavaIdentifierStart(prev.charAt(0)) && !KEYWORDS.contains(prev));
        return !operandEnd;
    }

    /** Whether {@code =} at i follows {@code name} right after {@code (} or {@code ,}, inside parentheses. */
    private static boolean isKeywordArgument(List<String> toks, int i) {
        int n = prevIndex(toks, i);
        if (n < 0 || !Character.isJavaIdentifierStart(toks.get(n).charAt(0))) {
            return false;
        }
        int before = prevIndex(toks, n);
        if (before < 0 || !(toks.get(before).equals("(") || toks.get(before).equals(","))) {
            return false;
        }
        int depth = 0;
        for (int j = before; j >= 0; j--) {
            String tok = toks.get(j);
            if (tok.equals(")") || tok.equals("]") || tok.equals("}")) {
                depth--;
            } else if (tok.equals("(") || tok.equals("[") || tok.equals("{")) {
                depth++;
                if (depth > 0) {
                    return tok.equals("(");
                }
            }
        }
        return false;
    }

    /** The index where the operand starting at {@code from} ends: a stop word or closing bracket at depth 0. */
    private static int extent(List<String> toks, int from, Set<String> stops) {
        int depth = 0;
        for (int j = from; j < toks.size(); j++) {
            String tok = toks.get(j);
            if (tok.equals("(") || tok.equals("[") || tok.equals("{")) {
                depth++;
            } else if (tok.equals(")") || tok.equals("]") || tok.equals("}")) {
                if (depth == 0) {
                    return trimBack(toks, from, j);
                }
                depth--;
            } else if (depth == 0 && stops.contains(tok)) {
                return trimBack(toks, from, j);
            }
        }
        return trimBack(toks, from, toks.size());
    }

    private static int trimBack(List<String> toks, int from, int end) {
        while (end > from && isBlank(toks.get(end - 1))) {
            end--;
        }
        return end;
    }

    /** Whether the tokens [from, end) are more than one primary already in parentheses or a single token. */
    private static boolean needsParens(List<String> toks, int from, int end) {
        List<String> sig = new ArrayList<>();
        for (int j = from; j < end; j++) {
            if (!isBlank(toks.get(j))) {
                sig.add(toks.get(j));
            }
        }
        if (sig.size() <= 1) {
            return false;
        }
        if (sig.get(0).equals("(") && sig.get(sig.size() - 1).equals(")")) {
            int depth = 0;
            for (int k = 0; k < sig.size(); k++) {
                depth += sig.get(k).equals("(") ? 1 : sig.get(k).equals(")") ? -1 : 0;
                if (depth == 0 && k < sig.size() - 1) {
                    return true; // "(a) or (b)": the first group closes early
                }
            }
            return false;
        }
        return true;
    }
}
