package dev.jlens.model.arch;

/**
 * One linear layer of a checkpoint and where its weight lives among the model's parameters, for adapters (LoRA)
 * that change it.
 *
 * @param module      the layer's checkpoint (and PEFT) name without {@code .weight}, e.g.
 *                    {@code transformer.h.0.attn.c_attn} or {@code model.layers.0.self_attn.q_proj}
 * @param parameter   the parameter holding its weight (a fused one may hold several layers)
 * @param rowOffset   the first row of this layer in that parameter (0 unless fused; rows are output features)
 * @param outFeatures output features
 * @param inFeatures  input features
 * @param conv1d      true if the parameter is GPT-2's Conv1D layout {@code [in, out]} (PEFT's
 *                    {@code fan_in_fan_out}), false for torch's {@code [out, in]}
 */
public record LinearModule(String module, String parameter, long rowOffset, long outFeatures, long inFeatures,
                           boolean conv1d) {
    public LinearModule {
        if (conv1d && rowOffset != 0) throw new IllegalArgumentException("a Conv1D weight is never fused: " + module);
    }
}
