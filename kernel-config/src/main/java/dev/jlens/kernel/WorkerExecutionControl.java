package dev.jlens.kernel;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import jdk.jshell.execution.DirectExecutionControl;

/**
 * Runs snippets in the kernel's own JVM, each on a long-lived worker thread, and keeps each snippet's real
 * result object (JShell itself only sees a key to it).
 *
 * <p>In-process execution is what lets results keep their type (a Table renders as a table, not as its
 * toString) and lets {@code display()} reach the kernel. The worker thread makes a running cell interruptible:
 * an interrupt first interrupts the thread (sleeps, waits and loops that check the flag stop at once), then,
 * if the code keeps running, stops the thread, and as a last resort abandons it to a fresh worker so the
 * kernel itself stays usable. One worker thread (not a pool) serves all cells so thread-local state such as
 * DJL's NDScope behaves as in a plain program. Snippet classes are loaded with their {@code System.exit} calls
 * rewritten ({@link ExitGuard}).
 */
final class WorkerExecutionControl extends DirectExecutionControl {

    /** Exception "class name" marking a cell that was interrupted (has a space: cannot clash with a class). */
    static final String INTERRUPTED = "jlens interrupted";

    private static final String KEY_PREFIX = "jlens-value-";
    private static final Object NULL = new Object();
    private static final long GRACE_MILLIS = Long.getLong("jlens.interrupt.graceMillis", 1000);

    private final Map<String, Object> results = new ConcurrentHashMap<>();
    private final AtomicLong keys = new AtomicLong();
    private volatile Worker worker = new Worker();
    private volatile Run current;

    /** One invocation in flight. */
    private static final class Run {
        final CompletableFuture<Object> outcome = new CompletableFuture<>();
        volatile boolean interrupted;
        final Worker worker;

        Run(Worker worker) {
            this.worker = worker;
        }
    }

    /** The thread user code runs on. */
    private static final class Worker extends Thread {
        private static final AtomicLong COUNT = new AtomicLong();
        final BlockingQueue<Runnable> tasks = new LinkedBlockingQueue<>();

        Worker() {
            super("jlens-cell-" + COUNT.incrementAndGet());
            setDaemon(true);
            start();
        }

        @Override
        public void run() {
            while (true) {
                try {
                    Runnable task = tasks.take();
                    task.run();
                    // Clear an interrupt that the finished cell did not consume, so the next cell starts clean.
                    Thread.interrupted();
                } catch (InterruptedException e) {
                    // A late interrupt that arrived between cells: keep serving.
                } catch (ThreadDeath e) {
                    // A stop() that raced with the end of its cell: keep serving.
                }
            }
        }
    }

    @Override
    public void load(ClassBytecodes[] cbcs)
            throws ClassInstallException, NotImplementedException, EngineTerminationException {
        super.load(ExitGuard.guard(cbcs));
    }

    @Override
    public void redefine(ClassBytecodes[] cbcs)
            throws ClassInstallException, NotImplementedException, EngineTerminationException {
        super.redefine(ExitGuard.guard(cbcs));
    }

    @Override
    protected String invoke(Method doitMethod) throws Exception {
        Object value = Thread.currentThread() instanceof Worker
                ? doitMethod.invoke(null) // nested evaluation from user code: already on the worker
                : runOnWorker(doitMethod);
        String key = KEY_PREFIX + keys.incrementAndGet();
        results.put(key, value == null ? NULL : value);
        return key;
    }

    private Object runOnWorker(Method doitMethod) throws Exception {
        Run run = new Run(worker);
        current = run;
        run.worker.tasks.add(() -> {
            try {
                run.outcome.complete(doitMethod.invoke(null));
            } catch (Throwable t) {
                // Includes ThreadDeath from stop(): it must end here, not kill the worker.
                run.outcome.completeExceptionally(t);
            }
        });
        try {
            return run.outcome.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            Throwable root = cause instanceof InvocationTargetException ite && ite.getCause() != null
                    ? ite.getCause() : cause;
            if (run.interrupted && (root instanceof ThreadDeath || root instanceof InterruptedException)) {
                throw interruptedException();
            }
            if (cause instanceof InvocationTargetException ite) {
                throw ite; // the superclass turns the user's exception into a UserException
            }
            throw new InvocationTargetException(cause);
        } catch (java.util.concurrent.CancellationException e) {
            throw interruptedException();
        } finally {
            current = null;
        }
    }

    private UserException interruptedException() {
        return new UserException("the cell was interrupted; earlier state is kept", INTERRUPTED,
                new StackTraceElement[0]);
    }

    /** Takes the result object stored under a key that JShell reported as a snippet's value. */
    Object takeResult(String key) {
        if (key == null || !key.startsWith(KEY_PREFIX)) {
            return null;
        }
        Object v = results.remove(key);
        return v == NULL ? null : v;
    }

    /** Drops results nobody took (values of declarations and statements). */
    void clearResults() {
        results.clear();
    }

    /** Whether a cell is running. */
    boolean isRunning() {
        return current != null;
    }

    /**
     * Interrupts the running cell: interrupt the thread, after a grace period stop it, and if even that does not
     * end it, abandon it to a new worker so that the cell returns and later cells run.
     */
    @SuppressWarnings({"deprecation", "removal"})
    void interrupt() {
        Run run = current;
        if (run == null) {
            return;
        }
        run.interrupted = true;
        run.worker.interrupt();
        Thread escalation = new Thread(() -> {
            if (awaitDone(run, GRACE_MILLIS)) {
                return;
            }
            try {
                if (!run.outcome.isDone()) {
                    run.worker.stop();
                }
            } catch (UnsupportedOperationException e) {
                // Thread.stop is gone on newer JDKs: fall through to abandoning the thread.
            }
            if (awaitDone(run, GRACE_MILLIS)) {
                return;
            }
            if (worker == run.worker) {
                worker = new Worker();
            }
            System.err.println("jlens: the interrupted code did not stop; it keeps running in the background");
            run.outcome.cancel(false);
        }, "jlens-interrupt");
        escalation.setDaemon(true);
        escalation.start();
    }

    private static boolean awaitDone(Run run, long millis) {
        try {
            run.outcome.get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return true;
        } catch (ExecutionException | java.util.concurrent.CancellationException e) {
            return true;
        }
    }

    @Override
    public void stop() {
        interrupt();
    }
}
