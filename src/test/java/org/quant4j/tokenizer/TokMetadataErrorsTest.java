package org.quant4j.tokenizer;

import org.junit.jupiter.api.Test;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.util.Q4jException;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

/** Bad tokenizer metadata gives a Q4jException that says what is wrong and where. */
class TokMetadataErrorsTest {

    private static Map<String, GgufValue> llama() {
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("tokenizer.ggml.model", GgufValue.string("llama"));
        m.put("tokenizer.ggml.tokens", GgufValue.strings(new String[]{"<unk>", "<s>", "</s>", "\u2581a", "a"}));
        m.put("tokenizer.ggml.scores", GgufValue.floats(new float[]{0, 0, 0, -1, -2}));
        m.put("tokenizer.ggml.token_type", GgufValue.i32s(new int[]{2, 3, 3, 1, 1}));
        return m;
    }

    private static String error(Consumer<Map<String, GgufValue>> change) {
        Map<String, GgufValue> m = llama();
        change.accept(m);
        Q4jException e = assertThrows(Q4jException.class, () -> Tokenizers.fromMetadata(m, "model.gguf"));
        assertTrue(e.getMessage().startsWith("model.gguf: "), e.getMessage());
        return e.getMessage();
    }

    @Test
    void validMetadataLoads() {
        Tokenizer t = Tokenizers.fromMetadata(llama(), "model.gguf");
        assertArrayEquals(new int[]{1, 3, 3}, t.encode("a a"));
        assertEquals("a a", t.decode(new int[]{3, 3}));
        assertEquals(" a a", t.decode(new int[]{1, 3, 3}), "as llama.cpp: a leading BOS uses up the space removal");
    }

    @Test
    void inconsistentArrays() {
        assertTrue(error(m -> m.put("tokenizer.ggml.scores", GgufValue.floats(new float[]{0, 0}))).contains("tokenizer.ggml.scores has 2 entries but tokenizer.ggml.tokens has 5"));
        assertTrue(error(m -> m.put("tokenizer.ggml.token_type", GgufValue.i32s(new int[]{1, 1, 1, 1, 1, 1}))).contains("token_type has 6 entries"));
        assertTrue(error(m -> m.put("tokenizer.ggml.scores", GgufValue.strings(new String[]{"x"}))).contains("FLOAT32 or INT32"));
        assertTrue(error(m -> m.put("tokenizer.ggml.tokens", GgufValue.strings(new String[]{"<unk>", "<s>", "</s>", "a", "a"}))).contains("duplicate token in tokenizer.ggml.tokens: 'a' has ids 3 and 4"));
        assertTrue(error(m -> m.put("tokenizer.ggml.tokens", GgufValue.strings(new String[0]))).contains("empty"));
        assertTrue(error(m -> m.put("tokenizer.ggml.tokens", GgufValue.string("abc"))).contains("must be an ARRAY"));
    }

    @Test
    void unsupportedOrMissingKinds() {
        assertTrue(error(m -> m.remove("tokenizer.ggml.model")).contains("missing tokenizer.ggml.model"));
        assertTrue(error(m -> m.put("tokenizer.ggml.model", GgufValue.string("t5"))).contains("'t5' is not supported (supported: llama, gpt2, bert)"));
        assertTrue(error(m -> m.remove("tokenizer.ggml.tokens")).contains("missing tokenizer.ggml.tokens"));
        assertTrue(error(m -> m.put("tokenizer.ggml.model", GgufValue.string("gpt2"))).contains("missing tokenizer.ggml.merges"));
        assertTrue(error(m -> {
            m.put("tokenizer.ggml.model", GgufValue.string("gpt2"));
            m.put("tokenizer.ggml.merges", GgufValue.strings(new String[0]));
            m.put("tokenizer.ggml.pre", GgufValue.string("klingon"));
        }).contains("'klingon' is not a supported pre-tokenizer"));
    }

    @Test
    void addBosWithoutBos() {
        // a stored id outside the vocabulary keeps the default, and a default outside it means none
        assertTrue(error(m -> {
            m.put("tokenizer.ggml.tokens", GgufValue.strings(new String[]{"<unk>"}));
            m.put("tokenizer.ggml.scores", GgufValue.floats(new float[]{0}));
            m.put("tokenizer.ggml.token_type", GgufValue.i32s(new int[]{2}));
            m.put("tokenizer.ggml.bos_token_id", GgufValue.u32(7));
        }).contains("add_bos_token is true, but tokenizer.ggml.bos_token_id is not set"));
    }

    @Test
    void idsOutsideTheVocabulary() {
        Tokenizer t = Tokenizers.fromMetadata(llama(), "model.gguf");
        Q4jException e = assertThrows(Q4jException.class, () -> t.decode(new int[]{3, 99}));
        assertTrue(e.getMessage().contains("token id 99 is outside the vocabulary (0..4)"), e.getMessage());
        assertThrows(Q4jException.class, () -> t.pieceBytes(-1));
    }
}
