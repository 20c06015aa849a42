package dev.jlens.kernel;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import com.google.gson.reflect.TypeToken;
import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.dflib.jjava.jupyter.channels.JupyterConnection;
import org.dflib.jjava.jupyter.channels.Loop;
import org.dflib.jjava.jupyter.channels.ShellChannel;
import org.dflib.jjava.jupyter.channels.ShellHandler;
import org.dflib.jjava.jupyter.channels.ShellReplyEnvironment;
import org.dflib.jjava.jupyter.kernel.ExpressionValue;
import org.dflib.jjava.jupyter.kernel.KernelConnectionProperties;
import org.dflib.jjava.jupyter.kernel.history.HistoryEntry;
import org.dflib.jjava.jupyter.messages.HMACGenerator;
import org.dflib.jjava.jupyter.messages.Header;
import org.dflib.jjava.jupyter.messages.KernelTimestamp;
import org.dflib.jjava.jupyter.messages.Message;
import org.dflib.jjava.jupyter.messages.MessageType;
import org.dflib.jjava.jupyter.messages.ReplyType;
import org.dflib.jjava.jupyter.messages.adapters.ExpressionValueAdapter;
import org.dflib.jjava.jupyter.messages.adapters.HeaderAdapter;
import org.dflib.jjava.jupyter.messages.adapters.HistoryEntryAdapter;
import org.dflib.jjava.jupyter.messages.adapters.HistoryRequestAdapter;
import org.dflib.jjava.jupyter.messages.adapters.KernelTimestampAdapter;
import org.dflib.jjava.jupyter.messages.adapters.MessageTypeAdapter;
import org.dflib.jjava.jupyter.messages.adapters.PublishStatusAdapter;
import org.dflib.jjava.jupyter.messages.adapters.ReplyTypeAdapter;
import org.dflib.jjava.jupyter.messages.publish.PublishStatus;
import org.dflib.jjava.jupyter.messages.reply.ErrorReply;
import org.dflib.jjava.jupyter.messages.request.HistoryRequest;
import org.zeromq.ZMQ;

/**
 * jjava's shell/control channel with a loop that survives bad input.
 *
 * <p>In jjava 1.0-a6 {@code JupyterSocket.readMessage} throws a {@code SecurityException} for a message with a
 * wrong or missing HMAC signature, and {@code ShellChannel}'s loop thread has no error handler, so the exception
 * ends the thread: the kernel stops answering its real client. Any local process can send such a message to the
 * kernel's port. It reads frames until a {@code <IDS|MSG>} delimiter too, so a short message would swallow the
 * next one. This channel reads exactly one multipart message at a time, checks its frames and signature
 * (in constant time) before parsing, drops and logs what fails, and keeps any exception from a handler inside
 * the loop. Parsing and dispatch are as in jjava; {@code ShellChannel} is extended only so that jjava's reply
 * environment accepts it.
 */
final class GuardedShellChannel extends ShellChannel {

    private static final byte[] DELIMITER = "<IDS|MSG>".getBytes(StandardCharsets.US_ASCII);
    private static final long POLL_MILLIS = 50;
    private static final int LOGGED_DROPS = 20;
    private static final AtomicInteger IDS = new AtomicInteger();
    private static final Type JSON_OBJECT = new TypeToken<Map<String, Object>>() {}.getType();

    /** The same Gson configuration as jjava's {@code JupyterSocket} (whose instance is private). */
    private static final Gson GSON = new GsonBuilder()
            .registerTypeAdapter(KernelTimestamp.class, KernelTimestampAdapter.INSTANCE)
            .registerTypeAdapter(Header.class, HeaderAdapter.INSTANCE)
            .registerTypeAdapter(MessageType.class, MessageTypeAdapter.INSTANCE)
            .registerTypeAdapter(PublishStatus.class, PublishStatusAdapter.INSTANCE)
            .registerTypeAdapter(HistoryRequest.class, HistoryRequestAdapter.INSTANCE)
            .registerTypeHierarchyAdapter(ReplyType.class, new ReplyTypeAdapter(new GsonBuilder()
                    .registerTypeAdapter(HistoryEntry.class, HistoryEntryAdapter.INSTANCE)
                    .registerTypeAdapter(ExpressionValue.class, ExpressionValueAdapter.INSTANCE)
                    .create()))
            .create();

    private final String channelName;
    private final JupyterConnection connection;
    private final HMACGenerator signer;
    private final boolean signed;
    private final AtomicLong dropped = new AtomicLong();
    private volatile Loop loop;

    GuardedShellChannel(ZMQ.Context context, HMACGenerator signer, boolean signed, boolean isControl,
                        JupyterConnection connection) {
        super(context, signer, isControl, connection);
        this.channelName = isControl ? "control" : "shell";
        this.connection = connection;
        this.signer = signer;
        this.signed = signed;
    }

