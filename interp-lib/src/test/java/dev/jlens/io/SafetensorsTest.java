package dev.jlens.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class SafetensorsTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static NDManager manager;

    @TempDir
    Path tmp;

    @BeforeAll
    static void startEngine() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void stopEngine() {
        manager.close();
    }

    static Path fixture(String relative) {
        String root = System.getProperty("jlens.fixtures");
        assertTrue(root != null, "system property jlens.fixtures is not set (the parent POM's surefire config sets it)");
        Path p = Path.of(root).resolve(relative);
        assertTrue(Files.exists(p), "missing fixture: " + p.toAbsolutePath());
        return p;
    }

    // ------------------------------------------------------------------------------------- real fixtures

    @ParameterizedTest
    @EnumSource(Safetensors.ReadMode.class)
    void readsStories260k(Safetensors.ReadMode mode) throws IOException {
        Path file = fixture("stories260K/model.safetensors");
        try (Safetensors st = Safetensors.open(file, mode)) {
            // README: d_model 64, 5 layers, 8 heads of 8, 4 KV heads, d_mlp 172, vocab 512, tied embeddings.
            assertEquals(1 + 5 * 9 + 1, st.names().size());
            assertEquals(Map.of("format", "pt"), st.metadata());
            assertEquals(new TensorInfo("model.embed_tokens.weight", DType.F32, new long[] {512, 64}),
                    st.info("model.embed_tokens.weight"));
            assertArrayEquals(new long[] {64, 64}, st.info("model.layers.0.self_attn.q_proj.weight").shape());
            assertArrayEquals(new long[] {32, 64}, st.info("model.layers.4.self_attn.k_proj.weight").shape());
            assertArrayEquals(new long[] {172, 64}, st.info("model.layers.2.mlp.gate_proj.weight").shape());
            assertArrayEquals(new long[] {64, 172}, st.info("model.layers.2.mlp.down_proj.weight").shape());
            assertArrayEquals(new long[] {64}, st.info("model.norm.weight").shape());
            assertFalse(st.contains("lm_head.weight"));
            assertTrue(st.names().stream().allMatch(n -> st.info(n).dtype() == DType.F32));
            assertSorted(new ArrayList<>(st.names()));
            checkAgainstRawBytes(st, file);
        }
    }

    @ParameterizedTest
    @EnumSource(Safetensors.ReadMode.class)
    void readsGpt2TinyRandom(Safetensors.ReadMode mode) throws IOException {
        Path file = fixture("gpt2-tiny-random/model.safetensors");
        // Opening the directory finds model.safetensors.
        try (Safetensors st = Safetensors.open(file.getParent(), mode)) {
            // README: d_model 64, 3 layers, d_mlp 256, vocab 96, context 64, Conv1D weights [in, out].
            assertEquals(2 + 3 * 12 + 2, st.names().size());
            assertArrayEquals(new long[] {96, 64}, st.info("transformer.wte.weight").shape());
            assertArrayEquals(new long[] {64, 64}, st.info("transformer.wpe.weight").shape());
            assertArrayEquals(new long[] {64, 192}, st.info("transformer.h.0.attn.c_attn.weight").shape());
            assertArrayEquals(new long[] {192}, st.info("transformer.h.2.attn.c_attn.bias").shape());
            assertArrayEquals(new long[] {64, 256}, st.info("transformer.h.1.mlp.c_fc.weight").shape());
            assertArrayEquals(new long[] {256, 64}, st.info("transformer.h.1.mlp.c_proj.weight").shape());
            assertArrayEquals(new long[] {64}, st.info("transformer.ln_f.bias").shape());
            checkAgainstRawBytes(st, file);
        }
    }

    /** Every tensor, via both load paths, equals the little-endian floats at its header offsets. */
    private static void checkAgainstRawBytes(Safetensors st, Path file) throws IOException {
        RawFile raw = RawFile.parse(Files.readAllBytes(file));
        assertEquals(raw.tensorNames(), new java.util.TreeSet<>(st.names()));
        for (String name : st.names()) {
            float[] expected = raw.decodeF32(name);
            assertArrayEquals(expected, st.loadFloats(name), name);
            try (NDArray a = st.load(name, manager)) {
                assertEquals(DataType.FLOAT32, a.getDataType());
                assertEquals(new Shape(st.info(name).shape()), a.getShape());
                assertArrayEquals(expected, a.toFloatArray(), name);
            }
        }
    }

    @Test
    void unknownNameSuggestsNearest() {
        try (Safetensors st = Safetensors.open(fixture("stories260K/model.safetensors"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> st.load("model.embed_token.weight", manager));
            assertTrue(e.getMessage().contains("'model.embed_token.weight'"), e.getMessage());
            assertTrue(e.getMessage().contains("nearest: [model.embed_tokens.weight"), e.getMessage());
            IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class,
                    () -> st.info("model.layers.9.mlp.up_proj.weight"));
            assertTrue(e2.getMessage().contains("model.layers.0.mlp.up_proj.weight"), e2.getMessage());
        }
    }

    @Test
    void closeIsIdempotentAndLoadAfterCloseFails() {
        Safetensors st = Safetensors.open(fixture("stories260K/model.safetensors"));
        st.loadFloats("model.norm.weight");
        st.close();
        st.close();
        assertThrows(IllegalStateException.class, () -> st.loadFloats("model.norm.weight"));
        assertThrows(IllegalStateException.class, () -> st.load("model.norm.weight", manager));
        assertEquals(1, st.info("model.norm.weight").rank()); // header facts stay available
    }

    // ------------------------------------------------------------------------------------- round trips

    @Test
    void f32RoundTripIsBitExact() {
        Random rnd = new Random(1);
        float[] special = {0f, -0f, 1f, -1f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, Float.MAX_VALUE,
            -Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.intBitsToFloat(0x7FC00001),
            Float.intBitsToFloat(0xFFA12345), 0.1f, 1e-40f};
        float[] random = new float[3 * 5 * 7];
        for (int i = 0; i < random.length; i++) {
            random[i] = Float.intBitsToFloat(rnd.nextInt()); // every bit pattern, NaNs included
        }
        Map<String, float[]> values = new LinkedHashMap<>();
        values.put("special", special);
        values.put("random", random);
        values.put("scalar", new float[] {42.5f});
        values.put("empty", new float[0]);
        Map<String, long[]> shapes = Map.of("special", new long[] {special.length}, "random", new long[] {3, 5, 7},
                "scalar", new long[0], "empty", new long[] {4, 0});
        Path file = tmp.resolve("f32.safetensors");
        Safetensors.writeFloats(file, values, shapes, Map.of("k", "v"), DType.F32);
        try (Safetensors st = Safetensors.open(file)) {
            assertEquals(Map.of("k", "v"), st.metadata());
            for (String name : values.keySet()) {
                assertEquals(DType.F32, st.info(name).dtype());
                assertArrayEquals(shapes.get(name), st.info(name).shape());
                assertBitsEqual(values.get(name), st.loadFloats(name), name);
                try (NDArray a = st.load(name, manager)) {
                    assertEquals(new Shape(shapes.get(name)), a.getShape());
                    assertBitsEqual(values.get(name), a.toFloatArray(), name);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void ndArrayRoundTripWithinDtypePrecision(DType dtype) {
        // F16 has 11 significant bits (relative error <= 2^-11 in its normal range), BF16 8 (<= 2^-8).
        double bound = switch (dtype) {
            case F32 -> 0;
            case F16 -> 0x1p-11;
            case BF16 -> 0x1p-8;
            default -> throw new IllegalStateException();
        };
        Random rnd = new Random(7);
        float[] x = new float[64 * 48];
        for (int i = 0; i < x.length; i++) {
            // log-uniform magnitudes across F16's normal range [2^-14, 65504], random sign
            double mag = Math.pow(2, -14 + rnd.nextDouble() * 29.9);
            x[i] = (float) (rnd.nextBoolean() ? mag : -mag);
        }
        Path file = tmp.resolve(dtype + ".safetensors");
        try (NDManager m = manager.newSubManager()) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            tensors.put("w", m.create(x, new Shape(64, 48)));
            tensors.put("half", m.create(new float[] {0.5f, -0.25f}));
            Safetensors.write(file, tensors, Map.of("dtype", dtype.name()), dtype);
        }
        try (Safetensors st = Safetensors.open(file); NDManager m = manager.newSubManager()) {
            assertEquals(dtype, st.info("w").dtype());
            assertEquals(Map.of("dtype", dtype.name()), st.metadata());
            float[] viaArray = st.load("w", m).toFloatArray();
            float[] viaFloats = st.loadFloats("w");
            assertBitsEqual(viaFloats, viaArray, "load vs loadFloats");
            double worst = 0;
            for (int i = 0; i < x.length; i++) {
                worst = Math.max(worst, Math.abs(viaFloats[i] - x[i]) / Math.abs(x[i]));
            }
            assertTrue(worst <= bound, dtype + ": max relative error " + worst + " > " + bound);
            if (dtype != DType.F32) {
                assertTrue(worst > bound / 4, dtype + ": suspiciously exact (" + worst + "), was it narrowed at all?");
            }
            assertArrayEquals(new float[] {0.5f, -0.25f}, st.loadFloats("half"));
        }
    }

    @Test
    void bf16KnownBitPatterns() throws IOException {
        // Expected values follow from the bf16 definition (top 16 bits of the f32, round to nearest even).
        float[] in = {1f, -2f, (float) Math.PI, 1f / 3, Float.intBitsToFloat(0x3F80_8000), Float.intBitsToFloat(0x3F81_8000),
            Float.intBitsToFloat(0x3F80_8001), Float.MAX_VALUE, -0f, Float.NEGATIVE_INFINITY, 1e-40f};
        int[] expected = {0x3F80, 0xC000, 0x4049, 0x3EAB, 0x3F80, 0x3F82, 0x3F81, 0x7F80, 0x8000, 0xFF80, 0x0001};
        assertEquals(expected.length, in.length);
        Path file = tmp.resolve("bf16.safetensors");
        Safetensors.writeFloats(file, Map.of("x", in), Map.of("x", new long[] {in.length}), Map.of(), DType.BF16);
        RawFile raw = RawFile.parse(Files.readAllBytes(file));
        assertEquals("BF16", raw.header.get("x").get("dtype").asText());
        ByteBuffer data = raw.data("x");
        for (int i = 0; i < in.length; i++) {
            assertEquals(expected[i], data.getShort(2 * i) & 0xFFFF, "bf16 of " + in[i]);
        }
        try (Safetensors st = Safetensors.open(file)) {
            float[] back = st.loadFloats("x");
            for (int i = 0; i < in.length; i++) {
                assertEquals(expected[i] << 16, Float.floatToRawIntBits(back[i]), "widened bf16 " + i);
            }
        }
        assertEquals(1f, HalfFloats.bf16ToF32((short) 0x3F80));
        assertTrue(Float.isNaN(HalfFloats.bf16ToF32(HalfFloats.f32ToBf16(Float.NaN))));
        assertTrue(Float.isNaN(HalfFloats.bf16ToF32(HalfFloats.f32ToBf16(Float.intBitsToFloat(0x7F80_0001)))));
    }

    @Test
    void f16KnownBitPatterns() throws IOException {
        float[] in = {1f, -2f, 65504f, 65519.99f, 65520f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-14f, 0.1f, -0f};
        int[] expected = {0x3C00, 0xC000, 0x7BFF, 0x7BFF, 0x7C00, 0x0001, 0x0000, 0x0001, 0x0400, 0x2E66, 0x8000};
        Path file = tmp.resolve("f16.safetensors");
        Safetensors.writeFloats(file, Map.of("x", in), Map.of("x", new long[] {in.length}), Map.of(), DType.F16);
        ByteBuffer data = RawFile.parse(Files.readAllBytes(file)).data("x");
        for (int i = 0; i < in.length; i++) {
            assertEquals(expected[i], data.getShort(2 * i) & 0xFFFF, "f16 of " + in[i]);
        }
    }

    @ParameterizedTest
    @EnumSource(Safetensors.ReadMode.class)
    void chunkedReadsMatchWholeReads(Safetensors.ReadMode mode) {
        Random rnd = new Random(3);
        float[] x = new float[1000];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        for (DType dtype : List.of(DType.F32, DType.F16, DType.BF16)) {
            Path file = tmp.resolve("chunk-" + dtype + ".safetensors");
            Safetensors.writeFloats(file, Map.of("x", x), Map.of("x", new long[] {10, 100}), Map.of(), dtype);
            float[] whole;
            try (Safetensors st = Safetensors.open(file, mode)) {
                whole = st.loadFloats("x");
            }
            // 28-byte chunks: 7 elements, so chunk edges fall mid-row and the last chunk is partial; both the
            // write-into-the-result path (CPU) and the wrap-and-copy path (other devices) are checked.
            for (boolean views : new boolean[] {true, false}) {
                try (Safetensors st = Safetensors.open(file, mode, 28, views); NDManager m = manager.newSubManager()) {
                    assertBitsEqual(whole, st.loadFloats("x"), dtype + " loadFloats");
                    NDArray a = st.load("x", m);
                    assertEquals(new Shape(10, 100), a.getShape());
                    assertBitsEqual(whole, a.toFloatArray(), dtype + " load, views " + views);
                }
            }
            assertBitsEqual(decodeExpected(dtype, x), whole, dtype + " whole");
        }
    }

    @Test
    void loadsF64AndReportsButRejectsIntegerTensors() throws IOException {
        ByteBuffer data = ByteBuffer.allocate(3 * 8 + 2 * 8).order(ByteOrder.LITTLE_ENDIAN);
        data.putDouble(1.5).putDouble(-1e300).putDouble(0.1);
        data.putLong(7).putLong(-1);
        Path file = rawFile("mixed.safetensors", "{\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]},"
                + "\"ids\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[24,40]}}", data.array());
        try (Safetensors st = Safetensors.open(file)) {
            assertArrayEquals(new float[] {1.5f, Float.NEGATIVE_INFINITY, 0.1f}, st.loadFloats("d"));
            assertEquals(new TensorInfo("ids", DType.I64, new long[] {1, 2}), st.info("ids"));
            CheckpointException e = assertThrows(CheckpointException.class, () -> st.load("ids", manager));
            assertTrue(e.getMessage().contains("'ids' has dtype I64"), e.getMessage());
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        }
    }

    // ------------------------------------------------------------------------------------- writer layout

    @Test
    void writerProducesStandardLayoutAtomically() throws IOException {
        Map<String, float[]> values = new LinkedHashMap<>();
        values.put("zeta", new float[] {1, 2, 3});
        values.put("alpha", new float[] {4});
        values.put("mid", new float[] {5, 6});
        Map<String, long[]> shapes = Map.of("zeta", new long[] {3}, "alpha", new long[] {1, 1}, "mid", new long[] {2});
        Path file = tmp.resolve("sub/dir/layout.safetensors");
        Safetensors.writeFloats(file, values, shapes, Map.of("format", "pt"), DType.BF16);
        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, (8 + headerLength) % 8, "header padded so data starts 8-aligned");
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"}"), header);
        assertTrue(header.substring(header.strip().length()).chars().allMatch(c -> c == ' '), "padding is spaces");
        JsonNode tree = JSON.readTree(header);
        // insertion order, contiguous BF16 ranges
        List<String> order = new ArrayList<>();
        tree.fieldNames().forEachRemaining(order::add);
        assertEquals(List.of("__metadata__", "zeta", "alpha", "mid"), order);
        assertEquals("[0,6]", tree.get("zeta").get("data_offsets").toString());
        assertEquals("[6,8]", tree.get("alpha").get("data_offsets").toString());
        assertEquals("[8,12]", tree.get("mid").get("data_offsets").toString());
        assertEquals(8 + headerLength + 12, bytes.length);
        try (Stream<Path> left = Files.list(file.getParent())) {
            assertEquals(List.of(file.getFileName().toString()), left.map(p -> p.getFileName().toString()).toList(),
                    "no temp files left behind");
        }
        // Overwriting replaces the file whole.
        Safetensors.write(file, Map.of());
        try (Safetensors st = Safetensors.open(file)) {
            assertTrue(st.names().isEmpty());
            assertTrue(st.metadata().isEmpty());
        }
        assertEquals(16, Files.size(file)); // 8 + "{}" padded to 8
    }

    @Test
    void writerRejectsBadArguments() {
        Path file = tmp.resolve("bad.safetensors");
        Map<String, float[]> one = Map.of("x", new float[] {1, 2});
        assertThrows(IllegalArgumentException.class,
                () -> Safetensors.writeFloats(file, one, Map.of("x", new long[] {2}), Map.of(), DType.I32));
        assertThrows(IllegalArgumentException.class,
                () -> Safetensors.writeFloats(file, one, Map.of("x", new long[] {3}), Map.of(), DType.F32));
        assertThrows(IllegalArgumentException.class,
                () -> Safetensors.writeFloats(file, one, Map.of(), Map.of(), DType.F32));
        assertThrows(IllegalArgumentException.class, () -> Safetensors.writeFloats(file,
                Map.of("__metadata__", new float[] {1}), Map.of("__metadata__", new long[] {1}), Map.of(), DType.F32));
        assertFalse(Files.exists(file));
    }

    // ------------------------------------------------------------------------------------- sharded

    @Test
    void readsShardedCheckpoint() throws IOException {
        Path dir = tmp.resolve("sharded");
        Map<String, float[]> first = new LinkedHashMap<>();
        first.put("a.weight", new float[] {1, 2, 3, 4, 5, 6});
        first.put("a.bias", new float[] {7, 8});
        Map<String, float[]> second = Map.of("b.weight", new float[] {9, 10, 11});
        Safetensors.writeFloats(dir.resolve("model-00001-of-00002.safetensors"), first,
                Map.of("a.weight", new long[] {2, 3}, "a.bias", new long[] {2}), Map.of("format", "pt"), DType.F32);
        Safetensors.writeFloats(dir.resolve("model-00002-of-00002.safetensors"), second,
                Map.of("b.weight", new long[] {3}), Map.of("format", "pt", "shard", "2"), DType.BF16);
        writeIndex(dir, Map.of("a.weight", "model-00001-of-00002.safetensors", "a.bias",
                "model-00001-of-00002.safetensors", "b.weight", "model-00002-of-00002.safetensors"));
        for (Path open : List.of(dir, dir.resolve("model.safetensors.index.json"))) {
            try (Safetensors st = Safetensors.open(open)) {
                assertEquals(List.of("a.bias", "a.weight", "b.weight"), new ArrayList<>(st.names()));
                assertEquals(Map.of("format", "pt", "shard", "2"), st.metadata());
                assertEquals(DType.BF16, st.info("b.weight").dtype());
                assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, st.load("a.weight", manager).toFloatArray());
                assertEquals(new Shape(2, 3), st.load("a.weight", manager).getShape());
                assertArrayEquals(new float[] {7, 8}, st.loadFloats("a.bias"));
                assertArrayEquals(new float[] {9, 10, 11}, st.load("b.weight", manager).toFloatArray());
                assertTrue(st.toString().contains("2 shards"), st.toString());
            }
        }
    }

    @Test
    void shardedErrorsNameTheProblem() throws IOException {
        Path dir = tmp.resolve("broken");
        Safetensors.writeFloats(dir.resolve("s1.safetensors"), Map.of("a", new float[] {1}),
                Map.of("a", new long[] {1}), Map.of(), DType.F32);
        writeIndex(dir, Map.of("a", "s1.safetensors", "b", "s2.safetensors"));
        CheckpointException missing = assertThrows(CheckpointException.class, () -> Safetensors.open(dir));
        assertTrue(missing.getMessage().contains("s2.safetensors") && missing.getMessage().contains("missing"),
                missing.getMessage());

        writeIndex(dir, Map.of("a", "s1.safetensors", "b", "s1.safetensors"));
        CheckpointException absent = assertThrows(CheckpointException.class, () -> Safetensors.open(dir));
        assertTrue(absent.getMessage().contains("'b'") && absent.getMessage().contains("no such tensor"), absent.getMessage());

        writeIndex(dir, Map.of("a", "../outside.safetensors"));
        CheckpointException escape = assertThrows(CheckpointException.class, () -> Safetensors.open(dir));
        assertTrue(escape.getMessage().contains("not a file inside"), escape.getMessage());

        Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\":{\"a\":\"s1.safetensors\",\"a\":\"s1.safetensors\"}}");
        CheckpointException dupIndex = assertThrows(CheckpointException.class, () -> Safetensors.open(dir));
        assertTrue(dupIndex.getMessage().contains("Duplicate field 'a'"), dupIndex.getMessage());

        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"metadata\":{}}");
        CheckpointException noMap = assertThrows(CheckpointException.class, () -> Safetensors.open(dir));
        assertTrue(noMap.getMessage().contains("weight_map"), noMap.getMessage());

        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(empty.resolve("sae_weights.safetensors"), "");
        CheckpointException none = assertThrows(CheckpointException.class, () -> Safetensors.open(empty));
        assertTrue(none.getMessage().contains("sae_weights.safetensors"), none.getMessage());
    }

    private static void writeIndex(Path dir, Map<String, String> weightMap) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.putObject("metadata").put("total_size", 44);
        ObjectNode map = root.putObject("weight_map");
        weightMap.forEach(map::put);
        Files.writeString(dir.resolve("model.safetensors.index.json"), JSON.writeValueAsString(root));
    }

    // ------------------------------------------------------------------------------------- corruption

    private static final String GOOD_HEADER = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}";

    private Path rawFile(String name, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return rawFile(name, h.length, h, data);
    }

    private Path rawFile(String name, long headerLength, byte[] header, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLength).put(header).put(data);
        Path file = tmp.resolve(name);
        Files.write(file, b.array());
        return file;
    }

    private void assertCorrupt(Path file, String expectedPhrase) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> {
            try (Safetensors st = Safetensors.open(file)) {
                for (String n : st.names()) {
                    st.loadFloats(n);
                }
            }
        });
        assertTrue(e.getMessage().startsWith(file.toString() + ": "), "names the file: " + e.getMessage());
        assertTrue(e.getMessage().contains(expectedPhrase), "expected '" + expectedPhrase + "' in: " + e.getMessage());
    }

    @Test
    void goodRawFileOpens() throws IOException {
        // The base of the corruption cases below is itself valid.
        try (Safetensors st = Safetensors.open(rawFile("good.safetensors", GOOD_HEADER, new byte[16]))) {
            assertEquals(List.of("a", "b"), new ArrayList<>(st.names()));
            assertArrayEquals(new float[4], st.loadFloats("b"));
        }
    }

    @Test
    void truncatedFiles() throws IOException {
        assertCorrupt(rawFile("t-data.safetensors", GOOD_HEADER, new byte[12]), "run past the end of the data region");
        Path tiny = tmp.resolve("t-tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        assertCorrupt(tiny, "truncated: 3 bytes");
        byte[] h = GOOD_HEADER.getBytes(StandardCharsets.UTF_8);
        assertCorrupt(rawFile("t-header.safetensors", h.length, java.util.Arrays.copyOf(h, 20), new byte[0]),
                "truncated: header length says " + h.length);
        Path empty = tmp.resolve("t-empty.safetensors");
        Files.write(empty, new byte[0]);
        assertCorrupt(empty, "truncated: 0 bytes");
    }

    @Test
    void absurdHeaderLengths() throws IOException {
        byte[] h = GOOD_HEADER.getBytes(StandardCharsets.UTF_8);
        assertCorrupt(rawFile("l-neg.safetensors", -1L, h, new byte[16]), "header length 18446744073709551615 is absurd");
        assertCorrupt(rawFile("l-huge.safetensors", 100_000_001L, h, new byte[16]), "is absurd");
        assertCorrupt(rawFile("l-past.safetensors", 5_000_000L, h, new byte[16]), "truncated: header length says 5000000");
        assertCorrupt(rawFile("l-zero.safetensors", 0, new byte[0], new byte[0]), "header is empty");
        assertCorrupt(rawFile("l-short.safetensors", 10, h, new byte[0]), "not valid JSON");
    }

    @Test
    void malformedHeaders() throws IOException {
        assertCorrupt(rawFile("j-text.safetensors", "not json at all", new byte[0]), "not valid JSON");
        assertCorrupt(rawFile("j-array.safetensors", "[1,2]", new byte[0]), "not a JSON object");
        assertCorrupt(rawFile("j-trailing.safetensors", "{} {}", new byte[0]), "content after its JSON object");
        assertCorrupt(rawFile("j-utf8.safetensors", 4, new byte[] {'{', (byte) 0xC3, '}', ' '}, new byte[0]), "UTF-8");
        assertCorrupt(rawFile("j-entry.safetensors", "{\"a\":[1]}", new byte[0]), "'a': expected an object");
        assertCorrupt(rawFile("j-meta.safetensors", "{\"__metadata__\":{\"n\":1}}", new byte[0]),
                "__metadata__ must map strings to strings");
        assertCorrupt(rawFile("j-nodtype.safetensors", "{\"a\":{\"shape\":[],\"data_offsets\":[0,4]}}", new byte[4]),
                "'a': missing \"dtype\"");
        assertCorrupt(rawFile("j-shape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
                new byte[4]), "shape must be an array of non-negative integers");
        assertCorrupt(rawFile("j-bigshape.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", new byte[4]),
                "shape must be");
        assertCorrupt(rawFile("j-overflow.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", new byte[4]),
                "overflows");
        assertCorrupt(rawFile("j-offsets.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
                new byte[4]), "data_offsets must be [begin, end]");
    }

    @Test
    void unknownDtype() throws IOException {
        Path file = rawFile("d.safetensors", GOOD_HEADER.replace("F16", "F4"), new byte[16]);
        assertCorrupt(file, "unknown safetensors dtype 'F4'; valid: BOOL, U8");
    }

    @Test
    void sizeMismatch() throws IOException {
        assertCorrupt(rawFile("s.safetensors", GOOD_HEADER.replace("[2,2]", "[2,3]"), new byte[16]),
                "'b': data_offsets [8, 16] hold 8 bytes but shape [2, 3] of F16 needs 12");
    }

    @Test
    void badOffsets() throws IOException {
        assertCorrupt(rawFile("o-range.safetensors", GOOD_HEADER.replace("[8,16]", "[16,24]"), new byte[16]),
                "run past the end");
        assertCorrupt(rawFile("o-rev.safetensors", GOOD_HEADER.replace("[8,16]", "[16,8]"), new byte[16]), "reversed");
        assertCorrupt(rawFile("o-overlap.safetensors", GOOD_HEADER.replace("[8,16]", "[4,12]"), new byte[16]),
                "'a' and 'b' overlap");
        assertCorrupt(rawFile("o-gap.safetensors", GOOD_HEADER.replace("[8,16]", "[12,20]"), new byte[20]),
                "gap of 4 bytes before tensor 'b'");
        assertCorrupt(rawFile("o-trailing.safetensors", GOOD_HEADER, new byte[24]), "8 bytes after the last tensor");
    }

    @Test
    void duplicateNames() throws IOException {
        String dup = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        assertCorrupt(rawFile("dup.safetensors", dup, new byte[8]), "duplicate tensor name 'a'");
        String nested = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}";
        assertCorrupt(rawFile("dup-field.safetensors", nested, new byte[8]), "Duplicate field 'dtype'");
        String meta = "{\"__metadata__\":{},\"__metadata__\":{}}";
        assertCorrupt(rawFile("dup-meta.safetensors", meta, new byte[0]), "two __metadata__ entries");
    }

    @Test
    void missingFile() {
        Path file = tmp.resolve("nope.safetensors");
        CheckpointException e = assertThrows(CheckpointException.class, () -> Safetensors.open(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("no such file"), e.getMessage());
        assertEquals(file, e.file().orElseThrow());
    }

    // ------------------------------------------------------------------------------------- helpers

    private static float[] decodeExpected(DType dtype, float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = switch (dtype) {
                case F32 -> x[i];
                case F16 -> HalfFloats.f16ToF32(HalfFloats.f32ToF16(x[i]));
                case BF16 -> HalfFloats.bf16ToF32(HalfFloats.f32ToBf16(x[i]));
                default -> throw new IllegalStateException();
            };
        }
        return out;
    }

    private static void assertSorted(List<String> names) {
        List<String> sorted = new ArrayList<>(names);
        sorted.sort(null);
        assertEquals(sorted, names);
    }

    private static void assertBitsEqual(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + " length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                fail(what + "[" + i + "]: expected bits " + Integer.toHexString(Float.floatToRawIntBits(expected[i]))
                        + " got " + Integer.toHexString(Float.floatToRawIntBits(actual[i])));
            }
        }
    }

    /** An independent, minimal reading of a safetensors file for checking the reader and writer. */
    record RawFile(byte[] bytes, JsonNode header, long dataStart) {
        static RawFile parse(byte[] bytes) throws IOException {
            long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            JsonNode header = JSON.readTree(new String(bytes, 8, (int) n, StandardCharsets.UTF_8));
            return new RawFile(bytes, header, 8 + n);
        }

        java.util.SortedSet<String> tensorNames() {
            java.util.SortedSet<String> names = new java.util.TreeSet<>();
            header.fieldNames().forEachRemaining(names::add);
            names.remove("__metadata__");
            return names;
        }

        ByteBuffer data(String name) {
            JsonNode off = header.get(name).get("data_offsets");
            int begin = (int) (dataStart + off.get(0).asLong());
            int end = (int) (dataStart + off.get(1).asLong());
            return ByteBuffer.wrap(bytes, begin, end - begin).slice().order(ByteOrder.LITTLE_ENDIAN);
        }

        float[] decodeF32(String name) {
            ByteBuffer d = data(name);
            float[] out = new float[d.remaining() / 4];
            d.asFloatBuffer().get(out);
            return out;
        }
    }

    @Test
    void longsRoundTripAsI64WithAHeaderOthersRead() throws IOException {
        long[] ids = new long[3 * 70_001]; // more than one read chunk
        Random r = new Random(5);
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextLong() >>> r.nextInt(64);
        Path f = tmp.resolve("ids.safetensors");
        Safetensors.writeLongs(f, Map.of("input_ids", ids), Map.of("input_ids", new long[] {3, 70_001}),
                Map.of("format", "test"));
        try (Safetensors st = Safetensors.open(f)) {
            assertEquals(DType.I64, st.info("input_ids").dtype());
            assertArrayEquals(new long[] {3, 70_001}, st.info("input_ids").shape());
            assertArrayEquals(ids, st.loadLongs("input_ids"));
            assertEquals("test", st.metadata().get("format"));
            CheckpointException e = assertThrows(CheckpointException.class, () -> st.loadFloats("input_ids"));
            assertTrue(e.getMessage().contains("I64"), e.getMessage());
        }
        // The layout by hand: 8-byte header length, JSON header padded to 8, little-endian int64 data.
        byte[] bytes = Files.readAllBytes(f);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long headerLen = b.getLong();
        assertEquals(0, headerLen % 8);
        JsonNode header = new ObjectMapper().readTree(new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8));
        assertEquals("I64", header.at("/input_ids/dtype").asText());
        assertEquals(ids.length * 8L, header.at("/input_ids/data_offsets/1").asLong());
        assertEquals(ids[1], b.getLong(8 + (int) headerLen + 8));

        Path floats = tmp.resolve("f.safetensors");
        Safetensors.writeFloats(floats, Map.of("w", new float[] {1, 2}), Map.of("w", new long[] {2}), Map.of(), DType.F32);
        try (Safetensors st = Safetensors.open(floats)) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> st.loadLongs("w"));
            assertTrue(e.getMessage().contains("F32"), e.getMessage());
        }
    }
}
