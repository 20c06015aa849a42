package dev.jlens.model.arch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

import java.util.Map;
import java.util.Set;

/** Where an architecture takes its tensors from when it loads (a checkpoint, or a map in tests). */
public interface Weights {

    /** Tensors held in memory (a test's checkpoint, say); each load hands out a copy, as a real checkpoint does. */
    static Weights of(Map<String, NDArray> tensors) {
        return new Weights() {
            @Override
            public boolean contains(String name) {
                return tensors.containsKey(name);
            }

            @Override
            public Set<String> names() {
                return tensors.keySet();
            }

            @Override
            public NDArray load(String name) {
                return tensors.get(name).duplicate();
            }
        };
    }

    /** True if a tensor has this exact name. */
    boolean contains(String name);

    /** All tensor names. */
    Set<String> names();

    /** Loads a tensor as float32, owned by the model's manager. */
    NDArray load(String name);

    /** Loads a tensor and checks its shape, naming the tensor and both shapes on mismatch. */
    default NDArray load(String name, long... expected) {
        NDArray a = load(name);
        Shape want = new Shape(expected);
        if (!a.getShape().equals(want)) {
            Shape got = a.getShape();
            a.close();
            throw new IllegalArgumentException("checkpoint tensor '" + name + "' has shape " + got + " but the config "
                    + "implies " + want + " (does config.json match the weights?)");
        }
        return a;
    }
}
