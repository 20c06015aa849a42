package dev.jlens.zoo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
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
