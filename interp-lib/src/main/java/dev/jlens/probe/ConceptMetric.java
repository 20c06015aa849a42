package dev.jlens.probe;

import dev.jlens.model.Generation;

import java.util.function.ToDoubleFunction;

/**
 * What a steering sweep measures on its target prompts, averaged over them: a function of the next-token logits
 * after each prompt, or of the text generated from it.
 *
 * <pre>{@code
 * ConceptMetric.nextToken(logits -> logits[plural] - logits[singular]);
 * ConceptMetric.logProbOf(model.toSingleToken(" wedding"));           // log P(any of these tokens next)
 * ConceptMetric.generated(Generation.Config.greedy(20), text -> text.contains("wedding") ? 1 : 0);
 * }</pre>
 */
public sealed interface ConceptMetric permits ConceptMetric.NextToken, ConceptMetric.Generated {

    /** A score of the logits {@code [d_vocab]} at the prompt's last position. */
    static ConceptMetric nextToken(ToDoubleFunction<float[]> score) {
        return new NextToken(score, "next-token metric");
    }

    /** The log-probability that the next token is any of {@code tokenIds}. */
    static ConceptMetric logProbOf(long... tokenIds) {
        long[] ids = tokenIds.clone();
        if (ids.length == 0) throw new IllegalArgumentException("give at least one token id");
        return new NextToken(logits -> {
            double max = Double.NEGATIVE_INFINITY;
            for (float l : logits) max = Math.max(max, l);
            double all = 0, some = 0;
            for (float l : logits) all += Math.exp(l - max);
            for (long id : ids) {
                if (id < 0 || id >= logits.length) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary 0.."
                            + (logits.length - 1));
                }
                some += Math.exp(logits[(int) id] - max);
            }
            return Math.log(some / all);
        }, "log P(next in " + java.util.Arrays.toString(ids) + ")");
    }

    /** A score of the text generated from each prompt with {@code config}. */
    static ConceptMetric generated(Generation.Config config, ToDoubleFunction<String> score) {
        return new Generated(config, score, "generated-text metric");
    }

    /** Its label in tables. */
    String label();

    /** A score of the next-token logits. */
    record NextToken(ToDoubleFunction<float[]> score, String label) implements ConceptMetric {}

    /** A score of generated text. */
    record Generated(Generation.Config config, ToDoubleFunction<String> score, String label) implements ConceptMetric {}
}
