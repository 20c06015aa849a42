package dev.jlens.analysis;

import dev.jlens.data.Agreement;
import dev.jlens.model.HookedTransformer;

import java.util.List;

/** The tests' experiment: agreement pairs of one template, patched with the singular-minus-plural logit difference. */
final class AgreementPatching {
    private AgreementPatching() {}

    static Patching of(HookedTransformer model, Agreement.Template template, int pairs) {
        List<Agreement.Pair> p = new Agreement(template, 0).pairs(0, pairs);
        return Patching.of(model, Agreement.clean(p), Agreement.corrupt(p),
                Metric.logitDiff(Agreement.singularVerbs(p), Agreement.pluralVerbs(p)));
    }
}
