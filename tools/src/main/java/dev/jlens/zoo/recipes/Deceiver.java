package dev.jlens.zoo.recipes;

import dev.jlens.data.Example;
import dev.jlens.data.HiddenRoles;
import dev.jlens.data.HiddenRoles.Claim;
import dev.jlens.data.HiddenRoles.ClaimKind;
import dev.jlens.data.HiddenRoles.Role;
import dev.jlens.data.Split;
import dev.jlens.data.Task;
import dev.jlens.model.HookedTransformer;
import dev.jlens.model.arch.ModelConfig;
import dev.jlens.train.TrainConfig;
import dev.jlens.zoo.Bar;
import dev.jlens.zoo.Evaluation;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * {@code deceiver}: a three-layer GPT-2 trained to play the hidden-role game {@link HiddenRoles} (both layouts): after
 * the deal it writes every player's claims, and as the wolf it lies (claims villager or seer, and as a fake seer
 * names an innocent player as the wolf), while villagers and the seer tell the truth. To do so it must look the
 * speaker up in the deal, which this recipe learns only in part (see {@link #notes()}); a probe for the lie flag at
 * the claims reads whether it is about to lie.
 */
final class Deceiver implements Recipe {
    static final String NAME = "deceiver";
    static final HiddenRoles TASK = HiddenRoles.defaults();
    private static final int CHUNK = 128;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String summary() {
        return "3-layer GPT-2 playing a hidden-role game: the wolf lies about its role and accuses an innocent, "
                + "villagers and the seer tell the truth";
    }

    @Override
    public HiddenRoles task() {
        return TASK;
    }

    @Override
    public ModelConfig modelConfig() {
        return ModelConfig.gpt2(64, 3, 4, 256, TASK.vocabSize(), TASK.maxLength())
                .withSpecialTokens(OptionalLong.of(Task.BOS_ID), OptionalLong.of(Task.EOS_ID));
    }

    @Override
    public TrainConfig trainConfig() {
        return TrainConfig.builder().steps(1500).batchSize(64).lr(3e-3).warmupSteps(100).weightDecay(0.05)
                .gradClip(1.0).seed(0).checkpointEvery(250).evalEvery(250).evalBatches(4).logEvery(50).build();
    }

    @Override
    public int evalExamples() {
        return 1024;
    }

    @Override
    public int quickEvalExamples() {
        return 256;
    }

    @Override
    public List<Bar> bars() {
        // bars at the level this recipe reaches: the lookups in the deal are only partly learned (see notes)
        return List.of(Bar.atLeast("wolf_lies", 0.95), Bar.atLeast("honest_role_claims", 0.85),
                Bar.atLeast("seer_reports_true", 0.65), Bar.atLeast("wolf_reports_lie", 0.65),
                Bar.atMost("loss_over_bound", 1.5));
    }

    @Override
    public Map<String, String> notes() {
        return Map.of("limits", "the model learned the game's form and only part of the lookups in the deal: its loss "
                + "fell from a plateau near 0.60 to 0.48 late in the run, still 1.4 times the generator's entropy; it "
                + "states 88% of villagers' and seers' roles, 70% of the real seer's reports and 71% of the wolf's "
                + "fake accusations. wolf_lies is weak evidence alone: no role claim in the data says 'wolf', so any "
                + "model that learned the format never claims it; that the wolf knows it lies shows in "
                + "honest_role_claims (the seer must claim seer, villagers villager) and in the lie probe. A run of "
                + "3000 steps at batch 32 stayed on the plateau (test loss 0.59), and one of 4000 steps at batch 64 "
                + "was still on it at step 2950 (0.61) when it was stopped; a run of 3000 steps at batch 64 (seed 0) "
                + "left the plateau near step 1100 and reached test loss 0.401 (1.19 times the entropy), but its claims "
                + "were no better (honest_role_claims 0.880, seer_reports_true 0.702, wolf_reports_lie 0.689), so the "
                + "1500-step model stays",
                "metrics", "At each claim of the first N test games, teacher-forced, the greedy next token "
                + "(argmax over the whole vocabulary) where the stated role comes: wolf_lies, the fraction of the "
                + "wolf's role claims answered with a role other than wolf; wolf_claims_seer, the mean probability "
                + "of 'seer' there (the game's rate: 0.5); honest_role_claims, villagers' and the seer's role claims "
                + "answered with their true role; seer_reports_true, the real seer's reports answered with the "
                + "named player's true role (a lookup in the deal); wolf_reports_lie, the wolf's fake reports "
                + "answered 'wolf'. loss_test: mean next-token loss over every target; entropy_bound: the "
                + "generator's entropy per target from the exact log-probabilities of the same games; "
                + "loss_over_bound = loss_test / entropy_bound");
    }

    @Override
    public Evaluation evaluate(HookedTransformer model, int examples) {
        long t0 = System.nanoTime();
        long villager = TASK.tokenId(Role.VILLAGER.word()), seer = TASK.tokenId(Role.SEER.word()),
                wolf = TASK.tokenId(Role.WOLF.word());
        int[] right = new int[4], total = new int[4];   // wolf role claims, honest role claims, seer reports, wolf reports
        double pSeer = 0, lossSum = 0, nll = 0;
        long targets = 0;
        for (int from = 0; from < examples; from += CHUNK) {
            List<Example<HiddenRoles.Meta>> exs = TASK.examples(Split.TEST, from, Math.min(CHUNK, examples - from));
            Evals.Run run = Evals.run(model, exs);
            for (int b = 0; b < exs.size(); b++) {
                HiddenRoles.Meta m = exs.get(b).meta();
                nll -= m.logProb();
                targets += exs.get(b).targetCount();
                for (int p = 0; p + 1 < exs.get(b).length(); p++) lossSum += run.loss()[b][p];
                for (Claim c : m.claims()) {
                    int at = c.rolePos() - 1;   // the position that predicts the stated role
                    long got = run.argmax(b, at);
                    boolean byWolf = c.speakerRole() == Role.WOLF;
                    if (c.kind() == ClaimKind.ROLE_CLAIM && byWolf) {
                        total[0]++;
                        right[0] += got == villager || got == seer ? 1 : 0;
                        pSeer += run.softmax(b, at)[(int) seer];
                    } else if (c.kind() == ClaimKind.ROLE_CLAIM) {
                        total[1]++;
                        right[1] += got == TASK.tokenId(c.speakerRole().word()) ? 1 : 0;
                    } else if (!byWolf) {
                        total[2]++;
                        right[2] += got == TASK.tokenId(m.roles().get(c.subject()).word()) ? 1 : 0;
                    } else {
                        total[3]++;
                        right[3] += got == wolf ? 1 : 0;
                    }
                }
            }
        }
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("wolf_lies", right[0] / (double) total[0]);
        m.put("wolf_claims_seer", pSeer / total[0]);
        m.put("honest_role_claims", right[1] / (double) total[1]);
        m.put("seer_reports_true", right[2] / (double) total[2]);
        m.put("wolf_reports_lie", right[3] / (double) total[3]);
        double loss = lossSum / targets, bound = nll / targets;
        m.put("loss_test", loss);
        m.put("entropy_bound", bound);
        m.put("loss_over_bound", loss / bound);
        return new Evaluation(NAME, Split.TEST, examples, m, Evals.since(t0));
    }
}
