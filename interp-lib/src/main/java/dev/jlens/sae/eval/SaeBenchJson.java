package dev.jlens.sae.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.sae.SaeLens;
import dev.jlens.sae.SparseCoder;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * Evaluation results in SAEBench's output layout, so they sit beside published numbers: the fields of SAEBench's
 * {@code BaseEvalOutput} ({@code sae_bench/evals/base_eval_output.py}) in its order, with the metric categories and
 * per-item details of {@code absorption/eval_output.py} ({@code absorption_first_letter}: {@code mean} with
 * {@code mean_absorption_fraction_score}, {@code mean_full_absorption_score}, {@code mean_num_split_features} and their
 * standard deviations; one detail per parent with {@code first_letter}, {@code mean_absorption_fraction},
 * {@code full_absorption_rate}, {@code num_full_absorption}, {@code num_probe_true_positives},
 * {@code num_split_features}) and {@code sparse_probing/eval_output.py} ({@code llm} and {@code sae} categories with
 * {@code llm_test_accuracy}, {@code llm_top_K_test_accuracy}, {@code sae_test_accuracy},
 * {@code sae_top_K_test_accuracy}; one detail per task with {@code dataset_name}). Field names checked against
 * SAEBench 0.6.0.
 *
 * <p>{@code eval_config} holds SAEBench's config fields that apply here ({@code model_name}, {@code random_seed},
 * {@code f1_jump_threshold}, {@code max_k_value}; {@code dataset_names}, {@code k_values}, set sizes) and JLens's
 * own settings under their own names; with {@code min_GT_probe_f1}, parents whose probe falls short get no detail
 * (as in SAEBench) and are listed in {@code eval_result_unstructured}; {@code sae_cfg_dict} is the dictionary's
 * SAELens {@code cfg.json}; {@code sae_bench_commit_hash} says that JLens computed the numbers, not SAEBench's
 * code. A parent that is not a letter (a word class) is written under {@code first_letter} all the same.
 */
public final class SaeBenchJson {
    /** SAEBench's eval type of feature absorption. */
    public static final String ABSORPTION = "absorption_first_letter";
    /** SAEBench's eval type of k-sparse probing. */
    public static final String SPARSE_PROBING = "sparse_probing";
    /** The top-level fields SAEBench writes, in its order. */
    public static final List<String> FIELDS = List.of("eval_type_id", "eval_config", "eval_id", "datetime_epoch_millis",
            "eval_result_metrics", "eval_result_details", "sae_bench_commit_hash", "sae_lens_id", "sae_lens_release_id",
            "sae_lens_version", "sae_cfg_dict", "eval_result_unstructured");
    /** What {@code sae_bench_commit_hash} holds: these numbers come from JLens, not from a SAEBench checkout. */
    public static final String NOT_SAEBENCH = "none: computed by JLens dev.jlens.sae.eval";

    private static final JsonMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    private SaeBenchJson() {}

    /**
     * What the results do not say themselves.
     *
     * @param modelName        the model the activations came from ({@code model_name})
     * @param randomSeed       the seed of the dictionary or of the evaluation ({@code random_seed})
     * @param hookName         where the activations were read
     * @param contextLength    tokens per sequence
     * @param saeLensId        SAELens's id of the dictionary, if it has one
     * @param saeLensReleaseId SAELens's release of the dictionary, if it has one
     * @param saeLensVersion   SAELens's version that made the dictionary, if one did
     */
    public record Meta(String modelName, long randomSeed, Optional<String> hookName, Optional<Integer> contextLength,
                       Optional<String> saeLensId, Optional<String> saeLensReleaseId, Optional<String> saeLensVersion) {
        /** Checks the name. */
        public Meta {
            if (modelName == null || modelName.isBlank()) throw new IllegalArgumentException("modelName is required");
        }

        /** A model and seed, nothing else known. */
        public static Meta of(String modelName, long randomSeed) {
            return new Meta(modelName, randomSeed, Optional.empty(), Optional.empty(), Optional.empty(),
                    Optional.empty(), Optional.empty());
        }

        /** The same with the hook point and sequence length. */
        public Meta withSite(String hook, int contextLength) {
            return new Meta(modelName, randomSeed, Optional.of(hook), Optional.of(contextLength), saeLensId,
                    saeLensReleaseId, saeLensVersion);
        }
    }

