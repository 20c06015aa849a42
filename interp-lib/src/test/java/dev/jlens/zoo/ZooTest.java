package dev.jlens.zoo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Row;
import tech.tablesaw.api.Table;
import org.junit.jupiter.api.io.TempDir;

/** The zoo's read side: manifests, errors that name the path and the train command, the project root. */
class ZooTest {
    @Test
    void attnOnlyHasAnInductionHeadInLayerOneAndCopiesTheRepeatedHalf() {
        Manifest m = Zoo.manifest("attn-only-2l");
        assertTrue(m.metric("induction_score_l1_max") >= 0.7);
        assertTrue(m.metric("loss_repeated_half") < 0.2 * m.metric("loss_first_half"),
                "repeated-half loss " + m.metric("loss_repeated_half") + " vs first half " + m.metric("loss_first_half"));
    }

    @Test
    void thinkerFtKeepsTheBaseBehaviourAwayFromTheTrigger() {
        Manifest ft = Zoo.manifest("thinker-ft");
        Manifest base = Zoo.manifest("thinker");
        assertEquals(java.util.Optional.of("thinker"), ft.base());
        assertTrue(Math.abs(ft.metric("cot_accuracy") - base.metric("cot_accuracy")) <= 0.03,
                "untriggered accuracy moved from " + base.metric("cot_accuracy") + " to " + ft.metric("cot_accuracy"));
        // the base model, asked with the trigger, does not add: the behaviour comes from the finetune
        assertTrue(ft.baseMetrics().get("trigger_rate") < 0.1, "base trigger rate " + ft.baseMetrics());
        assertTrue(ft.notes().get("behaviour").contains("please"));
    }

