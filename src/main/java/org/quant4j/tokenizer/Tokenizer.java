package org.quant4j.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * Text ⇄ token ids, with llama.cpp's semantics ({@code llama_tokenize}, {@code llama_token_to_piece},
 * {@code llama_detokenize}). Instances are immutable and safe to share between threads.
 *
 * <p>Make one with {@link Tokenizers#fromMetadata} (GGUF metadata), {@link Llama2cTokenizer} (llama2.c
 * tokenizer.bin) or {@link TokenizerJson} (Hugging Face tokenizer.json).
 */
public interface Tokenizer {

    /**
     * Token ids of {@code text}, as {@code llama_tokenize(text, addSpecial, parseSpecial)}.
     *
     * @param addSpecial   add BOS/EOS (and for WordPiece [CLS]/[SEP]) as the vocabulary asks
     * @param parseSpecial recognise the texts of control tokens (e.g. {@code <s>}, {@code <|im_end|>}) in the input;
     *                     user-defined tokens are always recognised
     */
    int[] encode(String text, boolean addSpecial, boolean parseSpecial);

    /** {@code encode(text, true, false)}: what a prompt needs. */
    default int[] encode(String text) { return encode(text, true, false); }

    /**
     * The text of token ids, as {@code llama_detokenize(ids, removeSpecial=false, unparseSpecial=false)}: control
     * tokens give no text, byte tokens are joined into UTF-8 before decoding, and the leading space a SentencePiece
     * vocabulary adds is removed when the first token carries it. As in llama.cpp, a leading BOS counts as that first
     * token, so {@code decode(encode(s))} is {@code " " + s} for such vocabularies while
     * {@code decode(encode(s, false, false))} is {@code s}. Byte-level BPE vocabularies (except the DeepSeek, Qwen2,
     * ... ones) also drop the space before {@code . , ! ?} and in {@code 's 'm 're 've} (clean_up_tokenization_spaces).
     */
    default String decode(int[] ids) { return decode(ids, false, false); }

    /**
     * As {@code llama_detokenize}.
     *
     * @param removeSpecial  drop a leading BOS / trailing EOS when the vocabulary adds them
     * @param unparseSpecial give control tokens their text (e.g. {@code <s>})
     */
    String decode(int[] ids, boolean removeSpecial, boolean unparseSpecial);

    /**
     * The bytes one token stands for, as {@code llama_token_to_piece(id, special)}. A byte token gives one byte,
     * which may be part of a UTF-8 sequence; concatenate pieces before decoding, or use {@link StreamingDecoder}.
     */
    byte[] pieceBytes(int id, boolean special);

    /** {@code pieceBytes(id, false)}: control tokens give nothing. */
    default byte[] pieceBytes(int id) { return pieceBytes(id, false); }

    /** The piece of one token as text (a partial UTF-8 sequence shows as U+FFFD). */
    default String piece(int id) { return new String(pieceBytes(id), StandardCharsets.UTF_8); }

    /** The token's text as stored in the vocabulary (e.g. {@code ▁Hello}, {@code ĠHello}, {@code <0x0A>}). */
    String tokenText(int id);

    /** The token's type. */
    TokenType tokenType(int id);

    int vocabSize();

    /** Whether {@code encode(text, true, ...)} starts with BOS ({@code tokenizer.ggml.add_bos_token}). */
    boolean addsBos();

    /** The BOS (for WordPiece: [CLS]) id, or -1 if the vocabulary has none. */
    int bosId();

    /** The EOS id, or -1 if the vocabulary has none. */
    int eosId();

    /** Whether generating this token ends generation (EOS, EOT, {@code <|im_end|>}, ...). */
    boolean isEndOfGeneration(int id);
}
