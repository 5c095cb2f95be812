package org.quant4j.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.*;

/**
 * Hugging Face {@code tokenizer.json} → GGUF tokenizer metadata, as llama.cpp's {@code convert_hf_to_gguf.py} would
 * write it, so that {@link Tokenizers#fromMetadata} runs it the way llama.cpp runs the converted model.
 *
 * <ul>
 * <li><b>Byte-level BPE</b> (GPT-2, Llama 3, Qwen2, StarCoder, DeepSeek, ...): vocab + merges → model "gpt2". The
 *     pre-tokenizer is recognised from the json's pre_tokenizer (ByteLevel alone → gpt-2; Split regexes, Digits and
 *     ByteLevel compared with llama.cpp's lists); pass its GGUF name when it is not recognisable.</li>
 * <li><b>SentencePiece-style BPE</b> ({@code byte_fallback: true}: Llama 2, TinyLlama, Mistral) → model "llama".
 *     Scores: the converter's LlamaHfVocab writes -1000 for every token, which leaves llama.cpp's score-driven merging
 *     with nothing to go by; here a token's score is minus the rank of the first merge that makes it, so merging by
 *     score replays the merge order (SentencePiece's own scores have that order).</li>
 * <li><b>WordPiece</b> (BERT) → model "bert" in phantom-space form ({@code ##lo} → {@code lo}, {@code hello} →
 *     {@code ▁hello}, bracketed and special tokens unchanged).</li>
 * </ul>
 * Added tokens become CONTROL when special (or when they look special: {@code <|...|>}, {@code <pad>}, ...), else
 * USER_DEFINED. BOS/EOS and whether to add them come from the post_processor template and, when present, a
 * {@code tokenizer_config.json} next to the file (which also gives the chat template, and
 * {@code clean_up_tokenization_spaces} to tell apart pre-tokenizers with the same regexes).
 * {@link TokenizerJsonWriter} writes the reverse.
 */
public final class TokenizerJson {
    private TokenizerJson() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Metadata for a tokenizer.json whose pre-tokenizer is recognisable (or that needs none). */
    public static Map<String, GgufValue> toMetadata(Path tokenizerJson) {
        return toMetadata(tokenizerJson, null);
    }

    /**
     * @param preTokenizer the {@code tokenizer.ggml.pre} name for a byte-level BPE (see {@link PreTokenizer}), or null
     *                     to recognise it from the json
     */
    public static Map<String, GgufValue> toMetadata(Path tokenizerJson, String preTokenizer) {
        JsonNode root = read(tokenizerJson);
        JsonNode config = null;
        Path configPath = tokenizerJson.resolveSibling("tokenizer_config.json");
        if (Files.isRegularFile(configPath)) config = read(configPath);
        return new Converter(tokenizerJson.toString(), root, config, preTokenizer).convert();
    }

    /** The tokenizer of a tokenizer.json. */
    public static Tokenizer load(Path tokenizerJson, String preTokenizer) {
        return Tokenizers.fromMetadata(toMetadata(tokenizerJson, preTokenizer), tokenizerJson.toString());
    }

    public static Tokenizer load(Path tokenizerJson) { return load(tokenizerJson, null); }

