package dev.jlens.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The loop on its own, driving a counter instead of a model: cadence, checkpoints, interrupts, resumption. */
class TrainingLoopTest {
    private static final TrainingLoop.Format COUNTER = new TrainingLoop.Format("test-counter", 1, List.of("sum.txt"),
            "Counter.resume(runDir)");
    private static final TrainingLoop.Format OTHER = new TrainingLoop.Format("test-other", 1, List.of(), "Other.resume(runDir)");

    /** A "trainer" whose state is the sum of the step indices it ran; {@code interruptAt} interrupts its thread. */
    private static final class Counter implements TrainingLoop.Steps {
        final List<String> calls = new ArrayList<>();
        long sum;
        int done;
        int interruptAt = -1;

        @Override
        public void begin() {
            calls.add("begin");
        }

        @Override
        public boolean step(int index) {
            sum += index;
            done = index + 1;
            if (index + 1 == interruptAt) Thread.currentThread().interrupt();
            return index == 4;   // "an eval at step 5": shown off the cadence
        }

        @Override
        public void end() {
            calls.add("end");
        }

        @Override
        public String status() {
            return "sum " + sum;
        }

        @Override
        public void save(Path dir, ObjectNode state) throws IOException {
            Files.writeString(dir.resolve("sum.txt"), Long.toString(sum));
            state.put("sum", sum);
        }

        @Override
        public TrainingLoop.Interrupted interrupted(Path checkpoint) {
            return new TrainingLoop.Interrupted("counting", done, 9, checkpoint, COUNTER.resumeCall()) {};
        }
    }

    /** Records the progress updates. */
    private static final class Updates implements ProgressSink {
        final List<String> seen = new ArrayList<>();

        @Override
        public void start(long total, String description) {
            seen.add("start " + total + " " + description);
        }

        @Override
        public void update(long done, String text) {
            seen.add(done + ": " + text);
        }

        @Override
        public void close() {
            seen.add("close");
        }
    }

    private static TrainingLoop loop(Counter c, TrainingLoop.Format f, int steps) {
        return new TrainingLoop(new TrainingLoop.Cadence(steps, OptionalInt.of(3), 2, 4), f, c, "count");
    }

