package org.quant4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;

/**
 * Byte-level BPE driven by merge ranks ({@code tokenizer.ggml.model = "gpt2"}: GPT-2, Falcon, MPT, StarCoder,
 * DeepSeek, Llama 3, Qwen2, ...), as llama.cpp's {@code llm_tokenizer_bpe_session}.
 *
 * <p>The {@link PreTokenizer} cuts the text into words; each word's UTF-8 bytes are shown as one printable character
 * each (GPT-2's byte map) and then, repeatedly, the adjacent pair with the lowest merge rank is merged (leftmost
 * first on ties). Pieces are compared by interned symbol ids rather than by strings: every vocabulary token keeps
 * its id as its symbol, and every other text a merge rule mentions gets an id above the vocabulary.
 */
final class ByteLevelBpe extends VocabularyTokenizer {
    private final LongIntMap rankOfPair;  // (left symbol, right symbol) → merge rank
    private final int[] mergeResult;      // (n_merges) symbol of the merged text, by rank
    private final int[] byteSymbol;       // (256) symbol of each byte's character, or -1

    ByteLevelBpe(Vocabulary vocab) {
        super(vocab);
        String[] merges = vocab.merges;
        HashMap<String, Integer> extraSymbols = new HashMap<>();
        rankOfPair = new LongIntMap(merges.length);
        mergeResult = new int[merges.length];
        for (int rank = 0; rank < merges.length; rank++) {
            String merge = merges[rank];
            int space = merge.indexOf(' ', 1);
            if (space < 0) continue; // llama.cpp stores ("", ""), which nothing matches
            String first = merge.substring(0, space), second = merge.substring(space + 1);
            int left = intern(first, extraSymbols), right = intern(second, extraSymbols);
            if (rankOfPair.putIfAbsent(pair(left, right), rank)) mergeResult[rank] = intern(first + second, extraSymbols);
        }
        byteSymbol = new int[256];
        for (int b = 0; b < 256; b++) {
            String c = String.valueOf(Unicode.BYTE_TO_CHAR[b]);
            int id = vocab.id(c);
            byteSymbol[b] = id != Vocabulary.NULL ? id : extraSymbols.getOrDefault(c, -1);
        }
    }

    private int intern(String text, HashMap<String, Integer> extraSymbols) {
        int id = vocab.id(text);
        if (id != Vocabulary.NULL) return id;
        return extraSymbols.computeIfAbsent(text, t -> vocab.size() + extraSymbols.size());
    }

    private static long pair(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    @Override
    void encode(List<Vocabulary.Fragment> fragments, boolean addSpecial, IntList out) {
        if (addSpecial && vocab.addBos) out.add(vocab.bos);
        Session session = new Session();
        for (Vocabulary.Fragment fragment : fragments) {
            switch (fragment) {
                case Vocabulary.TextFragment(String text) -> {
                    for (String word : vocab.pre.split(text)) session.tokenizeWord(Unicode.byteEncode(word), out);
                }
                case Vocabulary.TokenFragment(int id) -> out.add(id);
            }
        }
        if (addSpecial && vocab.addEos) out.add(vocab.eos);
    }

    /** Scratch space for merging one word at a time. */
    private final class Session {
        int[] symbol = new int[64], start = new int[64], length = new int[64], prev = new int[64], next = new int[64];
        final MergeQueue queue = new MergeQueue();

        void tokenizeWord(String word, IntList out) {
            if (vocab.ignoreMerges) {
                int id = vocab.id(word);
                if (id != Vocabulary.NULL) {
                    out.add(id);
                    return;
                }
            }
            int n = word.length(); // one char per byte
            if (n > symbol.length) grow(n);
            for (int i = 0; i < n; i++) {
                symbol[i] = byteSymbol[Unicode.byteOfChar(word.charAt(i))];
                start[i] = i;
                length[i] = 1;
                prev[i] = i - 1;
                next[i] = i + 1 < n ? i + 1 : -1;
            }
            queue.clear();
            for (int i = 1; i < n; i++) addBigram(i - 1, i);
            while (!queue.isEmpty()) {
                long priority = queue.pop();
                long queued = queue.poppedPayload(); // the pair's symbols when it was queued
                int rank = (int) (priority >>> 32);
                int left = (int) priority;
                int right = next[left];
                // skip the pair if either side has changed since it was queued
                if (length[left] == 0 || right < 0 || queued != pair(symbol[left], symbol[right])) continue;
                symbol[left] = mergeResult[rank];
                length[left] += length[right];
                length[right] = 0;
                next[left] = next[right];
                if (next[right] >= 0) prev[next[right]] = left;
                addBigram(prev[left], left);
                addBigram(left, next[left]);
            }
            for (int i = 0; i != -1; i = next[i]) {
                int s = symbol[i];
                if (s >= 0 && s < vocab.size()) {
                    out.add(s);
                } else {
                    // not a token: llama.cpp looks up each UTF-8 byte of the piece on its own
                    for (int k = start[i]; k < start[i] + length[i]; k++) {
                        char c = word.charAt(k);
                        if (c < 0x80) {
                            int id = vocab.id(String.valueOf(c));
                            if (id != Vocabulary.NULL) out.add(id);
                        }
                    }
                }
            }
        }

        private void addBigram(int left, int right) {
            if (left == -1 || right == -1 || symbol[left] < 0 || symbol[right] < 0) return;
            int rank = rankOfPair.get(pair(symbol[left], symbol[right]));
            if (rank < 0) return;
            // lowest rank first, then leftmost
            queue.push(((long) rank << 32) | left, pair(symbol[left], symbol[right]));
        }

        private void grow(int n) {
            symbol = new int[n];
            start = new int[n];
            length = new int[n];
            prev = new int[n];
            next = new int[n];
        }
    }

    @Override
    byte[] computePiece(int id) {
        int attr = vocab.attrs[id];
        String text = vocab.tokens[id];
        if ((attr & (Vocabulary.ATTR_UNKNOWN | Vocabulary.ATTR_CONTROL | Vocabulary.ATTR_USER_DEFINED)) != 0) {
            return text.getBytes(StandardCharsets.UTF_8);
        }
        if ((attr & Vocabulary.ATTR_NORMAL) != 0) return byteDecode(text);
        if ((attr & Vocabulary.ATTR_BYTE) != 0) {
            int b = vocab.tokenByte(id);
            return b < 0 ? new byte[0] : new byte[]{(byte) b};
        }
        return new byte[0];
    }

    /**
     * The bytes a byte-level token text stands for (llama.cpp's {@code llama_decode_text}); a character outside
     * GPT-2's byte map is kept as {@code [UNK_BYTE_0x..text]}, as llama.cpp keeps it.
     */
    static byte[] byteDecode(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            int b = Unicode.byteOfChar(cp);
            if (b >= 0) {
                out.write(b);
            } else {
                StringBuilder unk = new StringBuilder("[UNK_BYTE_0x");
                for (byte u : Character.toString(cp).getBytes(StandardCharsets.UTF_8)) unk.append(String.format("%02x", u & 0xFF));
                unk.append(text).append(']');
                out.writeBytes(unk.toString().getBytes(StandardCharsets.UTF_8));
            }
        }
        return out.toByteArray();
    }

}
