/**
 * The geometry of features that are not one direction: multi-dimensional, circular features after Engels et al. 2024
 * ("Not All Language Model Features Are Linear").
 *
 * <ul>
 * <li>{@link dev.jlens.geometry.Reducibility}: the separability index {@code S(f)} and the ε-mixture index
 *     {@code M_eps(f)}, which tell an irreducible feature (a circle) from a product of independent parts or a mixture
 *     of lower-dimensional ones.</li>
 * <li>{@link dev.jlens.geometry.FeatureClusters}: candidate multi-dimensional features as groups of dictionary
 *     latents with similar decoder directions, their span and what they reconstruct.</li>
 * <li>{@link dev.jlens.geometry.Pca}: principal components, to see a feature in a plane.</li>
 * <li>{@link dev.jlens.geometry.FastIca}, {@link dev.jlens.geometry.Nmf}, {@link dev.jlens.geometry.KMeans}: independent
 *     components, non-negative factors and clusters of a point cloud, the other decompositions set beside a
 *     dictionary's latents.</li>
 * <li>{@link dev.jlens.geometry.CyclicOrder}: are class means (days, months) around a circle in order, evenly?</li>
 * <li>{@link dev.jlens.geometry.PlaneRotation}: rotate activations in a plane, by hand or as a forward hook, for
 *     the causal test (turn the weekday by k steps; does the answer move by k?).</li>
 * </ul>
 *
 * <pre>{@code
 * double[][] acts = ...;                                 // residual stream at the weekday token, one row per prompt
 * Pca pca = Pca.fit(acts, 2);
 * double[][] xy = pca.project(acts);
 * Reducibility.separability(xy);                         // S(f) in bits: high for a circle
 * Reducibility.mixture(xy);                              // M_0.1(f): low for a circle
 * CyclicOrder order = CyclicOrder.of(classMeans(xy, weekday));
 * PlaneRotation rot = PlaneRotation.of(pca.mean(), pca.components()[0], pca.components()[1]);
 * model.hook("blocks.0.hook_resid_pre", rot.hook(startPositions, 2 * order.step()));   // two days on
 * }</pre>
 *
 * <p>Pure arithmetic on Java arrays, except {@code PlaneRotation.hook}, which returns a {@code HookFn}; the package
 * uses {@code hook} only.
 */
package dev.jlens.geometry;
