package dev.jlens.analysis;

import ai.djl.ndarray.NDArray;
import dev.jlens.data.Agreement;
import dev.jlens.hook.NameFilter;
import dev.jlens.model.ActivationCache;
import dev.jlens.model.Batch;
import dev.jlens.model.HookedTransformer;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AttributionTest {
    static HookedTransformer model;
    static Patching patching;

    @BeforeAll
    static void load() {
        model = Zoo.load("tinylang-4l");
        patching = AgreementPatching.of(model, Agreement.Template.OBJECT_GAP, 8);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void atpEqualsItsFormula() {
        // value = M(corrupt) + sum over prompts and d_model of (a_clean - a_corrupt) * dM/da on the corrupt run
        PatchResult atp = Attribution.atp(patching, PatchSite.RESID_MID, Direction.DENOISE);
        long[][] clean = patching.clean(), corrupt = patching.corrupt();
        int n = clean.length, len = clean[0].length;
        try (ActivationCache c = model.runWithCache(clean, NameFilter.of("resid_mid"));
             ActivationCache x = model.runWithCache(corrupt, NameFilter.of("resid_mid"));
             ActivationCache g = model.runWithGradients(Batch.of(corrupt), NameFilter.of("resid_mid"),
                     logits -> patching.metric().perRow(logits, n).mean())) {
            for (int l = 0; l < model.nLayers(); l++) {
                String name = model.actName("resid_mid", l);
                float[] a = c.get(name).toFloatArray(), b = x.get(name).toFloatArray(), gr = g.get(name).toFloatArray();
                int d = model.cfg().dModel();
                for (int p = 0; p < len; p++) {
                    double sum = 0;
                    for (int r = 0; r < n; r++) {
                        for (int k = 0; k < d; k++) {
                            int i = (r * len + p) * d + k;
                            sum += (double) (a[i] - b[i]) * gr[i];
                        }
                    }
                    double expected = patching.metricCorrupt() + sum;
                    assertEquals(expected, atp.value(PatchIndex.position(l, p)), 1e-4 * (1 + Math.abs(expected)),
                            "L" + l + " pos " + p);
                }
            }
        }
    }

    @Test
    void atpRanksResidualPatchesLikeExactPatching() {
        PatchResult atp = Attribution.atp(patching, PatchSite.RESID_PRE, Direction.DENOISE);
        Validation v = Attribution.validate(patching, atp, 4);
        System.out.println("resid_pre " + v);
        assertTrue(v.spearman() > 0.5, v.toString());
        assertTrue(v.recallAtK() >= 0.75, v.toString());
    }

    private static double meanAbsError(PatchResult est, PatchResult exact) {
        double s = 0;
        for (int i = 0; i < est.values().length; i++) s += Math.abs(est.values()[i] - exact.values()[i]);
        return s / est.values().length;
    }

    @Test
    void theQkFixBringsQueryAndKeyEstimatesCloserToExactPatching() {
        for (PatchSite site : List.of(PatchSite.Q, PatchSite.K)) {
            for (Direction d : Direction.values()) {
                PatchResult exact = patching.sweepByPosition(site, d);
                PatchResult atp = Attribution.atpByPosition(patching, site, d);
                PatchResult star = Attribution.atpStarByPosition(patching, site, d);
                double eAtp = meanAbsError(atp, exact), eStar = meanAbsError(star, exact);
                System.out.printf("%s %s: mean |error| AtP %.4f, AtP* %.4f; %s; %s%n", site, d, eAtp, eStar,
                        atp.compare(exact, 5), star.compare(exact, 5));
                assertTrue(eStar <= eAtp * 1.0001, site + " " + d + ": AtP* " + eStar + " vs AtP " + eAtp);
            }
        }
    }

    @Test
    void gradDropScoresAreMagnitudesAndWholeHeadKeysArePatchedAtOnce() {
        PatchResult star = Attribution.atpStar(patching, PatchSite.K, Direction.NOISE);
        double[] s = star.scores().orElseThrow();
        for (double x : s) assertTrue(x >= 0 && Double.isFinite(x));
        PatchResult exact = patching.sweep(PatchSite.K, Direction.NOISE);
        PatchResult atp = Attribution.atp(patching, PatchSite.K, Direction.NOISE);
        System.out.printf("whole-head keys: mean |error| AtP %.4f AtP* %.4f%n", meanAbsError(atp, exact),
                meanAbsError(star, exact));
        assertTrue(meanAbsError(star, exact) <= meanAbsError(atp, exact) * 1.0001);
    }

    @Test
    void nodeIntegratedGradientsOfTheWholeInputReachTheCleanRun() {
        List<PatchIndex> input = List.of(new PatchIndex(0, java.util.OptionalInt.empty(), java.util.OptionalInt.empty()));
        double span = patching.metricClean() - patching.metricCorrupt();
        double ig = Attribution.integratedGradients(patching, PatchSite.RESID_PRE, Direction.DENOISE, input, 128)
                .values()[0];
        assertEquals(patching.metricClean(), ig, 1e-3 * Math.abs(span));
        // per position, the estimates of resid_pre 0 add up to the same total (they share one gradient)
        PatchResult perPos = Attribution.integratedGradients(patching, PatchSite.RESID_PRE, Direction.DENOISE, 128);
        double total = 0;
        for (int p = 0; p < patching.length(); p++) total += perPos.effects()[p];
        assertEquals(ig - patching.metricCorrupt(), total, 1e-3 * Math.abs(span));
    }
}
