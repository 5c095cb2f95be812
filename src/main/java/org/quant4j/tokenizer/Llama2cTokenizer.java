package org.quant4j.tokenizer;

import org.quant4j.io.gguf.GgufValue;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * llama2.c's {@code tokenizer.bin} (Karpathy's {@code run.c}): a little-endian {@code int32 max_token_length}, then
 * per token a {@code float32 score}, an {@code int32 length} and that many bytes of text (spaces as spaces).
 *
 * <p>{@link #toMetadata} gives the GGUF metadata llama.cpp's {@code convert-llama2c-to-ggml} writes for it, key for key
 * and value for value: ids 0, 1, 2 become {@code <unk>} (UNKNOWN), {@code <s>}, {@code </s>} (CONTROL); an empty text
 * is CONTROL; {@code <0xXX>} is BYTE; spaces become U+2581.
 */
public final class Llama2cTokenizer {
    private Llama2cTokenizer() {}

    private static final int UNKNOWN_TOKEN_ID = 0, BOS_TOKEN_ID = 1, EOS_TOKEN_ID = 2;
    private static final long MAX_FILE_SIZE = Integer.MAX_VALUE - 16;

    /** One entry of tokenizer.bin. */
    public record Entry(float score, String text) {}

    /**
     * GGUF tokenizer metadata for the first {@code vocabSize} tokens of a tokenizer.bin (the vocabulary size comes
     * from the model checkpoint's header; the file does not store it).
     */
    public static Map<String, GgufValue> toMetadata(Path tokenizerBin, int vocabSize) {
        if (vocabSize <= 0) throw new Q4jException(tokenizerBin + ": vocabulary size must be positive, got " + vocabSize);
        return metadata(read(tokenizerBin, vocabSize));
    }

    /** GGUF tokenizer metadata for every token in a tokenizer.bin (read to the end of the file). */
    public static Map<String, GgufValue> toMetadata(Path tokenizerBin) {
        return metadata(read(tokenizerBin, -1));
    }

    /** The tokenizer of a tokenizer.bin, as llama.cpp would run it after conversion. */
    public static Tokenizer load(Path tokenizerBin, int vocabSize) {
        return Tokenizers.fromMetadata(toMetadata(tokenizerBin, vocabSize), tokenizerBin.toString());
    }

    /** The tokenizer of a tokenizer.bin, all of its entries. */
    public static Tokenizer load(Path tokenizerBin) {
        return Tokenizers.fromMetadata(toMetadata(tokenizerBin), tokenizerBin.toString());
    }

    /**
     * The raw entries of a tokenizer.bin; {@code vocabSize} &lt; 0 reads to the end of the file. Every length is
     * checked against the bytes left before anything is allocated.
     */
    public static List<Entry> read(Path file, int vocabSize) {
        byte[] bytes;
        try {
            long size = Files.size(file);
            if (size > MAX_FILE_SIZE) throw new Q4jException(file + ": " + size + " bytes is too large for a tokenizer.bin");
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new Q4jException(file + ": no such file");
        } catch (IOException e) {
            throw new Q4jException(file + ": cannot read: " + e.getMessage(), e);
        }
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (in.remaining() < 4) throw new Q4jException(file + ": " + bytes.length + " bytes is too short for a tokenizer.bin header (4 bytes)");
        int maxTokenLength = in.getInt();
        if (maxTokenLength < 0) throw new Q4jException(file + ": max_token_length " + maxTokenLength + " at offset 0 is negative");
        var decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
        List<Entry> entries = new ArrayList<>(vocabSize > 0 ? Math.min(vocabSize, bytes.length / 8) : 1024);
        for (int i = 0; vocabSize < 0 ? in.hasRemaining() : i < vocabSize; i++) {
            int at = in.position();
            if (in.remaining() < 8) {
                throw new Q4jException(file + ": token #" + i + " at offset " + at + " runs past the end of the file ("
                        + bytes.length + " bytes)" + (vocabSize > 0 ? "; expected " + vocabSize + " tokens" : ""));
            }
            float score = in.getFloat();
            int length = in.getInt();
            if (length < 0 || length > in.remaining()) {
                throw new Q4jException(file + ": token #" + i + ": length " + Integer.toUnsignedString(length) + " at offset " + (at + 4)
                        + " runs past the end of the file (" + in.remaining() + " bytes left)");
            }
            ByteBuffer text = in.slice(in.position(), length);
            in.position(in.position() + length);
            try {
                entries.add(new Entry(score, decoder.decode(text).toString()));
            } catch (java.nio.charset.CharacterCodingException e) {
                throw new Q4jException(file + ": token #" + i + " at offset " + at + ": " + e.getMessage(), e);
            }
        }
        return entries;
    }

    /** The metadata convert-llama2c-to-ggml writes for these entries. */
    static Map<String, GgufValue> metadata(List<Entry> entries) {
        int n = entries.size();
        String[] tokens = new String[n];
        float[] scores = new float[n];
        int[] types = new int[n];
        for (int id = 0; id < n; id++) {
            String text = entries.get(id).text();
            TokenType type;
            if (id == UNKNOWN_TOKEN_ID) {
                text = "<unk>";
                type = TokenType.UNKNOWN;
            } else if (id == BOS_TOKEN_ID) {
                text = "<s>";
                type = TokenType.CONTROL;
            } else if (id == EOS_TOKEN_ID) {
                text = "</s>";
                type = TokenType.CONTROL;
            } else if (text.isEmpty()) {
                type = TokenType.CONTROL;
            } else if (looksLikeByte(text)) {
                type = TokenType.BYTE;
            } else {
                type = TokenType.NORMAL;
            }
            tokens[id] = text.replace(' ', '\u2581');
            scores[id] = entries.get(id).score();
            types[id] = type.id;
        }
        Map<String, GgufValue> meta = new LinkedHashMap<>();
        meta.put("tokenizer.ggml.tokens", GgufValue.strings(tokens));
        meta.put("tokenizer.ggml.scores", GgufValue.floats(scores));
        meta.put("tokenizer.ggml.token_type", GgufValue.i32s(types));
        meta.put("tokenizer.ggml.model", GgufValue.string("llama"));
        meta.put("tokenizer.ggml.unknown_token_id", GgufValue.u32(UNKNOWN_TOKEN_ID));
        meta.put("tokenizer.ggml.bos_token_id", GgufValue.u32(BOS_TOKEN_ID));
        meta.put("tokenizer.ggml.eos_token_id", GgufValue.u32(EOS_TOKEN_ID));
        meta.put("tokenizer.ggml.seperator_token_id", GgufValue.u32(-1)); // LLAMA_TOKEN_NULL, as the converter writes it
        meta.put("tokenizer.ggml.padding_token_id", GgufValue.u32(-1));
        return meta;
    }

    /** The converter's {@code sscanf(text, "<0x%02hhX>", &byte) == 1}: "<0x" followed by a hex digit. */
    private static boolean looksLikeByte(String text) {
        return text.length() > 3 && text.startsWith("<0x") && Character.digit(text.charAt(3), 16) >= 0;
    }
}
