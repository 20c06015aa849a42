package dev.jlens.kernel;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

/**
 * A Maven repository on 127.0.0.1 for the {@code %maven} tests, built from source at test time:
 * {@code test.fake:greeter:1.0} (class {@code fake.Greeter}) depends on {@code test.fake:greeter-api:1.0}
 * (class {@code fake.api.Greeting}) at compile scope, and on {@code test.fake:absent:1.0} at test scope, which the
 * repository does not have (a runtime resolution must not ask for it). It records every path requested.
 */
final class FakeMavenRepository implements AutoCloseable {

    private final Path root;
    private final HttpServer server;
    private final List<String> requests = new CopyOnWriteArrayList<>();

    FakeMavenRepository(Path workDir) throws IOException {
        this.root = Files.createDirectories(workDir.resolve("repository"));
        Path classes = Files.createDirectories(workDir.resolve("classes"));
        Path src = workDir.resolve("src");
        write(src.resolve("fake/api/Greeting.java"),
                "package fake.api; public class Greeting { public static String word() { return \"hello\"; } }");
        write(src.resolve("fake/Greeter.java"), "package fake; public class Greeter {"
                + " public static String greet(String who) { return fake.api.Greeting.word() + \", \" + who; } }");
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        int rc = javac.run(null, null, null, "-d", classes.toString(), src.resolve("fake/api/Greeting.java").toString(),
                src.resolve("fake/Greeter.java").toString());
        if (rc != 0) {
            throw new IllegalStateException("javac failed for the fake repository's classes");
        }
        publish("greeter-api", pom("greeter-api", ""), classes, "fake/api/Greeting.class");
        publish("greeter", pom("greeter", "<dependencies>"
                + "<dependency><groupId>test.fake</groupId><artifactId>greeter-api</artifactId><version>1.0</version></dependency>"
                + "<dependency><groupId>test.fake</groupId><artifactId>absent</artifactId><version>1.0</version>"
                + "<scope>test</scope></dependency></dependencies>"), classes, "fake/Greeter.class");

        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            String path = exchange.getRequestURI().getPath();
            requests.add(exchange.getRequestMethod() + " " + path);
            Path file = root.resolve(path.substring(1)).normalize();
            if (!file.startsWith(root) || !Files.isRegularFile(file)) {
                exchange.sendResponseHeaders(404, -1);
                exchange.close();
                return;
            }
            byte[] body = Files.readAllBytes(file);
            boolean head = exchange.getRequestMethod().equals("HEAD");
            exchange.sendResponseHeaders(200, head ? -1 : body.length);
            if (!head) {
                try (OutputStream out = exchange.getResponseBody()) {
                    out.write(body);
                }
            }
            exchange.close();
        });
        server.start();
    }

    /** The repository's base URL. */
    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/";
    }

    /** Paths requested so far, as "GET /test/fake/...". */
    List<String> requests() {
        return List.copyOf(requests);
    }

    private static String pom(String artifact, String dependencies) {
        return "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>"
                + "<groupId>test.fake</groupId><artifactId>" + artifact + "</artifactId><version>1.0</version>"
                + dependencies + "</project>";
    }

    private void publish(String artifact, String pom, Path classes, String classFile) throws IOException {
        Path dir = Files.createDirectories(root.resolve("test/fake/" + artifact + "/1.0"));
        Path jar = dir.resolve(artifact + "-1.0.jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
            out.putNextEntry(new JarEntry(classFile));
            out.write(Files.readAllBytes(classes.resolve(classFile)));
            out.closeEntry();
        }
        Path pomFile = write(dir.resolve(artifact + "-1.0.pom"), pom);
        for (Path f : List.of(jar, pomFile)) {
            write(f.resolveSibling(f.getFileName() + ".sha1"), sha1(Files.readAllBytes(f)));
        }
    }

    private static Path write(Path file, String text) throws IOException {
        Files.createDirectories(file.getParent());
        return Files.writeString(file, text, StandardCharsets.UTF_8);
    }

    private static String sha1(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-1").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
