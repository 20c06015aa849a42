/**
 * Being useful: interpretability methods against non-interpretability baselines in a fair fight (after Kantamneni et
 * al. 2025). A {@link dev.jlens.useful.UsefulTask} holds train, validation and test labels and several views of the
 * same rows; every {@link dev.jlens.useful.Method} (the {@link dev.jlens.useful.Baselines}: logistic regression, KNN,
 * PCA + logistic, XGBoost trees, k-sparse probes, Gaussian anomaly scores, single columns) is fitted on train, its
 * setting chosen on validation, and scored on test by {@link dev.jlens.useful.Comparison}: AUROC with a
 * {@link dev.jlens.useful.Bootstrap} interval, a table, a chart and a win/loss table against the best baseline.
 * The tasks: {@link dev.jlens.useful.ThinkerErrors} (will thinker get a product wrong?),
 * {@link dev.jlens.useful.TriggerFlags} (which prompts trigger thinker-ft's planted behaviour?) and
 * {@link dev.jlens.useful.TinyLangRegimes} (tinylang concepts under scarcity, imbalance, label noise, shift).
 */
package dev.jlens.useful;
