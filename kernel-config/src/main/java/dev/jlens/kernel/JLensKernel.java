package dev.jlens.kernel;

import dev.jlens.notebook.Display;
import dev.jlens.notebook.NotebookMemory;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.dflib.jjava.jupyter.channels.ShellReplyEnvironment;
import org.dflib.jjava.jupyter.kernel.BaseKernel;
import org.dflib.jjava.jupyter.kernel.KernelConnectionProperties;
import org.dflib.jjava.jupyter.kernel.LanguageInfo;
import org.dflib.jjava.jupyter.kernel.ReplacementOptions;
import org.dflib.jjava.jupyter.kernel.comm.CommManager;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;
import org.dflib.jjava.jupyter.kernel.magic.MagicParser;
import org.dflib.jjava.jupyter.kernel.magic.MagicTranspiler;
import org.dflib.jjava.jupyter.kernel.magic.MagicsRegistry;
import org.dflib.jjava.jupyter.kernel.util.StringStyler;
import org.dflib.jjava.jupyter.messages.Message;
import org.dflib.jjava.jupyter.messages.publish.PublishError;
import org.dflib.jjava.jupyter.messages.publish.PublishExecuteInput;
import org.dflib.jjava.jupyter.messages.publish.PublishExecuteResult;
import org.dflib.jjava.jupyter.messages.publish.PublishStream;
import org.dflib.jjava.jupyter.messages.reply.ErrorReply;
import org.dflib.jjava.jupyter.messages.reply.ExecuteReply;
import org.dflib.jjava.jupyter.messages.request.ExecuteRequest;
import org.dflib.jjava.jupyter.messages.request.KernelInfoRequest;

/**
 * The JLens Jupyter kernel: Java cells evaluated by JShell inside this JVM, rich results through interp-lib's
 * {@link Display} registry, interrupt by message, and an exit when the process that started it goes away.
 *
 * <p>Usage: {@code java -cp jlens-kernel.jar dev.jlens.kernel.JLensKernel CONNECTION_FILE}; with
 * {@code --warmup} it evaluates a few typical cells and exits (used to train the class-data-sharing archive
 * that makes startup fast).
 */
public final class JLensKernel extends BaseKernel {

    private static final String VERSION = "0.1.0";

    private final KernelIO kernelIO;
    /** stdout and stderr of the cell being run, batched into few stream messages (see StreamBatcher). */
    private final StreamBatcher streams = new StreamBatcher();
    private final CompletableFuture<Session> session;
    private final AtomicBoolean cellWaiting;
    /** What killed the previous kernel, shown (once) on stderr before the first cell's output. */
    private final AtomicReference<String> startupNotice = new AtomicReference<>();

    private JLensKernel(KernelIO io, CompletableFuture<Session> session, AtomicBoolean cellWaiting) {
        super("JLens", VERSION,
                new LanguageInfo("java", Runtime.version().toString(), "text/x-java", ".jshell", "java",
                        "text/x-java", "script"),
                List.of(), null, io, new CommManager(), new KernelRenderer(),
                new MagicParser("(?<=(?:^|=))\\s*%", "%%", new MagicTranspiler()), new MagicsRegistry(), false,
                new StringStyler.Builder().build());
        this.kernelIO = io;
        this.session = session;
        this.cellWaiting = cellWaiting;
    }

