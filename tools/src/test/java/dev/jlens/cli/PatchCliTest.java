package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.analysis.Attribution;
import dev.jlens.analysis.Direction;
import dev.jlens.analysis.Metric;
import dev.jlens.analysis.PatchSite;
import dev.jlens.analysis.Patching;
import dev.jlens.data.Agreement;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lab patch} and {@code lab attribute}: the JSON-lines contract, values equal to the library's, errors. */
class PatchCliTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Agreement.Pair PAIR = new Agreement(Agreement.Template.OBJECT_GAP, 0).pair(0);

    private static LabTest.Run lab(String... args) {
        return LabTest.lab(args);
    }

    private static String ids(long[] x) {
        return Arrays.stream(x).mapToObj(Long::toString).collect(Collectors.joining(","));
    }

    private static String model() {
        return Zoo.dir("tinylang-4l").toString();
    }

    private static String[] args(String cmd, String site, String direction, String... more) {
        List<String> a = new ArrayList<>(List.of(cmd, "--model", model(), "--clean", ids(PAIR.clean()), "--corrupt",
                ids(PAIR.corrupt()), "--metric", "logit-diff:" + PAIR.singularVerb() + "," + PAIR.pluralVerb(),
                "--site", site, "--direction", direction));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    private static List<JsonNode> lines(LabTest.Run r) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (String l : r.out().strip().split("\n")) out.add(JSON.readTree(l));
        return out;
    }

    private static Patching patching(HookedTransformer m) {
        return Patching.of(m, PAIR.clean(), PAIR.corrupt(), Metric.logitDiff(PAIR.singularVerb(), PAIR.pluralVerb()));
    }

    @Test
    void patchPrintsOneLinePerPatchAndTheBaseMetricsInTheContractsShape() throws Exception {
        LabTest.Run r = lab(args("patch", "resid_pre", "denoise"));
        assertEquals(0, r.code(), r.err());
        List<JsonNode> l = lines(r);
        assertEquals(4 * 7 + 1, l.size());
        JsonNode first = l.get(0);
        assertEquals(List.of("site", "direction", "layer", "pos", "value"), names(first));
        assertEquals("resid_pre", first.get("site").asText());
        assertEquals("denoise", first.get("direction").asText());
        JsonNode last = l.get(l.size() - 1);
        assertEquals(List.of("metric_clean", "metric_corrupt"), names(last));
        try (HookedTransformer m = Zoo.load("tinylang-4l")) {
            Patching p = patching(m);
            double[] v = p.sweep(PatchSite.RESID_PRE, Direction.DENOISE).values();
            for (int i = 0; i < v.length; i++) {
                assertEquals(i / 7, l.get(i).get("layer").asInt());
                assertEquals(i % 7, l.get(i).get("pos").asInt());
                assertEquals(v[i], l.get(i).get("value").asDouble(), 1e-9);
            }
            assertEquals(p.metricClean(), last.get("metric_clean").asDouble(), 1e-9);
            assertEquals(p.metricCorrupt(), last.get("metric_corrupt").asDouble(), 1e-9);
            // at layer 0, the subject's position carries the whole difference
            assertEquals(p.metricClean(), l.get(Agreement.SUBJECT_POS).get("value").asDouble(), 1e-4);
        }
    }

    @Test
    void zLinesNameTheHeadAndAttributionUsesTheSameShape() throws Exception {
        LabTest.Run z = lab(args("patch", "z", "noise"));
        assertEquals(0, z.code(), z.err());
        List<JsonNode> l = lines(z);
        assertEquals(4 * 4 + 1, l.size());
        assertEquals(List.of("site", "direction", "layer", "head", "value"), names(l.get(0)));
        for (String method : List.of("atp", "atp-star", "eap-ig")) {
            LabTest.Run a = lab(args("attribute", "mlp_out", "denoise", "--method", method));
            assertEquals(0, a.code(), method + ": " + a.err());
            List<JsonNode> al = lines(a);
            assertEquals(4 * 7 + 1, al.size(), method);
            assertEquals(List.of("site", "direction", "layer", "pos", "value"), names(al.get(0)));
        }
        LabTest.Run atp = lab(args("attribute", "resid_mid", "noise", "--method", "atp"));
        try (HookedTransformer m = Zoo.load("tinylang-4l")) {
            double[] v = Attribution.atp(patching(m), PatchSite.RESID_MID, Direction.NOISE).values();
            List<JsonNode> al = lines(atp);
            for (int i = 0; i < v.length; i++) assertEquals(v[i], al.get(i).get("value").asDouble(), 1e-9);
        }
    }

    @Test
    void badInputIsNamedWithTheValidOptions() {
        LabTest.Run r = lab("patch", "--model", model(), "--clean", "1,5,40", "--corrupt", "1,5", "--metric",
                "logit-diff:150,151", "--site", "z");
        assertEquals(Lab.USAGE, r.code());
        assertTrue(r.err().contains("--clean has 3 tokens and --corrupt 2"), r.err());
        r = lab(args("patch", "resid", "denoise"));
        assertEquals(Lab.USAGE, r.code());
        assertTrue(r.err().contains("resid_pre|resid_mid|resid_post|attn_out|mlp_out|z"), r.err());
        r = lab(args("patch", "z", "sideways"));
        assertTrue(r.code() == Lab.USAGE && r.err().contains("denoise or noise"), r.err());
        r = lab("patch", "--model", model(), "--clean", "1,5,4000", "--corrupt", "1,5,40", "--metric",
                "logit-diff:150,151", "--site", "z");
        assertTrue(r.code() == Lab.USAGE && r.err().contains("token id 4000 at position 2") && r.err().contains("[0, 205)"),
                r.err());
        r = lab("patch", "--model", model(), "--clean", "1,5,40", "--corrupt", "1,5,41", "--metric",
                "logit-diff:150,9999", "--site", "z");
        assertTrue(r.code() == Lab.USAGE && r.err().contains("--metric: token id 9999"), r.err());
        r = lab("patch", "--model", model(), "--clean", "1,5,40", "--corrupt", "1,5,41", "--metric", "prob:3",
                "--site", "z");
        assertTrue(r.code() == Lab.USAGE && r.err().contains("valid metrics are logit-diff:A,B"), r.err());
        r = lab(args("attribute", "z", "noise", "--method", "magic"));
        assertTrue(r.code() == Lab.USAGE && r.err().contains("atp, atp-star, eap-ig"), r.err());
    }

    private static List<String> names(JsonNode n) {
        List<String> out = new ArrayList<>();
        n.fieldNames().forEachRemaining(out::add);
        return out;
    }
}
