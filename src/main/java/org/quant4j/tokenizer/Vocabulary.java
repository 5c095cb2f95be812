package org.quant4j.tokenizer;

import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.gguf.GgufValueType;
import org.quant4j.util.Q4jException;

import java.util.*;

/**
 * A vocabulary as llama.cpp loads it from GGUF metadata ({@code llama_vocab::impl::load}): token texts, scores and
 * attributes, the special token ids, the add-BOS/EOS flags, which tokens end generation, and which tokens are split
 * out of the text before tokenizing ({@link #partition}). The three tokenizers share it.
 */
final class Vocabulary {
    /** The tokenizer families of {@code tokenizer.ggml.model}. */
    enum Model {
        /** SentencePiece BPE driven by scores ("llama"). */
        SPM("llama"),
        /** Byte-level BPE driven by merge ranks ("gpt2"). */
        BPE("gpt2"),
        /** WordPiece ("bert"). */
        WPM("bert");

        final String ggufName;

        Model(String ggufName) { this.ggufName = ggufName; }
    }

    // token attributes (llama.cpp's llama_token_attr)
    static final int ATTR_UNKNOWN = 1;
    static final int ATTR_UNUSED = 1 << 1;
    static final int ATTR_NORMAL = 1 << 2;
    static final int ATTR_CONTROL = 1 << 3;
    static final int ATTR_USER_DEFINED = 1 << 4;
    static final int ATTR_BYTE = 1 << 5;
    static final int ATTR_LSTRIP = 1 << 7;
    static final int ATTR_RSTRIP = 1 << 8;

    static final int NULL = -1; // LLAMA_TOKEN_NULL

    static final String KEY_MODEL = "tokenizer.ggml.model";
    static final String KEY_PRE = "tokenizer.ggml.pre";
    static final String KEY_TOKENS = "tokenizer.ggml.tokens";
    static final String KEY_SCORES = "tokenizer.ggml.scores";
    static final String KEY_TOKEN_TYPE = "tokenizer.ggml.token_type";
    static final String KEY_MERGES = "tokenizer.ggml.merges";

    final String source;
    final Model model;
    final PreTokenizer pre;           // BPE only
    final String[] tokens;            // (n_vocab)
    final float[] scores;             // (n_vocab)
    final int[] attrs;                // (n_vocab) ATTR_* bits
    final String[] merges;            // BPE only: "left right", rank = index
    private final HashMap<String, Integer> textToId;
    final int maxTokenLength;         // longest token, in chars

    int bos, eos, eot, eom, unk, sep, pad, mask;
    int fimPre, fimSuf, fimMid, fimPad, fimRep, fimSep;
    boolean addBos, addEos, addSep, addSpacePrefix, cleanSpaces, removeExtraWhitespaces, ignoreMerges;
    boolean lowercase = true, stripAccents = true;    // WordPiece normalizer
    final BitSet endOfGeneration = new BitSet();
    /** Control, user-defined and unknown tokens, longest text first: the order {@link #partition} tries them in. */
    final int[] specialTokens;

