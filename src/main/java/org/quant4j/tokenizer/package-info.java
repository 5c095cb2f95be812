/**
 * Tokenizers with llama.cpp's semantics, verified id for id against llama.cpp's test vocabularies.
 *
 * <ul>
 * <li>{@link org.quant4j.tokenizer.Tokenizer}: encode / decode / pieces; what generation and evaluation call.</li>
 * <li>{@link org.quant4j.tokenizer.Tokenizers}: a tokenizer from GGUF metadata ({@code tokenizer.ggml.*}):
 *     SentencePiece BPE ("llama"), byte-level BPE ("gpt2", with a {@link org.quant4j.tokenizer.PreTokenizer}) or
 *     WordPiece ("bert").</li>
 * <li>{@link org.quant4j.tokenizer.Llama2cTokenizer} and {@link org.quant4j.tokenizer.TokenizerJson}: GGUF metadata
 *     from llama2.c's tokenizer.bin and from Hugging Face's tokenizer.json, so every source ends in the same
 *     tokenizers and can be written to GGUF unchanged.</li>
 * <li>{@link org.quant4j.tokenizer.StreamingDecoder}: text of generated tokens as they come, whole characters only.</li>
 * </ul>
 *
 * <p>Reading order: {@code Vocabulary} (what llama.cpp loads, special-token splitting) → {@code SentencePieceBpe},
 * {@code ByteLevelBpe} + {@code RegexSplitter}, {@code WordPiece} → {@code VocabularyTokenizer} (detokenizing).
 */
package org.quant4j.tokenizer;
