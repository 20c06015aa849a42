package dev.jlens.data;

import java.util.List;

/** The synthetic tasks by name, with their default settings: {@code Tasks.named("tinylang").example(...)}. */
public final class Tasks {

    private Tasks() {
    }

    /** The task names, in the order of {@link #all()}. */
    public static List<String> names() {
        return List.of("induction", "arith-cot", "tinylang", "cyclic-arith", "dialogues", "hidden-roles");
    }

    /** Every task with its defaults and seed 0. */
    public static List<Task<?>> all() {
        return List.of(induction(), arithCot(), tinyLang(), cyclicArith(), dialogues(), hiddenRoles());
    }

    /** A task with its default settings and seed 0; throws naming the valid names. */
    public static Task<?> named(String name) {
        return switch (String.valueOf(name)) {
            case "induction" -> induction();
            case "arith-cot" -> arithCot();
            case "tinylang" -> tinyLang();
            case "cyclic-arith" -> cyclicArith();
            case "dialogues" -> dialogues();
            case "hidden-roles" -> hiddenRoles();
            default -> throw new IllegalArgumentException("no task named '" + name + "'; the tasks are " + names());
        };
    }

    /** {@link Induction#defaults()}: 128 random tokens, blocks of 32, sequences of 65. */
    public static Induction induction() {
        return Induction.defaults();
    }

    /** {@link ArithCot#defaults()}: +, -, * with chains of thought and 5% backtracking. */
    public static ArithCot arithCot() {
        return ArithCot.defaults();
    }

    /** {@link TinyLang#defaults()}: 64-token sequences of the synthetic language. */
    public static TinyLang tinyLang() {
        return TinyLang.defaults();
    }

    /** {@link CyclicArith#defaults()}: days and months plus or minus 1..13, up to 3 filler words. */
    public static CyclicArith cyclicArith() {
        return CyclicArith.defaults();
    }

    /** {@link Dialogues#defaults()}: 3 exchanges with hidden user attributes, 30% ending with a question about one. */
    public static Dialogues dialogues() {
        return Dialogues.defaults();
    }

    /** {@link HiddenRoles#defaults()}: the hidden-role game in both layouts, the wolf posing as seer half the time. */
    public static HiddenRoles hiddenRoles() {
        return HiddenRoles.defaults();
    }
}
