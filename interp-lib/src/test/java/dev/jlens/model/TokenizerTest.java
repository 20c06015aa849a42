package dev.jlens.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {

    private static Path gpt2File;
    private static Tokenizer gpt2;

    @TempDir
    Path tmp;

    @BeforeAll
    static void loadGpt2() {
        String fixtures = System.getProperty("jlens.fixtures");
        assertNotNull(fixtures, "system property jlens.fixtures is not set (the parent POM's surefire config sets it)");
        gpt2File = Paths.get(fixtures, "gpt2-tokenizer", "tokenizer.json");
        assertTrue(Files.isRegularFile(gpt2File), "missing fixture " + gpt2File.toAbsolutePath());
        gpt2 = Tokenizer.load(gpt2File);
    }

    @AfterAll
    static void closeGpt2() {
        if (gpt2 != null) {
            gpt2.close();
        }
    }

    // ------------------------------------------------------------------------------------------ real GPT-2

    @Test
    void gpt2KnownEncodingsWithoutBos() {
        assertArrayEquals(new long[] {15496, 995}, gpt2.toTokens("Hello world", false));
        assertArrayEquals(new long[] {262}, gpt2.toTokens(" the", false));
        assertArrayEquals(new long[] {464, 412, 733, 417, 8765, 318, 287, 6342},
                gpt2.toTokens("The Eiffel Tower is in Paris", false));
        assertArrayEquals(new long[] {50256}, gpt2.toTokens("<|endoftext|>", false));
        assertArrayEquals(new long[0], gpt2.toTokens("", false));
    }

    @Test
    void gpt2UsesEndOfTextAsBosEosAndPad() {
        assertEquals(OptionalLong.of(50256), gpt2.bosTokenId());
        assertEquals(OptionalLong.of(50256), gpt2.eosTokenId());
        assertArrayEquals(new long[] {50256}, gpt2.eosTokenIds());
        assertEquals(50256, gpt2.padTokenId()); // no pad token: falls back to EOS
        assertArrayEquals(new long[] {50256, 15496, 995}, gpt2.toTokens("Hello world", true));
        assertArrayEquals(new long[] {50256, 15496, 995}, gpt2.toTokens("Hello world"));
        assertArrayEquals(new long[] {50256}, gpt2.toTokens(""));
        assertEquals(List.of("<|endoftext|>", "Hello", " world"), gpt2.toStrTokens("Hello world"));
        assertEquals(List.of("Hello", " world"), gpt2.toStrTokens("Hello world", false));
        assertEquals(Optional.empty(), gpt2.chatTemplate());
        ChatTemplateException noTemplate = assertThrows(ChatTemplateException.class,
                () -> gpt2.applyChatTemplate(List.of(ChatTemplate.Message.user("hi")), true));
        assertTrue(noTemplate.getMessage().contains("has no chat template"), noTemplate.getMessage());
        assertEquals(Optional.empty(), gpt2.addBosToken());
    }

    @Test
    void gpt2VocabularyLookups() {
        assertEquals(50257, gpt2.vocabSize());
        assertEquals(995, gpt2.tokenId("Ġworld"));
        assertEquals(50256, gpt2.tokenId("<|endoftext|>"));
        assertEquals(" world", gpt2.decodeToken(995));
        assertEquals("<|endoftext|>", gpt2.decodeToken(50256));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpt2.tokenId(" world"));
        assertTrue(e.getMessage().contains("single token 995"), e.getMessage());
        assertTrue(e.getMessage().contains("'Ġworld' (995)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpt2.tokenId("Ġworlx"));
        assertTrue(e.getMessage().contains("Nearest entries") && e.getMessage().contains("(995)"), e.getMessage());
    }

    @Test
    void gpt2DecodeRoundTrips() {
        for (String s : List.of("Hello world", "  two leading spaces and trailing  ", "tabs\tand\nnew\r\nlines\n\n",
                "naïve café — 東京 😀👍🏽 ∑x²", "a\u0000b", "")) {
            assertEquals(s, gpt2.decode(gpt2.toTokens(s, false)), "round trip of " + s);
            assertEquals(s, gpt2.decode(gpt2.toTokens(s, true), true), "round trip with BOS skipped of " + s);
        }
        String withSpecial = "<|endoftext|>after the end";
        assertEquals(withSpecial, gpt2.decode(gpt2.toTokens(withSpecial, false)));
        assertEquals("after the end", gpt2.decode(gpt2.toTokens(withSpecial, false), true));
        assertEquals("<|endoftext|>Hello world", gpt2.decode(new long[] {50256, 15496, 995}));
        assertEquals("Hello world", gpt2.decode(new long[] {50256, 15496, 995}, true));
    }

    @Test
    void gpt2StrTokensArePiecesOfTheText() {
        String text = "The Eiffel Tower is in Paris";
        List<String> pieces = gpt2.toStrTokens(text, false);
        assertEquals(List.of("The", " E", "iff", "el", " Tower", " is", " in", " Paris"), pieces);
        for (String s : List.of("Hello world", "  spaces\tand\nnewlines ", "naïve café, déjà vu")) {
            assertEquals(s, String.join("", gpt2.toStrTokens(s, false)), "pieces of " + s);
        }
        // An emoji spans two byte-level tokens; each alone is an incomplete UTF-8 sequence (U+FFFD), as in
        // TransformerLens, while decoding both together restores it.
        List<String> emoji = gpt2.toStrTokens("😀", false);
        assertEquals(2, emoji.size());
        assertTrue(emoji.get(0).contains("\uFFFD"), emoji.toString());
        assertEquals("😀", gpt2.decode(gpt2.toTokens("😀", false)));
    }

    @Test
    void gpt2BatchLeftPadding() {
        Batch b = gpt2.batch(List.of("Hello world", " the", "The Eiffel Tower is in Paris"), false,
                Tokenizer.Padding.LEFT);
        assertEquals(3, b.size());
        assertEquals(8, b.length());
        assertArrayEquals(new int[] {2, 1, 8}, b.lengths());
        assertArrayEquals(new long[] {50256, 50256, 50256, 50256, 50256, 50256, 15496, 995}, b.ids()[0]);
        assertArrayEquals(new boolean[] {false, false, false, false, false, false, true, true}, b.mask()[0]);
        assertArrayEquals(new long[] {50256, 50256, 50256, 50256, 50256, 50256, 50256, 262}, b.ids()[1]);
        assertArrayEquals(new boolean[] {false, false, false, false, false, false, false, true}, b.mask()[1]);
        assertArrayEquals(new long[] {464, 412, 733, 417, 8765, 318, 287, 6342}, b.ids()[2]);
        assertArrayEquals(new boolean[] {true, true, true, true, true, true, true, true}, b.mask()[2]);
    }

    @Test
    void gpt2BatchRightPaddingWithBos() {
        Batch b = gpt2.batch(List.of("Hello world", " the"), true, Tokenizer.Padding.RIGHT);
        assertArrayEquals(new int[] {3, 2}, b.lengths());
        assertArrayEquals(new long[] {50256, 15496, 995}, b.ids()[0]);
        assertArrayEquals(new boolean[] {true, true, true}, b.mask()[0]);
        assertArrayEquals(new long[] {50256, 262, 50256}, b.ids()[1]);
        assertArrayEquals(new boolean[] {true, true, false}, b.mask()[1]);
        assertEquals(b, gpt2.batch(List.of("Hello world", " the")));
        assertThrows(IllegalArgumentException.class, () -> gpt2.batch(List.of(), true, Tokenizer.Padding.LEFT));
    }

    @Test
    void decodeRejectsIdsOutsideTheVocabulary() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpt2.decode(new long[] {15496, 50257}));
        assertTrue(e.getMessage().contains("50257") && e.getMessage().contains("0..50256"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> gpt2.decodeToken(-1));
    }

    // ------------------------------------------------------------------------------------- loading errors

    @Test
    void missingTokenizerNamesTheDirectoryAndTheFile() throws IOException {
        Files.writeString(tmp.resolve("vocab.json"), "{}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(tmp));
        assertTrue(e.getMessage().contains(tmp.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
        assertTrue(e.getMessage().contains("vocab.json"), e.getMessage());
        Path nowhere = tmp.resolve("no-such-dir");
        e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(nowhere));
        assertTrue(e.getMessage().contains(nowhere.toString()), e.getMessage());
        assertEquals(Optional.empty(), Tokenizer.find(tmp));
        assertEquals(Optional.empty(), Tokenizer.find(nowhere));
    }

    @Test
    void corruptTokenizerFilesGiveErrorsNamingTheFile() throws IOException {
        String real = Files.readString(gpt2File, StandardCharsets.UTF_8);
        Map<String, String> corrupt = new LinkedHashMap<>();
        corrupt.put("truncated", real.substring(0, 5000));
        corrupt.put("not-json", "this is not json");
        corrupt.put("empty", "");
        corrupt.put("not-a-tokenizer", "{\"model\": {\"type\": \"Nonsense\"}}");
        corrupt.put("array", "[1, 2, 3]");
        for (Map.Entry<String, String> c : corrupt.entrySet()) {
            Path dir = Files.createDirectories(tmp.resolve(c.getKey()));
            Path file = dir.resolve("tokenizer.json");
            Files.writeString(file, c.getValue());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(dir),
                    c.getKey());
            assertTrue(e.getMessage().contains(file.toString()), c.getKey() + ": " + e.getMessage());
            assertTrue(e.getMessage().startsWith("Corrupt tokenizer file"), c.getKey() + ": " + e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Tokenizer.find(dir), c.getKey());
        }
    }

    @Test
    void closedTokenizerRefusesWorkAndClosesTwice() {
        Tokenizer t = Tokenizer.load(gpt2File);
        t.close();
        t.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.toTokens("Hello"));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> t.decode(new long[] {995}));
    }

    @Test
    void nativeLibraryShipsInsideTheJarForThisPlatform() {
        String os = System.getProperty("os.name");
        String prefix = os.startsWith("Linux") ? "linux" : os.startsWith("Mac") ? "osx" : os.startsWith("Win") ? "win"
                : os;
        String arch = System.getProperty("os.arch");
        arch = arch.equals("amd64") || arch.equals("x86_64") ? "x86_64" : arch;
        String resource = "native/lib/" + prefix + "-" + arch + "/cpu/" + System.mapLibraryName("tokenizers");
        assertNotNull(Tokenizer.class.getClassLoader().getResource(resource),
                "DJL's tokenizers jar should contain " + resource + " so that it loads offline");
    }

    // ------------------------------------------------------------------------------------ config files

    @Test
    void tokenizerConfigNamesTheSpecialTokens() throws IOException {
        Tokenizer.buildWordLevel(List.of("a", "b", "c"), Map.of("<s>", 0L, "</s>", 1L, "<pad>", 2L), tmp);
        Files.writeString(tmp.resolve("tokenizer_config.json"), """
                {"bos_token": {"__type": "AddedToken", "content": "</s>"}, "eos_token": "<s>",
                 "pad_token": null, "add_bos_token": false, "chat_template": "{{ messages }}"}
                """);
        Files.writeString(tmp.resolve("config.json"), "{\"bos_token_id\": 2, \"eos_token_id\": [2, 3]}");
        try (Tokenizer t = Tokenizer.load(tmp)) {
            assertEquals(OptionalLong.of(1), t.bosTokenId()); // tokenizer_config.json wins over config.json
            assertEquals(OptionalLong.of(0), t.eosTokenId());
            assertArrayEquals(new long[] {0, 2, 3}, t.eosTokenIds());
            assertEquals(0, t.padTokenId()); // pad_token null: falls back to EOS
            assertEquals(Optional.of(false), t.addBosToken());
            assertEquals(Optional.of("{{ messages }}"), t.chatTemplate());
            // printed as Python's Jinja prints a list of dicts
            assertEquals("[{'role': 'user', 'content': 'hi'}]",
                    t.applyChatTemplate(List.of(ChatTemplate.Message.user("hi")), false));
            assertArrayEquals(new long[] {1, 3, 5}, t.toTokens("a c"));
        }
    }

    @Test
    void configJsonIsTheFallbackForIds() throws IOException {
        Tokenizer.buildWordLevel(List.of("x", "y"), Map.of("<|im_end|>", 2L, "<|endoftext|>", 3L), tmp);
        Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"bos_token\": null, \"eos_token\": \"<|im_end|>\"}");
        Files.writeString(tmp.resolve("config.json"),
                "{\"bos_token_id\": 3, \"eos_token_id\": 3, \"pad_token_id\": -1}");
        try (Tokenizer t = Tokenizer.load(tmp.resolve("tokenizer.json"))) {
            assertEquals(OptionalLong.of(3), t.bosTokenId());
            assertEquals(OptionalLong.of(2), t.eosTokenId());
            assertArrayEquals(new long[] {2, 3}, t.eosTokenIds());
            assertEquals(2, t.padTokenId()); // pad_token_id -1 means none: falls back to EOS
        }
    }

    @Test
    void modelWithoutBosIgnoresPrependBos() throws IOException {
        Tokenizer.buildWordLevel(List.of("x", "y"), Map.of("<|endoftext|>", 2L), tmp);
        Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"bos_token\": null, \"eos_token\": null}");
        try (Tokenizer t = Tokenizer.load(tmp)) {
            assertEquals(OptionalLong.empty(), t.bosTokenId());
            assertEquals(OptionalLong.empty(), t.eosTokenId());
            assertEquals(0, t.padTokenId());
            assertArrayEquals(new long[] {0, 1}, t.toTokens("x y", true));
            assertArrayEquals(new long[] {0, 1}, t.toTokens("x y"));
        }
    }

    @Test
    void configErrorsNameTheConfigFile() throws IOException {
        Tokenizer.buildWordLevel(List.of("x"), Map.of(), tmp);
        Path cfg = tmp.resolve("tokenizer_config.json");
        Files.writeString(cfg, "{\"bos_token\": \"<s>\"}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(tmp));
        assertTrue(e.getMessage().contains(cfg.toString()) && e.getMessage().contains("<s>"), e.getMessage());
        Files.writeString(cfg, "{\"bos_token\": ");
        e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(tmp));
        assertTrue(e.getMessage().contains(cfg.toString()), e.getMessage());
        Files.delete(cfg);
        Path modelCfg = tmp.resolve("config.json");
        Files.writeString(modelCfg, "{\"eos_token_id\": 7}");
        e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(tmp));
        assertTrue(e.getMessage().contains(modelCfg.toString()) && e.getMessage().contains("7"), e.getMessage());
    }

    // ------------------------------------------------------------------------------------------ builders

    @Test
    void wordLevelTokenizerLoadsAndRoundTrips() {
        Path file = Tokenizer.buildWordLevel(List.of("a", "b", "+", "=", "10"),
                Map.of("<pad>", 0L, "<bos>", 1L, "<eos>", 2L), tmp.resolve("word/tokenizer.json"));
        assertTrue(Files.isRegularFile(file));
        try (Tokenizer t = Tokenizer.load(file.getParent())) {
            assertEquals(8, t.vocabSize());
            assertEquals(OptionalLong.of(1), t.bosTokenId());
            assertEquals(OptionalLong.of(2), t.eosTokenId());
            assertEquals(0, t.padTokenId());
            assertEquals(3, t.tokenId("a"));
            assertEquals(7, t.tokenId("10"));
            String text = "a + b = 10";
            assertArrayEquals(new long[] {1, 3, 5, 4, 6, 7}, t.toTokens(text));
            assertArrayEquals(new long[] {3, 5, 4, 6, 7, 2}, t.toTokens(text + " <eos>", false));
            assertEquals(text, t.decode(t.toTokens(text, false)));
            assertEquals(text, t.decode(t.toTokens(text), true));
            assertEquals("<bos> " + text, t.decode(t.toTokens(text)));
            assertEquals(List.of("<bos>", "a", "+", "b", "=", "10"), t.toStrTokens(text));
            Batch b = t.batch(List.of("a", "a + b"), true, Tokenizer.Padding.LEFT);
            assertArrayEquals(new long[] {0, 0, 1, 3}, b.ids()[0]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.toTokens("a - b"));
            assertTrue(e.getMessage().contains("'a - b'") && e.getMessage().contains("not in the vocabulary"),
                    e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> t.batch(List.of("a", "a - b"), true,
                    Tokenizer.Padding.LEFT));
        }
    }

    @Test
    void wordLevelUnknownWordsMapToUnk() {
        Tokenizer.buildWordLevel(List.of("yes", "no"), Map.of("<unk>", 2L), tmp);
        try (Tokenizer t = Tokenizer.load(tmp)) {
            assertArrayEquals(new long[] {0, 2, 1}, t.toTokens("yes maybe no"));
        }
    }

    @Test
    void charLevelTokenizerLoadsAndRoundTrips() {
        List<String> chars = "0123456789+= \n".codePoints().mapToObj(Character::toString)
                .collect(java.util.stream.Collectors.toList());
        chars.add("😀");
        int n = chars.size();
        Tokenizer.buildCharLevel(chars, Map.of("<bos>", (long) n, "<eos>", (long) n + 1), tmp);
        try (Tokenizer t = Tokenizer.load(tmp)) {
            assertEquals(n + 2, t.vocabSize());
            assertEquals(OptionalLong.of(n), t.bosTokenId());
            assertEquals(0, t.tokenId("0"));
            assertEquals(n - 1, t.tokenId("😀"));
            for (String s : List.of("12+3=15\n", "😀 0 😀", "  \n\n9", "")) {
                long[] ids = t.toTokens(s, false);
                assertEquals(s.codePointCount(0, s.length()), ids.length, s);
                assertEquals(s, t.decode(ids));
                assertEquals(s, t.decode(t.toTokens(s), true));
                assertEquals(s, String.join("", t.toStrTokens(s, false)));
            }
            assertArrayEquals(new long[] {n, 1, 10, 2, n + 1}, t.toTokens("1+2<eos>"));
        }
    }

    @Test
    void buildersRejectBadVocabularies() {
        Path out = tmp.resolve("t.json");
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.buildWordLevel(List.of("a", "a"), Map.of(), out));
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.buildWordLevel(List.of("a b"), Map.of(), out));
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.buildWordLevel(List.of(""), Map.of(), out));
        assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.buildWordLevel(List.of("<bos>"), Map.of("<bos>", 0L), out));
        IllegalArgumentException gap = assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.buildWordLevel(List.of("a"), Map.of("<bos>", 5L), out));
        assertTrue(gap.getMessage().contains("0..1"), gap.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.buildWordLevel(List.of("a"), Map.of("<bos>", 0L, "<eos>", 0L), out));
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.buildCharLevel(List.of("ab"), Map.of(), out));
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.buildCharLevel(List.of(), Map.of(), out));
        assertFalse(Files.exists(out));
    }
}
