package org.quant4j.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into words with a list of regexes, exactly as llama.cpp's {@code unicode_regex_split} does.
 *
 * <p>Each regex refines the pieces of the previous one: inside every piece, each match becomes a word and so does
 * every stretch between matches. Two regexes (GPT-2's and Llama 3's) are hand-written scanners in llama.cpp; they
 * are ported as such here. Every other regex runs on a "collapsed" copy of the text when it uses a Unicode category
 * ({@code \p{L}}, {@code \p{N}}, {@code \p{P}}, {@code \p{M}}, {@code \p{S}}): each non-ASCII code point is replaced
 * by one placeholder character per category (0xD1 number, 0xD2 letter, 0xD3 punctuation, 0xD4 mark, 0xD5 symbol,
 * 0xD0 anything else, 0x0B whitespace) and each {@code \p{X}} by a class of its placeholder and its ASCII members.
 * A regex without categories runs on the text itself, with non-ASCII whitespace shown as 0x0B. Positions are counted
 * in code points throughout, as llama.cpp counts them.
 */
final class RegexSplitter {
    static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    static final String LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3_ADAPTED = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private static final char COLLAPSED_WHITESPACE = 0x0B;
    private static final char COLLAPSED_OTHER = 0xD0;

    /** One step of the split. */
    sealed interface Rule permits Gpt2Scanner, Llama3Scanner, CollapsedPattern, PlainPattern {}

    /** llama.cpp's {@code unicode_regex_split_custom_gpt2}. */
    record Gpt2Scanner() implements Rule {}

    /** llama.cpp's {@code unicode_regex_split_custom_llama3}. */
    record Llama3Scanner() implements Rule {}

    /** A regex with Unicode categories, rewritten to run on the collapsed text. */
    record CollapsedPattern(String source, Pattern pattern) implements Rule {}

    /** A regex without Unicode categories, run on the text with non-ASCII whitespace shown as 0x0B. */
    record PlainPattern(String source, Pattern pattern) implements Rule {}

    private final List<Rule> rules;

    /** @param regexes regexes in llama.cpp's spelling (ECMAScript, {@code \p{X}} for categories) */
    RegexSplitter(List<String> regexes) {
        this.rules = regexes.stream().map(RegexSplitter::compile).toList();
    }

    static Rule compile(String regex) {
        if (regex.equals(GPT2)) return new Gpt2Scanner();
        if (regex.equals(LLAMA3) || regex.equals(LLAMA3_ADAPTED)) return new Llama3Scanner();
        if (usesCategories(regex)) return new CollapsedPattern(regex, Pattern.compile(javaRegex(collapse(regex))));
        return new PlainPattern(regex, Pattern.compile(javaRegex(regex)));
    }

    private static final String[] CATEGORY_NAMES = {"\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}",
            "\\p{Lu}", "\\p{Ll}", "\\p{Lt}", "\\p{Lm}", "\\p{Lo}"};

    private static boolean usesCategories(String regex) {
        for (String name : CATEGORY_NAMES) if (regex.contains(name)) return true;
        return false;
    }

    /** The placeholder character and the ASCII members of a category, as one character-class body. */
    private static String categoryClass(String name) {
        return switch (name) {
            case "\\p{N}" -> "\u00D10-9";
            case "\\p{L}", "\\p{Lu}", "\\p{Ll}", "\\p{Lt}", "\\p{Lm}", "\\p{Lo}" -> "\u00D2A-Za-z";
            case "\\p{P}" -> "\u00D3!-#%-*,-/:-;?-@\\[-\\]_\\{\\}";
            case "\\p{M}" -> "\u00D4";
            case "\\p{S}" -> "\u00D5\\$\\+<->\\^`\\|";
            default -> null;
        };
    }

    private static char collapsedChar(int flags) {
        if ((flags & Unicode.WHITESPACE) != 0) return COLLAPSED_WHITESPACE;
        return switch (flags & Unicode.CATEGORIES) {
            case Unicode.NUMBER -> 0xD1;
            case Unicode.LETTER -> 0xD2;
            case Unicode.PUNCTUATION -> 0xD3;
            case Unicode.ACCENT_MARK -> 0xD4;
            case Unicode.SYMBOL -> 0xD5;
            default -> COLLAPSED_OTHER;
        };
    }

