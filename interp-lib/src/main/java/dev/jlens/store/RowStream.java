package dev.jlens.store;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.Hook;
import dev.jlens.hook.HookScope;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Activation rows in data order: token batch after token batch, each kept position (not padding, not the first
 * token when BOS is excluded) of each sequence in row-major order, the sources' vectors concatenated source-major.
 * A stream can start at any cursor {@code (batch, row)}, which is what lets a cache build resume.
 */
final class RowStream {

    /** Where a stream stands: the next row is row {@code row} of token batch {@code batch}. */
    record Cursor(long batch, int row) {
        static final Cursor START = new Cursor(0, 0);
    }

    /** Thrown by a hook once a model has produced every activation needed, to skip the rest of the forward pass. */
    private static final class StopForward extends RuntimeException {
        private static final long serialVersionUID = 1L;

        StopForward() {
            super("activations captured", null, false, false);
        }
    }

    private final List<ActivationStore.Source> sources;
    private final int[] dims;
    private final int width;
    private final TokenBatches tokens;
    private final boolean excludeBos;

    private long nextBatch;
    private float[] pending = new float[0]; // rows of token batch nextBatch - 1
    private int pendingRows;
    private int pendingPos;
    private boolean ended;
    private long tokensRead;

    RowStream(List<ActivationStore.Source> sources, int[] dims, TokenBatches tokens, boolean excludeBos, Cursor start) {
        this.sources = sources;
        this.dims = dims;
        this.width = Arrays.stream(dims).sum();
        this.tokens = tokens;
        this.excludeBos = excludeBos;
        this.nextBatch = start.batch();
        if (start.row() > 0) {
            if (!load()) {
                throw new IllegalStateException("cannot resume at row " + start.row() + " of token batch "
                        + start.batch() + ": the token source ends before it");
            }
            if (start.row() > pendingRows) {
                throw new IllegalStateException("cannot resume at row " + start.row() + " of token batch "
                        + start.batch() + ": it has only " + pendingRows + " rows (did the token source change?)");
            }
            pendingPos = start.row();
        }
    }

    /** Reads up to {@code maxRows} rows into {@code dst} from row {@code dstRow}; returns how many (0 at the end). */
    int read(float[] dst, int dstRow, int maxRows) {
        int done = 0;
        while (done < maxRows) {
            if (pendingPos == pendingRows && !load()) break;
            int n = Math.min(maxRows - done, pendingRows - pendingPos);
            System.arraycopy(pending, pendingPos * width, dst, (dstRow + done) * width, n * width);
            pendingPos += n;
            done += n;
        }
        return done;
    }

    /** The position of the next row. */
    Cursor cursor() {
        return pendingPos < pendingRows ? new Cursor(nextBatch - 1, pendingPos) : new Cursor(nextBatch, 0);
    }

    /** Token positions fed to the models so far (padding included). */
    long tokensRead() {
        return tokensRead;
    }

    /** Computes the rows of the next token batch that has any; false at the end of the source. */
    private boolean load() {
        while (!ended) {
            Batch batch = tokens.get(nextBatch);
            if (batch == null) {
                ended = true;
                break;
            }
            nextBatch++;
            tokensRead += (long) batch.size() * batch.length();
            pendingRows = rows(batch);
            pendingPos = 0;
            if (pendingRows > 0) return true;
        }
        pendingRows = 0;
        pendingPos = 0;
        return false;
    }

    /** Fills {@code pending} with the kept rows of {@code batch}; returns their number. */
    private int rows(Batch batch) {
        float[][] acts = capture(sources, batch);
        boolean[][] keep = keptPositions(batch, excludeBos);
        int p = batch.length();
        int kept = 0;
        for (boolean[] row : keep) for (boolean k : row) if (k) kept++;
        if (pending.length < kept * width) pending = new float[kept * width];
        int r = 0;
        for (int b = 0; b < batch.size(); b++) {
            for (int t = 0; t < p; t++) {
                if (!keep[b][t]) continue;
                int at = r * width;
                for (int s = 0; s < dims.length; s++) {
                    System.arraycopy(acts[s], (b * p + t) * dims[s], pending, at, dims[s]);
                    at += dims[s];
                }
                r++;
            }
        }
        return kept;
    }

