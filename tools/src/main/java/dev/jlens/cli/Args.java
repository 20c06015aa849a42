package dev.jlens.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * Parsed {@code --name value} options and {@code --flag}s of one command, checked against the options the command
 * accepts. Every problem is an {@link UsageException} naming the valid options.
 */
public final class Args {
    private final String command;
    private final Map<String, String> values = new LinkedHashMap<>();
    private final Set<String> flags = new TreeSet<>();
    private final List<String> positional = new ArrayList<>();
    private final Set<String> valued;
    private final Set<String> flagNames;

    private Args(String command, Set<String> valued, Set<String> flagNames) {
        this.command = command;
        this.valued = valued;
        this.flagNames = flagNames;
    }

    /**
     * Parses {@code args} for {@code command}; {@code valued} options take a value ({@code --seed 3} or
     * {@code --seed=3}), {@code flagNames} take none. Names are given without the leading dashes.
     */
    public static Args parse(String command, String[] args, Set<String> valued, Set<String> flagNames) {
        Args a = new Args(command, valued, flagNames);
        for (int i = 0; i < args.length; i++) {
            String s = args[i];
            if (!s.startsWith("--") || s.length() == 2) {
                a.positional.add(s);
                continue;
            }
            String name = s.substring(2);
            String inline = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                inline = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (flagNames.contains(name)) {
                if (inline != null) throw a.usage("--" + name + " takes no value");
                a.flags.add(name);
            } else if (valued.contains(name)) {
                String v = inline;
                if (v == null) {
                    if (i + 1 >= args.length) throw a.usage("--" + name + " needs a value");
                    v = args[++i];
                }
                if (a.values.put(name, v) != null) throw a.usage("--" + name + " given twice");
            } else {
                throw a.usage("unknown option --" + name);
            }
        }
        return a;
    }

    /** Options this command accepts, for messages: {@code --model, --ids, ..., --no-kv-cache}. */
    public String validOptions() {
        List<String> all = new ArrayList<>();
        valued.stream().sorted().forEach(n -> all.add("--" + n + " <value>"));
        flagNames.stream().sorted().forEach(n -> all.add("--" + n));
        return all.isEmpty() ? "(none)" : String.join(", ", all);
    }

    /** A usage error for this command that lists its valid options. */
    public UsageException usage(String problem) {
        return new UsageException(command + ": " + problem + "; valid options: " + validOptions());
    }

    /** Positional (non-option) arguments, in order. */
    public List<String> positional() {
        return positional;
    }

    /** True if the flag was given. */
    public boolean flag(String name) {
        return flags.contains(name);
    }

    /** True if the valued option was given. */
    public boolean has(String name) {
        return values.containsKey(name);
    }

    /** The option's value, if given. */
    public Optional<String> get(String name) {
        return Optional.ofNullable(values.get(name));
    }

    /** The option's value, or a usage error saying it is required. */
    public String require(String name) {
        String v = values.get(name);
        if (v == null) throw usage("--" + name + " is required");
        return v;
    }

    /** An integer option in {@code [min, max]}, or {@code dflt} when absent. */
    public int intOpt(String name, int dflt, int min, int max) {
        String v = values.get(name);
        return v == null ? dflt : parseInt(name, v, min, max);
    }

    /** A required integer option in {@code [min, max]}. */
    public int requireInt(String name, int min, int max) {
        return parseInt(name, require(name), min, max);
    }

    /** A long option, or {@code dflt} when absent. */
    public long longOpt(String name, long dflt) {
        String v = values.get(name);
        if (v == null) return dflt;
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw usage("--" + name + " must be an integer, got '" + v + "'");
        }
    }

    /** A floating-point option in {@code [min, max]}, or {@code dflt} when absent. */
    public double doubleOpt(String name, double dflt, double min, double max) {
        String v = values.get(name);
        if (v == null) return dflt;
        double d;
        try {
            d = Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw usage("--" + name + " must be a number, got '" + v + "'");
        }
        if (!(d >= min && d <= max)) throw usage("--" + name + " must be in [" + min + ", " + max + "], got " + v);
        return d;
    }

    /** A comma-separated list of integers in {@code [min, max]}, or {@code dflt} when absent. */
    public int[] intList(String name, int[] dflt, int min, int max) {
        String v = values.get(name);
        if (v == null) return dflt;
        long[] l = longList(name, v);
        int[] out = new int[l.length];
        for (int i = 0; i < l.length; i++) {
            if (l[i] < min || l[i] > max) {
                throw usage("--" + name + " values must be in [" + min + ", " + max + "], got " + l[i]);
            }
            out[i] = (int) l[i];
        }
        return out;
    }

    /** A comma-separated list of longs ({@code 1,2,3}); spaces are allowed. */
    public long[] longList(String name, String v) {
        String[] parts = v.split(",");
        long[] out = new long[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Long.parseLong(parts[i].trim());
            } catch (NumberFormatException e) {
                throw usage("--" + name + " must be comma-separated integers like 1,2,3, got '" + v + "'");
            }
        }
        return out;
    }

    private int parseInt(String name, String v, int min, int max) {
        long n;
        try {
            n = Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw usage("--" + name + " must be an integer, got '" + v + "'");
        }
        if (n < min || n > max) throw usage("--" + name + " must be in [" + min + ", " + max + "], got " + v);
        return (int) n;
    }

    @Override
    public String toString() {
        return "Args(" + command + ", " + values + ", flags " + flags + ", positional " + positional + ")";
    }

    /** Bad command-line arguments: the message says what is wrong and what is valid. Exit code 2. */
    public static final class UsageException extends IllegalArgumentException {
        public UsageException(String message) {
            super(message);
        }
    }
}
