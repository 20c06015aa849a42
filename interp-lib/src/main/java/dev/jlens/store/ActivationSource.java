package dev.jlens.store;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import java.util.Optional;

/**
 * Batches of activation vectors {@code [batch, width]} for training sparse dictionaries, addressed by step so that a
 * resumed run sees exactly the batches it would have seen. Batches hold raw activations;
 * {@link #normalizationScale()} is the factor that brings them to unit mean squared norm.
 */
public interface ActivationSource {

    /** Width of one activation vector ({@code nSources * d_model} when several sources are concatenated). */
    int width();

    /** Number of sources concatenated in each vector (1 for one hook point of one model). */
    default int nSources() {
        return 1;
    }

    /** The hook point the activations are read at; empty when they do not come from a model. */
    default Optional<String> hookPoint() {
        return Optional.empty();
    }

    /**
     * Batch number {@code step} of {@code batchSize} vectors, attached to {@code manager}: the same arguments give the
     * same batch (after a restart too).
     */
    NDArray batch(long step, int batchSize, NDManager manager);

    /** Raw activation x {@code normalizationScale()} has unit mean squared norm (1 when not estimated). */
    default double normalizationScale() {
        return 1.0;
    }

    /**
     * A view of some of this source's concatenated sources, in the order given: {@code select(0, 2)} of a store over
     * {@code [base | ft | control]} is {@code [base | control]}, for a crosscoder over that pair from one harvest. Its
     * normalization scale is estimated on its own first batch (when this source estimates one).
     */
    default ActivationSource select(int... sources) {
        return SourceViews.select(this, sources);
    }

    /**
     * The difference of two of this source's concatenated sources, {@code x[minuend] - x[subtrahend]} (width
     * {@code d_model}): {@code difference(1, 0)} of a {@code [base | tuned]} store is the activation difference a
     * dictionary can be trained on. Its normalization scale is estimated on its own first batch.
     */
    default ActivationSource difference(int minuend, int subtrahend) {
        return SourceViews.difference(this, minuend, subtrahend);
    }

    /**
     * The same batches with a given normalization scale instead of this source's own: to train a dictionary further on
     * new activations in the units it was trained in (a stage-wise diff continues a base model's SAE on a fine-tuned
     * model's activations: {@code ftSource.withNormalizationScale(sae.cfg().inputScale())}).
     */
    default ActivationSource withNormalizationScale(double scale) {
        return SourceViews.withScale(this, scale);
    }
}
