package dev.jlens.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses and validates one safetensors file's header, as the reference implementation does: an 8-byte little-endian
 * length, then a JSON object {@code name -> {dtype, shape, data_offsets}} plus an optional {@code __metadata__}
 * string map. Every tensor's byte range must match its shape and dtype and lie inside the file, and the ranges must
 * tile the data region exactly (no overlaps, no gaps, no trailing bytes). Problems are {@link CheckpointException}s
 * naming the file.
 */
final class SafetensorsHeader {

    /** The reference implementation's limit on the JSON header (and here on an index file). */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    static final String METADATA_KEY = "__metadata__";

    static final JsonMapper JSON = JsonMapper.builder()
            .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .build();

    /** An open file: the channel tensor bytes are read through, and its size when opened. */
    record Shard(Path file, FileChannel channel, long size) {}

    /** A tensor and its absolute byte range [start, end) in its shard. */
    record Entry(TensorInfo info, Shard shard, long start, long end) {}

    /** A parsed file: its open shard, its tensors in header order, and its metadata. */
    record Parsed(Shard shard, Map<String, Entry> entries, Map<String, String> metadata) {}

    private SafetensorsHeader() {}

    /** Opens {@code file} and validates its header; the returned shard's channel stays open for reading tensors. */
    static Parsed parse(Path file) {
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file, "no such file", e);
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot open: " + e, e);
        }
        try {
            long size = channel.size();
            if (size < Long.BYTES) {
                throw new CheckpointException(file, "truncated: " + size
                        + " bytes, too short for the 8-byte header length that starts a safetensors file");
            }
            ByteBuffer lengthBytes = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lengthBytes, 0, file);
            long headerLength = lengthBytes.getLong(0);
            if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
                throw new CheckpointException(file, "header length " + Long.toUnsignedString(headerLength)
                        + " is absurd (limit " + MAX_HEADER_BYTES + " bytes): not a safetensors file, or corrupt");
            }
            if (headerLength > size - Long.BYTES) {
                throw new CheckpointException(file, "truncated: header length says " + headerLength
                        + " bytes but only " + (size - Long.BYTES) + " bytes follow it");
            }
            ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
            readFully(channel, headerBytes, Long.BYTES, file);
            Shard shard = new Shard(file, channel, size);
            long dataStart = Long.BYTES + headerLength;
            return parseJson(shard, headerBytes.array(), dataStart);
        } catch (IOException e) {
            closeQuietly(channel);
            throw new CheckpointException(file, "cannot read: " + e, e);
        } catch (RuntimeException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    private static Parsed parseJson(Shard shard, byte[] headerBytes, long dataStart) {
        Path file = shard.file();
        long dataLength = shard.size() - dataStart;
        String text = decodeUtf8(headerBytes, file, "header");
        Map<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        Set<String> seen = new HashSet<>();
        try (JsonParser p = JSON.createParser(text)) {
            JsonToken first = p.nextToken();
            if (first == null) {
                throw new CheckpointException(file, "header is empty (" + headerBytes.length + " bytes of whitespace)");
            }
            if (first != JsonToken.START_OBJECT) {
                throw new CheckpointException(file, "header is not a JSON object (it starts with " + first + ")");
            }
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String key = p.currentName();
                if (p.nextToken() == JsonToken.START_OBJECT) {
                    // Top-level duplicates are reported below by name; inside an entry Jackson's own check applies
                    // (enabled once the parser is in the entry's context, so it covers only that entry).
                    p.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
                }
                JsonNode value = p.readValueAsTree();
                if (!seen.add(key)) {
                    throw new CheckpointException(file, METADATA_KEY.equals(key)
                            ? "header has two " + METADATA_KEY + " entries"
                            : "duplicate tensor name '" + key + "' in header");
                }
                if (METADATA_KEY.equals(key)) {
                    metadata.putAll(parseMetadata(file, value));
                } else {
                    TensorInfo info = parseInfo(file, key, value);
                    long[] offsets = parseOffsets(file, key, value, info, dataLength);
                    entries.put(key, new Entry(info, shard, dataStart + offsets[0], dataStart + offsets[1]));
                }
            }
            if (t != JsonToken.END_OBJECT) {
                throw new CheckpointException(file, "header is not valid JSON: unexpected " + t);
            }
            if (p.nextToken() != null) {
                throw new CheckpointException(file, "header has content after its JSON object");
            }
        } catch (JsonProcessingException e) {
            throw new CheckpointException(file, "header is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new CheckpointException(file, "header is not valid JSON: " + e, e);
        }
        checkTiling(file, entries, dataStart, dataLength);
        return new Parsed(shard, entries, metadata);
    }

    private static Map<String, String> parseMetadata(Path file, JsonNode value) {
        if (!value.isObject()) {
            throw new CheckpointException(file, METADATA_KEY + " must be an object of strings, found " + value.getNodeType());
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : value.properties()) {
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(file, METADATA_KEY + " must map strings to strings; '" + e.getKey()
                        + "' is " + e.getValue().getNodeType());
            }
            out.put(e.getKey(), e.getValue().asText());
        }
        return out;
    }

    private static TensorInfo parseInfo(Path file, String name, JsonNode value) {
        if (!value.isObject()) {
            throw new CheckpointException(file, "tensor '" + name
                    + "': expected an object with dtype, shape and data_offsets, found " + value.getNodeType());
        }
        JsonNode dtypeNode = required(file, name, value, "dtype");
        if (!dtypeNode.isTextual()) {
            throw new CheckpointException(file, "tensor '" + name + "': dtype must be a string, found " + dtypeNode);
        }
        DType dtype;
        try {
            dtype = DType.parse(dtypeNode.asText());
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file, "tensor '" + name + "': " + e.getMessage());
        }
        long[] shape = nonNegativeLongs(file, name, required(file, name, value, "shape"), "shape", false);
        try {
            return new TensorInfo(name, dtype, shape);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file, e.getMessage());
        }
    }

    private static long[] parseOffsets(Path file, String name, JsonNode value, TensorInfo info, long dataLength) {
        long[] offsets = nonNegativeLongs(file, name, required(file, name, value, "data_offsets"), "data_offsets", true);
        String range = Arrays.toString(offsets);
        if (offsets[0] > offsets[1]) {
            throw new CheckpointException(file, "tensor '" + name + "': data_offsets " + range + " are reversed");
        }
        if (offsets[1] > dataLength) {
            throw new CheckpointException(file, "tensor '" + name + "': data_offsets " + range
                    + " run past the end of the data region (" + dataLength + " bytes): truncated file or corrupt header");
        }
        long have = offsets[1] - offsets[0];
        if (have != info.byteSize()) {
            throw new CheckpointException(file, "tensor '" + name + "': data_offsets " + range + " hold " + have
                    + " bytes but shape " + Arrays.toString(info.shape()) + " of " + info.dtype() + " needs "
                    + info.byteSize());
        }
        return offsets;
    }

    /** The reference format has no holes: sorted by offset, tensors must tile the data region exactly. */
    private static void checkTiling(Path file, Map<String, Entry> entries, long dataStart, long dataLength) {
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::start).thenComparingLong(Entry::end));
        long covered = dataStart;
        Entry previous = null;
        for (Entry e : sorted) {
            if (e.start() < covered) {
                throw new CheckpointException(file, "tensors '" + previous.info().name() + "' and '" + e.info().name()
                        + "' overlap in the data region");
            }
            if (e.start() > covered) {
                throw new CheckpointException(file, "gap of " + (e.start() - covered) + " bytes before tensor '"
                        + e.info().name() + "' (safetensors requires the data region to be fully covered)");
            }
            covered = e.end();
            previous = e;
        }
        long used = covered - dataStart;
        if (used != dataLength) {
            throw new CheckpointException(file, (dataLength - used) + " bytes after the last tensor: the data region is "
                    + dataLength + " bytes but the tensors cover " + used + " (safetensors has no trailing data)");
        }
    }

    private static JsonNode required(Path file, String name, JsonNode value, String field) {
        JsonNode node = value.get(field);
        if (node == null || node.isNull()) {
            throw new CheckpointException(file, "tensor '" + name + "': missing \"" + field + "\"");
        }
        return node;
    }

    /** An array of non-negative integers; {@code pair}: exactly two of them ([begin, end]). */
    private static long[] nonNegativeLongs(Path file, String name, JsonNode node, String field, boolean pair) {
        String expect = pair ? "[begin, end] of non-negative integers" : "an array of non-negative integers";
        if (!node.isArray() || (pair && node.size() != 2)) {
            throw new CheckpointException(file, "tensor '" + name + "': " + field + " must be " + expect + ", found " + node);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
                throw new CheckpointException(file, "tensor '" + name + "': " + field + " must be " + expect
                        + ", found " + node);
            }
            out[i] = v.asLong();
        }
        return out;
    }

    /** Strict UTF-8: a header or index with malformed bytes is corrupt, not something to guess at. */
    static String decodeUtf8(byte[] bytes, Path file, String what) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new CheckpointException(file, what + " is not valid UTF-8 (" + e + ")", e);
        }
    }

    /** Reads {@code dst.remaining()} bytes at {@code position}; a short file is a CheckpointException. */
    static void readFully(FileChannel channel, ByteBuffer dst, long position, Path file) {
        try {
            while (dst.hasRemaining()) {
                int n = channel.read(dst, position);
                if (n < 0) {
                    throw new CheckpointException(file, "truncated: file ended at byte " + position
                            + " (it shrank after it was opened?)");
                }
                position += n;
            }
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read at byte " + position + ": " + e, e);
        }
    }

    static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException | RuntimeException ignored) {
            // close() never throws; a failed close of a read-only channel loses nothing.
        }
    }
}
