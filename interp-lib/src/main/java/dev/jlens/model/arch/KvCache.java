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

    @Override
    public void close() {
        manager.close();
    }

    @Override
    public String toString() {
        return "KvCache(" + keys.length + " layers, " + length + " positions, batch " + valid.length + ")";
    }
}
