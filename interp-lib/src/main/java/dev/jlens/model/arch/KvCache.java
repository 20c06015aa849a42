package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import java.util.Arrays;

/**
 * Keys and values of every layer for the tokens seen so far, so generation feeds only the new token each step.
 * Keys are stored after rotary embedding, as {@code [batch, pos, kv_head, d_head]}. Owns its arrays: close it.
 */
public final class KvCache implements AutoCloseable {
    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private boolean[][] valid = new boolean[0][0];   // [batch][pos] true where a real (non-pad) token is
    private int length;

    public KvCache(NDManager parent, int nLayers) {
        this.manager = parent.newSubManager();
        this.keys = new NDArray[nLayers];
        this.values = new NDArray[nLayers];
    }

    /** Tokens held so far (padding included). */
    public int length() {
        return length;
    }

    /** Which cached positions hold real tokens, per batch row. */
    public boolean[][] validMask() {
        return valid;
    }

    /** Keys of layer {@code layer}, {@code [batch, pos, kv_head, d_head]}, or null before the first step. */
    public NDArray keys(int layer) {
        return keys[layer];
    }

    /** Values of layer {@code layer}, {@code [batch, pos, kv_head, d_head]}, or null before the first step. */
    public NDArray values(int layer) {
        return values[layer];
    }

    /** Appends this step's keys and values of one layer; returns the full keys and values (cache + new). */
    public NDArray[] append(int layer, NDArray newKeys, NDArray newValues) {
        NDArray k = keys[layer] == null ? newKeys.duplicate() : keys[layer].concat(newKeys, 1);
        NDArray v = values[layer] == null ? newValues.duplicate() : values[layer].concat(newValues, 1);
        k.attach(manager);
        v.attach(manager);
        ai.djl.ndarray.NDScope.unregister(k, v);
        if (keys[layer] != null) keys[layer].close();
        if (values[layer] != null) values[layer].close();
        keys[layer] = k;
        values[layer] = v;
        return new NDArray[] {k, v};
    }

    /** Records the validity of the tokens of a new step; called once per step before the layers run. */
    public void extend(boolean[][] stepValid) {
        if (valid.length != 0 && valid.length != stepValid.length) {
            throw new IllegalArgumentException("batch size changed from " + valid.length + " to " + stepValid.length);
        }
        int add = stepValid.length == 0 ? 0 : stepValid[0].length;
        boolean[][] next = new boolean[stepValid.length][];
        for (int b = 0; b < stepValid.length; b++) {
            next[b] = Arrays.copyOf(valid.length == 0 ? new boolean[0] : valid[b], length + add);
            System.arraycopy(stepValid[b], 0, next[b], length, add);
        }
        valid = next;
        length += add;
    }

    /**
     * A new cache holding this one's keys and values repeated {@code k} times along the batch (row {@code j * batch + i}
     * is row {@code i}), for layers {@code fromLayer} and up only: a prefix shared by {@code k} copies of a batch.
     */
    public KvCache repeat(int k, int fromLayer) {
        if (k < 1) throw new IllegalArgumentException("repeat count must be >= 1, got " + k);
        KvCache out = new KvCache(manager.getParentManager(), keys.length);
        for (int l = Math.max(0, fromLayer); l < keys.length; l++) {
            if (keys[l] == null) continue;
            NDArray kk = tileBatch(keys[l], k), vv = tileBatch(values[l], k);
            kk.attach(out.manager);
            vv.attach(out.manager);
            ai.djl.ndarray.NDScope.unregister(kk, vv);
            out.keys[l] = kk;
            out.values[l] = vv;
        }
        boolean[][] v = new boolean[valid.length * k][];
        for (int j = 0; j < k; j++) for (int b = 0; b < valid.length; b++) v[j * valid.length + b] = valid[b].clone();
        out.valid = v;
        out.length = length;
        return out;
    }

    private static NDArray tileBatch(NDArray x, int k) {
        if (k == 1) return x.duplicate();
        long[] reps = new long[x.getShape().dimension()];
        Arrays.fill(reps, 1);
        reps[0] = k;
        return x.tile(reps);
    }

    @Override
    public void close() {
        manager.close();
    }

    @Override
    public String toString() {
        return "KvCache(" + keys.length + " layers, " + length + " positions, batch " + valid.length + ")";
    }
}
