package dev.jlens.harvest;

import dev.jlens.model.HookedTransformer;

import java.nio.file.Path;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The models of one JVM (a Spark executor, or the driver in local mode), kept across tasks: a task borrows a model
 * for its part and gives it back, so a model directory is loaded once per task that runs at the same time (a model
 * holds its hooks, so two concurrent forward passes need two copies), never once per part or per row. Models stay
 * loaded for the life of the JVM.
 */
final class ModelPool {

    private static final Map<Path, Queue<HookedTransformer>> IDLE = new ConcurrentHashMap<>();
    private static final Map<Path, AtomicInteger> LOADS = new ConcurrentHashMap<>();

    private ModelPool() {}

    /** A borrowed model; closing the lease gives it back. */
    record Lease(Path dir, HookedTransformer model, boolean loaded) implements AutoCloseable {
        @Override
        public void close() {
            IDLE.computeIfAbsent(dir, d -> new ConcurrentLinkedQueue<>()).add(model);
        }
    }

    /** An idle model from {@code dir}, or a newly loaded one ({@code loaded} then says so). */
    static Lease borrow(Path dir) {
        Path key = dir.toAbsolutePath().normalize();
        HookedTransformer idle = IDLE.computeIfAbsent(key, d -> new ConcurrentLinkedQueue<>()).poll();
        if (idle != null) return new Lease(key, idle, false);
        HookedTransformer model = HookedTransformer.load(key);
        LOADS.computeIfAbsent(key, d -> new AtomicInteger()).incrementAndGet();
        return new Lease(key, model, true);
    }

    /** How many times this JVM has loaded {@code dir}. */
    static int loads(Path dir) {
        AtomicInteger n = LOADS.get(dir.toAbsolutePath().normalize());
        return n == null ? 0 : n.get();
    }
}
