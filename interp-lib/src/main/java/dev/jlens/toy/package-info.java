/**
 * Toy Models of Superposition (Elhage et al. 2022): {@code n} sparse features squeezed through {@code m < n}
 * dimensions, {@code x' = ReLU(W^T W x + b)}, trained with an importance-weighted squared error. The package trains a
 * whole grid of settings in one batched run ({@link dev.jlens.toy.ToySuperposition}) and measures how each instance
 * arranges its features ({@link dev.jlens.toy.FeatureGeometry}, {@link dev.jlens.toy.ToyModel},
 * {@link dev.jlens.toy.ToyResult}, {@link dev.jlens.toy.PhaseDiagram}).
 *
 * <pre>{@code
 * // 5 features in 2 dimensions, importance 0.9^i, from dense to sparse
 * ToyResult r = ToySuperposition.train(ToySuperposition.sparsitySweep(5, 2, 0.9, 0, 0.7, 0.9, 0.97));
 * r.toTable();              // per instance: loss, features represented, m / |W|_F^2
 * r.normsPlot();            // |W_i| per instance and feature; r.interferencePlot() likewise
 * r.model(3).normsPlot();   // one instance: norms beside interference, as the paper's bars
 * r.model(3).gramHeatmap(); // W^T W: the pentagon's interference pattern
 * r.dimensionalityPlot();   // dimensions per feature against 1 / (1 - S), with the sticky fractions
 *
 * // two features in one dimension over sparsity x relative importance
 * ToySuperposition.train(ToySuperposition.phaseGrid(new double[] {0, 0.5, 0.8, 0.9, 0.95},
 *         new double[] {0.25, 0.5, 1, 2, 4}, 3)).phaseDiagram().heatmap();
 *
 * // correlated pairs prefer orthogonal directions, anticorrelated pairs go antipodal
 * ToySuperposition.train(ToySuperposition.correlationStudy(2, 2, 0.8, 4)).correlationFindings();
 * }</pre>
 *
 * <p>From the command line, the lowest-loss of K instances as one JSON line (the flags are a contract):
 * <pre>
 * ./lab toy superposition --features 5 --dims 2 --sparsity 0.95 --importance-decay 0.9 --instances 4 --seed 0
 * {"W":[[0.93,-0.51,...],[...]],"b":[-0.27,...],"loss":0.0059}
 * </pre>
 */
package dev.jlens.toy;
