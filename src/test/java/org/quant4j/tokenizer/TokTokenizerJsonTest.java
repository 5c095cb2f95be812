package org.quant4j.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

import static org.junit.jupiter.api.Assertions.*;

/**
 * tokenizer.json conversion: each test writes a Hugging Face tokenizer.json from one of llama.cpp's GGUF vocabularies
 * (the inverse of convert_hf_to_gguf), converts it back and runs llama.cpp's vectors on the result.
 */
class TokTokenizerJsonTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path dir;

    // ---- byte-level BPE ----

    @Test
    void gpt2RecognisedFromByteLevelPreTokenizer() throws IOException {
        ObjectNode json = byteLevelJson("gpt-2", false);
        json.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", true);
        Path file = write(json);
        Map<String, GgufValue> meta = TokenizerJson.toMetadata(file);
        assertEquals("gpt-2", meta.get("tokenizer.ggml.pre").asString());
        Map<String, GgufValue> gguf = VocabFixtures.metadata("gpt-2");
        for (String key : List.of("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id")) {
            assertEquals(gguf.get(key), meta.get(key), key);
        }
        assertVectorsPass("gpt-2", Tokenizers.fromMetadata(meta, file.toString()));
    }

    @Test
    void starcoderRecognisedFromDigitsAndByteLevel() throws IOException {
        ObjectNode json = byteLevelJson("starcoder", true);
        ObjectNode seq = json.putObject("pre_tokenizer").put("type", "Sequence");
        ArrayNode steps = seq.putArray("pretokenizers");
        steps.addObject().put("type", "Digits").put("individual_digits", true);
        steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", true);
        Path file = write(json);
        assertEquals("starcoder", TokenizerJson.toMetadata(file).get("tokenizer.ggml.pre").asString());
        assertVectorsPass("starcoder", TokenizerJson.load(file));
    }

    @Test
    void deepseekWithExplicitPreTokenizerAndPairMerges() throws IOException {
        for (String vocab : List.of("deepseek-coder", "deepseek-llm", "falcon", "mpt", "refact")) {
            ObjectNode json = byteLevelJson(vocab, true);
            json.putObject("decoder").put("type", "ByteLevel");
            Path file = write(json);
            String pre = VocabFixtures.metadata(vocab).get("tokenizer.ggml.pre").asString();
            assertVectorsPass(vocab, TokenizerJson.load(file, pre));
        }
    }

    @Test
    void llama3SplitRegexIsRecognised() throws IOException {
        ObjectNode json = byteLevelJson("gpt-2", false);
        ArrayNode steps = json.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
        steps.addObject().put("type", "Split").put("behavior", "Isolated").put("invert", false)
                .putObject("pattern").put("Regex", RegexSplitter.LLAMA3);
        steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", false);
        assertEquals("llama3", TokenizerJson.toMetadata(write(json)).get("tokenizer.ggml.pre").asString());
    }

    @Test
    void unrecognisedPreTokenizerAsksForAName() throws IOException {
        ObjectNode json = byteLevelJson("gpt-2", false);
        ArrayNode steps = json.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
        steps.addObject().put("type", "Split").putObject("pattern").put("Regex", "\\w+");
        steps.addObject().put("type", "ByteLevel").put("use_regex", false);
        Path file = write(json);
        Q4jException e = assertThrows(Q4jException.class, () -> TokenizerJson.toMetadata(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("name it explicitly"), e.getMessage());
        assertEquals("gpt-2", TokenizerJson.toMetadata(file, "gpt-2").get("tokenizer.ggml.pre").asString());
        assertThrows(Q4jException.class, () -> TokenizerJson.toMetadata(file, "no-such-pre"));
    }

    /** A byte-level BPE tokenizer.json with the GGUF's vocab, merges and control tokens as added tokens. */
    private static ObjectNode byteLevelJson(String vocab, boolean pairMerges) {
        Map<String, GgufValue> meta = VocabFixtures.metadata(vocab);
        String[] tokens = (String[]) meta.get("tokenizer.ggml.tokens").asArray().elements();
        int[] types = (int[]) meta.get("tokenizer.ggml.token_type").asArray().elements();
        String[] merges = (String[]) meta.get("tokenizer.ggml.merges").asArray().elements();
        ObjectNode json = JSON.createObjectNode();
        ObjectNode model = json.putObject("model").put("type", "BPE");
        ObjectNode v = model.putObject("vocab");
        for (int i = 0; i < tokens.length; i++) v.put(tokens[i], i);
        ArrayNode m = model.putArray("merges");
        for (String merge : merges) {
            if (pairMerges) {
                int space = merge.indexOf(' ', 1);
                m.addArray().add(merge.substring(0, space)).add(merge.substring(space + 1));
            } else {
                m.add(merge);
            }
        }
        ArrayNode added = json.putArray("added_tokens");
        for (int i = 0; i < tokens.length; i++) {
            if (types[i] == TokenType.CONTROL.id) added.addObject().put("id", i).put("content", tokens[i]).put("special", true);
            if (types[i] == TokenType.USER_DEFINED.id) added.addObject().put("id", i).put("content", tokens[i]).put("special", false);
        }
        return json;
    }

    // ---- SentencePiece-style BPE ----

    @Test
    void llamaSpmFromTokenizerJson() throws IOException {
        Path file = write(sentencePieceJson("llama-spm"));
        Map<String, GgufValue> meta = TokenizerJson.toMetadata(file);
        assertEquals("llama", meta.get("tokenizer.ggml.model").asString());
        assertEquals(VocabFixtures.metadata("llama-spm").get("tokenizer.ggml.tokens"), meta.get("tokenizer.ggml.tokens"));
        assertEquals(VocabFixtures.metadata("llama-spm").get("tokenizer.ggml.token_type"), meta.get("tokenizer.ggml.token_type"));
        Tokenizer t = Tokenizers.fromMetadata(meta, file.toString());
        assertVectorsPass("llama-spm", t);
        assertArrayEquals(new int[]{1, 15043, 3186}, t.encode("Hello world"));
    }

    /**
     * A Llama-style tokenizer.json from an SPM GGUF, built by hand: merges as transformers' SentencePieceExtractor makes
     * them ({@link TokenizerJsonWriter#sentencePieceMerges}), byte_fallback, Prepend + Replace.
     */
    private static ObjectNode sentencePieceJson(String vocab) {
        Map<String, GgufValue> meta = VocabFixtures.metadata(vocab);
        String[] tokens = (String[]) meta.get("tokenizer.ggml.tokens").asArray().elements();
        float[] scores = (float[]) meta.get("tokenizer.ggml.scores").asArray().elements();
        int[] types = (int[]) meta.get("tokenizer.ggml.token_type").asArray().elements();
        Map<String, Integer> ids = new HashMap<>();
        TokenType[] tokenTypes = new TokenType[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            ids.put(tokens[i], i);
            tokenTypes[i] = TokenType.of(types[i]);
        }
        List<String[]> merges = TokenizerJsonWriter.sentencePieceMerges(tokens, scores, tokenTypes, ids);
        ObjectNode json = JSON.createObjectNode();
        ObjectNode model = json.putObject("model").put("type", "BPE").put("byte_fallback", true).put("unk_token", "<unk>");
        ObjectNode v = model.putObject("vocab");
        for (int i = 0; i < tokens.length; i++) v.put(tokens[i], i);
        ArrayNode m = model.putArray("merges");
        for (String[] x : merges) m.add(x[0] + " " + x[1]);
        ArrayNode added = json.putArray("added_tokens");
        for (int i = 0; i < tokens.length; i++) {
            if (types[i] == TokenType.CONTROL.id || types[i] == TokenType.UNKNOWN.id) {
                added.addObject().put("id", i).put("content", tokens[i]).put("special", true);
            }
        }
        ArrayNode normalizers = json.putObject("normalizer").put("type", "Sequence").putArray("normalizers");
        normalizers.addObject().put("type", "Prepend").put("prepend", "\u2581");
        normalizers.addObject().put("type", "Replace").putObject("pattern").put("String", " ");
        ObjectNode post = json.putObject("post_processor").put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        json.putObject("decoder").put("type", "Sequence");
        return json;
    }

    // ---- WordPiece ----

    @Test
    void bertFromTokenizerJson() throws IOException {
        Map<String, GgufValue> meta = VocabFixtures.metadata("bert-bge");
        String[] tokens = (String[]) meta.get("tokenizer.ggml.tokens").asArray().elements();
        int[] types = (int[]) meta.get("tokenizer.ggml.token_type").asArray().elements();
        ObjectNode json = JSON.createObjectNode();
        ObjectNode model = json.putObject("model").put("type", "WordPiece").put("unk_token", "[UNK]").put("continuing_subword_prefix", "##");
        ObjectNode v = model.putObject("vocab");
        for (int i = 0; i < tokens.length; i++) {
            String t = tokens[i];
            String hf = t.startsWith("[") && t.endsWith("]") ? t : t.startsWith("\u2581") ? t.substring(1) : "##" + t;
            v.put(hf, i);
        }
        ArrayNode added = json.putArray("added_tokens");
        for (int i = 0; i < tokens.length; i++) {
            if (types[i] == TokenType.CONTROL.id) added.addObject().put("id", i).put("content", tokens[i]).put("special", true);
        }
        json.putObject("normalizer").put("type", "BertNormalizer").put("lowercase", true).putNull("strip_accents");
        ObjectNode post = json.putObject("post_processor").put("type", "BertProcessing");
        post.putArray("sep").add("[SEP]").add(102);
        post.putArray("cls").add("[CLS]").add(101);
        Path file = write(json);
        Map<String, GgufValue> ours = TokenizerJson.toMetadata(file);
        assertEquals(meta.get("tokenizer.ggml.tokens"), ours.get("tokenizer.ggml.tokens"));
        Tokenizer t = Tokenizers.fromMetadata(ours, file.toString());
        assertVectorsPass("bert-bge", t);
        assertArrayEquals(new int[]{101, 7592, 2088, 102}, t.encode("Hello world", true, false));
    }

    // ---- errors ----

    @Test
    void malformedFilesGiveClearErrors() throws IOException {
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"model\": {\"type\": \"BPE\", ");
        Q4jException e = assertThrows(Q4jException.class, () -> TokenizerJson.toMetadata(bad));
        assertTrue(e.getMessage().startsWith(bad.toString()) && e.getMessage().contains("not valid JSON"), e.getMessage());

        Path unigram = dir.resolve("unigram.json");
        Files.writeString(unigram, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
        e = assertThrows(Q4jException.class, () -> TokenizerJson.toMetadata(unigram));
        assertTrue(e.getMessage().contains("Unigram") && e.getMessage().contains("not supported"), e.getMessage());

        Path badId = dir.resolve("badid.json");
        Files.writeString(badId, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}, \"decoder\": {\"type\": \"ByteLevel\"}}");
        e = assertThrows(Q4jException.class, () -> TokenizerJson.toMetadata(badId, "gpt-2"));
        assertTrue(e.getMessage().contains("model.vocab['a']"), e.getMessage());

        Path missing = dir.resolve("missing.json");
        assertTrue(assertThrows(Q4jException.class, () -> TokenizerJson.toMetadata(missing)).getMessage().contains("no such file"));
    }

    // ---- helpers ----

    private Path write(ObjectNode json) throws IOException {
        Path file = Files.createTempFile(dir, "tokenizer", ".json");
        JSON.writeValue(file.toFile(), json);
        return file;
    }

    private static void assertVectorsPass(String vocab, Tokenizer t) {
        int passed = 0;
        List<String> failures = new ArrayList<>();
        for (VocabFixtures.Vector v : VocabFixtures.vectors(vocab)) {
            int[] ids = t.encode(v.text(), false, false);
            if (Arrays.equals(v.ids(), ids)) passed++;
            else failures.add(v + " '" + v.text() + "': expected " + Arrays.toString(v.ids()) + " got " + Arrays.toString(ids));
        }
        assertEquals(46, passed, vocab + ": " + failures);
    }
}
