package org.quant4j.tokenizer;

import org.quant4j.util.Q4jException;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * What the three tokenizer families share: special-token splitting before encoding, and llama.cpp's detokenizer
 * (pieces → bytes → optional space clean-up → UTF-8). Each family supplies how a text fragment becomes ids and what
 * bytes a token stands for.
 */
abstract sealed class VocabularyTokenizer implements Tokenizer permits SentencePieceBpe, ByteLevelBpe, WordPiece {
    final Vocabulary vocab;
    /** {@code pieces[id]}: the bytes of token id, as llama.cpp's token-to-piece cache (special tokens included). */
    private final byte[][] pieces;

    VocabularyTokenizer(Vocabulary vocab) {
        this.vocab = vocab;
        this.pieces = new byte[vocab.size()][];
        for (int id = 0; id < pieces.length; id++) pieces[id] = computePiece(id);
    }

    /** Appends the ids of one fragment list, with BOS/EOS as this family adds them. */
    abstract void encode(List<Vocabulary.Fragment> fragments, boolean addSpecial, IntList out);

    /** The bytes of a token when special tokens are shown (llama.cpp's {@code token_to_piece(id, special=true)}). */
    abstract byte[] computePiece(int id);

    @Override
    public final int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        String clean = Unicode.sanitize(text);
        List<Vocabulary.Fragment> fragments = vocab.partition(clean, parseSpecial);
        IntList out = new IntList(clean.length() / 3 + 4);
        encode(fragments, addSpecial, out);
        return out.toArray();
    }

    @Override
    public final byte[] pieceBytes(int id, boolean special) {
        checkId(id);
        if (!special && (vocab.attrs[id] & (Vocabulary.ATTR_UNKNOWN | Vocabulary.ATTR_CONTROL)) != 0) return new byte[0];
        return pieces[id].clone();
    }

    @Override
    public final String decode(int[] ids, boolean removeSpecial, boolean unparseSpecial) {
        int from = 0, to = ids.length;
        boolean removeSpace = vocab.addSpacePrefix;
        if (removeSpecial && vocab.addBos && to > 0 && ids[0] == vocab.bos) {
            removeSpace = false;
            from++;
        }
        if (removeSpecial && vocab.addEos && to > from && ids[to - 1] == vocab.eos) to--;

        byte[] text = new byte[64];
        int total = 0;
        for (int i = from; i < to; i++) {
            int id = ids[i];
            checkId(id);
            boolean hidden = !unparseSpecial && (vocab.attrs[id] & (Vocabulary.ATTR_UNKNOWN | Vocabulary.ATTR_CONTROL)) != 0;
            byte[] piece = hidden ? new byte[0] : pieces[id];
            int skip = removeSpace && piece.length > 0 && piece[0] == ' ' ? 1 : 0;
            removeSpace = false;
            if (total + piece.length > text.length) text = Arrays.copyOf(text, Math.max(text.length * 2, total + piece.length));
            System.arraycopy(piece, skip, text, total, piece.length - skip);
            total += piece.length - skip;
        }
        if (vocab.cleanSpaces) total = cleanSpaces(text, total);
        return new String(text, 0, total, StandardCharsets.UTF_8);
    }

    /**
     * llama.cpp's clean_up_tokenization_spaces, three passes over the bytes: drop the space before {@code ? ! . ,},
     * drop both spaces around a lone apostrophe, and drop the space before {@code 's 'm 're 've}.
     */
    static int cleanSpaces(byte[] text, int total) {
        int total1 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total1; i++) {
            byte x = text[i];
            if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
            text[total++] = x;
        }

        int total2 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total2; i++) {
            byte x = text[i];
            if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
                total--;
                text[++i] = 0;
            }
            text[total++] = x;
        }

        int total3 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total3; i++) {
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
                byte x1 = text[i + 1];
                if (x1 == 's' || x1 == 'm') {
                    total--;
                } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                    byte x2 = text[i + 2];
                    if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
                }
            }
            text[total++] = x;
        }
        return total;
    }

    /** A token text with U+2581 (SentencePiece's space) shown as a space, as UTF-8. */
    static byte[] unescapeWhitespace(String text) {
        return text.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
    }

    @Override public final String tokenText(int id) {
        checkId(id);
        return vocab.tokens[id];
    }

    @Override public final TokenType tokenType(int id) {
        checkId(id);
        int a = vocab.attrs[id];
        if ((a & Vocabulary.ATTR_BYTE) != 0) return TokenType.BYTE;
        if ((a & Vocabulary.ATTR_UNKNOWN) != 0) return TokenType.UNKNOWN;
        if ((a & Vocabulary.ATTR_CONTROL) != 0) return TokenType.CONTROL;
        if ((a & Vocabulary.ATTR_USER_DEFINED) != 0) return TokenType.USER_DEFINED;
        if ((a & Vocabulary.ATTR_UNUSED) != 0) return TokenType.UNUSED;
        if ((a & Vocabulary.ATTR_NORMAL) != 0) return TokenType.NORMAL;
        return TokenType.UNDEFINED;
    }

    @Override public final int vocabSize() { return vocab.size(); }

    @Override public final int bosId() { return vocab.bos; }

    @Override public final int eosId() { return vocab.eos; }

    @Override public final boolean isEndOfGeneration(int id) { return id >= 0 && vocab.endOfGeneration.get(id); }

    @Override public final boolean addsBos() { return vocab.addBos; }

    private void checkId(int id) {
        if (id < 0 || id >= pieces.length) {
            throw new Q4jException(vocab.source + ": token id " + id + " is outside the vocabulary (0.." + (pieces.length - 1) + ")");
        }
    }

    @Override public String toString() {
        return getClass().getSimpleName() + "[" + vocab.source + ", " + vocab.size() + " tokens]";
    }
}
