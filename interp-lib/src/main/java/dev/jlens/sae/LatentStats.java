package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.util.Tensors;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One dictionary's dead- and dense-latent bookkeeping during training. A latent is dead once it has not fired for
 * {@code deadAfterTokens} tokens (AuxK, resampling and the logged dead fraction read this); it is dense when it fired
 * on more than {@link SaeTrainer#DENSE_FRACTION} of the tokens of the last complete window of
 * {@code densityWindowSteps} steps (of the current window, before the first one completes).
 */
final class LatentStats {
    /** What one step's firings amount to. */
    record Counts(long firings, int dead, int dense) {}

    private final long[] sinceFired;     // tokens since each latent last fired
    private final long[] windowCounts;   // firings in the current density window
    private long windowTokens;
    private double[] density;            // firing rate per latent over the last complete window (null before one)

    LatentStats(int dSae) {
        sinceFired = new long[dSae];
        windowCounts = new long[dSae];
    }

    /** Folds in one step's firings ({@code fired[j]}: tokens of the batch latent j fired on); returns the counts. */
    Counts record(float[] fired, int batch, SaeTrainConfig cfg) {
        int dSae = fired.length;
        long total = 0;
        int dead = 0;
        for (int j = 0; j < dSae; j++) {
            long c = (long) fired[j];
            total += c;
            sinceFired[j] = c > 0 ? 0 : sinceFired[j] + batch;
            windowCounts[j] += c;
            if (sinceFired[j] >= cfg.deadAfterTokens()) dead++;
        }
        windowTokens += batch;
        double[] rate = density;
        if (windowTokens >= (long) cfg.densityWindowSteps() * batch) {
            density = new double[dSae];
            for (int j = 0; j < dSae; j++) density[j] = (double) windowCounts[j] / windowTokens;
            Arrays.fill(windowCounts, 0);
            windowTokens = 0;
            rate = density;
        }
        int dense = 0;
        for (int j = 0; j < dSae; j++) {
            double r = rate != null ? rate[j] : (double) windowCounts[j] / windowTokens;
            if (r > SaeTrainer.DENSE_FRACTION) dense++;
        }
        return new Counts(total, dead, dense);
    }

    /** The dead latents, in order. */
    List<Integer> dead(long deadAfterTokens) {
        List<Integer> out = new ArrayList<>();
        for (int j = 0; j < sinceFired.length; j++) if (sinceFired[j] >= deadAfterTokens) out.add(j);
        return out;
    }

    /** Boolean {@code [dSae]}, true where a latent is dead, on {@code mgr}; null when none is. */
    NDArray deadMask(NDManager mgr, long deadAfterTokens) {
        boolean[] dead = new boolean[sinceFired.length];
        boolean any = false;
        for (int j = 0; j < dead.length; j++) {
            dead[j] = sinceFired[j] >= deadAfterTokens;
            any |= dead[j];
        }
        return any ? Tensors.owned(mgr.create(dead)) : null;
    }

    /** Latent {@code j} was re-initialised: it starts a fresh dead window. */
    void revive(int j) {
        sinceFired[j] = 0;
    }

    /** Each latent's tokens since it last fired (a copy). */
    long[] tokensSinceFired() {
        return sinceFired.clone();
    }

    /** Writes the counters into a dictionary's entry of the trainer state. */
    void write(ObjectNode d) {
        ArrayNode since = d.putArray("since_fired");
        for (long v : sinceFired) since.add(v);
        ArrayNode wc = d.putArray("window_counts");
        for (long v : windowCounts) wc.add(v);
        d.put("window_tokens", windowTokens);
        if (density == null) {
            d.putNull("density");
        } else {
            ArrayNode dn = d.putArray("density");
            for (double v : density) dn.add(v);
        }
    }

    /** Reads the counters written by {@link #write}; {@code name} is the dictionary's, for messages. */
    void read(JsonNode d, String name) {
        readLongs(d.path("since_fired"), sinceFired, name);
        readLongs(d.path("window_counts"), windowCounts, name);
        windowTokens = d.path("window_tokens").asLong();
        density = null;
        if (d.hasNonNull("density")) {
            density = new double[sinceFired.length];
            for (int j = 0; j < density.length; j++) density[j] = d.get("density").get(j).asDouble();
        }
    }

    private static void readLongs(JsonNode a, long[] into, String name) {
        if (a.size() != into.length) {
            throw new IllegalArgumentException("trainer state of '" + name + "' has " + a.size() + " latent counters for "
                    + into.length + " latents");
        }
        for (int j = 0; j < into.length; j++) into[j] = a.get(j).asLong();
    }
}
