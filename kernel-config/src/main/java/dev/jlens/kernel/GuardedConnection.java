package dev.jlens.kernel;

import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import org.dflib.jjava.jupyter.channels.JupyterConnection;
import org.dflib.jjava.jupyter.kernel.KernelConnectionProperties;
import org.dflib.jjava.jupyter.messages.HMACGenerator;
import org.dflib.jjava.jupyter.messages.Message;
import org.dflib.jjava.jupyter.messages.publish.PublishStatus;
import org.zeromq.ZMQ;

/**
 * jjava's connection with {@link GuardedShellChannel}s on the shell and control ports, so that a badly signed or
 * malformed message is dropped instead of stopping the kernel. Heartbeat, stdin and iopub are jjava's. The
 * superclass's own shell and control sockets are created by its constructor but never bound.
 */
final class GuardedConnection extends JupyterConnection {

    /** Messages iopub queues for a slow front end before dropping (full 64 KB stream messages: about 1.3 GB). */
    static final int IOPUB_HIGH_WATER_MARK = 20_000;

    private final KernelConnectionProperties props;
    private final ZMQ.Context guardedContext = ZMQ.context(1);
    private final GuardedShellChannel guardedShell;
    private final GuardedShellChannel guardedControl;
    private boolean connected;

    GuardedConnection(KernelConnectionProperties props) throws NoSuchAlgorithmException, InvalidKeyException {
        super(props);
        this.props = props;
        HMACGenerator signer = props.createHMACGenerator();
        boolean signed = props.getKey() != null && !props.getKey().isEmpty();
        this.guardedShell = new GuardedShellChannel(guardedContext, signer, signed, false, this);
        this.guardedControl = new GuardedShellChannel(guardedContext, signer, signed, true, this);
    }

    @Override
    public synchronized void connect() {
        if (connected) {
            return;
        }
        heartbeat.bind(props);
        guardedShell.bind(props);
        guardedControl.bind(props);
        stdin.bind(props);
        // ZeroMQ's PUB socket silently drops messages past its high-water mark (1000 by default) when the front
        // end reads slower than a cell writes; cell output is batched (StreamBatcher), but a cell alternating
        // stdout and stderr, or showing many displays, still makes a message each.
        iopub.setSndHWM(IOPUB_HIGH_WATER_MARK);
        iopub.bind(props);
        iopub.sendMessage(new Message<>(null, PublishStatus.MESSAGE_TYPE, PublishStatus.STARTING));
        connected = true;
    }

    @Override
    public void close() {
        guardedShell.close();
        guardedControl.close();
        super.close();
        guardedContext.close();
    }

    @Override
    public void waitUntilClose() {
        guardedShell.waitUntilClose();
        guardedControl.waitUntilClose();
        super.waitUntilClose();
    }

    /** Messages dropped on the shell and control channels so far. */
    long droppedMessages() {
        return guardedShell.droppedCount() + guardedControl.droppedCount();
    }
}
