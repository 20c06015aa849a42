/**
 * Probes and steering: what a model's activations encode, and what adding a direction to them does.
 *
 * <p>Probes: {@link dev.jlens.probe.ProbeData} (rows, labels, groups, token types) is fitted by a
 * {@link dev.jlens.probe.ProbeMethod} (L2 logistic regression, difference of means, shrinkage LDA) into a
 * {@link dev.jlens.probe.LinearProbe} (direction, bias, predict, scores, JSON save/load);
 * {@link dev.jlens.probe.CrossValidation} uses grouped folds ({@link dev.jlens.probe.GroupKFold}), so no sequence is
 * on both sides of a split; {@link dev.jlens.probe.ProbeReport} puts a {@link dev.jlens.probe.ControlTask} beside
 * the task (selectivity); {@link dev.jlens.probe.LayerSweep} probes many hook points from one cached run per batch;
 * {@link dev.jlens.probe.Metrics} has accuracy, AUROC and recall at a false-positive rate set on a control corpus.
 *
 * <p>Steering: a {@link dev.jlens.probe.SteeringVector} (contrastive mean, first PC of paired differences, a probe's
 * direction, an SAE decoder row) is added by {@link dev.jlens.probe.Steering} at hook points and
 * {@link dev.jlens.probe.Positions}, in forward passes and in KV-cached generation;
 * {@link dev.jlens.probe.SteeringSweep} measures a {@link dev.jlens.probe.ConceptMetric} by strength with its side
 * effects on neutral text, beside a prompting baseline. {@link dev.jlens.probe.Backtracking} finds {@code wait}
 * corrections in {@link dev.jlens.data.ArithCot} traces, reads a backtracking vector at the end of wrong steps
 * against matched correct ones, and measures its dose–response in generation.
 * {@link dev.jlens.probe.ConceptDirections} compares one concept's directions (probe, difference of means, best
 * SAE latent's decoder row, a random control) by their cosines and by the change in the agreement logit difference
 * per unit of steering at one norm. {@link dev.jlens.analysis.ChainProbes} (in {@code analysis}, beside
 * {@code Resampling}, which it compares with) probes a model's own chains of thought at the end of each step.
 *
 * <p>Safety-relevant readouts on the zoo's own models: {@link dev.jlens.probe.UserModelReadout} reads a hidden user
 * attribute of {@link dev.jlens.data.Dialogues} per layer at the user's tokens beside a control task, the embeddings
 * and the just-ask baseline (the model's own answer when asked); {@link dev.jlens.probe.LieProbe} fits a lie-flag
 * probe at the claims of {@link dev.jlens.data.HiddenRoles} games and scores it on held-out games of the same or
 * another layout (AUROC, recall at 1% FPR).
 *
 * <pre>{@code
 * var sweep = LayerSweep.run(model, "resid_post", List.of(0, 1, 2, 3), batches, labeller, LayerSweep.Options.defaults());
 * display(sweep.toTable()); display(sweep.plot());
 * LinearProbe probe = sweep.fit("blocks.2.hook_resid_post");
 * var v = SteeringVector.contrastive(model, "blocks.2.hook_resid_post", plural, singular);
 * Steering.of(v).strength(2).generate(model, "the dog near the river", Generation.Config.greedy(8)).texts();
 * SteeringSweep.of(model, Steering.of(v), targets, metric).withNeutral(texts).withPromptPrefix("...").run(0, 1, 2, 4);
 * }</pre>
 *
 * <p>Above {@code model}: uses {@code model}, {@code hook}, {@code data} (ArithCot traces for backtracking),
 * {@code analysis} (resampling a chain of thought), {@code viz}, {@code sae} (decoder rows), {@code util};
 * nothing below uses it.
 */
package dev.jlens.probe;
