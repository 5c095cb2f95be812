package org.quant4j.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.quant4j.io.PyJson;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.gguf.GgufValueType;
import org.quant4j.util.AtomicOutput;
import org.quant4j.util.Q4jException;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.*;

/**
 * GGUF tokenizer metadata → Hugging Face {@code tokenizer.json} + {@code tokenizer_config.json}, the reverse of
 * {@link TokenizerJson}: what a checkpoint converted from GGUF or llama2.c needs for transformers'
 * {@code AutoTokenizer.from_pretrained(dir)} to tokenize as llama.cpp does.
 *
 * <p>The vocabulary is read as llama.cpp loads it ({@link Vocabulary}: its defaults for BOS/EOS ids and flags apply),
 * then written in the layout the Hugging Face converters use for that family:
 * <ul>
 * <li><b>"llama"</b> (SentencePiece BPE with byte fallback; Llama 2, TinyLlama, Mistral, Phi-3, llama2.c): the
 *     Llama-2 {@code tokenizer.json}. A BPE model with {@code byte_fallback} and {@code fuse_unk}; merges derived
 *     from the scores as transformers' {@code SentencePieceExtractor} does ({@link #sentencePieceMerges}); normalizer
 *     {@code Prepend("▁")} + {@code Replace(" " → "▁")} (the Prepend only with {@code add_space_prefix}); no
 *     pre-tokenizer; decoder {@code Replace("▁" → " ")}, {@code ByteFallback}, {@code Fuse}, {@code Strip(1 left)}.</li>
 * <li><b>"gpt2"</b> (byte-level BPE): vocab and merges unchanged; the pre-tokenizer is a plain {@code ByteLevel}
 *     (with GPT-2's regex) when {@code tokenizer.ggml.pre} splits by GPT-2's regex alone, else a {@code Sequence} of
 *     one {@code Split(Regex, Isolated)} per llama.cpp regex, in llama.cpp's order and spelling, and a
 *     {@code ByteLevel} without regex; decoder {@code ByteLevel}; {@code ignore_merges} as the pre-tokenizer has it
 *     (Llama 3).</li>
 * <li><b>"bert"</b> (WordPiece): GGUF's phantom-space form turned back ({@code ▁hello} → {@code hello},
 *     {@code lo} → {@code ##lo}); {@code BertNormalizer}, {@code BertPreTokenizer}, decoder {@code WordPiece}.</li>
 * </ul>
 * Every vocabulary row is in {@code model.vocab} under its id, so the tokenizer has as many ids as the embedding has
 * rows; that includes llama.cpp's padding rows ({@code [PAD<id>]}, which its converters add to fill the embedding
 * matrix, and {@link TokenizerJson} reads back as UNUSED), which are nothing else. Control, unknown, unused and
 * user-defined tokens are also {@code added_tokens} (special unless user-defined), un-normalised, with llama.cpp's
 * lstrip/rstrip; being in the vocab too is what makes transformers give them their ids. The {@code post_processor} is a {@code TemplateProcessing} that adds BOS / EOS (for BERT [CLS] / [SEP]) as
 * the vocabulary asks (byte-level BPE without either keeps GPT-2's {@code ByteLevel} one).
 *
 * <p>{@code tokenizer_config.json} names {@code PreTrainedTokenizerFast}, the class that takes tokenizer.json as it is
 * (a model class such as {@code LlamaTokenizerFast} rebuilds its normalizer and pre-tokenizer from its own defaults in
 * transformers 5); it carries the special tokens, {@code add_bos_token} / {@code add_eos_token},
 * {@code clean_up_tokenization_spaces} (llama.cpp's clean_spaces), {@code model_max_length} (the GGUF context length)
 * and the chat template.
 *
 * <p>What tokenizer.json cannot say, and so does not come back through {@link TokenizerJson#toMetadata}: scores
 * (recomputed from the merge order, which merges the same way), the type of a padding row (always UNUSED), a type other
 * than UNKNOWN for the unk token, user-defined byte-level tokens that look special ({@code <|...|>}: CONTROL, as
 * llama.cpp's converter makes them), eot/fim ids (found again by their text), and the {@code tokenizer.ggml.pre} name
 * where several share one regex list (one with the same flags comes back).
 */
public final class TokenizerJsonWriter {
    private TokenizerJsonWriter() {}

    public static final String TOKENIZER_FILE = "tokenizer.json";
    public static final String CONFIG_FILE = "tokenizer_config.json";

