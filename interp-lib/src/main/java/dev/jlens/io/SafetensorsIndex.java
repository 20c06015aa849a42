package dev.jlens.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import dev.jlens.io.SafetensorsHeader.Entry;
import dev.jlens.io.SafetensorsHeader.Parsed;
import dev.jlens.io.SafetensorsHeader.Shard;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A sharded Hugging Face checkpoint: {@code model.safetensors.index.json}, whose {@code weight_map} names the shard
 * file of every tensor. Reads the index, and opens every shard it names checking that each listed tensor is there.
 */
final class SafetensorsIndex {

    static final String SINGLE_FILE = "model.safetensors";
    static final String INDEX_FILE = "model.safetensors.index.json";

    /** The open shards and the tensors of all of them, in weight_map order. */
    record Opened(List<Shard> shards, Map<String, Entry> entries, Map<String, String> metadata) {}

    private SafetensorsIndex() {}

    /** Opens every shard the index names; metadata is merged, the first shard's value winning. */
    static Opened open(Path index) {
        Map<String, List<String>> namesByShard = weightMap(index);
        Path dir = index.toAbsolutePath().getParent().normalize();
        List<Shard> opened = new ArrayList<>();
        try {
            Map<String, Entry> entries = new LinkedHashMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            for (Map.Entry<String, List<String>> group : namesByShard.entrySet()) {
                Path shardFile = dir.resolve(group.getKey()).normalize();
                if (!shardFile.startsWith(dir) || shardFile.equals(dir)) {
                    throw new CheckpointException(index, "weight_map names shard '" + group.getKey()
                            + "', which is not a file inside the checkpoint directory");
                }
                if (!Files.isRegularFile(shardFile)) {
                    throw new CheckpointException(shardFile, "shard listed in " + index.getFileName()
                            + " is missing (it holds " + group.getValue().size() + " tensors, e.g. '"
                            + group.getValue().get(0) + "')");
                }
                Parsed parsed = SafetensorsHeader.parse(shardFile);
                opened.add(parsed.shard());
                for (String name : group.getValue()) {
                    Entry e = parsed.entries().get(name);
                    if (e == null) {
                        throw new CheckpointException(index, "weight_map puts '" + name + "' in " + group.getKey()
                                + ", but that shard has no such tensor");
                    }
                    entries.put(name, e);
                }
                parsed.metadata().forEach(metadata::putIfAbsent);
            }
            return new Opened(opened, entries, metadata);
        } catch (RuntimeException e) {
            opened.forEach(s -> SafetensorsHeader.closeQuietly(s.channel()));
            throw e;
        }
    }

    /** The index's weight_map, tensor names grouped by shard file in order of first appearance. */
    static Map<String, List<String>> weightMap(Path index) {
        JsonNode root;
        try {
            long size = Files.size(index);
            if (size > SafetensorsHeader.MAX_HEADER_BYTES) {
                throw new CheckpointException(index, "index file is " + size + " bytes, over the "
                        + SafetensorsHeader.MAX_HEADER_BYTES + "-byte limit");
            }
            root = SafetensorsHeader.JSON.reader()
                    .with(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                    .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                    .readTree(SafetensorsHeader.decodeUtf8(Files.readAllBytes(index), index, "index file"));
        } catch (JsonProcessingException e) {
            throw new CheckpointException(index, "index file is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new CheckpointException(index, "cannot read index file: " + e, e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException(index, "index file is not a JSON object");
        }
        JsonNode weightMap = root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new CheckpointException(index, "index file has no \"weight_map\" object (tensor name -> shard file)");
        }
        Map<String, List<String>> byShard = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
            if (!e.getValue().isTextual() || e.getValue().asText().isEmpty()) {
                throw new CheckpointException(index, "weight_map entry '" + e.getKey()
                        + "' must name a shard file, found " + e.getValue());
            }
            byShard.computeIfAbsent(e.getValue().asText(), k -> new ArrayList<>()).add(e.getKey());
        }
        return byShard;
    }
}
