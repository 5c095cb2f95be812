package org.quant4j.tokenizer;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** add_special / parse_special, pieces and streaming, end of generation, and speed on a large text. */
class TokBehaviourTest {

    @Test
    void addSpecialAddsWhatTheVocabularySays() {
        Tokenizer spm = VocabFixtures.tokenizer("llama-spm");
        assertArrayEquals(new int[]{1, 15043, 3186}, spm.encode("Hello world", true, false));
        assertArrayEquals(new int[]{15043, 3186}, spm.encode("Hello world", false, false));
        assertArrayEquals(new int[]{1}, spm.encode("", true, false));
        Tokenizer gpt2 = VocabFixtures.tokenizer("gpt-2");
        assertArrayEquals(gpt2.encode("Hello world", false, false), gpt2.encode("Hello world", true, false), "gpt-2 adds no BOS");
        Tokenizer deepseek = VocabFixtures.tokenizer("deepseek-coder");
        assertEquals(32013, deepseek.encode("Hello", true, false)[0], "add_bos_token = true");
        Tokenizer bert = VocabFixtures.tokenizer("bert-bge");
        int[] ids = bert.encode("Hello world", true, false);
        assertEquals(101, ids[0]);
        assertEquals(102, ids[ids.length - 1]);
    }

    @Test
    void parseSpecialRecognisesControlTokens() {
        Tokenizer spm = VocabFixtures.tokenizer("llama-spm");
        assertArrayEquals(new int[]{1, 15043, 2}, spm.encode("<s>Hello</s>", false, true));
        int[] literal = spm.encode("<s>Hello</s>", false, false);
        assertTrue(literal.length > 3 && literal[0] != 1, "without parse_special <s> is text");
        Tokenizer gpt2 = VocabFixtures.tokenizer("gpt-2");
        assertArrayEquals(new int[]{15496, 50256}, gpt2.encode("Hello<|endoftext|>", false, true));
        assertEquals("Hello<|endoftext|>", gpt2.decode(new int[]{15496, 50256}, false, true));
        assertEquals("Hello", gpt2.decode(new int[]{15496, 50256}));
    }

    @Test
    void phi3UserDefinedTokensAreSplitAndStripRight() {
        Tokenizer phi3 = VocabFixtures.tokenizer("phi-3");
        int end = -1;
        for (int id = 0; id < phi3.vocabSize(); id++) if (phi3.tokenText(id).equals("<|end|>")) end = id;
        assertTrue(end > 0);
        int[] ids = phi3.encode("Hi<|end|>  there", false, true);
        assertEquals(end, ids[1]);
        assertArrayEquals(phi3.encode("there", false, false), java.util.Arrays.copyOfRange(ids, 2, ids.length),
                "RSTRIP eats the spaces after <|end|>, and the text after a special token gets the space prefix");
        assertTrue(phi3.isEndOfGeneration(end));
    }

    @Test
    void decodeRemovesTheLeadingSpaceOnlyWhereLlamaCppDoes() {
        Tokenizer spm = VocabFixtures.tokenizer("llama-spm");
        int[] ids = spm.encode("Hello world", true, false);
        // llama_detokenize removes the space its tokenizer added only when the first token is not BOS
        assertEquals("Hello world", spm.decode(spm.encode("Hello world", false, false)));
        assertEquals(" Hello world", spm.decode(ids));
        assertEquals(" Hello world", spm.decode(ids, true, false));
        assertEquals("<s> Hello world", spm.decode(ids, false, true));
    }

    @Test
    void byteTokensStreamAsUtf8() {
        Tokenizer spm = VocabFixtures.tokenizer("llama-spm");
        String text = "🦙 and 😶‍🌫️ ok"; // llamas are spelled with <0xF0> <0x9F> <0xA6> <0x99>
        int[] ids = spm.encode(text, false, false);
        StreamingDecoder stream = new StreamingDecoder(spm);
        StringBuilder sb = new StringBuilder();
        List<String> parts = new ArrayList<>();
        for (int id : ids) {
            String part = stream.next(id);
            parts.add(part);
            sb.append(part);
        }
        sb.append(stream.flush());
        assertEquals(" " + text, sb.toString());
        assertFalse(parts.stream().anyMatch(p -> p.contains("\uFFFD")), "no half characters: " + parts);
        assertEquals(1, spm.pieceBytes(spm.encode("🦙", false, false)[1]).length, "a byte token is one byte");
        assertEquals(TokenType.BYTE, spm.tokenType(spm.encode("🦙", false, false)[1]));
        assertEquals("\u2581Hello", spm.tokenText(15043));
        assertEquals(" Hello", spm.piece(15043));
    }

    @Test
    void endOfGeneration() {
        assertTrue(VocabFixtures.tokenizer("llama-spm").isEndOfGeneration(2));
        assertTrue(VocabFixtures.tokenizer("gpt-2").isEndOfGeneration(50256));
        assertTrue(VocabFixtures.tokenizer("deepseek-llm").isEndOfGeneration(100001));
        assertFalse(VocabFixtures.tokenizer("gpt-2").isEndOfGeneration(15496));
        assertEquals(-1, VocabFixtures.tokenizer("bert-bge").eosId());
    }

    @Test
    void loneSurrogatesAreReplaced() {
        Tokenizer gpt2 = VocabFixtures.tokenizer("gpt-2");
        assertArrayEquals(gpt2.encode("a\uFFFDb", false, false), gpt2.encode("a\uD800b", false, false));
    }

    /** About a megabyte of mixed text per tokenizer family; generous bound for a shared 2-core machine. */
    @Test
    void aMegabyteTakesUnderAFewSeconds() {
        StringBuilder sb = new StringBuilder();
        List<VocabFixtures.Vector> vectors = VocabFixtures.vectors("gpt-2");
        while (sb.length() < 1_000_000) for (VocabFixtures.Vector v : vectors) sb.append(v.text()).append(" Once upon a time, there was a little girl. ");
        String text = sb.toString();
        for (String vocab : List.of("llama-spm", "gpt-2", "deepseek-llm", "bert-bge")) {
            Tokenizer t = VocabFixtures.tokenizer(vocab);
            t.encode(text.substring(0, 20_000), false, false); // warm up
            long start = System.nanoTime();
            int[] ids = t.encode(text, false, false);
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("%s: %d chars -> %d tokens in %.3f s%n", vocab, text.length(), ids.length, seconds);
            assertTrue(seconds < 10, vocab + " took " + seconds + " s");
            if (!vocab.equals("bert-bge")) {
                String back = t.decode(ids);
                assertEquals(text.getBytes(StandardCharsets.UTF_8).length > 0, !back.isEmpty());
            }
        }
    }
}