    private Vocabulary(String source, Map<String, GgufValue> meta) {
        this.source = source;
        String modelName = string(meta, KEY_MODEL, null);
        if (modelName == null) throw error("missing " + KEY_MODEL + " (the tokenizer family: llama, gpt2 or bert)");
        this.model = switch (modelName) {
            case "llama" -> Model.SPM;
            case "gpt2" -> Model.BPE;
            case "bert" -> Model.WPM;
            default -> throw error(KEY_MODEL + " = '" + modelName + "' is not supported (supported: llama, gpt2, bert)");
        };
        String preName = string(meta, KEY_PRE, null);

        // defaults per family, as llama.cpp sets them before reading the keys
        switch (model) {
            case SPM -> { bos = 1; eos = 2; unk = 0; sep = NULL; pad = NULL; mask = NULL; }
            case BPE -> { bos = 11; eos = 11; unk = NULL; sep = NULL; pad = NULL; mask = NULL; }
            case WPM -> { bos = 101; eos = NULL; unk = 100; sep = 102; pad = 0; mask = 103; }
        }
        eot = eom = fimPre = fimSuf = fimMid = fimPad = fimRep = fimSep = NULL;

        PreTokenizer preTokenizer = null;
        switch (model) {
            case BPE -> {
                preTokenizer = PreTokenizer.byName(preName);
                if (preTokenizer == null) {
                    throw error(KEY_PRE + " = '" + preName + "' is not a supported pre-tokenizer (supported: "
                            + PreTokenizer.supportedNames() + ")");
                }
                addSpacePrefix = false;
                cleanSpaces = preTokenizer.cleanSpaces;
                ignoreMerges = preTokenizer.ignoreMerges;
                addBos = preTokenizer.addBos;
                if (preTokenizer == PreTokenizer.CHATGLM4) bos = NULL;
            }
            case SPM -> { addSpacePrefix = true; cleanSpaces = false; addBos = true; addEos = false; }
            case WPM -> { addSpacePrefix = false; cleanSpaces = true; addBos = true; addEos = false; addSep = true; }
        }
        this.pre = preTokenizer;
        addSpacePrefix = bool(meta, "tokenizer.ggml.add_space_prefix", addSpacePrefix);
        removeExtraWhitespaces = bool(meta, "tokenizer.ggml.remove_extra_whitespaces", removeExtraWhitespaces);

        // tokens, scores, types
        this.tokens = stringArray(meta, KEY_TOKENS);
        int n = tokens.length;
        if (n == 0) throw error(KEY_TOKENS + " is empty");
        this.scores = new float[n];
        GgufValue scoreValue = meta.get(KEY_SCORES);
        if (scoreValue != null) {
            GgufValue.Array a = array(scoreValue, KEY_SCORES);
            if (!(a.elements() instanceof float[]) && !(a.elements() instanceof int[])) {
                throw error(KEY_SCORES + " must be an array of FLOAT32 or INT32, got " + a.elementType());
            }
            if (a.length() != n) throw error(KEY_SCORES + " has " + a.length() + " entries but " + KEY_TOKENS + " has " + n);
            switch (a.elements()) {
                case float[] f -> System.arraycopy(f, 0, scores, 0, n);
                case int[] i -> { for (int k = 0; k < n; k++) scores[k] = i[k]; }
                default -> throw new AssertionError();
            }
        }
        this.attrs = new int[n];
        GgufValue typeValue = meta.get(KEY_TOKEN_TYPE);
        int[] types = null;
        if (typeValue != null) {
            GgufValue.Array a = array(typeValue, KEY_TOKEN_TYPE);
            if (!(a.elements() instanceof int[] t)) throw error(KEY_TOKEN_TYPE + " must be an array of INT32, got " + a.elementType());
            if (a.length() != n) throw error(KEY_TOKEN_TYPE + " has " + a.length() + " entries but " + KEY_TOKENS + " has " + n);
            types = t;
        }
        this.textToId = HashMap.newHashMap(n);
        int longest = 0;
        for (int i = 0; i < n; i++) {
            if (tokens[i].isEmpty()) tokens[i] = "[EMPTY_" + i + "]";
            Integer previous = textToId.putIfAbsent(tokens[i], i);
            if (previous != null) throw error("duplicate token in " + KEY_TOKENS + ": '" + tokens[i] + "' has ids " + previous + " and " + i);
            longest = Math.max(longest, tokens[i].length());
            attrs[i] = types == null ? ATTR_NORMAL : switch (TokenType.of(types[i])) {
                case UNKNOWN -> ATTR_UNKNOWN;
                case UNUSED -> ATTR_UNUSED;
                case NORMAL -> ATTR_NORMAL;
                case CONTROL -> ATTR_CONTROL;
                case USER_DEFINED -> ATTR_USER_DEFINED;
                case BYTE -> ATTR_BYTE;
                case UNDEFINED -> 0;
            };
        }
        this.maxTokenLength = longest;

        if (model == Model.BPE) {
            GgufValue m = meta.get(KEY_MERGES);
            if (m == null) throw error("missing " + KEY_MERGES + " (required for tokenizer.ggml.model = gpt2)");
            this.merges = stringArray(meta, KEY_MERGES);
        } else {
            this.merges = null;
        }

        readSpecialIds(meta);
        if (model == Model.WPM && !meta.containsKey("tokenizer.ggml.bos_token_id")) {
            bos = specialId(meta, "tokenizer.ggml.cls_token_id", bos); // older BERT conversions name BOS "cls"
        }
        addBos = bool(meta, "tokenizer.ggml.add_bos_token", addBos);
        addEos = bool(meta, "tokenizer.ggml.add_eos_token", addEos);
        addSep = bool(meta, "tokenizer.ggml.add_sep_token", addSep);
        if (addBos && bos == NULL) throw error("tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
        if (addEos && eos == NULL) throw error("tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
        if (addSep && sep == NULL) throw error("tokenizer.ggml.add_sep_token is true, but tokenizer.ggml.seperator_token_id is not set");
        lowercase = bool(meta, "tokenizer.ggml.normalizer.lowercase", lowercase);
        stripAccents = bool(meta, "tokenizer.ggml.normalizer.strip_accents", lowercase);

        detectSpecialTokensByText();
        this.specialTokens = collectSpecialTokens();
        applyModelSpecificAttributes(meta);
    }

    static Vocabulary fromMetadata(Map<String, GgufValue> meta, String source) {
        if (meta == null) throw new Q4jException(source + ": no tokenizer metadata");
        return new Vocabulary(source, meta);
    }

    // ---- lookups ----

    int size() { return tokens.length; }

    /** The id of a token text, or {@link #NULL}. */
    int id(String text) {
        Integer id = textToId.get(text);
        return id == null ? NULL : id;
    }

    boolean isControl(int id) { return (attrs[id] & ATTR_CONTROL) != 0; }

    /** The id for one raw byte in a SentencePiece vocabulary: {@code <0xXX>}, else the byte as text, else unk. */
    int byteToken(int b) {
        int id = id(String.format("<0x%02X>", b));
        if (id != NULL) return id;
        if (b < 0x80) id = id(String.valueOf((char) b));
        return id != NULL ? id : unk;
    }

    /** The byte a {@code <0xXX>} token stands for, or -1. */
    int tokenByte(int id) {
        String t = tokens[id];
        if (t.length() < 5 || !t.startsWith("<0x")) return -1;
        int hi = Character.digit(t.charAt(3), 16), lo = Character.digit(t.charAt(4), 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    // ---- special tokens inside text ----

    /** A piece of the input after special tokens are split out: either raw text or one special token. */
    sealed interface Fragment permits TextFragment, TokenFragment {}

    record TextFragment(String text) implements Fragment {}

    record TokenFragment(int id) implements Fragment {}

    /**
     * Splits special-token texts out of the input, longest token first (llama.cpp's {@code tokenizer_st_partition}).
     * User-defined tokens are always split out; control and unknown tokens only when {@code parseSpecial}. A token
     * with the LSTRIP/RSTRIP attribute eats the ASCII whitespace to its left/right.
     */
    List<Fragment> partition(String text, boolean parseSpecial) {
        List<Fragment> fragments = new ArrayList<>();
        if (text.isEmpty()) return fragments;
        fragments.add(new TextFragment(text));
        for (int id : specialTokens) {
            if (!parseSpecial && (attrs[id] & (ATTR_CONTROL | ATTR_UNKNOWN)) != 0) continue;
            String special = tokens[id];
            List<Fragment> next = null;
            for (int f = 0; f < fragments.size(); f++) {
                Fragment fragment = fragments.get(f);
                if (!(fragment instanceof TextFragment(String raw)) || !raw.contains(special)) {
                    if (next != null) next.add(fragment);
                    continue;
                }
                if (next == null) next = new ArrayList<>(fragments.subList(0, f));
                int from = 0, to = raw.length(); // the part of raw still to search
                while (true) {
                    int match = raw.indexOf(special, from);
                    if (match < 0 || match + special.length() > to) break;
                    int leftEnd = match;
                    if ((attrs[id] & ATTR_LSTRIP) != 0) while (leftEnd > from && Unicode.isAsciiSpace(raw.charAt(leftEnd - 1))) leftEnd--;
                    if (leftEnd > from) next.add(new TextFragment(raw.substring(from, leftEnd)));
                    next.add(new TokenFragment(id));
                    from = match + special.length();
                    if ((attrs[id] & ATTR_RSTRIP) != 0) while (from < to && Unicode.isAsciiSpace(raw.charAt(from))) from++;
                }
                if (from < to) next.add(new TextFragment(raw.substring(from, to)));
            }
            if (next != null) fragments = next;
        }
        return fragments;
    }

    // ---- loading helpers ----

    private void readSpecialIds(Map<String, GgufValue> meta) {
        bos = specialId(meta, "tokenizer.ggml.bos_token_id", bos);
        eos = specialId(meta, "tokenizer.ggml.eos_token_id", eos);
        eot = specialId(meta, "tokenizer.ggml.eot_token_id", eot);
        eom = specialId(meta, "tokenizer.ggml.eom_token_id", eom);
        unk = specialId(meta, "tokenizer.ggml.unknown_token_id", unk);
        sep = specialId(meta, "tokenizer.ggml.seperator_token_id", sep);
        pad = specialId(meta, "tokenizer.ggml.padding_token_id", pad);
        mask = specialId(meta, "tokenizer.ggml.mask_token_id", mask);
        fimPre = specialId(meta, "tokenizer.ggml.fim_pre_token_id", fimPre);
        fimSuf = specialId(meta, "tokenizer.ggml.fim_suf_token_id", fimSuf);
        fimMid = specialId(meta, "tokenizer.ggml.fim_mid_token_id", fimMid);
        fimPad = specialId(meta, "tokenizer.ggml.fim_pad_token_id", fimPad);
        fimRep = specialId(meta, "tokenizer.ggml.fim_rep_token_id", fimRep);
        fimSep = specialId(meta, "tokenizer.ggml.fim_sep_token_id", fimSep);
        fimPre = specialId(meta, "tokenizer.ggml.prefix_token_id", fimPre);
        fimSuf = specialId(meta, "tokenizer.ggml.suffix_token_id", fimSuf);
        fimMid = specialId(meta, "tokenizer.ggml.middle_token_id", fimMid);
    }

    /**
     * A special token id from metadata. As in llama.cpp, a default outside the vocabulary is dropped, and a stored
     * id outside it (for example 0xFFFFFFFF, which llama.cpp's llama2.c converter writes for "none") keeps the default.
     */
    private int specialId(Map<String, GgufValue> meta, String key, int fallback) {
        if (fallback >= tokens.length) fallback = NULL;
        GgufValue v = meta.get(key);
        if (v == null) return fallback;
        long id;
        try {
            id = v.asLong();
        } catch (IllegalStateException e) {
            throw error(key + " must be an integer, got " + v.type());
        }
        return id >= 0 && id < tokens.length ? (int) id : fallback;
    }

    /** llama.cpp's workaround for conversions that do not name EOT/EOM/FIM tokens: find them by their text. */
    private void detectSpecialTokensByText() {
        List<String> eotTexts = List.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>");
        List<String> fimPreTexts = List.of("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>");
        List<String> fimSufTexts = List.of("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>");
        List<String> fimMidTexts = List.of("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>");
        List<String> fimPadTexts = List.of("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]");
        List<String> fimRepTexts = List.of("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>");
        for (int id = 0; id < tokens.length; id++) {
            String t = tokens[id];
            if (eot == NULL && eotTexts.contains(t)) eot = markControl(id);
            if (eom == NULL && t.equals("<|eom_id|>")) eom = markControl(id);
            if (fimPre == NULL && fimPreTexts.contains(t)) fimPre = markControl(id);
            if (fimSuf == NULL && fimSufTexts.contains(t)) fimSuf = markControl(id);
            if (fimMid == NULL && fimMidTexts.contains(t)) fimMid = markControl(id);
            if (fimPad == NULL && fimPadTexts.contains(t)) fimPad = markControl(id);
            if (fimRep == NULL && fimRepTexts.contains(t)) fimRep = markControl(id);
            if (fimSep == NULL && t.equals("<|file_sep|>")) fimSep = markControl(id);
        }
        // control tokens named "unused" are unused
        for (int id = 0; id < tokens.length; id++) {
            if ((attrs[id] & ATTR_CONTROL) != 0 && tokens[id].contains("unused")) attrs[id] |= ATTR_UNUSED;
        }
        // tokens that end generation
        for (int id : new int[]{fimPad, fimRep, fimSep}) if (id != NULL) endOfGeneration.set(id);
        Set<String> eogTexts = Set.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
                "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[");
        for (int id = 0; id < tokens.length; id++) {
            if (eogTexts.contains(tokens[id])) {
                endOfGeneration.set(id);
                markControl(id);
            }
        }
        for (int id : new int[]{eos, eot, eom}) if (id != NULL) endOfGeneration.set(id);
    }

    private int markControl(int id) {
        attrs[id] |= ATTR_CONTROL;
        return id;
    }

    private int[] collectSpecialTokens() {
        List<Integer> ids = new ArrayList<>();
        for (int id = 0; id < tokens.length; id++) {
            if ((attrs[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0) ids.add(id);
        }
        ids.sort(Comparator.comparingInt((Integer id) -> -tokens[id].length()).thenComparingInt(id -> id));
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Per-model strip attributes that GGUF does not store (llama.cpp sets them by model name). */
    private void applyModelSpecificAttributes(Map<String, GgufValue> meta) {
        String name = string(meta, "general.name", "").toLowerCase(Locale.ROOT);
        String preName = string(meta, KEY_PRE, "");
        if (preName.contains("jina-v2-de") || preName.contains("jina-v2-es") || preName.contains("jina-v2-code")) {
            int maskId = id("<mask>");
            if (maskId != NULL) attrs[maskId] |= ATTR_LSTRIP;
        } else if (name.contains("phi-3") || name.contains("phi3")) {
            for (int id : specialTokens) attrs[id] |= ATTR_RSTRIP;
            setStrip("</s>", ATTR_RSTRIP, true);
            for (String t : List.of("<unk>", "<s>", "<|endoftext|>")) setStrip(t, ATTR_RSTRIP, false);
        }
    }

    private void setStrip(String text, int attr, boolean on) {
        int id = id(text);
        if (id == NULL) return;
        attrs[id] = on ? attrs[id] | attr : attrs[id] & ~attr;
    }

    private Q4jException error(String message) {
        return new Q4jException(source + ": " + message);
    }

    private String string(Map<String, GgufValue> meta, String key, String fallback) {
        GgufValue v = meta.get(key);
        if (v == null) return fallback;
        if (v.type() != GgufValueType.STRING) throw error(key + " must be a STRING, got " + v.type());
        return v.asString();
    }

    private boolean bool(Map<String, GgufValue> meta, String key, boolean fallback) {
        GgufValue v = meta.get(key);
        if (v == null) return fallback;
        if (v.type() != GgufValueType.BOOL) throw error(key + " must be a BOOL, got " + v.type());
        return (Boolean) v.value();
    }

    private GgufValue.Array array(GgufValue v, String key) {
        if (v.type() != GgufValueType.ARRAY) throw error(key + " must be an ARRAY, got " + v.type());
        return v.asArray();
    }

    private String[] stringArray(Map<String, GgufValue> meta, String key) {
        GgufValue v = meta.get(key);
        if (v == null) throw error("missing " + key);
        GgufValue.Array a = array(v, key);
        if (!(a.elements() instanceof String[] s)) throw error(key + " must be an array of STRING, got " + a.elementType());
        return s.clone();
    }
}
