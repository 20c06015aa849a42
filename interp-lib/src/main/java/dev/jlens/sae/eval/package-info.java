/**
 * SAE evaluations in the manner of SAEBench (Karvonen et al. 2025): how well a sparse dictionary's latents carry
 * concepts whose ground truth is known.
 *
 * <p>{@link dev.jlens.sae.eval.Absorption}: feature absorption after Chanin et al. (a parent concept whose main
 * latents stay silent on some of its tokens while a more specific latent, aligned with the parent's probe, carries
 * it): absorption fraction, full absorption, split latents per parent. {@link dev.jlens.sae.eval.SparseProbing}:
 * k-sparse probing (the k latents whose class means differ most, then a logistic probe on them) beside a probe on
 * the raw activations. {@link dev.jlens.sae.eval.SaeBenchJson} writes both in SAEBench's output layout;
 * {@link dev.jlens.sae.eval.Seeds} runs an evaluation over dictionaries of several seeds and reports the spread.
 * {@link dev.jlens.sae.eval.TinyLangConcepts} builds parent concepts (first letters, word classes) from tinylang
 * activations. {@link dev.jlens.sae.eval.RandomControl} is Heap et al.'s control: the same dictionary recipe on a
 * model and on its randomly initialised twin, every metric side by side (with best single-latent concept recovery),
 * and which of them tell the two apart. {@link dev.jlens.sae.eval.SparsitySweep} asks whether sparsity is a proxy
 * for interpretability: TopK dictionaries over several k, their L0 against the mean best-latent concept F1.
 * {@link dev.jlens.sae.eval.DenseLatents} finds the latents firing on more than
 * 10% of tokens, their antipodal pairs and what they carry (position, BOS, sentence structure), after Sun et al.
 * {@link dev.jlens.sae.eval.Explanations} checks interpretations: each latent's best rule over the ground-truth
 * labels ("pos=NOUN & number=PLURAL") with precision and recall, its too-general parts, its false negatives in
 * context, and the same search on shuffled labels as a control.
 * {@link dev.jlens.sae.eval.ArchitectureComparison} sets dictionary architectures of one width and L0 (Matryoshka
 * against BatchTopK) trained on the same batches side by side: reconstruction, spliced loss, absorption, k-sparse
 * probing and concept recovery, over seeds. {@link dev.jlens.sae.eval.ConceptLearning} asks which concepts get a
 * dedicated latent, against dictionary size and the concept's token frequency, and scores PCA, ICA, NMF and k-means
 * on the same activations the same way.
 *
 * <pre>{@code
 * List<ProbeTask> parents = TinyLangConcepts.firstLetters(rows, 3, 40);
 * Absorption.Result a = Absorption.run(sae, parents, Absorption.Options.defaults());
 * display(a.toTable()); a.meanAbsorptionFraction();
 * SparseProbing.Result p = SparseProbing.run(sae, parents, SparseProbing.Options.defaults());
 * SaeBenchJson.write(SaeBenchJson.absorption(a, sae, SaeBenchJson.Meta.of("tinylang-4l", 0)), Path.of("absorption.json"));
 * }</pre>
 *
 * <p>Above {@code sae} and {@code probe}: uses {@code sae}, {@code probe}, {@code store}, {@code model}, {@code data},
 * {@code geometry}, {@code util}; nothing in the library uses it.
 */
package dev.jlens.sae.eval;
