package org.quant4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Turns generated tokens into text as they come, holding back the bytes of a UTF-8 sequence that byte tokens have
 * only begun (e.g. {@code <0xE2>} before {@code <0x96>} {@code <0x81>}). Not thread-safe: one per generation.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final boolean special;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    /** @param special whether control tokens show their text (llama.cpp's {@code --special}) */
    public StreamingDecoder(Tokenizer tokenizer, boolean special) {
        this.tokenizer = tokenizer;
        this.special = special;
    }

    public StreamingDecoder(Tokenizer tokenizer) { this(tokenizer, false); }

    /** The text that token completes (possibly empty). */
    public String next(int id) {
        pending.writeBytes(tokenizer.pieceBytes(id, special));
        byte[] bytes = pending.toByteArray();
        int complete = completePrefix(bytes);
        pending.reset();
        pending.write(bytes, complete, bytes.length - complete);
        return new String(bytes, 0, complete, StandardCharsets.UTF_8);
    }

    /** Whatever is still held back, decoded with U+FFFD for the incomplete sequence. */
    public String flush() {
        String rest = pending.toString(StandardCharsets.UTF_8);
        pending.reset();
        return rest;
    }

    /** Length of the longest prefix that does not end inside a UTF-8 sequence that could still be completed. */
    static int completePrefix(byte[] b) {
        int n = b.length;
        // look back at most 3 bytes for the start of the last sequence
        for (int back = 1; back <= Math.min(3, n); back++) {
            int c = b[n - back] & 0xFF;
            if ((c & 0xC0) == 0x80) continue; // continuation byte: keep looking
            int need = c >= 0xF0 && c <= 0xF7 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (c >= 0xF8) need = 1; // not a lead byte: nothing to wait for
            return need > back ? n - back : n;
        }
        return n;
    }
}
