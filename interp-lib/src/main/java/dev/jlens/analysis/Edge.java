package dev.jlens.analysis;

import java.util.Locale;

/**
 * An edge of the computational graph: {@code from}'s output as read by {@code to}'s input. A head reads its input
 * three times, as query, key and value ({@code input} {@code q}, {@code k}, {@code v}); an MLP and the logits read
 * it once ({@code input} empty).
 */
public record Edge(Node from, Node to, String input) {

    /** Validates. */
    public Edge {
        if (!from.precedes(to)) {
            throw new IllegalArgumentException("no edge " + from.label() + " -> " + to.label() + ": " + from.label()
                    + " does not write to the residual stream before " + to.label() + " reads it");
        }
        input = input == null ? "" : input.toLowerCase(Locale.ROOT);
        boolean head = to.kind() == Node.Kind.HEAD;
        if (head != (input.equals("q") || input.equals("k") || input.equals("v"))) {
            throw new IllegalArgumentException(head ? "an edge into head " + to.label() + " names its input: q, k or v"
                    : "an edge into " + to.label() + " has no q/k/v input, got '" + input + "'");
        }
    }

    /** {@code L0H1 -> L2H3.q}, {@code MLP0 -> logits}. */
    public String label() {
        return from.label() + " -> " + to.label() + (input.isEmpty() ? "" : "." + input);
    }

    @Override
    public String toString() {
        return label();
    }
}
