package dev.jlens.useful;

/**
 * A scorer of binary tasks with one interface for every method in a comparison: {@link #fit} sees only training rows
 * and their labels, the returned {@link Fitted} scores any rows (higher means class 1 is more likely). Methods are
 * deterministic: the same rows give the same model.
 *
 * <pre>{@code
 * try (Method.Fitted f = Baselines.gbt(100, 3, 0.1).fit(xTrain, yTrain)) {
 *     double auroc = Metrics.auroc(f.score(xTest), yTest);
 * }
 * }</pre>
 */
public interface Method {

    /** A short name with its settings, e.g. {@code logistic(l2=0.001)}. */
    String name();

    /** Fits on rows {@code x [n][d]} with labels {@code y} (0 or 1). */
    Fitted fit(float[][] x, int[] y);

    /** A fitted scorer. Closing frees what it holds outside the Java heap (trees); it throws nothing. */
    interface Fitted extends AutoCloseable {
        /** One score per row; higher means class 1. */
        double[] score(float[][] x);

        @Override
        default void close() {}
    }
}
