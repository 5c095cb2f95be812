package org.quant4j.tokenizer;

import java.util.List;

/**
 * The pre-tokenizers of byte-level BPE vocabularies, named by GGUF's {@code tokenizer.ggml.pre}: the regexes that cut
 * text into words before merging (llama.cpp's {@code LLAMA_VOCAB_PRE_TYPE_*}, regexes copied verbatim in llama.cpp's
 * spelling) and the flags that come with each.
 *
 * <p>Verified against llama.cpp's test vectors: GPT2, MPT, FALCON, STARCODER, REFACT, DEEPSEEK_LLM, DEEPSEEK_CODER.
 * The others use the same machinery with llama.cpp's regexes but have no vectors here.
 */
public enum PreTokenizer {
    DEFAULT(List.of("default"), true, false, false,
            "[\\p{P}\\$\\+<=>\\^~\\|]+",
            RegexSplitter.GPT2,
            "\\p{N}+",
            "[0-9][0-9][0-9]"),
    LLAMA3(List.of("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"), true, true, true,
            RegexSplitter.LLAMA3_ADAPTED),
    DBRX(List.of("dbrx"), true, false, false, RegexSplitter.LLAMA3_ADAPTED),
    SMAUG(List.of("smaug-bpe"), true, false, false, RegexSplitter.LLAMA3_ADAPTED),
    DEEPSEEK_LLM(List.of("deepseek-llm"), false, false, false,
            "[\r\n]",
            "\\s?[" + PreTokenizer.DEEPSEEK_LLM_LETTERS + "]+",
            "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
            "\\s+$",
            "[一-龥ࠀ-一가-퟿]+",
            "\\p{N}+"),
    DEEPSEEK_CODER(List.of("deepseek-coder"), false, false, false,
            "[\r\n]",
            "\\s?\\p{L}+",
            "\\s?\\p{P}+",
            "[一-龥ࠀ-一가-퟿]+",
            "\\p{N}"),
    FALCON(List.of("falcon"), true, false, false,
            "[\\p{P}\\$\\+<=>\\^~\\|`]+",
            RegexSplitter.GPT2,
            "[0-9][0-9][0-9]"),
    STARCODER(List.of("starcoder"), true, false, false, "\\p{N}", RegexSplitter.GPT2),
    REFACT(List.of("refact"), true, false, false, "\\p{N}", RegexSplitter.GPT2),
    COMMAND_R(List.of("command-r"), false, false, false, "\\p{N}", RegexSplitter.GPT2),
    SMOLLM(List.of("smollm"), false, false, false, "\\p{N}", RegexSplitter.GPT2),
    CODESHELL(List.of("codeshell"), true, false, false, "\\p{N}", RegexSplitter.GPT2),
    GPT2(List.of("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert"),
            true, false, false, RegexSplitter.GPT2),
    MPT(List.of("mpt"), true, false, false, RegexSplitter.GPT2),
    OLMO(List.of("olmo"), true, false, false, RegexSplitter.GPT2),
    JAIS(List.of("jais"), true, false, false, RegexSplitter.GPT2),
    QWEN2(List.of("qwen2", "deepseek-r1-qwen"), false, false, false,
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
    STABLELM2(List.of("stablelm2"), true, false, false,
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
    PORO(List.of("poro-chat"), false, false, false, " ?[^(\\s|.,!?…。，、।۔،)]+"),
    BLOOM(List.of("bloom"), true, false, false, " ?[^(\\s|.,!?…。，、।۔،)]+"),
    GPT3_FINNISH(List.of("gpt3-finnish"), true, false, false, " ?[^(\\s|.,!?…。，、।۔،)]+"),
    CHATGLM4(List.of("chatglm-bpe", "glm4"), true, false, false,
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
    VIKING(List.of("viking"), false, false, false, " ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"),
    TEKKEN(List.of("tekken"), false, true, true,
            "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
    GPT4O(List.of("gpt-4o", "llama4"), false, false, false,
            "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");

    /**
     * The letter class of DeepSeek LLM's word regex: the cased letters (Lu, Ll, Lt) of Unicode 14, as ranges. Written
     * with escapes because several of its characters (U+1F7D, U+1FBE, U+1FD3, U+2126, U+212A, ...) are changed by
     * NFC normalisation, which editors and tools may apply to source text.
     */
    private static final String DEEPSEEK_LLM_LETTERS =
            "A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\uD801\uDC00-\uD801\uDC4F\uD801\uDCB0-\uD801\uDCD3\uD801\uDCD8-\uD801\uDCFB\uD803\uDC80-\uD803\uDCB2\uD803\uDCC0-\uD803\uDCF2\uD806\uDCA0-\uD806\uDCDF\uD83A\uDD00-\uD83A\uDD43";

    /** The {@code tokenizer.ggml.pre} names that select this pre-tokenizer. */
    public final List<String> names;
    /** Whether decoding removes the space before {@code . , ! ?} and in contractions (llama.cpp's clean_spaces). */
    public final boolean cleanSpaces;
    /** Whether a word that is already a token skips the merges (Llama 3). */
    public final boolean ignoreMerges;
    /** Whether BOS is added by default (overridden by {@code tokenizer.ggml.add_bos_token}). */
    public final boolean addBos;
    /** The regexes, in llama.cpp's spelling. */
    public final List<String> regexes;

    private volatile RegexSplitter splitter;

    PreTokenizer(List<String> names, boolean cleanSpaces, boolean ignoreMerges, boolean addBos, String... regexes) {
        this.names = names;
        this.cleanSpaces = cleanSpaces;
        this.ignoreMerges = ignoreMerges;
        this.addBos = addBos;
        this.regexes = List.of(regexes);
    }

    /** The pre-tokenizer called {@code name} in GGUF, or null. A missing name means DEFAULT, as in llama.cpp. */
    public static PreTokenizer byName(String name) {
        if (name == null || name.isEmpty()) return DEFAULT;
        for (PreTokenizer p : values()) if (p.names.contains(name)) return p;
        return null;
    }

    /** Every name {@link #byName} accepts, for error messages. */
    public static String supportedNames() {
        StringBuilder sb = new StringBuilder();
        for (PreTokenizer p : values()) for (String n : p.names) sb.append(sb.isEmpty() ? "" : ", ").append(n);
        return sb.toString();
    }

    /** The canonical GGUF name. */
    public String ggufName() { return names.getFirst(); }

    /** Splits text into words (not yet byte-encoded). */
    List<String> split(String text) {
        RegexSplitter s = splitter;
        if (s == null) splitter = s = new RegexSplitter(regexes);
        return s.split(text);
    }
}
