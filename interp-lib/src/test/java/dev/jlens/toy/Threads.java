package dev.jlens.toy;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/** Pins PyTorch to one intra-op thread for a test class (the machine is small and shared) and restores it after. */
final class Threads {
    private static int saved = -1;

    private Threads() {}

    static void pinOne() {
        Engine.getInstance();   // loads the native library
        saved = JniUtils.getNumThreads();
        JniUtils.setNumThreads(1);
    }

    static void restore() {
        if (saved > 0) JniUtils.setNumThreads(saved);
    }
}