    /** Rewrites {@code \p{X}} as llama.cpp does: a class of its own outside brackets, members inside them. */
    static String collapse(String regex) {
        for (int i = 0; i < regex.length(); i++) {
            if (regex.charAt(i) >= 128) {
                throw new IllegalArgumentException("regex mixes Unicode categories and non-ASCII characters: " + regex);
            }
        }
        StringBuilder out = new StringBuilder();
        boolean inside = false;
        for (int i = 0; i < regex.length(); i++) {
            char c = regex.charAt(i);
            if (c == '[' && (i == 0 || regex.charAt(i - 1) != '\\')) {
                out.append('[');
                inside = true;
                continue;
            }
            if (inside && c == ']' && regex.charAt(i - 1) != '\\') {
                out.append(']');
                inside = false;
                continue;
            }
            if (c == '\\' && i + 3 < regex.length() && regex.charAt(i + 1) == 'p' && regex.charAt(i + 2) == '{') {
                int close = regex.indexOf('}', i + 3);
                if (close >= 0 && close <= i + 10) {
                    String members = categoryClass(regex.substring(i, close + 1));
                    if (members != null) {
                        out.append(inside ? members : "[" + members + "]");
                        i = close;
                        continue;
                    }
                }
            }
            out.append(c);
        }
        return out.toString();
    }

    /** ECMAScript to java.util.regex: {@code $} outside a class means end of input only. */
    private static String javaRegex(String ecmascript) {
        StringBuilder out = new StringBuilder();
        boolean inside = false;
        for (int i = 0; i < ecmascript.length(); i++) {
            char c = ecmascript.charAt(i);
            if (c == '\\' && i + 1 < ecmascript.length()) {
                out.append(c).append(ecmascript.charAt(++i));
                continue;
            }
            if (c == '[') inside = true;
            else if (c == ']') inside = false;
            if (c == '$' && !inside) out.append("\\z");
            else out.append(c);
        }
        return out.toString();
    }

    // ---- splitting ----

    /** The words of {@code text} (not yet byte-encoded). */
    List<String> split(String text) {
        Text t = new Text(text);
        IntList pieces = new IntList(); // lengths in code points
        pieces.add(t.cps.length);
        for (Rule rule : rules) {
            pieces = switch (rule) {
                case Gpt2Scanner _ -> splitGpt2(t.cps, pieces);
                case Llama3Scanner _ -> splitLlama3(t.cps, pieces);
                case CollapsedPattern p -> splitWithPattern(p.pattern(), t.collapsed(), null, pieces);
                case PlainPattern p -> splitWithPattern(p.pattern(), t.plain(), t.plainCharIndex(), pieces);
            };
        }
        List<String> words = new ArrayList<>(pieces.size());
        int start = 0;
        for (int i = 0; i < pieces.size(); i++) {
            int length = pieces.get(i);
            words.add(new String(t.cps, start, length));
            start += length;
        }
        return words;
    }

    /** The code points of a text and its two regex views, made when first needed. */
    private static final class Text {
        final int[] cps;
        private String collapsed;
        private String plain;
        private int[] plainCharIndex; // code point index -> char index in plain, length cps.length + 1

        Text(String text) { this.cps = text.codePoints().toArray(); }

        String collapsed() {
            if (collapsed == null) {
                char[] c = new char[cps.length];
                for (int i = 0; i < cps.length; i++) c[i] = cps[i] < 128 ? (char) cps[i] : collapsedChar(Unicode.flags(cps[i]));
                collapsed = new String(c);
            }
            return collapsed;
        }

        String plain() {
            if (plain == null) {
                StringBuilder sb = new StringBuilder(cps.length);
                plainCharIndex = new int[cps.length + 1];
                for (int i = 0; i < cps.length; i++) {
                    plainCharIndex[i] = sb.length();
                    int cp = cps[i];
                    sb.appendCodePoint(cp > 0x7F && Unicode.isWhitespace(cp) ? COLLAPSED_WHITESPACE : cp);
                }
                plainCharIndex[cps.length] = sb.length();
                plain = sb.toString();
            }
            return plain;
        }

        int[] plainCharIndex() {
            plain();
            return plainCharIndex;
        }
    }

