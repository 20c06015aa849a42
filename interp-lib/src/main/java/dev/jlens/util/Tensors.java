package dev.jlens.util;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;

import java.util.concurrent.ConcurrentHashMap;

/**
 * Engine-owned tensors for code that runs under autograd. DJL turns a Java number or array into a tensor that borrows
 * a direct buffer the garbage collector may free while autograd still holds the tensor for the backward pass; these
 * helpers hand out tensors whose memory the engine owns.
 */
public final class Tensors {
    // 0-dim float32 constants, made once: an op with a Java number builds a scalar tensor on every call (~25 us extra).
    private static final ConcurrentHashMap<Float, NDArray> SCALARS = new ConcurrentHashMap<>();
    private static NDManager scalarManager;

    private Tensors() {}

    /**
     * A process-lifetime float32 scalar tensor (CPU; PyTorch accepts 0-dim CPU tensors in ops on any device). For
     * constants only (cached forever): for a value that changes every step use {@link #scalar(NDManager, float)}.
     */
    public static NDArray scalar(float v) {
        return SCALARS.computeIfAbsent(v, k -> {
            synchronized (Tensors.class) {
                if (scalarManager == null) scalarManager = NDManager.newBaseManager();
                NDArray s = owned(scalarManager.create(k));
                NDScope.unregister(s);
                return s;
            }
        });
    }

    /** A float32 scalar tensor on {@code manager} whose memory the engine owns (close it, or let a scope do it). */
    public static NDArray scalar(NDManager manager, float v) {
        return owned(manager.create(v));
    }

    /** An engine-owned copy of {@code borrowed} (which is closed): safe to keep for a backward pass. */
    public static NDArray owned(NDArray borrowed) {
        NDArray copy = borrowed.duplicate();
        borrowed.close();
        return copy;
    }

    /**
     * A new gradient collector that leaves gradient recording off on this thread when it closes. DJL's collector
     * restores the thread's previous mode, and libtorch starts every thread other than the engine's first with
     * recording on: without this, an optimizer's in-place update after the collector closes (on a notebook's cell
     * thread, a worker pool) fails with "a leaf Variable that requires grad is being used in an in-place operation".
     * Fails clearly when another collector is open (DJL allows one per JVM).
     */
    public static ai.djl.training.GradientCollector gradientCollector() {
        ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        try {
            return ai.djl.engine.Engine.getInstance().newGradientCollector();
        } catch (IllegalStateException e) {
            throw new IllegalStateException("cannot record gradients: another GradientCollector is open in this JVM "
                    + "(DJL allows one at a time); close it first", e);
        }
    }
}