    /** The two documents, before they are written. */
    public record Documents(ObjectNode tokenizer, ObjectNode config) {}

    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    /** serde_json's pretty form, as the tokenizers library writes tokenizer.json: two spaces, one item a line. */
    private static final ObjectWriter PRETTY = new ObjectMapper().writer(new DefaultPrettyPrinter()
            .withObjectIndenter(new DefaultIndenter("  ", "\n"))
            .withArrayIndenter(new DefaultIndenter("  ", "\n"))
            .withSeparators(Separators.createDefaultInstance()
                    .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                    .withObjectEmptySeparator("").withArrayEmptySeparator("")));

    /**
     * Writes {@code tokenizer.json} and {@code tokenizer_config.json} into {@code dir} (each through a temporary file
     * renamed into place).
     *
     * @param metadata GGUF metadata with {@code tokenizer.ggml.*} (other keys: the context length and
     *                 {@code general.name} are used)
     * @param inputs   files that must not be overwritten (the model being converted)
     * @return the files written
     * @throws Q4jException for a tokenizer family other than llama, gpt2 or bert, or inconsistent metadata
     */
    public static List<Path> write(Map<String, GgufValue> metadata, Path dir, Path... inputs) {
        return write(build(metadata, dir.resolve(TOKENIZER_FILE).toString()), dir, inputs);
    }

