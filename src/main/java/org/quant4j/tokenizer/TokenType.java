package org.quant4j.tokenizer;

/** GGUF's {@code tokenizer.ggml.token_type} values (llama.cpp's {@code llama_token_type}). */
public enum TokenType {
    UNDEFINED(0), NORMAL(1), UNKNOWN(2), CONTROL(3), USER_DEFINED(4), UNUSED(5), BYTE(6);

    /** The value stored in GGUF. */
    public final int id;

    TokenType(int id) { this.id = id; }

    /** The type for a stored value; unknown values read as UNDEFINED, as llama.cpp reads them. */
    public static TokenType of(int id) {
        return id >= 0 && id < values().length ? values()[id] : UNDEFINED;
    }
}
