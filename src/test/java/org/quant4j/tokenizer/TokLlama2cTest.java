package org.quant4j.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

import static org.junit.jupiter.api.Assertions.*;

/** llama2.c tokenizer.bin: conversion to GGUF metadata as llama.cpp does it, and the ids llama2.c's run.c gives. */
class TokLlama2cTest {
    static final Path TOK512 = Path.of("models/stories260K/tok512.bin");
    static final Path STORIES_GGUF = Path.of("models/stories260K/stories260K-f32.llamacpp.gguf");
    static final Path TOK32K = VocabFixtures.resource("llama2c/tokenizer-32k.bin");

    static final List<String> TEXTS = List.of("Once upon a time", "Once upon a time, there was a little girl named Lily.",
            "Hello world", "  two  spaces ", "line\nbreak", "Tim's dog said: \"42!\"", "", "a");

    @Test
    void tok512MetadataEqualsLlamaCppConversion() {
        Map<String, GgufValue> ours = Llama2cTokenizer.toMetadata(TOK512, 512);
        Map<String, GgufValue> theirs = new TreeMap<>();
        try (GgufFile f = GgufFile.open(STORIES_GGUF)) {
            f.metadata().forEach((k, v) -> { if (k.startsWith("tokenizer.")) theirs.put(k, v); });
        }
        assertEquals(theirs.keySet(), new TreeMap<>(ours).keySet());
        for (String key : theirs.keySet()) assertEquals(theirs.get(key), ours.get(key), key);
        assertEquals(ours, Llama2cTokenizer.toMetadata(TOK512), "reading to the end of the file finds the same 512 tokens");
    }

    @Test
    void onceUponATimeIn32k() {
        Tokenizer t = Llama2cTokenizer.load(TOK32K, 32000);
        assertArrayEquals(new int[]{1, 9038, 2501, 263, 931}, t.encode("Once upon a time", true, false));
        assertEquals("Once upon a time", t.decode(t.encode("Once upon a time", false, false)));
    }

    @Test
    void idsEqualLlama2cRunC() {
        for (Path bin : List.of(TOK512, TOK32K)) {
            List<Llama2cTokenizer.Entry> entries = Llama2cTokenizer.read(bin, -1);
            Tokenizer t = Llama2cTokenizer.load(bin);
            for (String text : TEXTS) {
                int[] expected = runCEncode(entries, text, true, false);
                assertArrayEquals(expected, t.encode(text, true, false), bin.getFileName() + " '" + text + "'");
            }
        }
    }

    @Test
    void stories260kGgufAndTok512GiveTheSameIds() {
        Tokenizer fromBin = Llama2cTokenizer.load(TOK512, 512);
        Tokenizer fromGguf = Tokenizers.fromGguf(STORIES_GGUF);
        for (String text : TEXTS) assertArrayEquals(fromGguf.encode(text), fromBin.encode(text), text);
        assertEquals(1, fromGguf.bosId());
        assertEquals(2, fromGguf.eosId());
        assertTrue(fromGguf.isEndOfGeneration(2));
        assertFalse(fromGguf.isEndOfGeneration(1));
    }

    /**
     * llama2.c's {@code encode} (run.c), written out here as the reference: a dummy-prefix " " token, one token per
     * UTF-8 character (bytes + 3 when a character is not in the vocabulary), then repeatedly merge the adjacent pair
     * whose concatenation is the best-scoring vocabulary entry (the first such pair on ties).
     */
    static int[] runCEncode(List<Llama2cTokenizer.Entry> vocab, String text, boolean bos, boolean eos) {
        Map<String, Integer> lookup = new HashMap<>();
        for (int i = vocab.size() - 1; i >= 0; i--) lookup.put(vocab.get(i).text(), i);
        List<Integer> tokens = new ArrayList<>();
        if (bos) tokens.add(1);
        if (!text.isEmpty()) tokens.add(lookup.get(" "));
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < utf8.length; ) {
            int len = 1;
            while (i + len < utf8.length && (utf8[i + len] & 0xC0) == 0x80 && len < 4) len++;
            String c = new String(utf8, i, len, StandardCharsets.UTF_8);
            Integer id = lookup.get(c);
            if (id != null) tokens.add(id);
            else for (int k = 0; k < len; k++) tokens.add((utf8[i + k] & 0xFF) + 3);
            i += len;
        }
        while (true) {
            float bestScore = -1e10f;
            int bestId = -1, bestIndex = -1;
            for (int i = 0; i < tokens.size() - 1; i++) {
                Integer id = lookup.get(vocab.get(tokens.get(i)).text() + vocab.get(tokens.get(i + 1)).text());
                if (id != null && vocab.get(id).score() > bestScore) {
                    bestScore = vocab.get(id).score();
                    bestId = id;
                    bestIndex = i;
                }
            }
            if (bestIndex == -1) break;
            tokens.set(bestIndex, bestId);
            tokens.remove(bestIndex + 1);
        }
        if (eos) tokens.add(2);
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }

    // ---- malformed files ----

    @Test
    void forgedLengthNamesFileAndOffset(@TempDir Path dir) throws IOException {
        Path bin = dir.resolve("forged.bin");
        ByteBuffer b = ByteBuffer.allocate(4 + 8 + 1 + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(8);
        b.putFloat(0f).putInt(1).put((byte) 'a');
        b.putFloat(0f).putInt(0x7FFFFFF0); // token #1 claims 2 GB
        Files.write(bin, b.array());
        Q4jException e = assertThrows(Q4jException.class, () -> Llama2cTokenizer.toMetadata(bin, 2));
        assertTrue(e.getMessage().contains(bin.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("token #1") && e.getMessage().contains("offset 17"), e.getMessage());
    }

    @Test
    void negativeLengthIsRejected(@TempDir Path dir) throws IOException {
        Path bin = dir.resolve("negative.bin");
        ByteBuffer b = ByteBuffer.allocate(4 + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(8).putFloat(0f).putInt(-5);
        Files.write(bin, b.array());
        Q4jException e = assertThrows(Q4jException.class, () -> Llama2cTokenizer.toMetadata(bin));
        assertTrue(e.getMessage().contains("offset 8"), e.getMessage());
    }

    @Test
    void tooFewTokensIsRejected() {
        Q4jException e = assertThrows(Q4jException.class, () -> Llama2cTokenizer.toMetadata(TOK512, 513));
        assertTrue(e.getMessage().contains("token #512") && e.getMessage().contains("expected 513"), e.getMessage());
    }

    @Test
    void truncatedHeaderAndMissingFile(@TempDir Path dir) throws IOException {
        Path bin = dir.resolve("short.bin");
        Files.write(bin, new byte[]{1, 2});
        assertTrue(assertThrows(Q4jException.class, () -> Llama2cTokenizer.toMetadata(bin)).getMessage().contains("too short"));
        Path missing = dir.resolve("missing.bin");
        assertTrue(assertThrows(Q4jException.class, () -> Llama2cTokenizer.toMetadata(missing)).getMessage().contains("no such file"));
        assertThrows(Q4jException.class, () -> Llama2cTokenizer.toMetadata(TOK512, 0));
    }
}