    /**
     * Splits each piece at the matches of a pattern (std::regex_iterator semantics: each piece is its own input, so
     * lookarounds and {@code \z} stop at its ends).
     *
     * @param charIndex code point index → char index in {@code view}, or null when they are equal
     */
    private static IntList splitWithPattern(Pattern pattern, String view, int[] charIndex, IntList pieces) {
        IntList out = new IntList(pieces.size() * 2);
        Matcher m = pattern.matcher(view);
        int start = 0; // code points
        for (int p = 0; p < pieces.size(); p++) {
            int length = pieces.get(p);
            int end = start + length;
            int from = charIndex == null ? start : charIndex[start];
            int to = charIndex == null ? end : charIndex[end];
            m.region(from, to);
            int done = from; // chars
            while (m.find()) {
                if (m.end() == m.start()) continue; // no pattern here matches empty; never emit empty words
                if (m.start() > done) out.add(codePointsBetween(view, charIndex, done, m.start()));
                out.add(codePointsBetween(view, charIndex, m.start(), m.end()));
                done = m.end();
            }
            if (done < to) out.add(codePointsBetween(view, charIndex, done, to));
            start = end;
        }
        return out;
    }

    private static int codePointsBetween(String view, int[] charIndex, int fromChar, int toChar) {
        return charIndex == null ? toChar - fromChar : view.codePointCount(fromChar, toChar);
    }

    // ---- llama.cpp's hand-written scanners ----

    private static final int OUT_OF_RANGE = -1;

