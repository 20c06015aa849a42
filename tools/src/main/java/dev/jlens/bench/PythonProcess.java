package dev.jlens.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A Python baseline script serving timing requests: one request line in, one JSON line out. It answers
 * {@code {"ready": true, "torch": ..., ...}} on start and exits on {@code quit}. Failures name the request, the exit
 * code and the end of the script's standard error.
 */
final class PythonProcess implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Process process;
    private final BufferedReader in;
    private final Writer out;
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private final JsonNode ready;

    private PythonProcess(List<String> cmd) throws IOException {
        process = new ProcessBuilder(cmd).start();
        in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        out = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        ModelBench.Proc.pump(process.getErrorStream(), err);
        JsonNode r;
        try {
            r = reply("start");
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        if (!r.path("ready").asBoolean()) {
            close();
            throw failure("did not report ready: " + r);
        }
        ready = r;
    }

    /** Starts {@code cmd} and waits for its ready line. */
    static PythonProcess start(List<String> cmd) throws IOException {
        return new PythonProcess(cmd);
    }

    /** The first Python of {@link BenchReport#pythonCandidates()} that imports torch. */
    static Optional<String> pythonWithTorch() {
        for (String c : BenchReport.pythonCandidates()) {
            ModelBench.Proc r = ModelBench.Proc.tryRun(List.of(c, "-c", "import torch"), 120);
            if (r != null && r.exit() == 0) return Optional.of(c);
        }
        return Optional.empty();
    }

    /** What the script reported on start (torch version, thread counts). */
    JsonNode ready() {
        return ready;
    }

    /** Sends one request line and returns the script's JSON answer. */
    JsonNode request(String line) {
        try {
            out.write(line + "\n");
            out.flush();
        } catch (IOException e) {
            throw failure("stopped accepting requests (" + e.getMessage() + ")");
        }
        return reply(line);
    }

    private JsonNode reply(String request) {
        String line;
        try {
            line = in.readLine();
        } catch (IOException e) {
            throw failure("could not be read after '" + request + "' (" + e.getMessage() + ")");
        }
        if (line == null) throw failure("exited after '" + request + "'");
        try {
            return JSON.readTree(line);
        } catch (IOException e) {
            throw failure("answered '" + request + "' with a line that is not JSON: " + line);
        }
    }

    /** An exception naming what went wrong, the exit code if the script ended, and the end of its error output. */
    IllegalStateException failure(String what) {
        String exit = "";
        try {
            if (process.waitFor(2, TimeUnit.SECONDS)) exit = " (exit " + process.exitValue() + ")";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return new IllegalStateException("Python baseline " + what + exit + ": "
                + BenchReport.tail(err.toString(StandardCharsets.UTF_8)));
    }

    /** Asks the script to quit; kills it if it does not within 10 s. */
    @Override
    public void close() {
        try {
            out.write("quit\n");
            out.close();
            if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly();
        } catch (IOException e) {
            process.destroyForcibly();
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