    /** {@code r} as SAEBench's {@code absorption_first_letter} output. */
    public static ObjectNode absorption(Absorption.Result r, SparseCoder sae, Meta meta) {
        Absorption.Options o = r.options();
        ObjectNode cfg = F.objectNode();
        cfg.put("model_name", meta.modelName());
        cfg.put("random_seed", meta.randomSeed());
        cfg.put("f1_jump_threshold", o.f1JumpThreshold());
        cfg.put("max_k_value", o.maxK());
        site(cfg, meta);
        cfg.put("absorption_fraction_probe_cos_sim_threshold", o.absorberCosine());
        cfg.put("full_absorption_probe_cos_sim_threshold", o.fullAbsorptionCosine());
        cfg.put("probe_projection_proportion_threshold", o.projectionShare());
        cfg.put("absorption_fraction_max_absorbing_latents", o.maxAbsorbingLatents());
        cfg.put("probe_method", o.probe().name());

        ObjectNode metrics = F.objectNode();
        ObjectNode mean = metrics.putObject("mean");
        r.metrics().forEach((k, v) -> number(mean, k, v));
        cfg.put("min_GT_probe_f1", o.minProbeF1());

        ArrayNode details = F.arrayNode();
        ObjectNode unstructured = F.objectNode();
        ObjectNode perParent = unstructured.putObject("parents");
        for (Absorption.Parent p : r.parents()) {
            ObjectNode u = perParent.putObject(p.parent());
            u.put("probe_test_accuracy", p.probeAccuracy());
            u.put("probe_test_f1", p.probeF1());
            u.put("evaluated", p.evaluated());
            if (!p.evaluated()) continue;   // as SAEBench: a parent without a good probe has no detail
            ObjectNode d = details.addObject();
            d.put("first_letter", p.parent());
            d.put("mean_absorption_fraction", p.absorptionFraction());
            d.put("full_absorption_rate", p.fullAbsorptionRate());
            d.put("num_full_absorption", p.fullAbsorptions());
            d.put("num_probe_true_positives", p.probeTruePositives());
            d.put("num_split_features", p.numSplitLatents());
            ArrayNode main = u.putArray("split_feats");
            for (int m : p.splitLatents()) main.add(m);
            ArrayNode f1 = u.putArray("k_sparse_probe_f1");
            for (double v : p.splitF1()) f1.add(v);
            if (p.topAbsorber().isPresent()) u.put("top_absorbing_latent", p.topAbsorber().getAsInt());
            else u.putNull("top_absorbing_latent");
            ObjectNode types = u.putObject("fully_absorbed_token_types");
            p.absorbedTypes().forEach((k, v) -> types.put(Integer.toString(k), v));
        }
        return output(ABSORPTION, cfg, metrics, details, sae, meta, unstructured);
    }