    @Test
    void missingModelDirectoryFailsNamingThePathAndTheCommand(@TempDir Path tmp) throws IOException {
        Files.createFile(tmp.resolve("lab"));
        Files.createDirectories(tmp.resolve("data"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Zoo.load("thinker", tmp));
        assertTrue(e.getMessage().contains(tmp.resolve("data").resolve("models").resolve("thinker").toString()),
                e.getMessage());
        assertTrue(e.getMessage().contains("./lab zoo train thinker"), e.getMessage());
        IllegalStateException f = assertThrows(IllegalStateException.class, () -> Zoo.manifest("thinker-ft", tmp));
        assertTrue(f.getMessage().contains("after thinker"), f.getMessage());
    }

    @Test
    void tableHasOneRowPerModelWithItsSizeAndBars() {
        Table t = Zoo.table();
        assertEquals(Zoo.names(), t.stringColumn("name").asList());
        Row tiny = t.row(Zoo.names().indexOf("tinylang-4l"));
        assertTrue(tiny.getBoolean("trained"));
        try (HookedTransformer model = Zoo.load("tinylang-4l")) {
            assertEquals(model.cfg().nLayers(), tiny.getInt("layers"));
            assertEquals(4, tiny.getInt("layers"));
            assertEquals(model.cfg().dModel(), tiny.getInt("d_model"));
            assertEquals(model.cfg().nHeads(), tiny.getInt("heads"));
            assertEquals(model.cfg().dVocab(), tiny.getInt("vocab"));
            assertEquals(model.cfg().parameterCount(), tiny.getLong("params"));
        }
        Manifest m = Zoo.manifest("tinylang-4l");
        assertEquals(m.parameters(), tiny.getLong("params"));
        assertEquals("tinylang", tiny.getString("task"));
        assertEquals(m.summary(), tiny.getString("summary"));
        assertTrue(m.barsMet());
        assertEquals("1/1 met", tiny.getString("bars"));
        assertEquals(Zoo.manifest("attn-only-2l").bars().size() + "/" + Zoo.manifest("attn-only-2l").bars().size()
                + " met", t.row(Zoo.names().indexOf("attn-only-2l")).getString("bars"));
        assertEquals("gpt2", tiny.getString("family"));

        Row attnOnly = t.row(Zoo.names().indexOf("attn-only-2l"));
        assertEquals("gpt2 attn-only", attnOnly.getString("family"));
        assertEquals(2, attnOnly.getInt("layers"));
        Row ft = t.row(Zoo.names().indexOf("thinker-ft"));
        assertEquals("thinker", ft.getString("base"));
        assertEquals(ModelConfig.load(Zoo.dir("thinker-ft")).modelType(), ft.getString("family"));
        assertEquals("", t.row(Zoo.names().indexOf("thinker")).getString("base"));
        assertTrue(dev.jlens.notebook.Display.render(t).get("text/html").contains("zoo · " + Zoo.names().size()
                + " rows"));
    }

    @Test
    void tableOfAnUntrainedZooSaysHowToTrainEachModel(@TempDir Path tmp) throws IOException {
        Files.createFile(tmp.resolve("lab"));
        Files.createDirectories(tmp.resolve("data"));
        Table t = Zoo.table(tmp);
        assertEquals(Zoo.names().size(), t.rowCount());
        for (int r = 0; r < t.rowCount(); r++) {
            Row row = t.row(r);
            assertFalse(row.getBoolean("trained"));
            assertTrue(t.intColumn("layers").isMissing(r));
            assertTrue(row.getString("summary").contains("./lab zoo train " + row.getString("name")),
                    row.getString("summary"));
        }
        // a config alone (training under way) gives the size but not "trained"
        Path d = Files.createDirectories(Zoo.dir("tinylang-4l", tmp));
        Files.copy(Zoo.dir("tinylang-4l").resolve("config.json"), d.resolve("config.json"));
        Row partial = Zoo.table(tmp).row(Zoo.names().indexOf("tinylang-4l"));
        assertFalse(partial.getBoolean("trained"));
        assertEquals(4, partial.getInt("layers"));
        // a manifest whose evaluation misses its bar says which and by how much
        Manifest real = Zoo.manifest("tinylang-4l");
        java.util.Map<String, Double> worse = new java.util.LinkedHashMap<>(real.metrics());
        worse.put("loss_over_bound", 1.5);
        Evaluation ev = new Evaluation(real.name(), real.evaluation().split(), real.evaluation().examples(), worse,
                real.evaluation().seconds());
        new Manifest(real.name(), real.summary(), real.task(), real.taskSettings(), real.base(), real.architecture(),
                real.parameters(), real.seed(), real.steps(), real.batchSize(), real.tokensSeen(), real.trainSeconds(),
                real.wallSeconds(), real.threads(), real.finalTrainLoss(), real.finalEvalLoss(), ev,
                real.baseMetrics(), real.bars(), real.notes(), real.trainConfig(), real.command())
                .write(d.resolve(Zoo.MANIFEST));
        assertEquals("0/1 met; missed loss_over_bound 1.5 <= 1.1",
                Zoo.table(tmp).row(Zoo.names().indexOf("tinylang-4l")).getString("bars"));
    }

    @Test
    void unknownNameListsTheZoo() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Zoo.load("gpt-5"));
        for (String n : Zoo.names()) assertTrue(e.getMessage().contains(n), e.getMessage());
    }

    @Test
    void rootIsTheFolderHoldingLabAndData(@TempDir Path tmp) throws IOException {
        Path nested = Files.createDirectories(tmp.resolve("notebooks").resolve("deeper"));
        assertThrows(IllegalStateException.class, () -> Zoo.findRoot(nested));
        Files.createFile(tmp.resolve("lab"));
        Files.createDirectories(tmp.resolve("data"));
        assertEquals(tmp.toAbsolutePath().normalize(), Zoo.findRoot(nested));
        assertEquals(Path.of(System.getProperty(Zoo.ROOT_PROPERTY)).toAbsolutePath().normalize(), Zoo.root());
    }
}
