package dev.jlens.sae;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** A {@link SaeConfig} in the SAE trainer's state file (JLens's own keys; SAELens's cfg.json is written elsewhere). */
final class SaeConfigJson {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SaeConfigJson() {}

    static ObjectNode write(SaeConfig c) {
        ObjectNode o = JSON.createObjectNode();
        o.put("architecture", c.kind().architecture());
        o.put("d_in", c.dIn());
        o.put("d_sae", c.dSae());
        o.put("n_sources", c.nSources());
        if (c.hookPoint().isPresent()) o.put("hook_name", c.hookName()); else o.putNull("hook_name");
        if (c.modelName().isPresent()) o.put("model_name", c.modelName().get()); else o.putNull("model_name");
        o.put("input_scale", c.inputScale());
        o.put("apply_b_dec_to_input", c.applyBDecToInput());
        SaeConfig.Kind k = c.kind();
        if (k instanceof SaeConfig.Relu r) {
            o.put("l1_coefficient", r.l1Coefficient());
        } else if (k instanceof SaeConfig.TopK t) {
            o.put("k", t.k());
            o.put("aux_k", t.auxK());
            o.put("aux_k_coefficient", t.auxKCoefficient());
        } else if (k instanceof SaeConfig.BatchTopK t) {
            o.put("k", t.k());
            o.put("aux_k", t.auxK());
            o.put("aux_k_coefficient", t.auxKCoefficient());
            o.put("threshold_momentum", t.thresholdMomentum());
        } else if (k instanceof SaeConfig.JumpRelu j) {
            o.put("l0_coefficient", j.l0Coefficient());
            o.put("bandwidth", j.bandwidth());
            o.put("init_threshold", j.initThreshold());
        } else if (k instanceof SaeConfig.Matryoshka m) {
            o.put("k", m.k());
            ArrayNode g = o.putArray("group_sizes");
            m.groupSizes().forEach(g::add);
            o.put("aux_k", m.auxK());
            o.put("aux_k_coefficient", m.auxKCoefficient());
            o.put("threshold_momentum", m.thresholdMomentum());
        }
        return o;
    }

    static SaeConfig read(JsonNode o) {
        String arch = o.path("architecture").asText();
        SaeConfig.Kind kind = switch (arch) {
            case "standard" -> new SaeConfig.Relu(o.path("l1_coefficient").asDouble());
            case "topk" -> new SaeConfig.TopK(o.path("k").asInt(), o.path("aux_k").asInt(), o.path("aux_k_coefficient").asDouble());
            case "batchtopk" -> new SaeConfig.BatchTopK(o.path("k").asInt(), o.path("aux_k").asInt(),
                    o.path("aux_k_coefficient").asDouble(), o.path("threshold_momentum").asDouble());
            case "jumprelu" -> new SaeConfig.JumpRelu(o.path("l0_coefficient").asDouble(), o.path("bandwidth").asDouble(),
                    o.path("init_threshold").asDouble());
            case "matryoshka_batchtopk" -> {
                List<Integer> groups = new ArrayList<>();
                o.path("group_sizes").forEach(g -> groups.add(g.asInt()));
                yield new SaeConfig.Matryoshka(o.path("k").asInt(), groups, o.path("aux_k").asInt(),
                        o.path("aux_k_coefficient").asDouble(), o.path("threshold_momentum").asDouble());
            }
            default -> throw new IllegalArgumentException("unknown architecture '" + arch
                    + "'; valid: standard, topk, batchtopk, jumprelu, matryoshka_batchtopk");
        };
        return new SaeConfig(o.path("d_in").asInt(), o.path("d_sae").asInt(), kind, o.path("n_sources").asInt(1),
                o.hasNonNull("hook_name") && !o.get("hook_name").asText().isEmpty()
                        ? Optional.of(o.get("hook_name").asText()) : Optional.empty(),
                o.hasNonNull("model_name") ? Optional.of(o.get("model_name").asText()) : Optional.empty(),
                o.path("input_scale").asDouble(1.0), o.path("apply_b_dec_to_input").asBoolean(true));
    }
}