    /** {@code r} as SAEBench's {@code sparse_probing} output. */
    public static ObjectNode sparseProbing(SparseProbing.Result r, SparseCoder sae, Meta meta) {
        SparseProbing.Options o = r.options();
        ObjectNode cfg = F.objectNode();
        cfg.put("random_seed", meta.randomSeed());
        ArrayNode names = cfg.putArray("dataset_names");
        r.rows().forEach(row -> names.add(row.task()));
        cfg.put("probe_train_set_size", (int) Math.round(r.rows().stream().mapToInt(SparseProbing.Row::nTrain).average().orElse(0)));
        cfg.put("probe_test_set_size", (int) Math.round(r.rows().stream().mapToInt(SparseProbing.Row::nTest).average().orElse(0)));
        meta.contextLength().ifPresent(c -> cfg.put("context_length", c));
        cfg.put("model_name", meta.modelName());
        ArrayNode ks = cfg.putArray("k_values");
        o.ks().forEach(ks::add);
        meta.hookName().ifPresent(h -> cfg.put("hook_name", h));
        cfg.put("probe_method", o.method().name());
        cfg.put("latent_selection", "top-k by |mean(class 1) - mean(class 0)| on the training rows");

        ObjectNode metrics = F.objectNode();
        ObjectNode llm = metrics.putObject("llm"), saeM = metrics.putObject("sae");
        for (Map.Entry<String, Double> e : r.metrics().entrySet()) {
            (e.getKey().startsWith("llm_") ? llm : saeM).put(e.getKey(), e.getValue());
        }

        ArrayNode details = F.arrayNode();
        ObjectNode unstructured = F.objectNode();
        ObjectNode perTask = unstructured.putObject("tasks");
        for (SparseProbing.Row row : r.rows()) {
            ObjectNode d = details.addObject();
            d.put("dataset_name", row.task());
            d.put("llm_test_accuracy", row.llm());
            for (int k : o.ks()) if (row.llmTopK().containsKey(k)) d.put("llm_top_" + k + "_test_accuracy", row.llmTopK().get(k));
            if (row.sae().isPresent()) d.put("sae_test_accuracy", row.sae().getAsDouble());
            for (int k : o.ks()) d.put("sae_top_" + k + "_test_accuracy", row.saeTopK().get(k));
            ObjectNode u = perTask.putObject(row.task());
            u.put("n_train", row.nTrain());
            u.put("n_test", row.nTest());
            ObjectNode chosen = u.putObject("top_k_latents");
            row.latents().entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
                ArrayNode a = chosen.putArray(Integer.toString(e.getKey()));
                for (int i : e.getValue()) a.add(i);
            });
        }
        return output(SPARSE_PROBING, cfg, metrics, details, sae, meta, unstructured);
    }

    /** Writes {@code output} (2-space indented, as SAEBench's {@code to_json_file}) to {@code file}. */
    public static void write(JsonNode output, Path file) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            Files.writeString(file, JSON.writeValueAsString(output) + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    private static void site(ObjectNode cfg, Meta meta) {
        meta.hookName().ifPresent(h -> cfg.put("hook_name", h));
        meta.contextLength().ifPresent(c -> cfg.put("context_length", c));
    }

    private static ObjectNode output(String type, ObjectNode cfg, ObjectNode metrics, ArrayNode details, SparseCoder sae,
                                     Meta meta, ObjectNode unstructured) {
        ObjectNode o = F.objectNode();
        o.put("eval_type_id", type);
        o.set("eval_config", cfg);
        o.put("eval_id", UUID.randomUUID().toString());
        o.put("datetime_epoch_millis", System.currentTimeMillis());
        o.set("eval_result_metrics", metrics);
        o.set("eval_result_details", details);
        o.put("sae_bench_commit_hash", NOT_SAEBENCH);
        optional(o, "sae_lens_id", meta.saeLensId());
        optional(o, "sae_lens_release_id", meta.saeLensReleaseId());
        optional(o, "sae_lens_version", meta.saeLensVersion());
        o.set("sae_cfg_dict", SaeLens.configJson(sae));
        o.set("eval_result_unstructured", unstructured);
        return o;
    }

    /** A number, or null for NaN (JSON has no NaN; SAEBench's mean of no parents). */
    private static void number(ObjectNode o, String name, double v) {
        if (Double.isFinite(v)) o.put(name, v);
        else o.putNull(name);
    }

        private static void optional(ObjectNode o, String name, Optional<String> v) {
        if (v.isPresent()) o.put(name, v.get());
        else o.putNull(name);
    }
}