    /** GPT-2: {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+}. */
    static IntList splitGpt2(int[] cps, IntList pieces) {
        IntList out = new IntList(pieces.size() * 4);
        int start = 0;
        for (int p = 0; p < pieces.size(); p++) {
            Scan s = new Scan(cps, start, start + pieces.get(p), out);
            start = s.end;
            for (int pos = s.begin; pos < s.end; ) {
                int cp = s.cpt(pos);
                int flags = s.flags(pos);

                // 's|'t|'re|'ve|'m|'ll|'d
                if (cp == '\'' && pos + 1 < s.end) {
                    int next = s.cpt(pos + 1);
                    if (next == 's' || next == 't' || next == 'm' || next == 'd') {
                        pos += s.addToken(pos + 2);
                        continue;
                    }
                    if (pos + 2 < s.end) {
                        int nextNext = s.cpt(pos + 2);
                        if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l')) {
                            pos += s.addToken(pos + 3);
                            continue;
                        }
                    }
                }

                int flags2 = cp == ' ' ? s.flags(pos + 1) : flags;
                // <space>?\p{L}+
                if ((flags2 & Unicode.LETTER) != 0) {
                    if (cp == ' ') pos++;
                    while ((flags2 & Unicode.LETTER) != 0) flags2 = s.flags(++pos);
                    s.addToken(pos);
                    continue;
                }
                // <space>?\p{N}+
                if ((flags2 & Unicode.NUMBER) != 0) {
                    if (cp == ' ') pos++;
                    while ((flags2 & Unicode.NUMBER) != 0) flags2 = s.flags(++pos);
                    s.addToken(pos);
                    continue;
                }
                // <space>?[^\s\p{L}\p{N}]+
                if (isOther(flags2)) {
                    if (cp == ' ') pos++;
                    while (isOther(flags2)) flags2 = s.flags(++pos);
                    s.addToken(pos);
                    continue;
                }

                int whitespaces = 0;
                while ((s.flags(pos + whitespaces) & Unicode.WHITESPACE) != 0) whitespaces++;
                // \s+(?!\S)
                if (whitespaces > 1 && s.cpt(pos + whitespaces) != OUT_OF_RANGE) {
                    pos += whitespaces - 1;
                    s.addToken(pos);
                    continue;
                }
                // \s+
                if (whitespaces > 0) {
                    pos += whitespaces;
                    s.addToken(pos);
                    continue;
                }
                // no match
                s.addToken(++pos);
            }
        }
        return out;
    }

    /** Llama 3: {@code (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+}. */
    static IntList splitLlama3(int[] cps, IntList pieces) {
        IntList out = new IntList(pieces.size() * 4);
        int start = 0;
        for (int p = 0; p < pieces.size(); p++) {
            Scan s = new Scan(cps, start, start + pieces.get(p), out);
            start = s.end;
            for (int pos = s.begin; pos < s.end; ) {
                int cp = s.cpt(pos);
                int flags = s.flags(pos);

                // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                if (cp == '\'' && pos + 1 < s.end) {
                    int next = Unicode.toLower(s.cpt(pos + 1));
                    if (next == 's' || next == 't' || next == 'm' || next == 'd') {
                        pos += s.addToken(pos + 2);
                        continue;
                    }
                    if (pos + 2 < s.end) {
                        int nextNext = Unicode.toLower(s.cpt(pos + 2));
                        if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l')) {
                            pos += s.addToken(pos + 3);
                            continue;
                        }
                    }
                }

                // [^\r\n\p{L}\p{N}]?\p{L}+
                if (!(cp == '\r' || cp == '\n' || (flags & Unicode.NUMBER) != 0)) {
                    if ((flags & Unicode.LETTER) != 0 || (s.flags(pos + 1) & Unicode.LETTER) != 0) {
                        pos++;
                        while ((s.flags(pos) & Unicode.LETTER) != 0) pos++;
                        s.addToken(pos);
                        continue;
                    }
                }

                // \p{N}{1,3}
                if ((flags & Unicode.NUMBER) != 0) {
                    int first = pos;
                    while ((s.flags(pos) & Unicode.NUMBER) != 0) {
                        if (++pos - first >= 3) {
                            s.addToken(pos);
                            first = pos;
                        }
                    }
                    s.addToken(pos);
                    continue;
                }

                // <space>?[^\s\p{L}\p{N}]+[\r\n]*
                int flags2 = cp == ' ' ? s.flags(pos + 1) : flags;
                if ((flags2 & (Unicode.WHITESPACE | Unicode.LETTER | Unicode.NUMBER)) == 0 && flags != Unicode.NONE) {
                    if (cp == ' ') pos++;
                    while (isOther(flags2)) flags2 = s.flags(++pos);
                    int cp2 = s.cpt(pos);
                    while (cp2 == '\r' || cp2 == '\n') cp2 = s.cpt(++pos);
                    s.addToken(pos);
                    continue;
                }

                int whitespaces = 0;
                int lastEndOfLine = 0;
                while ((s.flags(pos + whitespaces) & Unicode.WHITESPACE) != 0) {
                    int cp2 = s.cpt(pos + whitespaces);
                    if (cp2 == '\r' || cp2 == '\n') lastEndOfLine = pos + whitespaces + 1;
                    whitespaces++;
                }
                // \s*[\r\n]+
                if (lastEndOfLine > 0) {
                    pos = lastEndOfLine;
                    s.addToken(pos);
                    continue;
                }
                // \s+(?!\S)
                if (whitespaces > 1 && s.cpt(pos + whitespaces) != OUT_OF_RANGE) {
                    pos += whitespaces - 1;
                    s.addToken(pos);
                    continue;
                }
                // \s+
                if (whitespaces > 0) {
                    pos += whitespaces;
                    s.addToken(pos);
                    continue;
                }
                s.addToken(++pos);
            }
        }
        return out;
    }

    /** {@code [^\s\p{L}\p{N}]} at a position inside the piece. */
    private static boolean isOther(int flags) {
        return (flags & (Unicode.WHITESPACE | Unicode.LETTER | Unicode.NUMBER)) == 0 && flags != Unicode.NONE;
    }

    /** One piece being scanned: [begin, end) in code points; emits word lengths. */
    private static final class Scan {
        final int[] cps;
        final int begin, end;
        final IntList out;
        int previousEnd;

        Scan(int[] cps, int begin, int end, IntList out) {
            this.cps = cps;
            this.begin = begin;
            this.end = end;
            this.out = out;
            this.previousEnd = begin;
        }

        int cpt(int pos) { return pos >= begin && pos < end ? cps[pos] : OUT_OF_RANGE; }

        int flags(int pos) { return pos >= begin && pos < end ? Unicode.flags(cps[pos]) : Unicode.NONE; }

        /** Ends the current word at {@code wordEnd}; returns its length. */
        int addToken(int wordEnd) {
            int length = wordEnd - previousEnd;
            if (length > 0) out.add(length);
            previousEnd = wordEnd;
            return length;
        }
    }
}
