package org.quant4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.hf.HfCheckpoint;
import org.quant4j.model.Model;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

import static org.junit.jupiter.api.Assertions.*;

/**
 * GGUF metadata → tokenizer.json + tokenizer_config.json → {@link TokenizerJson#toMetadata} → tokenizer: every
 * llama.cpp vocabulary comes back with the same tokens, types and merges and passes its test vectors, and llama2.c's
 * tokenizers give the ids they gave before.
 */
class TokTokenizerJsonWriterTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path dir;

    static List<String> vocabs() { return VocabFixtures.VOCABS; }

    @ParameterizedTest(name = "{0}")
    @MethodSource("vocabs")
    void roundTripKeepsTokensTypesMergesAndVectors(String name) throws IOException {
        Map<String, GgufValue> original = VocabFixtures.metadata(name);
        Path out = dir.resolve(name);
        List<Path> written = TokenizerJsonWriter.write(original, out);
        assertEquals(List.of(out.resolve("tokenizer.json"), out.resolve("tokenizer_config.json")), written);

        Map<String, GgufValue> back = TokenizerJson.toMetadata(out.resolve("tokenizer.json"));
        assertEquals(original.get("tokenizer.ggml.model"), back.get("tokenizer.ggml.model"));
        assertEquals(original.get("tokenizer.ggml.tokens"), back.get("tokenizer.ggml.tokens"));
        assertArrayEquals(expectedTypes(original), ints(back, "tokenizer.ggml.token_type"));
        assertEquals(original.get("tokenizer.ggml.merges"), back.get("tokenizer.ggml.merges"));

        Tokenizer t = Tokenizers.fromMetadata(back, out.toString());
        assertVectorsPass(name, t);
        assertSameTokenizer(VocabFixtures.tokenizer(name), t, texts(name));
        assertSameFlags(original, back);

        // writing what came back gives the same files: nothing drifts on a second round trip (but for the user-defined
        // tokens that look special, which came back CONTROL: see expectedTypes)
        Path again = dir.resolve(name + "-again");
        Map<String, GgufValue> backWithModelKeys = new LinkedHashMap<>(back);
        original.forEach((k, v) -> { if (!k.startsWith("tokenizer.")) backWithModelKeys.put(k, v); }); // the context length
        TokenizerJsonWriter.write(backWithModelKeys, again);
        assertEquals(Files.readString(out.resolve("tokenizer_config.json")), Files.readString(again.resolve("tokenizer_config.json")), name);
        JsonNode first = JSON.readTree(out.resolve("tokenizer.json").toFile()), second = JSON.readTree(again.resolve("tokenizer.json").toFile());
        if (name.startsWith("deepseek")) {
            for (JsonNode a : first.get("added_tokens")) if (looksSpecial(a.get("content").asText())) ((ObjectNode) a).put("special", true);
        } else {
            assertEquals(Files.readString(out.resolve("tokenizer.json")), Files.readString(again.resolve("tokenizer.json")), name);
        }
        assertEquals(first, second, name);
    }

    @Test
    void llama2cTokenizersRoundTrip() {
        for (Path bin : List.of(TokLlama2cTest.TOK512, TokLlama2cTest.TOK32K)) {
            Map<String, GgufValue> original = Llama2cTokenizer.toMetadata(bin);
            Path out = dir.resolve(bin.getFileName().toString());
            TokenizerJsonWriter.write(original, out);
            Map<String, GgufValue> back = TokenizerJson.toMetadata(out.resolve("tokenizer.json"));
            assertEquals(original.get("tokenizer.ggml.tokens"), back.get("tokenizer.ggml.tokens"), bin.toString());
            assertArrayEquals(expectedTypes(original), ints(back, "tokenizer.ggml.token_type"), bin.toString());
            List<String> texts = new ArrayList<>(TokLlama2cTest.TEXTS);
            texts.addAll(texts("llama-spm"));
            assertSameTokenizer(Tokenizers.fromMetadata(original, bin.toString()), Tokenizers.fromMetadata(back, out.toString()), texts);
            assertSameFlags(original, back);
        }
    }

    /** A GGUF or llama2.c model saved as a Hugging Face checkpoint takes its tokenizer along, and loads back with it. */
    @Test
    void hfCheckpointsFromGgufAndLlama2cCarryTheTokenizer() {
        for (Path source : List.of(TokLlama2cTest.STORIES_GGUF, Path.of("models/stories260K/stories260K.bin"))) {
            Path out = dir.resolve(source.getFileName() + "-hf");
            try (Model m = ModelLoader.load(source)) {
                List<Path> written = HfCheckpoint.save(m, out, 0);
                assertTrue(written.contains(out.resolve("tokenizer.json")) && written.contains(out.resolve("tokenizer_config.json")), written.toString());
                try (Model back = ModelLoader.load(out)) {
                    assertSameTokenizer(Tokenizers.fromModel(m), Tokenizers.fromModel(back), TokLlama2cTest.TEXTS);
                }
            }
        }
    }

    // ---- the layouts ----

    @Test
    void llamaLayoutIsLlama2s() throws IOException {
        TokenizerJsonWriter.write(VocabFixtures.metadata("llama-spm"), dir);
        JsonNode tok = JSON.readTree(dir.resolve("tokenizer.json").toFile());
        assertEquals(List.of("version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor",
                "decoder", "model"), fieldNames(tok));
        JsonNode model = tok.get("model");
        assertEquals("BPE", model.get("type").asText());
        assertTrue(model.get("byte_fallback").asBoolean() && model.get("fuse_unk").asBoolean());
        assertEquals("<unk>", model.get("unk_token").asText());
        assertEquals(32000, model.get("vocab").size());
        assertEquals(15043, model.get("vocab").get("\u2581Hello").asInt());
        // Llama 2's first merges: the tokens 260.. are "▁t", "er", "in", "▁a", "en", "on"
        List<String> first = new ArrayList<>();
        for (int i = 0; i < 6; i++) first.add(model.get("merges").get(i).asText());
        assertEquals(List.of("\u2581 t", "e r", "i n", "\u2581 a", "e n", "o n"), first);

        assertEquals(List.of("<unk>", "<s>", "</s>"), tok.get("added_tokens").findValuesAsText("content"));
        for (JsonNode a : tok.get("added_tokens")) assertTrue(a.get("special").asBoolean() && !a.get("normalized").asBoolean());
        assertEquals("Sequence", tok.get("normalizer").get("type").asText());
        assertEquals(List.of("Prepend", "Replace"), tok.get("normalizer").get("normalizers").findValuesAsText("type"));
        assertEquals("\u2581", tok.get("normalizer").get("normalizers").get(1).get("content").asText());
        assertTrue(tok.get("pre_tokenizer").isNull());
        assertEquals(List.of("Replace", "ByteFallback", "Fuse", "Strip"), tok.get("decoder").get("decoders").findValuesAsText("type"));
        JsonNode strip = tok.get("decoder").get("decoders").get(3);
        assertEquals(1, strip.get("start").asInt());
        assertEquals(0, strip.get("stop").asInt());
        JsonNode post = tok.get("post_processor");
        assertEquals("TemplateProcessing", post.get("type").asText());
        assertEquals("<s>", post.get("single").get(0).get("SpecialToken").get("id").asText());
        assertEquals("A", post.get("single").get(1).get("Sequence").get("id").asText());
        assertEquals(1, post.get("special_tokens").get("<s>").get("ids").get(0).asInt());

        JsonNode config = JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        assertEquals("PreTrainedTokenizerFast", config.get("tokenizer_class").asText());
        assertEquals("<s>", config.get("bos_token").asText());
        assertEquals("</s>", config.get("eos_token").asText());
        assertEquals("<unk>", config.get("unk_token").asText());
        assertTrue(config.get("add_bos_token").asBoolean());
        assertFalse(config.get("add_eos_token").asBoolean());
        assertFalse(config.get("clean_up_tokenization_spaces").asBoolean());
        assertEquals(4096, config.get("model_max_length").asInt());
    }

    @Test
    void phi3KeepsPaddingOutAndCarriesTheChatTemplate() throws IOException {
        Map<String, GgufValue> meta = VocabFixtures.metadata("phi-3");
        TokenizerJsonWriter.write(meta, dir);
        JsonNode tok = JSON.readTree(dir.resolve("tokenizer.json").toFile());
        assertEquals(32064, tok.get("model").get("vocab").size()); // 32011..32063 are llama.cpp's [PAD<id>] rows
        assertEquals(32011, tok.get("model").get("vocab").get("[PAD32011]").asInt());
        for (JsonNode a : tok.get("added_tokens")) assertTrue(a.get("id").asInt() < 32011, a.toString()); // not added tokens
        JsonNode end = null;
        for (JsonNode a : tok.get("added_tokens")) if (a.get("content").asText().equals("</s>")) end = a;
        assertNotNull(end);
        assertFalse(end.get("special").asBoolean()); // USER_DEFINED in the GGUF
        assertTrue(end.get("rstrip").asBoolean());   // as llama.cpp treats Phi-3's tokens
        JsonNode config = JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        assertEquals("<|endoftext|>", config.get("eos_token").asText());
        assertEquals("<|endoftext|>", config.get("pad_token").asText());
        assertEquals(meta.get("tokenizer.chat_template").asString(), config.get("chat_template").asText());
        assertEquals(meta.get("tokenizer.chat_template"), TokenizerJson.toMetadata(dir.resolve("tokenizer.json")).get("tokenizer.chat_template"));
    }

    @Test
    void gpt2LayoutIsPlainByteLevel() throws IOException {
        TokenizerJsonWriter.write(VocabFixtures.metadata("gpt-2"), dir);
        JsonNode tok = JSON.readTree(dir.resolve("tokenizer.json").toFile());
        JsonNode pre = tok.get("pre_tokenizer");
        assertEquals("ByteLevel", pre.get("type").asText());
        assertTrue(pre.get("use_regex").asBoolean());
        assertFalse(pre.get("add_prefix_space").asBoolean());
        assertEquals("ByteLevel", tok.get("decoder").get("type").asText());
        assertEquals("ByteLevel", tok.get("post_processor").get("type").asText()); // GPT-2 adds no BOS
        assertEquals("\u0120 t", tok.get("model").get("merges").get(0).asText());
        assertFalse(tok.get("model").get("byte_fallback").asBoolean());
        assertEquals(List.of("<|endoftext|>"), tok.get("added_tokens").findValuesAsText("content"));
        JsonNode config = JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        assertEquals("<|endoftext|>", config.get("bos_token").asText());
        assertFalse(config.get("add_bos_token").asBoolean());
        assertEquals(1024, config.get("model_max_length").asInt());
    }

    @Test
    void splitRegexesThenByteLevelForOtherPreTokenizers() throws IOException {
        TokenizerJsonWriter.write(VocabFixtures.metadata("deepseek-coder"), dir);
        JsonNode tok = JSON.readTree(dir.resolve("tokenizer.json").toFile());
        JsonNode steps = tok.get("pre_tokenizer").get("pretokenizers");
        assertEquals(PreTokenizer.DEEPSEEK_CODER.regexes.size() + 1, steps.size());
        for (int i = 0; i < PreTokenizer.DEEPSEEK_CODER.regexes.size(); i++) {
            assertEquals("Split", steps.get(i).get("type").asText());
            assertEquals("Isolated", steps.get(i).get("behavior").asText());
            assertEquals(PreTokenizer.DEEPSEEK_CODER.regexes.get(i), steps.get(i).get("pattern").get("Regex").asText());
        }
        JsonNode last = steps.get(steps.size() - 1);
        assertEquals("ByteLevel", last.get("type").asText());
        assertFalse(last.get("use_regex").asBoolean());
        // DeepSeek adds BOS: a template, and the special tokens in the config
        assertEquals("<\uff5cbegin\u2581of\u2581sentence\uff5c>", tok.get("post_processor").get("single").get(0).get("SpecialToken").get("id").asText());
        JsonNode config = JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        assertEquals("<\uff5cend\u2581of\u2581sentence\uff5c>", config.get("eos_token").asText());
        assertTrue(config.get("add_bos_token").asBoolean());
        // user-defined tokens are added, not special; 32022.. are padding rows, not added
        assertEquals(32256, tok.get("model").get("vocab").size());
        assertEquals(32022 - 32000, tok.get("added_tokens").size());
        JsonNode hole = null;
        for (JsonNode a : tok.get("added_tokens")) if (a.get("id").asInt() == 32015) hole = a;
        assertEquals("<\uff5cfim\u2581hole\uff5c>", hole.get("content").asText());
        assertFalse(hole.get("special").asBoolean());
    }

    @Test
    void bertLayoutIsWordPiece() throws IOException {
        TokenizerJsonWriter.write(VocabFixtures.metadata("bert-bge"), dir);
        JsonNode tok = JSON.readTree(dir.resolve("tokenizer.json").toFile());
        JsonNode model = tok.get("model");
        assertEquals("WordPiece", model.get("type").asText());
        assertEquals("##", model.get("continuing_subword_prefix").asText());
        assertEquals("[UNK]", model.get("unk_token").asText());
        assertEquals(7592, model.get("vocab").get("hello").asInt());
        assertEquals(List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"), tok.get("added_tokens").findValuesAsText("content"));
        assertEquals("BertNormalizer", tok.get("normalizer").get("type").asText());
        assertTrue(tok.get("normalizer").get("lowercase").asBoolean());
        assertEquals("BertPreTokenizer", tok.get("pre_tokenizer").get("type").asText());
        assertEquals("WordPiece", tok.get("decoder").get("type").asText());
        JsonNode single = tok.get("post_processor").get("single");
        assertEquals("[CLS]", single.get(0).get("SpecialToken").get("id").asText());
        assertEquals("[SEP]", single.get(2).get("SpecialToken").get("id").asText());
        assertEquals(5, tok.get("post_processor").get("pair").size()); // [CLS] $A [SEP] $B [SEP]
        JsonNode config = JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        for (String[] kv : new String[][]{{"cls_token", "[CLS]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"mask_token", "[MASK]"}, {"unk_token", "[UNK]"}}) {
            assertEquals(kv[1], config.get(kv[0]).asText(), kv[0]);
        }
        Tokenizer t = TokenizerJson.load(dir.resolve("tokenizer.json"));
        assertArrayEquals(new int[]{101, 7592, 2088, 102}, t.encode("Hello world", true, false));
    }

    // ---- errors ----

    @Test
    void otherFamiliesAreRefusedByName() {
        Map<String, GgufValue> meta = new HashMap<>(VocabFixtures.metadata("llama-spm"));
        meta.put("tokenizer.ggml.model", GgufValue.string("rwkv"));
        Q4jException e = assertThrows(Q4jException.class, () -> TokenizerJsonWriter.write(meta, dir));
        assertTrue(e.getMessage().contains("'rwkv'") && e.getMessage().contains("llama") && e.getMessage().contains("bert"), e.getMessage());
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer.json").toString()), e.getMessage());
        meta.remove("tokenizer.ggml.model");
        e = assertThrows(Q4jException.class, () -> TokenizerJsonWriter.write(meta, dir));
        assertTrue(e.getMessage().contains("tokenizer.ggml.model is missing"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("tokenizer.json")));
    }

    @Test
    void refusesToOverwriteAnInput() throws IOException {
        Map<String, GgufValue> meta = VocabFixtures.metadata("gpt-2");
        TokenizerJsonWriter.write(meta, dir);
        Path input = dir.resolve("tokenizer.json");
        String before = Files.readString(input);
        Q4jException e = assertThrows(Q4jException.class, () -> TokenizerJsonWriter.write(meta, dir, input));
        assertTrue(e.getMessage().contains("refusing to overwrite"), e.getMessage());
        assertEquals(before, Files.readString(input));
    }

    @Test
    void aMergeThatIsNotTwoTokensIsNamed() {
        Map<String, GgufValue> meta = new HashMap<>(VocabFixtures.metadata("gpt-2"));
        String[] merges = ((String[]) meta.get("tokenizer.ggml.merges").asArray().elements()).clone();
        merges[7] = "qqq zzzz";
        meta.put("tokenizer.ggml.merges", GgufValue.strings(merges));
        Q4jException e = assertThrows(Q4jException.class, () -> TokenizerJsonWriter.build(meta, "out"));
        assertTrue(e.getMessage().contains("tokenizer.ggml.merges[7]") && e.getMessage().contains("qqq zzzz"), e.getMessage());
    }

    // ---- helpers ----

    /**
     * The types that come back: what tokenizer.json can say. llama.cpp's padding rows {@code [PAD<id>]} come back
     * UNUSED whatever their type (phi-3 has them UNKNOWN, deepseek and mpt USER_DEFINED);
     * the unk token is UNKNOWN (phi-3's GGUF has it CONTROL); byte-level added tokens that look special
     * ({@code <|User|>}, {@code <｜fim▁hole｜>}, {@code <pad>}) are CONTROL, as llama.cpp's converter makes them.
     */
    private static int[] expectedTypes(Map<String, GgufValue> meta) {
        String[] tokens = (String[]) meta.get("tokenizer.ggml.tokens").asArray().elements();
        int[] types = ints(meta, "tokenizer.ggml.token_type").clone();
        String model = meta.get("tokenizer.ggml.model").asString();
        GgufValue unk = meta.get("tokenizer.ggml.unknown_token_id");
        for (int id = 0; id < types.length; id++) {
            if (tokens[id].equals("[PAD" + id + "]")) types[id] = TokenType.UNUSED.id;
            if (model.equals("llama") && unk != null && unk.asLong() == id) types[id] = TokenType.UNKNOWN.id;
            if (model.equals("gpt2") && types[id] == TokenType.USER_DEFINED.id && looksSpecial(tokens[id])) types[id] = TokenType.CONTROL.id;
        }
        return types;
    }

    private static boolean looksSpecial(String t) {
        return t.equals("<pad>") || (t.startsWith("<|") && t.endsWith("|>")) || (t.startsWith("<\uff5c") && t.endsWith("\uff5c>"));
    }

    private static int[] ints(Map<String, GgufValue> meta, String key) {
        return (int[]) meta.get(key).asArray().elements();
    }

    private static List<String> texts(String vocab) {
        List<String> texts = new ArrayList<>();
        for (VocabFixtures.Vector v : VocabFixtures.vectors(vocab)) texts.add(v.text());
        return texts;
    }

    private static void assertVectorsPass(String vocab, Tokenizer t) {
        List<String> failures = new ArrayList<>();
        for (VocabFixtures.Vector v : VocabFixtures.vectors(vocab)) {
            int[] ids = t.encode(v.text(), false, false);
            if (!Arrays.equals(v.ids(), ids)) failures.add(v + " '" + v.text() + "': expected " + Arrays.toString(v.ids()) + " got " + Arrays.toString(ids));
        }
        assertEquals(List.of(), failures, vocab);
    }

    /** Same ids with and without special tokens added and parsed, same text back. */
    private static void assertSameTokenizer(Tokenizer expected, Tokenizer actual, List<String> texts) {
        assertEquals(expected.vocabSize(), actual.vocabSize());
        assertEquals(expected.bosId(), actual.bosId());
        assertEquals(expected.eosId(), actual.eosId());
        assertEquals(expected.addsBos(), actual.addsBos());
        for (String text : texts) {
            for (boolean addSpecial : new boolean[]{false, true}) {
                for (boolean parseSpecial : new boolean[]{false, true}) {
                    int[] ids = expected.encode(text, addSpecial, parseSpecial);
                    assertArrayEquals(ids, actual.encode(text, addSpecial, parseSpecial), "'" + text + "' " + addSpecial + " " + parseSpecial);
                    assertEquals(expected.decode(ids), actual.decode(ids), "'" + text + "'");
                }
            }
        }
    }

    /** What llama.cpp reads from the keys beyond tokens/types/merges: the special ids and the flags. */
    private static void assertSameFlags(Map<String, GgufValue> original, Map<String, GgufValue> back) {
        Vocabulary a = Vocabulary.fromMetadata(original, "original"), b = Vocabulary.fromMetadata(back, "back");
        assertArrayEquals(new int[]{a.bos, a.eos, a.unk, a.sep, a.pad, a.mask, a.eot},
                new int[]{b.bos, b.eos, b.unk, b.sep, b.pad, b.mask, b.eot}, "bos eos unk sep pad mask eot");
        assertArrayEquals(new boolean[]{a.addBos, a.addEos, a.addSep, a.addSpacePrefix, a.cleanSpaces, a.ignoreMerges, a.lowercase, a.stripAccents},
                new boolean[]{b.addBos, b.addEos, b.addSep, b.addSpacePrefix, b.cleanSpaces, b.ignoreMerges, b.lowercase, b.stripAccents}, "flags");
        if (a.pre != null) assertEquals(a.pre.regexes, b.pre.regexes);
    }

    private static List<String> fieldNames(JsonNode node) {
        List<String> names = new ArrayList<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }
}
