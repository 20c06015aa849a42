package dev.jlens.kernel;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.dflib.jjava.jupyter.messages.HMACGenerator;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Runs the kernel on a loopback connection and plays a short notebook session against it (kernel_info, a few
 * typical cells, two failing ones, shutdown), speaking the Jupyter wire protocol directly.
 *
 * <p>Run once at build time under {@code -XX:ArchiveClassesAtExit}, it records every class a session needs
 * (ZeroMQ, the message layer, JShell and javac, Tablesaw, XChart, the renderers) in the class-data-sharing
 * archive that the kernel then starts from.
 */
final class Warmup {

    private static final List<String> CELLS = List.of(
            "int answer = 40 + 2;\nanswer",
            "System.out.println(\"hello\");",
            "var t = Table.create(\"t\", IntColumn.create(\"a\", 1, 2, 3), DoubleColumn.create(\"b\", 0.5, 1.5, 2.5));\nt",
            "Plots.line(\"warmup\", new double[] {1, 3, 2, 4})",
            "Plots.heatmap(\"warmup\", new double[][] {{1, 2}, {3, 4}})",
            "for (int i : Progress.range(3, \"warmup\")) { }",
            "String s = String.format(\"%d\", answer);\ns;",
            "1 / 0",
            "undefinedName + 1",
            "try (NDManager m = NDManager.newBaseManager()) { display(m.create(new float[] {1f, 2f}).add(1f)); }");

    private final String key = UUID.randomUUID().toString();
    private final String session = UUID.randomUUID().toString();
    private final HMACGenerator hmac;

    private Warmup() throws Exception {
        this.hmac = new HMACGenerator("hmac-sha256", key);
    }

    static void run() throws Exception {
        long start = System.nanoTime();
        new Warmup().play();
        System.out.printf("warmup: %d cells in %.1f s%n", CELLS.size(), (System.nanoTime() - start) / 1e9);
    }

    private void play() throws Exception {
        int[] ports = freePorts(5);
        String ip = "127.0.0.1";
        Path connectionFile = Files.createTempFile("jlens-warmup-", ".json");
        Files.writeString(connectionFile, "{\"transport\":\"tcp\",\"ip\":\"" + ip + "\",\"shell_port\":" + ports[0]
                + ",\"iopub_port\":" + ports[1] + ",\"stdin_port\":" + ports[2] + ",\"control_port\":" + ports[3]
                + ",\"hb_port\":" + ports[4] + ",\"signature_scheme\":\"hmac-sha256\",\"key\":\"" + key + "\"}");
        Throwable[] failure = new Throwable[1];
        Thread server = new Thread(() -> {
            try {
                JLensKernel.serve(connectionFile, null);
            } catch (Throwable t) {
                failure[0] = t;
            }
        }, "jlens-warmup-kernel");
        server.setDaemon(true);
        server.start();
        try (ZContext ctx = new ZContext()) {
            ZMQ.Socket shell = ctx.createSocket(SocketType.DEALER);
            ZMQ.Socket control = ctx.createSocket(SocketType.DEALER);
            ZMQ.Socket iopub = ctx.createSocket(SocketType.SUB);
            iopub.subscribe(new byte[0]);
            shell.setReceiveTimeOut(120_000);
            control.setReceiveTimeOut(60_000);
            iopub.setReceiveTimeOut(120_000);
            shell.connect("tcp://" + ip + ":" + ports[0]);
            iopub.connect("tcp://" + ip + ":" + ports[1]);
            control.connect("tcp://" + ip + ":" + ports[3]);

            request(shell, "kernel_info_request", "{}");
            for (String cell : CELLS) {
                String id = request(shell, "execute_request", "{\"code\":" + jsonString(cell)
                        + ",\"silent\":false,\"store_history\":true,\"user_expressions\":{},"
                        + "\"allow_stdin\":false,\"stop_on_error\":false}");
                awaitIdle(iopub, id);
            }
            request(control, "shutdown_request", "{\"restart\":false}");
        }
        server.join(60_000);
        Files.deleteIfExists(connectionFile);
        if (failure[0] != null) {
            throw new IllegalStateException("warm-up kernel failed", failure[0]);
        }
    }

    /** Sends a request and waits for its reply; returns the request's message id. */
    private String request(ZMQ.Socket socket, String type, String content) {
        String id = UUID.randomUUID().toString();
        String header = "{\"msg_id\":\"" + id + "\",\"session\":\"" + session + "\",\"username\":\"warmup\","
                + "\"date\":\"" + Instant.now() + "\",\"msg_type\":\"" + type + "\",\"version\":\"5.3\"}";
        byte[][] parts = {bytes(header), bytes("{}"), bytes("{}"), bytes(content)};
        socket.sendMore("<IDS|MSG>");
        socket.sendMore(hmac.calculateSignature(parts));
        socket.sendMore(parts[0]);
        socket.sendMore(parts[1]);
        socket.sendMore(parts[2]);
        socket.send(parts[3]);
        while (true) {
            List<String> frames = receive(socket, type);
            if (frames.stream().anyMatch(f -> f.contains("\"msg_id\":\"" + id + "\""))) {
                return id;
            }
        }
    }

    /** Reads iopub until the kernel reports idle for the given request. */
    private static void awaitIdle(ZMQ.Socket iopub, String parentId) {
        while (true) {
            List<String> frames = receive(iopub, "iopub after " + parentId);
            boolean ours = frames.stream().anyMatch(f -> f.contains("\"msg_id\":\"" + parentId + "\""));
            boolean idle = frames.stream().anyMatch(f -> f.contains("\"execution_state\":\"idle\""));
            if (ours && idle) {
                return;
            }
        }
    }

    private static List<String> receive(ZMQ.Socket socket, String waitingFor) {
        List<String> frames = new ArrayList<>();
        do {
            byte[] frame = socket.recv();
            if (frame == null) {
                throw new IllegalStateException("warm-up: no answer from the kernel (waiting for " + waitingFor + ")");
            }
            frames.add(new String(frame, StandardCharsets.UTF_8));
        } while (socket.hasReceiveMore());
        return frames;
    }

    private static int[] freePorts(int n) throws IOException {
        int[] ports = new int[n];
        List<ServerSocket> open = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                ServerSocket s = new ServerSocket(0);
                open.add(s);
                ports[i] = s.getLocalPort();
            }
        } finally {
            for (ServerSocket s : open) {
                s.close();
            }
        }
        return ports;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String jsonString(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                default -> sb.append(c < 0x20 ? String.format("\\u%04x", (int) c) : String.valueOf(c));
            }
        }
        return sb.append('"').toString();
    }
}
