package org.quant4j.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * SentencePiece BPE driven by token scores ({@code tokenizer.ggml.model = "llama"}: Llama 1/2, Mistral, Phi-3,
 * TinyLlama, llama2.c models), as llama.cpp's {@code llm_tokenizer_spm_session}.
 *
 * <p>Spaces become U+2581 and a space is put in front of the text (and after every special token) when the
 * vocabulary asks for it ({@code add_space_prefix}). The text is split into code points; then, repeatedly, the
 * adjacent pair whose concatenation is the highest-scoring token is merged (leftmost first on ties). A final piece
 * that is not a token is spelled with byte tokens {@code <0xXX>}.
 */
final class SentencePieceBpe extends VocabularyTokenizer {

    SentencePieceBpe(Vocabulary vocab) { super(vocab); }

    @Override
    void encode(List<Vocabulary.Fragment> fragments, boolean addSpecial, IntList out) {
        boolean previousIsSpecial = true; // the first fragment gets the space prefix
        if (addSpecial && vocab.addBos) out.add(vocab.bos);
        for (Vocabulary.Fragment fragment : fragments) {
            switch (fragment) {
                case Vocabulary.TextFragment(String text) -> {
                    String prefixed = vocab.addSpacePrefix && previousIsSpecial ? " " + text : text;
                    tokenize(prefixed.replace(' ', '\u2581'), out);
                    previousIsSpecial = false;
                }
                case Vocabulary.TokenFragment(int id) -> {
                    out.add(id);
                    previousIsSpecial = true;
                }
            }
        }
        if (addSpecial && vocab.addEos) out.add(vocab.eos);
    }

    /** Merges the code points of {@code text} by score and appends the resulting ids. */
    private void tokenize(String text, IntList out) {
        int n = text.codePointCount(0, text.length());
        if (n == 0) return;
        // the symbols: a doubly linked list over the text, one code point each at first
        int[] start = new int[n];  // (n) char offset of symbol i
        int[] length = new int[n]; // (n) chars; 0 once merged into its left neighbour
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0, offset = 0; i < n; i++) {
            start[i] = offset;
            length[i] = Character.charCount(text.codePointAt(offset));
            offset += length[i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }

        MergeQueue queue = new MergeQueue();
        for (int i = 1; i < n; i++) tryAddBigram(text, start, length, i - 1, i, queue);
        while (!queue.isEmpty()) {
            long priority = queue.pop();
            long payload = queue.poppedPayload();
            int left = (int) priority;
            int right = (int) (payload >>> 32);
            int size = (int) payload;
            // skip the pair if either side has changed since it was queued
            if (length[left] == 0 || length[right] == 0 || length[left] + length[right] != size) continue;
            length[left] += length[right];
            length[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            tryAddBigram(text, start, length, prev[left], left, queue);
            tryAddBigram(text, start, length, left, next[left], queue);
        }

        for (int i = 0; i != -1; i = next[i]) {
            String piece = text.substring(start[i], start[i] + length[i]);
            int id = vocab.id(piece);
            if (id != Vocabulary.NULL) {
                out.add(id);
            } else {
                for (byte b : piece.getBytes(StandardCharsets.UTF_8)) out.add(vocab.byteToken(b & 0xFF));
            }
        }
    }

    private void tryAddBigram(String text, int[] start, int[] length, int left, int right, MergeQueue queue) {
        if (left == -1 || right == -1) return;
        int size = length[left] + length[right];
        int id = vocab.id(text.substring(start[left], start[left] + size));
        if (id == Vocabulary.NULL) return;
        // highest score first, then leftmost: smaller priority pops first
        long priority = ((long) ~sortable(vocab.scores[id]) << 32) | left;
        queue.push(priority, ((long) right << 32) | size);
    }

    /** An int with the order of the float (-0 equal to +0). */
    private static int sortable(float f) {
        int bits = Float.floatToIntBits(f == 0f ? 0f : f);
        return bits ^ ((bits >> 31) & 0x7FFFFFFF);
    }

    @Override
    byte[] computePiece(int id) {
        int attr = vocab.attrs[id];
        if ((attr & (Vocabulary.ATTR_UNKNOWN | Vocabulary.ATTR_CONTROL | Vocabulary.ATTR_USER_DEFINED)) != 0) {
            return vocab.tokens[id].getBytes(StandardCharsets.UTF_8);
        }
        if ((attr & Vocabulary.ATTR_NORMAL) != 0) return unescapeWhitespace(vocab.tokens[id]);
        if ((attr & Vocabulary.ATTR_BYTE) != 0) {
            int b = vocab.tokenByte(id);
            return b < 0 ? new byte[0] : new byte[]{(byte) b};
        }
        return new byte[0]; // unused / undefined tokens
    }
}
