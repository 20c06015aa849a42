package dev.jlens.model.arch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hook.HookRegistry;

import java.util.List;
import java.util.Optional;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The registry of architecture families. Each family is one file that declares a {@link Spec} (its Hugging Face
 * names, its {@code config.json} mapping, its weight table and its constructor); adding a family is that file and
 * one line in {@link #FAMILIES}. {@link ModelConfig} dispatches through here and never names a family itself.
 */
public final class Architectures {
    private Architectures() {}

    /** A Hugging Face {@code architectures} entry and the {@code model_type} that goes with it. */
    record HfName(String architecture, String modelType) {}

    /**
     * What a family registers.
     *
     * @param family   the key configs carry
     * @param hfNames  the Hugging Face architectures it loads, the first being its default
     * @param fromHf   reads a {@code config.json} object, given which of {@code hfNames} it names
     * @param toHf     writes the family's fields ({@code architectures}, {@code model_type}, sizes, ...) into an object
     * @param weights  the weight table for a config (its sizes give the parameter count)
     * @param options  the family's options record type ({@link ModelConfig.NoOptions} when it has none; a wider type
     *                 when it takes several, its {@code validate} naming which)
     * @param validate checks only this family needs (e.g. an even {@code d_head} for rotary embeddings)
     * @param create   the implementation, declaring its hook points
     */
    record Spec(ModelConfig.Family family, List<HfName> hfNames, BiFunction<JsonNode, String, ModelConfig> fromHf,
                BiConsumer<ModelConfig, ObjectNode> toHf, Function<ModelConfig, WeightTable<?>> weights,
                Class<? extends ModelConfig.FamilyOptions> options, Consumer<ModelConfig> validate,
                BiFunction<ModelConfig, HookRegistry, Architecture> create) {}

    /** Every registered family, in the order error messages list them. */
    private static final List<Spec> FAMILIES = List.of(Gpt2.SPEC, Llama.SPEC, Gemma2.SPEC);

    /** The Hugging Face architecture names that can be loaded. */
    static List<String> supported() {
        return FAMILIES.stream().flatMap(s -> s.hfNames().stream()).map(HfName::architecture).toList();
    }

    /** The registered families. */
    public static List<ModelConfig.Family> families() {
        return FAMILIES.stream().map(Spec::family).toList();
    }

    static Spec spec(ModelConfig.Family family) {
        for (Spec s : FAMILIES) if (s.family() == family) return s;
        throw new IllegalArgumentException("no architecture family '" + family + "' is registered; registered: "
                + families());
    }

    static Optional<Spec> forHfArchitecture(String architecture) {
        return FAMILIES.stream().filter(s -> s.hfNames().stream().anyMatch(n -> n.architecture().equals(architecture)))
                .findFirst();
    }

    /** The architecture a config without an {@code architectures} field means by its {@code model_type}. */
    static Optional<String> architectureOfModelType(String modelType) {
        return FAMILIES.stream().flatMap(s -> s.hfNames().stream()).filter(n -> n.modelType().equals(modelType))
                .map(HfName::architecture).findFirst();
    }

    /** The implementation of {@code cfg.family()}, declaring its hook points into {@code hooks}. */
    static Architecture create(ModelConfig cfg, HookRegistry hooks) {
        return spec(cfg.family()).create().apply(cfg, hooks);
    }
}
