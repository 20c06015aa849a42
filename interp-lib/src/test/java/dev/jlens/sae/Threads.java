package dev.jlens.sae;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/**
 * Pins PyTorch to one intra-op thread for a test class and restores the previous count afterwards: the machine is
 * shared and small, and bit-for-bit comparisons need a fixed count.
 */
final class Threads {
    private static int saved = -1;

    private Threads() {}

    static void pinOne() {
        Engine.getInstance();
        saved = JniUtils.getNumThreads();
        JniUtils.setNumThreads(1);
    }

    static void restore() {
        if (saved > 0) JniUtils.setNumThreads(saved);
    }
}
