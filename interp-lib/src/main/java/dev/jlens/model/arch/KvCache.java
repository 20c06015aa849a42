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
    private final int[] stored;                       // positions written per layer (the buffers may hold more)
    private final boolean[] grown;                    // a layer's buffer has had a second append: room doubles now
    private boolean[][] valid = new boolean[0][0];   // [batch][pos] true where a real (non-pad) token is
    private int length;

    public KvCache(NDManager parent, int nLayers) {
        this.manager = parent.newSubManager();
        this.keys = new NDArray[nLayers];
        this.values = new NDArray[nLayers];
        this.stored = new int[nLayers];
        this.grown = new boolean[nLayers];
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
        return keys[layer] == null ? null : filled(keys[layer], stored[layer]);
    }

    /** Values of layer {@code layer}, {@code [batch, pos, kv_head, d_head]}, or null before the first step. */
    public NDArray values(int layer) {
        return values[layer] == null ? null : filled(values[layer], stored[layer]);
    }

    /**
     * Appends this step's keys and values of one layer; returns the full keys and values (cache + new). The first
     * two appends to a layer (a prompt then its first generated token, or a derived prefix then a patching pass's
     * suffix) join exactly, one copy each; after that the buffer has room to grow (doubling when full), so a step
     * writes only its new positions instead of copying the whole cache. What is returned is a view of the filled part.
     */
    public NDArray[] append(int layer, NDArray newKeys, NDArray newValues) {
        int add = (int) newKeys.getShape().get(1);
        int need = stored[layer] + add;
        if (keys[layer] == null || (stored[layer] == keys[layer].getShape().get(1) && !grown[layer])) {
            // the first append (a prompt), or the first onto a full, exact cache (a patching pass's suffix after its
            // prefix): the exact result in one copy, no zeroed buffer; later appends (generation) double the room
            grown[layer] = keys[layer] != null;
            keys[layer] = joined(keys[layer], newKeys);
            values[layer] = joined(values[layer], newValues);
            stored[layer] = need;
            return new NDArray[] {filled(keys[layer], need), filled(values[layer], need)};
        }
        if (need > keys[layer].getShape().get(1)) {
            int capacity = Math.max(need, 2 * (int) keys[layer].getShape().get(1));
            keys[layer] = grow(keys[layer], stored[layer], newKeys, capacity);
            values[layer] = grow(values[layer], stored[layer], newValues, capacity);
        }
        String at = ":, " + stored[layer] + ":" + need;
        keys[layer].set(new ai.djl.ndarray.index.NDIndex(at), newKeys);
        values[layer].set(new ai.djl.ndarray.index.NDIndex(at), newValues);
        stored[layer] = need;
        return new NDArray[] {filled(keys[layer], need), filled(values[layer], need)};
    }

    /** {@code old} (full, or null) followed by {@code add} along the positions, as a new array this cache owns. */
    private NDArray joined(NDArray old, NDArray add) {
        NDArray out = old == null ? add.duplicate() : old.concat(add, 1);
        ai.djl.ndarray.NDScope.unregister(out);
        out.attach(manager);
        if (old != null) old.close();
        return out;
    }

    /** A zeroed buffer of {@code capacity} positions shaped like {@code like}, holding {@code old}'s first positions. */
    private NDArray grow(NDArray old, int used, NDArray like, int capacity) {
        long[] dims = like.getShape().getShape().clone();
        dims[1] = capacity;
        NDArray buf = manager.zeros(new ai.djl.ndarray.types.Shape(dims), like.getDataType(), like.getDevice());
        ai.djl.ndarray.NDScope.unregister(buf);
        if (old != null) {
            if (used > 0) {
                try (NDArray part = filled(old, used)) {
                    buf.set(new ai.djl.ndarray.index.NDIndex(":, 0:" + used), part);
                }
            }
            old.close();
        }
        return buf;
    }

    /** The first {@code used} positions of a buffer (a view, no copy). */
    private static NDArray filled(NDArray buf, int used) {
        return used == buf.getShape().get(1) ? buf.get(":") : buf.get(":, 0:" + used);
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
        boolean[][] v = new boolean[valid.length * k][];
        for (int j = 0; j < k; j++) for (int b = 0; b < valid.length; b++) v[j * valid.length + b] = valid[b].clone();
        return derive(fromLayer, x -> tileBatch(x, k), v, length);
    }

    /**
     * A new cache holding this one's first {@code length} positions (copies), every layer: the keys and values of a
     * prefix of the tokens, which under a causal mask are those a run of that prefix alone computes.
     */
    public KvCache prefix(int length) {
        if (length < 1 || length > this.length) {
            throw new IllegalArgumentException("prefix length must be in 1.." + this.length + ", got " + length);
        }
        boolean[][] v = new boolean[valid.length][];
        for (int b = 0; b < valid.length; b++) v[b] = Arrays.copyOf(valid[b], length);
        return derive(0, x -> x.get(":, 0:" + length).duplicate(), v, length);
    }

    /** A new cache holding rows {@code from .. to - 1} of this one's keys and values (copies), every layer. */
    public KvCache rows(int from, int to) {
        if (from < 0 || to > valid.length || from >= to) {
            throw new IllegalArgumentException("rows must satisfy 0 <= from < to <= " + valid.length + ", got " + from
                    + ".." + to);
        }
        boolean[][] v = new boolean[to - from][];
        for (int b = from; b < to; b++) v[b - from] = valid[b].clone();
        return derive(0, x -> x.get(from + ":" + to).duplicate(), v, length);
    }

    /**
     * A new cache whose layers {@code fromLayer} and up hold {@code f} of this one's keys and values ({@code f}
     * returns new arrays, which the new cache owns), with the given validity and length.
     */
    private KvCache derive(int fromLayer, java.util.function.UnaryOperator<NDArray> f, boolean[][] valid, int length) {
        KvCache out = new KvCache(manager.getParentManager(), keys.length);
        for (int l = Math.max(0, fromLayer); l < keys.length; l++) {
            if (keys[l] == null) continue;
            NDArray kk, vv;
            try (NDArray key = keys(l); NDArray value = values(l)) {
                kk = f.apply(key);
                vv = f.apply(value);
            }
            kk.attach(out.manager);
            vv.attach(out.manager);
            ai.djl.ndarray.NDScope.unregister(kk, vv);
            out.keys[l] = kk;
            out.values[l] = vv;
            out.stored[l] = (int) kk.getShape().get(1);
        }
        out.valid = valid;
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
