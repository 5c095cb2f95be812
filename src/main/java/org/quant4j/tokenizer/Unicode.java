package org.quant4j.tokenizer;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer;

/**
 * The Unicode facts llama.cpp's tokenizers use (its {@code unicode.cpp}): one category per code point as a flag,
 * the White_Space set, lower-casing, the first code point of NFD, and GPT-2's byte ⇄ printable-character map.
 *
 * <p>llama.cpp generates its tables with Python's {@code regex} module ({@code \p{N}}, {@code \p{L}}, ... and
 * {@code \s} = White_Space); here the same categories come from {@link Character#getType(int)}. The two can differ
 * only for code points assigned between the Unicode versions of the two runtimes.
 */
final class Unicode {
    private Unicode() {}

    // one flag per general category group, as llama.cpp's unicode_cpt_flags
    static final int NUMBER = 1 << 1;       // \p{N}
    static final int LETTER = 1 << 2;       // \p{L}
    static final int SEPARATOR = 1 << 3;    // \p{Z}
    static final int ACCENT_MARK = 1 << 4;  // \p{M}
    static final int PUNCTUATION = 1 << 5;  // \p{P}
    static final int SYMBOL = 1 << 6;       // \p{S}
    static final int CONTROL = 1 << 7;      // \p{C}: Cc, Cf, Cs, Co, Cn
    static final int CATEGORIES = 0xFF;
    static final int WHITESPACE = 1 << 8;   // \s: the White_Space property

    /** Flags of a position outside the text (llama.cpp's OUT_OF_RANGE): no category at all. */
    static final int NONE = 0;

    static int flags(int cp) {
        int category = switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
            case Character.NON_SPACING_MARK, Character.ENCLOSING_MARK, Character.COMBINING_SPACING_MARK -> ACCENT_MARK;
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> PUNCTUATION;
            case Character.MATH_SYMBOL, Character.CURRENCY_SYMBOL, Character.MODIFIER_SYMBOL, Character.OTHER_SYMBOL -> SYMBOL;
            case Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> SEPARATOR;
            default -> CONTROL; // CONTROL, FORMAT, SURROGATE, PRIVATE_USE, UNASSIGNED
        };
        return isWhitespace(cp) ? category | WHITESPACE : category;
    }

    /** The Unicode White_Space property (what Python's {@code regex} module calls {@code \s}). */
    static boolean isWhitespace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
                || cp == 0x3000;
    }

    /** C's {@code isspace} in the "C" locale, which llama.cpp uses to strip around special tokens. */
    static boolean isAsciiSpace(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }

    /** Python's {@code chr(cp).lower()[0]}. */
    static int toLower(int cp) {
        return Character.toLowerCase(cp);
    }

    /** The first code point of the NFD decomposition of {@code cp} (llama.cpp keeps only that one). */
    static int nfdFirst(int cp) {
        if (cp < 0xC0) return cp;
        if (cp < 0x10000) return NfdTable.BMP[cp];
        return nfdOf(cp);
    }

    private static int nfdOf(int cp) {
        return Normalizer.normalize(Character.toString(cp), Normalizer.Form.NFD).codePointAt(0);
    }

    private static final class NfdTable {
        static final char[] BMP = new char[0x10000];
        static {
            for (int cp = 0; cp < BMP.length; cp++) {
                int first = cp < 0xC0 || Character.isSurrogate((char) cp) ? cp : nfdOf(cp);
                BMP[cp] = first < 0x10000 ? (char) first : (char) cp;
            }
        }
    }

    // ---- GPT-2 byte-level encoding: every byte is shown as one printable character ----

    /** {@code BYTE_TO_CHAR[b]}: the character that stands for byte b in byte-level BPE vocabularies. */
    static final char[] BYTE_TO_CHAR = new char[256];
    /** The inverse of {@link #BYTE_TO_CHAR}: byte for a character below 0x144, or -1. */
    private static final short[] CHAR_TO_BYTE = new short[0x144];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    /** The byte a byte-level character stands for, or -1 if it stands for none. */
    static int byteOfChar(int c) {
        return c >= 0 && c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** The byte-level form of a word: its UTF-8 bytes, each shown as one character. */
    static String byteEncode(String word) {
        byte[] utf8 = word.getBytes(StandardCharsets.UTF_8);
        char[] out = new char[utf8.length];
        for (int i = 0; i < utf8.length; i++) out[i] = BYTE_TO_CHAR[utf8[i] & 0xFF];
        return new String(out);
    }

    // ---- UTF-8 helpers ----

    /**
     * The text with every lone surrogate replaced by U+FFFD, as llama.cpp replaces each invalid UTF-8 byte; a Java
     * string has no other way to be invalid.
     */
    static String sanitize(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isSurrogate(c)) return replaceLoneSurrogates(text);
        }
        return text;
    }

    private static String replaceLoneSurrogates(String text) {
        StringBuilder sb = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                sb.append(c).append(text.charAt(++i));
            } else {
                sb.append(Character.isSurrogate(c) ? '\uFFFD' : c);
            }
        }
        return sb.toString();
    }

    /** Length in UTF-8 bytes of the code point starting a char sequence at {@code c}. */
    static int utf8Length(int cp) {
        return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    }
}
