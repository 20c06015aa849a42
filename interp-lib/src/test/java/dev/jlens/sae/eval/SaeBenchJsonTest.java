package dev.jlens.sae.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.sae.SparseCoder;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The JSON has the fields SAEBench 0.6.0 writes (sae_bench/evals/base_eval_output.py, absorption/eval_output.py,
 * sparse_probing/eval_output.py), in its order, with the numbers of the results.
 */
class SaeBenchJsonTest {
    // Written out from SAEBench's dataclasses rather than from SaeBenchJson's constants, so a rename on either side fails.
    static final List<String> BASE = List.of("eval_type_id", "eval_config", "eval_id", "datetime_epoch_millis",
            "eval_result_metrics", "eval_result_details", "sae_bench_commit_hash", "sae_lens_id", "sae_lens_release_id",
            "sae_lens_version", "sae_cfg_dict", "eval_result_unstructured");
    static final List<String> ABSORPTION_MEAN = List.of("mean_absorption_fraction_score", "mean_full_absorption_score",
            "mean_num_split_features", "std_dev_absorption_fraction_score", "std_dev_full_absorption_score",
            "std_dev_num_split_features");
    static final List<String> ABSORPTION_DETAIL = List.of("first_letter", "mean_absorption_fraction",
            "full_absorption_rate", "num_full_absorption", "num_probe_true_positives", "num_split_features");
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;
    static Planted planted;

    @BeforeAll
    static void plant() {
        planted = new Planted(11, 2000, 1000);
    }

    private static List<String> names(JsonNode n) {
        List<String> out = new ArrayList<>();
        n.fieldNames().forEachRemaining(out::add);
        return out;
    }

    private static void base(JsonNode j, String type) {
        assertEquals(BASE, names(j));
        assertEquals(type, j.get("eval_type_id").asText());
        UUID.fromString(j.get("eval_id").asText());
        long ms = j.get("datetime_epoch_millis").asLong();
        assertTrue(ms > 1_600_000_000_000L && ms <= 9_999_999_999_999L, "epoch millis as SAEBench validates: " + ms);
        assertTrue(j.get("sae_bench_commit_hash").isTextual());
        assertTrue(j.get("sae_lens_id").isNull() && j.get("sae_lens_release_id").isNull() && j.get("sae_lens_version").isNull());
        assertEquals(Planted.D, j.get("sae_cfg_dict").get("d_in").asInt());
        assertEquals(Planted.LATENTS, j.get("sae_cfg_dict").get("d_sae").asInt());
        assertEquals("standard", j.get("sae_cfg_dict").get("architecture").asText());
        assertEquals("planted", j.get("eval_config").get("model_name").asText());
        assertEquals(3, j.get("eval_config").get("random_seed").asInt());
        // SAEBench's metrics are flat: every category maps names to numbers
        j.get("eval_result_metrics").fields().forEachRemaining(c -> c.getValue().fields()
                .forEachRemaining(m -> assertTrue(m.getValue().isNumber(), c.getKey() + "." + m.getKey())));
    }

    @Test
    void absorptionHasSaeBenchsFieldsAndTheResultsNumbers() throws IOException {
        try (SparseCoder sae = planted.absorbing()) {
            Absorption.Result r = Absorption.run(sae, List.of(planted.parentTask()), Absorption.Options.defaults());
            Path file = dir.resolve("out/absorption.json");
            SaeBenchJson.write(SaeBenchJson.absorption(r, sae, SaeBenchJson.Meta.of("planted", 3)), file);
            JsonNode j = JSON.readTree(file.toFile());
            base(j, "absorption_first_letter");
            assertEquals(List.of("mean"), names(j.get("eval_result_metrics")));
            JsonNode mean = j.get("eval_result_metrics").get("mean");
            assertEquals(ABSORPTION_MEAN, names(mean));
            assertEquals(r.meanAbsorptionFraction(), mean.get("mean_absorption_fraction_score").asDouble(), 0);
            assertEquals(r.meanFullAbsorption(), mean.get("mean_full_absorption_score").asDouble(), 0);
            assertEquals(1.0, mean.get("mean_num_split_features").asDouble(), 0);
            JsonNode d = j.get("eval_result_details").get(0);
            assertEquals(ABSORPTION_DETAIL, names(d));
            assertEquals("parent", d.get("first_letter").asText());
            assertEquals(r.parents().get(0).probeTruePositives(), d.get("num_probe_true_positives").asInt());
            assertTrue(d.get("num_full_absorption").isInt() && d.get("num_split_features").isInt());
            for (String f : List.of("f1_jump_threshold", "max_k_value")) assertTrue(j.get("eval_config").has(f), f);
            assertEquals(0, j.get("eval_result_unstructured").get("parents").get("parent").get("split_feats").get(0).asInt());
        }
    }

    @Test
    void sparseProbingHasSaeBenchsFieldsAndTheResultsNumbers() throws IOException {
        try (SparseCoder sae = planted.clean()) {
            SparseProbing.Result r = SparseProbing.run(sae, List.of(planted.parentTask(), planted.childTask(4)),
                    SparseProbing.Options.defaults());
            Path file = dir.resolve("sparse_probing.json");
            SaeBenchJson.write(SaeBenchJson.sparseProbing(r, sae, SaeBenchJson.Meta.of("planted", 3)), file);
            JsonNode j = JSON.readTree(file.toFile());
            base(j, "sparse_probing");
            JsonNode m = j.get("eval_result_metrics");
            assertEquals(List.of("llm", "sae"), names(m));
            assertEquals(List.of("llm_test_accuracy", "llm_top_1_test_accuracy", "llm_top_2_test_accuracy",
                    "llm_top_5_test_accuracy"), names(m.get("llm")));
            assertEquals(List.of("sae_test_accuracy", "sae_top_1_test_accuracy", "sae_top_2_test_accuracy",
                    "sae_top_5_test_accuracy"), names(m.get("sae")));
            assertEquals(r.meanLlm(), m.get("llm").get("llm_test_accuracy").asDouble(), 0);
            assertEquals(r.meanSaeTopK(1), m.get("sae").get("sae_top_1_test_accuracy").asDouble(), 0);
            assertEquals(2, j.get("eval_result_details").size());
            JsonNode d = j.get("eval_result_details").get(1);
            assertEquals("child4", d.get("dataset_name").asText());
            for (String f : List.of("llm_test_accuracy", "sae_top_1_test_accuracy", "sae_top_2_test_accuracy",
                    "sae_top_5_test_accuracy")) {
                assertTrue(d.get(f).isNumber(), f);
            }
            JsonNode cfg = j.get("eval_config");
            assertEquals(List.of(1, 2, 5), List.of(cfg.get("k_values").get(0).asInt(), cfg.get("k_values").get(1).asInt(),
                    cfg.get("k_values").get(2).asInt()));
            assertEquals("parent", cfg.get("dataset_names").get(0).asText());
            assertEquals(2000, cfg.get("probe_train_set_size").asInt());
        }
    }
}
