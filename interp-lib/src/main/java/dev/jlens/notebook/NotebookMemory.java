package dev.jlens.notebook;

import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.util.NativeResource;

import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.util.IdentityHashMap;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Native memory that behaves like Python's in a notebook: an array nothing reachable holds any more is freed, without
 * the user closing it. What a variable, a collection or record in a variable, or a displayed result holds stays
 * alive; {@code close()}, try-with-resources, {@code NDScope} and closing a manager keep freeing at once.
 *
 * <p>DJL 0.36 has no garbage-collected arrays: every manager holds its arrays strongly until it is closed. Once
 * {@link #install()}ed (the notebook kernel does it at startup), every manager holds its arrays and sub-managers
 * through weak references instead, so the garbage collector tells which arrays are unreachable; their native tensors
 * are freed on a thread that is not inside a native call at that moment (the owner thread between two operations, or
 * any thread while the owner is idle). A collection is requested when the native bytes of tracked arrays grow by
 * more than a threshold since the last one (like {@code DirectByteBuffer}'s limit, on a background thread so the
 * computation does not wait), and forced on the allocating thread when the growth reaches four times the threshold.
 *
 * <p>Arrays made from Java data on the CPU borrow a direct buffer (DJL keeps it alive through the array object).
 * Freed by the garbage collector, such a buffer would leave views and autograd's saved tensors pointing at freed
 * memory, so arrays a cell creates directly from Java data are given engine-owned storage at creation
 * ({@link #cellScope()}).
 */
public final class NotebookMemory {

    /** System property: native growth (MB) between two collections; default 160. */
    public static final String THRESHOLD_PROPERTY = "jlens.memory.gcThresholdMb";

    private static final Field RESOURCES = field(BaseNDManager.class, "resources");
    private static final Field HANDLE = field(NativeResource.class, "handle");
    private static final Field DATA_REF = field(PtNDArray.class, "dataRef");
    private static final Field SCOPE_RESOURCES = field(NDScope.class, "resources");

    private static final ReferenceQueue<Object> QUEUE = new ReferenceQueue<>();
    /** Every live entry: a weak reference is enqueued only while it is itself reachable, and a manager's map dies
     * with the manager. */
    private static final Set<Tracked> ENTRIES = ConcurrentHashMap.newKeySet();
    private static final AtomicLong TRACKED_BYTES = new AtomicLong();
    private static final AtomicLong TRACKED_ARRAYS = new AtomicLong();
    private static final AtomicLong FREED_ARRAYS = new AtomicLong();
    private static final AtomicLong FREED_BYTES = new AtomicLong();
    private static final AtomicLong COLLECTIONS = new AtomicLong();
    private static final AtomicLong COPIED_ARRAYS = new AtomicLong();
    private static final Semaphore GC_REQUESTS = new Semaphore(0);
    private static final long THRESHOLD = Long.getLong(THRESHOLD_PROPERTY, 160) << 20;
    /** Growth that a finished cell leaves for a collection while the kernel is idle. */
    private static final long IDLE_THRESHOLD = 32L << 20;

    private static volatile boolean installed;
    private static volatile Thread owner;
    private static volatile boolean ownerBusy = true;
    /** Tracked bytes right after the last collection and drain: the baseline growth is measured from. */
    private static final AtomicLong baseline = new AtomicLong();
    private static final AtomicBoolean gcPending = new AtomicBoolean();
    /** Freed bytes at the last malloc_trim, and how much must be freed before the next. */
    private static final AtomicLong trimmedAt = new AtomicLong();
    private static final long TRIM_EVERY = 64L << 20;

    private NotebookMemory() {}

    /** What the memory manager has seen: tracked (live or not yet collected) arrays and bytes, and what it freed. */
    public record Stats(long trackedArrays, long trackedBytes, long freedArrays, long freedBytes, long collections,
                        long copiedArrays) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "NotebookMemory[%,d arrays / %.1f MB tracked; freed %,d arrays / %.1f MB "
                            + "after %d collections; %,d Java-data arrays given engine storage]", trackedArrays,
                    trackedBytes / 1e6, freedArrays, freedBytes / 1e6, collections, copiedArrays);
        }
    }

    /**
     * Makes every NDManager created from now on hold its arrays weakly (idempotent). {@code ownerThread} is the
     * thread that runs user code (the kernel's cell thread); null lets any thread free collected arrays.
     */
    public static synchronized void install(Thread ownerThread) {
        owner = ownerThread;
        ownerBusy = ownerThread != null;
        if (installed) return;
        try (NDManager probe = NDManager.newBaseManager()) {
            BaseNDManager system = (BaseNDManager) probe.getParentManager();
            WeakResources weak = new WeakResources();
            @SuppressWarnings("unchecked")
            ConcurrentHashMap<String, AutoCloseable> old = (ConcurrentHashMap<String, AutoCloseable>) RESOURCES.get(system);
            weak.putAllStrong(old);
            RESOURCES.set(system, weak);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("cannot install notebook memory management: " + e, e);
        }
        Thread collector = new Thread(NotebookMemory::collectorLoop, "jlens-memory");
        collector.setDaemon(true);
        collector.start();
        installed = true;
    }

    /** As {@link #install(Thread)} with the current thread as the owner of user code. */
    public static void install() {
        install(Thread.currentThread());
    }

    /** Whether {@link #install} has run. */
    public static boolean installed() {
        return installed;
    }

    /**
     * Tells the manager whether the owner thread is running user code. While it is not, collected arrays are freed by
     * the background thread at once; while it is, they are freed by the owner between two of its operations.
     */
    public static void ownerBusy(boolean busy) {
        ownerBusy = busy;
        if (!busy) {
            drain();
            trimIfWorthIt();
            // A cell that left garbage behind gets it freed while the user reads its output, as Python would
            // have freed it at once.
            if (TRACKED_BYTES.get() - baseline.get() > IDLE_THRESHOLD && gcPending.compareAndSet(false, true)) {
                GC_REQUESTS.release();
            }
        }
    }

    /**
     * Opens the scope a notebook cell runs in, on the current thread: it holds nothing (arrays stay garbage
     * collected), and gives arrays the cell makes from Java data engine-owned storage. Close it when the cell ends.
     */
    public static NDScope cellScope() {
        NDScope scope = new NDScope();
        try {
            SCOPE_RESOURCES.set(scope, new CellArrays());
        } catch (IllegalAccessException e) {
            scope.close();
            throw new IllegalStateException("cannot open a cell scope: " + e, e);
        }
        return scope;
    }

    /**
     * Marks the current thread as running user code until the returned handle is closed: it becomes the owner,
     * frees collected arrays between its operations, and runs inside a {@link #cellScope()}. The kernel wraps each
     * piece of cell code in one; close it on the same thread.
     */
    public static AutoCloseable userCode() {
        owner = Thread.currentThread();
        ownerBusy = true;
        NDScope scope = cellScope();
        return () -> {
            scope.close();
            ownerBusy(false);
        };
    }

    /** Collects garbage now and frees every array found unreachable (on the calling thread). */
    public static void collect() {
        System.gc();
        COLLECTIONS.incrementAndGet();
        // Weak references are cleared and enqueued shortly after the collection, by the reference handler thread.
        for (int i = 0; i < 20 && !drainAvailable(); i++) {
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        drainNow();
        baseline.set(TRACKED_BYTES.get());
    }

    /** Current counts. */
    public static Stats stats() {
        return new Stats(TRACKED_ARRAYS.get(), TRACKED_BYTES.get(), FREED_ARRAYS.get(), FREED_BYTES.get(),
                COLLECTIONS.get(), COPIED_ARRAYS.get());
    }

    // ---- freeing --------------------------------------------------------------------------------------------

    private static boolean drainAvailable() {
        Tracked e = (Tracked) QUEUE.poll();
        if (e == null) return false;
        e.collected();
        return true;
    }

    /** Frees collected arrays if this thread may do so now. */
    private static void drain() {
        Thread o = owner;
        if (o == null || Thread.currentThread() == o || !ownerBusy) drainNow();
    }

    private static void drainNow() {
        boolean freed = false;
        for (Tracked e; (e = (Tracked) QUEUE.poll()) != null; ) {
            e.collected();
            freed = true;
        }
        if (freed) {
            baseline.set(TRACKED_BYTES.get());
            trimIfWorthIt();
        }
    }

    /**
     * Hands freed native memory back to the system. glibc keeps freed blocks for reuse (its threshold for mapping
     * large blocks separately rises with every large free), so a loop whose garbage is freed in batches would keep
     * the high-water mark resident; {@code malloc_trim} returns the free pages. Called after enough was freed.
     */
    private static void trimIfWorthIt() {
        long freed = FREED_BYTES.get();
        // Not while user code runs: a loop reuses the blocks its last iterations freed, and returning them would
        // cost a page fault per page at every iteration.
        if (freed - trimmedAt.get() < TRIM_EVERY || LibC.INSTANCE == null || (owner != null && ownerBusy)) return;
        trimmedAt.set(freed);
        LibC.INSTANCE.malloc_trim(0);
    }

    /** glibc's malloc_trim through JNA (already a dependency of DJL); absent on other C libraries. */
    private interface LibC extends com.sun.jna.Library {
        LibC INSTANCE = load();

        int malloc_trim(long pad);

        private static LibC load() {
            try {
                return com.sun.jna.Native.load("c", LibC.class);
            } catch (LinkageError | RuntimeException e) {
                return null;
            }
        }
    }

    private static void noteGrowth() {
        long growth = TRACKED_BYTES.get() - baseline.get();
        if (growth > 4 * THRESHOLD && (owner == null || Thread.currentThread() == owner)) {
            collect();   // the background collections do not keep up: wait for one
        } else if (growth > THRESHOLD && gcPending.compareAndSet(false, true)) {
            GC_REQUESTS.release();
        }
    }

    private static void collectorLoop() {
        while (true) {
            try {
                GC_REQUESTS.acquire();
                GC_REQUESTS.drainPermits();
                System.gc();
                COLLECTIONS.incrementAndGet();
                Thread.sleep(10);   // let the reference handler enqueue what the collection cleared
                drain();
                baseline.set(TRACKED_BYTES.get());
            } catch (InterruptedException e) {
                return;
            } finally {
                gcPending.set(false);
            }
        }
    }

    // ---- what managers hold -----------------------------------------------------------------------------------

    /** A manager's resources held weakly: arrays and sub-managers are kept alive by whoever uses them. */
    private static final class WeakResources extends ConcurrentHashMap<String, AutoCloseable> {
        private static final long serialVersionUID = 1L;

        @Override
        public AutoCloseable put(String key, AutoCloseable value) {
            drain();
            AutoCloseable entry;
            if (value instanceof PtNDArray array) {
                entry = new ArrayEntry(key, this, array);
            } else if (value instanceof BaseNDManager manager) {
                adopt(manager);
                entry = new ManagerEntry(key, this, manager);
            } else {
                entry = value;
            }
            AutoCloseable old = super.put(key, entry);
            if (old instanceof Tracked e && old != entry) e.forget();
            if (entry instanceof ArrayEntry) noteGrowth();
            return old instanceof Tracked e ? e.referent() : old;
        }

        @Override
        public AutoCloseable remove(Object key) {
            AutoCloseable old = super.remove(key);
            if (old instanceof Tracked e) {
                e.forget();
                return e.referent();
            }
            return old;
        }

        @Override
        public void clear() {
            for (AutoCloseable v : values()) {
                if (v instanceof Tracked e) e.forget();
            }
            super.clear();
        }

        void putAllStrong(ConcurrentHashMap<String, AutoCloseable> entries) {
            entries.forEach(super::put);
        }

        private static void adopt(BaseNDManager manager) {
            try {
                Object current = RESOURCES.get(manager);
                if (current instanceof WeakResources) return;
                WeakResources weak = new WeakResources();
                @SuppressWarnings("unchecked")
                ConcurrentHashMap<String, AutoCloseable> old = (ConcurrentHashMap<String, AutoCloseable>) current;
                if (old != null) weak.putAllStrong(old);
                RESOURCES.set(manager, weak);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /** A weakly held resource, enqueued when collected. */
    private abstract static class Tracked extends WeakReference<Object> implements AutoCloseable {
        final String key;
        final WeakResources map;
        final AtomicBoolean done = new AtomicBoolean();

        Tracked(String key, WeakResources map, Object referent) {
            super(referent, QUEUE);
            this.key = key;
            this.map = map;
            ENTRIES.add(this);
        }

        /** The resource, while reachable. */
        AutoCloseable referent() {
            return (AutoCloseable) get();
        }

        /** The resource left the map (closed, detached or moved): stop tracking it. */
        void forget() {
            clear();
            ENTRIES.remove(this);
            if (done.compareAndSet(false, true)) untrack(false);
        }

        /** The resource was found unreachable: free what it held and drop the map entry. */
        void collected() {
            map.remove(key, this);
            ENTRIES.remove(this);
            if (done.compareAndSet(false, true)) untrack(true);
        }

        /** Closing the owning manager closes what is still alive and frees what was collected. */
        @Override
        public void close() throws Exception {
            AutoCloseable r = referent();
            if (r != null) r.close();
            if (done.compareAndSet(false, true)) untrack(r == null);
            clear();
            ENTRIES.remove(this);
        }

        abstract void untrack(boolean free);
    }

    private static final class ArrayEntry extends Tracked {
        private final AtomicReference<Long> handle;
        private final long bytes;

        ArrayEntry(String key, WeakResources map, PtNDArray array) {
            super(key, map, array);
            this.handle = handleOf(array);
            long b;
            try {
                b = array.size() * array.getDataType().getNumOfBytes();
            } catch (RuntimeException e) {
                b = 0;   // a string array or an array without a shape yet
            }
            this.bytes = b;
            TRACKED_BYTES.addAndGet(b);
            TRACKED_ARRAYS.incrementAndGet();
        }

        @Override
        void untrack(boolean free) {
            TRACKED_BYTES.addAndGet(-bytes);
            TRACKED_ARRAYS.decrementAndGet();
            if (free && handle != null) {
                Long h = handle.getAndSet(null);
                if (h != null && h != -1L) {
                    JniUtils.deleteNDArray(h);
                    FREED_ARRAYS.incrementAndGet();
                    FREED_BYTES.addAndGet(bytes);
                }
            }
        }
    }

    private static final class ManagerEntry extends Tracked {
        ManagerEntry(String key, WeakResources map, BaseNDManager manager) {
            super(key, map, manager);
        }

        @Override
        void untrack(boolean free) {
            // a collected manager's arrays were unreachable too: their own entries free them
        }
    }

    @SuppressWarnings("unchecked")
    private static AtomicReference<Long> handleOf(PtNDArray array) {
        try {
            return (AtomicReference<Long>) HANDLE.get(array);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---- the cell scope -------------------------------------------------------------------------------------

    /** What an NDScope holds, for a cell: nothing; arrays made from Java data get engine-owned storage. */
    private static final class CellArrays extends IdentityHashMap<NDArray, NDArray> {
        private static final long serialVersionUID = 1L;

        @Override
        public NDArray put(NDArray key, NDArray value) {
            if (key instanceof PtNDArray array) ownStorage(array);
            return null;
        }

        @Override
        public NDArray remove(Object key) {
            return null;
        }

        @Override
        public Set<NDArray> keySet() {
            return Set.of();
        }
    }

    /** Replaces a borrowed Java buffer under {@code array} with an engine-owned copy of its data. */
    private static void ownStorage(PtNDArray array) {
        try {
            if (!(DATA_REF.get(array) instanceof ByteBuffer)) return;
            NDArray copy = array.duplicate();   // registers with this scope too: it owns its storage, nothing to do
            array.intern(copy);
            DATA_REF.set(array, null);
            COPIED_ARRAYS.incrementAndGet();
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Field field(Class<?> type, String name) {
        try {
            Field f = type.getDeclaredField(name);
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new ExceptionInInitializerError("this DJL version lacks " + type.getName() + "." + name
                    + ", which notebook memory management relies on: " + e);
        }
    }
}