    /** Starts the kernel on a Jupyter connection file. */
    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("--warmup")) {
            Warmup.run();
            System.exit(0);
        }
        if (args.length != 1) {
            System.err.println("usage: JLensKernel CONNECTION_FILE | --warmup");
            System.exit(2);
        }
        Trace.mark("main");
        Optional<KernelState> state = KernelState.fromSystemProperty();
        String previousDeath = state.flatMap(KernelState::takeOverFromPrevious).orElse(null);
        if (previousDeath != null) {
            KernelLog.warn(previousDeath.substring("jlens: ".length()));
        }
        exitWithParent(state);
        serve(Path.of(args[0]), previousDeath);
        state.ifPresent(KernelState::markCleanExit);
        // Halt rather than exit: ZeroMQ's I/O threads are still tearing down and would print stack traces
        // about closed channels; nothing is left to clean up.
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(0);
    }

    /**
     * Serves one Jupyter connection until the client asks the kernel to shut down; {@code notice} (may be null)
     * is shown on stderr before the first cell's output.
     */
    static void serve(Path connectionFile, String notice) throws Exception {
        // JShell starts while the sockets bind and the client says hello; the first cell waits for it.
        CompletableFuture<Session> session = new CompletableFuture<>();
        AtomicBoolean cellWaiting = new AtomicBoolean();
        Thread starter = new Thread(() -> {
            try {
                Session s = Session.start();
                if (!cellWaiting.get()) {
                    s.warmUp(); // only while no cell waits: a waiting cell warms things up itself
                }
                installMemory();
                session.complete(s);
            } catch (Throwable t) {
                session.completeExceptionally(t);
            }
        }, "jlens-jshell-start");
        starter.setDaemon(true);
        starter.start();

        KernelConnectionProperties props = KernelConnectionProperties.parse(Files.readString(connectionFile));
        GuardedConnection connection = new GuardedConnection(props);
        JLensKernel kernel = new JLensKernel(new KernelIO(), session, cellWaiting);
        kernel.startupNotice.set(notice);
        kernel.becomeHandlerForConnection(connection);
        kernel.onStartup();
        connection.connect();
        Trace.mark("connected");
        connection.waitUntilClose();
    }

    /**
     * Arrays that cells no longer reach are freed by the garbage collector, as in Python (see NotebookMemory);
     * {@code JLENS_MEMORY=manual} keeps DJL's own rule (an array lives until it or its manager is closed).
     */
    private static void installMemory() {
        String mode = System.getenv().getOrDefault("JLENS_MEMORY", "auto");
        if (mode.equals("manual")) {
            return;
        }
        try {
            NotebookMemory.install(null);
        } catch (RuntimeException | LinkageError e) {
            KernelLog.warn("arrays will not be freed automatically (close them, or use NDScope): " + e);
        }
    }

    /** Jupyter may die without a shutdown request; a kernel left behind would hold its pipes open. */
    private static void exitWithParent(Optional<KernelState> state) {
        ProcessHandle.current().parent().ifPresent(parent -> parent.onExit().thenRun(() -> {
            KernelLog.warn("parent process exited; shutting down");
            state.ifPresent(KernelState::markCleanExit);
            Runtime.getRuntime().halt(0);
        }));
    }

    @Override
    public void onStartup() {
        super.onStartup();
        Display.installSink(new Display.Sink() {
            @Override
            public String show(Map<String, String> bundle) {
                String id = UUID.randomUUID().toString();
                if (kernelIO.display.isAttached()) {
                    streams.flush(); // text printed before the display shows above it
                    DisplayData data = KernelRenderer.toDisplayData(bundle);
                    data.setDisplayId(id);
                    kernelIO.display.display(data);
                }
                return id;
            }

            @Override
            public void update(String displayId, Map<String, String> bundle) {
                if (kernelIO.display.isAttached()) {
                    streams.flush();
                    kernelIO.display.updateDisplay(displayId, KernelRenderer.toDisplayData(bundle));
                }
            }
        });
    }

    @Override
    public void onShutdown(boolean restart) {
        KernelState.fromSystemProperty().ifPresent(KernelState::markCleanExit);
        Display.installSink(null);
        streams.close();
        if (session.isDone() && !session.isCompletedExceptionally()) {
            session.join().close();
        }
        super.onShutdown(restart);
    }

    private Session session() {
        try {
            return session.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CellError("KernelError", "interrupted while JShell was starting", List.of());
        } catch (ExecutionException e) {
            throw new CellError("KernelError", "JShell failed to start: " + e.getCause(),
                    List.of("KernelError: JShell failed to start: " + e.getCause()));
        }
    }

    @Override
    protected synchronized void handleExecuteRequest(ShellReplyEnvironment env, Message<ExecuteRequest> message) {
        commManager.setMessageContext(message);
        ExecuteRequest request = message.getContent();
        int count = executionCount.getAndIncrement();
        env.setBusyDeferIdle();
        env.publish(new PublishExecuteInput(request.getCode(), count));
        replaceOutputStreams(env);
        kernelIO.attach(env, request.isStdinEnabled());
        env.defer(() -> kernelIO.detach(env));
        cellWaiting.set(true);
        String notice = startupNotice.getAndSet(null);
        if (notice != null) {
            env.publish(new PublishStream(PublishStream.StreamType.ERR, notice + "\n"));
        }
        try {
            Trace.mark("execute " + count + " received");
            Object result = session().evalCell(request.getCode(), count);
            Trace.mark("execute " + count + " evaluated");
            if (result != Session.NO_RESULT && result != null && !request.isSilent()) {
                publishResult(env, count, result);
            }
            streams.detach(); // all of the cell's output goes out before its reply
            env.defer().reply(new ExecuteReply(count, Map.of()));
        } catch (CellError e) {
            replyError(env, count, e.ename(), e.evalue(), e.traceback());
        } catch (RuntimeException | Error e) {
            // A failure outside the cell's code (rendering its result, the kernel itself): report it and keep
            // the shell thread alive.
            List<String> traceback = new ArrayList<>();
            traceback.add(e.getClass().getName() + ": " + e.getMessage());
            for (Throwable c = e.getCause(); c != null && traceback.size() < 6; c = c.getCause()) {
                traceback.add("Caused by: " + c);
            }
            replyError(env, count, e.getClass().getSimpleName(), String.valueOf(e.getMessage()), traceback);
        }
    }

    /**
     * Renders a cell's result on the cell thread (rendering calls the result's toString and registered
     * renderers: user code that may loop, fail or be slow), within {@link KernelRenderer#LIMIT_MILLIS} and
     * stoppable by an interrupt request. What cannot be rendered shows as a plain summary with the reason; a
     * renderer that throws is also reported as the cell's error.
     */
    private void publishResult(ShellReplyEnvironment env, int count, Object result) {
        DisplayData data;
        try {
            data = session().callOnWorker(() -> {
                try {
                    return getRenderer().render(result);
                } catch (ThreadDeath stopped) {
                    throw stopped;
                } catch (RuntimeException | Error e) {
                    throw RenderFailure.of(e); // its message and causes are read here, on the cell thread
                }
            }, KernelRenderer.LIMIT_MILLIS);
        } catch (WorkerExecutionControl.TimeLimitException e) {
            data = KernelRenderer.summary(result, "rendering it took longer than " + KernelRenderer.limitText()
                    + " and was stopped; -Djlens.render.timeoutMillis sets the limit");
        } catch (WorkerExecutionControl.InterruptedByUserException e) {
            data = KernelRenderer.summary(result, "rendering it was interrupted");
        } catch (ExecutionException e) {
            RenderFailure f = e.getCause() instanceof RenderFailure rf ? rf : RenderFailure.of(e.getCause());
            streams.flush();
            env.publish(new PublishExecuteResult(count, KernelRenderer.summary(result,
                    "rendering it failed: " + f.ename())));
            throw new CellError(f.ename(), f.evalue(), f.traceback());
        }
        streams.flush();
        env.publish(new PublishExecuteResult(count, data));
    }

    @Override
    protected void replaceOutputStreams(ShellReplyEnvironment env) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        InputStream oldIn = System.in;
        PrintStream out = new PrintStream(streams.stream(StreamBatcher.Stream.STDOUT), false, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(streams.stream(StreamBatcher.Stream.STDERR), false, StandardCharsets.UTF_8);
        streams.attach((stream, text) -> env.publish(new PublishStream(
                stream == StreamBatcher.Stream.STDOUT ? PublishStream.StreamType.OUT : PublishStream.StreamType.ERR,
                text)));
        System.setOut(out);
        System.setErr(err);
        System.setIn(new FlushingInput(io.in, streams));
        env.defer(() -> {
            out.flush();
            err.flush();
            streams.detach();
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.setIn(oldIn);
        });
    }

    @Override
    protected void handleKernelInfoRequest(ShellReplyEnvironment env, Message<KernelInfoRequest> message) {
        Trace.mark("kernel_info");
        super.handleKernelInfoRequest(env, message);
    }

    private void replyError(ShellReplyEnvironment env, int count, String ename, String evalue,
                            List<String> traceback) {
        streams.detach(); // the cell's output, then its error, then the reply
        env.publish(new PublishError(ename, evalue, traceback));
        ErrorReply reply = new ErrorReply(ename, evalue, traceback);
        reply.setExecutionCount(count);
        env.defer().replyError(ExecuteReply.MESSAGE_TYPE.error(), reply);
    }

    /** The cell's stdin: pending output (an input prompt) is sent before the kernel asks the front end. */
    private static final class FlushingInput extends FilterInputStream {
        private final StreamBatcher streams;

        FlushingInput(InputStream in, StreamBatcher streams) {
            super(in);
            this.streams = streams;
        }

        @Override
        public int read() throws IOException {
            streams.flush();
            return super.read();
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            streams.flush();
            return super.read(b, off, len);
        }
    }

    @Override
    public Object evalRaw(String code) {
        Object result = session().evalCell(code, executionCount.get());
        return result == Session.NO_RESULT ? null : result;
    }

    @Override
    public DisplayData inspect(String code, int at, boolean extraDetail) {
        String doc = session().inspect(code, at);
        return doc == null ? null : new DisplayData(doc);
    }

    @Override
    public ReplacementOptions complete(String code, int at) {
        Session.Completion c = session().complete(code, at);
        return c.options().isEmpty() ? null : new ReplacementOptions(c.options(), c.start(), c.end());
    }

    @Override
    public String isComplete(String code) {
        String state = session().isComplete(code);
        return switch (state) {
            case "complete" -> IS_COMPLETE_YES;
            case "invalid" -> IS_COMPLETE_BAD;
            default -> "    ";
        };
    }

    @Override
    public void interrupt() {
        if (session.isDone() && !session.isCompletedExceptionally()) {
            session.join().interrupt();
        }
    }

    @Override
    public List<String> formatError(Throwable e) {
        return List.of(e.getClass().getName() + ": " + e.getMessage());
    }

    @Override
    public String getBanner() {
        return "JLens " + VERSION + " — Java " + Runtime.version() + " (JShell)";
    }
}