    private static JsonNode read(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            var at = e.getLocation();
            throw new Q4jException(file + ": not valid JSON" + (at == null ? "" : " at line " + at.getLineNr()
                    + ", column " + at.getColumnNr()) + ": " + e.getOriginalMessage());
        } catch (NoSuchFileException | java.io.FileNotFoundException e) {
            throw new Q4jException(file + ": no such file");
        } catch (IOException e) {
            throw new Q4jException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** One conversion. */
    private static final class Converter {
        final String source;
        final JsonNode root, model, config;
        final String preName;
        String[] tokens;
        TokenType[] types;
        final Map<String, Integer> ids = new HashMap<>();
        final Map<Integer, JsonNode> added = new TreeMap<>(); // id → added_tokens entry
        final Map<String, GgufValue> meta = new LinkedHashMap<>();

        Converter(String source, JsonNode root, JsonNode config, String preName) {
            this.source = source;
            this.root = root;
            this.model = root.path("model");
            this.config = config;
            this.preName = preName;
        }

        Map<String, GgufValue> convert() {
            String type = model.path("type").asText("");
            if (type.isEmpty() && model.has("merges")) type = "BPE"; // old files omit the type
            switch (type) {
                case "BPE" -> {
                    if (model.path("byte_fallback").asBoolean(false)) sentencePieceBpe();
                    else byteLevelBpe();
                }
                case "WordPiece" -> wordPiece();
                default -> throw error("model.type '" + type + "' is not supported (supported: BPE, WordPiece)");
            }
            Tokenizers.fromMetadata(meta, source); // the result must load: fail here, with this file's name
            return meta;
        }

        // ---- the three families ----

        private void byteLevelBpe() {
            boolean byteLevel = hasType(root.path("pre_tokenizer"), "ByteLevel") || hasType(root.path("decoder"), "ByteLevel");
            if (!byteLevel) throw error("a BPE model without byte_fallback must use the ByteLevel pre-tokenizer or decoder (found neither)");
            readVocab();
            for (var e : added.entrySet()) {
                int id = e.getKey();
                String text = tokens[id];
                if (e.getValue().path("special").asBoolean(false) || looksSpecial(text)) {
                    types[id] = TokenType.CONTROL;
                } else {
                    tokens[id] = text.replace('\u2581', ' ');
                    types[id] = TokenType.USER_DEFINED;
                }
            }
            PreTokenizer pre = preName != null ? PreTokenizer.byName(preName) : recognisePreTokenizer();
            if (pre == null) throw error("'" + preName + "' is not a supported pre-tokenizer (supported: " + PreTokenizer.supportedNames() + ")");
            meta.put(Vocabulary.KEY_MODEL, GgufValue.string("gpt2"));
            meta.put(Vocabulary.KEY_PRE, GgufValue.string(preName != null ? preName : pre.ggufName()));
            putTokens(null);
            meta.put(Vocabulary.KEY_MERGES, GgufValue.strings(merges()));
            specialTokensFromTemplate();
            if (!meta.containsKey("tokenizer.ggml.bos_token_id") && ids.containsKey("<|endoftext|>")) {
                int id = ids.get("<|endoftext|>"); // GPT-2's convention: one token for both
                meta.put("tokenizer.ggml.bos_token_id", GgufValue.u32(id));
                meta.put("tokenizer.ggml.eos_token_id", GgufValue.u32(id));
            }
            specialTokensFromConfig();
        }

        private void sentencePieceBpe() {
            readVocab();
            String unkToken = model.path("unk_token").asText(null);
            for (int id = 0; id < tokens.length; id++) {
                if (types[id] == TokenType.NORMAL && tokens[id].matches("<0x[0-9A-Fa-f]{2}>")) types[id] = TokenType.BYTE;
            }
            for (var e : added.entrySet()) {
                int id = e.getKey();
                boolean special = e.getValue().path("special").asBoolean(false);
                types[id] = tokens[id].equals(unkToken) ? TokenType.UNKNOWN : special ? TokenType.CONTROL : TokenType.USER_DEFINED;
            }
            if (unkToken != null && ids.containsKey(unkToken)) types[ids.get(unkToken)] = TokenType.UNKNOWN;

            // score = -(rank of the first merge that makes the token): merging by score replays the merge order
            String[] merges = merges();
            float[] scores = new float[tokens.length];
            boolean[] made = new boolean[tokens.length];
            for (int rank = 0; rank < merges.length; rank++) {
                String merge = merges[rank];
                int space = merge.indexOf(' ', 1);
                if (space < 0) continue;
                Integer id = ids.get(merge.substring(0, space) + merge.substring(space + 1));
                if (id != null && !made[id]) {
                    made[id] = true;
                    scores[id] = -rank;
                }
            }
            for (int id = 0; id < tokens.length; id++) {
                // a longer token no merge makes is one BPE never produces: give it the lowest priority
                if (!made[id] && types[id] == TokenType.NORMAL && tokens[id].codePointCount(0, tokens[id].length()) > 1) {
                    scores[id] = -merges.length - 1;
                }
            }
            meta.put(Vocabulary.KEY_MODEL, GgufValue.string("llama"));
            putTokens(scores);
            putId("tokenizer.ggml.unknown_token_id", unkToken);
            meta.put("tokenizer.ggml.add_space_prefix", GgufValue.bool(addsSpacePrefix()));
            specialTokensFromTemplate();
            if (!meta.containsKey("tokenizer.ggml.bos_token_id")) putId("tokenizer.ggml.bos_token_id", "<s>");
            if (!meta.containsKey("tokenizer.ggml.eos_token_id")) putId("tokenizer.ggml.eos_token_id", "</s>");
            specialTokensFromConfig();
        }

        private void wordPiece() {
            readVocab();
            String prefix = model.path("continuing_subword_prefix").asText("##");
            for (var e : added.entrySet()) {
                if (e.getValue().path("special").asBoolean(false)) types[e.getKey()] = TokenType.CONTROL;
                else types[e.getKey()] = TokenType.USER_DEFINED;
            }
            for (int id = 0; id < tokens.length; id++) { // phantom-space form
                String t = tokens[id];
                if (types[id] == TokenType.CONTROL || types[id] == TokenType.UNUSED || (t.startsWith("[") && t.endsWith("]"))) continue;
                tokens[id] = t.startsWith(prefix) && t.length() > prefix.length() ? t.substring(prefix.length()) : "\u2581" + t;
            }
            String unkToken = model.path("unk_token").asText("[UNK]");
            meta.put(Vocabulary.KEY_MODEL, GgufValue.string("bert"));
            meta.put(Vocabulary.KEY_PRE, GgufValue.string("default"));
            putTokens(null);
            putId("tokenizer.ggml.unknown_token_id", unkToken);
            JsonNode post = root.path("post_processor");
            String cls = post.path("cls").path(0).asText("[CLS]"), sep = post.path("sep").path(0).asText("[SEP]");
            if (hasType(post, "TemplateProcessing")) {
                List<String> single = templateSpecials(post.path("single"));
                if (!single.isEmpty()) cls = single.getFirst();
                if (single.size() > 1) sep = single.getLast();
            }
            putId("tokenizer.ggml.bos_token_id", cls);
            putId("tokenizer.ggml.seperator_token_id", sep);
            putId("tokenizer.ggml.padding_token_id", "[PAD]");
            putId("tokenizer.ggml.mask_token_id", "[MASK]");
            JsonNode normalizer = findType(root.path("normalizer"), "BertNormalizer");
            boolean lowercase = normalizer == null || normalizer.path("lowercase").asBoolean(true);
            meta.put("tokenizer.ggml.normalizer.lowercase", GgufValue.bool(lowercase));
            if (normalizer != null && normalizer.path("strip_accents").isBoolean()) {
                meta.put("tokenizer.ggml.normalizer.strip_accents", GgufValue.bool(normalizer.path("strip_accents").asBoolean()));
            }
        }

        // ---- pieces ----

        /**
         * tokens/types from model.vocab and added_tokens; ids without a token become "[PAD{id}]" (UNUSED), and so do
         * the "[PAD{id}]" rows llama.cpp's converters add (and {@link TokenizerJsonWriter} keeps) in model.vocab.
         */
        private void readVocab() {
            JsonNode vocab = model.path("vocab");
            if (!vocab.isObject()) throw error("model.vocab must be an object of token → id");
            int n = 0;
            for (var it = vocab.properties().iterator(); it.hasNext(); ) {
                var e = it.next();
                int id = checkedId(e.getValue(), "model.vocab['" + e.getKey() + "']");
                n = Math.max(n, id + 1);
            }
            for (JsonNode a : root.path("added_tokens")) {
                int id = checkedId(a.path("id"), "added_tokens id of '" + a.path("content").asText() + "'");
                n = Math.max(n, id + 1);
            }
            if (n == 0) throw error("the vocabulary is empty");
            tokens = new String[n];
            types = new TokenType[n];
            for (var it = vocab.properties().iterator(); it.hasNext(); ) {
                var e = it.next();
                set(e.getValue().asInt(), e.getKey(), "model.vocab");
            }
            for (JsonNode a : root.path("added_tokens")) {
                int id = a.path("id").asInt();
                String content = a.path("content").asText();
                if (tokens[id] != null && !tokens[id].equals(content)) {
                    throw error("added token '" + content + "' has id " + id + ", which model.vocab gives to '" + tokens[id] + "'");
                }
                set(id, content, "added_tokens");
                added.put(id, a);
            }
            for (int id = 0; id < n; id++) {
                if (tokens[id] == null) tokens[id] = "[PAD" + id + "]";
                if (!added.containsKey(id) && tokens[id].equals("[PAD" + id + "]")) types[id] = TokenType.UNUSED;
            }
        }

        private int checkedId(JsonNode node, String what) {
            if (!node.canConvertToInt() || node.asInt() < 0 || node.asInt() > 16_000_000) {
                throw error(what + " must be a token id from 0 to 16000000, got " + node);
            }
            return node.asInt();
        }

        private void set(int id, String text, String where) {
            Integer other = ids.putIfAbsent(text, id);
            if (other != null && other != id) throw error(where + ": token '" + text + "' has ids " + other + " and " + id);
            tokens[id] = text;
            types[id] = TokenType.NORMAL;
        }

        /** model.merges as "left right" strings (pairs joined; spaces inside a part shown as U+0120 'Ġ'). */
        private String[] merges() {
            JsonNode merges = model.path("merges");
            if (!merges.isArray()) throw error("model.merges must be an array");
            String[] out = new String[merges.size()];
            for (int i = 0; i < out.length; i++) {
                JsonNode m = merges.get(i);
                if (m.isTextual()) {
                    out[i] = m.asText();
                } else if (m.isArray() && m.size() == 2) {
                    out[i] = m.get(0).asText().replace(' ', '\u0120') + " " + m.get(1).asText().replace(' ', '\u0120');
                } else {
                    throw error("model.merges[" + i + "] must be \"left right\" or [left, right], got " + m);
                }
            }
            return out;
        }

        private void putTokens(float[] scores) {
            meta.put(Vocabulary.KEY_TOKENS, GgufValue.strings(tokens));
            if (scores != null) meta.put(Vocabulary.KEY_SCORES, GgufValue.floats(scores));
            int[] t = new int[types.length];
            for (int i = 0; i < t.length; i++) t[i] = types[i].id;
            meta.put(Vocabulary.KEY_TOKEN_TYPE, GgufValue.i32s(t));
        }

        private void putId(String key, String tokenText) {
            if (tokenText != null && ids.containsKey(tokenText)) meta.put(key, GgufValue.u32(ids.get(tokenText)));
        }

        /** BOS/EOS from a TemplateProcessing post_processor: special tokens before/after the sequence. */
        private void specialTokensFromTemplate() {
            JsonNode post = findType(root.path("post_processor"), "TemplateProcessing");
            if (post == null) return;
            JsonNode single = post.path("single");
            boolean beforeSequence = true;
            for (JsonNode piece : single) {
                if (piece.has("Sequence")) {
                    beforeSequence = false;
                } else if (piece.has("SpecialToken")) {
                    String text = piece.path("SpecialToken").path("id").asText();
                    String key = beforeSequence ? "tokenizer.ggml.bos_token_id" : "tokenizer.ggml.eos_token_id";
                    putId(key, text);
                    meta.put(beforeSequence ? "tokenizer.ggml.add_bos_token" : "tokenizer.ggml.add_eos_token", GgufValue.bool(true));
                }
            }
            if (single.isArray() && single.size() > 0) {
                meta.putIfAbsent("tokenizer.ggml.add_bos_token", GgufValue.bool(false));
                meta.putIfAbsent("tokenizer.ggml.add_eos_token", GgufValue.bool(false));
            }
        }

        private static List<String> templateSpecials(JsonNode single) {
            List<String> out = new ArrayList<>();
            for (JsonNode piece : single) if (piece.has("SpecialToken")) out.add(piece.path("SpecialToken").path("id").asText());
            return out;
        }

        /** bos/eos/unk/pad tokens, add_bos/add_eos and the chat template from tokenizer_config.json, when there is one. */
        private void specialTokensFromConfig() {
            if (config == null) return;
            for (String[] kv : new String[][]{{"bos_token", "tokenizer.ggml.bos_token_id"}, {"eos_token", "tokenizer.ggml.eos_token_id"},
                    {"unk_token", "tokenizer.ggml.unknown_token_id"}, {"pad_token", "tokenizer.ggml.padding_token_id"}}) {
                JsonNode t = config.path(kv[0]);
                String text = t.isObject() ? t.path("content").asText(null) : t.isTextual() ? t.asText() : null;
                putId(kv[1], text);
            }
            if (config.path("add_bos_token").isBoolean()) meta.put("tokenizer.ggml.add_bos_token", GgufValue.bool(config.path("add_bos_token").asBoolean()));
            if (config.path("add_eos_token").isBoolean()) meta.put("tokenizer.ggml.add_eos_token", GgufValue.bool(config.path("add_eos_token").asBoolean()));
            if (config.path("chat_template").isTextual()) meta.put("tokenizer.chat_template", GgufValue.string(config.path("chat_template").asText()));
        }

        /** Whether the json puts U+2581 before the text: a Prepend normaliser or a Metaspace that prepends. */
        private boolean addsSpacePrefix() {
            if (findType(root.path("normalizer"), "Prepend") != null) return true;
            JsonNode metaspace = findType(root.path("pre_tokenizer"), "Metaspace");
            if (metaspace == null) return false;
            String scheme = metaspace.path("prepend_scheme").asText(null);
            return scheme != null ? !scheme.equals("never") : metaspace.path("add_prefix_space").asBoolean(true);
        }

        /**
         * The llama.cpp pre-tokenizer whose regex list is the json's: each Split regex as written (Llama 3's
         * {@code (?i:...)} in llama.cpp's adapted spelling), Digits as {@code \p{N}} or {@code \p{N}+}, and ByteLevel
         * with use_regex as GPT-2's regex.
         */
        private PreTokenizer recognisePreTokenizer() {
            List<String> regexes = new ArrayList<>();
            JsonNode pre = root.path("pre_tokenizer");
            List<JsonNode> steps = new ArrayList<>();
            if (hasType(pre, "Sequence")) pre.path("pretokenizers").forEach(steps::add);
            else if (!pre.isMissingNode() && !pre.isNull()) steps.add(pre);
            for (JsonNode step : steps) {
                switch (step.path("type").asText()) {
                    case "Split" -> {
                        String regex = step.path("pattern").path("Regex").asText(null);
                        if (regex == null) regex = java.util.regex.Pattern.quote(step.path("pattern").path("String").asText());
                        regexes.add(regex.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"));
                    }
                    case "Digits" -> regexes.add(step.path("individual_digits").asBoolean(false) ? "\\p{N}" : "\\p{N}+");
                    case "ByteLevel" -> { if (step.path("use_regex").asBoolean(true)) regexes.add(RegexSplitter.GPT2); }
                    default -> throw unrecognised("it has a " + step.path("type").asText() + " step");
                }
            }
            // several pre-tokenizers share a regex list: take the first whose flags the files state, if they state them
            JsonNode ignoreMerges = model.path("ignore_merges");
            JsonNode cleanSpaces = config == null ? null : config.path("clean_up_tokenization_spaces");
            PreTokenizer first = null;
            for (PreTokenizer p : PreTokenizer.values()) {
                if (!p.regexes.equals(regexes)) continue;
                if (first == null) first = p;
                if ((!ignoreMerges.isBoolean() || ignoreMerges.asBoolean() == p.ignoreMerges)
                        && (cleanSpaces == null || !cleanSpaces.isBoolean() || cleanSpaces.asBoolean() == p.cleanSpaces)) return p;
            }
            if (first != null) return first;
            throw unrecognised("its regexes " + regexes + " match none of llama.cpp's");
        }

        private Q4jException unrecognised(String why) {
            return error("cannot tell which llama.cpp pre-tokenizer this tokenizer.json uses (" + why
                    + "); name it explicitly, one of: " + PreTokenizer.supportedNames());
        }

        private static boolean hasType(JsonNode node, String type) { return findType(node, type) != null; }

        /** The node of that type: the node itself or a step of a Sequence. */
        private static JsonNode findType(JsonNode node, String type) {
            if (node == null || node.isMissingNode() || node.isNull()) return null;
            if (type.equals(node.path("type").asText())) return node;
            for (String list : new String[]{"pretokenizers", "normalizers", "decoders", "processors"}) {
                for (JsonNode step : node.path(list)) if (type.equals(step.path("type").asText())) return step;
            }
            return null;
        }

        /** convert_hf_to_gguf's does_token_look_special. */
        private static boolean looksSpecial(String t) {
            return t.equals("<pad>") || t.equals("<mask>") || t.equals("<2mass>") || t.equals("[@BOS@]")
                    || (t.startsWith("<|") && t.endsWith("|>")) || (t.startsWith("<｜") && t.endsWith("｜>"))
                    || (t.startsWith("<unused") && t.endsWith(">"));
        }

        private Q4jException error(String message) { return new Q4jException(source + ": " + message); }
    }
}
