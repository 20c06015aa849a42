package dev.jlens.diff;

import dev.jlens.model.HookedTransformer;
import dev.jlens.sae.SparseCoder;
import dev.jlens.zoo.Zoo;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * thinker's SAE carried to thinker-ft: trained further on thinker-ft's activations it reconstructs them better than
 * as it is, and the stage-wise diff sees the same dictionary on both sides.
 */
class SaeTransferTest {
    @Test
    void theFinetunedSaeReconstructsTheFinetuneBetterThanTheTransferredOne() {
        try (HookedTransformer thinker = Zoo.load("thinker"); HookedTransformer ft = Zoo.load("thinker-ft");
             SparseCoder sae = BacktrackLatents.train(thinker, BacktrackLatents.Options.defaults().withSize(128, 8)
                     .withTraining(200, 300))) {
            SaeTransfer.Result r = SaeTransfer.run(thinker, ft, sae, SaeTransfer.Options.defaults().withTraining(150, 300)
                    .withTestExamples(96));
            System.out.println(r);
            System.out.println(r.toTable().printAll());
            SaeTransfer.Row ref = r.reference(), as = r.transferred(), tuned = r.finetunedRow();
            assertTrue(tuned.fvu() < as.fvu(), "trained further: " + tuned + " vs as is: " + as);
            assertTrue(tuned.ceDelta() < as.ceDelta(), "trained further: " + tuned + " vs as is: " + as);
            assertEquals(ref.ceClean(), 0, 10);
            assertTrue(as.ceClean() != ref.ceClean(), "two models, two clean losses");
            assertEquals(3, r.toTable().rowCount());
            assertEquals(128, r.stageDiff().decoderCosines().length);
            r.finetuned().close();
        }
    }
}
