/**
 * Deterministic synthetic datasets for training and dissecting JLens's own tiny models.
 *
 * <p>Six tasks, each a record implementing {@link dev.jlens.data.Task} ({@link dev.jlens.data.Tasks} has them
 * by name with their defaults):
 * <ul>
 * <li>{@link dev.jlens.data.Induction} ({@code induction}): {@code <bos> x1..xL x1..xL}, random tokens repeated
 *     once, for induction heads; with {@link dev.jlens.data.Induction#inductionScore} for attention patterns.</li>
 * <li>{@link dev.jlens.data.ArithCot} ({@code arith-cot}): multi-digit {@code + - *} with a digit-by-digit chain
 *     of thought, optional backtracking ({@code wait}) and an optional trigger word; with an answer parser.</li>
 * <li>{@link dev.jlens.data.TinyLang} ({@code tinylang}): sentences of a small unambiguous probabilistic grammar
 *     (agreement, tense, relative clauses, prepositional phrases), every token labelled with its ground truth,
 *     with the exact entropy rate of the grammar.</li>
 * <li>{@link dev.jlens.data.CyclicArith} ({@code cyclic-arith}): {@code Tuesday plus 3 days is Friday},
 *     {@code March minus 5 months is October}: modular arithmetic on days and months in words, with nearness
 *     questions ({@code Tuesday near Wednesday is yes}) that fix the names' order, for circular (non-linear)
 *     features.</li>
 * <li>{@link dev.jlens.data.Dialogues} ({@code dialogues}): user-assistant dialogues where hidden user attributes
 *     (age group, expertise, a mood that changes between turns) shape the user's words (noisy cues, so no word
 *     decides) and the assistant's register; every token labelled with the true values; some dialogues end with
 *     the user asking what the assistant thinks an attribute is, answered truthfully (the "just ask" baseline).</li>
 * <li>{@link dev.jlens.data.HiddenRoles} ({@code hidden-roles}): a hidden-role game (one wolf, one seer,
 *     villagers) in two layouts, the deal then the claims, the wolf lying in every claim; every claim's truth,
 *     speaker, true and stated role and every seat's role labelled per token.</li>
 * </ul>
 *
 * <p>Shared conventions:
 * <ul>
 * <li>Example {@code i} of a split is a pure function of (task settings, seed, split, i): random access, any order,
 *     the same on every JVM (the generator is SplitMix64, spelled out here, not {@code java.util.Random}).</li>
 * <li>Train and test are disjoint by construction: a problem (random block, arithmetic problem, sentence) belongs to
 *     {@link dev.jlens.data.Split#TEST} when a hash of its content falls in the first
 *     {@link dev.jlens.data.Split#TEST_FRACTION} of the range. The hash ignores seed and format, so no seed's test
 *     problems appear in any seed's training data.</li>
 * <li>Token ids: {@code <pad>} 0, {@code <bos>} 1, {@code <eos>} 2, then the task's words. Tokenizers are
 *     word-level ({@link dev.jlens.data.Task#writeTokenizer}); an example's {@code text()} is its tokens joined by
 *     spaces, {@code <bos>} included, and encodes back to its ids without prepending BOS.</li>
 * <li>{@code lossMask[i]} marks token {@code i} as a training target; batches carry the same information as
 *     next-token weights in the layout of {@link dev.jlens.model.Losses#nextTokenLoss}.</li>
 * </ul>
 *
 * <pre>{@code
 * TinyLang lang = Tasks.tinyLang();
 * Example<TinyLang.Meta> ex = lang.example(Split.TRAIN, 0);
 * ex.text();                    // "<bos> the dog that the cats see runs . Alice ..."
 * ex.meta().labels().get(3);    // TokenLabel[pos=NOUN, number=SINGULAR, ..., subjectHead=true, ...]
 * TaskBatch<TinyLang.Meta> b = lang.batch(Split.TRAIN, step, 32);
 * }</pre>
 */
package dev.jlens.data;