    /** Positions that give rows: not padding, and not the first real token of a sequence when BOS is excluded. */
    static boolean[][] keptPositions(Batch batch, boolean excludeBos) {
        boolean[][] keep = new boolean[batch.size()][];
        for (int b = 0; b < batch.size(); b++) {
            keep[b] = batch.mask()[b].clone();
            if (excludeBos) {
                for (int t = 0; t < keep[b].length; t++) {
                    if (keep[b][t]) {
                        keep[b][t] = false;
                        break;
                    }
                }
            }
        }
        return keep;
    }

    /**
     * Runs each distinct model once over {@code batch}, reading every source's hook, and stops each forward pass as
     * soon as its last needed hook has fired. Returns per source the activations {@code [batch * pos * dim]}
     * (trailing dimensions flattened, e.g. {@code hook_z}'s heads), as float32.
     */
    static float[][] capture(List<ActivationStore.Source> sources, Batch batch) {
        Map<HookedTransformer, Map<String, float[]>> byModel = new IdentityHashMap<>();
        for (ActivationStore.Source s : sources) {
            byModel.computeIfAbsent(s.model(), m -> new LinkedHashMap<>()).put(s.hook(), null);
        }
        for (Map.Entry<HookedTransformer, Map<String, float[]>> e : byModel.entrySet()) {
            runUntilCaptured(e.getKey(), e.getValue(), batch);
        }
        float[][] out = new float[sources.size()][];
        for (int i = 0; i < out.length; i++) out[i] = byModel.get(sources.get(i).model()).get(sources.get(i).hook());
        return out;
    }

    private static void runUntilCaptured(HookedTransformer model, Map<String, float[]> wanted, Batch batch) {
        Map<String, float[]> got = new HashMap<>();
        List<Hook> hooks = new ArrayList<>();
        for (String name : wanted.keySet()) {
            hooks.add(Hook.fwd(name, (act, hp) -> {
                got.put(name, toFloats(act, batch, name));
                if (got.size() == wanted.size()) throw new StopForward();
                return null;
            }));
        }
        try (HookScope scope = model.hooks(hooks.toArray(new Hook[0]))) {
            NDArray logits = model.forward(batch);
            logits.close();
        } catch (StopForward expected) {
            // every activation captured; the rest of the forward pass was skipped
        }
        for (String name : wanted.keySet()) {
            float[] values = got.get(name);
            if (values == null) {
                throw new IllegalStateException("hook point " + name + " did not fire during the forward pass; "
                        + "read activations at a hook the model runs on every token (e.g. blocks.0.hook_resid_post)");
            }
            wanted.put(name, values);
        }
    }

    private static float[] toFloats(NDArray act, Batch batch, String name) {
        Shape shape = act.getShape();
        // Patterns and scores are [batch, head, query, key]: their shape alone can pass for [batch, pos, ...].
        boolean perHeadPair = name.endsWith("hook_pattern") || name.endsWith("hook_attn_scores");
        if (perHeadPair || shape.dimension() < 3 || shape.get(0) != batch.size() || shape.get(1) != batch.length()) {
            throw new IllegalArgumentException("hook point " + name + " gives activations of shape " + shape
                    + ", not [batch " + batch.size() + ", pos " + batch.length() + ", ...]: a store needs one vector "
                    + "per token (resid, mlp, attn outputs, hook_z), not attention patterns or scores");
        }
        // The hook runs inside the forward pass's scope, which frees the converted copy.
        return act.getDataType() == DataType.FLOAT32 ? act.toFloatArray() : act.toType(DataType.FLOAT32, false).toFloatArray();
    }
}