    @Override
    public void bind(KernelConnectionProperties props) {
        if (loop != null) {
            throw new IllegalStateException(channelName + " channel already bound");
        }
        int port = channelName.equals("control") ? props.getControlPort() : props.getShellPort();
        super.bind(props.getTransport() + "://" + props.getIp() + ":" + port);
        ZMQ.Poller poller = ctx.poller(1);
        poller.register(this, ZMQ.Poller.POLLIN);
        // Waiting in poll (not sleeping between polls, as jjava does) answers a request as soon as it arrives.
        loop = new Loop("jlens-" + channelName + "-" + IDS.getAndIncrement(), 0, () -> {
            if (poller.poll(POLL_MILLIS) > 0) {
                Message<?> message = readChecked();
                if (message != null) {
                    dispatch(message);
                }
            }
        });
        loop.onError(t -> {
            if (closed) {
                return -1; // the connection is closing: end the loop
            }
            KernelLog.warn("error on the " + channelName + " channel, which keeps serving: " + t);
            return POLL_MILLIS;
        });
        loop.start();
    }

    /** One multipart message, checked; null (after logging why) when it is dropped. */
    private synchronized Message<?> readChecked() {
        if (closed) {
            return null;
        }
        List<byte[]> frames = new ArrayList<>();
        do {
            byte[] frame = recv();
            if (frame == null) {
                break;
            }
            frames.add(frame);
        } while (hasReceiveMore());

        int d = 0;
        while (d < frames.size() && !Arrays.equals(DELIMITER, frames.get(d))) {
            d++;
        }
        if (frames.size() < d + 6) {
            return drop("it is not a Jupyter message (" + frames.size() + " frames, no signature and four parts"
                    + " after a <IDS|MSG> delimiter)");
        }
        byte[] header = frames.get(d + 2);
        byte[] parent = frames.get(d + 3);
        byte[] metadata = frames.get(d + 4);
        byte[] content = frames.get(d + 5);
        if (signed) {
            byte[] expected = signer.calculateSignature(header, parent, metadata, content)
                    .getBytes(StandardCharsets.US_ASCII);
            byte[] received = frames.get(d + 1);
            if (received.length == 0) {
                return drop("its signature is missing");
            }
            if (!MessageDigest.isEqual(expected, received)) {
                return drop("its signature is wrong (not signed with this kernel's key)");
            }
        }
        try {
            return parse(frames.subList(0, d), header, parent, metadata, content, frames.subList(d + 6, frames.size()));
        } catch (RuntimeException e) {
            return drop("it could not be parsed (" + e + ")");
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Message<?> parse(List<byte[]> identities, byte[] headerRaw, byte[] parentRaw, byte[] metadataRaw,
                                    byte[] contentRaw, List<byte[]> blobs) {
        Header<?> header = GSON.fromJson(new String(headerRaw, StandardCharsets.UTF_8), Header.class);
        if (header == null || header.getType() == null) {
            throw new IllegalArgumentException("no header or message type");
        }
        Header<?> parent = null;
        JsonElement parentJson = JsonParser.parseString(new String(parentRaw, StandardCharsets.UTF_8));
        if (parentJson.isJsonObject() && !parentJson.getAsJsonObject().isEmpty()) {
            parent = GSON.fromJson(parentJson, Header.class);
        }
        Map<String, Object> metadata = GSON.fromJson(new String(metadataRaw, StandardCharsets.UTF_8), JSON_OBJECT);
        Object content = GSON.fromJson(new String(contentRaw, StandardCharsets.UTF_8),
                header.getType().getContentType());
        if (content instanceof ErrorReply) {
            header = new Header<>(header.getId(), header.getUsername(), header.getSessionId(), header.getTimestamp(),
                    header.getType().error(), header.getVersion());
        }
        return new Message(new ArrayList<>(identities), header, parent, metadata, content, new ArrayList<>(blobs));
    }

    private Message<?> drop(String why) {
        long n = dropped.incrementAndGet();
        if (n <= LOGGED_DROPS) {
            KernelLog.warn("dropped a message on the " + channelName + " channel: " + why
                    + (n == LOGGED_DROPS ? " (further drops are not logged)" : ""));
        }
        return null;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private void dispatch(Message<?> message) {
        ShellHandler handler = connection.getHandler(message.getHeader().getType());
        if (handler == null) {
            return; // a message type this kernel does not handle; jjava ignores these too
        }
        ShellReplyEnvironment env = connection.prepareReplyEnv(this, message);
        try {
            handler.handle(env, message);
        } catch (Exception | Error e) {
            KernelLog.warn("handling " + message.getHeader().getType().getName() + " failed: " + e);
        } finally {
            env.resolveDeferrals();
        }
        if (env.isMarkedForShutdown()) {
            connection.close();
        }
    }

    /** How many messages were dropped so far. */
    long droppedCount() {
        return dropped.get();
    }

    @Override
    public void close() {
        Loop l = loop;
        if (l != null) {
            l.shutdown();
        }
        super.close();
    }

    @Override
    public void waitUntilClose() {
        Loop l = loop;
        if (l != null) {
            try {
                l.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
