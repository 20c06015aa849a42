package dev.jlens.analysis;

import java.util.ArrayList;
import java.util.List;

/**
 * A node of the computational graph that circuits are made of: the input (token and position embeddings), an
 * attention head, an MLP, or the logits. As a source of edges a node is its output written to the residual stream
 * (a head's {@code hook_result}, an MLP's {@code hook_mlp_out}, the input's {@code resid_pre} of block 0); as a
 * target it is what reads the residual stream (a head's query, key or value input, an MLP's input, the unembedding).
 *
 * @param kind what the node is
 * @param layer its layer (-1 for the input, {@code n_layers} for the logits)
 * @param head its head (-1 unless a head; a kv head when it is the target of a {@code k} or {@code v} edge under
 *     grouped-query attention)
 */
public record Node(Kind kind, int layer, int head) {

    /** What a node is. */
    public enum Kind { INPUT, HEAD, MLP, LOGITS }

    /** The input embeddings. */
    public static Node input() {
        return new Node(Kind.INPUT, -1, -1);
    }

    /** Head {@code head} of {@code layer}. */
    public static Node head(int layer, int head) {
        return new Node(Kind.HEAD, layer, head);
    }

    /** The MLP of {@code layer}. */
    public static Node mlp(int layer) {
        return new Node(Kind.MLP, layer, -1);
    }

    /** The logits of a model with {@code nLayers} layers. */
    public static Node logits(int nLayers) {
        return new Node(Kind.LOGITS, nLayers, -1);
    }

    /** Every node that writes to the residual stream: input, heads, MLPs (none for an attention-only model). */
    public static List<Node> writers(int nLayers, int nHeads, boolean mlps) {
        List<Node> out = new ArrayList<>();
        out.add(input());
        for (int l = 0; l < nLayers; l++) {
            for (int h = 0; h < nHeads; h++) out.add(head(l, h));
            if (mlps) out.add(mlp(l));
        }
        return out;
    }

    /** {@code input}, {@code L1H3}, {@code MLP2}, {@code logits}. */
    public String label() {
        return switch (kind) {
            case INPUT -> "input";
            case HEAD -> "L" + layer + "H" + head;
            case MLP -> "MLP" + layer;
            case LOGITS -> "logits";
        };
    }

    /** True if this node's output can reach {@code target}'s input directly (sequential blocks). */
    public boolean precedes(Node target) {
        if (kind == Kind.LOGITS || target.kind == Kind.INPUT) return false;
        if (kind == Kind.INPUT) return true;
        if (target.kind == Kind.LOGITS) return true;
        if (layer < target.layer) return true;
        return layer == target.layer && kind == Kind.HEAD && target.kind == Kind.MLP;
    }

    @Override
    public String toString() {
        return label();
    }
}
