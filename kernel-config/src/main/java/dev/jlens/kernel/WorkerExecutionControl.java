package dev.jlens.kernel;

import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import dev.jlens.notebook.NotebookMemory;
import jdk.jshell.execution.DirectExecutionControl;
import jdk.jshell.spi.SPIResolutionException;

/**
 * Runs snippets in the kernel's own JVM, each on a long-lived worker thread, and keeps each snippet's real
 * result object (JShell itself only sees a key to it).
 *
 * <p>In-process execution is what lets results keep their type (a Table renders as a table, not as its
 * toString) and lets {@code display()} reach the kernel. The worker thread makes a running cell interruptible:
 * an interrupt first interrupts the thread (sleeps, waits and loops that check the flag stop at once), then,
 * if the code keeps running, stops the thread, and as a last resort abandons it to a fresh worker so the
 * kernel itself stays usable. One worker thread (not a pool) serves all cells so thread-local state such as
 * DJL's NDScope behaves as in a plain program.
 *
 * <p>Everything that runs user code goes through the worker: the snippets, the messages of the exceptions they
 * throw, and (through {@link #callOnWorker}) the rendering of their results. The kernel's shell thread never
 * calls into a user's object, so no {@code toString} can hang it. Snippet classes are loaded with their
 * {@code System.exit} calls rewritten ({@link ExitGuard}).
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
    private volatile ExecutionTimes timing;
    /** A cell is being evaluated (compiled or run). */
    private volatile boolean cellActive;
    /** The cell was interrupted: none of its further snippets runs (also when JShell was still compiling). */
    private volatile boolean interruptPending;

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
                } catch (Throwable e) {
                    // Even an error escaping a task (OutOfMemoryError while completing it) must not end the
                    // worker: every later cell would wait for it forever.
                }
            }
        }
    }

    /** Code of a cell or of the kernel that the worker should run. */
    private interface Task {
        Object call() throws Throwable;
    }

    /** Thrown by {@link #callOnWorker} when the code ran past its time limit and was stopped. */
    static final class TimeLimitException extends Exception {
        TimeLimitException(long millis) {
            super("did not finish within " + millis + " ms", null, false, false);
        }
    }

    /** Thrown by {@link #callOnWorker} when an interrupt request stopped the code. */
    static final class InterruptedByUserException extends Exception {
        InterruptedByUserException() {
            super("interrupted", null, false, false);
        }
    }

    // ---- class loading --------------------------------------------------------------------------------------

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

    // ---- snippets -------------------------------------------------------------------------------------------

    @Override
    protected String invoke(Method doitMethod) throws Exception {
        Object value = Thread.currentThread() instanceof Worker
                ? invokeUser(doitMethod) // nested evaluation from user code: already on the worker
                : runSnippet(doitMethod);
        return store(value);
    }

    /** A variable's current value, kept as an object like a snippet's result (see {@link #takeResult}). */
    @Override
    public String varValue(String className, String varName) throws RunException, EngineTerminationException,
            InternalException {
        try {
            Field field = findClass(className).getDeclaredField(varName);
            field.setAccessible(true);
            return store(field.get(null));
        } catch (Throwable e) {
            throw new InternalException(e.toString());
        }
    }

    private String store(Object value) {
        String key = KEY_PREFIX + keys.incrementAndGet();
        results.put(key, value == null ? NULL : value);
        return key;
    }

    private Object runSnippet(Method doitMethod) throws Exception {
        Run run = submit(() -> invokeUser(doitMethod));
        try {
            return await(run, 0);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            Throwable root = cause instanceof InvocationTargetException ite && ite.getCause() != null
                    ? ite.getCause() : cause;
            if (run.interrupted && (root instanceof ThreadDeath || root instanceof InterruptedException)) {
                throw interruptedException();
            }
            if (cause instanceof Exception ex) {
                throw ex; // a UserException made on the worker, or an InvocationTargetException for the superclass
            }
            throw new InvocationTargetException(cause);
        } catch (CancellationException | TimeoutException e) {
            throw interruptedException();
        }
    }

    /**
     * Invokes a snippet and, on the worker, turns what it throws into JShell's {@link UserException}: reading the
     * exception's message is user code too (an overridden {@code getMessage} may loop) and must not run on the
     * kernel's shell thread.
     */
    private static Object invokeUser(Method doitMethod) throws Exception {
        try {
            return doitMethod.invoke(null);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause == null || cause instanceof SPIResolutionException || cause instanceof ThreadDeath
                    || cause.getClass() == InterruptedException.class) {
                throw e; // the superclass and runSnippet know these
            }
            throw userException(cause, Collections.newSetFromMap(new IdentityHashMap<>()));
        }
    }

    private static UserException userException(Throwable t, Set<Throwable> seen) {
        seen.add(t);
        String message;
        try {
            message = t.getMessage();
        } catch (RuntimeException | StackOverflowError e) {
            message = "(its getMessage() threw " + e.getClass().getName() + ")";
        }
        UserException converted = new UserException(message, t.getClass().getName(), t.getStackTrace());
        Throwable cause = t.getCause();
        if (cause != null && !seen.contains(cause)) {
            converted.initCause(userException(cause, seen));
        }
        return converted;
    }

    private UserException interruptedException() {
        return new UserException("the cell was interrupted; earlier state is kept", INTERRUPTED,
                new StackTraceElement[0]);
    }

    // ---- kernel code that calls into user objects -----------------------------------------------------------

    /**
     * Runs kernel code that calls into user objects (rendering a cell's result: {@code toString}, registered
     * renderers) on the worker, so that an interrupt request stops it like a cell, and stops it after
     * {@code limitMillis} (0: no limit).
     *
     * @throws TimeLimitException the code ran past the limit and was stopped (or abandoned)
     * @throws InterruptedByUserException an interrupt request stopped it
     * @throws ExecutionException the code threw; the cause is what it threw
     */
    <T> T callOnWorker(Callable<T> task, long limitMillis)
            throws TimeLimitException, InterruptedByUserException, ExecutionException {
        if (Thread.currentThread() instanceof Worker) {
            try {
                return task.call();
            } catch (Exception e) {
                throw new ExecutionException(e);
            }
        }
        Run run = submit(task::call);
        try {
            @SuppressWarnings("unchecked")
            T value = (T) await(run, limitMillis);
            return value;
        } catch (TimeoutException e) {
            throw new TimeLimitException(limitMillis);
        } catch (CancellationException e) {
            throw new InterruptedByUserException();
        } catch (ExecutionException e) {
            if (run.interrupted) {
                throw new InterruptedByUserException(); // whatever the stopped code threw on its way out
            }
            throw e;
        }
    }

    // ---- running on the worker ------------------------------------------------------------------------------

    private Run submit(Task task) {
        Run run = new Run(worker);
        current = run;
        if (interruptPending) {
            run.interrupted = true;
            run.outcome.completeExceptionally(new InterruptedException("interrupted before it started"));
            return run;
        }
        ExecutionTimes times = timing;
        run.worker.tasks.add(() -> {
            ExecutionTimes.Mark mark = times == null ? null : times.start();
            try (AutoCloseable memory = NotebookMemory.installed() ? NotebookMemory.userCode() : () -> { }) {
                Object value = task.call();
                if (mark != null) {
                    mark.stop();
                }
                run.outcome.complete(value);
            } catch (Throwable t) {
                // Includes ThreadDeath from stop(): it must end here, not kill the worker.
                if (mark != null) {
                    mark.stop();
                }
                run.outcome.completeExceptionally(t);
            }
        });
        return run;
    }

    /**
     * Waits for a run; with a limit, a run that exceeds it is stopped as on an interrupt request and this throws
     * {@link TimeoutException} once it has ended.
     */
    private Object await(Run run, long limitMillis)
            throws ExecutionException, TimeoutException, CancellationException {
        try {
            if (limitMillis <= 0) {
                return run.outcome.get();
            }
            try {
                return run.outcome.get(limitMillis, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                stop(run);
                try {
                    run.outcome.get(); // ends within two grace periods: stopped, or abandoned and cancelled
                } catch (ExecutionException | CancellationException ignored) {
                    // the run ended: what it threw is of no interest after the time limit
                }
                throw e;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("the kernel thread waiting for the cell was interrupted");
        } finally {
            current = null;
        }
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
     * Marks the start of a cell. An interrupt request applies to the whole cell: it stops the running snippet and
     * keeps the cell's later snippets from starting, so one that arrives while JShell compiles is not lost.
     */
    void beginCell() {
        interruptPending = false;
        cellActive = true;
    }

    /** Marks the end of a cell: a late interrupt request no longer applies to it. */
    void endCell() {
        cellActive = false;
        interruptPending = false;
    }

    /** Whether a cell is being evaluated (compiled or run). */
    boolean isCellActive() {
        return cellActive;
    }

    /** Starts adding the wall and CPU time of everything the worker runs to {@code times}; null stops. */
    void measure(ExecutionTimes times) {
        this.timing = times;
    }

    /**
     * Interrupts the running cell: interrupt the thread, after a grace period stop it, and if even that does not
     * end it, abandon it to a new worker so that the cell returns and later cells run.
     */
    void interrupt() {
        if (cellActive) {
            interruptPending = true; // the cell's later snippets do not run either
        }
        Run run = current;
        if (run != null) {
            stop(run);
        }
    }

    @SuppressWarnings({"deprecation", "removal"})
    private void stop(Run run) {
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
            // System.err: during the cell this is the notebook, where the user sees it.
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
        } catch (ExecutionException | CancellationException e) {
            return true;
        }
    }

    @Override
    public void stop() {
        interrupt();
    }
}