    private static List<String> checkpointNames(Path runDir) throws IOException {
        try (Stream<Path> s = Files.list(runDir.resolve("checkpoints"))) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void stepsReportsAndSavesOnItsCadence(@TempDir Path tmp) throws IOException {
        Counter c = new Counter();
        Updates u = new Updates();
        TrainingLoop l = loop(c, COUNTER, 9);
        l.progress(u);
        l.runDir(tmp.resolve("run"));
        l.trainUntil(7);
        assertEquals(List.of("begin", "end"), c.calls);
        assertEquals(7, l.step());
        assertEquals(21, c.sum);
        // start, the state at the start, every 4 steps, the notable step 5 and the call's last step
        assertEquals(List.of("start 9 count", "0: sum 0", "4: sum 6", "5: sum 10", "7: sum 21", "close"), u.seen);
        // every 3 steps, the 2 newest kept; not at the end of a call, only at the end of the run
        assertEquals(List.of("step-00000003", "step-00000006"), checkpointNames(tmp.resolve("run")));
        l.trainUntil(9);
        assertEquals(List.of("step-00000006", "step-00000009"), checkpointNames(tmp.resolve("run")));
        Path last = l.lastCheckpoint().orElseThrow();
        assertEquals("36", Files.readString(last.resolve("sum.txt")));
        var state = new ObjectMapper().readTree(last.resolve(TrainingLoop.STATE).toFile());
        assertEquals("test-counter", state.get("format").asText());
        assertEquals(9, state.get("step").asInt());
        assertEquals(36, state.get("sum").asLong());
        assertThrows(IllegalArgumentException.class, () -> l.trainUntil(10));
    }

    @Test
    void anInterruptSavesTheStateAndSetsTheFlagAgain(@TempDir Path tmp) throws IOException {
        Counter c = new Counter();
        c.interruptAt = 5;
        TrainingLoop l = loop(c, COUNTER, 9);
        l.progress(ProgressSink.none());
        l.runDir(tmp.resolve("run"));
        TrainingLoop.Interrupted e = assertThrows(TrainingLoop.Interrupted.class, () -> l.trainUntil(9));
        assertTrue(Thread.interrupted(), "the interrupt flag is set again");
        assertEquals(5, l.step(), "stops between steps, after the one during which the interrupt came");
        assertTrue(e.checkpoint().orElseThrow().endsWith("step-00000005"));
        assertTrue(e.getMessage().contains("Counter.resume(runDir)") && e.getMessage().contains("trainOrResume"),
                e.getMessage());
        assertEquals(List.of("begin", "end"), c.calls);
        assertEquals(List.of("step-00000003", "step-00000005"), checkpointNames(tmp.resolve("run")));

        Counter again = new Counter();
        TrainingLoop l2 = loop(again, COUNTER, 9);
        List<Integer> restored = new ArrayList<>();
        l2.resumeOrStart(tmp.resolve("run"), cp -> {
            restored.add(cp.step());
            again.sum = cp.state().get("sum").asLong();
        });
        assertEquals(List.of(5), restored);
        assertEquals(5, l2.step());
        l2.progress(ProgressSink.none());
        l2.trainUntil(9);
        assertEquals(36, again.sum, "the resumed count ends where an uninterrupted one does");
    }

    @Test
    void resumeOrStartStartsInAnEmptyDirectoryAndChecksTheCheckpointFits(@TempDir Path tmp) {
        Counter c = new Counter();
        TrainingLoop l = loop(c, COUNTER, 9);
        l.resumeOrStart(tmp.resolve("run"), cp -> {
            throw new AssertionError("nothing to restore");
        });
        assertEquals(0, l.step());
        assertTrue(Files.isDirectory(tmp.resolve("run/checkpoints")));
        l.progress(ProgressSink.none());
        l.trainUntil(9);

        TrainingLoop shorter = loop(new Counter(), COUNTER, 6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> shorter.resumeOrStart(tmp.resolve("run"), cp -> {}));
        assertTrue(e.getMessage().contains("step 9") && e.getMessage().contains("6 steps"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> loop(new Counter(), COUNTER, 9).runDir(tmp.resolve("run")));
        assertTrue(e.getMessage().contains("Counter.resume(runDir)"), e.getMessage());
    }

    @Test
    void anotherTrainersRunIsRefusedByItsFormat(@TempDir Path tmp) {
        TrainingLoop l = loop(new Counter(), COUNTER, 3);
        l.progress(ProgressSink.none());
        l.runDir(tmp.resolve("run"));
        l.trainUntil(3);
        TrainingLoop other = loop(new Counter(), OTHER, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> other.resumeOrStart(tmp.resolve("run"), cp -> {}));
        assertTrue(e.getMessage().contains("'test-counter'") && e.getMessage().contains("another trainer"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> other.runDir(tmp.resolve("run")));
        e = assertThrows(IllegalArgumentException.class, () -> TrainingLoop.resumable(tmp.resolve("none"), COUNTER));
        assertTrue(e.getMessage().contains("no complete checkpoint") && e.getMessage().contains("sum.txt"), e.getMessage());
    }

    @Test
    void requireMatchNamesEveryDifferenceButTheFreeOnes() {
        ObjectMapper json = new ObjectMapper();
        ObjectNode saved = json.createObjectNode().put("lr", 0.003).put("steps", 100).put("seed", 1).put("tag", "a");
        ObjectNode here = json.createObjectNode().put("lr", 0.004).put("steps", 200).put("seed", 1L).put("tag", "b");
        TrainingLoop.Checkpoint c = new TrainingLoop.Checkpoint(Path.of("run", "checkpoints", "step-00000010"), 10, saved);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> c.requireMatch("train config", saved, here, List.of("steps")));
        String m = e.getMessage();
        assertTrue(m.contains("lr (0.003 in the run directory, 0.004 here)"), m);
        assertTrue(m.contains("tag ('a' in the run directory, 'b' here)"), m);
        assertFalse(m.contains("steps") || m.contains("seed"), "free keys and equal numbers (int or long) pass: " + m);
        c.requireMatch("train config", saved, here.put("lr", 0.003).put("tag", "a"), List.of("steps"));
    }
}
