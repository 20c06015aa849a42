package dev.jlens.probe;

import java.util.Optional;

/**
 * Which token positions become probing rows, and their label, group and type: {@code at(sequence, position)} is
 * asked for every non-padding position of every sequence (sequences numbered across all batches, from 0) and
 * returns empty to skip it.
 *
 * <pre>{@code
 * TokenLabeller number = (seq, pos) -> {
 *     TinyLang.TokenLabel l = examples.get(seq).meta().labels().get(pos);
 *     if (l.pos() != TinyLang.Pos.VERB || l.tense() != TinyLang.Tense.PAST) return Optional.empty();
 *     return Optional.of(new TokenLabeller.Row(l.number() == TinyLang.Num.PLURAL ? 1 : 0, seq,
 *             (int) examples.get(seq).ids()[pos]));
 * };
 * }</pre>
 */
@FunctionalInterface
public interface TokenLabeller {

    /** The row for this position, or empty to leave it out. */
    Optional<Row> at(int sequence, int position);

    /**
     * One probing row's ground truth.
     *
     * @param label class in {@code [0, nClasses)}
     * @param group cross-validation group (usually the sequence index)
     * @param type  token type for the control task (usually the token id)
     */
    record Row(int label, int group, int type) {}
}
