package dev.jlens.zoo.recipes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.data.ArithCot;
import dev.jlens.lora.Lora;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;
import dev.jlens.zoo.Manifest;
import dev.jlens.zoo.Zoo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every zoo model is committed, loads, and meets its recipe's bars and its manifest's numbers when re-evaluated on a
 * fixed prefix of its test split; the recipes and the library's catalogue agree.
 */
class ZooModelsTest {
    private static final long MAX_BYTES = 10_000_000;

    static List<String> names() {
        return Zoo.names();
    }

    @ParameterizedTest
    @MethodSource("names")
    void modelLoadsAndMeetsItsManifestOnTheTestSplit(String name) throws IOException {
        Recipe recipe = Recipe.of(name);
        Manifest manifest = Zoo.manifest(name);   // fails naming the path and the train command if missing
        assertEquals(name, manifest.name());
        assertEquals(recipe.bars(), manifest.bars(), "the manifest's bars are the recipe's");
        assertTrue(manifest.barsMet(), name + " was saved although it missed its bars: " + manifest.evaluation());
        assertTrue(manifest.evaluation().examples() >= recipe.quickEvalExamples());
        long bytes;
        try (Stream<Path> files = Files.walk(Zoo.dir(name))) {
            bytes = files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
        assertTrue(bytes <= MAX_BYTES, name + " takes " + bytes + " bytes, over the zoo's 10 MB");

        try (HookedTransformer model = Zoo.load(name)) {
            assertEquals(recipe.modelConfig().toHf(), model.cfg().toHf(), "architecture differs from the recipe's");
            assertTrue(model.tokenizer().isPresent(), name + " has no tokenizer");
            Evaluation ev = recipe.evaluate(model, recipe.quickEvalExamples());
            for (Bar bar : recipe.bars()) {
                double now = ev.get(bar.metric()), recorded = manifest.metric(bar.metric());
                assertTrue(bar.met(now), String.format(Locale.ROOT, "%s misses %s on %d test examples: %s", name, bar,
                        ev.examples(), ev));
                // a prefix of the manifest's examples: close to the recorded number, not necessarily equal
                double tolerance = 0.05 * Math.max(1, Math.abs(recorded));
                assertTrue(Math.abs(now - recorded) <= tolerance, String.format(Locale.ROOT,
                        "%s: %s is %.4f on %d test examples, but the manifest says %.4f on %d", name, bar.metric(), now,
                        ev.examples(), recorded, manifest.evaluation().examples()));
            }
        }
    }

    /**
     * A model trained as a LoRA adapter holds it in PEFT's layout beside the merged weights: the base with the adapter
     * loaded computes the merged model's logits, and differs from the base alone.
     */
    @Test
    void loraModelsHoldTheirAdapterBesideTheMergedWeights() {
        for (Recipe r : Recipe.all()) {
            Optional<Path> adapter = Zoo.adapter(r.name());
            assertEquals(r.lora().isPresent(), adapter.isPresent(), r.name() + ": adapter/ present iff trained as LoRA");
            if (adapter.isEmpty()) continue;
            long[][] prompts = {ArithEval.prompt(new ArithCot.Problem(ArithCot.Op.ADD, 503, 278), false, false),
                    ArithEval.prompt(new ArithCot.Problem(ArithCot.Op.SUB, 470, 12), true, false)};
            try (HookedTransformer merged = Zoo.load(r.name()); HookedTransformer base = Zoo.load(r.base().orElseThrow())) {
                float[] plain = base.forward(prompts).toFloatArray(), want = merged.forward(prompts).toFloatArray();
                try (Lora lora = Lora.load(base, adapter.get())) {
                    assertEquals(r.lora().get().r(), lora.config().r());
                    assertEquals(r.lora().get().targetModules(), lora.config().targetModules());
                    float[] got = base.forward(prompts).toFloatArray();
                    double maxDiff = 0, maxFromBase = 0;
                    for (int i = 0; i < got.length; i++) {
                        maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
                        maxFromBase = Math.max(maxFromBase, Math.abs(got[i] - plain[i]));
                    }
                    assertTrue(maxDiff < 1e-3, r.name() + ": base + adapter vs merged, max |logit diff| " + maxDiff);
                    assertTrue(maxFromBase > 0.1, r.name() + ": the adapter changes the base's logits by " + maxFromBase);
                }
            }
        }
    }

    @Test
    void namesComeInBuildOrderWithBasesFirst() {
        List<String> names = Zoo.names();
        assertEquals(List.of("attn-only-2l", "tinylang-4l", "thinker", "thinker-ft", "thinker-ctl", "thinker-lora",
                "cyclic-2l", "thinker-decorative", "thinker-monitored", "chat-users", "deceiver"),
                names);
        assertEquals(names, Recipe.all().stream().map(Recipe::name).toList(), "one recipe per catalogue entry");
        for (Recipe r : Recipe.all()) {
            r.base().ifPresent(b -> assertTrue(names.indexOf(b) < names.indexOf(r.name()), r.name() + " before " + b));
        }
    }
}
