package org.quant4j.tokenizer;

import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.model.Model;

import java.nio.file.Path;
import java.util.Map;

/** Makes a {@link Tokenizer} from GGUF tokenizer metadata ({@code tokenizer.ggml.*}). */
public final class Tokenizers {
    private Tokenizers() {}

    /**
     * The tokenizer that {@code tokenizer.ggml.model} names: "llama" → SentencePiece BPE, "gpt2" → byte-level BPE with
     * the pre-tokenizer {@code tokenizer.ggml.pre} names, "bert" → WordPiece.
     *
     * @param metadata GGUF metadata (other keys are ignored)
     * @param source   where the metadata came from, for error messages (a path)
     * @throws org.quant4j.util.Q4jException for an unsupported model or pre-tokenizer, or inconsistent arrays
     */
    public static Tokenizer fromMetadata(Map<String, GgufValue> metadata, String source) {
        Vocabulary vocab = Vocabulary.fromMetadata(metadata, source);
        return switch (vocab.model) {
            case SPM -> new SentencePieceBpe(vocab);
            case BPE -> new ByteLevelBpe(vocab);
            case WPM -> new WordPiece(vocab);
        };
    }

    /** The tokenizer in a loaded model's metadata. */
    public static Tokenizer fromModel(Model model) {
        return fromMetadata(model.metadata(), model.source());
    }

    /** The tokenizer stored in a GGUF file. */
    public static Tokenizer fromGguf(Path gguf) {
        try (GgufFile file = GgufFile.open(gguf)) {
            return fromMetadata(file.metadata(), gguf.toString());
        }
    }
}