    /** Writes documents made by {@link #build} (to check the metadata before anything else is written). */
    public static List<Path> write(Documents docs, Path dir, Path... inputs) {
        Path tokenizerPath = dir.resolve(TOKENIZER_FILE), configPath = dir.resolve(CONFIG_FILE);
        byte[] tokenizer, config;
        try {
            tokenizer = (PRETTY.writeValueAsString(docs.tokenizer()) + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new Q4jException(tokenizerPath + ": cannot write JSON: " + e.getOriginalMessage(), e);
        }
        config = PyJson.dumps(docs.config()).getBytes(StandardCharsets.UTF_8); // as transformers: sorted keys, indent 2
        AtomicOutput.write(tokenizerPath, ch -> writeFully(ch, tokenizer), inputs);
        AtomicOutput.write(configPath, ch -> writeFully(ch, config), inputs);
        return List.of(tokenizerPath, configPath);
    }

    /**
     * The two documents for {@code metadata}.
     *
     * @param source where the metadata is going, for error messages
     */
    public static Documents build(Map<String, GgufValue> metadata, String source) {
        GgufValue family = metadata.get(Vocabulary.KEY_MODEL);
        if (family == null) throw new Q4jException(source + ": no tokenizer to write (" + Vocabulary.KEY_MODEL + " is missing)");
        String name = family.type() == GgufValueType.STRING ? family.asString() : family.toString();
        if (!List.of("llama", "gpt2", "bert").contains(name)) {
            throw new Q4jException(source + ": cannot write a Hugging Face tokenizer.json for " + Vocabulary.KEY_MODEL + " = '" + name
                    + "'; only llama (SentencePiece BPE), gpt2 (byte-level BPE) and bert (WordPiece) can be written");
        }
        return new Builder(metadata, source).build();
    }

    private static void writeFully(java.nio.channels.FileChannel ch, byte[] bytes) throws java.io.IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) ch.write(b);
    }

    /**
     * Merges for a SentencePiece BPE vocabulary, made as transformers' {@code SentencePieceExtractor} makes them from a
     * tokenizer.model: every split of a NORMAL token of {@code ids} into two tokens of {@code ids}, the splits of one token ordered by
     * (left id, right id), and all of them by the token's score, highest first (equal scores: lower token id first).
     * Merging by this rank merges as SentencePiece does by score.
     *
     * @param ids the tokens written (the others are neither made nor halves)
     * @return {left, right} pairs, rank order
     */
    static List<String[]> sentencePieceMerges(String[] tokens, float[] scores, TokenType[] types, Map<String, Integer> ids) {
        record Merge(int token, int left, int right) {}
        List<Merge> merges = new ArrayList<>();
        for (int id = 0; id < tokens.length; id++) {
            String t = tokens[id];
            if (types[id] != TokenType.NORMAL || !ids.containsKey(t)) continue;
            int start = merges.size();
            for (int k = t.offsetByCodePoints(0, 1); k < t.length(); k = t.offsetByCodePoints(k, 1)) {
                Integer left = ids.get(t.substring(0, k)), right = ids.get(t.substring(k));
                if (left != null && right != null) merges.add(new Merge(id, left, right));
            }
            merges.subList(start, merges.size()).sort(Comparator.comparingInt(Merge::left).thenComparingInt(Merge::right));
        }
        // stable: equal scores keep token id order (Python's sorted(..., reverse=True) on the score)
        merges.sort((a, b) -> Float.compare(plusZero(scores[b.token()]), plusZero(scores[a.token()])));
        List<String[]> out = new ArrayList<>(merges.size());
        for (Merge m : merges) out.add(new String[]{tokens[m.left()], tokens[m.right()]});
        return out;
    }

    private static float plusZero(float f) { return f == 0f ? 0f : f; } // Python: -0.0 == 0.0

    /** One conversion. */
    private static final class Builder {
        final String source;
        final Map<String, GgufValue> meta;
        final Vocabulary vocab;
        final int n;
        final TokenType[] types;     // (n) as stored (NORMAL where the metadata has none)
        final boolean[] padding;     // (n) llama.cpp's [PAD<id>] filler rows: in the vocab, nothing else
        final boolean[] added;       // (n) also in added_tokens
        final String[] texts;        // (n) the token as tokenizer.json spells it
        final Map<String, Integer> ids = new HashMap<>(); // texts → id, rows written

        Builder(Map<String, GgufValue> meta, String source) {
            this.source = source;
            this.meta = meta;
            this.vocab = Vocabulary.fromMetadata(meta, source);
            this.n = vocab.size();
            this.types = new TokenType[n];
            GgufValue typeValue = meta.get(Vocabulary.KEY_TOKEN_TYPE);
            int[] stored = typeValue == null ? null : (int[]) typeValue.asArray().elements(); // Vocabulary checked it
            Set<Integer> specialIds = new HashSet<>(List.of(vocab.bos, vocab.eos, vocab.unk, vocab.sep, vocab.pad, vocab.mask));
            this.padding = new boolean[n];
            this.added = new boolean[n];
            this.texts = new String[n];
            for (int id = 0; id < n; id++) {
                TokenType t = stored == null ? TokenType.NORMAL : TokenType.of(stored[id]);
                padding[id] = vocab.tokens[id].equals("[PAD" + id + "]") && !specialIds.contains(id);
                types[id] = padding[id] ? TokenType.UNUSED : t == TokenType.UNDEFINED ? TokenType.NORMAL : t;
                added[id] = !padding[id] && (id == vocab.unk || switch (types[id]) {
                    case CONTROL, UNKNOWN, USER_DEFINED, UNUSED -> true;
                    default -> false;
                });
            }
            for (int id = 0; id < n; id++) {
                texts[id] = vocab.model == Vocabulary.Model.WPM ? wordPieceText(id) : vocab.tokens[id];
                Integer other = ids.putIfAbsent(texts[id], id);
                if (other != null) {
                    throw new Q4jException(source + ": tokens " + other + " ('" + vocab.tokens[other] + "') and " + id + " ('"
                            + vocab.tokens[id] + "') are both '" + texts[id] + "' in tokenizer.json");
                }
            }
        }

        boolean special(int id) { return added[id] && types[id] != TokenType.USER_DEFINED; }

        /** ▁word → word, piece → ##piece; special and bracketed tokens as they are (TokenizerJson's inverse). */
        String wordPieceText(int id) {
            String t = vocab.tokens[id];
            if (special(id) || (t.startsWith("[") && t.endsWith("]"))) return t;
            return t.startsWith("\u2581") ? t.substring(1) : "##" + t;
        }

        String text(int id) { return id == Vocabulary.NULL ? null : texts[id]; }

        Documents build() {
            ObjectNode tok = JSON.objectNode(); // fields in the order the tokenizers library writes them
            tok.put("version", "1.0");
            tok.putNull("truncation");
            tok.putNull("padding");
            tok.set("added_tokens", addedTokens());
            for (String key : List.of("normalizer", "pre_tokenizer", "post_processor", "decoder", "model")) tok.putNull(key);
            ObjectNode config = JSON.objectNode();
            switch (vocab.model) {
                case SPM -> sentencePiece(tok, config);
                case BPE -> byteLevel(tok, config);
                case WPM -> wordPiece(tok, config);
            }
            config.put("tokenizer_class", "PreTrainedTokenizerFast");
            config.put("clean_up_tokenization_spaces", vocab.cleanSpaces);
            GgufValue arch = meta.get("general.architecture");
            GgufValue context = arch != null && arch.type() == GgufValueType.STRING ? meta.get(arch.asString() + ".context_length") : null;
            if (context != null && context.type() != GgufValueType.STRING && context.type() != GgufValueType.ARRAY) {
                config.put("model_max_length", context.asLong());
            }
            GgufValue template = meta.get("tokenizer.chat_template");
            if (template != null && template.type() == GgufValueType.STRING) config.put("chat_template", template.asString());
            return new Documents(tok, config);
        }

        // ---- the three families ----

        private void sentencePiece(ObjectNode tok, ObjectNode config) {
            ArrayNode normalizers = JSON.arrayNode();
            if (vocab.addSpacePrefix) normalizers.addObject().put("type", "Prepend").put("prepend", "\u2581");
            normalizers.add(replace(" ", "\u2581"));
            tok.putObject("normalizer").put("type", "Sequence").set("normalizers", normalizers);
            tok.set("post_processor", template(text(vocab.addBos ? vocab.bos : Vocabulary.NULL),
                    text(vocab.addEos ? vocab.eos : Vocabulary.NULL), true));
            ArrayNode decoders = JSON.arrayNode();
            decoders.add(replace("\u2581", " "));
            decoders.addObject().put("type", "ByteFallback");
            decoders.addObject().put("type", "Fuse");
            if (vocab.addSpacePrefix) decoders.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
            tok.putObject("decoder").put("type", "Sequence").set("decoders", decoders);
            List<String[]> merges = sentencePieceMerges(vocab.tokens, vocab.scores, types, ids);
            tok.set("model", bpeModel(text(vocab.unk), true, merges));
            putSpecialTokens(config, true);
        }

        private void byteLevel(ObjectNode tok, ObjectNode config) {
            List<String> regexes = vocab.pre.regexes;
            if (regexes.equals(List.of(RegexSplitter.GPT2))) {
                tok.set("pre_tokenizer", byteLevelStep(true));
            } else {
                ArrayNode steps = JSON.arrayNode();
                for (String regex : regexes) {
                    ObjectNode split = steps.addObject().put("type", "Split");
                    split.putObject("pattern").put("Regex", regex);
                    split.put("behavior", "Isolated").put("invert", false);
                }
                steps.add(byteLevelStep(false));
                tok.putObject("pre_tokenizer").put("type", "Sequence").set("pretokenizers", steps);
            }
            String bos = text(vocab.addBos ? vocab.bos : Vocabulary.NULL), eos = text(vocab.addEos ? vocab.eos : Vocabulary.NULL);
            tok.set("post_processor", bos != null || eos != null ? template(bos, eos, true) : byteLevelStep(true));
            tok.set("decoder", byteLevelStep(true).put("add_prefix_space", true));

            List<String[]> merges = new ArrayList<>(vocab.merges.length);
            for (int rank = 0; rank < vocab.merges.length; rank++) {
                String merge = vocab.merges[rank];
                int space = merge.indexOf(' ', 1); // as llama.cpp splits it
                String left = space < 0 ? null : merge.substring(0, space), right = space < 0 ? null : merge.substring(space + 1);
                if (left == null || !ids.containsKey(left) || !ids.containsKey(right) || !ids.containsKey(left + right)) {
                    throw new Q4jException(source + ": " + Vocabulary.KEY_MERGES + "[" + rank + "] = '" + merge
                            + "' is not two tokens whose concatenation is a token; the tokenizers library would refuse it");
                }
                merges.add(new String[]{left, right});
            }
            tok.set("model", bpeModel(null, false, merges));
            putSpecialTokens(config, true);
        }

        private void wordPiece(ObjectNode tok, ObjectNode config) {
            ObjectNode normalizer = tok.putObject("normalizer").put("type", "BertNormalizer")
                    .put("clean_text", true).put("handle_chinese_chars", true);
            if (vocab.stripAccents == vocab.lowercase) normalizer.putNull("strip_accents"); // BERT's default: follow lowercase
            else normalizer.put("strip_accents", vocab.stripAccents);
            normalizer.put("lowercase", vocab.lowercase);
            tok.putObject("pre_tokenizer").put("type", "BertPreTokenizer");
            tok.set("post_processor", template(text(vocab.bos), text(vocab.sep), false));
            tok.putObject("decoder").put("type", "WordPiece").put("prefix", "##").put("cleanup", true);
            ObjectNode model = tok.putObject("model").put("type", "WordPiece");
            String unk = text(vocab.unk);
            model.put("unk_token", unk != null ? unk : "[UNK]");
            model.put("continuing_subword_prefix", "##").put("max_input_chars_per_word", 100);
            model.set("vocab", vocabNode());
            putSpecialTokens(config, false);
        }

        // ---- pieces ----

        private ArrayNode addedTokens() {
            ArrayNode out = JSON.arrayNode();
            for (int id = 0; id < n; id++) {
                if (!added[id]) continue;
                out.addObject().put("id", id).put("content", texts[id]).put("single_word", false)
                        .put("lstrip", (vocab.attrs[id] & Vocabulary.ATTR_LSTRIP) != 0)
                        .put("rstrip", (vocab.attrs[id] & Vocabulary.ATTR_RSTRIP) != 0)
                        .put("normalized", false) // llama.cpp matches the raw text
                        .put("special", special(id));
            }
            return out;
        }

        private ObjectNode vocabNode() {
            ObjectNode v = JSON.objectNode();
            for (int id = 0; id < n; id++) v.put(texts[id], id);
            return v;
        }

        private ObjectNode bpeModel(String unk, boolean byteFallback, List<String[]> merges) {
            ObjectNode model = JSON.objectNode().put("type", "BPE");
            model.putNull("dropout");
            if (unk != null) model.put("unk_token", unk);
            else model.putNull("unk_token");
            model.putNull("continuing_subword_prefix");
            model.putNull("end_of_word_suffix");
            model.put("fuse_unk", byteFallback).put("byte_fallback", byteFallback).put("ignore_merges", vocab.ignoreMerges);
            model.set("vocab", vocabNode());
            // "left right" as every tokenizers version reads it, unless a half has a space: then [left, right] (0.20+)
            boolean pairs = merges.stream().anyMatch(m -> m[0].indexOf(' ') >= 0 || m[1].indexOf(' ') >= 0);
            ArrayNode m = model.putArray("merges");
            for (String[] merge : merges) {
                if (pairs) m.addArray().add(merge[0]).add(merge[1]);
                else m.add(merge[0] + " " + merge[1]);
            }
            return model;
        }

        private static ObjectNode replace(String from, String to) {
            ObjectNode r = JSON.objectNode().put("type", "Replace");
            r.putObject("pattern").put("String", from);
            return r.put("content", to);
        }

        private static ObjectNode byteLevelStep(boolean useRegex) {
            return JSON.objectNode().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", useRegex);
        }

        /**
         * A TemplateProcessing: {@code first $A last}; the pair repeats {@code first} before B when
         * {@code firstBeforeB} (Llama: {@code <s> $A <s> $B}) and always ends B with {@code last} (BERT:
         * {@code [CLS] $A [SEP] $B [SEP]}).
         */
        private ObjectNode template(String first, String last, boolean firstBeforeB) {
            ObjectNode post = JSON.objectNode().put("type", "TemplateProcessing");
            ArrayNode single = post.putArray("single"), pair = post.putArray("pair");
            for (ArrayNode seq : List.of(single, pair)) {
                if (first != null) special(seq, first, 0);
                sequence(seq, "A", 0);
                if (last != null) special(seq, last, 0);
            }
            if (first != null && firstBeforeB) special(pair, first, 1);
            sequence(pair, "B", 1);
            if (last != null) special(pair, last, 1);
            ObjectNode specials = post.putObject("special_tokens");
            for (String t : new String[]{first, last}) {
                if (t == null || specials.has(t)) continue;
                ObjectNode s = specials.putObject(t).put("id", t);
                s.putArray("ids").add(ids.get(t));
                s.putArray("tokens").add(t);
            }
            return post;
        }

        private static void special(ArrayNode seq, String token, int typeId) {
            seq.addObject().putObject("SpecialToken").put("id", token).put("type_id", typeId);
        }

        private static void sequence(ArrayNode seq, String id, int typeId) {
            seq.addObject().putObject("Sequence").put("id", id).put("type_id", typeId);
        }

        /** bos/eos/unk/pad (BERT: cls/sep/unk/pad/mask) and, for the causal families, add_bos/add_eos. */
        private void putSpecialTokens(ObjectNode config, boolean causal) {
            if (causal) {
                config.put("add_bos_token", vocab.addBos);
                config.put("add_eos_token", vocab.addEos);
                putToken(config, "bos_token", vocab.bos);
                putToken(config, "eos_token", vocab.eos);
            } else {
                putToken(config, "cls_token", vocab.bos);
                putToken(config, "sep_token", vocab.sep);
                putToken(config, "mask_token", vocab.mask);
                config.put("do_lower_case", vocab.lowercase);
            }
            putToken(config, "unk_token", vocab.unk);
            putToken(config, "pad_token", vocab.pad);
        }

        private void putToken(ObjectNode config, String key, int id) {
            String t = text(id);
            if (t != null) config.put(key, t);
        }
    }
}
