package dev.jlens.kernel;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * Explains DJL's bare errors for using a closed array: {@code IllegalStateException("Native resource has been released
 * already.")} from an operation on an NDArray (or other native resource) that was closed, and
 * {@code IllegalStateException("NDManager has been closed already.")} from one whose result would belong to a closed
 * manager (an operation on an array of a closed ActivationCache). The cell error says what closes arrays and how to
 * keep one.
 */
final class ClosedArrayHint {
    private ClosedArrayHint() {}

    /** DJL 0.36's message for any use of a released native resource ({@code NativeResource.getHandle}). */
    static final String RELEASED = "Native resource has been released already.";

    /** DJL 0.36's message for attaching a new array to a closed manager ({@code BaseNDManager.attachInternal}). */
    static final String MANAGER_CLOSED = "NDManager has been closed already.";

    /** Appended to the error's value, where a frontend shows one line. */
    static final String EVALUE_SUFFIX = " (an NDArray used here was closed, or its NDManager, and its memory freed "
            + "before this use; see the note)";

    /** The note under the traceback. */
    static final String NOTE = "note: an NDArray used here was closed, or the NDManager it belongs to, and its "
            + "memory freed before this use. Arrays close with their owner: the ActivationCache they came from "
            + "(cache.close() or the end of its try-with-resources block), the NDScope they were made in, or their "
            + "NDManager (closing a model frees everything it handed out). To keep one, do not close its owner yet "
            + "(in a notebook, arrays nothing references any more are freed without closing anything), or copy it "
            + "out before the owner closes: NDArray kept = array.duplicate(); kept.attach(model.manager()); "
            + "(array.detach() also takes it out of its manager, and then closing it is up to you).";

    /** True if {@code t} or one of its causes is one of DJL's closed-resource errors. */
    static boolean applies(Throwable t) {
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Throwable c = t; c != null && seen.add(c); c = c.getCause()) {
            String m;
            try {
                m = c.getMessage();
            } catch (RuntimeException | StackOverflowError e) {
                continue;   // a user exception whose getMessage throws: not DJL's
            }
            if (m != null && (m.contains(RELEASED) || m.contains(MANAGER_CLOSED))) return true;
        }
        return false;
    }
}
