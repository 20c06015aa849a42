package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.analysis.Attribution;
import dev.jlens.analysis.Direction;
import dev.jlens.analysis.Metric;
import dev.jlens.analysis.PatchIndex;
import dev.jlens.analysis.PatchResult;
import dev.jlens.analysis.PatchSite;
import dev.jlens.analysis.Patching;
import dev.jlens.model.HookedTransformer;

import java.io.PrintStream;
import java.util.List;
import java.util.Set;

/**
 * {@code lab patch} and {@code lab attribute}: activation patching and its gradient estimates from the command line,
 * one JSON object per line. The line shapes are a contract read by scripts:
 * <pre>
 * {"site":"resid_pre","direction":"denoise","layer":0,"pos":3,"value":-8.92}     (one per patch; z: "head")
 * {"metric_clean":6.22,"metric_corrupt":-5.38}                                     (last)
 * </pre>
 */
final class PatchCli {
    /** The sites the command line patches; {@code z} is one head at every position. */
    static final List<String> SITES = List.of("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z");
    /** Attribution methods. */
    static final List<String> METHODS = List.of("atp", "atp-star", "eap-ig");

    private static final ObjectMapper JSON = new ObjectMapper();

    private PatchCli() {}

    static int patch(String[] argv, PrintStream out) {
        Args a = Args.parse("patch", argv, Set.of("model", "clean", "corrupt", "metric", "site", "direction",
                "revision"), Set.of());
        Request r = request(a);
        try (HookedTransformer m = HookedTransformer.fromPretrained(r.model, a.get("revision").orElse("main"))) {
            Patching p = patching(a, m, r);
            write(out, p.sweep(r.site, r.direction));
        }
        return Lab.OK;
    }

    static int attribute(String[] argv, PrintStream out) {
        Args a = Args.parse("attribute", argv, Set.of("model", "clean", "corrupt", "metric", "site", "direction",
                "method", "steps", "revision"), Set.of());
        Request r = request(a);
        String method = a.require("method");
        if (!METHODS.contains(method)) {
            throw a.usage("--method must be one of " + String.join(", ", METHODS) + ", got '" + method + "'");
        }
        int steps = a.intOpt("steps", 16, 1, 4096);
        if (a.has("steps") && !method.equals("eap-ig")) throw a.usage("--steps applies to --method eap-ig only");
        try (HookedTransformer m = HookedTransformer.fromPretrained(r.model, a.get("revision").orElse("main"))) {
            Patching p = patching(a, m, r);
            PatchResult res = switch (method) {
                case "atp" -> Attribution.atp(p, r.site, r.direction);
                case "atp-star" -> Attribution.atpStar(p, r.site, r.direction);
                default -> Attribution.integratedGradients(p, r.site, r.direction, steps);
            };
            write(out, res);
        }
        return Lab.OK;
    }

    private record Request(String model, long[] clean, long[] corrupt, long a, long b, PatchSite site,
                           Direction direction) {}

    private static Request request(Args a) {
        if (!a.positional().isEmpty()) throw a.usage("unexpected argument '" + a.positional().get(0) + "'");
        String model = a.require("model");
        long[] clean = ids(a, "clean");
        long[] corrupt = ids(a, "corrupt");
        if (clean.length != corrupt.length) {
            throw a.usage("--clean has " + clean.length + " tokens and --corrupt " + corrupt.length
                    + ": patching pairs positions, so give sequences of equal length");
        }
        String metric = a.require("metric");
        if (!metric.startsWith("logit-diff:")) {
            throw a.usage("--metric '" + metric + "' is not known: valid metrics are logit-diff:A,B (logit of token A "
                    + "minus logit of token B at the last position)");
        }
        long[] ab = a.longList("metric", metric.substring("logit-diff:".length()));
        if (ab.length != 2) throw a.usage("--metric logit-diff:A,B needs exactly two token ids, got " + ab.length);
        String site = a.require("site");
        if (!SITES.contains(site)) {
            throw a.usage("--site must be one of " + String.join("|", SITES) + ", got '" + site + "'");
        }
        String dir = a.get("direction").orElse("denoise");
        Direction direction;
        try {
            direction = Direction.parse(dir);
        } catch (IllegalArgumentException e) {
            throw a.usage("--direction must be denoise or noise, got '" + dir + "'");
        }
        return new Request(model, clean, corrupt, ab[0], ab[1], PatchSite.parse(site), direction);
    }

    private static long[] ids(Args a, String name) {
        long[] ids = a.longList(name, a.require(name));
        if (ids.length == 0) throw a.usage("--" + name + " needs at least one token id");
        return ids;
    }

    private static Patching patching(Args a, HookedTransformer m, Request r) {
        int vocab = m.cfg().dVocab();
        check(a, "clean", r.clean, vocab);
        check(a, "corrupt", r.corrupt, vocab);
        for (long t : new long[] {r.a, r.b}) {
            if (t < 0 || t >= vocab) {
                throw a.usage("--metric: token id " + t + " is outside the model's vocabulary [0, " + vocab + ")");
            }
        }
        if (r.clean.length > m.cfg().nCtx()) {
            throw a.usage(r.clean.length + " tokens exceed the model's context of " + m.cfg().nCtx());
        }
        if (m.cfg().attnOnly() && (r.site == PatchSite.MLP_OUT || r.site == PatchSite.RESID_MID)) {
            throw a.usage("--site " + r.site + ": the model is attention-only; valid sites for it are resid_pre, "
                    + "resid_post, attn_out, z");
        }
        return Patching.of(m, r.clean, r.corrupt, Metric.logitDiff(r.a, r.b));
    }

    private static void check(Args a, String name, long[] ids, int vocab) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw a.usage("--" + name + ": token id " + ids[i] + " at position " + i + " is outside the model's "
                        + "vocabulary [0, " + vocab + ")");
            }
        }
    }

    private static void write(PrintStream out, PatchResult r) {
        for (int i = 0; i < r.indices().size(); i++) {
            PatchIndex ix = r.indices().get(i);
            ObjectNode line = JSON.createObjectNode();
            line.put("site", r.site().shortName());
            line.put("direction", r.direction().label());
            line.put("layer", ix.layer());
            if (ix.head().isPresent()) {
                line.put("head", ix.head().getAsInt());
            } else {
                line.put("pos", ix.pos().orElseThrow());
            }
            line.put("value", r.values()[i]);
            out.println(line);
        }
        ObjectNode last = JSON.createObjectNode();
        last.put("metric_clean", r.metricClean());
        last.put("metric_corrupt", r.metricCorrupt());
        out.println(last);
    }
}
