package org.quant4j.tokenizer;

import org.quant4j.util.Q4jException;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * WordPiece ({@code tokenizer.ggml.model = "bert"}), as llama.cpp's {@code llm_tokenizer_wpm_session}.
 *
 * <p>GGUF stores BERT vocabularies in "phantom space" form: a word-initial piece {@code hello} is {@code ▁hello} and
 * a continuation {@code ##lo} is {@code lo}. Text is normalised like BERT's (lower-cased, accents stripped by keeping
 * the first code point of NFD and dropping marks, controls removed), split at whitespace and around punctuation,
 * ASCII symbols and CJK ideographs; each word gets a leading {@code ▁} and is covered greedily by the longest
 * matching tokens. A word that cannot be covered becomes [UNK].
 */
final class WordPiece extends VocabularyTokenizer {

    WordPiece(Vocabulary vocab) { super(vocab); }

    @Override
    void encode(List<Vocabulary.Fragment> fragments, boolean addSpecial, IntList out) {
        if (addSpecial) {
            if (vocab.bos == Vocabulary.NULL) throw new Q4jException(vocab.source + ": the vocabulary has no [CLS] token to add");
            out.add(vocab.bos);
        }
        for (Vocabulary.Fragment fragment : fragments) {
            switch (fragment) {
                case Vocabulary.TextFragment(String text) -> tokenize(text, out);
                case Vocabulary.TokenFragment(int id) -> out.add(id);
            }
        }
        if (addSpecial) {
            if (vocab.sep == Vocabulary.NULL) throw new Q4jException(vocab.source + ": the vocabulary has no [SEP] token to add");
            out.add(vocab.sep);
        }
    }

    private void tokenize(String text, IntList out) {
        for (String word : preprocess(text, vocab.lowercase, vocab.stripAccents)) {
            if (word.isEmpty()) continue;
            String word1 = "\u2581" + word; // phantom space
            int n = word1.length();
            int before = out.size();
            for (int i = 0; i < n; ) {
                boolean match = false;
                for (int j = Math.min(n, i + vocab.maxTokenLength + 1); j > i; j--) {
                    if (j < n && Character.isLowSurrogate(word1.charAt(j))) continue; // not a code point boundary
                    int id = vocab.id(word1.substring(i, j));
                    if (id != Vocabulary.NULL) {
                        out.add(id);
                        match = true;
                        i = j;
                        break;
                    }
                }
                if (!match) { // discard the whole word
                    out.truncate(before);
                    break;
                }
            }
            if (out.size() == before && vocab.unk != Vocabulary.NULL) out.add(vocab.unk);
        }
    }

    /** BERT's normalisation and split into words (llama.cpp's {@code llm_tokenizer_wpm_session::preprocess}). */
    static List<String> preprocess(String text, boolean lowercase, boolean stripAccents) {
        List<String> words = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (stripAccents) cp = Unicode.nfdFirst(cp);
            int flags = Unicode.flags(cp);
            if ((flags & Unicode.WHITESPACE) != 0) {
                finish(word, words);
                continue;
            }
            if (cp == 0 || cp == 0xFFFD || (flags & Unicode.CONTROL) != 0) continue;
            if (stripAccents && (flags & Unicode.ACCENT_MARK) != 0) continue;
            int c = lowercase ? Unicode.toLower(cp) : cp;
            if ((flags & Unicode.PUNCTUATION) != 0 || (cp < 0x7F && (flags & Unicode.SYMBOL) != 0) || isChineseChar(cp)) {
                finish(word, words);
                words.add(Character.toString(c)); // a word of its own
            } else {
                word.appendCodePoint(c);
            }
        }
        finish(word, words);
        return words;
    }

    private static void finish(StringBuilder word, List<String> words) {
        if (!word.isEmpty()) {
            words.add(word.toString());
            word.setLength(0);
        }
    }

    /** CJK ideographs, with the ranges Hugging Face's BERT uses (including its 0x2B920 typo). */
    static boolean isChineseChar(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    @Override
    byte[] computePiece(int id) {
        int attr = vocab.attrs[id];
        if ((attr & (Vocabulary.ATTR_UNKNOWN | Vocabulary.ATTR_CONTROL | Vocabulary.ATTR_USER_DEFINED)) != 0) {
            return vocab.tokens[id].getBytes(StandardCharsets.UTF_8);
        }
        if ((attr & Vocabulary.ATTR_NORMAL) != 0) return unescapeWhitespace(vocab.tokens[id]);
        return new byte[0];
    }
}
